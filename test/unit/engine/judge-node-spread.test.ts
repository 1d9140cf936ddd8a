// The node and spread rules in the audit: nodeSelector and required node affinity drift,
// attribution of a policy's node requirements, topology spread excess, preferred node
// affinity as a score, and who may be moved where. A table of named cases over auditSnapshot.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Node, NodeAffinity, Pod, TopologySpreadConstraint } from '../../../src/api/core.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import {
  judgeNodeAndSpread,
  SpreadPodCache,
  type PodPolicies,
} from '../../../src/engine/judge-node-spread.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import { auditSnapshot, type AuditReport } from '../../../src/engine/judge-cluster.ts';
import {
  clusterPolicy,
  HOSTNAME,
  namespace,
  node,
  pod,
  replicaSetOwner,
  snapshotOf,
  sortTuples,
  tuplesOf,
  ZONE,
  type Tuple,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const GPU = { key: 'pool', operator: 'In', values: ['gpu'] } as const;
const ZONE_A = { key: ZONE, operator: 'In', values: ['a'] } as const;

const n = (name: string, zone: string, pool: string): Node =>
  node(name, { [HOSTNAME]: name, [ZONE]: zone, pool });

const NODES = [n('a0', 'a', 'gpu'), n('a1', 'a', 'cpu'), n('b0', 'b', 'gpu'), n('c0', 'c', 'cpu')];

interface Extra {
  readonly nodeSelector?: Record<string, string>;
  readonly nodeAffinity?: NodeAffinity;
  readonly spread?: readonly TopologySpreadConstraint[];
  readonly labels?: Record<string, string>;
}

/** A pod of Deployment `web` (through ReplicaSet web-5d8f7c6b9) on `nodeName`. */
function web(name: string, nodeName: string, extra: Extra = {}): Pod {
  const base = pod(name, {
    node: nodeName,
    labels: extra.labels ?? { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
    owner: replicaSetOwner('web-5d8f7c6b9'),
  });
  return {
    ...base,
    spec: {
      ...base.spec,
      ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
      ...(extra.nodeAffinity ? { affinity: { nodeAffinity: extra.nodeAffinity } } : {}),
      ...(extra.spread ? { topologySpreadConstraints: extra.spread } : {}),
    },
  };
}

const required = (
  ...terms: (readonly { key: string; operator: string; values?: readonly string[] }[])[]
): NodeAffinity => ({
  [REQUIRED]: { nodeSelectorTerms: terms.map((t) => ({ matchExpressions: t })) },
});

const gpuPolicy: PlacementPolicy = clusterPolicy('gpu-only', {
  affinity: { nodeAffinity: required([GPU]) },
});

const zoneSpread = (maxSkew = 1): TopologySpreadConstraint => ({
  maxSkew,
  topologyKey: ZONE,
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: { matchLabels: { app: 'web' } },
});

const POLICY = 'ClusterPlacementPolicy/gpu-only';

interface Case {
  readonly name: string;
  readonly pods: readonly Pod[];
  readonly policies?: readonly PlacementPolicy[];
  readonly want: readonly Tuple[];
}

const t = (pod: string, rule: Tuple['rule'], source = 'pod', term = 0): Tuple => ({
  pod: `default/${pod}`,
  rule,
  source,
  term,
});

const CASES: readonly Case[] = [
  {
    name: 'nodeSelector met: nothing',
    pods: [web('w0', 'a0', { nodeSelector: { pool: 'gpu' } })],
    want: [],
  },
  {
    name: 'node relabelled out of the nodeSelector: nodeSelector',
    pods: [web('w0', 'a1', { nodeSelector: { pool: 'gpu' } })],
    want: [t('w0', 'nodeSelector')],
  },
  {
    name: 'required node affinity no term matches: nodeAffinity of the pod',
    pods: [web('w0', 'c0', { nodeAffinity: required([GPU], [ZONE_A]) })],
    want: [t('w0', 'nodeAffinity')],
  },
  {
    name: 'required node affinity one of the ORed terms matches: nothing',
    pods: [web('w0', 'a1', { nodeAffinity: required([GPU], [ZONE_A]) })],
    want: [],
  },
  {
    name: 'matchFields metadata.name NotIn the node: nodeAffinity',
    pods: [
      web('w0', 'a0', {
        nodeAffinity: {
          [REQUIRED]: {
            nodeSelectorTerms: [
              { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['a0'] }] },
            ],
          },
        },
      }),
    ],
    want: [t('w0', 'nodeAffinity')],
  },
  {
    name: 'policy requirement not yet injected: the policy is broken, not the pod',
    pods: [web('w0', 'a1')],
    policies: [gpuPolicy],
    want: [t('w0', 'nodeAffinity', POLICY)],
  },
  {
    name: 'policy requirement injected into the pod: reported once, as the policy',
    pods: [web('w0', 'c0', { nodeAffinity: required([GPU]) })],
    policies: [gpuPolicy],
    want: [t('w0', 'nodeAffinity', POLICY)],
  },
  {
    name: 'own term broken, injected requirement met: the pod',
    pods: [web('w0', 'b0', { nodeAffinity: required([ZONE_A, GPU]) })],
    policies: [gpuPolicy],
    want: [t('w0', 'nodeAffinity')],
  },
  {
    name: 'own term and injected requirement both broken: one each',
    pods: [web('w0', 'c0', { nodeAffinity: required([ZONE_A, GPU]) })],
    policies: [gpuPolicy],
    want: [t('w0', 'nodeAffinity'), t('w0', 'nodeAffinity', POLICY)],
  },
  {
    name: 'zones a:3 b:1 c:1, maxSkew 1: one excess pod in zone a',
    pods: [
      web('w0', 'a0', { spread: [zoneSpread()] }),
      web('w1', 'a0', { spread: [zoneSpread()] }),
      web('w2', 'a1', { spread: [zoneSpread()] }),
      web('w3', 'b0', { spread: [zoneSpread()] }),
      web('w4', 'c0', { spread: [zoneSpread()] }),
    ],
    want: [t('w2', 'topologySpread')],
  },
  {
    name: 'zones a:3 b:1, maxSkew 2: within the skew (c empty makes the minimum 0: a is over by 1)',
    pods: [
      web('w0', 'a0', { spread: [zoneSpread(2)] }),
      web('w1', 'a0', { spread: [zoneSpread(2)] }),
      web('w2', 'a1', { spread: [zoneSpread(2)] }),
      web('w3', 'b0', { spread: [zoneSpread(2)] }),
    ],
    want: [t('w2', 'topologySpread')],
  },
  {
    name: 'ScheduleAnyway over the skew: a score, no violation',
    pods: [
      web('w0', 'a0', { spread: [{ ...zoneSpread(), whenUnsatisfiable: 'ScheduleAnyway' }] }),
      web('w1', 'a1', { spread: [{ ...zoneSpread(), whenUnsatisfiable: 'ScheduleAnyway' }] }),
    ],
    want: [],
  },
];

/** The audit of pods on NODES, which must be valid input. */
function auditOf(pods: readonly Pod[], policies: readonly PlacementPolicy[] = []): AuditReport {
  const result = auditSnapshot(
    snapshotOf({ nodes: NODES, namespaces: [namespace('default')], pods, policies }),
  );
  if (result.kind === 'invalid') throw new Error(result.errors.join('; '));
  return result.report;
}

for (const c of CASES) {
  void test(`audit: ${c.name}`, () => {
    assert.deepEqual(tuplesOf(auditOf(c.pods, c.policies).violations), sortTuples(c.want));
  });
}

void test('topologySpread names the domain, how far over, and the excess pods', () => {
  const pods = ['a0', 'a0', 'a1', 'b0', 'c0'].map((nd, i) =>
    web(`w${i}`, nd, { spread: [zoneSpread()] }),
  );
  const found = judgeNodeAndSpread({
    nodes: NODES,
    pods,
    policiesOf: () => ({ targeting: [], exempt: [] }),
  });
  const [v] = found.violations;
  assert.ok(v !== undefined);
  assert.equal(v.domain, `${ZONE}=a`);
  assert.equal(v.over, 1);
  assert.deepEqual(v.excess, ['default/w2']);
  assert.match(v.message, /domain a holds 3 matching pods, the least-loaded 1, maxSkew 1: 1 over/);
  // Somewhere better: a node of a zone below the skew, not one of the over zone.
  const facts = new Map(NODES.map((x) => [x.metadata.name, nodeFacts(x)]));
  const accepts = (name: string) =>
    found.accepts('default/w2', facts.get(name) ?? nodeFacts(node(name)));
  assert.equal(accepts('a0'), false);
  assert.equal(accepts('b0'), true);
  assert.equal(accepts('c0'), true);
});

void test('node rules: only nodes that meet the pod and its policies are somewhere better', () => {
  const pods = [
    web('w0', 'c0', {
      nodeAffinity: required([ZONE_A, GPU], [{ key: ZONE, operator: 'In', values: ['b'] }]),
    }),
  ];
  const found = judgeNodeAndSpread({
    nodes: NODES,
    pods,
    policiesOf: () => ({ targeting: [], exempt: [] }),
  });
  const ok = NODES.filter((x) => found.accepts('default/w0', nodeFacts(x))).map(
    (x) => x.metadata.name,
  );
  assert.deepEqual(ok, ['a0', 'b0']);
});

void test('preferred node affinity: the weight of the terms the node matches', () => {
  const pods = [
    web('w0', 'a1', {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 30, preference: { matchExpressions: [GPU] } },
          { weight: 20, preference: { matchExpressions: [ZONE_A] } },
        ],
      },
    }),
  ];
  assert.deepEqual(auditOf(pods).preferred.get('default/w0'), {
    score: 20,
    satisfiedWeight: 20,
    totalWeight: 50,
  });
});

void test('a pod with an unreadable spread constraint: one line naming the pod and the field', () => {
  const bad = web('w0', 'a0', { spread: [{ ...zoneSpread(), maxSkew: 0 }] });
  const result = auditSnapshot(
    snapshotOf({ nodes: NODES, namespaces: [namespace('default')], pods: [bad] }),
  );
  const errors = result.kind === 'invalid' ? result.errors : [];
  assert.equal(errors.length, 1);
  assert.match(
    errors[0]?.message ?? '',
    /^Pod default\/w0: spec\.topologySpreadConstraints\[0\]\.maxSkew: 0 is not an integer/,
  );
});

void test("topologySpread: a constraint a policy's spreadAcross wrote is judged as the policy's", () => {
  const zones = clusterPolicy('zones', {
    spreadAcross: [
      { topologyKey: HOSTNAME, mode: 'Preferred' },
      { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' },
    ],
  });
  // What the policy writes: the workload's own selector, maxSkew 1, DoNotSchedule.
  const injected = zoneSpread();
  const own: TopologySpreadConstraint = { ...zoneSpread(2), topologyKey: HOSTNAME };
  const pods = ['a0', 'a0', 'a1', 'b0', 'c0'].map((nd, i) =>
    web(`w${i}`, nd, { spread: [own, injected] }),
  );
  const [v, ...rest] = auditOf(pods, [zones]).violations;
  assert.deepEqual(rest, []);
  assert.ok(v !== undefined);
  assert.equal(v.rule, 'topologySpread');
  assert.equal(v.source, 'ClusterPlacementPolicy/zones');
  assert.equal(v.term, 1);
  assert.equal(v.domain, `${ZONE}=a`);
  assert.deepEqual(v.excess, ['default/w2']);
  assert.match(v.message, /^spec\.spreadAcross\[1\]: the pod's topologySpreadConstraints\[1\]/);
  // Without the policy the same constraint is the pod's own.
  const [alone] = auditOf(pods).violations;
  assert.ok(alone !== undefined);
  assert.equal(alone.source, 'pod');
  assert.equal(alone.term, 1);
  assert.match(alone.message, /^spec\.topologySpreadConstraints\[1\]/);
});

void test('ScheduleAnyway constraints: scored with the preferred terms, never a violation', () => {
  const soft = { ...zoneSpread(), whenUnsatisfiable: 'ScheduleAnyway' as const };
  const onHost = { ...soft, topologyKey: HOSTNAME };
  // Zones a:3 b:1 c:0: a is 2 over min 0 + maxSkew 1, b within; hosts a0:2 is 1 over.
  const pods = ['a0', 'a0', 'a1', 'b0'].map((nd, i) =>
    web(`w${i}`, nd, {
      spread: [soft, onHost],
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 10, preference: { matchExpressions: [GPU] } },
        ],
      },
    }),
  );
  const report = auditOf(pods);
  assert.deepEqual(report.violations, []);
  assert.deepEqual(report.preferred.get('default/w0'), {
    score: 10,
    satisfiedWeight: 10,
    totalWeight: 10,
    spread: { satisfied: 0, total: 2, excess: 3 },
  });
  assert.deepEqual(report.preferred.get('default/w3')?.spread, {
    satisfied: 2,
    total: 2,
    excess: 0,
  });
  // Without preferred node terms the spread score alone is reported.
  const bare = auditOf(pods.map((p) => ({ ...p, spec: { ...p.spec, affinity: {} } })));
  assert.deepEqual(bare.violations, []);
  assert.deepEqual(bare.preferred.get('default/w2'), {
    score: 0,
    satisfiedWeight: 0,
    totalWeight: 0,
    spread: { satisfied: 1, total: 2, excess: 2 },
  });
});

void test("a pod's own requirement is named by its place in the pod's term, the policy's taken out", () => {
  const POOL_SET = { key: 'pool', operator: 'Exists' } as const;
  const HOST_A1 = { key: HOSTNAME, operator: 'In', values: ['a1'] } as const;
  // The policy's requirement comes first in every term: the pod's own follow it.
  const pods = [
    web('w0', 'b0', { nodeAffinity: required([GPU, POOL_SET, HOST_A1], [GPU, ZONE_A]) }),
    web('w1', 'a0', { nodeAffinity: required([GPU, ZONE_A]) }),
  ];
  const field = `spec.affinity.nodeAffinity.${REQUIRED}`;
  assert.deepEqual(
    auditOf(pods, [gpuPolicy]).violations.map((v) => [v.pod, v.source, v.message]),
    [
      [
        'default/w0',
        'pod',
        `${field}: required node affinity: node b0 matches no term: ` +
          `nodeSelectorTerms[0].matchExpressions[2] (${HOSTNAME} In [a1]): node label is "b0"; ` +
          `nodeSelectorTerms[1].matchExpressions[1] (${ZONE} In [a]): node label is "b"`,
      ],
    ],
  );
});

void test('passes sharing compiled rules: a list changed in place judges the new pods, an unreadable pod every time', () => {
  const compiled = new SpreadPodCache();
  const policiesOf = (): PodPolicies => ({ targeting: [], exempt: [] });
  const pass = (pods: readonly Pod[], cache = compiled) =>
    judgeNodeAndSpread({ nodes: NODES, pods, policiesOf, compiled: cache });
  const bad = web('w9', 'c0', { spread: [{ ...zoneSpread(), maxSkew: 0 }] });
  const before = ['a0', 'b0', 'c0'].map((nd, i) => web(`w${i}`, nd, { spread: [zoneSpread()] }));
  // The same list again, then one whose places hold other Pod objects: w1 moved to zone a
  // (now the excess), w2 gone, the unreadable pod in its place.
  const after = [before[0] as Pod, web('w1', 'a1', { spread: [zoneSpread()] }), bad];
  for (const pods of [before, before, after, after]) {
    const kept = pass(pods);
    const fresh = pass(pods, new SpreadPodCache());
    assert.deepEqual(kept.violations, fresh.violations);
    assert.deepEqual([...kept.preferred], [...fresh.preferred]);
    assert.deepEqual(
      kept.problems.map((e) => e.message),
      fresh.problems.map((e) => e.message),
    );
  }
  const last = pass(after);
  assert.deepEqual(
    last.violations.map((v) => v.pod),
    ['default/w1'],
  );
  assert.equal(last.problems.length, 1);
  assert.match(last.problems[0]?.message ?? '', /default\/w9.*maxSkew/);
});
