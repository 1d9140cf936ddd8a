import type { Affinity, Labels, TopologySpreadConstraint } from '../api/core.ts';
import {
  contradictions,
  desiredPlacement,
  injectionFor,
  parseRecord,
  revertInjected,
  policyReach,
  serializeRecord,
  type AppliedRecord,
  type CompiledPolicy,
  type Contradiction,
  type RecordParse,
  managedByDeployment,
  workloadRef,
} from '../engine/index.ts';
import { APPLIED_ANNOTATION, type Workload } from '../api/cluster.ts';
import { jsonEqual } from '../util/json.ts';
import type { PolicyCatalog } from './policy-catalog.ts';

/** What a workload needs, decided from the cache alone. */
export type WorkloadPlan =
  /** Not ours to rewrite: a ReplicaSet that a Deployment manages. */
  | { readonly kind: 'skip' }
  /** The operator cannot tell safely what to do; a person must look. Nothing is written. */
  | {
      readonly kind: 'blocked';
      readonly message: string;
      readonly policies: readonly CompiledPolicy[];
    }
  /**
   * The required rules of its Enforce policies (or theirs and the workload's own) cannot all
   * hold: written together, its new pods would stay Pending. Nothing is written; what the
   * workload carries now stays as it is.
   */
  | {
      readonly kind: 'contradiction';
      readonly contradictions: readonly Contradiction[];
      readonly enforced: readonly CompiledPolicy[];
      readonly audited: readonly CompiledPolicy[];
    }
  | {
      readonly kind: 'inSync';
      readonly enforced: readonly CompiledPolicy[];
      readonly audited: readonly CompiledPolicy[];
    }
  | {
      readonly kind: 'change';
      readonly affinity: Affinity | undefined;
      readonly topologySpreadConstraints: readonly TopologySpreadConstraint[] | undefined;
      readonly annotation: string | undefined;
      /** A pod-template change rolls the workload's pods; an annotation-only change does not. */
      readonly templateChanged: boolean;
      readonly enforced: readonly CompiledPolicy[];
      readonly audited: readonly CompiledPolicy[];
      /** Policies whose terms this change takes out. */
      readonly reverted: readonly string[];
      /** The record was put back from what the workload carried before it was removed. */
      readonly restored: boolean;
      /** Of those, the ones that PlacementExceptions now exempt the workload from, and by which. */
      readonly exempted: ReadonlyMap<string, readonly string[]>;
    };

const parsed = new WeakMap<Workload, RecordParse>();

/**
 * The workload's `placement.dev/applied` record, read and checked once per cached version
 * (cached objects are replaced, never changed, so the version is the object).
 */
export function appliedRecordOf(w: Workload): RecordParse {
  let result = parsed.get(w);
  if (result === undefined) {
    result = parseRecord(w.annotations[APPLIED_ANNOTATION]);
    parsed.set(w, result);
  }
  return result;
}

/**
 * Decides a workload's affinity and spread constraints: the owner's (what is there less what
 * was injected), then those of every Enforce policy that targets it, in priority order.
 *
 * `lost` is the record someone removed from the workload while the terms it describes
 * stayed (see LostRecords): it stands in for the missing annotation, so that what the
 * operator injected is still known as its own, and is written back.
 */
export function planWorkload(
  w: Workload,
  catalog: PolicyCatalog,
  namespaceLabels: (ns: string) => Labels,
  lost?: AppliedRecord,
): WorkloadPlan {
  if (managedByDeployment(w)) return { kind: 'skip' };
  const targeting = catalog.targeting(workloadRef(w), namespaceLabels(w.namespace));
  const enforced = targeting.filter((p) => p.mode === 'Enforce');
  const audited = targeting.filter((p) => p.mode === 'Audit');
  const record = appliedRecordOf(w);
  if (record.kind === 'invalid') {
    return {
      kind: 'blocked',
      message: `annotation ${APPLIED_ANNOTATION} ${record.problem}`,
      policies: targeting,
    };
  }
  const restored = record.kind === 'none' && lost !== undefined;
  const previous = record.kind === 'ok' ? record.record : (lost ?? null);
  // A policy that exists but cannot be read keeps what it injected: a typo must not roll pods.
  const unreadable = Object.keys(previous?.policies ?? {}).filter((ref) => catalog.isInvalid(ref));
  if (unreadable.length > 0) {
    return {
      kind: 'blocked',
      message: `${unreadable.join(', ')} cannot be read; its terms stay until it is fixed`,
      policies: targeting,
    };
  }
  const owner = previous === null ? w.affinity : revertInjected(w.affinity, previous);
  const found = contradictions(workloadRef(w), enforced, owner, namespaceLabels);
  if (found.length > 0) return { kind: 'contradiction', contradictions: found, enforced, audited };
  const injection = enforced.length > 0 ? injectionFor(enforced, workloadRef(w)) : null;
  const desired = desiredPlacement(
    { affinity: w.affinity, topologySpreadConstraints: w.topologySpreadConstraints },
    previous,
    injection,
  );
  const { affinity, topologySpreadConstraints } = desired.placement;
  const annotation = desired.record === null ? undefined : serializeRecord(desired.record);
  const templateChanged =
    !jsonEqual(affinity ?? null, w.affinity ?? null) ||
    !jsonEqual(topologySpreadConstraints ?? null, w.topologySpreadConstraints ?? null);
  if (!templateChanged && annotation === w.annotations[APPLIED_ANNOTATION]) {
    return { kind: 'inSync', enforced, audited };
  }
  const now = new Set(enforced.map((p) => p.ref as string));
  const reverted = Object.keys(previous?.policies ?? {}).filter((ref) => !now.has(ref));
  const exempted = new Map<string, readonly string[]>();
  for (const ref of reverted) {
    const named = catalog.named(ref);
    if (named.kind !== 'valid') continue;
    const reach = policyReach(named.policy, workloadRef(w), namespaceLabels(w.namespace));
    if (reach.kind === 'exempted')
      exempted.set(
        ref,
        reach.by.map((e) => e.ref),
      );
  }
  return {
    kind: 'change',
    affinity,
    topologySpreadConstraints,
    annotation,
    templateChanged,
    enforced,
    audited,
    reverted,
    restored,
    exempted,
  };
}
