import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { WorkloadKind } from '../../../src/api/policy.ts';
import {
  policyTransform,
  rolledOut,
  trimNamespace,
  trimNode,
  trimPod,
  workloadTransform,
} from '../../../src/kube/transforms.ts';

const AFFINITY = {
  podAntiAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [
      { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
    ],
  },
};

/** What the API server serves, with the bulk a cache must not keep. */
const fullMetadata = (name: string, namespace?: string) => ({
  name,
  ...(namespace === undefined ? {} : { namespace }),
  uid: `uid-${name}`,
  resourceVersion: '42',
  generation: 3,
  creationTimestamp: '2026-01-01T00:00:00Z',
  labels: { app: 'web' },
  annotations: {
    'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}',
    'placement.dev/applied': '{"v":1}',
  },
  managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
  ownerReferences: [
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: 'web-abc',
      uid: 'u',
      controller: true,
      blockOwnerDeletion: true,
    },
  ],
});

const SPREAD = [
  {
    maxSkew: 1,
    topologyKey: 'topology.kubernetes.io/zone',
    whenUnsatisfiable: 'DoNotSchedule',
    labelSelector: { matchLabels: { app: 'web' } },
  },
];

const podSpec = {
  nodeName: 'node-1',
  affinity: AFFINITY,
  containers: [{ name: 'c', image: 'nginx' }],
};

/** What the audit's node and spread rules read too. */
const podSpecWithNodeRules = {
  ...podSpec,
  nodeSelector: { pool: 'gpu' },
  tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
  topologySpreadConstraints: SPREAD,
};

void test('trimPod keeps only the fields the audit reads', () => {
  const pod = trimPod({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...fullMetadata('web-1', 'shop'), deletionTimestamp: '2026-01-02T00:00:00Z' },
    spec: podSpecWithNodeRules,
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True' }],
      podIP: '10.0.0.1',
    },
  });
  assert.deepEqual(pod, {
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: 'uid-web-1',
      labels: { app: 'web' },
      annotations: { 'placement.dev/applied': '{"v":1}' },
      ownerReferences: [{ kind: 'ReplicaSet', name: 'web-abc', controller: true }],
      deletionTimestamp: '2026-01-02T00:00:00Z',
      resourceVersion: '42',
    },
    spec: {
      nodeName: 'node-1',
      affinity: AFFINITY,
      nodeSelector: { pool: 'gpu' },
      tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
      topologySpreadConstraints: SPREAD,
    },
    status: { phase: 'Running' },
  });
});

void test('trimPod leaves absent fields absent, not undefined', () => {
  const pod = trimPod({ metadata: { name: 'p', namespace: 'ns' }, spec: {} });
  assert.deepEqual(pod, { metadata: { name: 'p', namespace: 'ns' }, spec: {} });
  assert.deepEqual(Object.keys(pod.metadata), ['name', 'namespace']);
});

void test('trimPod refuses an object without name or namespace', () => {
  assert.equal(trimPod({ metadata: { name: 'p' } }), undefined);
  assert.equal(trimPod('not an object'), undefined);
});

void test('trimNode and trimNamespace keep name, labels and resourceVersion', () => {
  const raw = {
    metadata: { ...fullMetadata('node-1'), labels: { 'topology.kubernetes.io/zone': 'a' } },
    status: { capacity: { cpu: '4' } },
  };
  const expected = {
    metadata: {
      name: 'node-1',
      labels: { 'topology.kubernetes.io/zone': 'a' },
      resourceVersion: '42',
    },
  };
  assert.deepEqual(trimNode(raw), expected);
  assert.deepEqual(trimNamespace(raw), expected);
});

void test('trimNode keeps the taints that filter and the cordon, nothing else of the spec', () => {
  const node = trimNode({
    metadata: { name: 'node-1' },
    spec: {
      podCIDR: '10.244.1.0/24',
      unschedulable: true,
      taints: [
        { key: 'dedicated', value: 'db', effect: 'NoSchedule', timeAdded: null },
        { key: 'soft', effect: 'PreferNoSchedule' },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', value: '' },
      ],
    },
  });
  assert.deepEqual(node, {
    metadata: { name: 'node-1' },
    spec: {
      taints: [
        { key: 'dedicated', value: 'db', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
      ],
      unschedulable: true,
    },
  });
  assert.deepEqual(trimNode({ metadata: { name: 'n' }, spec: { taints: [] } }), {
    metadata: { name: 'n' },
  });
});

void test("workloadTransform keeps the template's nodeSelector and tolerations", () => {
  const workload = workloadTransform('StatefulSet')({
    metadata: { name: 'db', namespace: 'data' },
    spec: {
      template: {
        spec: {
          nodeSelector: { pool: 'db' },
          tolerations: [
            { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
            { operator: 'Exists', tolerationSeconds: 30 },
          ],
          containers: [],
        },
      },
    },
  });
  assert.deepEqual(workload?.nodeSelector, { pool: 'db' });
  assert.deepEqual(workload.tolerations, [
    { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
    { operator: 'Exists' },
  ]);
});

const template = { metadata: { labels: { app: 'web', tier: 'front' } }, spec: podSpec };
const selector = { matchLabels: { app: 'web' } };

interface WorkloadCase {
  readonly kind: WorkloadKind;
  readonly spec: Record<string, unknown>;
  readonly status: Record<string, unknown>;
  readonly selector: unknown;
  readonly replicas: number;
}

const WORKLOADS: readonly WorkloadCase[] = [
  {
    kind: 'Deployment',
    spec: { replicas: 2, selector, template },
    status: { observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
    selector,
    replicas: 2,
  },
  {
    kind: 'StatefulSet',
    spec: { replicas: 2, selector, template },
    status: { observedGeneration: 3, currentRevision: 'r1', updateRevision: 'r1' },
    selector,
    replicas: 2,
  },
  {
    kind: 'ReplicaSet',
    spec: { replicas: 2, selector, template },
    status: { observedGeneration: 3 },
    selector,
    replicas: 2,
  },
  {
    kind: 'DaemonSet',
    spec: { selector, template },
    status: {
      observedGeneration: 3,
      desiredNumberScheduled: 4,
      updatedNumberScheduled: 4,
      numberAvailable: 4,
    },
    selector,
    replicas: 4,
  },
  {
    kind: 'CronJob',
    spec: { schedule: '* * * * *', jobTemplate: { spec: { template } } },
    status: {},
    selector: undefined,
    replicas: 1,
  },
];

for (const c of WORKLOADS) {
  void test(`workloadTransform(${c.kind}) reads the pod template and trims the rest`, () => {
    const workload = workloadTransform(c.kind)({
      metadata: fullMetadata('web', 'shop'),
      spec: c.spec,
      status: c.status,
    });
    assert.deepEqual(workload, {
      kind: c.kind,
      namespace: 'shop',
      name: 'web',
      uid: 'uid-web',
      resourceVersion: '42',
      generation: 3,
      // last-applied-configuration is not cached
      annotations: { 'placement.dev/applied': '{"v":1}' },
      ownerReferences: [{ kind: 'ReplicaSet', name: 'web-abc', controller: true }],
      selector: c.selector,
      templateLabels: { app: 'web', tier: 'front' },
      affinity: AFFINITY,
      rolledOut: true,
      replicas: c.replicas,
    });
  });
}

void test('workloadTransform: a template without affinity or labels', () => {
  const workload = workloadTransform('Deployment')({
    metadata: { name: 'w', namespace: 'ns' },
    spec: { template: { spec: { containers: [] } } },
  });
  if (workload === undefined) assert.fail('no workload');
  assert.equal(workload.affinity, undefined);
  assert.deepEqual(workload.templateLabels, {});
  assert.deepEqual(workload.annotations, {});
  assert.equal(workload.generation, 0);
});

interface RolloutCase {
  readonly name: string;
  readonly kind: WorkloadKind;
  readonly generation: number;
  readonly spec: Record<string, unknown>;
  readonly status: Record<string, unknown>;
  readonly rolledOut: boolean;
}

// ---- scenes: one workload of each kind, its status varied from a finished rollout's ----

type Status = Record<string, unknown>;

/** A Deployment of 3 replicas at generation 2, its status a finished rollout's with `status` over it. */
const deploymentScene = (
  name: string,
  rolledOut: boolean,
  status: Status,
  o: { generation?: number; spec?: Record<string, unknown> } = {},
): RolloutCase => ({
  name: `Deployment: ${name}`,
  kind: 'Deployment',
  generation: o.generation ?? 2,
  spec: o.spec ?? { replicas: 3 },
  status: {
    observedGeneration: 2,
    replicas: 3,
    updatedReplicas: 3,
    availableReplicas: 3,
    ...status,
  },
  rolledOut,
});

/** A StatefulSet of 3 replicas at `generation`, observed at 2 on revision a, `status` over that. */
const statefulSetScene = (
  name: string,
  rolledOut: boolean,
  status: Status,
  generation = 2,
): RolloutCase => ({
  name: `StatefulSet: ${name}`,
  kind: 'StatefulSet',
  generation,
  spec: { replicas: 3 },
  status: { observedGeneration: 2, currentRevision: 'a', ...status },
  rolledOut,
});

/** A DaemonSet at generation 1 on 5 nodes, every pod updated and available but for `status`. */
const daemonSetScene = (name: string, rolledOut: boolean, status: Status): RolloutCase => ({
  name: `DaemonSet: ${name}`,
  kind: 'DaemonSet',
  generation: 1,
  spec: {},
  status: {
    observedGeneration: 1,
    desiredNumberScheduled: 5,
    updatedNumberScheduled: 5,
    numberAvailable: 5,
    ...status,
  },
  rolledOut,
});

/** A ReplicaSet of 3 replicas at generation 4, observed at `observedGeneration`. */
const replicaSetScene = (
  name: string,
  rolledOut: boolean,
  observedGeneration: number,
): RolloutCase => ({
  name: `ReplicaSet: ${name}`,
  kind: 'ReplicaSet',
  generation: 4,
  spec: { replicas: 3 },
  status: { observedGeneration },
  rolledOut,
});

const ROLLOUTS: readonly RolloutCase[] = [
  deploymentScene('all replicas updated and available', true, {}),
  deploymentScene('controller has not seen the new generation', false, {}, { generation: 3 }),
  deploymentScene('old replicas still running', false, { replicas: 4 }),
  deploymentScene('an updated replica not available yet', false, { availableReplicas: 2 }),
  deploymentScene(
    'replicas default to 1',
    true,
    { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
    { generation: 1, spec: {} },
  ),
  {
    name: 'Deployment: scaled to zero',
    kind: 'Deployment',
    generation: 1,
    spec: { replicas: 0 },
    status: { observedGeneration: 1 },
    rolledOut: true,
  },
  {
    name: 'Deployment: no status yet',
    kind: 'Deployment',
    generation: 1,
    spec: { replicas: 1 },
    status: {},
    rolledOut: false,
  },
  statefulSetScene('revisions equal', true, { updateRevision: 'a' }),
  statefulSetScene('all replicas updated before currentRevision moves', true, {
    updateRevision: 'b',
    updatedReplicas: 3,
  }),
  statefulSetScene('rolling', false, { updateRevision: 'b', updatedReplicas: 1 }),
  statefulSetScene('new generation not observed', false, { updateRevision: 'a' }, 3),
  daemonSetScene('every node updated and available', true, {}),
  daemonSetScene('a node not updated', false, { updatedNumberScheduled: 4 }),
  daemonSetScene('a pod not available', false, { numberAvailable: 4 }),
  replicaSetScene('observed', true, 4),
  replicaSetScene('not observed', false, 3),
  {
    name: 'CronJob: always',
    kind: 'CronJob',
    generation: 9,
    spec: {},
    status: {},
    rolledOut: true,
  },
];

for (const c of ROLLOUTS) {
  void test(`rolledOut: ${c.name}`, () => {
    assert.equal(rolledOut(c.kind, c.generation, c.spec, c.status), c.rolledOut);
  });
}

void test('policyTransform keeps metadata the writes need, spec and status', () => {
  const spec = { mode: 'Enforce', targets: { kinds: ['Deployment'] } };
  const status = { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'True' }] };
  const raw = {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementPolicy',
    metadata: { ...fullMetadata('spread', 'shop'), finalizers: ['placement.dev/finalizer'] },
    spec,
    status,
  };
  assert.deepEqual(policyTransform('PlacementPolicy')(raw), {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementPolicy',
    metadata: {
      name: 'spread',
      namespace: 'shop',
      uid: 'uid-spread',
      generation: 3,
      resourceVersion: '42',
      finalizers: ['placement.dev/finalizer'],
    },
    spec,
    status,
  });
});

void test('policyTransform: a list item (no apiVersion) caches like a watch event', () => {
  const raw = { metadata: { name: 'all', resourceVersion: '7' }, spec: {} };
  const cluster = policyTransform('ClusterPlacementPolicy')(raw);
  assert.deepEqual(cluster, {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'ClusterPlacementPolicy',
    metadata: { name: 'all', resourceVersion: '7' },
    spec: {},
  });
});

void test('workloadTransform: a Deployment past its progress deadline is stalled, for its current generation only', () => {
  const progressing = (status: string, reason: string) => ({
    type: 'Progressing',
    status,
    reason,
    message: 'ReplicaSet "web-abc" has timed out progressing.',
  });
  const read = (kind: WorkloadKind, observedGeneration: number, condition: object) =>
    workloadTransform(kind)({
      metadata: { name: 'web', namespace: 'shop', generation: 3 },
      spec: { replicas: 2, template: { spec: {} } },
      status: {
        observedGeneration,
        conditions: [{ type: 'Available', status: 'True' }, condition],
      },
    })?.rolloutStalled;
  assert.equal(
    read('Deployment', 3, progressing('False', 'ProgressDeadlineExceeded')),
    'ReplicaSet "web-abc" has timed out progressing.',
  );
  // The controller has not looked at the newest template yet: that rollout has not failed.
  assert.equal(read('Deployment', 2, progressing('False', 'ProgressDeadlineExceeded')), undefined);
  assert.equal(read('Deployment', 3, progressing('True', 'ReplicaSetUpdated')), undefined);
  assert.equal(read('StatefulSet', 3, progressing('False', 'ProgressDeadlineExceeded')), undefined);
});

void test('pods with the same tolerations share one read-only copy of them', () => {
  const pod = (name: string) =>
    trimPod({
      metadata: { name, namespace: 'shop' },
      spec: {
        nodeName: 'n1',
        tolerations: [
          {
            key: 'node.kubernetes.io/not-ready',
            operator: 'Exists',
            effect: 'NoExecute',
            tolerationSeconds: 300,
          },
          {
            key: 'node.kubernetes.io/unreachable',
            operator: 'Exists',
            effect: 'NoExecute',
            tolerationSeconds: 300,
          },
        ],
      },
    });
  const a = pod('a') ?? assert.fail('pod a not read');
  const b = pod('b') ?? assert.fail('pod b not read');
  assert.deepEqual(a.spec.tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  ]);
  assert.equal(a.spec.tolerations, b.spec.tolerations);
});

void test('the replicas of one template share their labels, owners, affinity and spread', () => {
  const spread = [
    { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' },
  ];
  // Each raw pod is parsed apart, as the API server's JSON is: equal, never the same objects.
  const replica = (name: string, labels: Record<string, string>) =>
    trimPod(
      JSON.parse(
        JSON.stringify({
          metadata: {
            name,
            namespace: 'shop',
            uid: `uid-${name}`,
            labels,
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', controller: true },
            ],
          },
          spec: {
            nodeName: 'n1',
            affinity: AFFINITY,
            nodeSelector: { disk: 'ssd' },
            topologySpreadConstraints: spread,
          },
          status: { phase: 'Running' },
        }),
      ),
    ) ?? assert.fail(`pod ${name} not read`);
  const a = replica('web-5d8f-a', { app: 'web', 'pod-template-hash': '5d8f' });
  const b = replica('web-5d8f-b', { app: 'web', 'pod-template-hash': '5d8f' });
  assert.equal(a.metadata.labels, b.metadata.labels);
  assert.equal(a.metadata.ownerReferences, b.metadata.ownerReferences);
  assert.equal(a.spec.affinity, b.spec.affinity);
  assert.equal(a.spec.nodeSelector, b.spec.nodeSelector);
  assert.equal(a.spec.topologySpreadConstraints, b.spec.topologySpreadConstraints);
  assert.equal(a.status, b.status);
  assert.deepEqual(a.spec.affinity, AFFINITY);
  assert.deepEqual(a.spec.topologySpreadConstraints, spread);
  assert.deepEqual(a.metadata.ownerReferences, [
    { kind: 'ReplicaSet', name: 'web-5d8f', controller: true },
  ]);
  assert.notEqual(a.metadata.uid, b.metadata.uid);

  // A label of its own (a StatefulSet's pod name) keeps a map of its own, with its own value.
  const c = replica('db-0', { app: 'web', 'statefulset.kubernetes.io/pod-name': 'db-0' });
  assert.notEqual(c.metadata.labels, a.metadata.labels);
  assert.deepEqual(c.metadata.labels, { app: 'web', 'statefulset.kubernetes.io/pod-name': 'db-0' });
});
