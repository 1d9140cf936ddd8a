import type { Affinity } from '../api/core.ts';
import { type AppliedRecord } from '../engine/index.ts';
import { jsonEqual } from '../util/json.ts';
import { appliedRecordOf } from './plan.ts';
import { APPLIED_ANNOTATION, workloadKey, type Workload } from '../api/cluster.ts';

interface Lost {
  readonly uid: string;
  readonly record: AppliedRecord;
  /** The template affinity when the record went: the record describes exactly this. */
  readonly affinity: Affinity | undefined;
}

/**
 * Records that someone removed from a workload while the terms they describe stayed (a
 * `kubectl annotate ... placement.dev/applied-`, an edit). Without its record the operator
 * could not tell the terms it injected from the owner's; with this it still can, and the
 * next reconcile writes the record back, so nothing is injected twice and a later revert
 * takes the terms out.
 *
 * Kept in memory by every replica from its informer's updates, so a removal is known only if
 * some replica saw it happen. One that happened while no replica ran is not: the operator
 * then reads what the workload carries as its owner's (docs/operations.md).
 */
export class LostRecords {
  readonly #lost = new Map<string, Lost>();

  /** Looks at one update of a workload: did a readable record go, the affinity unchanged? */
  observe(old: Workload, now: Workload): void {
    const key = workloadKey(now);
    if (now.annotations[APPLIED_ANNOTATION] !== undefined || old.uid !== now.uid) {
      this.#lost.delete(key);
      return;
    }
    const before = appliedRecordOf(old);
    // The affinity changed in the same update: the terms went with the record (a revert of
    // ours, or the owner's own edit), and the record no longer describes the workload.
    if (before.kind !== 'ok' || !jsonEqual(old.affinity ?? null, now.affinity ?? null)) return;
    this.#lost.set(key, { uid: now.uid, record: before.record, affinity: now.affinity });
  }

  /**
   * The record lost from `w`, while `w` still has no record and the affinity it described;
   * otherwise forgotten (the workload moved on, and the record with it).
   */
  recall(w: Workload): AppliedRecord | undefined {
    const key = workloadKey(w);
    const lost = this.#lost.get(key);
    if (lost === undefined) return undefined;
    if (
      lost.uid !== w.uid ||
      w.annotations[APPLIED_ANNOTATION] !== undefined ||
      !jsonEqual(lost.affinity ?? null, w.affinity ?? null)
    ) {
      this.#lost.delete(key);
      return undefined;
    }
    return lost.record;
  }

  forget(key: string): void {
    this.#lost.delete(key);
  }

  get size(): number {
    return this.#lost.size;
  }
}
