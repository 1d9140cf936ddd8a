// The worlds of the node-affinity and topology-spread differential test: the run's nodes
// relabelled (zone, hostname, pool, size) and sometimes tainted, pods placed anywhere on
// them, and probes with random node affinity, nodeSelector, tolerations and spread
// constraints. Pure data from a seeded random source.
import type {
  Labels,
  LabelSelector,
  NodeAffinity,
  NodeSelectorRequirement,
  Toleration,
  TopologySpreadConstraint,
} from '../../../src/api/core.ts';
import { HOSTNAME, Rng, ZONE } from './worlds.ts';

/** Node labels of the worlds' own: other nodes never carry them. */
export const POOL = 'diff.placement.dev/pool';
export const SIZE = 'diff.placement.dev/size';
/** A taint some of the run's nodes carry in a world, and some probes tolerate. */
export const DEDICATED = 'diff.placement.dev/dedicated';

export interface NodeScene {
  /** null: the label is absent. */
  readonly zone: string | null;
  readonly hostname: string | null;
  readonly pool: string | null;
  readonly size: string | null;
  readonly dedicated: 'NoSchedule' | 'NoExecute' | 'PreferNoSchedule' | null;
}

export interface ScenePod {
  readonly name: string;
  readonly labels: Labels;
  /** Index of one of the run's nodes. */
  readonly node: number;
  readonly terminating: boolean;
}

export interface SceneProbe {
  readonly name: string;
  readonly labels: Labels;
  readonly nodeSelector: Labels;
  readonly nodeAffinity: NodeAffinity | undefined;
  readonly tolerations: readonly Toleration[];
  readonly constraints: readonly TopologySpreadConstraint[];
}

export interface NodeWorld {
  readonly title: string;
  readonly nodes: readonly NodeScene[];
  readonly pods: readonly ScenePod[];
  readonly probes: readonly SceneProbe[];
}

const APPS = ['a', 'b'] as const;
const TIERS = ['x', 'y'] as const;

function labels(rng: Rng): Labels {
  return {
    ...(rng.chance(0.85) ? { app: rng.pick(APPS) } : {}),
    ...(rng.chance(0.6) ? { tier: rng.pick(TIERS) } : {}),
  };
}

function requirement(rng: Rng, zones: readonly string[]): NodeSelectorRequirement {
  const key = rng.pick([POOL, SIZE, ZONE]);
  const values = key === POOL ? ['gpu', 'cpu'] : key === SIZE ? ['2', '8', '32'] : zones;
  const op = rng.pick(
    key === SIZE
      ? (['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt', 'Gt', 'Lt'] as const)
      : (['In', 'In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
  );
  if (op === 'Exists' || op === 'DoesNotExist') return { key, operator: op };
  if (op === 'Gt' || op === 'Lt')
    return { key, operator: op, values: [rng.pick(['1', '4', '16'])] };
  return { key, operator: op, values: rng.subset(values, 1, 2) };
}

function nodeAffinity(rng: Rng, zones: readonly string[]): NodeAffinity | undefined {
  const required = rng.chance(0.55);
  const preferred = rng.chance(0.15);
  if (!required && !preferred) return undefined;
  const term = () => ({
    matchExpressions: Array.from({ length: rng.int(1, 2) }, () => requirement(rng, zones)),
  });
  return {
    ...(required
      ? {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: Array.from({ length: rng.int(1, 2) }, term),
          },
        }
      : {}),
    ...(preferred
      ? {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: rng.int(1, 100), preference: term() },
          ],
        }
      : {}),
  };
}

function selector(rng: Rng): LabelSelector {
  const r = rng.next();
  if (r < 0.6) return { matchLabels: { app: rng.pick(APPS) } };
  if (r < 0.9) {
    const op = rng.pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
    return {
      matchExpressions: [
        op === 'In' || op === 'NotIn'
          ? { key: 'app', operator: op, values: rng.subset(APPS, 1, 2) }
          : { key: 'app', operator: op },
      ],
    };
  }
  return {};
}

function constraint(rng: Rng, topologyKey: string): TopologySpreadConstraint {
  const hard = rng.chance(0.85);
  const policy = (): { value?: string } =>
    rng.chance(0.5) ? {} : { value: rng.pick(['Honor', 'Ignore']) };
  const affinityPolicy = policy().value;
  const taintsPolicy = policy().value;
  return {
    maxSkew: rng.int(1, 2),
    topologyKey,
    whenUnsatisfiable: hard ? 'DoNotSchedule' : 'ScheduleAnyway',
    labelSelector: selector(rng),
    // The API server takes minDomains with DoNotSchedule only.
    ...(hard && rng.chance(0.3) ? { minDomains: rng.int(2, 5) } : {}),
    ...(affinityPolicy === undefined ? {} : { nodeAffinityPolicy: affinityPolicy }),
    ...(taintsPolicy === undefined ? {} : { nodeTaintsPolicy: taintsPolicy }),
    ...(rng.chance(0.2) ? { matchLabelKeys: ['tier'] } : {}),
  };
}

/**
 * A random world over `nodeCount` nodes: zones over `zones` (some nodes without), a
 * hostname mostly the node's own, pool and size labels, a dedicated taint on some nodes;
 * 3-14 pods placed anywhere (skew included: they bypass the scheduler), a few being
 * deleted; `probes` probes.
 */
export function randomNodeWorld(
  rng: Rng,
  title: string,
  nodeNames: readonly string[],
  zones: readonly string[],
  probes: number,
): NodeWorld {
  const nodes: NodeScene[] = nodeNames.map((name) => ({
    zone: rng.chance(0.12) ? null : rng.pick(zones),
    hostname: rng.chance(0.08) ? null : name,
    pool: rng.chance(0.3) ? null : rng.pick(['gpu', 'cpu']),
    size: rng.chance(0.3) ? null : rng.pick(['2', '8', '32']),
    dedicated: rng.chance(0.7)
      ? null
      : rng.pick(['NoSchedule', 'NoExecute', 'PreferNoSchedule'] as const),
  }));
  const pods: ScenePod[] = Array.from({ length: rng.int(3, 14) }, (_, i) => ({
    name: `e${i}`,
    labels: labels(rng),
    node: rng.int(0, nodeNames.length - 1),
    terminating: rng.chance(0.08),
  }));
  const probeList: SceneProbe[] = Array.from({ length: probes }, (_, i) => {
    const affinity = nodeAffinity(rng, zones);
    return {
      name: `p${i}`,
      labels: labels(rng),
      nodeSelector: rng.chance(0.2) ? { [POOL]: rng.pick(['gpu', 'cpu']) } : {},
      nodeAffinity: affinity,
      tolerations: rng.chance(0.5) ? [{ key: DEDICATED, operator: 'Exists' }] : [],
      // The API server refuses two constraints with the same key and action.
      constraints: (rng.chance(0.35) ? [ZONE, HOSTNAME] : [rng.chance(0.65) ? ZONE : HOSTNAME]).map(
        (key) => constraint(rng, key),
      ),
    };
  });
  return { title, nodes, pods, probes: probeList };
}
