// Property of the node and spread findings kept between passes: after any sequence of
// changes (pods with nodeSelector, node affinity and spread constraints added, deleted,
// relabelled, moved, being deleted; nodes relabelled, tainted, removed and added back;
// namespaces relabelled, which moves policy reach; the set of policies with node
// requirements changed), with passes in between, what IncrementalNodeSpread reports is what
// judgeNodeAndSpread finds from scratch: violations, preferred scores (node affinity's and
// the ScheduleAnyway spread constraints' `spread`), unreadable pods, and which nodes each pod
// is accepted on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type {
  Labels,
  Node,
  NodeAffinity,
  Pod,
  Taint,
  TopologySpreadConstraint,
} from '../../../src/api/core.ts';
import {
  compareViolations,
  IncrementalNodeSpread,
  judgeNodeAndSpread,
  ViolationsByPod,
  type CompiledPolicy,
  type NodeSpreadAudit,
  type NodeSpreadChanges,
  type NodeSpreadInput,
  type PodPolicies,
} from '../../../src/engine/index.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import { clusterPolicy } from '../builders.ts';
import { compiled, REQUIRED } from '../audit/world.ts';
import { HOSTNAME, ZONE } from './spread-world.ts';

const RUNS = Number(process.env['NODE_SPREAD_RUNS'] ?? 1000);
const NODE_NAMES = ['n0', 'n1', 'n2', 'n3', 'n4'] as const;
const POD_NAMES = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'] as const;
const NAMESPACES = ['ns-a', 'ns-b'] as const;
const TAINT: Taint = { key: 'dedicated', value: 'db', effect: 'NoSchedule' };
const GPU = { key: 'pool', operator: 'In', values: ['gpu'] };

/** Policies with node requirements; which pods they reach is decided by namespace labels. */
const POLICIES: readonly CompiledPolicy[] = [
  clusterPolicy('gpu-for-team-x', {
    mode: 'Audit',
    targets: { kinds: ['Pod'] },
    affinity: {
      nodeAffinity: { [REQUIRED]: { nodeSelectorTerms: [{ matchExpressions: [GPU] }] } },
    },
  }),
  clusterPolicy('prefer-zone-a', {
    mode: 'Audit',
    targets: { kinds: ['Pod'] },
    affinity: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 5,
            preference: { matchExpressions: [{ key: ZONE, operator: 'In', values: ['a'] }] },
          },
        ],
      },
    },
  }),
].map(compiled);

// ---------------------------------------------------------------- arbitraries

const nodeLabelsArb = fc.record({
  zone: fc.constantFrom('a', 'b', 'c', null),
  pool: fc.constantFrom('gpu', 'cpu', null),
});

const nodeOf = (
  name: string,
  l: { zone: string | null; pool: string | null },
  tainted: boolean,
): Node => ({
  metadata: {
    name,
    labels: {
      [HOSTNAME]: name,
      ...(l.zone === null ? {} : { [ZONE]: l.zone }),
      ...(l.pool === null ? {} : { pool: l.pool }),
    },
  },
  spec: { taints: tainted ? [TAINT] : [] },
});

const constraintArb: fc.Arbitrary<TopologySpreadConstraint> = fc
  .record({
    app: fc.constantFrom('a', 'b'),
    key: fc.constantFrom(ZONE, HOSTNAME),
    hard: fc.boolean(),
    maxSkew: fc.constantFrom(1, 1, 2, 0),
    minDomains: fc.constantFrom(undefined, 3),
    affinity: fc.constantFrom(undefined, 'Honor', 'Ignore'),
    taints: fc.constantFrom(undefined, 'Honor', 'Ignore'),
    labelKeys: fc.boolean(),
  })
  .map((c) => ({
    maxSkew: c.maxSkew,
    topologyKey: c.key,
    whenUnsatisfiable: c.hard ? 'DoNotSchedule' : 'ScheduleAnyway',
    labelSelector: { matchLabels: { app: c.app } },
    ...(c.minDomains === undefined || !c.hard ? {} : { minDomains: c.minDomains }),
    ...(c.affinity === undefined ? {} : { nodeAffinityPolicy: c.affinity }),
    ...(c.taints === undefined ? {} : { nodeTaintsPolicy: c.taints }),
    ...(c.labelKeys ? { matchLabelKeys: ['tier'] } : {}),
  }));

const podSpecArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  app: fc.constantFrom('a', 'b', null),
  tier: fc.constantFrom('x', 'y'),
  node: fc.constantFrom(...NODE_NAMES, 'gone'),
  constraints: fc.array(constraintArb, { maxLength: 2 }),
  nodeSelector: fc.constantFrom(null, 'gpu', 'cpu'),
  zoneAffinity: fc.boolean(),
  withGpuTerm: fc.boolean(),
  tolerates: fc.boolean(),
  terminating: fc.constantFrom(false, false, false, true),
});
type PodSpec = typeof podSpecArb extends fc.Arbitrary<infer T> ? T : never;

function podOf(name: string, s: PodSpec): Pod {
  const zone = { key: ZONE, operator: 'In', values: ['a', 'b'] };
  // withGpuTerm: the policy's requirement appears in the pod's term, as the operator injects it.
  const expressions = [...(s.zoneAffinity ? [zone] : []), ...(s.withGpuTerm ? [GPU] : [])];
  const nodeAffinity: NodeAffinity | undefined =
    expressions.length === 0
      ? undefined
      : { [REQUIRED]: { nodeSelectorTerms: [{ matchExpressions: expressions }] } };
  return {
    metadata: {
      name,
      namespace: s.namespace,
      labels: { tier: s.tier, ...(s.app === null ? {} : { app: s.app }) },
      ...(s.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      nodeName: s.node,
      ...(s.constraints.length > 0 ? { topologySpreadConstraints: s.constraints } : {}),
      ...(s.nodeSelector === null ? {} : { nodeSelector: { pool: s.nodeSelector } }),
      ...(nodeAffinity === undefined ? {} : { affinity: { nodeAffinity } }),
      ...(s.tolerates
        ? { tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] }
        : {}),
    },
  };
}

type Change =
  | { readonly kind: 'pod'; readonly name: string; readonly spec: PodSpec }
  | { readonly kind: 'deletePod'; readonly name: string }
  | { readonly kind: 'relabelPod'; readonly name: string; readonly app: 'a' | 'b' | null }
  | { readonly kind: 'movePod'; readonly name: string; readonly node: string }
  | {
      readonly kind: 'node';
      readonly name: string;
      readonly labels: { zone: string | null; pool: string | null };
    }
  | { readonly kind: 'taint'; readonly name: string; readonly tainted: boolean }
  | { readonly kind: 'deleteNode'; readonly name: string }
  | { readonly kind: 'namespace'; readonly name: string; readonly teamX: boolean }
  | { readonly kind: 'policies'; readonly chosen: readonly boolean[] }
  | { readonly kind: 'pass' }
  /** The kept findings forgotten, as after a full check that disagreed. */
  | { readonly kind: 'reset' };

const podName = fc.constantFrom(...POD_NAMES);
const nodeName = fc.constantFrom(...NODE_NAMES);
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('pod' as const), name: podName, spec: podSpecArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deletePod' as const), name: podName }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('relabelPod' as const),
      name: podName,
      app: fc.constantFrom('a' as const, 'b' as const, null),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('movePod' as const), name: podName, node: nodeName }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('node' as const),
      name: nodeName,
      labels: nodeLabelsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('taint' as const),
      name: nodeName,
      tainted: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteNode' as const), name: nodeName }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('namespace' as const),
      name: fc.constantFrom(...NAMESPACES),
      teamX: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('policies' as const),
      chosen: fc.array(fc.boolean(), { minLength: POLICIES.length, maxLength: POLICIES.length }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'pass' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

// ---------------------------------------------------------------- the world

const podKeyOf = (p: Pod): string => `${p.metadata.namespace}/${p.metadata.name}`;

/** Objects are replaced, never changed, as in an informer cache. */
class World {
  readonly nodes = new Map<string, Node>();
  readonly pods = new Map<string, Pod>();
  readonly teamX = new Set<string>();
  chosen: readonly boolean[] = POLICIES.map(() => true);
  /** What changed since the last `changes()`, as an informer would have told it. */
  private told = {
    pods: new Set<string>(),
    nodes: new Set<string>(),
    namespaces: new Set<string>(),
  };
  private policiesChanged = false;

  apply(c: Change): void {
    const podChange = ['pod', 'deletePod', 'relabelPod', 'movePod'].includes(c.kind);
    // Both keys: a pod of that name may move to another namespace.
    const pod = podChange && 'name' in c ? this.pods.get(c.name) : undefined;
    if (pod !== undefined) this.told.pods.add(podKeyOf(pod));
    this.change(c);
    const now = podChange && 'name' in c ? this.pods.get(c.name) : undefined;
    if (now !== undefined) this.told.pods.add(podKeyOf(now));
    if (c.kind === 'node' || c.kind === 'taint' || c.kind === 'deleteNode')
      this.told.nodes.add(c.name);
    if (c.kind === 'namespace') this.told.namespaces.add(c.name);
    if (c.kind === 'policies') this.policiesChanged = true;
  }

  /** What changed since the last call (see NodeSpreadChanges). */
  changes(): NodeSpreadChanges {
    const { pods, nodes, namespaces } = this.told;
    const all = this.policiesChanged;
    this.told = { pods: new Set(), nodes: new Set(), namespaces: new Set() };
    this.policiesChanged = false;
    const byKey = new Map([...this.pods.values()].map((p) => [podKeyOf(p), p]));
    return {
      pods,
      pod: (key) => byKey.get(key),
      nodes,
      node: (name) => this.nodes.get(name),
      namespaces: all ? 'all' : namespaces,
    };
  }

  private change(c: Change): void {
    switch (c.kind) {
      case 'pod':
        this.pods.set(c.name, podOf(c.name, c.spec));
        return;
      case 'deletePod':
        this.pods.delete(c.name);
        return;
      case 'relabelPod':
      case 'movePod': {
        const p = this.pods.get(c.name);
        if (p === undefined) return;
        if (c.kind === 'movePod')
          this.pods.set(c.name, { ...p, spec: { ...p.spec, nodeName: c.node } });
        else {
          const { app: _, ...rest } = p.metadata.labels ?? {};
          const labels: Labels = c.app === null ? rest : { ...rest, app: c.app };
          this.pods.set(c.name, { ...p, metadata: { ...p.metadata, labels } });
        }
        return;
      }
      case 'node': {
        const tainted = (this.nodes.get(c.name)?.spec?.taints ?? []).length > 0;
        this.nodes.set(c.name, nodeOf(c.name, c.labels, tainted));
        return;
      }
      case 'taint': {
        const n = this.nodes.get(c.name);
        if (n !== undefined)
          this.nodes.set(c.name, { ...n, spec: { taints: c.tainted ? [TAINT] : [] } });
        return;
      }
      case 'deleteNode':
        this.nodes.delete(c.name);
        return;
      case 'namespace':
        if (c.teamX) this.teamX.add(c.name);
        else this.teamX.delete(c.name);
        return;
      case 'policies':
        this.chosen = c.chosen;
        return;
      case 'pass':
      case 'reset':
        return;
    }
  }

  /** gpu-for-team-x reaches the pods of team-x namespaces; prefer-zone-a every pod of ns-b. */
  private policiesOf(pod: Pod): PodPolicies {
    const ns = pod.metadata.namespace;
    const targeting = POLICIES.filter(
      (_, i) => this.chosen[i] === true && (i === 0 ? this.teamX.has(ns) : ns === 'ns-b'),
    );
    return { targeting, exempt: [] };
  }

  input(): NodeSpreadInput {
    return {
      nodes: [...this.nodes.values()],
      pods: [...this.pods.values()],
      policiesOf: (pod) => this.policiesOf(pod),
    };
  }
}

/** What a finding says, in an order independent of how it was found. */
function normal(a: NodeSpreadAudit, nodes: readonly Node[], pods: readonly Pod[]) {
  const accepted: string[] = [];
  for (const pod of pods)
    for (const n of nodes) {
      const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
      if (a.accepts(key, nodeFacts(n))) accepted.push(`${key}@${n.metadata.name}`);
    }
  return {
    violations: [...a.violations].sort(compareViolations),
    preferred: [...a.preferred].sort(([x], [y]) => (x < y ? -1 : 1)),
    problems: a.problems.map((e) => e.message).sort(),
    accepted,
  };
}

const initialArb = fc.record({
  nodes: fc.array(fc.tuple(nodeLabelsArb, fc.boolean()), { minLength: 5, maxLength: 5 }),
  pods: fc.array(podSpecArb, { maxLength: POD_NAMES.length }),
  teamX: fc.subarray([...NAMESPACES]),
});

void test('node and spread findings kept between passes equal a judge from scratch', () => {
  fc.assert(
    fc.property(
      initialArb,
      fc.array(changeArb, { maxLength: 25 }),
      // A pass after every change too: a single change is judged on its own.
      fc.boolean(),
      // Passes told what changed (they look at nothing else), or comparing every object.
      fc.boolean(),
      (initial, changes, everyChange, told) => {
        const world = new World();
        initial.nodes.forEach(([l, t], i) => {
          const name = NODE_NAMES[i] ?? 'n0';
          world.nodes.set(name, nodeOf(name, l, t));
        });
        initial.pods.forEach((s, i) => {
          const name = POD_NAMES[i] ?? 'p0';
          world.pods.set(name, podOf(name, s));
        });
        for (const ns of initial.teamX) world.teamX.add(ns);
        const kept = new IncrementalNodeSpread();
        // What a reader of takeChanged keeps: the violations of the pods it is told of.
        const mirror = new ViolationsByPod();
        const check = (): void => {
          const input = world.input();
          const changed = world.changes();
          const got = normal(kept.pass(input, told ? changed : undefined), input.nodes, input.pods);
          const want = normal(judgeNodeAndSpread(input), input.nodes, input.pods);
          assert.deepEqual(got, want);
          const judged = kept.takeChanged();
          if (judged === null) mirror.setAll(want.violations);
          else for (const pod of judged.pods) mirror.set(pod, judged.violationsOf(pod));
          assert.deepEqual([...mirror.all()], want.violations, 'the pods judged again, told');
        };
        check();
        for (const c of changes) {
          world.apply(c);
          if (c.kind === 'reset') {
            // As a full check that disagreed: the reader takes a rebuild instead, now.
            kept.reset();
            assert.equal(kept.takeChanged(), null, 'after a reset, any pod may differ');
            mirror.setAll(judgeNodeAndSpread(world.input()).violations);
          }
          if (everyChange || c.kind === 'pass') check();
        }
        check();
      },
    ),
    { numRuns: RUNS },
  );
});

void test('a pass after one pod change judges only the pods that change can affect', () => {
  const nodes = NODE_NAMES.map((n, i) =>
    nodeOf(n, { zone: 'abc'[i % 3] ?? 'a', pool: 'cpu' }, false),
  );
  const spreadA: TopologySpreadConstraint = {
    maxSkew: 1,
    topologyKey: ZONE,
    whenUnsatisfiable: 'DoNotSchedule',
    labelSelector: { matchLabels: { app: 'a' } },
  };
  const pods = POD_NAMES.map((name, i) =>
    podOf(name, {
      namespace: 'ns-a',
      app: i < 5 ? 'a' : 'b',
      tier: 'x',
      node: NODE_NAMES[i % NODE_NAMES.length] ?? 'n0',
      constraints: i < 5 ? [spreadA] : [],
      nodeSelector: null,
      zoneAffinity: false,
      withGpuTerm: false,
      tolerates: false,
      terminating: false,
    }),
  );
  const kept = new IncrementalNodeSpread();
  const none = (): PodPolicies => ({ targeting: [], exempt: [] });
  kept.pass({ nodes, pods, policiesOf: none });
  assert.equal(kept.lastJudged, pods.length, 'the first pass judges every pod');
  kept.pass({ nodes, pods, policiesOf: none });
  assert.equal(kept.lastJudged, 0, 'nothing changed, nothing judged');
  // An app=b pod relabelled: no spread group selects it, so only it is judged again.
  const b = pods[7] as Pod;
  const changed = pods.map((p) =>
    p === b ? { ...b, metadata: { ...b.metadata, labels: { tier: 'y', app: 'b' } } } : p,
  );
  kept.pass({ nodes, pods: changed, policiesOf: none });
  assert.equal(kept.lastJudged, 1, 'the relabelled pod only');
  // An app=a pod moved: the five pods carrying the app=a constraint are judged again.
  const a = changed[0] as Pod;
  const moved = changed.map((p) => (p === a ? { ...a, spec: { ...a.spec, nodeName: 'n1' } } : p));
  kept.pass({ nodes, pods: moved, policiesOf: none });
  assert.equal(kept.lastJudged, 5, 'the pods of the app=a group');
});

void test('a ScheduleAnyway pod is scored again when another pod moves its group', () => {
  const none = (): PodPolicies => ({ targeting: [], exempt: [] });
  const nodes = [
    nodeOf('n0', { zone: 'a', pool: 'cpu' }, false),
    nodeOf('n1', { zone: 'b', pool: 'cpu' }, false),
  ];
  const base = {
    namespace: 'ns-a' as const,
    app: 'a' as const,
    tier: 'x' as const,
    nodeSelector: null,
    zoneAffinity: false,
    withGpuTerm: false,
    tolerates: false,
    terminating: false,
  };
  const soft: TopologySpreadConstraint = {
    maxSkew: 1,
    topologyKey: ZONE,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: { app: 'a' } },
  };
  // Zone a holds p0 and p1, zone b p2: within maxSkew. Only p0 carries the constraint.
  const pods = [
    podOf('p0', { ...base, node: 'n0', constraints: [soft] }),
    podOf('p1', { ...base, node: 'n0', constraints: [] }),
    podOf('p2', { ...base, node: 'n1', constraints: [] }),
  ];
  const kept = new IncrementalNodeSpread();
  const first = kept.pass({ nodes, pods, policiesOf: none });
  assert.deepEqual(first.preferred.get('ns-a/p0')?.spread, { satisfied: 1, total: 1, excess: 0 });
  // p2 leaves the group: zone b is empty, so zone a is 1 over for p0, which did not change.
  const p2 = pods[2] as Pod;
  const changed = pods.map((p) =>
    p === p2 ? { ...p2, metadata: { ...p2.metadata, labels: { tier: 'x', app: 'b' } } } : p,
  );
  const got = kept.pass({ nodes, pods: changed, policiesOf: none });
  assert.equal(kept.lastJudged, 2, 'the relabelled pod and the carrier of the group it left');
  assert.deepEqual(got.preferred.get('ns-a/p0')?.spread, { satisfied: 0, total: 1, excess: 1 });
  const input = { nodes, pods: changed, policiesOf: none };
  assert.deepEqual(normal(got, nodes, changed), normal(judgeNodeAndSpread(input), nodes, changed));
});

/** Pods of app `a`, each with the zone constraint, on the nodes named. */
const zonePods = (nodes: readonly PodSpec['node'][]): Pod[] =>
  nodes.map((node, i) =>
    podOf(`p${i}`, {
      namespace: 'ns-a',
      app: 'a',
      tier: 'x',
      node,
      constraints: [
        {
          maxSkew: 1,
          topologyKey: ZONE,
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: { matchLabels: { app: 'a' } },
        },
      ],
      nodeSelector: null,
      zoneAffinity: false,
      withGpuTerm: false,
      tolerates: false,
      terminating: false,
    }),
  );

void test('one node changed: counts that move elsewhere, and domains that appear or vanish', () => {
  const none = (): PodPolicies => ({ targeting: [], exempt: [] });
  const zoned = (zones: Record<string, string>): Node[] =>
    Object.entries(zones).map(([n, z]) => nodeOf(n, { zone: z, pool: 'cpu' }, false));
  const cases: {
    name: string;
    before: Record<string, string>;
    after: Record<string, string>;
    pods: PodSpec['node'][];
  }[] = [
    {
      // a: 3 (n0 holds one), b: 1; n0 to b: 2 and 2, the excess on n1 no longer over.
      name: 'a pod-holding node moves between existing zones',
      before: { n0: 'a', n1: 'a', n2: 'b' },
      after: { n0: 'b', n1: 'a', n2: 'b' },
      pods: ['n0', 'n1', 'n1', 'n2'],
    },
    {
      // An empty node joins new zone c: the minimum drops to 0.
      name: 'an empty node makes a new zone',
      before: { n0: 'a', n1: 'b', n2: 'b' },
      after: { n0: 'a', n1: 'b', n2: 'c' },
      pods: ['n0', 'n0', 'n1', 'n1'],
    },
    {
      // The only (empty) node of zone c leaves it: the minimum rises.
      name: 'the only node of a zone leaves it',
      before: { n0: 'a', n1: 'b', n2: 'c' },
      after: { n0: 'a', n1: 'b', n2: 'b' },
      pods: ['n0', 'n0', 'n1', 'n1'],
    },
  ];
  for (const c of cases) {
    const pods = zonePods(c.pods);
    const before = zoned(c.before);
    // Only the node that changed is a new object, as in an informer cache.
    const nodes = zoned(c.after).map((n, i) => {
      const had = before[i];
      return had !== undefined && JSON.stringify(n) === JSON.stringify(had) ? had : n;
    });
    const first = new IncrementalNodeSpread();
    first.pass({ nodes: before, pods, policiesOf: none });
    const got = normal(first.pass({ nodes, pods, policiesOf: none }), nodes, pods);
    const want = normal(judgeNodeAndSpread({ nodes, pods, policiesOf: none }), nodes, pods);
    assert.deepEqual(got, want, c.name);
    assert.notDeepEqual(
      normal(judgeNodeAndSpread({ nodes: before, pods, policiesOf: none }), before, pods)
        .violations,
      want.violations,
      `${c.name}: the change changes the findings`,
    );
  }
});
