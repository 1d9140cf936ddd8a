// Lists as `kubectl get -o json` prints them, for the CLI's reading tests.

export type Item = Record<string, unknown>;

/** kubectl's output: 4-space indentation. */
export const kubectlJson = (items: readonly Item[]): string =>
  JSON.stringify(
    { apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } },
    null,
    4,
  );

/** Node `node-N` in `zone`, with what kubectl prints beside the labels. */
export const kubectlNode = (n: number, zone: string): Item => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: `node-${n}`,
    labels: { 'topology.kubernetes.io/zone': zone, 'kubernetes.io/hostname': `node-${n}` },
    managedFields: [{ manager: 'kubelet', fieldsV1: { 'f:status': {} } }],
  },
  status: { capacity: { cpu: '4' } },
});
