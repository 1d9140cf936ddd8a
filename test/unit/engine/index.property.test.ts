// Properties of the topology index on small random clusters:
// 1. updated one change at a time, it ends equal to an index rebuilt from the final state,
//    and judges every pod the same (and as the reference below does);
// 2. its verdicts are those of a naive all-pairs judge written from the scheduler's rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type {
  Labels,
  LabelSelector,
  Namespace,
  Node,
  Pod,
  PodAffinityTerm,
  WeightedPodAffinityTerm,
} from '../../../src/api/core.ts';
import {
  auditSnapshot,
  buildIndex,
  compareViolations,
  isPlaced,
  judgePod,
  placementOf,
  WorkloadLookup,
  type PodVerdict,
  type TopologyIndex,
} from '../../../src/engine/index.ts';
import { HOSTNAME, ZONE, namespace, pod, snapshotOf, sortTuples, tuplesOf } from '../builders.ts';
import { referenceAudit, referenceJudged, type ReferenceCluster } from '../reference.ts';

const RUNS = 500;

const NAMESPACES = ['ns-a', 'ns-b', 'ns-c'] as const;
const NODES = ['n0', 'n1', 'n2', 'n3'] as const;
const POD_NAMES = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'] as const;
const LABEL_KEYS = ['app', 'tier'] as const;
const LABEL_VALUES = { app: ['a', 'b'], tier: ['x', 'y'] } as const;

// ---- generators ----

const optional = <T>(arb: fc.Arbitrary<T>, freq = 3): fc.Arbitrary<T | undefined> =>
  fc.option(arb, { nil: undefined, freq });

/** Hostname label most of the time, a zone label often, so missing keys happen too. */
const nodeLabelsArb = (name: string): fc.Arbitrary<Labels> =>
  fc
    .record({
      host: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, fc.constant(false)),
      zone: optional(fc.constantFrom('z0', 'z1'), 4),
    })
    .map(({ host, zone }) => ({
      ...(host ? { [HOSTNAME]: name } : {}),
      ...(zone === undefined ? {} : { [ZONE]: zone }),
    }));

const podLabelsArb: fc.Arbitrary<Labels> = fc
  .record({
    app: optional(fc.constantFrom(...LABEL_VALUES.app), 4),
    tier: optional(fc.constantFrom(...LABEL_VALUES.tier), 2),
  })
  .map(({ app, tier }) => ({
    ...(app === undefined ? {} : { app }),
    ...(tier === undefined ? {} : { tier }),
  }));

const namespaceLabelsArb: fc.Arbitrary<Labels> = fc
  .option(fc.constantFrom('x', 'y'), { nil: undefined })
  .map((team): Labels => (team === undefined ? {} : { team }));

const requirementArb = fc.oneof(
  ...LABEL_KEYS.map((key) =>
    fc.oneof(
      fc
        .record({
          operator: fc.constantFrom('In', 'NotIn'),
          values: fc.subarray([...LABEL_VALUES[key]], { minLength: 1 }),
        })
        .map(({ operator, values }) => ({ key, operator, values })),
      fc.constantFrom('Exists', 'DoesNotExist').map((operator) => ({ key, operator })),
    ),
  ),
);

const selectorArb: fc.Arbitrary<LabelSelector | null> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc.oneof(
      fc.constantFrom(...LABEL_VALUES.app).map((app) => ({ matchLabels: { app } })),
      fc.constantFrom(...LABEL_VALUES.tier).map((tier) => ({ matchLabels: { tier } })),
    ),
  },
  {
    weight: 4,
    arbitrary: fc
      .array(requirementArb, { minLength: 1, maxLength: 2 })
      .map((matchExpressions) => ({ matchExpressions })),
  },
);

const namespaceSelectorArb: fc.Arbitrary<LabelSelector | null | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.constant({ matchLabels: { team: 'x' } }) },
  {
    weight: 1,
    arbitrary: fc.constant({
      matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['x'] }],
    }),
  },
);

const selectorKeys = (s: LabelSelector | null): Set<string> =>
  new Set([...Object.keys(s?.matchLabels ?? {}), ...(s?.matchExpressions ?? []).map((e) => e.key)]);

/**
 * A term as the API accepts it: (mis)matchLabelKeys only with a labelSelector, a
 * matchLabelKeys key never also in the labelSelector nor in mismatchLabelKeys.
 */
const termArb: fc.Arbitrary<PodAffinityTerm> = fc
  .record({
    labelSelector: selectorArb,
    topologyKey: fc.constantFrom(HOSTNAME, ZONE),
    namespaces: optional(fc.subarray([...NAMESPACES]), 1),
    namespaceSelector: namespaceSelectorArb,
    matchLabelKeys: optional(fc.subarray([...LABEL_KEYS], { minLength: 1 }), 1),
    mismatchLabelKeys: optional(fc.subarray([...LABEL_KEYS], { minLength: 1 }), 1),
  })
  .map((t) => {
    const used = selectorKeys(t.labelSelector);
    const match =
      t.labelSelector === null ? [] : (t.matchLabelKeys ?? []).filter((k) => !used.has(k));
    const mismatch =
      t.labelSelector === null
        ? []
        : (t.mismatchLabelKeys ?? []).filter((k) => !used.has(k) && !match.includes(k));
    return {
      labelSelector: t.labelSelector,
      topologyKey: t.topologyKey,
      ...(t.namespaces === undefined ? {} : { namespaces: t.namespaces }),
      ...(t.namespaceSelector === undefined ? {} : { namespaceSelector: t.namespaceSelector }),
      ...(match.length === 0 ? {} : { matchLabelKeys: match }),
      ...(mismatch.length === 0 ? {} : { mismatchLabelKeys: mismatch }),
    };
  });

/** Mostly none or one, sometimes two. */
const termsArb: fc.Arbitrary<readonly PodAffinityTerm[]> = fc.oneof(
  { weight: 3, arbitrary: fc.constant([]) },
  { weight: 3, arbitrary: fc.array(termArb, { minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.array(termArb, { minLength: 2, maxLength: 2 }) },
);

const weightedArb: fc.Arbitrary<WeightedPodAffinityTerm> = fc.record({
  weight: fc.integer({ min: 1, max: 100 }),
  podAffinityTerm: termArb,
});

const podArb: fc.Arbitrary<Pod> = fc
  .record({
    name: fc.constantFrom(...POD_NAMES),
    // Skewed, so that pods share namespaces and nodes often.
    ns: fc.oneof(
      { weight: 3, arbitrary: fc.constant(NAMESPACES[0]) },
      fc.constantFrom(...NAMESPACES),
    ),
    labels: podLabelsArb,
    node: optional(
      fc.oneof({ weight: 2, arbitrary: fc.constantFrom('n0', 'n1') }, fc.constantFrom(...NODES)),
      8,
    ),
    phase: fc.oneof(
      { weight: 10, arbitrary: fc.constant('Running') },
      fc.constantFrom('Succeeded', 'Failed'),
    ),
    deleting: fc.oneof({ weight: 10, arbitrary: fc.constant(false) }, fc.constant(true)),
    affinity: termsArb,
    anti: termsArb,
    preferred: fc.array(weightedArb, { maxLength: 1 }),
    preferredAnti: fc.array(weightedArb, { maxLength: 1 }),
  })
  .map((p) =>
    pod(p.name, {
      ns: p.ns,
      labels: p.labels,
      ...(p.node === undefined ? {} : { node: p.node, phase: p.phase }),
      deleting: p.deleting,
      affinity: p.affinity,
      anti: p.anti,
      preferred: p.preferred,
      preferredAnti: p.preferredAnti,
    }),
  );

const keyOf = (p: Pod): string => `${p.metadata.namespace}/${p.metadata.name}`;

/** Independent pods: every pod its own shape. */
const loosePodsArb = (maxLength: number) => fc.uniqueArray(podArb, { maxLength, selector: keyOf });

/** `term` selecting pods labelled `own`; listed keys that are now in the selector are dropped, as the API requires. */
function selecting(term: PodAffinityTerm, own: Labels): PodAffinityTerm {
  const { matchLabelKeys, mismatchLabelKeys, ...rest } = term;
  const free = (keys: readonly string[] | undefined) => (keys ?? []).filter((k) => !(k in own));
  const match = free(matchLabelKeys);
  const mismatch = free(mismatchLabelKeys);
  return {
    ...rest,
    labelSelector: { matchLabels: own },
    ...(match.length === 0 ? {} : { matchLabelKeys: match }),
    ...(mismatch.length === 0 ? {} : { mismatchLabelKeys: mismatch }),
  };
}

/**
 * Replicas of a few workloads whose terms often select the workload's own pods, so that
 * self-affinity, first pods and spreading come up often.
 */
const replicasArb = (maxLength: number): fc.Arbitrary<Pod[]> =>
  fc
    .array(
      fc.record({
        template: podArb,
        selfSelecting: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      }),
      { minLength: 1, maxLength: 3 },
    )
    .chain((workloads) =>
      fc
        .array(
          fc.record({
            workload: fc.nat({ max: workloads.length - 1 }),
            node: fc.constantFrom(...NODES),
          }),
          { maxLength },
        )
        .map((replicas) =>
          replicas.flatMap(({ workload, node }, i): Pod[] => {
            const w = workloads[workload];
            if (w === undefined) return [];
            const t = w.template;
            const own = t.metadata.labels ?? {};
            const self = (terms: readonly PodAffinityTerm[] | undefined, offset: number) =>
              (terms ?? []).map((term, j) =>
                w.selfSelecting[offset + j] === true && Object.keys(own).length > 0
                  ? selecting(term, own)
                  : term,
              );
            const affinity = t.spec.affinity;
            return [
              {
                metadata: {
                  ...t.metadata,
                  name: `w${workload}-${i}`,
                  namespace: t.metadata.namespace,
                },
                spec: {
                  nodeName: node,
                  affinity: {
                    podAffinity: {
                      ...affinity?.podAffinity,
                      requiredDuringSchedulingIgnoredDuringExecution: self(
                        affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
                        0,
                      ),
                    },
                    podAntiAffinity: {
                      ...affinity?.podAntiAffinity,
                      requiredDuringSchedulingIgnoredDuringExecution: self(
                        affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
                        2,
                      ),
                    },
                  },
                },
                status: { phase: 'Running' },
              },
            ];
          }),
        ),
    );

const podsArb = (maxLength: number): fc.Arbitrary<Pod[]> =>
  fc.oneof(loosePodsArb(maxLength), replicasArb(maxLength));

const nodesArb = (min: number): fc.Arbitrary<Node[]> =>
  fc
    .subarray([...NODES], { minLength: min })
    .chain((names) =>
      fc.tuple(
        ...names.map((n) => nodeLabelsArb(n).map((labels) => ({ metadata: { name: n, labels } }))),
      ),
    );

const namespacesArb = (min: number): fc.Arbitrary<Namespace[]> =>
  fc
    .subarray([...NAMESPACES], { minLength: min })
    .chain((names) =>
      fc.tuple(...names.map((n) => namespaceLabelsArb.map((l) => namespace(n, l)))),
    );

type Op =
  | { readonly kind: 'upsertPod'; readonly pod: Pod }
  | { readonly kind: 'removePod'; readonly which: number }
  | { readonly kind: 'relabelPod'; readonly which: number; readonly labels: Labels }
  | { readonly kind: 'setNode'; readonly name: string; readonly labels: Labels }
  | { readonly kind: 'removeNode'; readonly name: string }
  | { readonly kind: 'setNamespace'; readonly name: string; readonly labels: Labels };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: podArb.map((p): Op => ({ kind: 'upsertPod', pod: p })) },
  { weight: 2, arbitrary: fc.nat().map((which): Op => ({ kind: 'removePod', which })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ which: fc.nat(), labels: podLabelsArb })
      .map((o): Op => ({ kind: 'relabelPod', ...o })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(...NODES)
      .chain((name) =>
        nodeLabelsArb(name).map((labels): Op => ({ kind: 'setNode', name, labels })),
      ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...NODES).map((name): Op => ({ kind: 'removeNode', name })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ name: fc.constantFrom(...NAMESPACES), labels: namespaceLabelsArb })
      .map((o): Op => ({ kind: 'setNamespace', ...o })),
  },
);

// ---- the cluster as a model, and the index kept in step with it ----

class Model {
  readonly nodes = new Map<string, Labels>();
  readonly namespaces = new Map<string, Labels>();
  readonly pods = new Map<string, Pod>();

  constructor(nodes: readonly Node[], namespaces: readonly Namespace[], pods: readonly Pod[]) {
    for (const n of nodes) this.nodes.set(n.metadata.name, n.metadata.labels ?? {});
    for (const n of namespaces) this.namespaces.set(n.metadata.name, n.metadata.labels ?? {});
    for (const p of pods) this.pods.set(keyOf(p), p);
  }

  snapshot() {
    return snapshotOf({
      nodes: [...this.nodes].map(([name, labels]) => ({ metadata: { name, labels } })),
      namespaces: [...this.namespaces].map(([name, labels]) => ({ metadata: { name, labels } })),
      pods: [...this.pods.values()],
    });
  }

  /** Applies `op` to the model and the same change, as the operator would, to `index`. */
  apply(op: Op, index: TopologyIndex): void {
    const upsert = (p: Pod) => {
      this.pods.set(keyOf(p), p);
      if (isPlaced(p)) index.upsertPod(placementOf(p, [], new WorkloadLookup([]), index));
      else index.removePod(keyOf(p));
    };
    const existing = (which: number): Pod | undefined => {
      const all = [...this.pods.values()];
      return all[which % Math.max(all.length, 1)];
    };
    switch (op.kind) {
      case 'upsertPod':
        upsert(op.pod);
        return;
      case 'removePod': {
        const p = existing(op.which);
        if (p === undefined) return;
        this.pods.delete(keyOf(p));
        index.removePod(keyOf(p));
        return;
      }
      case 'relabelPod': {
        const p = existing(op.which);
        if (p === undefined) return;
        upsert({ ...p, metadata: { ...p.metadata, labels: op.labels } });
        return;
      }
      case 'setNode':
        this.nodes.set(op.name, op.labels);
        index.setNode(op.name, op.labels);
        return;
      case 'removeNode':
        this.nodes.delete(op.name);
        index.removeNode(op.name);
        return;
      case 'setNamespace':
        this.namespaces.set(op.name, op.labels);
        index.setNamespace(op.name, op.labels);
        return;
    }
  }
}

/** A verdict with its violations in report order, so two indexes' verdicts compare equal. */
function normalised(v: PodVerdict): PodVerdict {
  return v.kind === 'ok' ? v : { ...v, violations: [...v.violations].sort(compareViolations) };
}

function verdicts(index: TopologyIndex): Map<string, PodVerdict> {
  const out = new Map<string, PodVerdict>();
  for (const entry of index.allPods()) {
    if (entry.pod.terminating !== true) out.set(entry.pod.key, normalised(judgePod(index, entry)));
  }
  return out;
}

/** The index's verdicts on every placed pod are the reference judge's on the same cluster. */
function agreesWithReference(index: TopologyIndex, cluster: ReferenceCluster): void {
  const got = verdicts(index);
  assert.deepEqual(
    [...got.keys()].sort(),
    cluster.pods.filter(referenceJudged).map(keyOf).sort(),
    'the placed pods',
  );
  for (const [key, ref] of referenceAudit(cluster)) {
    const verdict = got.get(key);
    assert.ok(verdict !== undefined, key);
    assert.equal(verdict.kind === 'violated', ref.violated, `${key}: verdict`);
    // The engine reports carriers of one term once; the reference lists tuples once too.
    const tuples = verdict.kind === 'violated' ? tuplesOf(verdict.violations) : [];
    const unique = sortTuples([...new Map(tuples.map((t) => [JSON.stringify(t), t])).values()]);
    assert.deepEqual(unique, ref.tuples, `${key}: violations`);
    const preferred = verdict.preferred.totalWeight > 0 ? verdict.preferred : undefined;
    assert.deepEqual(preferred, ref.preferred, `${key}: preferred`);
  }
}

void test('an index updated change by change equals one rebuilt from the final state', () => {
  fc.assert(
    fc.property(
      nodesArb(0),
      namespacesArb(0),
      podsArb(6),
      fc.array(opArb, { maxLength: 25 }),
      (nodes, namespaces, pods, ops) => {
        const model = new Model(nodes, namespaces, pods);
        const index = buildIndex(model.snapshot(), []);
        for (const op of ops) model.apply(op, index);
        const rebuilt = buildIndex(model.snapshot(), []);
        assert.equal(index.describe(), rebuilt.describe());
        assert.deepEqual(index.size, rebuilt.size);
        assert.deepEqual(verdicts(index), verdicts(rebuilt));
        agreesWithReference(index, model.snapshot());
      },
    ),
    { numRuns: RUNS },
  );
});

void test('an index emptied change by change holds nothing', () => {
  fc.assert(
    fc.property(nodesArb(1), namespacesArb(1), podsArb(8), (nodes, namespaces, pods) => {
      const model = new Model(nodes, namespaces, pods);
      const index = buildIndex(model.snapshot(), []);
      for (const p of pods) index.removePod(keyOf(p));
      assert.equal(index.describe(), '');
      assert.equal(index.size.groups, 0);
      assert.equal(index.size.pods, 0);
    }),
    { numRuns: RUNS },
  );
});

void test('the engine judges as a naive all-pairs reference of the scheduler rules does', () => {
  fc.assert(
    fc.property(
      nodesArb(NODES.length - 1),
      namespacesArb(NAMESPACES.length),
      podsArb(8),
      (nodes, namespaces, pods) => {
        const cluster = { nodes, namespaces, pods };
        const result = auditSnapshot(snapshotOf(cluster));
        assert.equal(result.kind, 'ok');
        agreesWithReference(result.index, cluster);
      },
    ),
    { numRuns: RUNS },
  );
});
