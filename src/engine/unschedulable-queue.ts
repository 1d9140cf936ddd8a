/**
 * The scheduler model's unschedulable queue. As kube-scheduler parks a pod that fits nowhere
 * and moves it back only on an event that may make it schedulable (its queueing hints), the
 * model parks a workload whose next pod found no node and tries it again only after a pod
 * change that may let one in. Node facts do not change while the model places pods, so until
 * such a change the pod would meet the same refusals from the same nodes: skipping the try
 * changes no result, and a workload stuck on a rule nothing placed touches no longer asks
 * every node again each round.
 */
import type { Labels } from '../api/core.ts';
import { AnchorIndex, editSet } from './anchor-index.ts';
import { selectorAnchor, type Selector } from './selector.ts';

/** What a parked pod's filters read of other pods. */
export interface ParkedReads {
  /** Selectors of its terms that count other pods: its anti-affinity, its first affinity term. */
  readonly selectors: readonly Selector[];
  /** Its labels: other pods' anti-affinity may select them (symmetry). */
  readonly labels: Labels;
  /** Its workload: where its own pods run decides where the next goes. */
  readonly owner?: string;
  /** It counts every pod (a DoNotSchedule spread constraint): any change may let it in. */
  readonly readsEveryPod: boolean;
}

/** A pod as the queue weighs a change to it. */
export interface ChangedPod {
  readonly labels: Labels;
  readonly owner?: string;
  readonly antiAffinity: readonly { readonly term: { readonly selector: Selector } }[];
}

/** A parked workload; `moved`: a change since it was parked (or last tried) may let it in. */
export class Parked {
  moved = false;
  readonly reads: ParkedReads;

  constructor(reads: ParkedReads) {
    this.reads = reads;
  }
}

export class UnschedulableQueue {
  /** Parked pods by the labels their selectors need: the pods those may select. */
  private readonly selecting = new AnchorIndex<Parked>();
  /** Parked pods by their own labels, key then value: what another pod's anti-affinity may select. */
  private readonly byLabel = new Map<string, Map<string, Set<Parked>>>();
  private readonly byOwner = new Map<string, Set<Parked>>();
  private readonly everyPod = new Set<Parked>();
  private readonly parked = new Set<Parked>();

  get size(): number {
    return this.parked.size;
  }

  park(reads: ParkedReads): Parked {
    const p = new Parked(reads);
    this.file(p, 1);
    this.parked.add(p);
    return p;
  }

  /** Takes `p` out of the queue (its workload placed a pod, or the model is done). */
  unpark(p: Parked): void {
    if (!this.parked.delete(p)) return;
    this.file(p, -1);
  }

  /** Marks moved each parked pod that a change to `pod` (added or removed) may let in. */
  podChanged(pod: ChangedPod): void {
    if (this.parked.size === 0) return;
    const move = (p: Parked): void => {
      p.moved = true;
    };
    this.selecting.forEachCandidate(pod.labels, move);
    for (const p of this.everyPod) move(p);
    if (pod.owner !== undefined) for (const p of this.byOwner.get(pod.owner) ?? []) move(p);
    for (const a of pod.antiAffinity) {
      const anchor = selectorAnchor(a.term.selector);
      if (anchor.kind === 'none') {
        for (const p of this.parked) move(p);
        continue;
      }
      const byValue = this.byLabel.get(anchor.key);
      if (byValue === undefined) continue;
      const values = anchor.kind === 'values' ? anchor.values : [...byValue.keys()];
      for (const v of values) for (const p of byValue.get(v) ?? []) move(p);
    }
  }

  private file(p: Parked, op: 1 | -1): void {
    const { reads } = p;
    // A term filed twice under one anchor is one entry: taking it out once takes out both.
    for (const s of reads.selectors) {
      const anchor = selectorAnchor(s);
      if (op > 0) this.selecting.add(p, anchor);
      else this.selecting.remove(p, anchor);
    }
    for (const [k, v] of Object.entries(reads.labels)) {
      const byValue = this.byLabel.get(k) ?? new Map<string, Set<Parked>>();
      editSet(byValue, v, p, op);
      if (byValue.size > 0) this.byLabel.set(k, byValue);
      else this.byLabel.delete(k);
    }
    if (reads.owner !== undefined) editSet(this.byOwner, reads.owner, p, op);
    if (reads.readsEveryPod) {
      if (op > 0) this.everyPod.add(p);
      else this.everyPod.delete(p);
    }
  }
}
