/**
 * How many pods of each workload can run under all its required rules together: its
 * podAffinity (only where a provider runs, its own pods included), its own anti-affinity
 * (a cap per domain), other pods' anti-affinity against it, and node eligibility. Found by
 * placing the workloads' pods one at a time through the scheduler model, round after
 * round, so that a workload whose providers are themselves limited gets only the domains
 * they reach.
 */
import {
  describeMisfits,
  type Misfit,
  type PodRules,
  type SimCluster,
  type SimPod,
} from './scheduling-sim.ts';
import { termMatches } from './term.ts';

/** A workload whose pods are placed anew under `rules`. */
export interface CapacityTarget {
  /** `Kind/ns/name`: its running pods (`owner`) are taken out first. */
  readonly key: string;
  readonly replicas: number;
  readonly rules: PodRules;
  /** Its running pods stay where they are and count; only the missing ones are placed. */
  readonly keepRunning?: boolean;
}

export interface Capacity {
  readonly key: string;
  readonly replicas: number;
  /** How many of its pods found a node. */
  readonly placed: number;
  /** Why each node refused the first pod that found none (empty when all were placed). */
  readonly misfits: ReadonlyMap<string, Misfit>;
}

/**
 * Places the targets' pods on `cluster` (changed in place: their running pods are taken
 * out, the placed ones put in) and says how many of each found a node. A running pod that
 * is taken out stays as a provider for affinity only: until its replacement runs, other
 * pods may follow it (mutual affinity starts that way).
 */
export function placeTogether(cluster: SimCluster, targets: readonly CapacityTarget[]): Capacity[] {
  const moved = new Set(targets.filter((t) => t.keepRunning !== true).map((t) => t.key));
  const kept = new Map<string, number>();
  const ghosts = new Map<string, string[]>();
  for (const p of [...cluster.all()]) {
    if (p.owner === undefined) continue;
    if (moved.has(p.owner)) {
      cluster.remove(p.key);
      const { owner: _owner, ...rest } = p;
      cluster.add({ ...rest, key: `${p.key}#running`, antiAffinity: [], ghost: true });
      ghosts.set(p.owner, [...(ghosts.get(p.owner) ?? []), `${p.key}#running`]);
    } else kept.set(p.owner, (kept.get(p.owner) ?? 0) + 1);
  }
  const placed = targets.map((t) => (t.keepRunning === true ? (kept.get(t.key) ?? 0) : 0));
  const stuck = targets.map((): ReadonlyMap<string, Misfit> | null => null);
  const ours = targets.map((): string[] => []);
  let serial = 0;
  for (let pass = 0; pass <= targets.length + 1; pass++) {
    // Round after round, each workload that still wants pods tries one more, until a round
    // places nothing: the scheduler retries unschedulable pods when the cluster changes.
    for (let progress = true; progress;) {
      progress = false;
      targets.forEach((t, i) => {
        if ((placed[i] ?? 0) >= t.replicas) return;
        const key = `${t.key}#${String(serial++)}`;
        const result = cluster.place(t.rules, t.key, key);
        if (result.kind === 'placed') {
          placed[i] = (placed[i] ?? 0) + 1;
          ours[i]?.push(key);
          stuck[i] = null;
          progress = true;
        } else stuck[i] = result.misfits;
      });
    }
    if (!settle(cluster, targets, placed, ours, ghosts)) break;
  }
  return targets.map((t, i) => ({
    key: t.key,
    replicas: t.replicas,
    placed: placed[i] ?? 0,
    misfits: (placed[i] ?? 0) < t.replicas ? (stuck[i] ?? new Map()) : new Map(),
  }));
}

/**
 * A workload whose new pods all found a node no longer has running old pods: they stop
 * providing for others' affinity. Pods placed next to them only are taken out again (a
 * rollout would leave them in breach, or Pending). Returns whether anything changed.
 */
function settle(
  cluster: SimCluster,
  targets: readonly CapacityTarget[],
  placed: number[],
  ours: string[][],
  ghosts: Map<string, string[]>,
): boolean {
  const rolled = targets.filter((t, i) => ghosts.has(t.key) && (placed[i] ?? 0) >= t.replicas);
  if (rolled.length === 0) return false;
  let gone: SimPod[] = [];
  const take = (key: string): void => {
    const pod = cluster.get(key);
    if (pod === undefined) return;
    gone.push(pod);
    cluster.remove(key);
  };
  for (const t of rolled) {
    for (const key of ghosts.get(t.key) ?? []) take(key);
    ghosts.delete(t.key);
  }
  // Only a workload whose affinity selected a pod now gone can lose a provider.
  const lost = (t: CapacityTarget, pods: readonly SimPod[]): boolean =>
    t.rules.affinity.some((a) =>
      pods.some((p) =>
        termMatches(a.term, p.namespace, p.labels, cluster.namespaceLabels(p.namespace)),
      ),
    );
  while (gone.length > 0) {
    const before = gone;
    gone = [];
    targets.forEach((t, i) => {
      if (!lost(t, before)) return;
      // The workload's own pods stay as providers: a group that follows itself keeps its
      // first pod's exception, as the scheduler gives it.
      const prepared = cluster.prepare(t.rules);
      const out = (ours[i] ?? []).filter((key) => {
        const node = cluster.node(cluster.get(key)?.nodeName ?? '');
        return node === undefined || prepared.affinityMisfit(node) !== null;
      });
      for (const key of out) take(key);
      ours[i] = (ours[i] ?? []).filter((k) => !out.includes(k));
      placed[i] = (placed[i] ?? 0) - out.length;
    });
  }
  return true;
}

/** "at most N of M pods can run: ..." naming the rules that refuse the next pod. */
export const capacityMessage = (c: Capacity): string =>
  `at most ${c.placed} of ${c.replicas} pods can run: ${describeMisfits(c.misfits)}`;
