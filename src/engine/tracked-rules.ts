/**
 * Rules whose filters the scheduler model keeps current as pods come and go, so that placing
 * a workload's replicas one after another does not recompute, per pod, what every pod that
 * runs closes or provides. A change to a pod reaches only the rules that may read it: those
 * whose anti-affinity, first affinity term or DoNotSchedule spread constraint may select it,
 * and those its anti-affinity may select (symmetry). It is also how the model parks a
 * workload whose next pod found no node: as kube-scheduler moves a pod back from its
 * unschedulable queue only on an event that may make it schedulable, the model tries such a
 * workload again only after a change has reached its rules.
 */
import { AnchorIndex, editSet } from './anchor-index.ts';
import type { PreparedPod } from './prepared-pod.ts';
import type { PodRules, SimPod } from './scheduling-sim.ts';
import { selectorAnchor } from './selector.ts';

/** Rules the model keeps prepared (see SimCluster.track). */
export class Tracked {
  readonly rules: PodRules;
  /** A pod change has reached the rules since this was last cleared. */
  moved = false;
  /** The filters as last prepared; null: to prepare anew (a pod they may read was removed). */
  prepared: PreparedPod | null = null;
  /** Pods added since `prepared`, that it may read. */
  added: SimPod[] = [];
  /** The change that last reached it: one change reaches it once. */
  seen = 0;

  constructor(rules: PodRules) {
    this.rules = rules;
  }
}

export class TrackedRules {
  /** By the labels the selectors of their terms need: the pods those may select. */
  private readonly selecting = new AnchorIndex<Tracked>();
  /** By their own labels, key then value: what another pod's anti-affinity may select. */
  private readonly byLabel = new Map<string, Map<string, Set<Tracked>>>();
  private readonly all = new Set<Tracked>();
  private changes = 0;

  add(t: Tracked): void {
    if (this.all.has(t)) return;
    this.all.add(t);
    this.file(t, 1);
  }

  delete(t: Tracked): void {
    if (!this.all.delete(t)) return;
    this.file(t, -1);
  }

  /** Tells each tracked rules that may read `pod` that it was added or removed. */
  podChanged(pod: SimPod, op: 'added' | 'removed'): void {
    if (this.all.size === 0) return;
    const change = ++this.changes;
    const reach = (t: Tracked): void => {
      if (t.seen === change) return;
      t.seen = change;
      t.moved = true;
      if (op === 'added' && t.prepared !== null) t.added.push(pod);
      else t.prepared = null;
    };
    this.selecting.forEachCandidate(pod.labels, reach);
    for (const a of pod.antiAffinity) {
      const anchor = selectorAnchor(a.term.selector);
      if (anchor.kind === 'none') {
        for (const t of this.all) reach(t);
        continue;
      }
      const byValue = this.byLabel.get(anchor.key);
      if (byValue === undefined) continue;
      const values = anchor.kind === 'values' ? anchor.values : [...byValue.keys()];
      for (const v of values) for (const t of byValue.get(v) ?? []) reach(t);
    }
  }

  private file(t: Tracked, op: 1 | -1): void {
    const { rules } = t;
    const first = rules.affinity[0];
    // The affinity filter counts only the pods its first term finds (they must meet all); a
    // spread constraint's counts, only the pods its selector finds.
    // A selector filed twice under one anchor is one entry: taking it out once takes out both.
    const selectors = [
      ...[...rules.antiAffinity, ...(first === undefined ? [] : [first])].map(
        (n) => n.term.selector,
      ),
      ...(rules.spread?.rules.hard ?? []).map((c) => c.selector),
    ];
    for (const s of selectors) {
      const anchor = selectorAnchor(s);
      if (op > 0) this.selecting.add(t, anchor);
      else this.selecting.remove(t, anchor);
    }
    for (const [k, v] of Object.entries(rules.labels)) {
      const byValue = this.byLabel.get(k) ?? new Map<string, Set<Tracked>>();
      editSet(byValue, v, t, op);
      if (byValue.size > 0) this.byLabel.set(k, byValue);
      else this.byLabel.delete(k);
    }
  }
}
