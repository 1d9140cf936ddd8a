import type { PolicyInjection } from './admission-sync.ts';
import type { Labels } from '../api/core.ts';
import { policyRef, type PlacementPolicy, type PolicyRef } from '../api/policy.ts';
import {
  describeContradiction,
  policyTargets,
  managedByDeployment,
  workloadRef,
} from '../engine/index.ts';
import { appliedRecordOf, planWorkload } from './plan.ts';
import type { CatalogEntry, PolicyCatalog } from './policy-catalog.ts';
import {
  deletionStatus,
  policyStatus,
  statusDiffers,
  type AuditSummary,
  type PolicyStatus,
} from './policy-status.ts';
import type { CatalogReaderDeps, PolicyStatusWriter } from './ports.ts';
import { afterWrite, DONE, requeueAfter, type KeyReconciler } from './result.ts';
import {
  APPLIED_ANNOTATION,
  POLICY_FINALIZER,
  workloadKey,
  type Store,
  type Workload,
} from '../api/cluster.ts';

/** How often a deleted policy checks that its workloads are clean. */
export const REVERT_POLL_MS = 2_000;
/** A status that only refreshes lastAuditTime is written at most this often. */
export const AUDIT_TIME_REFRESH_MS = 60_000;

export interface PolicyReconcilerDeps extends CatalogReaderDeps {
  readonly policies: Store<PlacementPolicy>;
  readonly writer: PolicyStatusWriter;
  readonly isWaiting: (w: Workload) => boolean;
  readonly isRolling: (w: Workload) => boolean;
  readonly refusal: (w: Workload) => string | undefined;
  readonly heldBack?: (w: Workload) => string | undefined;
  readonly enqueueWorkload: (key: string) => void;
  readonly audit: (ref: string) => AuditSummary | undefined;
  /** Where the policy's terms are injected; absent when the operator does not say. */
  readonly injection?: (ref: string) => PolicyInjection;
  readonly now: () => Date;
  /** Sees every computed status (for metrics). */
  readonly onStatus?: (ref: PolicyRef, status: PolicyStatus) => void;
}

/**
 * Workloads that may carry this policy's terms: those whose record says so, and those whose
 * record cannot be read (it may list the policy; the operator cannot tell) if the policy
 * targets them or the unreadable text names it. A Deployment's ReplicaSets are not: the
 * Deployment controller copies the Deployment's annotations onto them and never takes one
 * away, so an old ReplicaSet keeps the record for good.
 */
function carriersOf(
  ref: string,
  entry: CatalogEntry,
  workloads: readonly Workload[],
  namespaceLabels: (ns: string) => Labels,
): Workload[] {
  return workloads.filter((w) => {
    if (managedByDeployment(w)) return false;
    const record = appliedRecordOf(w);
    if (record.kind === 'ok') return Object.hasOwn(record.record.policies, ref);
    if (record.kind === 'none') return false;
    return (
      (w.annotations[APPLIED_ANNOTATION] ?? '').includes(ref) ||
      (entry.kind === 'valid' &&
        policyTargets(entry.policy, workloadRef(w), namespaceLabels(w.namespace)))
    );
  });
}

/**
 * The carriers the operator cannot take the terms out of by itself (an unreadable record, a
 * contradiction among the policies left), each with why: a person must act first.
 */
function heldBack(
  carriers: readonly Workload[],
  catalog: PolicyCatalog,
  namespaceLabels: (ns: string) => Labels,
): string[] {
  return carriers.flatMap((w) => {
    const plan = planWorkload(w, catalog, namespaceLabels);
    const name = `${w.kind} ${w.namespace}/${w.name}`;
    if (plan.kind === 'blocked') return [`${name}: ${plan.message}`];
    if (plan.kind === 'contradiction')
      return [`${name}: ${plan.contradictions.map(describeContradiction).join('; ')}`];
    return [];
  });
}

/**
 * Keeps a policy's finalizer and status: while it exists, the finalizer guards deletion;
 * once deleted, it waits until no workload carries its terms, then lets it go.
 */
export const reconcilePolicy: KeyReconciler<PolicyReconcilerDeps> = async (key, deps, log) => {
  const policy = deps.policies.get(key);
  if (policy === undefined) {
    deps.catalog.delete(key);
    return DONE;
  }
  const entry = deps.catalog.set(policy);
  const finalizers = policy.metadata.finalizers ?? [];
  const ref = policyRef(policy);
  if (policy.metadata.deletionTimestamp !== undefined) {
    const carriers = carriersOf(ref, entry, deps.workloads.list(), deps.namespaceLabels);
    if (carriers.length > 0) {
      // Those waiting for the rollout budget are woken by it; asking them again every poll
      // would only refuse them again.
      for (const w of carriers) if (!deps.isWaiting(w)) deps.enqueueWorkload(workloadKey(w));
      log.debug('waiting for workloads to drop the policy terms', { remaining: carriers.length });
      const held = heldBack(carriers, deps.catalog, deps.namespaceLabels);
      if (held.length > 0) {
        const status = deletionStatus(policy, held, deps.now().toISOString());
        if (statusDiffers(policy, status)) {
          log.warn('deletion waits for workloads a person must fix', { held });
          const stop = afterWrite(await deps.writer.writeStatus(policy, status));
          if (stop !== undefined) return stop;
        }
      }
      return requeueAfter(REVERT_POLL_MS);
    }
    if (!finalizers.includes(POLICY_FINALIZER)) return DONE;
    const stop = afterWrite(await deps.writer.setFinalizer(policy, false));
    if (stop !== undefined) return stop;
    log.info('policy terms reverted everywhere; finalizer removed');
    return DONE;
  }
  if (!finalizers.includes(POLICY_FINALIZER)) {
    const stop = afterWrite(await deps.writer.setFinalizer(policy, true));
    if (stop !== undefined) return stop;
    return DONE; // the update event brings the policy back with its finalizer
  }
  const now = deps.now();
  const status = policyStatus(policy, {
    entry,
    workloads: deps.workloads.list(),
    catalog: deps.catalog,
    namespaceLabels: deps.namespaceLabels,
    isWaiting: deps.isWaiting,
    isRolling: deps.isRolling,
    refusal: deps.refusal,
    ...(deps.heldBack === undefined ? {} : { heldBack: deps.heldBack }),
    audit: deps.audit(ref),
    ...(deps.injection === undefined ? {} : { injection: deps.injection(ref) }),
    now: now.toISOString(),
  });
  deps.onStatus?.(ref, status);
  if (!statusDiffers(policy, status) && !auditTimeStale(policy, status.lastAuditTime, now))
    return DONE;
  const result = await deps.writer.writeStatus(policy, status);
  if (result.kind === 'written') {
    if (entry.kind === 'invalid') {
      deps.events.record(
        policyTarget(policy),
        'Warning',
        entry.reason,
        entry.errors.map((e) => e.message).join('; '),
      );
    }
    log.debug('policy status updated', {
      matched: status.matched,
      enforced: status.enforced,
      pending: status.pending,
    });
  }
  return afterWrite(result, `writing status of ${ref}`) ?? DONE;
};

function auditTimeStale(policy: PlacementPolicy, next: string | undefined, now: Date): boolean {
  if (next === undefined) return false;
  const current = (policy as { status?: { lastAuditTime?: string } }).status?.lastAuditTime;
  return current === undefined || now.getTime() - Date.parse(current) >= AUDIT_TIME_REFRESH_MS;
}

export function policyTarget(p: PlacementPolicy): {
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  apiVersion: string;
} {
  return {
    kind: p.kind,
    ...(p.metadata.namespace === undefined ? {} : { namespace: p.metadata.namespace }),
    name: p.metadata.name,
    ...(p.metadata.uid === undefined ? {} : { uid: p.metadata.uid }),
    apiVersion: 'placement.dev/v1alpha1',
  };
}
