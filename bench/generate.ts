/**
 * A deterministic synthetic cluster for the engine benchmark: nodes in three zones,
 * labelled namespaces, Deployments with ReplicaSets and their pods, a third of the
 * workloads with pod (anti-)affinity terms, a few PlacementPolicies. Pods are placed
 * the way a scheduler honouring those terms would place them, except for a small,
 * seeded share of workloads that get one replica put where it breaks a rule.
 *
 * No dependencies and no Math.random: the same options give the same cluster.
 */
import { SeededRandom } from '../test/support/seeded-random.ts';
import type {
  Affinity,
  Labels,
  LabelSelector,
  Namespace,
  Node,
  Pod,
  PodAffinityTerm,
  TopologySpreadConstraint,
  WeightedPodAffinityTerm,
} from '../src/api/core.ts';
import type { PlacementPolicy } from '../src/api/policy.ts';
import type { ClusterSnapshot, WorkloadObject } from '../src/engine/index.ts';

export const HOST = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';
export const REGION = 'topology.kubernetes.io/region';
const REGION_NAME = 'eu-west-1';
const ZONES = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] as const;
const TIERS = ['frontend', 'backend', 'cache', 'batch', 'worker'] as const;
const ENVS = ['prod', 'staging', 'dev'] as const;
const PLATFORM_NAMESPACES = ['platform-a', 'platform-b', 'platform-c'] as const;
const WORDS = [
  'web',
  'api',
  'cart',
  'search',
  'auth',
  'billing',
  'ledger',
  'feed',
  'media',
  'notify',
  'report',
  'ingest',
  'etl',
  'queue',
  'gateway',
  'profile',
  'inventory',
  'pricing',
  'ads',
  'session',
] as const;
/** The alphabet Kubernetes uses for generated name suffixes and pod-template-hash. */
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

export interface ClusterOptions {
  readonly nodes: number;
  /** Placed pods; a few unplaced (Pending, Failed) pods come on top. */
  readonly pods: number;
  readonly namespaces?: number;
  /** Default: one workload per ten pods. */
  readonly workloads?: number;
  readonly seed?: number;
  /** Share of constrained workloads that get one deliberately misplaced replica. */
  readonly violationRate?: number;
}

export interface ClusterStats {
  readonly nodes: number;
  readonly nodesWithoutZone: number;
  readonly namespaces: number;
  readonly workloads: number;
  readonly constrainedWorkloads: number;
  readonly workloadsWithRequiredTerms: number;
  readonly misplacedWorkloads: number;
  readonly placedPods: number;
  readonly unplacedPods: number;
  readonly podsWithTerms: number;
  readonly policies: number;
  readonly plans: Readonly<Record<string, number>>;
}

export interface GeneratedCluster {
  readonly snapshot: ClusterSnapshot;
  readonly stats: ClusterStats;
}

/** Seeded random choices for the generated cluster. */
export class Rng extends SeededRandom {
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(list: readonly T[]): T {
    return at(list, this.int(list.length));
  }

  word(length: number): string {
    let s = '';
    for (let i = 0; i < length; i++) s += SAFE.charAt(this.int(SAFE.length));
    return s;
  }
}

/** `list[i]`, for indexes the caller knows are in range. */
export function at<T>(list: readonly T[], i: number): T {
  const v = list[i];
  if (v === undefined) throw new RangeError(`index ${i} out of range 0..${list.length - 1}`);
  return v;
}

/** How a workload's replicas are put on nodes, which is what its terms ask for. */
type Plan =
  | { readonly kind: 'free' }
  | { readonly kind: 'zonal'; readonly zone: number }
  | { readonly kind: 'distinctNodes' }
  | { readonly kind: 'distinctZones' }
  | { readonly kind: 'oneZone'; readonly zone: number }
  | { readonly kind: 'partnerZones'; readonly partner: number }
  | { readonly kind: 'partnerNodes'; readonly partner: number }
  | { readonly kind: 'fixedZones'; readonly zones: readonly number[] }
  | { readonly kind: 'avoidPartnerNodes'; readonly partner: number }
  | { readonly kind: 'roundRobinZones' };

interface Workload {
  readonly namespace: string;
  readonly name: string;
  readonly hash: string;
  readonly labels: Labels;
  replicas: number;
  readonly affinity: Affinity | undefined;
  readonly plan: Plan;
  readonly constrained: boolean;
  readonly hasRequired: boolean;
  violate: boolean;
}

const sel = (app: string): LabelSelector => ({ matchLabels: { app } });

const required = (terms: PodAffinityTerm[]) => ({
  requiredDuringSchedulingIgnoredDuringExecution: terms,
});
const preferred = (terms: WeightedPodAffinityTerm[]) => ({
  preferredDuringSchedulingIgnoredDuringExecution: terms,
});

/** The policies of every generated cluster; `placementPlanFor` knows which workloads they bind. */
export function policies(): PlacementPolicy[] {
  const apiVersion = 'placement.dev/v1alpha1';
  return [
    {
      // Required hostname spread of the frontends of one team: adds anti-affinity on each
      // workload's own selector, equal to the term some of them already carry.
      apiVersion,
      kind: 'PlacementPolicy',
      metadata: { name: 'spread-frontends', namespace: 'team-03', generation: 1 },
      spec: {
        targets: { selector: { matchLabels: { tier: 'frontend' } } },
        spreadAcross: [{ topologyKey: HOST, mode: 'Required' }],
      },
    },
    {
      apiVersion,
      kind: 'ClusterPlacementPolicy',
      metadata: { name: 'spread-backends-team-05', generation: 1 },
      spec: {
        priority: 5,
        targets: {
          namespaces: ['team-05'],
          selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] },
        },
        spreadAcross: [{ topologyKey: HOST, mode: 'Required' }],
      },
    },
    {
      // Preferred zone spread of everything in production: one preferred term per workload.
      apiVersion,
      kind: 'ClusterPlacementPolicy',
      metadata: { name: 'prefer-zone-spread-prod', generation: 3 },
      spec: {
        priority: 10,
        targets: { namespaceSelector: { matchLabels: { env: 'prod' } } },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 50 }],
      },
    },
    {
      apiVersion,
      kind: 'PlacementPolicy',
      metadata: { name: 'frontends-away-from-batch', namespace: 'team-07', generation: 2 },
      spec: {
        mode: 'Audit',
        targets: { selector: { matchLabels: { tier: 'frontend' } } },
        affinity: {
          podAntiAffinity: preferred([
            {
              weight: 30,
              podAffinityTerm: {
                labelSelector: { matchLabels: { tier: 'batch' } },
                topologyKey: HOST,
              },
            },
          ]),
        },
      },
    },
    {
      // Audit mode: judged on pods whose templates do not carry it (they never will).
      apiVersion,
      kind: 'ClusterPlacementPolicy',
      metadata: { name: 'zone-spread-staging', generation: 1 },
      spec: {
        mode: 'Audit',
        targets: {
          namespaceSelector: { matchLabels: { env: 'staging' } },
          selector: { matchLabels: { spread: 'zones' } },
        },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
      },
    },
    {
      // Audit disabled: compiled, then left out of audits. Were it judged, every
      // workload with two replicas on one node would break it.
      apiVersion,
      kind: 'ClusterPlacementPolicy',
      metadata: { name: 'one-per-node-everywhere', generation: 1 },
      spec: {
        mode: 'Audit',
        audit: { enabled: false },
        spreadAcross: [{ topologyKey: HOST, mode: 'Required' }],
      },
    },
  ];
}

interface Topology {
  readonly nodes: Node[];
  readonly nodeZone: (number | undefined)[];
  readonly zoneNodes: number[][];
  readonly unzoned: number[];
}

function makeNodes(count: number, rng: Rng): Topology {
  // One node in a thousand (at least one) has no zone label: outside every zone domain.
  const unzonedCount = count >= 10 ? Math.max(1, Math.floor(count / 1000)) : 0;
  const nodes: Node[] = [];
  const nodeZone: (number | undefined)[] = [];
  const zoneNodes: number[][] = ZONES.map(() => []);
  const unzoned: number[] = [];
  const types = ['m6i.2xlarge', 'm6i.4xlarge', 'c6i.4xlarge', 'r6i.2xlarge'];
  for (let i = 0; i < count; i++) {
    const name = `node-${String(i).padStart(5, '0')}`;
    const zoned = i < count - unzonedCount;
    const zone = i % ZONES.length;
    const labels: Record<string, string> = {
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/os': 'linux',
      [HOST]: name,
      [REGION]: REGION_NAME,
      'node.kubernetes.io/instance-type': rng.pick(types),
      'placement.dev/pool': `pool-${i % 7}`,
    };
    if (zoned) {
      labels[ZONE] = at(ZONES, zone);
      at(zoneNodes, zone).push(i);
      nodeZone.push(zone);
    } else {
      unzoned.push(i);
      nodeZone.push(undefined);
    }
    nodes.push({ metadata: { name, labels, uid: uid(rng), resourceVersion: String(1000 + i) } });
  }
  return { nodes, nodeZone, zoneNodes, unzoned };
}

function makeNamespaces(count: number): { namespaces: Namespace[]; teams: string[] } {
  const namespaces: Namespace[] = [];
  const teams: string[] = [];
  for (const name of PLATFORM_NAMESPACES) {
    namespaces.push({
      metadata: {
        name,
        labels: { 'kubernetes.io/metadata.name': name, env: 'platform', team: 'platform' },
      },
    });
  }
  for (let i = 0; i < count - PLATFORM_NAMESPACES.length; i++) {
    const name = `team-${String(i).padStart(2, '0')}`;
    teams.push(name);
    namespaces.push({
      metadata: {
        name,
        labels: {
          'kubernetes.io/metadata.name': name,
          env: at(ENVS, i % ENVS.length),
          team: name,
          'cost-center': `cc-${i % 9}`,
        },
      },
    });
  }
  return { namespaces, teams };
}

function uid(rng: Rng): string {
  const hex = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += rng.int(16).toString(16);
    return s;
  };
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}

/** A replica count: mostly small, a long tail of large workloads (mean about 10). */
function drawReplicas(rng: Rng): number {
  const r = rng.next();
  if (r < 0.4) return 1 + rng.int(3);
  if (r < 0.75) return 4 + rng.int(7);
  if (r < 0.95) return 11 + rng.int(20);
  return 31 + rng.int(70);
}

type ConstrainedKind =
  | 'antiHost'
  | 'antiZone'
  | 'preferSpread'
  | 'partnerZone'
  | 'partnerNode'
  | 'sharedZone'
  | 'selfZone'
  | 'avoidPartner'
  | 'preferPartner';

const CONSTRAINED_WEIGHTS: readonly (readonly [ConstrainedKind, number])[] = [
  ['antiHost', 28],
  ['antiZone', 8],
  ['preferSpread', 15],
  ['partnerZone', 12],
  ['partnerNode', 7],
  ['sharedZone', 10],
  ['selfZone', 5],
  ['avoidPartner', 8],
  ['preferPartner', 7],
];

function drawKind(rng: Rng): ConstrainedKind {
  let r = rng.int(100);
  for (const [kind, w] of CONSTRAINED_WEIGHTS) {
    if (r < w) return kind;
    r -= w;
  }
  return 'antiHost';
}

interface Draft {
  readonly affinity: Affinity | undefined;
  readonly plan: Plan;
  readonly extraLabels?: Labels;
  readonly hasRequired: boolean;
  readonly kind: string;
}

/**
 * The terms and placement of one constrained workload. `partners` are earlier,
 * unconstrained workloads of the same namespace (placed already).
 */
function constrainedDraft(
  kind: ConstrainedKind,
  w: { app: string; hash: string; namespace: string; env: string },
  partners: readonly number[],
  workloads: readonly Workload[],
  rng: Rng,
): Draft {
  const partner = partners.length > 0 ? rng.pick(partners) : undefined;
  const partnerApp = partner === undefined ? undefined : at(workloads, partner).labels['app'];
  switch (kind) {
    case 'antiHost': {
      // Some carry matchLabelKeys, read back from the API server already merged.
      const withHash = rng.chance(0.4);
      const labelSelector: LabelSelector = withHash
        ? {
            matchLabels: { app: w.app },
            matchExpressions: [{ key: 'pod-template-hash', operator: 'In', values: [w.hash] }],
          }
        : sel(w.app);
      const term: PodAffinityTerm = {
        labelSelector,
        topologyKey: HOST,
        ...(withHash ? { matchLabelKeys: ['pod-template-hash'] } : {}),
        ...(rng.chance(0.25) ? { namespaceSelector: {} } : {}),
      };
      return {
        kind,
        affinity: {
          podAntiAffinity: {
            ...required([term]),
            ...(rng.chance(0.5)
              ? preferred([
                  {
                    weight: 100,
                    podAffinityTerm: { labelSelector: sel(w.app), topologyKey: ZONE },
                  },
                ])
              : {}),
          },
        },
        plan: { kind: 'distinctNodes' },
        hasRequired: true,
      };
    }
    case 'antiZone':
      // In staging the Audit-mode policy zone-spread-staging asks it instead of the pod.
      if (w.env === 'staging') {
        return {
          kind: 'antiZone(policy)',
          affinity: undefined,
          plan: { kind: 'distinctZones' },
          extraLabels: { spread: 'zones' },
          hasRequired: true,
        };
      }
      return {
        kind,
        affinity: {
          podAntiAffinity: required([{ labelSelector: sel(w.app), topologyKey: ZONE }]),
        },
        plan: { kind: 'distinctZones' },
        hasRequired: true,
      };
    case 'preferSpread': {
      const terms: WeightedPodAffinityTerm[] = [
        { weight: 100, podAffinityTerm: { labelSelector: sel(w.app), topologyKey: HOST } },
        { weight: 50, podAffinityTerm: { labelSelector: sel(w.app), topologyKey: ZONE } },
      ];
      // A few selectors with no In or Exists requirement: no label narrows them, so
      // every pod is a candidate for their groups.
      if (rng.chance(0.02)) {
        terms.push({
          weight: 10,
          podAffinityTerm: {
            labelSelector: {
              matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['batch'] }],
            },
            topologyKey: HOST,
          },
        });
      }
      return {
        kind,
        affinity: { podAntiAffinity: preferred(terms) },
        plan: { kind: 'free' },
        hasRequired: false,
      };
    }
    case 'partnerZone':
      if (partnerApp === undefined || partner === undefined) break;
      return {
        kind,
        affinity: {
          podAffinity: {
            ...required([{ labelSelector: sel(partnerApp), topologyKey: ZONE }]),
            ...(rng.chance(0.3)
              ? preferred([
                  {
                    weight: 20,
                    podAffinityTerm: { labelSelector: sel(partnerApp), topologyKey: HOST },
                  },
                ])
              : {}),
          },
        },
        plan: { kind: 'partnerZones', partner },
        hasRequired: true,
      };
    case 'partnerNode':
      if (partnerApp === undefined || partner === undefined) break;
      return {
        kind,
        affinity: {
          podAffinity: required([{ labelSelector: sel(partnerApp), topologyKey: HOST }]),
        },
        plan: { kind: 'partnerNodes', partner },
        hasRequired: true,
      };
    case 'sharedZone': {
      if (rng.chance(0.4)) {
        // The shared database runs in two zones only, in one named namespace.
        return {
          kind: 'sharedDbZone',
          affinity: {
            podAffinity: required([
              { labelSelector: sel('shared-db'), namespaces: ['platform-a'], topologyKey: ZONE },
            ]),
          },
          plan: { kind: 'fixedZones', zones: [0, 1] },
          hasRequired: true,
        };
      }
      // Two terms with one selector: a matching pod must be in the same zone and region.
      const term = (topologyKey: string): PodAffinityTerm => ({
        labelSelector: sel('shared-cache'),
        namespaceSelector: { matchLabels: { env: 'platform' } },
        topologyKey,
      });
      return {
        kind: 'sharedCacheZone',
        affinity: {
          podAffinity: required(rng.chance(0.5) ? [term(ZONE), term(REGION)] : [term(ZONE)]),
        },
        plan: { kind: 'fixedZones', zones: [0, 1, 2] },
        hasRequired: true,
      };
    }
    case 'selfZone':
      return {
        kind,
        affinity: { podAffinity: required([{ labelSelector: sel(w.app), topologyKey: ZONE }]) },
        plan: { kind: 'oneZone', zone: rng.int(ZONES.length) },
        hasRequired: true,
      };
    case 'avoidPartner':
      if (partnerApp === undefined || partner === undefined) break;
      return {
        kind,
        affinity: {
          podAntiAffinity: required([{ labelSelector: sel(partnerApp), topologyKey: HOST }]),
        },
        plan: { kind: 'avoidPartnerNodes', partner },
        hasRequired: true,
      };
    case 'preferPartner': {
      // Some prefer nodes with any monitored pod: a selector anchored on a key only.
      const labelSelector: LabelSelector =
        rng.chance(0.1) || partnerApp === undefined
          ? { matchExpressions: [{ key: 'monitoring', operator: 'Exists' }] }
          : sel(partnerApp);
      return {
        kind,
        affinity: {
          podAffinity: preferred([
            { weight: 50, podAffinityTerm: { labelSelector, topologyKey: ZONE } },
          ]),
        },
        plan: { kind: 'free' },
        hasRequired: false,
      };
    }
  }
  // No partner in the namespace yet: fall back to spreading over hostnames.
  return constrainedDraft('antiHost', w, partners, workloads, rng);
}

/** Whether a required-spread policy of `policies()` targets the workload (same rules as the engine). */
function requiredSpreadPolicyTargets(namespace: string, tier: string): boolean {
  return (
    (namespace === 'team-03' && tier === 'frontend') ||
    (namespace === 'team-05' && tier === 'backend')
  );
}

export function generateCluster(options: ClusterOptions): GeneratedCluster {
  const rng = new Rng(options.seed ?? 20261125);
  const nodeCount = options.nodes;
  const podTarget = options.pods;
  const nsCount = Math.max(options.namespaces ?? 50, PLATFORM_NAMESPACES.length + 1);
  const violationRate = options.violationRate ?? 0.02;
  const topo = makeNodes(nodeCount, rng);
  const { namespaces, teams } = makeNamespaces(nsCount);
  const envOf = new Map(
    namespaces.map((n) => [n.metadata.name, n.metadata.labels?.['env'] ?? ''] as const),
  );

  const workloads: Workload[] = [];
  const plans: Record<string, number> = {};
  const count = (kind: string) => (plans[kind] = (plans[kind] ?? 0) + 1);

  // Shared services in the platform namespaces, selected across namespaces.
  for (const ns of PLATFORM_NAMESPACES) {
    workloads.push(
      shared(ns, 'shared-cache', 'cache', Math.min(6, podTarget), { kind: 'roundRobinZones' }),
    );
    count('shared');
  }
  workloads.push(
    shared('platform-a', 'shared-db', 'db', Math.min(4, podTarget), {
      kind: 'fixedZones',
      zones: [0, 1],
    }),
  );
  count('shared');
  function shared(ns: string, app: string, tier: string, replicas: number, plan: Plan): Workload {
    return {
      namespace: ns,
      name: app,
      hash: rng.word(10),
      labels: { app, tier, monitoring: 'enabled' },
      replicas,
      affinity: undefined,
      plan,
      constrained: false,
      hasRequired: false,
      violate: false,
    };
  }

  const workloadCount = Math.max(1, options.workloads ?? Math.round(podTarget / 10));
  const partnersByNs = new Map<string, number[]>();
  for (let i = 0; i < workloadCount; i++) {
    const namespace = rng.pick(teams);
    const env = envOf.get(namespace) ?? '';
    const tier = rng.pick(TIERS);
    const app = `${rng.pick(WORDS)}-${i.toString(36)}`;
    const hash = rng.word(10);
    const labels: Record<string, string> = { app, tier };
    if (rng.chance(0.01)) labels['monitoring'] = 'enabled';
    const partners = partnersByNs.get(namespace) ?? [];
    let draft: Draft;
    if (requiredSpreadPolicyTargets(namespace, tier)) {
      // A policy asks for one pod per node; half the workloads also carry the same term.
      draft = {
        kind: 'policySpread',
        affinity: rng.chance(0.5)
          ? { podAntiAffinity: required([{ labelSelector: sel(app), topologyKey: HOST }]) }
          : undefined,
        plan: { kind: 'distinctNodes' },
        hasRequired: true,
      };
    } else if (rng.chance(1 / 3)) {
      draft = constrainedDraft(
        drawKind(rng),
        { app, hash, namespace, env },
        partners,
        workloads,
        rng,
      );
    } else {
      const zonal = rng.chance(0.3);
      draft = {
        kind: zonal ? 'zonal' : 'free',
        affinity: undefined,
        plan: zonal ? { kind: 'zonal', zone: rng.int(ZONES.length) } : { kind: 'free' },
        hasRequired: false,
      };
    }
    count(draft.kind);
    const constrained = draft.affinity !== undefined || draft.extraLabels !== undefined;
    const w: Workload = {
      namespace,
      name: app,
      hash,
      labels: { ...labels, ...draft.extraLabels },
      replicas: drawReplicas(rng),
      affinity: draft.affinity,
      plan: draft.plan,
      constrained: constrained || draft.kind === 'policySpread',
      hasRequired: draft.hasRequired,
      violate: false,
    };
    workloads.push(w);
    if (!w.constrained) partners.push(workloads.length - 1);
    partnersByNs.set(namespace, partners);
  }

  fitReplicas(workloads, podTarget, nodeCount, rng);
  for (const w of workloads) {
    if (w.constrained && rng.chance(violationRate)) w.violate = true;
  }

  // Place every workload, partners (earlier) first.
  const nodesOf: number[][] = [];
  for (const w of workloads) nodesOf.push(place(w, nodesOf, topo, rng));

  const pods: Pod[] = [];
  const objects: WorkloadObject[] = [];
  workloads.forEach((w, i) => {
    const rs = `${w.name}-${w.hash}`;
    objects.push(
      {
        kind: 'Deployment',
        metadata: { name: w.name, namespace: w.namespace },
        spec: { selector: sel(w.name), template: { metadata: { labels: w.labels } } },
      },
      {
        kind: 'ReplicaSet',
        metadata: {
          name: rs,
          namespace: w.namespace,
          ownerReferences: [{ kind: 'Deployment', name: w.name, controller: true }],
        },
        spec: {
          selector: { matchLabels: { ...w.labels, 'pod-template-hash': w.hash } },
          template: { metadata: { labels: { ...w.labels, 'pod-template-hash': w.hash } } },
        },
      },
    );
    for (const node of at(nodesOf, i)) {
      pods.push(makePod(w, rs, at(topo.nodes, node).metadata.name, 'Running', rng));
    }
  });
  // Pods the engine must skip: not yet scheduled, or evicted.
  const unplaced = Math.max(2, Math.ceil(podTarget / 1000));
  for (let i = 0; i < unplaced; i++) {
    const w = at(workloads, rng.int(workloads.length));
    const rs = `${w.name}-${w.hash}`;
    pods.push(
      i % 2 === 0
        ? makePod(w, rs, undefined, 'Pending', rng)
        : makePod(w, rs, at(topo.nodes, rng.int(nodeCount)).metadata.name, 'Failed', rng),
    );
  }

  return {
    snapshot: {
      nodes: topo.nodes,
      namespaces,
      pods,
      policies: policies(),
      workloads: objects,
    },
    stats: {
      nodes: nodeCount,
      nodesWithoutZone: topo.unzoned.length,
      namespaces: namespaces.length,
      workloads: workloads.length,
      constrainedWorkloads: workloads.filter((w) => w.constrained).length,
      workloadsWithRequiredTerms: workloads.filter((w) => w.hasRequired).length,
      misplacedWorkloads: workloads.filter((w) => w.violate).length,
      placedPods: pods.length - unplaced,
      unplacedPods: unplaced,
      podsWithTerms: workloads.reduce((n, w) => n + (w.affinity ? w.replicas : 0), 0),
      policies: policies().length,
      plans,
    },
  };
}

function makePod(
  w: Workload,
  rs: string,
  nodeName: string | undefined,
  phase: string,
  rng: Rng,
): Pod {
  return {
    metadata: {
      name: `${rs}-${rng.word(5)}`,
      namespace: w.namespace,
      // Each pod its own labels object, as a decoded API response would have.
      labels: { ...w.labels, 'pod-template-hash': w.hash },
      ownerReferences: [{ kind: 'ReplicaSet', name: rs, controller: true }],
      uid: uid(rng),
      resourceVersion: String(100000 + rng.int(900000)),
    },
    spec: {
      ...(nodeName === undefined ? {} : { nodeName }),
      ...affinityOf(w),
      ...nodeRulesOf(w),
    },
    status: { phase },
  };
}

/** A number from a workload's name, so node rules and spread draw nothing from the Rng. */
function nameHash(w: Workload): number {
  let h = 2166136261;
  for (const c of `${w.namespace}/${w.name}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

/**
 * Node rules and spread constraints, each pod its own objects (as decoded from the API):
 * a quarter of the workloads pin an OS by nodeSelector, a fifth require a pool (met by
 * every node: the judge's cost is the same) and prefer an instance type, a third spread
 * over zones (DoNotSchedule, maxSkew 1, per revision), a quarter prefer to spread over hosts.
 */
function nodeRulesOf(w: Workload): {
  nodeSelector?: Labels;
  affinity?: Affinity;
  topologySpreadConstraints?: TopologySpreadConstraint[];
} {
  const h = nameHash(w);
  const app = w.labels['app'] ?? w.name;
  const spread: TopologySpreadConstraint[] = [
    ...(h % 3 === 0
      ? [
          {
            maxSkew: 1,
            topologyKey: ZONE,
            whenUnsatisfiable: 'DoNotSchedule',
            labelSelector: { matchLabels: { app } },
            matchLabelKeys: ['pod-template-hash'],
          },
        ]
      : []),
    ...(h % 4 === 1
      ? [
          {
            maxSkew: 2,
            topologyKey: HOST,
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: { app } },
          },
        ]
      : []),
  ];
  const nodeAffinity =
    h % 5 === 2
      ? {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] },
                  { key: 'placement.dev/pool', operator: 'NotIn', values: ['pool-retired'] },
                ],
              },
            ],
          },
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 20,
              preference: {
                matchExpressions: [
                  {
                    key: 'node.kubernetes.io/instance-type',
                    operator: 'In',
                    values: ['m6i.4xlarge'],
                  },
                ],
              },
            },
          ],
        }
      : undefined;
  return {
    ...(h % 4 === 0 ? { nodeSelector: { 'kubernetes.io/os': 'linux' } } : {}),
    ...(nodeAffinity === undefined ? {} : { affinity: { ...w.affinity, nodeAffinity } }),
    ...(spread.length > 0 ? { topologySpreadConstraints: spread } : {}),
  };
}

const affinityOf = (w: Workload): { affinity?: Affinity } =>
  w.affinity === undefined ? {} : { affinity: w.affinity };

function shuffle<T>(list: T[], rng: Rng): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = at(list, i);
    list[i] = at(list, j);
    list[j] = t;
  }
  return list;
}

/** Caps replicas to what each plan can hold, then nudges counts until the total is exact. */
function fitReplicas(workloads: Workload[], target: number, nodes: number, rng: Rng): void {
  const cap = (w: Workload): number => {
    switch (w.plan.kind) {
      case 'distinctZones':
        return ZONES.length;
      case 'distinctNodes':
        return Math.max(1, Math.floor(nodes / 2));
      default:
        return 200;
    }
  };
  let total = 0;
  for (const w of workloads) {
    if (!w.name.startsWith('shared-')) w.replicas = Math.min(w.replicas, cap(w));
    total += w.replicas;
  }
  const adjustable = workloads.filter((w) => !w.name.startsWith('shared-'));
  let guard = 0;
  while (total !== target && guard++ < 50 * workloads.length + 10 * Math.abs(target - total)) {
    const w = at(adjustable, rng.int(adjustable.length));
    if (total < target && w.replicas < cap(w)) {
      w.replicas++;
      total++;
    } else if (total > target && w.replicas > 1) {
      w.replicas--;
      total--;
    }
  }
}

/** The nodes of each replica of `w`: where its terms are met, or, if `violate`, one replica where they are not. */
function place(w: Workload, nodesOf: readonly number[][], topo: Topology, rng: Rng): number[] {
  const n = topo.nodes.length;
  const k = w.replicas;
  const anyNode = () => rng.int(n);
  const inZone = (z: number) => rng.pick(at(topo.zoneNodes, z));
  const zonesOfNodes = (list: readonly number[]) =>
    [...new Set(list.map((i) => topo.nodeZone[i]))].filter((z) => z !== undefined).sort();
  const out: number[] = [];
  const plan = w.plan;
  switch (plan.kind) {
    case 'free':
      for (let i = 0; i < k; i++) out.push(anyNode());
      break;
    case 'zonal':
      for (let i = 0; i < k; i++) out.push(inZone(plan.zone));
      break;
    case 'roundRobinZones':
      for (let i = 0; i < k; i++) out.push(inZone(i % ZONES.length));
      break;
    case 'distinctNodes': {
      const seen = new Set<number>();
      while (out.length < k) {
        const node = anyNode();
        if (!seen.has(node)) {
          seen.add(node);
          out.push(node);
        }
      }
      if (w.violate && k >= 2) out[k - 1] = at(out, 0);
      break;
    }
    case 'distinctZones': {
      const zones = shuffle([0, 1, 2], rng);
      for (let i = 0; i < k; i++) out.push(inZone(at(zones, i)));
      if (w.violate && k >= 2) out[k - 1] = inZone(at(zones, 0));
      break;
    }
    case 'oneZone':
      for (let i = 0; i < k; i++) out.push(inZone(plan.zone));
      if (w.violate && k >= 2) out[k - 1] = inZone((plan.zone + 1) % ZONES.length);
      break;
    case 'partnerZones':
    case 'fixedZones': {
      const zones =
        plan.kind === 'fixedZones' ? plan.zones : zonesOfNodes(at(nodesOf, plan.partner));
      for (let i = 0; i < k; i++) out.push(zones.length > 0 ? inZone(rng.pick(zones)) : anyNode());
      if (w.violate) {
        const elsewhere = [0, 1, 2].filter((z) => !zones.includes(z));
        if (elsewhere.length > 0) out[k - 1] = inZone(rng.pick(elsewhere));
        else if (topo.unzoned.length > 0) out[k - 1] = rng.pick(topo.unzoned);
      }
      break;
    }
    case 'partnerNodes': {
      const hosts = at(nodesOf, plan.partner);
      for (let i = 0; i < k; i++) out.push(rng.pick(hosts));
      if (w.violate) {
        const set = new Set(hosts);
        let node = anyNode();
        while (set.has(node) && set.size < n) node = anyNode();
        out[k - 1] = node;
      }
      break;
    }
    case 'avoidPartnerNodes': {
      const hosts = new Set(at(nodesOf, plan.partner));
      for (let i = 0; i < k; i++) {
        let node = anyNode();
        while (hosts.has(node) && hosts.size < n) node = anyNode();
        out.push(node);
      }
      if (w.violate) out[k - 1] = rng.pick([...hosts]);
      break;
    }
  }
  return out;
}
