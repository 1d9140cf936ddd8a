/**
 * How many pods of each workload can run under all its required rules together: its
 * podAffinity (only where a provider runs, its own pods included), its own anti-affinity
 * (a cap per domain), other pods' anti-affinity against it, and node eligibility. Found by
 * placing the workloads' pods one at a time through the scheduler model, round after
 * round, so that a workload whose providers are themselves limited gets only the domains
 * they reach.
 */
import { labelOf } from './labels.ts';
import type { NodeFacts } from './node-eligibility.ts';
import {
  describeMisfits,
  NO_TERMS,
  type Misfit,
  type Placement,
  type PodRules,
  type SimCluster,
  type SimPod,
} from './scheduling-sim.ts';
import { AnchorIndex } from './anchor-index.ts';
import { selectorAnchor } from './selector.ts';
import { termMatches } from './term.ts';
import type { PreparedPod } from './prepared-pod.ts';
import type { Tracked } from './tracked-rules.ts';
import { runAll, type Steps } from '../util/steps.ts';

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
  /**
   * How many find a node when its first pod lands where the fewest can follow: with required
   * self-affinity and no pod to meet it yet, the scheduler may put the first pod on any node
   * that passes, and where it lands decides how many follow (`placed` counts the best node).
   * Equal to `placed` when that choice does not matter.
   */
  readonly fewest: number;
  /**
   * Why each node refused the first pod that found none, in node order (empty when all were
   * placed).
   */
  readonly misfits: readonly Misfit[];
}

/**
 * Places the targets' pods on `cluster` (changed in place: their running pods are taken
 * out, the placed ones put in) and says how many of each found a node. A running pod that
 * is taken out stays as a provider for affinity only: until its replacement runs, other
 * pods may follow it (mutual affinity starts that way).
 */
export function placeTogether(cluster: SimCluster, targets: readonly CapacityTarget[]): Capacity[] {
  return runAll(placingTogether(cluster, targets));
}

/** `placeTogether`, yielding after each pod it tries to place. */
export function* placingTogether(
  cluster: SimCluster,
  targets: readonly CapacityTarget[],
): Steps<Capacity[]> {
  const moved = new Set(targets.filter((t) => t.keepRunning !== true).map((t) => t.key));
  const kept = new Map<string, number>();
  const ghosts = new Map<string, string[]>();
  for (const p of [...cluster.all()]) {
    if (p.owner === undefined) continue;
    if (moved.has(p.owner)) {
      // Made a ghost here unless the cluster holds it as one already (`simulatedCluster`).
      if (p.ghost !== true) cluster.add({ ...p, antiAffinity: NO_TERMS, ghost: true });
      const list = ghosts.get(p.owner) ?? [];
      list.push(p.key);
      ghosts.set(p.owner, list);
    } else if (p.ghost !== true) kept.set(p.owner, (kept.get(p.owner) ?? 0) + 1);
  }
  const placed = targets.map((t) => (t.keepRunning === true ? (kept.get(t.key) ?? 0) : 0));
  const stuck = targets.map((): readonly Misfit[] | null => null);
  const fewest = targets.map((): number => Infinity);
  const ours = targets.map((): string[] => []);
  // Each workload's filters are kept current as pods come and go, until it has all its pods.
  const tracked = targets.map((): Tracked | null => null);
  // Numbered per workload and only as they are placed, so that a pod's key does not depend on
  // what other workloads tried before it.
  const serials = targets.map(() => 0);
  for (let pass = 0; pass <= targets.length + 1; pass++) {
    // Round after round, each workload that still wants pods tries one more, until a round
    // places nothing: the scheduler retries unschedulable pods when the cluster changes. Only
    // the workloads that still want pods are asked, in order (only settling takes pods away).
    let wanting = targets.flatMap((t, i) => ((placed[i] ?? 0) < t.replicas ? [i] : []));
    for (let progress = true; progress;) {
      progress = false;
      const still: number[] = [];
      for (const i of wanting) {
        const t = targets[i];
        if (t === undefined || (placed[i] ?? 0) >= t.replicas) continue;
        still.push(i);
        let watch = tracked[i] ?? null;
        if (watch === null) {
          watch = cluster.track(t.rules);
          tracked[i] = watch;
        } else if (stuck[i] !== null && !watch.moved) {
          // Its next pod found no node and no pod change since may let one in: it would meet
          // the same refusals from the same nodes (the scheduler's unschedulable queue).
          continue;
        }
        watch.moved = false;
        const done = placed[i] ?? 0;
        const serial = serials[i] ?? 0;
        const key = `${t.key}#${String(serial)}`;
        // Trials are undone before the pod is placed: their keys are free again after.
        let trial = serial;
        const { result, worst } = placeNext(
          cluster,
          t,
          cluster.prepared(watch),
          done,
          key,
          () => `${t.key}#${String(trial++)}`,
        );
        if (worst !== undefined) fewest[i] = Math.min(fewest[i] ?? Infinity, done + worst);
        if (result.kind === 'placed') {
          placed[i] = (placed[i] ?? 0) + 1;
          serials[i] = serial + 1;
          ours[i]?.push(key);
          stuck[i] = null;
          progress = true;
          if ((placed[i] ?? 0) >= t.replicas) {
            cluster.untrack(watch);
            tracked[i] = null;
          }
        } else stuck[i] = result.misfits;
        yield;
      }
      wanting = still;
    }
    if (!settle(cluster, targets, placed, ours, ghosts)) break;
  }
  for (const w of tracked) if (w !== null) cluster.untrack(w);
  return targets.map((t, i) => ({
    key: t.key,
    replicas: t.replicas,
    placed: placed[i] ?? 0,
    fewest: Math.min(placed[i] ?? 0, fewest[i] ?? Infinity),
    misfits: (placed[i] ?? 0) < t.replicas ? (stuck[i] ?? []) : [],
  }));
}

/**
 * Places the next pod of `t`. The first pod of a group (required self-affinity that no pod
 * meets yet) goes on the node from which the most of its pods can follow, alone: nodes in the
 * same domains for every topology key its terms read leave the same room, so one node of each
 * set of domains is tried (a few per zone, not one per node). `worst` is how many follow
 * from the worst such node, when there was a choice.
 */
function placeNext(
  cluster: SimCluster,
  t: CapacityTarget,
  prepared: PreparedPod,
  done: number,
  key: string,
  trialKey: () => string,
): { result: Placement; worst?: number } {
  // Without affinity terms no pod follows another: any node that passes leaves the same room.
  if (!prepared.firstOfGroup || t.rules.affinity.length === 0 || t.replicas - done < 2) {
    return { result: cluster.place(t.rules, t.key, key, prepared) };
  }
  const keys = [
    ...new Set([...t.rules.affinity, ...t.rules.antiAffinity].map((n) => n.term.topologyKey)),
  ];
  // A key every node has its own value of (the hostname) tells nodes apart by having it only:
  // which node of such a one-node domain gets the first pod changes nothing else.
  const ownDomain = new Set(
    keys.filter((k) => {
      const values = cluster.nodes.flatMap((n) => labelOf(n.labels, k) ?? []);
      return new Set(values).size === values.length;
    }),
  );
  const domainOf = (node: NodeFacts, k: string): string | null => {
    const v = labelOf(node.labels, k);
    return v === undefined ? null : ownDomain.has(k) ? '' : v;
  };
  const choices = new Map<string, NodeFacts>();
  for (const node of cluster.nodes) {
    if (prepared.misfit(node) !== null) continue;
    const domains = JSON.stringify(keys.map((k) => domainOf(node, k)));
    if (!choices.has(domains)) choices.set(domains, node);
  }
  if (choices.size < 2) return { result: cluster.place(t.rules, t.key, key, prepared) };
  let best: { node: string; count: number } | undefined;
  let worst = Infinity;
  for (const node of choices.values()) {
    const count = cluster.trying(() => {
      let n = 0;
      while (done + n < t.replicas) {
        const at = trialKey();
        const first = n === 0 ? node.name : undefined;
        const r = cluster.place(t.rules, t.key, at, cluster.prepare(t.rules), first);
        if (r.kind !== 'placed') break;
        n++;
      }
      return n;
    });
    worst = Math.min(worst, count);
    if (best === undefined || count > best.count) best = { node: node.name, count };
  }
  return { result: cluster.place(t.rules, t.key, key, prepared, best?.node), worst };
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
    const pod = cluster.remove(key);
    if (pod !== undefined) gone.push(pod);
  };
  for (const t of rolled) {
    for (const key of ghosts.get(t.key) ?? []) take(key);
    ghosts.delete(t.key);
  }
  // Only a workload whose affinity selected a pod now gone can lose a provider; each gone
  // pod asks only the workloads whose terms may select it (by the label they need).
  const followers = new AnchorIndex<number>();
  targets.forEach((t, i) => {
    for (const a of t.rules.affinity) followers.add(i, selectorAnchor(a.term.selector));
  });
  while (gone.length > 0) {
    const lost = new Set<number>();
    for (const p of gone) {
      const nsLabels = cluster.namespaceLabels(p.namespace);
      followers.forEachCandidate(p.labels, (i) => {
        if (lost.has(i)) return;
        const t = targets[i];
        if (t?.rules.affinity.some((a) => termMatches(a.term, p.namespace, p.labels, nsLabels)))
          lost.add(i);
      });
    }
    gone = [];
    targets.forEach((t, i) => {
      if (!lost.has(i)) return;
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
