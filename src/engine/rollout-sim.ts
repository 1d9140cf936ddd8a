/**
 * The rollout a pod-template write would start, played step by step before the write: the
 * workload controller's arithmetic (the deployment controller's ResolveFenceposts, the
 * StatefulSet controller's reverse-ordinal update, the DaemonSet controller's per-node
 * update), with the old pods in place and each new pod put through the scheduler model.
 */
import type { IntOrPercent, RolloutStrategy } from '../api/cluster.ts';
import { capacityMessage, placeTogether, type Capacity } from './capacity.ts';
import {
  describeMisfits,
  type Misfit,
  type PodRules,
  type SimCluster,
  type SimPod,
} from './scheduling-sim.ts';
import { requirementsText, type Selector } from './selector.ts';

/** The workload whose template would change, and its pods' rules after the change. */
export interface RolloutSubject {
  /** `Kind/ns/name`: its running pods in the cluster carry it as `owner`. */
  readonly key: string;
  readonly kind: string;
  readonly replicas: number;
  readonly strategy: RolloutStrategy | undefined;
  readonly rules: PodRules;
}

export type RolloutOutcome =
  /** The change rolls no pod by itself (OnDelete, a ReplicaSet, a CronJob, a partition). */
  | { readonly kind: 'noRollout'; readonly reason: string }
  | { readonly kind: 'finishes' }
  | {
      readonly kind: 'blocked';
      /** New pods running when it stops. */
      readonly updated: number;
      readonly replicas: number;
      /** What stops it, naming the rules. */
      readonly reason: string;
      /** Changes that would let it finish, each alone. */
      readonly unblock: readonly string[];
    };

/**
 * `GetScaledValueFromIntOrPercent`: an int as is, a percentage of `total` rounded up or
 * down. Anything else reads as 0 (the API server refuses it before it gets here).
 */
export function scaledValue(value: IntOrPercent, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (m === null) return /^\d+$/.test(value) ? Number(value) : 0;
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * The deployment controller's ResolveFenceposts (util/deployment_util.go): maxSurge
 * (default 25%) rounds up, maxUnavailable (default 25%) rounds down, and when both come to
 * 0 maxUnavailable becomes 1; MaxUnavailable caps it at the replicas.
 */
export function resolveFenceposts(
  strategy: RolloutStrategy | undefined,
  replicas: number,
): { readonly surge: number; readonly unavailable: number } {
  const surge = scaledValue(strategy?.maxSurge ?? '25%', replicas, true);
  let unavailable = scaledValue(strategy?.maxUnavailable ?? '25%', replicas, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable: Math.min(unavailable, replicas) };
}

/** The StatefulSet controller's maxUnavailable: default 1, a percentage rounds down, never below 1. */
export const statefulSetMaxUnavailable = (
  s: RolloutStrategy | undefined,
  replicas: number,
): number => Math.max(1, scaledValue(s?.maxUnavailable ?? 1, replicas, false));

/**
 * Plays the rollout `subject`'s template change would start on `cluster` (left as it was)
 * and says whether it finishes, and if not, where it stops and what would unblock it.
 */
export function simulateRollout(cluster: SimCluster, subject: RolloutSubject): RolloutOutcome {
  const outcome = cluster.trying(() => play(cluster, subject));
  if (outcome.kind !== 'stuck') return outcome;
  const [capacity] = cluster.trying(() =>
    placeTogether(cluster, [
      { key: subject.key, replicas: subject.replicas, rules: subject.rules },
    ]),
  );
  const short = capacity !== undefined && capacity.placed < subject.replicas ? capacity : undefined;
  return {
    kind: 'blocked',
    updated: outcome.updated,
    replicas: subject.replicas,
    reason: short === undefined ? outcome.reason : `${capacityMessage(short)}; ${outcome.reason}`,
    unblock: short === undefined ? unblockers(cluster, subject) : roomFor(short, subject.rules),
  };
}

type Played =
  | Exclude<RolloutOutcome, { kind: 'blocked' }>
  | { readonly kind: 'stuck'; readonly updated: number; readonly reason: string };

function play(cluster: SimCluster, s: RolloutSubject): Played {
  const type = s.strategy?.type;
  switch (s.kind) {
    case 'Deployment':
      return type === 'Recreate' ? recreate(cluster, s) : rollingDeployment(cluster, s);
    case 'StatefulSet':
      if (type === 'OnDelete')
        return { kind: 'noRollout', reason: 'updateStrategy OnDelete: pods change when deleted' };
      return statefulSetUpdate(cluster, s);
    case 'DaemonSet':
      if (type === 'OnDelete')
        return { kind: 'noRollout', reason: 'updateStrategy OnDelete: pods change when deleted' };
      return daemonSetUpdate(cluster, s);
    default:
      return {
        kind: 'noRollout',
        reason: `a ${s.kind} does not roll its pods on a template change`,
      };
  }
}

const oldPodsOf = (cluster: SimCluster, key: string): SimPod[] =>
  [...cluster.all()].filter((p) => p.owner === key).sort((a, b) => (a.key < b.key ? -1 : 1));

const stuckAt = (updated: number, replicas: number, misfits: readonly Misfit[]): Played => ({
  kind: 'stuck',
  updated,
  reason: `it would stop with ${updated} of ${replicas} new pods running: the next new pod fits no node (${describeMisfits(misfits)})`,
});

function recreate(cluster: SimCluster, s: RolloutSubject): Played {
  for (const p of oldPodsOf(cluster, s.key)) cluster.remove(p.key);
  for (let i = 0; i < s.replicas; i++) {
    const r = cluster.place(s.rules, s.key, `${s.key}#new-${String(i)}`);
    if (r.kind === 'unschedulable') return stuckAt(i, s.replicas, r.misfits);
  }
  return { kind: 'finishes' };
}

/**
 * The deployment controller's rolling update (rolling.go): scale the new ReplicaSet up to
 * replicas + maxSurge pods in all, scale old ones down while more than replicas -
 * maxUnavailable pods stay available, where a new pod is available once it is scheduled.
 * Old pods go in the ReplicaSet controller's order: those sharing a node with more pods of
 * the set first.
 */
function rollingDeployment(cluster: SimCluster, s: RolloutSubject): Played {
  const R = s.replicas;
  const { surge, unavailable } = resolveFenceposts(s.strategy, R);
  const old = oldPodsOf(cluster, s.key);
  let created = 0;
  let running = 0;
  let lastMisfits: readonly Misfit[] = [];
  for (;;) {
    let progress = false;
    const add = Math.min(R - created, R + surge - (old.length + created));
    if (add > 0) {
      created += add;
      progress = true;
    }
    while (running < created) {
      const r = cluster.place(s.rules, s.key, `${s.key}#new-${String(running)}`);
      if (r.kind === 'unschedulable') {
        lastMisfits = r.misfits;
        break;
      }
      running++;
      progress = true;
    }
    const minAvailable = R - unavailable;
    const pending = created - running;
    if (old.length + created - minAvailable - pending > 0) {
      const down = Math.min(old.length + running - minAvailable, old.length);
      for (let i = 0; i < down; i++) {
        const victim = nextToDelete(old);
        if (victim === undefined) break;
        old.splice(old.indexOf(victim), 1);
        cluster.remove(victim.key);
        progress = true;
      }
    }
    if (old.length === 0 && running === R) return { kind: 'finishes' };
    if (!progress) return stuckAt(running, R, lastMisfits);
  }
}

/** The ReplicaSet controller deletes first the pods whose node runs more pods of the set. */
function nextToDelete(old: readonly SimPod[]): SimPod | undefined {
  const perNode = new Map<string, number>();
  for (const p of old) perNode.set(p.nodeName, (perNode.get(p.nodeName) ?? 0) + 1);
  let best: SimPod | undefined;
  for (const p of old) {
    const n = perNode.get(p.nodeName) ?? 0;
    // Among equals the newest goes first; names stand in for creation order.
    if (
      best === undefined ||
      n > (perNode.get(best.nodeName) ?? 0) ||
      (n === perNode.get(best.nodeName) && p.key > best.key)
    )
      best = p;
  }
  return best;
}

const ordinalOf = (key: string): number => Number(/-(\d+)$/.exec(key)?.[1] ?? -1);

/**
 * The StatefulSet controller's rolling update: from the highest ordinal down to the
 * partition, maxUnavailable pods at a time, each deleted and made again with the new
 * template (the same name, any node); the next waits until those run.
 */
function statefulSetUpdate(cluster: SimCluster, s: RolloutSubject): Played {
  const partition = s.strategy?.partition ?? 0;
  if (partition >= s.replicas)
    return {
      kind: 'noRollout',
      reason: `partition ${String(partition)} keeps every pod on the old template`,
    };
  const batch = statefulSetMaxUnavailable(s.strategy, s.replicas);
  const old = new Map(oldPodsOf(cluster, s.key).map((p) => [ordinalOf(p.key), p]));
  const ordinals: number[] = [];
  for (let i = s.replicas - 1; i >= partition; i--) ordinals.push(i);
  let updated = 0;
  for (let at = 0; at < ordinals.length; at += batch) {
    const group = ordinals.slice(at, at + batch);
    for (const i of group) {
      const p = old.get(i);
      if (p !== undefined) cluster.remove(p.key);
    }
    for (const i of group) {
      const r = cluster.place(s.rules, s.key, `${s.key}#new-${String(i)}`);
      if (r.kind === 'unschedulable') return stuckAt(updated, s.replicas - partition, r.misfits);
      updated++;
    }
  }
  return { kind: 'finishes' };
}

/**
 * The DaemonSet controller's rolling update: each node's pod is replaced on that same node
 * (a surge keeps the old one until the new one runs). A node the new template no longer
 * admits just loses its pod.
 */
function daemonSetUpdate(cluster: SimCluster, s: RolloutSubject): Played {
  const surge = scaledValue(s.strategy?.maxSurge ?? 0, s.replicas, true) > 0;
  const old = oldPodsOf(cluster, s.key);
  let updated = 0;
  for (const p of old) {
    const node = cluster.node(p.nodeName);
    if (node === undefined) continue;
    if (!surge) cluster.remove(p.key);
    const misfit = cluster.prepare(s.rules).misfit(node);
    if (misfit?.kind === 'node') {
      cluster.remove(p.key);
      continue;
    }
    if (misfit !== null)
      return {
        kind: 'stuck',
        updated,
        reason: `it would stop with ${updated} of ${old.length} new pods running: its pods are pinned per node, and on ${node.name} the new pod cannot run (${describeMisfits([misfit])})`,
      };
    cluster.remove(p.key);
    cluster.add({
      ...p,
      key: `${s.key}#new-${node.name}`,
      antiAffinity: s.rules.antiAffinity,
      labels: s.rules.labels,
    });
    updated++;
  }
  return { kind: 'finishes' };
}

/** A selector as people write it: `app=checkout`, `tier in (a,b)`, `!canary`. */
export function selectorText(selector: Selector): string {
  if (selector.kind === 'nothing') return 'no pod';
  if (selector.requirements.length === 0) return 'any pod';
  return requirementsText(selector.requirements);
}

/** When the rules hold fewer pods than replicas: more room where they allow pods, or fewer replicas. */
function roomFor(capacity: Capacity, rules: PodRules): string[] {
  const out = new Set<string>();
  // A new node only helps where the pods its affinity follows run too.
  for (const a of rules.affinity)
    out.add(`one more ${a.term.topologyKey} domain with a ${selectorText(a.term.selector)} pod`);
  // A spread constraint caps every domain at the emptiest one plus maxSkew.
  for (const c of rules.spread?.rules.hard ?? [])
    out.add(
      `a node its rules admit in the least-loaded ${c.topologyKey} domain, or maxSkew > ${String(c.maxSkew)}`,
    );
  if (out.size === 0) out.add('one more node its rules admit');
  out.add(`replicas ≤ ${String(capacity.placed)}`);
  return [...out];
}

/** When there is room for every pod: the smallest larger maxUnavailable that lets it finish. */
function unblockers(cluster: SimCluster, s: RolloutSubject): string[] {
  if (s.kind !== 'Deployment' && s.kind !== 'StatefulSet') return [];
  const current =
    s.kind === 'Deployment'
      ? resolveFenceposts(s.strategy, s.replicas).unavailable
      : statefulSetMaxUnavailable(s.strategy, s.replicas);
  for (let k = current + 1; k <= s.replicas; k++) {
    const tried: RolloutSubject = {
      ...s,
      strategy: { ...s.strategy, type: 'RollingUpdate', maxUnavailable: k },
    };
    if (cluster.trying(() => play(cluster, tried)).kind === 'finishes')
      return [`maxUnavailable ≥ ${String(k)}`];
  }
  return [];
}

/** One line: what stops the rollout and what would unblock it. */
export function blockedMessage(o: Extract<RolloutOutcome, { kind: 'blocked' }>): string {
  const unblock = o.unblock.length > 0 ? `; would unblock: ${o.unblock.join(', or ')}` : '';
  return `${o.reason}${unblock}`;
}
