// The clusters the differential test builds: hand-written seed scenarios from the project's
// examples, and seeded random ones over a small label alphabet so that terms match often.
// A world is pure data; differential.test.ts creates it on the run's own nodes.
import { SeededRandom } from '../../support/seeded-random.ts';
import type {
  Affinity,
  LabelSelector,
  LabelSelectorRequirement,
  Labels,
  PodAffinityTerm,
  WeightedPodAffinityTerm,
} from '../../../src/api/core.ts';
import type { Rule } from '../../../src/api/rules.ts';

/** See NEGATIVE_NAMESPACE_SELECTOR in verdicts.ts. */
export const NEGATIVE_NAMESPACE_SELECTOR_DEFECT = 'kubernetes/kubernetes#141526';

export const HOSTNAME = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';

/** What happens to an existing pod once it runs: it stays, it finishes, or it is being deleted. */
export type PodState = 'running' | 'succeeded' | 'failed' | 'terminating';

export interface PodDraft {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  /** Pod (anti-)affinity only; the test adds what pins the pod to its node. */
  readonly affinity?: Affinity;
}

export interface ExistingPod extends PodDraft {
  /** One of the run's nodes, or a node name that does not exist. */
  readonly node: string;
  readonly state: PodState;
}

/** A verdict as both sides give it: accepted, or refused with the scheduler's first failing check. */
export type Expected = 'ok' | Rule;

export interface Probe extends PodDraft {
  /** Seed scenarios: the verdict on each node, in node order, that the scenario is about. */
  readonly expect?: readonly Expected[];
}

export interface World {
  readonly title: string;
  /** The zone label of each of the run's nodes, by index; null: the node has no zone label. */
  readonly zones: readonly (string | null)[];
  /**
   * The hostname label of each node when it is not the node's name: another node's name
   * (two nodes, one domain) or null (no hostname label). Absent: every node its own name.
   */
  readonly hostnames?: readonly (string | null)[];
  readonly namespaces: readonly { readonly name: string; readonly labels: Labels }[];
  readonly existing: readonly ExistingPod[];
  readonly probes: readonly Probe[];
  /**
   * The id of a known scheduler defect this world shows, if the scheduler has it: when it
   * does, later worlds accept disagreements that the defect's model explains.
   */
  readonly detects?: string;
}

/** Names a world is built from: unique per run and round, so nothing is shared by accident. */
export interface WorldNames {
  /** Prefix of every namespace of the world, e.g. `diff-1a2b-r3`. */
  readonly prefix: string;
  /** The run's nodes, in order. */
  readonly nodes: readonly string[];
  /** A node name that no Node has. */
  readonly ghostNode: string;
  /** Zone values unique to the run (other tests' nodes use zone-a, zone-b). */
  readonly zones: readonly string[];
}

const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREF = 'preferredDuringSchedulingIgnoredDuringExecution';

const term = (
  matchLabels: Labels,
  topologyKey: string,
  extra: Partial<PodAffinityTerm> = {},
): PodAffinityTerm => ({ labelSelector: { matchLabels }, topologyKey, ...extra });

const rules = (affinity: PodAffinityTerm[], antiAffinity: PodAffinityTerm[]): Affinity => ({
  ...(affinity.length > 0 ? { podAffinity: { [REQ]: affinity } } : {}),
  ...(antiAffinity.length > 0 ? { podAntiAffinity: { [REQ]: antiAffinity } } : {}),
});

// ------------------------------------------------------------------ seed scenarios

/** What every seed scenario is built from. */
function seedKit(n: WorldNames) {
  const node = (i: number): string => n.nodes[i] ?? '';
  const [z1, z2] = n.zones as [string, string];
  const shop = `${n.prefix}-shop`;
  const pod = (
    name: string,
    at: number | string,
    labels: Labels,
    affinity?: Affinity,
    state: PodState = 'running',
  ): ExistingPod => ({
    name,
    namespace: shop,
    labels,
    node: typeof at === 'number' ? node(at) : at,
    state,
    ...(affinity ? { affinity } : {}),
  });
  const codes: Readonly<Record<string, Expected>> = {
    '.': 'ok',
    A: 'podAffinity',
    N: 'podAntiAffinity',
    S: 'symmetricAntiAffinity',
  };
  /** `expect`: one letter per node: . accepted, A/N/S refused by affinity/anti/symmetric. */
  const probe = (
    name: string,
    labels: Labels,
    affinity: Affinity | undefined,
    expect: string,
    namespace = shop,
  ): Probe => ({
    name,
    namespace,
    labels,
    expect: expect.split('').map((c) => {
      const code = codes[c];
      if (code === undefined) throw new Error(`${name}: "${c}" is not a verdict code`);
      return code;
    }),
    ...(affinity ? { affinity } : {}),
  });
  return {
    shop,
    other: `${n.prefix}-other`,
    // Nodes 0,1 in zone 1, nodes 2,3 in zone 2, node 4 without a zone label.
    zones: [z1, z1, z2, z2, null],
    ns: (name: string) => ({ name, labels: {} }),
    pod,
    probe,
  };
}

const checkoutAnti = term({ app: 'checkout' }, HOSTNAME);
const redisAnti = term({ app: 'checkout-redis' }, HOSTNAME);
const nearCheckout = term({ app: 'checkout' }, HOSTNAME);
const cacheZone = term({ app: 'cache' }, ZONE);
const cacheHost = term({ app: 'cache' }, HOSTNAME);
const awayFromB = term({ app: 'b' }, HOSTNAME);

/**
 * The project's seed cases (test/fixtures/checkout, examples/workloads): checkout spread one
 * per host; checkout-redis next to a checkout, one per host; the first pod of a self-affine
 * group; and the edges around them. Each probe states the verdict it expects on each node,
 * so a harness bug that made both sides agree on nonsense (everything accepted, say) would
 * still fail. Each builder gets names of its own (namespaces are deleted asynchronously).
 */
export const SEED_WORLDS: readonly ((n: WorldNames) => World)[] = [
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: checkout anti-affinity per host',
      zones: k.zones,
      namespaces: [k.ns(k.shop), k.ns(k.other)],
      existing: [
        k.pod('checkout-0', 0, { app: 'checkout' }, rules([], [checkoutAnti])),
        k.pod('checkout-1', 2, { app: 'checkout' }, rules([], [checkoutAnti])),
      ],
      probes: [
        k.probe('checkout', { app: 'checkout' }, rules([], [checkoutAnti]), 'N.N..'),
        // No terms of its own: only the running checkouts' terms keep it away.
        k.probe('bare-checkout', { app: 'checkout' }, undefined, 'S.S..'),
        // Their terms name their own namespace only.
        k.probe('elsewhere', { app: 'checkout' }, undefined, '.....', k.other),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: checkout-redis next to a checkout, one per host',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [
        k.pod('checkout-0', 0, { app: 'checkout' }, rules([], [checkoutAnti])),
        k.pod('checkout-1', 1, { app: 'checkout' }, rules([], [checkoutAnti])),
        k.pod('redis-0', 0, { app: 'checkout-redis' }, rules([nearCheckout], [redisAnti])),
      ],
      probes: [
        k.probe('redis', { app: 'checkout-redis' }, rules([nearCheckout], [redisAnti]), 'N.AAA'),
        k.probe(
          'redis-zone',
          { app: 'checkout-redis' },
          rules([term({ app: 'checkout' }, ZONE)], [redisAnti]),
          'N.AAA',
        ),
        // A checkout cannot join a host that has one (its own term, and theirs).
        k.probe('checkout', { app: 'checkout' }, rules([], [checkoutAnti]), 'NN...'),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: the first pod of a self-affine group',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [],
      probes: [
        // Nothing matches yet and it matches its own term: it may start anywhere that has
        // the topology key, and nowhere that lacks it.
        k.probe('cache', { app: 'cache' }, rules([cacheZone], []), '....A'),
        k.probe('cache-two-keys', { app: 'cache' }, rules([cacheZone, cacheHost], []), '....A'),
        // It does not match its own term: no exception.
        k.probe('client', { app: 'client' }, rules([cacheZone], []), 'AAAAA'),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: self-affinity once the group has started',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [k.pod('cache-0', 0, { app: 'cache' }, rules([cacheZone], []))],
      probes: [
        k.probe('cache', { app: 'cache' }, rules([cacheZone], []), '..AAA'),
        k.probe('cache-host', { app: 'cache' }, rules([cacheHost], []), '.AAAA'),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: a match on a node without the topology key is in no domain',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [k.pod('cache-0', 4, { app: 'cache' })],
      probes: [
        // The only match runs where there is no zone: it counts nowhere, so the first-pod
        // exception still applies...
        k.probe('cache', { app: 'cache' }, rules([cacheZone], []), '....A'),
        // ...while by hostname it is a match, and the exception is gone.
        k.probe('cache-host', { app: 'cache' }, rules([cacheHost], []), 'AAAA.'),
        // Anti-affinity by zone cannot see it either.
        k.probe('loner', { app: 'x' }, rules([], [cacheZone]), '.....'),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: finished pods and pods on a missing node are not neighbours',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [
        k.pod('done', 0, { app: 'a' }, rules([], [awayFromB]), 'succeeded'),
        k.pod('crashed', 1, { app: 'a' }, rules([], [awayFromB]), 'failed'),
        k.pod('orphan', n.ghostNode, { app: 'a' }, rules([], [awayFromB])),
      ],
      probes: [
        k.probe('b', { app: 'b' }, undefined, '.....'),
        k.probe('b-near-a', { app: 'b' }, rules([term({ app: 'a' }, HOSTNAME)], []), 'AAAAA'),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    const teamless = { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] };
    const notRed = { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['red'] }] };
    return {
      title: 'seed: a namespaceSelector that excludes namespaces by label',
      detects: NEGATIVE_NAMESPACE_SELECTOR_DEFECT,
      zones: k.zones,
      namespaces: [
        { name: k.shop, labels: { team: 'red' } },
        { name: k.other, labels: {} },
      ],
      existing: [
        k.pod('a-red', 0, { app: 'a' }),
        { ...k.pod('a-teamless', 2, { app: 'a' }), namespace: k.other },
      ],
      probes: [
        // Only the app=a pod of the namespace without a team counts.
        k.probe(
          'away-from-teamless-a',
          { app: 'b' },
          rules([], [term({ app: 'a' }, HOSTNAME, { namespaceSelector: teamless })]),
          '..N..',
        ),
        k.probe(
          'near-non-red-a',
          { app: 'b' },
          rules([term({ app: 'a' }, HOSTNAME, { namespaceSelector: notRed })], []),
          'AA.AA',
        ),
      ],
    };
  },
  (n) => {
    const k = seedKit(n);
    return {
      title: 'seed: pods being deleted are still neighbours to the scheduler',
      zones: k.zones,
      namespaces: [k.ns(k.shop)],
      existing: [
        k.pod('leaving', 0, { app: 'a' }, rules([], [awayFromB]), 'terminating'),
        k.pod('leaving-too', 2, { app: 'a' }, undefined, 'terminating'),
      ],
      probes: [
        k.probe('b', { app: 'b' }, undefined, 'S....'),
        k.probe('c-near-a', { app: 'c' }, rules([term({ app: 'a' }, HOSTNAME)], []), '.A.AA'),
      ],
    };
  },
];

// ------------------------------------------------------------------ random worlds

/** Seeded random choices for the random worlds. */
export class Rng extends SeededRandom {
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** Between min and max distinct items, in random order. */
  subset<T>(items: readonly T[], min: number, max: number): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy.slice(0, Math.min(copy.length, this.int(min, max)));
  }
}

/** The seed of round `round` of a run seeded `seed`: a round can be replayed on its own. */
export const roundSeed = (seed: number, round: number): number =>
  (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(round + 1, 0xc2b2ae35)) >>> 0;

const POD_KEYS = { app: ['a', 'b', 'c'], tier: ['x', 'y'] } as const;
const NS_KEYS = { team: ['red', 'blue'], env: ['prod', 'dev'] } as const;
type Alphabet = Readonly<Record<string, readonly string[]>>;

function randomLabels(rng: Rng, alphabet: Alphabet, p: number): Labels {
  const out: Record<string, string> = {};
  for (const [key, values] of Object.entries(alphabet)) {
    if (rng.chance(p)) out[key] = rng.pick(values);
  }
  return out;
}

function requirement(rng: Rng, alphabet: Alphabet): LabelSelectorRequirement {
  const key = rng.pick(Object.keys(alphabet));
  const values = alphabet[key] ?? [];
  switch (rng.pick(['In', 'In', 'NotIn', 'Exists', 'DoesNotExist'] as const)) {
    case 'In':
      return { key, operator: 'In', values: rng.subset(values, 1, 2) };
    case 'NotIn':
      return { key, operator: 'NotIn', values: rng.subset(values, 1, 1) };
    case 'Exists':
      return { key, operator: 'Exists' };
    case 'DoesNotExist':
      return { key, operator: 'DoesNotExist' };
  }
}

/** A selector over `alphabet`: matchLabels, matchExpressions or both, or `{}` (everything). */
function randomSelector(rng: Rng, alphabet: Alphabet): LabelSelector {
  if (rng.chance(0.08)) return {};
  const matchLabels: Record<string, string> = {};
  const matchExpressions: LabelSelectorRequirement[] = [];
  for (let i = rng.int(1, 2); i > 0; i--) {
    if (rng.chance(0.4)) {
      const key = rng.pick(Object.keys(alphabet));
      matchLabels[key] = rng.pick(alphabet[key] ?? []);
    } else {
      matchExpressions.push(requirement(rng, alphabet));
    }
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}

const selectorKeys = (s: LabelSelector): Set<string> =>
  new Set([...Object.keys(s.matchLabels ?? {}), ...(s.matchExpressions ?? []).map((e) => e.key)]);

/**
 * Namespace scope of a term: its own namespace (nothing set), a list (sometimes naming a
 * namespace that does not exist), `namespaceSelector: {}` (all), a selector on namespace
 * labels, or a list and a selector together.
 */
function randomScope(
  rng: Rng,
  namespaces: readonly string[],
  prefix: string,
): Pick<PodAffinityTerm, 'namespaces' | 'namespaceSelector'> {
  const list = (): string[] => rng.subset([...namespaces, `${prefix}-missing`], 1, 2);
  const r = rng.next();
  if (r < 0.4) return {};
  if (r < 0.55) return { namespaces: list() };
  if (r < 0.7) return { namespaceSelector: {} };
  if (r < 0.92) return { namespaceSelector: randomSelector(rng, NS_KEYS) };
  return { namespaces: list(), namespaceSelector: randomSelector(rng, NS_KEYS) };
}

function randomTerm(rng: Rng, namespaces: readonly string[], prefix: string): PodAffinityTerm {
  const topologyKey = rng.chance(0.5) ? HOSTNAME : ZONE;
  const scope = randomScope(rng, namespaces, prefix);
  // A term without a labelSelector selects no pod at all.
  if (rng.chance(0.04)) return { topologyKey, ...scope };
  const labelSelector = randomSelector(rng, POD_KEYS);
  // The API server refuses a key in both a *LabelKeys list and the selector.
  const free = Object.keys(POD_KEYS).filter((k) => !selectorKeys(labelSelector).has(k));
  const keys =
    free.length > 0 && rng.chance(0.15)
      ? rng.chance(0.5)
        ? { matchLabelKeys: [rng.pick(free)] }
        : { mismatchLabelKeys: [rng.pick(free)] }
      : {};
  return { labelSelector, topologyKey, ...scope, ...keys };
}

function randomAffinity(
  rng: Rng,
  counts: { affinity: readonly number[]; anti: readonly number[] },
  namespaces: readonly string[],
  prefix: string,
): Affinity | undefined {
  const terms = (n: number): PodAffinityTerm[] =>
    Array.from({ length: n }, () => randomTerm(rng, namespaces, prefix));
  const affinity = terms(rng.pick(counts.affinity));
  const anti = terms(rng.pick(counts.anti));
  // Preferred terms never refuse a node: a few, to check that neither side treats them so.
  const preferred: WeightedPodAffinityTerm[] = rng.chance(0.1)
    ? [{ weight: rng.int(1, 100), podAffinityTerm: randomTerm(rng, namespaces, prefix) }]
    : [];
  if (affinity.length + anti.length + preferred.length === 0) return undefined;
  return {
    ...(affinity.length > 0 ? { podAffinity: { [REQ]: affinity } } : {}),
    ...(anti.length > 0 || preferred.length > 0
      ? {
          podAntiAffinity: {
            ...(anti.length > 0 ? { [REQ]: anti } : {}),
            ...(preferred.length > 0 ? { [PREF]: preferred } : {}),
          },
        }
      : {}),
  };
}

/**
 * A random world: zones over 3 values with some nodes unlabelled, hostname labels mostly
 * the node's name (sometimes shared or missing), 2-3 namespaces with
 * random labels, 4-14 pods placed anywhere (violations included: they bypass the
 * scheduler), a few finished or on a node that does not exist, and `probes` probes.
 */
export function randomWorld(rng: Rng, n: WorldNames, title: string, probes: number): World {
  const zones = n.nodes.map(() => (rng.chance(0.15) ? null : rng.pick(n.zones)));
  // The hostname is a label like any other: mostly the node's name, sometimes another
  // node's (one domain over two nodes), sometimes missing.
  const hostnames = n.nodes.map((name) => {
    const r = rng.next();
    return r < 0.06 ? rng.pick(n.nodes) : r < 0.1 ? null : name;
  });
  const namespaces = Array.from({ length: rng.int(2, 3) }, (_, i) => ({
    name: `${n.prefix}-n${i}`,
    labels: randomLabels(rng, NS_KEYS, 0.6),
  }));
  const names = namespaces.map((ns) => ns.name);
  const existing: ExistingPod[] = Array.from({ length: rng.int(4, 14) }, (_, i) => {
    const affinity = rng.chance(0.35)
      ? undefined
      : randomAffinity(rng, { affinity: [0, 0, 1], anti: [0, 1, 1, 2] }, names, n.prefix);
    const r = rng.next();
    const state: PodState = r < 0.05 ? 'succeeded' : r < 0.08 ? 'failed' : 'running';
    return {
      name: `e${i}`,
      namespace: rng.pick(names),
      labels: randomLabels(rng, POD_KEYS, 0.7),
      node: rng.chance(0.03) ? n.ghostNode : rng.pick(n.nodes),
      state,
      ...(affinity ? { affinity } : {}),
    };
  });
  const probeList: Probe[] = Array.from({ length: probes }, (_, i) => {
    const affinity = randomAffinity(
      rng,
      { affinity: [0, 0, 0, 1, 1, 2], anti: [0, 0, 1, 1, 2] },
      names,
      n.prefix,
    );
    return {
      name: `p${i}`,
      namespace: rng.pick(names),
      labels: randomLabels(rng, POD_KEYS, 0.7),
      ...(affinity ? { affinity } : {}),
    };
  });
  return { title, zones, hostnames, namespaces, existing, probes: probeList };
}
