// Properties of the scheduler model (scheduling-sim.ts) on small random clusters, against a
// naive filter written here from kube-scheduler's InterPodAffinity rules (every pod looked at
// again for every node, no index, nothing kept between questions):
// 1. rules the model keeps prepared while pods are added, removed and placed (`track`,
//    `prepared`) refuse each node for the same reason as the naive filter;
// 2. rules that no change reached since they were last asked (`moved` false) are refused by
//    every node as before: a workload parked on them loses nothing by not asking again;
// 3. a pod placed with kept rules lands where the naive filter and the spreading score put
//    it, or is refused by every node for the naive filter's reasons.
// A DoNotSchedule spread constraint is judged by the engine's spread filter on an index built
// from every pod again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { LabelSelector, Labels } from '../../../src/api/core.ts';
import { labelOf } from '../../../src/engine/labels.ts';
import { nodeAdmits, type NodeFacts } from '../../../src/engine/node-eligibility.ts';
import {
  SimCluster,
  type Misfit,
  type NamedTerm,
  type Placement,
  type PodRules,
  type SimPod,
} from '../../../src/engine/scheduling-sim.ts';
import { compileSpreadRules, NO_SPREAD, SpreadIndex } from '../../../src/engine/spread-index.ts';
import { spreadFilter } from '../../../src/engine/topology-spread.ts';
import { resolveTerm, termMatches } from '../../../src/engine/term.ts';

const RUNS = Number(process.env['MODEL_RUNS'] ?? 300);
const HOSTNAME = 'kubernetes.io/hostname';
const ZONE = 'topology.kubernetes.io/zone';
const NAMESPACES = ['ns-a', 'ns-b'] as const;
const APPS = ['web', 'db', 'cache'] as const;
const OWNERS = ['Deployment/ns-a/web', 'Deployment/ns-a/db', 'Deployment/ns-b/cache'] as const;

// 24 nodes over four zones and two without a zone: enough that a pod's affinity on a few
// hostnames narrows the nodes asked, while one on a zone does not.
const NODES: NodeFacts[] = Array.from({ length: 24 }, (_, i) => {
  const name = `n${String(i).padStart(2, '0')}`;
  const zone = i < 22 ? { [ZONE]: `z${String(i % 4)}` } : {};
  return {
    name,
    labels: { [HOSTNAME]: name, ...zone, ...(i % 3 === 0 ? { disk: 'ssd' } : {}) },
    taints: [],
    unschedulable: false,
  };
});
const NS_LABELS: Record<string, Labels> = { 'ns-a': { team: 'a' }, 'ns-b': { team: 'b' } };
const nsLabels = (ns: string): Labels => NS_LABELS[ns] ?? {};

// ---------------------------------------------------------------- arbitraries

const selectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constantFrom(...APPS).map((app) => ({ matchLabels: { app } })),
  fc
    .subarray([...APPS], { minLength: 1 })
    .map((values) => ({ matchExpressions: [{ key: 'app', operator: 'In', values }] })),
  fc.constant({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }),
  fc
    .constantFrom(...APPS)
    .map((app) => ({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: [app] }] })),
);

const termArb = (source: NamedTerm['source'], field: string): fc.Arbitrary<NamedTerm> =>
  fc
    .record({
      selector: selectorArb,
      key: fc.constantFrom(HOSTNAME, HOSTNAME, ZONE),
      scope: fc.constantFrom('own', 'other', 'all'),
      ns: fc.constantFrom(...NAMESPACES),
    })
    .map(({ selector, key, scope, ns }) => ({
      term: resolveTerm(
        {
          labelSelector: selector,
          topologyKey: key,
          ...(scope === 'other' ? { namespaces: ['ns-b'] } : {}),
          ...(scope === 'all' ? { namespaceSelector: {} } : {}),
        },
        { namespace: ns, labels: {} },
        field,
      ),
      source,
      field,
    }));

const labelsArb: fc.Arbitrary<Labels> = fc
  .record({ app: fc.constantFrom(...APPS), tier: fc.option(fc.constantFrom('front', 'back')) })
  .map(({ app, tier }) => (tier === null ? { app } : { app, tier }));

const rulesArb: fc.Arbitrary<PodRules> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    labels: labelsArb,
    constraints: fc.constantFrom({}, { nodeSelector: { disk: 'ssd' } }),
    affinity: fc.array(termArb('PlacementPolicy/ns-a/p', 'spec.affinity'), { maxLength: 2 }),
    antiAffinity: fc.array(termArb('pod', 'podAntiAffinity'), { maxLength: 2 }),
    spread: fc.option(
      fc.record({ app: fc.constantFrom(...APPS), key: fc.constantFrom(ZONE, HOSTNAME) }),
      {
        freq: 4,
      },
    ),
  })
  .map(({ spread, ...rules }): PodRules => {
    if (spread === null) return rules;
    const constraint = {
      maxSkew: 1,
      topologyKey: spread.key,
      whenUnsatisfiable: 'DoNotSchedule' as const,
      labelSelector: { matchLabels: { app: spread.app } },
    };
    const compiled = compileSpreadRules({
      namespace: rules.namespace,
      labels: rules.labels,
      topologySpreadConstraints: [constraint],
    });
    return {
      ...rules,
      spread: {
        rules: compiled,
        sources: [{ source: 'pod', field: 'topologySpreadConstraints[0]' }],
      },
    };
  });

interface PodSeed {
  readonly namespace: string;
  readonly labels: Labels;
  readonly node: number;
  readonly anti: readonly NamedTerm[];
  readonly owner: number | null;
  readonly ghost: boolean;
}

const podSeedArb: fc.Arbitrary<PodSeed> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  labels: labelsArb,
  // One past the last node: a pod on a node the model does not know.
  node: fc.nat(NODES.length),
  anti: fc.array(termArb('pod', 'podAntiAffinity'), { maxLength: 1 }),
  owner: fc.option(fc.nat(OWNERS.length - 1)),
  ghost: fc.boolean(),
});

type Op =
  | { readonly kind: 'add'; readonly pod: PodSeed }
  | { readonly kind: 'remove'; readonly at: number }
  | { readonly kind: 'place'; readonly rules: number; readonly owner: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  podSeedArb.map((pod): Op => ({ kind: 'add', pod })),
  fc.nat().map((at): Op => ({ kind: 'remove', at })),
  fc
    .record({ rules: fc.nat(), owner: fc.nat(OWNERS.length - 1) })
    .map((o): Op => ({ kind: 'place', ...o })),
  fc
    .record({ rules: fc.nat(), owner: fc.nat(OWNERS.length - 1) })
    .map((o): Op => ({ kind: 'place', ...o })),
);

let serial = 0;
const simPod = (s: PodSeed): SimPod => ({
  key: `${s.namespace}/p${String(serial++)}`,
  namespace: s.namespace,
  labels: s.labels,
  nodeName: NODES[s.node]?.name ?? 'gone',
  antiAffinity: s.ghost ? [] : s.anti,
  ...(s.owner === null ? {} : { owner: OWNERS[s.owner] ?? '' }),
  ...(s.ghost ? { ghost: true } : {}),
});

// ---------------------------------------------------------------- the naive filter

interface Closure {
  readonly key: string;
  readonly value: string;
  /** Own anti-affinity terms first, in order; then other pods' by pod key, then term. */
  readonly rank: readonly [number, string, number];
  readonly misfit: Misfit;
}

const before = (a: Closure['rank'], b: Closure['rank']): number =>
  a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || a[2] - b[2];

const nodeOf = (p: SimPod): NodeFacts | undefined => NODES.find((n) => n.name === p.nodeName);

/** Why each node refuses one more pod with `rules`, from every pod again. */
function naiveMisfits(pods: readonly SimPod[], rules: PodRules): (Misfit | null)[] {
  const closures: Closure[] = [];
  rules.antiAffinity.forEach((a, j) => {
    for (const p of pods) {
      const value = labelOf(nodeOf(p)?.labels ?? {}, a.term.topologyKey);
      if (p.ghost !== true && value !== undefined)
        if (termMatches(a.term, p.namespace, p.labels, nsLabels(p.namespace)))
          closures.push({
            key: a.term.topologyKey,
            value,
            rank: [0, '', j],
            misfit: { kind: 'podAntiAffinity', term: a },
          });
    }
  });
  for (const p of pods)
    p.antiAffinity.forEach((a, t) => {
      const value = labelOf(nodeOf(p)?.labels ?? {}, a.term.topologyKey);
      if (value !== undefined)
        if (termMatches(a.term, rules.namespace, rules.labels, nsLabels(rules.namespace)))
          closures.push({
            key: a.term.topologyKey,
            value,
            rank: [1, p.key, t],
            misfit: { kind: 'symmetricAntiAffinity', term: a, pod: p.key },
          });
    });
  closures.sort((x, y) => before(x.rank, y.rank));
  // Keys are asked in the order of their earliest closure.
  const keys = [...new Set(closures.map((c) => c.key))];
  const providers = pods.filter(
    (p) =>
      rules.affinity.every((r) =>
        termMatches(r.term, p.namespace, p.labels, nsLabels(p.namespace)),
      ) &&
      rules.affinity.every(
        (r) => labelOf(nodeOf(p)?.labels ?? {}, r.term.topologyKey) !== undefined,
      ),
  );
  const selfMatch = rules.affinity.every((r) =>
    termMatches(r.term, rules.namespace, rules.labels, nsLabels(rules.namespace)),
  );
  const first = providers.length === 0 && selfMatch;
  const spread = rules.spread;
  const counted = new SpreadIndex(
    NODES,
    pods.flatMap((p) =>
      p.ghost === true
        ? []
        : [
            {
              key: p.key,
              namespace: p.namespace,
              labels: p.labels,
              nodeName: p.nodeName,
              rules: NO_SPREAD,
            },
          ],
    ),
  );
  return NODES.map((node): Misfit | null => {
    if (!nodeAdmits(node, rules.constraints)) return { kind: 'node' };
    const verdict =
      spread === undefined
        ? null
        : spreadFilter(counted, { labels: rules.labels, rules: spread.rules }, node);
    if (verdict?.kind === 'refused')
      return {
        kind: 'topologySpread',
        miss: verdict.miss,
        source: 'pod',
        field: 'topologySpreadConstraints[0]',
      };
    for (const key of keys) {
      const value = labelOf(node.labels, key);
      const c = closures.find((x) => x.key === key && x.value === value);
      if (c !== undefined) return c.misfit;
    }
    for (const a of rules.affinity) {
      const value = labelOf(node.labels, a.term.topologyKey);
      if (value === undefined) return { kind: 'podAffinity', term: a };
      const met = providers.some(
        (p) => labelOf(nodeOf(p)?.labels ?? {}, a.term.topologyKey) === value,
      );
      if (!met && !first) return { kind: 'podAffinity', term: a };
    }
    return null;
  });
}

/**
 * Where the scheduler puts one more pod: the fewest pods of its owner (its ghosts, being
 * replaced, not counted), then by name.
 */
function naivePlace(pods: readonly SimPod[], rules: PodRules, owner: string): Placement {
  const misfits = naiveMisfits(pods, rules);
  const count = (node: NodeFacts): number =>
    pods.filter((p) => p.owner === owner && p.ghost !== true && p.nodeName === node.name).length;
  const fitting = NODES.filter((_, i) => misfits[i] === null);
  if (fitting.length === 0)
    return {
      kind: 'unschedulable',
      misfits: NODES.map((_, i) => misfits[i] ?? { kind: 'node' }),
    };
  const best = fitting.reduce((a, b) => (count(b) < count(a) ? b : a));
  return { kind: 'placed', node: best.name };
}

// ---------------------------------------------------------------- the property

void test('kept prepared rules refuse each node as the naive filter does, and a parked one stays refused', () => {
  fc.assert(
    fc.property(
      fc.array(rulesArb, { minLength: 1, maxLength: 4 }),
      fc.array(podSeedArb, { maxLength: 12 }),
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      (rules, seeds, ops) => {
        const cluster = new SimCluster(NODES, seeds.map(simPod), nsLabels);
        const tracked = rules.map((r) => cluster.track(r));
        const pods = (): SimPod[] => [...cluster.all()];
        let last = rules.map((r) => naiveMisfits(pods(), r));
        for (const t of tracked) {
          cluster.prepared(t);
          t.moved = false;
        }
        for (const op of ops) {
          if (op.kind === 'add') cluster.add(simPod(op.pod));
          else if (op.kind === 'remove') {
            const all = pods();
            const victim = all[op.at % Math.max(1, all.length)];
            if (victim !== undefined) cluster.remove(victim.key);
          } else {
            const i = op.rules % rules.length;
            const r = rules[i];
            const t = tracked[i];
            if (r === undefined || t === undefined) continue;
            const owner = OWNERS[op.owner] ?? '';
            const want = naivePlace(pods(), r, owner);
            const got = cluster.place(r, owner, `placed/${String(serial++)}`, cluster.prepared(t));
            assert.deepStrictEqual(got, want);
          }
          const now = rules.map((r) => naiveMisfits(pods(), r));
          tracked.forEach((t, i) => {
            if (!t.moved)
              assert.deepStrictEqual(now[i], last[i], 'a change that did not reach the rules');
            const prepared = cluster.prepared(t);
            assert.deepStrictEqual(
              NODES.map((n) => prepared.misfit(n)),
              now[i],
            );
            t.moved = false;
          });
          last = now;
        }
        for (const t of tracked) cluster.untrack(t);
      },
    ),
    { numRuns: RUNS },
  );
});
