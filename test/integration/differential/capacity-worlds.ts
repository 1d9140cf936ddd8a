// Seeded random worlds for the capacity differential (capacity-differential.test.ts), and the
// engine's side of it: how many pods of each workload the engine says can run, computed from
// the objects exactly as the API server served them, so that a fixture replays it alone.
//
// A world is a few nodes (zones, an ssd label, taints, cordons), provider workloads (each
// perhaps limited by its own anti-affinity, a nodeSelector, or the taints it does not
// tolerate) and one workload under test, whose required podAffinity / podAntiAffinity
// select the providers, itself or nothing, by hostname or zone, with its own nodeSelector,
// node affinity and tolerations. Providers never select one another nor (by affinity) the
// workload under test: each provider's count is its own, and nothing the workload under test
// does can let a waiting provider start.
import type {
  Labels,
  Namespace,
  Node,
  NodeAffinity,
  NodeSelectorTerm,
  Pod,
  PodAffinityTerm,
  Taint,
  Toleration,
} from '../../../src/api/core.ts';
import { API_VERSION } from '../../../src/api/policy.ts';
import {
  buildIndex,
  compilePolicy,
  feasibility,
  nodeFacts,
  workloadCapacities,
  type Capacity,
  type CompiledPolicy,
  type FeasibilityTarget,
  type TopologyIndex,
} from '../../../src/engine/index.ts';
import { UNSCHEDULABLE_TAINT } from '../../../src/engine/node-eligibility.ts';
import { HOSTNAME, Rng, ZONE } from './worlds.ts';

/** Marks a world's nodes (label and taint, value the world's id) and its namespaces. */
export const WORLD_MARK = 'placement.dev/capacity-world';
/** Pod label keys of the worlds, which no other test's selector is expected to use. */
export const ROLE = 'capacity.placement.dev/role';
export const APP = 'capacity.placement.dev/app';
const DISK = 'capacity.placement.dev/disk';

/** A workload's pods as they are sent: one template, `replicas` copies. */
export interface WorkloadDraft {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly replicas: number;
  readonly affinity: readonly PodAffinityTerm[];
  readonly antiAffinity: readonly PodAffinityTerm[];
  readonly nodeSelector: Labels;
  readonly nodeAffinity?: readonly NodeSelectorTerm[];
  readonly tolerations: readonly Toleration[];
}

export interface NodeDraft {
  readonly name: string;
  readonly labels: Labels;
  readonly taints: readonly Taint[];
  readonly cordoned: boolean;
}

export interface CapacityWorld {
  /** Also the value of WORLD_MARK on its nodes: every name of the world starts with it. */
  readonly id: string;
  readonly seed: number;
  readonly nodes: readonly NodeDraft[];
  readonly namespaces: readonly string[];
  /** Created first; the scheduler settles them before the workload under test is created. */
  readonly providers: readonly WorkloadDraft[];
  readonly target: WorkloadDraft;
}

const WORLD_TAINTS: readonly Taint[] = [
  { key: 'dedicated', value: 'db', effect: 'NoSchedule' },
  { key: 'dedicated', value: 'gpu', effect: 'NoExecute' },
  { key: 'spot', effect: 'PreferNoSchedule' },
];

/** Tolerations a workload may carry: of a world taint, of any value of a key, of cordons. */
const TOLERATIONS: readonly Toleration[] = [
  { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
  { key: 'dedicated', operator: 'Exists' },
  { key: UNSCHEDULABLE_TAINT.key, operator: 'Exists', effect: 'NoSchedule' },
];

const MAX_PODS = 10;

/** One seeded world; `id` prefixes its node, zone and namespace names. */
export function capacityWorld(seed: number, id: string): CapacityWorld {
  const rng = new Rng(seed);
  const zones = [`${id}-z1`, `${id}-z2`];
  const nodes = Array.from({ length: rng.int(2, 5) }, (_, i): NodeDraft => {
    const labels: Record<string, string> = { [WORLD_MARK]: id };
    if (!rng.chance(0.1)) labels[ZONE] = rng.pick(zones);
    if (rng.chance(0.6)) labels[DISK] = 'ssd';
    return {
      name: `${id}-n${i}`,
      labels,
      taints: [
        { key: WORLD_MARK, value: id, effect: 'NoSchedule' },
        ...(rng.chance(0.25) ? [rng.pick(WORLD_TAINTS)] : []),
      ],
      cordoned: rng.chance(0.12),
    };
  });
  const namespaces = [`${id}-a`, `${id}-b`];
  const [home = '', away = ''] = namespaces;
  const key = (): string => (rng.chance(0.5) ? HOSTNAME : ZONE);
  const placing = (
    ns: string,
  ): Pick<WorkloadDraft, 'nodeSelector' | 'nodeAffinity' | 'tolerations'> => ({
    nodeSelector: { [WORLD_MARK]: id, ...(rng.chance(0.2) ? { [DISK]: 'ssd' } : {}) },
    ...(rng.chance(0.15)
      ? {
          nodeAffinity: [
            {
              matchExpressions: [
                { key: ZONE, operator: rng.pick(['In', 'NotIn']), values: [rng.pick(zones)] },
              ],
            },
          ],
        }
      : {}),
    // Every pod tolerates the worlds' mark; only its nodeSelector keeps it in its world.
    tolerations: [
      { key: WORLD_MARK, operator: 'Exists', effect: 'NoSchedule' },
      ...rng.subset(TOLERATIONS, 0, ns === home ? 2 : 1),
    ],
  });
  const selecting = (labels: Labels, from: string, to: string): PodAffinityTerm => ({
    labelSelector: { matchLabels: labels },
    topologyKey: key(),
    ...(from === to ? {} : { namespaces: rng.chance(0.5) ? [to] : [to, from] }),
  });
  const targetLabels = { [ROLE]: 't', [APP]: rng.pick(['x', 'y', 'z']) };
  const providers = Array.from({ length: rng.int(0, 2) }, (_, i): WorkloadDraft => {
    const ns = rng.chance(0.7) ? home : away;
    const labels = { [ROLE]: `p${i}`, [APP]: rng.pick(['x', 'y']) };
    const anti: PodAffinityTerm[] = [];
    if (rng.chance(0.4)) anti.push(selecting({ [ROLE]: `p${i}` }, ns, ns));
    if (rng.chance(0.2)) anti.push(selecting({ [ROLE]: 't' }, ns, home));
    return {
      name: `p${i}`,
      namespace: ns,
      labels,
      replicas: rng.int(1, 3),
      affinity: [],
      antiAffinity: anti,
      ...placing(ns),
    };
  });
  const provided = providers.reduce((n, p) => n + p.replicas, 0);
  // A term of the workload under test: a provider by role or by app, itself, or no pod at all.
  const targetTerm = (p: WorkloadDraft | undefined): PodAffinityTerm => {
    if (p === undefined)
      return rng.chance(0.9)
        ? selecting({ [ROLE]: 't' }, home, home)
        : selecting({ [ROLE]: 'nobody' }, home, home);
    return rng.chance(0.6)
      ? selecting({ [ROLE]: p.labels[ROLE] ?? '' }, home, p.namespace)
      : selecting({ [APP]: p.labels[APP] ?? '' }, home, p.namespace);
  };
  const someProvider = (): WorkloadDraft | undefined =>
    providers.length > 0 && rng.chance(0.7) ? rng.pick(providers) : undefined;
  // One pod must meet all of a pod's affinity terms: a second term mostly asks the same one.
  const first = someProvider();
  const affinity = Array.from({ length: rng.pick([0, 1, 1, 1, 2]) }, (_, i) =>
    targetTerm(i === 0 || rng.chance(0.6) ? first : someProvider()),
  );
  const target: WorkloadDraft = {
    name: 't',
    namespace: home,
    labels: targetLabels,
    replicas: rng.int(1, Math.max(1, Math.min(6, MAX_PODS - provided))),
    affinity,
    antiAffinity: Array.from({ length: rng.pick([0, 1, 1, 2]) }, () => targetTerm(someProvider())),
    ...placing(home),
  };
  return { id, seed, nodes, namespaces, providers, target };
}

const requiredNodeAffinity = (w: WorkloadDraft): { nodeAffinity?: NodeAffinity } =>
  w.nodeAffinity === undefined
    ? {}
    : {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: w.nodeAffinity },
        },
      };

/** The pod template of a workload, as sent (without name and namespace). */
export function podSpec(w: WorkloadDraft): Record<string, unknown> {
  const required = (terms: readonly PodAffinityTerm[]) =>
    terms.length === 0 ? undefined : { requiredDuringSchedulingIgnoredDuringExecution: terms };
  const affinity = {
    ...(w.affinity.length > 0 ? { podAffinity: required(w.affinity) } : {}),
    ...(w.antiAffinity.length > 0 ? { podAntiAffinity: required(w.antiAffinity) } : {}),
    ...requiredNodeAffinity(w),
  };
  return {
    nodeSelector: w.nodeSelector,
    tolerations: w.tolerations,
    ...(Object.keys(affinity).length > 0 ? { affinity } : {}),
    // kwok only pretends to run containers: the image is never pulled.
    containers: [{ name: 'c', image: 'registry.invalid/capacity:1' }],
    terminationGracePeriodSeconds: 0,
  };
}

/** The cluster as the engine reads it for one prediction: the world's own objects. */
export interface EngineInput {
  readonly nodes: readonly Node[];
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  /** The workloads placed together; the workload under test last. */
  readonly workloads: readonly WorkloadDraft[];
}

export const feasibilityTarget = (w: WorkloadDraft): FeasibilityTarget => ({
  workload: {
    kind: 'Deployment',
    namespace: w.namespace,
    name: w.name,
    templateLabels: w.labels,
    podSelector: { matchLabels: { [ROLE]: w.labels[ROLE] ?? '' } },
  },
  replicas: w.replicas,
  policies: [],
  ownAffinity: w.affinity,
  ownAntiAffinity: w.antiAffinity,
  constraints: {
    nodeSelector: w.nodeSelector,
    tolerations: w.tolerations,
    ...requiredNodeAffinity(w),
  },
});

const indexOf = (input: EngineInput): TopologyIndex =>
  buildIndex(
    {
      nodes: input.nodes,
      namespaces: input.namespaces,
      pods: input.pods,
      policies: [],
      workloads: [],
    },
    [],
  );

/** How many pods of each workload the engine says can run (workloadCapacities). */
export function engineCapacities(input: EngineInput): Capacity[] {
  const index = indexOf(input);
  return workloadCapacities(
    input.workloads.map(feasibilityTarget),
    index,
    input.nodes.map(nodeFacts),
    (ns) => index.namespaceLabels(ns),
  );
}

export const enginePrediction = (input: EngineInput): number[] =>
  engineCapacities(input).map((c) => c.placed);

/** The policy that asks the last workload's pod terms of it, as its template carries them. */
export function policyFor(w: WorkloadDraft): CompiledPolicy {
  const required = (terms: readonly PodAffinityTerm[]) => ({
    requiredDuringSchedulingIgnoredDuringExecution: terms,
  });
  const compiled = compilePolicy({
    apiVersion: API_VERSION,
    kind: 'PlacementPolicy',
    metadata: { name: w.name, namespace: w.namespace },
    spec: {
      affinity: {
        ...(w.affinity.length > 0 ? { podAffinity: required(w.affinity) } : {}),
        ...(w.antiAffinity.length > 0 ? { podAntiAffinity: required(w.antiAffinity) } : {}),
      },
    },
  });
  if (compiled.kind === 'invalid') throw new Error(compiled.errors.map(String).join('; '));
  return compiled.policy;
}

/**
 * What feasibility (the policy's Unsatisfiable condition) says when a policy asks the last
 * workload's pod terms of it instead of its template: its messages, none when satisfiable.
 */
export function engineUnsatisfiable(input: EngineInput): string[] {
  const index = indexOf(input);
  const last = input.workloads.at(-1);
  if (last === undefined) return [];
  const policy = policyFor(last);
  const targets = input.workloads.map((w) =>
    w === last
      ? { ...feasibilityTarget(w), policies: [policy], ownAffinity: [], ownAntiAffinity: [] }
      : feasibilityTarget(w),
  );
  return (
    feasibility(targets, index, input.nodes.map(nodeFacts), (ns) =>
      index.namespaceLabels(ns),
    ).unsatisfiable.get(policy.ref) ?? []
  );
}

/** Every order of `items` (n! of them: worlds have at most five nodes). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/**
 * The engine's prediction with the nodes taken in every order. The engine breaks ties
 * between equally good nodes by name, the scheduler by scores it does not model; when the
 * counts differ with the order, the count depends on which node the scheduler picks.
 */
export function predictionsOverNodeOrders(input: EngineInput): number[][] {
  return permutations(input.nodes.map((_, i) => i)).map((order) => {
    const renamed = new Map(
      input.nodes.map((n, i) => [n.metadata.name, `o${order[i] ?? 0}-${n.metadata.name}`]),
    );
    const rename = (name: string | undefined): string | undefined =>
      name === undefined ? undefined : (renamed.get(name) ?? name);
    return enginePrediction({
      ...input,
      nodes: input.nodes.map((n) => ({
        ...n,
        metadata: { ...n.metadata, name: rename(n.metadata.name) ?? '' },
      })),
      pods: input.pods.map((p) => {
        const nodeName = rename(p.spec.nodeName);
        return { ...p, spec: { ...p.spec, ...(nodeName === undefined ? {} : { nodeName }) } };
      }),
    });
  });
}
