// `why` on the seed scenario of test/fixtures/plan (checkout and checkout-redis on four
// nodes in two zones, with the two checkout policies): a case per rule kind for a pod that
// is not bound, violations of bound pods with the pods involved, and who put a fine pod's
// rules there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { Node, Pod, TopologySpreadConstraint } from '../../../src/api/core.ts';
import { APPLIED_ANNOTATION } from '../../../src/api/cluster.ts';
import { parseList, parsePolicies } from '../../../src/cli/input.ts';
import { auditSnapshot, type ClusterSnapshot } from '../../../src/engine/index.ts';
import { explainPod, type Explanation } from '../../../src/engine/explain.ts';
import { HOSTNAME, labelsIn, pod, replicaSetOwner, term, ZONE } from '../builders.ts';

const PLAN = fileURLToPath(new URL('../../fixtures/plan/', import.meta.url));
const SEED = parseList(readFileSync(`${PLAN}seed.yaml`), 'seed.yaml');
const POLICIES = parsePolicies(readFileSync(`${PLAN}seed-policies.yaml`, 'utf8'), 'policies');

const REDIS_RS = 'checkout-redis-585b5d75c';
/** The seed's pods (checkout on nodes 0 and 3; checkout-redis on 0, 2 and 3). */
const REDIS_ON = {
  'local-node-0': 'shop/checkout-redis-585b5d75c-47zwz',
  'local-node-2': 'shop/checkout-redis-585b5d75c-gdm66',
  'local-node-3': 'shop/checkout-redis-585b5d75c-5f788',
};

interface Seed {
  readonly policies?: boolean;
  readonly pods?: readonly Pod[];
  readonly node?: (n: Node) => Node;
  readonly workloads?: ClusterSnapshot['workloads'];
}

function seed(s: Seed = {}): ClusterSnapshot {
  return {
    ...SEED,
    nodes: SEED.nodes.map(s.node ?? ((n) => n)),
    pods: [...SEED.pods, ...(s.pods ?? [])],
    policies: s.policies === false ? [] : POLICIES,
    workloads: s.workloads ?? SEED.workloads,
  };
}

function explain(snapshot: ClusterSnapshot, name: string, ns = 'shop'): Explanation {
  const r = explainPod(snapshot, ns, name);
  if (r.kind !== 'ok') assert.fail(r.message);
  return r.explanation;
}

const withSpec = (p: Pod, spec: Partial<Pod['spec']>): Pod => ({
  ...p,
  spec: { ...p.spec, ...spec },
});
const redis = (name: string, node?: string): Pod =>
  pod(name, {
    ns: 'shop',
    labels: { app: 'checkout-redis', 'pod-template-hash': '585b5d75c' },
    owner: replicaSetOwner(REDIS_RS),
    ...(node === undefined ? {} : { node }),
  });
const web = (name: string, o: { node?: string; spec?: Partial<Pod['spec']> } = {}): Pod =>
  withSpec(
    pod(name, {
      ns: 'shop',
      labels: { app: 'web' },
      ...(o.node === undefined ? {} : { node: o.node }),
    }),
    o.spec ?? {},
  );
const spreadByZone: TopologySpreadConstraint = {
  maxSkew: 1,
  topologyKey: ZONE,
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: labelsIn({ app: 'web' }),
};
/** The seed's workloads, with `record` as checkout-redis's `placement.dev/applied` annotation. */
const withRecord = (record: object): ClusterSnapshot['workloads'] =>
  SEED.workloads.map((w) =>
    w.kind === 'Deployment' && w.metadata.name === 'checkout-redis'
      ? {
          ...w,
          metadata: {
            ...w.metadata,
            annotations: { [APPLIED_ANNOTATION]: JSON.stringify(record) },
          },
        }
      : w,
  );
const ruled = (e: Explanation, rule: string) =>
  e.ruledOut.filter((r) => r.rule === rule).map((r) => ({ source: r.source, nodes: r.nodes }));

/**
 * A PlacementPolicy `shop/redis-rules` on checkout-redis: a zone spread (TopologySpread), a
 * node requirement (one matchExpression), and `more` (YAML under nodeAffinity).
 */
const redisRules = (
  mode: 'Required' | 'Preferred',
  requirement: string,
  more = '',
): ClusterSnapshot['policies'] =>
  parsePolicies(
    `apiVersion: placement.dev/v1alpha1
kind: PlacementPolicy
metadata: {name: redis-rules, namespace: shop}
spec:
  targets: {selector: {matchLabels: {app: checkout-redis}}}
  spreadAcross:
    - {topologyKey: ${ZONE}, mode: ${mode}, constraint: TopologySpread}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [${requirement}]
${more}`,
    'redis-rules',
  );
const REDIS_RULES = 'PlacementPolicy/shop/redis-rules';
/** The constraint redis-rules' `spreadAcross[0]` writes into checkout-redis's template. */
const redisZoneSpread = (mode: 'DoNotSchedule' | 'ScheduleAnyway'): TopologySpreadConstraint => ({
  maxSkew: 1,
  topologyKey: ZONE,
  whenUnsatisfiable: mode,
  labelSelector: labelsIn({ app: 'checkout-redis' }),
});

void describe('why, for a pod no node takes', () => {
  void test('checkout-redis: its policy affinity rules out the nodes without checkout, its spread the nodes with checkout-redis', () => {
    const e = explain(
      seed({ pods: [redis('checkout-redis-585b5d75c-new')] }),
      'checkout-redis-585b5d75c-new',
    );
    assert.equal(e.status, 'unschedulable');
    assert.equal(e.workload, 'Deployment/shop/checkout-redis');
    assert.deepEqual(ruled(e, 'podAffinity'), [
      {
        source: 'PlacementPolicy/shop/checkout-redis-with-checkout',
        nodes: ['local-node-1', 'local-node-2'],
      },
    ]);
    const anti = e.ruledOut.find((r) => r.rule === 'podAntiAffinity');
    assert.equal(anti?.field, 'spec.spreadAcross[0]');
    assert.deepEqual(anti.nodes, ['local-node-0', 'local-node-2', 'local-node-3']);
    assert.deepEqual(
      anti.pods.map((p) => [p.pod, p.domain]),
      Object.entries(REDIS_ON)
        .map(([n, p]) => [p, `${HOSTNAME}=${n}`])
        .sort(),
    );
    assert.deepEqual(e.schedulerReasons, [
      { reason: "node(s) didn't match pod affinity rules", nodes: 2 },
      { reason: "node(s) didn't match pod anti-affinity rules", nodes: 2 },
    ]);
    // One pod moved opens a node that runs checkout; so does a checkout pod where none runs.
    assert.deepEqual(
      e.changes.map((c) => [c.change, c.node, c.cost]),
      [
        [`move pod ${REDIS_ON['local-node-0']} out of ${HOSTNAME}=local-node-0`, 'local-node-0', 1],
        [`move pod ${REDIS_ON['local-node-3']} out of ${HOSTNAME}=local-node-3`, 'local-node-3', 1],
        [`run a pod matching app=checkout in ${HOSTNAME}=local-node-1`, 'local-node-1', 1],
        [
          `run a pod matching app=checkout in ${HOSTNAME}=local-node-2 and move pod ${REDIS_ON['local-node-2']} out of ${HOSTNAME}=local-node-2`,
          'local-node-2',
          2,
        ],
      ],
    );
  });

  void test('nodeSelector: every node lacks the label; labelling one opens it', () => {
    const p = web('gpu-job', { spec: { nodeSelector: { pool: 'gpu' } } });
    const e = explain(seed({ pods: [p] }), 'gpu-job');
    assert.equal(e.status, 'unschedulable');
    assert.deepEqual(ruled(e, 'nodeSelector'), [
      { source: 'pod', nodes: ['local-node-0', 'local-node-1', 'local-node-2', 'local-node-3'] },
    ]);
    assert.equal(e.changes[0]?.change, 'label node local-node-0 pool=gpu');
    assert.deepEqual(e.schedulerReasons, [
      { reason: "node(s) didn't match Pod's node affinity/selector", nodes: 4 },
    ]);
  });

  void test('nodeAffinity: a zone no node is in; the cheapest term is the one to meet', () => {
    const p = web('zone-c', {
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: ZONE, operator: 'In', values: ['zone-c'] },
                    { key: 'pool', operator: 'Exists' },
                  ],
                },
                { matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] },
              ],
            },
          },
        },
      },
    });
    const e = explain(seed({ pods: [p] }), 'zone-c');
    assert.equal(ruled(e, 'nodeAffinity')[0]?.nodes.length, 4);
    assert.match(e.ruledOut[0]?.message ?? '', /matches no term: nodeSelectorTerms\[0\]/);
    assert.equal(e.changes[0]?.change, 'label node local-node-0 pool=gpu');
  });

  void test('taints and a cordon: each node named with its own rule, and each lifted alone', () => {
    const p = web('b-only', { spec: { nodeSelector: { [ZONE]: 'zone-b' } } });
    const snapshot = seed({
      pods: [p],
      node: (n) =>
        n.metadata.name === 'local-node-1'
          ? {
              ...n,
              spec: {
                unschedulable: true,
                taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }],
              },
            }
          : n.metadata.name === 'local-node-3'
            ? { ...n, spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] } }
            : n,
    });
    const e = explain(snapshot, 'b-only');
    assert.deepEqual(ruled(e, 'nodeUnschedulable'), [{ source: 'node', nodes: ['local-node-1'] }]);
    assert.deepEqual(ruled(e, 'taint'), [{ source: 'node', nodes: ['local-node-3'] }]);
    assert.deepEqual(
      e.changes.map((c) => c.change),
      [
        // Of one size, the change that reaches least first: no workload, no other pod's node.
        'uncordon node local-node-1',
        'remove taint dedicated=db:NoSchedule from node local-node-3 (or tolerate it)',
        `label node local-node-0 ${ZONE}=zone-b`,
        `label node local-node-2 ${ZONE}=zone-b`,
      ],
    );
    assert.deepEqual(e.schedulerReasons.map((r) => r.reason).sort(), [
      "node(s) didn't match Pod's node affinity/selector",
      'node(s) had untolerated taint {dedicated: db}',
      'node(s) were unschedulable',
    ]);
  });

  void test('symmetric anti-affinity: the pods whose terms forbid it are named, and a new zone would take it', () => {
    const guard = (name: string, node: string): Pod =>
      pod(name, {
        ns: 'shop',
        labels: { app: 'guard' },
        node,
        anti: [term(labelsIn({ app: 'web' }), ZONE)],
      });
    const snapshot = seed({
      pods: [guard('guard-a', 'local-node-0'), guard('guard-b', 'local-node-1'), web('web-0')],
    });
    const e = explain(snapshot, 'web-0');
    const sym = e.ruledOut.find((r) => r.rule === 'symmetricAntiAffinity');
    assert.equal(sym?.nodes.length, 4);
    assert.deepEqual(
      sym.pods.map((p) => [p.pod, p.domain]),
      [
        ['shop/guard-a', `${ZONE}=zone-a`],
        ['shop/guard-b', `${ZONE}=zone-b`],
      ],
    );
    assert.deepEqual(
      e.changes.map((c) => [c.change, c.node, c.cost]),
      [
        // One change opens the whole zone: listed once.
        [`move pod shop/guard-a out of ${ZONE}=zone-a`, 'local-node-0', 1],
        [`move pod shop/guard-b out of ${ZONE}=zone-b`, 'local-node-1', 1],
        [`add a node like local-node-0 in a ${ZONE} other than zone-a, zone-b`, 'new', 1],
      ],
    );
  });

  void test('topology spread: the crowded zone refuses it, the other is cordoned', () => {
    const snapshot = seed({
      pods: [
        web('web-a0', {
          node: 'local-node-0',
          spec: { topologySpreadConstraints: [spreadByZone] },
        }),
        web('web-a1', {
          node: 'local-node-2',
          spec: { topologySpreadConstraints: [spreadByZone] },
        }),
        web('web-new', { spec: { topologySpreadConstraints: [spreadByZone] } }),
      ],
      node: (n) =>
        n.metadata.labels?.[ZONE] === 'zone-b' ? { ...n, spec: { unschedulable: true } } : n,
    });
    const e = explain(snapshot, 'web-new');
    const spread = e.ruledOut.find((r) => r.rule === 'topologySpread');
    assert.deepEqual(spread?.nodes, ['local-node-0', 'local-node-2']);
    assert.deepEqual(
      spread.pods.map((p) => p.pod),
      ['shop/web-a0', 'shop/web-a1'],
    );
    assert.deepEqual(
      e.changes.map((c) => [c.change, c.cost]),
      [
        ['uncordon node local-node-1', 1],
        ['uncordon node local-node-3', 1],
        // A zone of its own would hold no web pod: skew 1.
        [`add a node like local-node-0 in a ${ZONE} other than zone-a, zone-b`, 1],
        [`move 2 matching pod(s) out of ${ZONE}=zone-a (of shop/web-a0, shop/web-a1)`, 2],
      ],
    );
  });

  void test('a pod its rules admit somewhere is schedulable, with no change offered', () => {
    const e = explain(seed({ pods: [web('free')] }), 'free');
    assert.equal(e.status, 'schedulable');
    assert.deepEqual(e.changes, []);
    assert.ok(e.nodes.every((n) => n.blocks.length === 0));
  });

  void test("a Pending pod: the spread constraint a policy wrote rules nodes out as the policy's", () => {
    const policy = redisRules('Required', `{key: ${ZONE}, operator: Exists}`);
    // zone-a holds redis on nodes 0 and 2, zone-b on node 3: a third in zone-a is 2 over.
    const pending = withSpec(redis('checkout-redis-585b5d75c-next'), {
      topologySpreadConstraints: [redisZoneSpread('DoNotSchedule')],
    });
    const snapshot = { ...seed({ pods: [pending] }), policies: [...POLICIES, ...policy] };
    const e = explain(snapshot, 'checkout-redis-585b5d75c-next');
    assert.deepEqual(
      e.ruledOut
        .filter((r) => r.rule === 'topologySpread')
        .map((r) => [r.source, r.field, r.nodes]),
      [[REDIS_RULES, 'spec.spreadAcross[0]', ['local-node-0', 'local-node-2']]],
    );
  });
});

void describe('why, for a bound pod', () => {
  void test("a policy's spread constraint and node requirement are named as the policy's", () => {
    const policy = redisRules('Required', '{key: pool, operator: In, values: [fast]}');
    // zone-a holds redis on nodes 0 and 2; one more there, carrying the policy's constraint,
    // is the excess (3 against zone-b's 1); no node is in pool fast.
    const extra = withSpec(redis('checkout-redis-585b5d75c-extra', 'local-node-0'), {
      topologySpreadConstraints: [redisZoneSpread('DoNotSchedule')],
    });
    const snapshot = { ...seed({ pods: [extra] }), policies: [...POLICIES, ...policy] };
    const e = explain(snapshot, 'checkout-redis-585b5d75c-extra');
    assert.equal(e.status, 'violating');
    const mine = e.violations.filter(
      (v) => v.rule === 'topologySpread' || v.rule === 'nodeAffinity',
    );
    assert.deepEqual(
      mine.map((v) => [v.rule, v.source, v.field, v.domain ?? null]),
      [
        [
          'nodeAffinity',
          REDIS_RULES,
          'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]',
          null,
        ],
        ['topologySpread', REDIS_RULES, 'spec.spreadAcross[0]', `${ZONE}=zone-a`],
      ],
    );
    assert.deepEqual(
      mine[1]?.pods.map((p) => p.pod),
      ['shop/checkout-redis-585b5d75c-extra'],
    );
    // The same sources and messages as the audit reports for the pod.
    const audit = auditSnapshot(snapshot);
    assert.equal(audit.kind, 'ok');
    const reported = audit.report.violations.filter(
      (v) =>
        v.pod === 'shop/checkout-redis-585b5d75c-extra' &&
        (v.rule === 'topologySpread' || v.rule === 'nodeAffinity'),
    );
    assert.deepEqual(
      mine.map((v) => [v.rule, v.source, v.message]),
      reported.map((v) => [v.rule, v.source, v.message]),
    );
  });

  void test('anti-affinity: the pod it breaks with is named with the domain', () => {
    const extra = redis('checkout-redis-585b5d75c-twin', 'local-node-0');
    const e = explain(seed({ pods: [extra] }), 'checkout-redis-585b5d75c-twin');
    assert.equal(e.status, 'violating');
    const v = e.violations.find((x) => x.rule === 'podAntiAffinity');
    assert.equal(v?.source, 'PlacementPolicy/shop/checkout-redis-with-checkout');
    assert.equal(v.domain, `${HOSTNAME}=local-node-0`);
    assert.deepEqual(
      v.pods.map((p) => p.pod),
      [REDIS_ON['local-node-0']],
    );
  });

  void test('symmetric anti-affinity: the carrier is named', () => {
    const guard = pod('guard', {
      ns: 'shop',
      labels: { app: 'guard' },
      node: 'local-node-1',
      anti: [term(labelsIn({ app: 'web' }), ZONE)],
    });
    const e = explain(seed({ pods: [guard, web('web-b', { node: 'local-node-3' })] }), 'web-b');
    assert.deepEqual(
      e.violations.map((v) => [v.rule, v.domain, v.pods.map((p) => p.pod)]),
      [['symmetricAntiAffinity', `${ZONE}=zone-b`, ['shop/guard']]],
    );
  });

  void test('nodeSelector drift: a node relabelled out of the pool its pod needs', () => {
    const p = web('gpu-0', { node: 'local-node-1', spec: { nodeSelector: { pool: 'gpu' } } });
    const e = explain(seed({ pods: [p] }), 'gpu-0');
    assert.deepEqual(
      e.violations.map((v) => [v.rule, v.message]),
      [['nodeSelector', 'spec.nodeSelector pool=gpu: node local-node-1 has none']],
    );
  });

  void test('nodeAffinity drift', () => {
    const p = web('zoned', {
      node: 'local-node-1',
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: ZONE, operator: 'In', values: ['zone-a'] }] },
              ],
            },
          },
        },
      },
    });
    const e = explain(seed({ pods: [p] }), 'zoned');
    assert.deepEqual(
      e.violations.map((v) => v.rule),
      ['nodeAffinity'],
    );
  });

  void test('topology spread drift: the excess pods of the over domain are named', () => {
    const spec = { topologySpreadConstraints: [spreadByZone] };
    const pods = ['local-node-0', 'local-node-2', 'local-node-0'].map((n, i) =>
      web(`web-${i}`, { node: n, spec }),
    );
    const snapshot = seed({ pods: [...pods, web('web-b', { node: 'local-node-1', spec })] });
    // zone-a holds 3, zone-b 1: one over; the excess is chosen from the last key.
    const e = explain(snapshot, 'web-2');
    assert.deepEqual(
      e.violations.map((v) => [v.rule, v.domain, v.pods.map((p) => p.pod)]),
      [['topologySpread', `${ZONE}=zone-a`, ['shop/web-2']]],
    );
    assert.equal(explain(snapshot, 'web-0').status, 'fine');
  });
});

void describe('why, for a pod that is fine: its rules and who put them there', () => {
  void test('policy terms: injected per the record, or judged only', () => {
    const deployments = withRecord({
      policies: { 'PlacementPolicy/shop/checkout-redis-with-checkout': 3 },
      slots: {},
      created: [],
    });
    const snapshot = seed({ workloads: deployments });
    const e = explain(snapshot, REDIS_ON['local-node-0'].slice('shop/'.length));
    assert.equal(e.status, 'fine');
    assert.deepEqual(
      e.rules.map((r) => [r.rule, r.field, r.putBy]),
      [
        [
          'podAffinity',
          'spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]',
          'PlacementPolicy/shop/checkout-redis-with-checkout (injected into Deployment/shop/checkout-redis, policy generation 3)',
        ],
        [
          'podAntiAffinity',
          'spec.spreadAcross[0]',
          'PlacementPolicy/shop/checkout-redis-with-checkout (injected into Deployment/shop/checkout-redis, policy generation 3)',
        ],
      ],
    );
    const checkout = explain(snapshot, SEED.pods[0]?.metadata.name ?? '');
    assert.deepEqual(
      checkout.rules.map((r) => r.putBy),
      ['PlacementPolicy/shop/checkout-one-per-node (not in the template: judged by the policy)'],
    );
  });

  void test("the owner's own terms, and a recorded term whose policy is gone", () => {
    const own = term(labelsIn({ app: 'checkout' }), ZONE);
    const injected = term(labelsIn({ app: 'checkout-redis' }), HOSTNAME);
    const p = withSpec(redis('checkout-redis-585b5d75c-own', 'local-node-1'), {
      affinity: {
        podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [own] },
        podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [injected] },
      },
    });
    const workloads = withRecord({
      policies: { 'ClusterPlacementPolicy/gone': 1 },
      slots: { 'podAntiAffinity.required': [injected] },
      created: [],
    });
    const e = explain(
      seed({ policies: false, pods: [p], workloads }),
      'checkout-redis-585b5d75c-own',
    );
    assert.deepEqual(
      e.rules.map((r) => [r.rule, r.putBy]),
      [
        ['podAffinity', 'its owner Deployment/shop/checkout-redis'],
        [
          'podAntiAffinity',
          `injected into Deployment/shop/checkout-redis for ClusterPlacementPolicy/gone (its ${APPLIED_ANNOTATION} record)`,
        ],
      ],
    );
  });

  void test("a policy's spread constraint and node rules are the policy's", () => {
    const policy = redisRules(
      'Preferred',
      `{key: ${ZONE}, operator: In, values: [zone-a, zone-b]}`,
      `      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 10
          preference: {matchExpressions: [{key: ${ZONE}, operator: In, values: [zone-a]}]}`,
    );
    const name = REDIS_ON['local-node-0'].slice('shop/'.length);
    // The pod carries the policy's constraint and its own hostname one.
    const own = { ...redisZoneSpread('ScheduleAnyway'), topologyKey: HOSTNAME };
    const base = seed({
      workloads: withRecord({ policies: { [REDIS_RULES]: 4 }, slots: {}, created: [] }),
    });
    const snapshot = {
      ...base,
      pods: base.pods.map((p) =>
        p.metadata.name === name
          ? withSpec(p, {
              topologySpreadConstraints: [own, redisZoneSpread('ScheduleAnyway')],
            })
          : p,
      ),
      policies: [...POLICIES, ...policy],
    };
    const e = explain(snapshot, name);
    assert.equal(e.status, 'fine');
    const injected = `${REDIS_RULES} (injected into Deployment/shop/checkout-redis, policy generation 4)`;
    assert.deepEqual(
      e.rules
        .filter((r) => r.rule === 'nodeAffinity' || r.rule === 'topologySpread')
        .map((r) => [r.rule, r.required, r.source, r.field, r.putBy]),
      [
        [
          'nodeAffinity',
          true,
          REDIS_RULES,
          'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution',
          injected,
        ],
        [
          'nodeAffinity',
          false,
          REDIS_RULES,
          'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]',
          injected,
        ],
        [
          'topologySpread',
          false,
          'pod',
          'spec.topologySpreadConstraints[0]',
          'its owner Deployment/shop/checkout-redis',
        ],
        ['topologySpread', false, REDIS_RULES, 'spec.spreadAcross[0]', injected],
      ],
    );
  });

  void test("a spread constraint the record holds was injected; the others are the owner's", () => {
    const injected = {
      maxSkew: 1,
      topologyKey: ZONE,
      whenUnsatisfiable: 'ScheduleAnyway' as const,
      labelSelector: labelsIn({ app: 'checkout-redis' }),
    };
    const own = { ...injected, topologyKey: HOSTNAME };
    const p = withSpec(redis('checkout-redis-585b5d75c-sp', 'local-node-1'), {
      topologySpreadConstraints: [own, injected],
    });
    const workloads = withRecord({
      policies: { 'PlacementPolicy/shop/zones': 2 },
      slots: {},
      topologySpreadConstraints: [injected],
      created: [],
    });
    const e = explain(
      seed({ policies: false, pods: [p], workloads }),
      'checkout-redis-585b5d75c-sp',
    );
    assert.deepEqual(
      e.rules.filter((r) => r.rule === 'topologySpread').map((r) => [r.field, r.putBy]),
      [
        ['spec.topologySpreadConstraints[0]', 'its owner Deployment/shop/checkout-redis'],
        [
          'spec.topologySpreadConstraints[1]',
          `injected into Deployment/shop/checkout-redis for PlacementPolicy/shop/zones (its ${APPLIED_ANNOTATION} record)`,
        ],
      ],
    );
  });

  void test('a bound pod whose node is not in the input is not judged', () => {
    const e = explainPod(seed({ pods: [web('lost', { node: 'gone-node' })] }), 'shop', 'lost');
    assert.deepEqual(e, {
      kind: 'invalid',
      message: 'Pod shop/lost: spec.nodeName: node gone-node is not in the input',
    });
  });

  void test('a pod that is not there', () => {
    assert.deepEqual(explainPod(seed(), 'shop', 'nope'), {
      kind: 'notFound',
      message: 'pod shop/nope not found',
    });
  });
});
