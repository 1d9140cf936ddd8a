// Properties of topology spread on small random clusters, against a naive judge written
// here from the PodTopologySpread plugin's rules (every node and every pod looked at again
// for each question, no index, no grouping):
// 1. the filter's verdict for a new pod on every node;
// 2. the drift verdict of every running pod, excess choice included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type {
  LabelSelector,
  Labels,
  Node,
  Pod,
  Taint,
  TopologySpreadConstraint,
} from '../../../src/api/core.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import { compileSpreadRules, spreadSubjectOf } from '../../../src/engine/spread-index.ts';
import { spreadFilter } from '../../../src/engine/topology-spread.ts';
import { HOSTNAME, ZONE, judgeAll, node, pod } from './spread-world.ts';

const RUNS = Number(process.env['SPREAD_RUNS'] ?? 600);
const NODE_NAMES = ['n0', 'n1', 'n2', 'n3', 'n4'] as const;
const NAMESPACES = ['ns-a', 'ns-b'] as const;

// ---------------------------------------------------------------- the naive judge

type Verdict = 'ok' | 'overMaxSkew' | 'missingTopologyLabel';

const has = (labels: Labels, key: string): boolean => Object.keys(labels).includes(key);
const nodeLabels = (nodes: readonly Node[], name: string): Labels | undefined =>
  nodes.find((n) => n.metadata.name === name)?.metadata.labels;
const hardOf = (p: Pod): TopologySpreadConstraint[] =>
  (p.spec.topologySpreadConstraints ?? []).filter((c) => c.whenUnsatisfiable === 'DoNotSchedule');
const labelsOf = (p: Pod): Labels => p.metadata.labels ?? {};

/** The selector of a constraint for its owner, as sorted requirement texts; null selects nothing. */
function requirementsOf(c: TopologySpreadConstraint, owner: Pod): string[] | null {
  if (c.labelSelector === null || c.labelSelector === undefined) return null;
  const out = new Set<string>();
  for (const [k, v] of Object.entries(c.labelSelector.matchLabels ?? {})) out.add(`${k} In ${v}`);
  for (const e of c.labelSelector.matchExpressions ?? []) {
    out.add(`${e.key} ${e.operator} ${[...new Set(e.values ?? [])].sort().join(',')}`);
  }
  for (const k of c.matchLabelKeys ?? []) {
    const v = labelsOf(owner)[k];
    if (has(labelsOf(owner), k) && v !== undefined) out.add(`${k} In ${v}`);
  }
  return [...out].sort();
}

function matches(reqs: readonly string[] | null, labels: Labels): boolean {
  if (reqs === null) return false;
  return reqs.every((r) => {
    const [key = '', op = '', values = ''] = r.split(' ');
    const list = values.split(',');
    const present = has(labels, key);
    const value = labels[key] ?? '';
    if (op === 'In') return present && list.includes(value);
    if (op === 'NotIn') return !present || !list.includes(value);
    if (op === 'Exists') return present;
    return !present;
  });
}

/** Whether a node is a domain of `c` for `owner`. */
function eligible(
  n: Node,
  c: TopologySpreadConstraint,
  owner: Pod,
  keys: readonly string[],
): boolean {
  const labels = n.metadata.labels ?? {};
  if (!keys.every((k) => has(labels, k))) return false;
  if (c.nodeAffinityPolicy !== 'Ignore') {
    for (const [k, v] of Object.entries(owner.spec.nodeSelector ?? {})) {
      if (labels[k] !== v || !has(labels, k)) return false;
    }
  }
  if (c.nodeTaintsPolicy === 'Honor') {
    const tolerated = (t: Taint): boolean =>
      (owner.spec.tolerations ?? []).some((x) => x.key === t.key && x.operator === 'Exists');
    if (!(n.spec?.taints ?? []).every((t) => t.effect === 'PreferNoSchedule' || tolerated(t))) {
      return false;
    }
  }
  return true;
}

interface Counted {
  readonly count: (domain: string) => number;
  readonly members: (domain: string) => Pod[];
  readonly min: number;
}

function naiveCounts(
  nodes: readonly Node[],
  pods: readonly Pod[],
  owner: Pod,
  c: TopologySpreadConstraint,
): Counted {
  const keys = hardOf(owner).map((h) => h.topologyKey);
  const domainNodes = nodes.filter((n) => eligible(n, c, owner, keys));
  const domains = [...new Set(domainNodes.map((n) => n.metadata.labels?.[c.topologyKey] ?? ''))];
  const reqs = requirementsOf(c, owner);
  const members = (domain: string): Pod[] =>
    reqs === null || reqs.length === 0
      ? []
      : pods.filter((p) => {
          const on = domainNodes.find((n) => n.metadata.name === p.spec.nodeName);
          return (
            on !== undefined &&
            on.metadata.labels?.[c.topologyKey] === domain &&
            p.metadata.namespace === owner.metadata.namespace &&
            p.metadata.deletionTimestamp === undefined &&
            matches(reqs, labelsOf(p))
          );
        });
  const count = (domain: string): number => members(domain).length;
  const counts = domains.map(count);
  const min = domains.length < (c.minDomains ?? 1) ? 0 : Math.min(...counts);
  return { count, members, min };
}

function naiveFilter(
  nodes: readonly Node[],
  pods: readonly Pod[],
  incoming: Pod,
  name: string,
): Verdict {
  const labels = nodeLabels(nodes, name) ?? {};
  for (const c of hardOf(incoming)) {
    if (!has(labels, c.topologyKey)) return 'missingTopologyLabel';
    const counted = naiveCounts(nodes, pods, incoming, c);
    const self = matches(requirementsOf(c, incoming), labelsOf(incoming)) ? 1 : 0;
    if (counted.count(labels[c.topologyKey] ?? '') + self - counted.min > c.maxSkew)
      return 'overMaxSkew';
  }
  return 'ok';
}

/** Whether `q` carries a constraint that counts as `c` of `owner` counts. */
function carries(q: Pod, owner: Pod, c: TopologySpreadConstraint): boolean {
  const keys = (p: Pod): string =>
    JSON.stringify([...new Set(hardOf(p).map((h) => h.topologyKey))].sort());
  const view = (p: Pod, x: TopologySpreadConstraint): string =>
    JSON.stringify([
      p.metadata.namespace,
      x.topologyKey,
      requirementsOf(x, p),
      keys(p),
      x.nodeAffinityPolicy === 'Ignore' ? null : (p.spec.nodeSelector ?? null),
      x.nodeTaintsPolicy === 'Honor' ? (p.spec.tolerations ?? []) : null,
    ]);
  return hardOf(q).some((x) => view(q, x) === view(owner, c));
}

function naiveDrift(nodes: readonly Node[], pods: readonly Pod[], p: Pod): boolean {
  const labels = nodeLabels(nodes, p.spec.nodeName ?? '') ?? {};
  return hardOf(p).some((c) => {
    if (!has(labels, c.topologyKey)) return true;
    const domain = labels[c.topologyKey] ?? '';
    const counted = naiveCounts(nodes, pods, p, c);
    const over = counted.count(domain) - counted.min - c.maxSkew;
    if (over <= 0) return false;
    const key = (x: Pod): string => `${x.metadata.namespace}/${x.metadata.name}`;
    const order = counted.members(domain).sort((a, b) => {
      const ca = carries(a, p, c) ? 0 : 1;
      const cb = carries(b, p, c) ? 0 : 1;
      if (ca !== cb) return ca - cb;
      return key(a) === key(b) ? 0 : key(a) < key(b) ? 1 : -1;
    });
    return order.slice(0, over).includes(p);
  });
}

// ---------------------------------------------------------------- generators

const opt = <T>(arb: fc.Arbitrary<T>, freq = 3): fc.Arbitrary<T | undefined> =>
  fc.option(arb, { nil: undefined, freq });

const nodeArb = (name: string): fc.Arbitrary<Node> =>
  fc
    .record({
      zone: opt(fc.constantFrom('z0', 'z1', 'z2'), 5),
      host: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, fc.constant(false)),
      pool: opt(fc.constantFrom('a', 'b'), 2),
      taint: opt(fc.constantFrom('NoSchedule', 'NoExecute', 'PreferNoSchedule'), 4),
    })
    .map(({ zone, host, pool, taint }) =>
      node(
        name,
        {
          ...(zone === undefined ? {} : { [ZONE]: zone }),
          ...(host ? { [HOSTNAME]: name } : {}),
          ...(pool === undefined ? {} : { pool }),
        },
        taint === undefined ? [] : [{ key: 't', effect: taint }],
      ),
    );

const selectorArb: fc.Arbitrary<LabelSelector | null> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('a', 'b').map((app) => ({ matchLabels: { app } })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        op: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
        values: fc.subarray(['a', 'b'], { minLength: 1 }),
      })
      .map(({ op, values }) => ({
        matchExpressions: [
          op === 'In' || op === 'NotIn'
            ? { key: 'app', operator: op, values }
            : { key: 'app', operator: op },
        ],
      })),
  },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.constant(null) },
);

const constraintArb: fc.Arbitrary<TopologySpreadConstraint> = fc
  .record({
    key: fc.constantFrom(ZONE, ZONE, HOSTNAME),
    maxSkew: fc.integer({ min: 1, max: 2 }),
    hard: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, fc.constant(false)),
    selector: selectorArb,
    minDomains: opt(fc.integer({ min: 1, max: 4 }), 2),
    affinity: opt(fc.constantFrom('Honor', 'Ignore'), 2),
    taints: opt(fc.constantFrom('Honor', 'Ignore'), 2),
    labelKeys: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, fc.constant(true)),
  })
  .map((r) => ({
    maxSkew: r.maxSkew,
    topologyKey: r.key,
    whenUnsatisfiable: r.hard ? 'DoNotSchedule' : 'ScheduleAnyway',
    ...(r.selector === null ? {} : { labelSelector: r.selector }),
    ...(r.minDomains === undefined ? {} : { minDomains: r.minDomains }),
    ...(r.affinity === undefined ? {} : { nodeAffinityPolicy: r.affinity }),
    ...(r.taints === undefined ? {} : { nodeTaintsPolicy: r.taints }),
    ...(r.labelKeys ? { matchLabelKeys: ['tier'] } : {}),
  }));

interface PodDraft {
  readonly namespace: string;
  readonly labels: Labels;
  readonly node: string;
  readonly terminating: boolean;
  readonly templates: readonly number[];
  readonly pinned: boolean;
  readonly tolerant: boolean;
}

const podDraftArb: fc.Arbitrary<PodDraft> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  labels: fc
    .record({ app: opt(fc.constantFrom('a', 'b'), 5), tier: opt(fc.constantFrom('x', 'y'), 3) })
    .map(({ app, tier }) => ({ ...(app ? { app } : {}), ...(tier ? { tier } : {}) })),
  node: fc.constantFrom(...NODE_NAMES, 'ghost'),
  terminating: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, fc.constant(true)),
  templates: fc.subarray([0, 1, 2, 3], { maxLength: 2 }),
  pinned: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, fc.constant(true)),
  tolerant: fc.boolean(),
});

const worldArb = fc.record({
  nodes: fc.tuple(...NODE_NAMES.map(nodeArb)),
  templates: fc.array(constraintArb, { minLength: 4, maxLength: 4 }),
  pods: fc.array(podDraftArb, { maxLength: 12 }),
  incoming: podDraftArb,
});

function podOf(name: string, d: PodDraft, templates: readonly TopologySpreadConstraint[]): Pod {
  const constraints = d.templates.map((i) => templates[i]).filter((c) => c !== undefined);
  return pod(name, {
    namespace: d.namespace,
    labels: d.labels,
    node: d.node,
    terminating: d.terminating,
    ...(constraints.length > 0 ? { constraints } : {}),
    ...(d.pinned ? { nodeSelector: { pool: 'a' } } : {}),
    ...(d.tolerant ? { tolerations: [{ key: 't', operator: 'Exists' }] } : {}),
  });
}

// ---------------------------------------------------------------- properties

void test('property: spreadFilter agrees with the naive PodTopologySpread filter on every node', () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const pods = w.pods.map((d, i) => podOf(`p${i}`, d, w.templates));
      const incoming = podOf('new', { ...w.incoming, terminating: false }, w.templates);
      const { index } = judgeAll(w.nodes, pods);
      const rules = compileSpreadRules(spreadSubjectOf(incoming));
      for (const n of w.nodes) {
        const v = spreadFilter(index, { labels: labelsOf(incoming), rules }, nodeFacts(n));
        const got: Verdict = v.kind === 'ok' ? 'ok' : v.miss.reason;
        assert.equal(got, naiveFilter(w.nodes, pods, incoming, n.metadata.name), n.metadata.name);
      }
    }),
    { numRuns: RUNS },
  );
});

void test('property: the drift judge agrees with the naive one on every running pod', () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const pods = w.pods.map((d, i) => podOf(`p${i}`, d, w.templates));
      const { verdicts } = judgeAll(w.nodes, pods);
      for (const p of pods) {
        if (p.metadata.deletionTimestamp !== undefined) continue;
        const key = `${p.metadata.namespace}/${p.metadata.name}`;
        assert.equal(verdicts.get(key)?.kind === 'violated', naiveDrift(w.nodes, pods, p), key);
      }
    }),
    { numRuns: RUNS },
  );
});
