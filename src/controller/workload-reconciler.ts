import type { Labels } from '../api/core.ts';
import { contradictionPolicies, describeContradiction } from '../engine/index.ts';
import {
  APPLIED_ANNOTATION,
  type EventRecorder,
  type EventTarget,
  type Store,
  type Workload,
  type WriteResult,
} from '../api/cluster.ts';
import type { LostRecords } from './lost-records.ts';
import { planWorkload, type WorkloadPlan } from './plan.ts';
import { checkRollout, type ClusterView } from './rollout-check.ts';
import type { PolicyCatalog } from './policy-catalog.ts';
import type { WorkloadWriter } from './ports.ts';
import {
  afterWrite,
  DONE,
  requeueAfter,
  type KeyReconciler,
  type ReconcileResult,
} from './result.ts';
import type { Logger } from '../util/logger.ts';
import type { RolloutBudget } from './rollout-budget.ts';

export interface WorkloadReconcilerDeps {
  readonly workloads: Store<Workload>;
  readonly namespaceLabels: (namespace: string) => Labels;
  readonly catalog: PolicyCatalog;
  readonly writer: WorkloadWriter;
  readonly events: EventRecorder;
  readonly budget: RolloutBudget;
  /**
   * Workload key → why the API server refused our last write to it (a request it will not
   * accept as it stands: validation, admission). Kept until a write goes through or none is
   * needed; the policy status shows them.
   */
  readonly refused: Map<string, string>;
  /**
   * Workload key → the resourceVersion our last write to it was based on. While the cache
   * still shows that version it has not seen the write: deciding again from it would only
   * repeat the write and get a 409. The watch event of the write brings the key back.
   */
  readonly writtenFrom: Map<string, string>;
  /** Records removed by hand while their terms stayed; see LostRecords. */
  readonly lost: LostRecords;
  readonly log: Logger;
  /** Counts writes and reverts by result. */
  readonly onWrite?: (what: 'write' | 'revert', result: WriteResult['kind']) => void;
  /** Tells the policies concerned that one of their workloads changed state. */
  readonly onWorkloadSettled?: (policyRefs: readonly string[]) => void;
  /** Pods and nodes to simulate a rollout on before a template write (none: no check). */
  readonly cluster?: ClusterView;
  /** Workload key → why its template write is held back (the rollout could not finish). */
  readonly heldBack?: Map<string, string>;
}

/**
 * How long a workload waits for the rollout budget before it asks again. A freed slot wakes
 * the next workload in line at once; this only bounds a wake-up that went astray.
 */
export const BUDGET_RETRY_MS = 30_000;

const API_VERSION: Record<Workload['kind'], string> = {
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  CronJob: 'batch/v1',
};

/**
 * Brings one workload's pod-template affinity to what its policies ask, writing only the
 * difference, and nothing at all when it already matches.
 */
export const reconcileWorkload: KeyReconciler<WorkloadReconcilerDeps> = async (key, deps, log) => {
  const w = deps.workloads.get(key);
  if (w === undefined) {
    deps.budget.forget(key);
    deps.refused.delete(key);
    deps.writtenFrom.delete(key);
    deps.lost.forget(key);
    return DONE;
  }
  if (deps.writtenFrom.get(key) === w.resourceVersion) return DONE;
  deps.writtenFrom.delete(key);
  deps.budget.observe(w, key);
  const target = {
    kind: w.kind,
    namespace: w.namespace,
    name: w.name,
    uid: w.uid,
    apiVersion: API_VERSION[w.kind],
  };
  if (w.rolloutStalled !== undefined && deps.budget.isRolling(key)) {
    // The slot stays taken: a change that stalls rollouts should not go on to roll out more
    // workloads before a person has looked. The policy shows it as Degraded.
    log.warn('rollout after our template change is not progressing', {
      reason: w.rolloutStalled,
    });
    deps.events.record(target, 'Warning', 'RolloutStalled', stalledMessage(w.rolloutStalled));
  }
  const plan = planWorkload(w, deps.catalog, deps.namespaceLabels, deps.lost.recall(w));
  if (plan.kind !== 'change') deps.refused.delete(key);
  // Nothing to write any more: a write held back before is no longer waiting.
  if (plan.kind !== 'change' && deps.heldBack?.delete(key) === true)
    deps.onWorkloadSettled?.(plan.kind === 'inSync' ? plan.enforced.map((p) => p.ref) : []);
  if (plan.kind !== 'change' || !plan.templateChanged) deps.budget.declined(key);
  switch (plan.kind) {
    case 'skip':
    case 'inSync':
      deps.lost.forget(key);
      return DONE;
    case 'blocked':
      log.warn('workload left unchanged', { reason: plan.message });
      deps.events.record(target, 'Warning', 'PlacementBlocked', plan.message);
      deps.onWorkloadSettled?.(plan.policies.map((p) => p.ref));
      return DONE;
    case 'contradiction': {
      const message =
        plan.contradictions.map(describeContradiction).join('; ') +
        ': its pods could not be scheduled with both, so nothing is written to the pod ' +
        'template, and what it carries now stays as it is until one of the rules changes';
      log.warn('workload left unchanged: required rules contradict', { reason: message });
      deps.events.record(target, 'Warning', 'PlacementContradiction', message);
      deps.onWorkloadSettled?.([
        ...new Set([
          ...plan.enforced.map((p) => p.ref),
          ...plan.contradictions.flatMap(contradictionPolicies),
        ]),
      ]);
      return DONE;
    }
    case 'change':
      break;
  }
  if (deps.cluster !== undefined && deps.heldBack !== undefined) {
    const check = checkRollout(w, plan, deps.cluster, deps.namespaceLabels);
    if (check.kind === 'holdBack') return holdBack(key, target, plan, check.message, deps, log);
    if (deps.heldBack.delete(key)) deps.onWorkloadSettled?.(plan.enforced.map((p) => p.ref));
  }
  if (plan.templateChanged && !deps.budget.tryAcquire(key)) {
    log.debug('waiting for the rollout budget', {
      inUse: deps.budget.inUse,
      limit: deps.budget.max,
    });
    deps.onWorkloadSettled?.(plan.enforced.map((p) => p.ref));
    return requeueAfter(BUDGET_RETRY_MS);
  }
  const result = await deps.writer.writeAffinity({
    workload: w,
    affinity: plan.affinity,
    appliedAnnotation: plan.annotation,
    topologySpreadConstraints: plan.topologySpreadConstraints ?? null,
  });
  const what = plan.enforced.length === 0 ? 'revert' : 'write';
  deps.onWrite?.(what, result.kind);
  if (result.kind !== 'written') deps.budget.cancel(key);
  switch (result.kind) {
    case 'written': {
      deps.refused.delete(key);
      deps.lost.forget(key);
      deps.writtenFrom.set(key, w.resourceVersion);
      if (plan.restored) {
        log.info('wrote back the record of injected terms that was removed by hand', {
          policies: plan.enforced.map((p) => p.ref),
        });
        deps.events.record(
          target,
          'Normal',
          'AppliedRecordRestored',
          `annotation ${APPLIED_ANNOTATION} was removed while the terms it records stayed; ` +
            'it is written back, so those terms stay known as injected (never added twice, ' +
            'taken out when their policy goes)',
        );
      }
      if (plan.templateChanged) deps.budget.wrote(key, w.generation);
      const policies = plan.enforced.map((p) => p.ref);
      const reverted = plan.reverted
        .map((ref) => {
          const by = plan.exempted.get(ref);
          return by === undefined ? ref : `${ref} (exempted by ${by.join(', ')})`;
        })
        .join(', ');
      const message =
        what === 'revert'
          ? `removed the terms injected by ${reverted}`
          : `pod template affinity now carries the terms of ${policies.join(', ')}` +
            (plan.reverted.length > 0 ? `; removed those of ${reverted}` : '');
      log.info(what === 'revert' ? 'reverted injected affinity' : 'injected affinity', {
        policies,
        reverted: plan.reverted,
        templateChanged: plan.templateChanged,
      });
      if (plan.templateChanged) {
        deps.events.record(
          target,
          'Normal',
          what === 'revert' ? 'AffinityReverted' : 'AffinityInjected',
          message,
        );
      }
      deps.onWorkloadSettled?.([...policies, ...plan.reverted]);
      return DONE;
    }
    case 'conflict':
      // Someone wrote first: the informer brings the new version, and we decide again.
      log.debug('conflict writing workload; retrying with the newer version');
      return { kind: 'requeue' };
    case 'gone':
      deps.budget.forget(key);
      deps.refused.delete(key);
      deps.writtenFrom.delete(key);
      deps.lost.forget(key);
      return DONE;
    case 'failed':
      if (!result.retryable) {
        const message = refusalMessage(result);
        const reason =
          result.invalid === undefined ? 'PlacementWriteFailed' : 'PlacementWriteInvalid';
        deps.events.record(target, 'Warning', reason, message);
        if (deps.refused.get(key) !== message) {
          deps.refused.set(key, message);
          deps.onWorkloadSettled?.([...plan.enforced.map((p) => p.ref), ...plan.reverted]);
        }
      }
      // What refused it (an admission policy, a quota) may go without any change to the
      // workload: retried with backoff. A request the API server's validation rejects is
      // rejected every time: terminal, until the workload or its policies change.
      return afterWrite(result, `writing ${key}`) ?? DONE;
  }
};

/**
 * What the policy's status and the workload's Event say of a write the API server refused;
 * for a request its validation rejects, the fields, and that it waits for a change.
 */
export function refusalMessage(result: Extract<WriteResult, { kind: 'failed' }>): string {
  if (result.invalid === undefined) return result.message;
  return (
    `${result.message}; the API server rejects ${result.invalid.join(', ')}: not tried ` +
    'again until the workload or a policy for it changes'
  );
}

/**
 * A write whose rollout could not finish is not made: the workload waits, the policy and a
 * Warning Event say why, and a later reconcile (a resync, a change) looks again.
 */
function holdBack(
  key: string,
  target: EventTarget,
  plan: Extract<WorkloadPlan, { kind: 'change' }>,
  message: string,
  deps: WorkloadReconcilerDeps,
  log: Logger,
): ReconcileResult {
  deps.budget.declined(key);
  if (deps.heldBack?.get(key) === message) return DONE;
  deps.heldBack?.set(key, message);
  log.warn('template write held back: the rollout could not finish', { reason: message });
  deps.events.record(target, 'Warning', 'RolloutHeldBack', message);
  deps.onWorkloadSettled?.(plan.enforced.map((p) => p.ref));
  return DONE;
}

/** What a stalled rollout's Event says. */
export const stalledMessage = (reason: string): string =>
  `the rollout that followed placement-operator's template change is not progressing ` +
  `(${reason}); it keeps its rollout-budget slot until it completes`;
