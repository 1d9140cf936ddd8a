import type { Affinity, Labels } from '../api/core.ts';
import {
  APPLIED_ANNOTATION,
  desiredAffinity,
  injectionFor,
  jsonEqual,
  parseRecord,
  policyReach,
  serializeRecord,
  type CompiledPolicy,
  type WorkloadRef,
} from '../engine/index.ts';
import type { PolicyCatalog } from './policy-catalog.ts';
import type { Workload } from './ports.ts';

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
  | {
      readonly kind: 'inSync';
      readonly enforced: readonly CompiledPolicy[];
      readonly audited: readonly CompiledPolicy[];
    }
  | {
      readonly kind: 'change';
      readonly affinity: Affinity | undefined;
      readonly annotation: string | undefined;
      /** A pod-template change rolls the workload's pods; an annotation-only change does not. */
      readonly templateChanged: boolean;
      readonly enforced: readonly CompiledPolicy[];
      readonly audited: readonly CompiledPolicy[];
      /** Policies whose terms this change takes out. */
      readonly reverted: readonly string[];
      /** Of those, the ones that PlacementExceptions now exempt the workload from, and by which. */
      readonly exempted: ReadonlyMap<string, readonly string[]>;
    };

/** How policies see a workload: kind, namespace, template labels and its own pod selector. */
export function workloadRef(w: Workload): WorkloadRef {
  return {
    kind: w.kind,
    namespace: w.namespace,
    name: w.name,
    templateLabels: w.templateLabels,
    podSelector: w.selector ?? { matchLabels: w.templateLabels },
  };
}

/** A Deployment's ReplicaSet: the Deployment is rewritten, never the ReplicaSet. */
export const managedByDeployment = (w: Workload): boolean =>
  w.kind === 'ReplicaSet' &&
  w.ownerReferences.some((r) => r.kind === 'Deployment' && r.controller === true);

/**
 * Decides a workload's affinity: the owner's terms (what is there less what was injected),
 * then the terms of every Enforce policy that targets it, in priority order.
 */
export function planWorkload(
  w: Workload,
  catalog: PolicyCatalog,
  namespaceLabels: Labels,
): WorkloadPlan {
  if (managedByDeployment(w)) return { kind: 'skip' };
  const targeting = catalog.targeting(workloadRef(w), namespaceLabels);
  const enforced = targeting.filter((p) => p.mode === 'Enforce');
  const audited = targeting.filter((p) => p.mode === 'Audit');
  const parsed = parseRecord(w.annotations[APPLIED_ANNOTATION]);
  if (parsed.kind === 'invalid') {
    return {
      kind: 'blocked',
      message: `annotation ${APPLIED_ANNOTATION} ${parsed.problem}`,
      policies: targeting,
    };
  }
  const previous = parsed.kind === 'ok' ? parsed.record : null;
  // A policy that exists but cannot be read keeps what it injected: a typo must not roll pods.
  const unreadable = Object.keys(previous?.policies ?? {}).filter((ref) => catalog.isInvalid(ref));
  if (unreadable.length > 0) {
    return {
      kind: 'blocked',
      message: `${unreadable.join(', ')} cannot be read; its terms stay until it is fixed`,
      policies: targeting,
    };
  }
  const injection = enforced.length > 0 ? injectionFor(enforced, workloadRef(w)) : null;
  const desired = desiredAffinity(w.affinity, previous, injection);
  const annotation = desired.record === null ? undefined : serializeRecord(desired.record);
  const templateChanged = !jsonEqual(desired.affinity ?? null, w.affinity ?? null);
  if (!templateChanged && annotation === w.annotations[APPLIED_ANNOTATION]) {
    return { kind: 'inSync', enforced, audited };
  }
  const now = new Set(enforced.map((p) => p.ref as string));
  const reverted = Object.keys(previous?.policies ?? {}).filter((ref) => !now.has(ref));
  const exempted = new Map<string, readonly string[]>();
  for (const ref of reverted) {
    const named = catalog.named(ref);
    if (named.kind !== 'valid') continue;
    const reach = policyReach(named.policy, workloadRef(w), namespaceLabels);
    if (reach.kind === 'exempted')
      exempted.set(
        ref,
        reach.by.map((e) => e.ref),
      );
  }
  return {
    kind: 'change',
    affinity: desired.affinity,
    annotation,
    templateChanged,
    enforced,
    audited,
    reverted,
    exempted,
  };
}
