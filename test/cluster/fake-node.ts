// The Node object a KWOK-managed fake node is created from, shared by the local cluster,
// the tests that add their own nodes, and the benchmarks.
export interface FakeNodeSpec {
  readonly name: string;
  /** Labels besides hostname, os, arch and `type: kwok` (zone, region, test marks). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly taints?: readonly {
    readonly key: string;
    readonly value?: string;
    readonly effect: string;
  }[];
  readonly capacity: Readonly<{ cpu: string; memory: string; pods: string }>;
  readonly kubeletVersion: string;
  /** Gives the node its own pod CIDR (kwok hands out pod IPs from it) and an internal IP. */
  readonly index?: number;
}

/**
 * The pod network of the fake nodes: kwok's `--cidr`, and the range every node's own /24 is
 * cut from (node i gets the i-th /24), so up to 32,768 nodes.
 */
export const POD_NETWORK_CIDR = '10.128.0.0/9';
const POD_NETWORK_SUBNETS = 1 << 15;

/** Node i's pod CIDR: the i-th /24 of POD_NETWORK_CIDR (kwok hands out pod IPs from it). */
export function podCidrOf(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= POD_NETWORK_SUBNETS) {
    throw new Error(`node index ${index} has no /24 in ${POD_NETWORK_CIDR}`);
  }
  return `10.${128 + (index >> 8)}.${index & 255}.0/24`;
}

export function fakeNodeManifest(spec: FakeNodeSpec): {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: { name: string; annotations: Record<string, string>; labels: Record<string, string> };
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
} {
  const { name, index } = spec;
  const cidr = index === undefined ? undefined : podCidrOf(index);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      // kwok plays the kubelet for nodes annotated so: Ready, leases, pods Running.
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...spec.labels,
      },
    },
    spec: {
      ...(cidr === undefined ? {} : { podCIDR: cidr, podCIDRs: [cidr] }),
      ...(spec.taints === undefined ? {} : { taints: spec.taints }),
    },
    // Node status may be set on create: what a kubelet would report; kwok adds Ready.
    status: {
      capacity: spec.capacity,
      allocatable: spec.capacity,
      addresses: [
        ...(index === undefined
          ? []
          : [
              {
                type: 'InternalIP',
                address: `10.10.${Math.floor(index / 250)}.${(index % 250) + 1}`,
              },
            ]),
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        kubeletVersion: spec.kubeletVersion,
        containerRuntimeVersion: 'kwok',
        kernelVersion: 'kwok',
        osImage: 'kwok',
        bootID: '',
        machineID: '',
        systemUUID: '',
        kubeProxyVersion: '',
      },
    },
  };
}
