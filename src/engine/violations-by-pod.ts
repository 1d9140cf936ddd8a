import { compareViolations, type AuditReport } from './judge-cluster.ts';
import type { PreferredScore, Violation } from './placement.ts';
import { SortedKeys } from '../util/sorted-keys.ts';

const NONE: readonly Violation[] = Object.freeze([]);

/** Pods whose findings may differ from the last pass's, and their violations now. */
export interface ChangedPods {
  readonly pods: ReadonlySet<string>;
  readonly violationsOf: (pod: string) => readonly Violation[];
}

/**
 * Violations kept by pod, in compareViolations order (pod key first): setting one pod's
 * violations costs a binary search among the pods that have any, not a sort of them all.
 * What a pass found, kept between passes that change a few pods.
 */
export class ViolationsByPod {
  private readonly lists = new Map<string, readonly Violation[]>();
  /** The keys of `lists`, sorted as compareViolations sorts pods. */
  private readonly order = new SortedKeys();
  private flat: readonly Violation[] | null = NONE;
  private count = 0;

  /** A pod's violations, sorted. */
  get(pod: string): readonly Violation[] {
    return this.lists.get(pod) ?? NONE;
  }

  /** Every violation, sorted; the same array until a pod's violations are set again. */
  all(): readonly Violation[] {
    if (this.flat !== null) return this.flat;
    const all: Violation[] = [];
    for (const pod of this.order.list) for (const v of this.get(pod)) all.push(v);
    this.flat = all;
    return all;
  }

  get size(): number {
    return this.count;
  }

  /** The pods that have violations, in order. */
  pods(): readonly string[] {
    return this.order.list;
  }

  /** Sets a pod's violations (any order; none takes the pod out). */
  set(pod: string, violations: readonly Violation[]): void {
    const had = this.lists.get(pod);
    if (had === undefined && violations.length === 0) return;
    this.flat = null;
    this.count += violations.length - (had?.length ?? 0);
    if (violations.length === 0) {
      this.lists.delete(pod);
      this.order.delete(pod);
      return;
    }
    if (had === undefined) this.order.add(pod);
    this.lists.set(
      pod,
      violations.length === 1 ? violations : [...violations].sort(compareViolations),
    );
  }

  /** Takes `violations` (any order) as every pod's. */
  setAll(violations: Iterable<Violation>): void {
    this.clear();
    const lists = new Map<string, Violation[]>();
    for (const v of violations) {
      const list = lists.get(v.pod);
      if (list === undefined) lists.set(v.pod, [v]);
      else list.push(v);
    }
    for (const [pod, list] of lists) {
      this.lists.set(pod, list.sort(compareViolations));
      this.count += list.length;
    }
    this.order.reset(lists.keys());
    this.flat = null;
  }

  /**
   * An audit report of these violations, listed when first read: read it before the
   * violations are set again (it is meant for the pass that made it).
   */
  report(
    preferred: ReadonlyMap<string, PreferredScore>,
    summary: { readonly pods: number; readonly nodes: number },
  ): AuditReport {
    const all = (): readonly Violation[] => this.all();
    const violations = this.size;
    return {
      get violations() {
        return all();
      },
      preferred,
      summary: { ...summary, violations },
    };
  }

  clear(): void {
    this.lists.clear();
    this.order.reset([]);
    this.flat = NONE;
    this.count = 0;
  }
}
