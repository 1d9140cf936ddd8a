// Small random clusters for the properties of the pod-affinity engine and of the audit kept
// between passes: a few nodes (hostname and zone labels, either may be missing), namespaces
// with or without a team label, pods with required and preferred (anti-)affinity terms.
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
import { HOSTNAME, ZONE, namespace, pod } from '../builders.ts';

export const NAMESPACES = ['ns-a', 'ns-b', 'ns-c'] as const;
export const NODES = ['n0', 'n1', 'n2', 'n3'] as const;
const POD_NAMES = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'] as const;
const LABEL_KEYS = ['app', 'tier'] as const;
const LABEL_VALUES = { app: ['a', 'b'], tier: ['x', 'y'] } as const;

// ---- generators ----

const optional = <T>(arb: fc.Arbitrary<T>, freq = 3): fc.Arbitrary<T | undefined> =>
  fc.option(arb, { nil: undefined, freq });

/** Hostname label most of the time, a zone label often, so missing keys happen too. */
export const nodeLabelsArb = (name: string): fc.Arbitrary<Labels> =>
  fc
    .record({
      host: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, fc.constant(false)),
      zone: optional(fc.constantFrom('z0', 'z1'), 4),
    })
    .map(({ host, zone }) => ({
      ...(host ? { [HOSTNAME]: name } : {}),
      ...(zone === undefined ? {} : { [ZONE]: zone }),
    }));

export const podLabelsArb: fc.Arbitrary<Labels> = fc
  .record({
    app: optional(fc.constantFrom(...LABEL_VALUES.app), 4),
    tier: optional(fc.constantFrom(...LABEL_VALUES.tier), 2),
  })
  .map(({ app, tier }) => ({
    ...(app === undefined ? {} : { app }),
    ...(tier === undefined ? {} : { tier }),
  }));

export const namespaceLabelsArb: fc.Arbitrary<Labels> = fc
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

export const podArb: fc.Arbitrary<Pod> = fc
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

export const keyOf = (p: Pod): string => `${p.metadata.namespace}/${p.metadata.name}`;

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

export const podsArb = (maxLength: number): fc.Arbitrary<Pod[]> =>
  fc.oneof(loosePodsArb(maxLength), replicasArb(maxLength));

export const nodesArb = (min: number): fc.Arbitrary<Node[]> =>
  fc
    .subarray([...NODES], { minLength: min })
    .chain((names) =>
      fc.tuple(
        ...names.map((n) => nodeLabelsArb(n).map((labels) => ({ metadata: { name: n, labels } }))),
      ),
    );

export const namespacesArb = (min: number): fc.Arbitrary<Namespace[]> =>
  fc
    .subarray([...NAMESPACES], { minLength: min })
    .chain((names) =>
      fc.tuple(...names.map((n) => namespaceLabelsArb.map((l) => namespace(n, l)))),
    );

/** One change to a cluster; `which` picks an existing pod, modulo their number. */
export type Op =
  | { readonly kind: 'upsertPod'; readonly pod: Pod }
  | { readonly kind: 'removePod'; readonly which: number }
  | { readonly kind: 'relabelPod'; readonly which: number; readonly labels: Labels }
  | { readonly kind: 'setNode'; readonly name: string; readonly labels: Labels }
  | { readonly kind: 'removeNode'; readonly name: string }
  | { readonly kind: 'setNamespace'; readonly name: string; readonly labels: Labels };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
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
