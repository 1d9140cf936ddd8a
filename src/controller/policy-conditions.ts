// A policy's conditions (Ready, Degraded, Unsatisfiable, InjectedAtAdmission): one function
// per condition, each choosing among its reasons in the order docs/operations.md gives. That
// order is the contract: the reasons of one condition are read against each other, so each
// condition's reasons stay together here. The counts they read are policy-counts.ts.
import {
  MAX_ADMITTED_POLICIES,
  type AdmissionFallback,
  type CompiledPolicy,
} from '../engine/index.ts';
import type { PolicyInjection } from './admission-sync.ts';
import type { Counts } from './policy-counts.ts';

export interface Condition {
  readonly type: 'Ready' | 'Degraded' | 'Unsatisfiable' | 'InjectedAtAdmission';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

/** A condition before its generation and transition time are stamped on. */
export type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

const ready = (status: Draft['status'], reason: string, message: string): Draft => ({
  type: 'Ready',
  status,
  reason,
  message,
});
const degraded = (status: Draft['status'], reason: string, message: string): Draft => ({
  type: 'Degraded',
  status,
  reason,
  message,
});

/** `; 2 exempted by PlacementExceptions`, or nothing. */
const exemptedNote = (c: Counts): string =>
  c.exempted > 0 ? `; ${c.exempted} exempted by PlacementExceptions` : '';

export function readyCondition(policy: CompiledPolicy, c: Counts, unsatisfiable: boolean): Draft {
  if (c.blocked.length > 0) {
    return ready(
      'False',
      'WorkloadBlocked',
      `${c.blocked.length} workload(s) cannot be changed safely`,
    );
  }
  if (policy.mode === 'Audit') {
    return ready(
      'True',
      'Auditing',
      `audit only: ${c.pending} of ${c.matched} workload(s) lack the rules${exemptedNote(c)}`,
    );
  }
  if (c.contradicted.length > 0) {
    return ready(
      'False',
      'Contradiction',
      `${c.contradicted.length} workload(s) get none of its terms: required rules cannot all hold there (see Degraded)`,
    );
  }
  if (c.refused.length > 0) {
    return ready(
      'False',
      'WriteRefused',
      `the API server refused the write to ${c.refused.length} workload(s) (see Degraded)`,
    );
  }
  if (c.heldBack.length > 0) {
    return ready(
      'False',
      'RolloutHeldBack',
      `${c.heldBack.length} workload(s) not written: their rollout could not finish`,
    );
  }
  if (c.pending > 0) {
    const waiting = c.waiting > 0 ? ` (${c.waiting} waiting for the rollout budget)` : '';
    return ready(
      'False',
      'RolloutPending',
      `${c.enforced} of ${c.matched} workload(s) carry the rules${waiting}${exemptedNote(c)}`,
    );
  }
  const notRunning = runningUnderRules(c, unsatisfiable);
  if (notRunning !== undefined) return notRunning;
  return ready(
    'True',
    'Enforced',
    `all ${c.matched} workload(s) carry the rules${exemptedNote(c)}`,
  );
}

/**
 * Ready means the pods run under the rules, not only that templates carry them: not while
 * the rules cannot all hold, or a rollout our write started still runs.
 */
function runningUnderRules(c: Counts, unsatisfiable: boolean): Draft | undefined {
  if (unsatisfiable)
    return ready(
      'False',
      'Unsatisfiable',
      'the required rules cannot all hold for every pod (see Unsatisfiable)',
    );
  if (c.rolling > 0)
    return ready(
      'False',
      'RolloutInProgress',
      `${c.rolling} of ${c.matched} workload(s) still rolling out the rules`,
    );
  return undefined;
}

/** At most this many workloads are named in a condition's message. */
export const NAMED = 3;

export function degradedCondition(c: Counts): Draft {
  if (c.blocked.length > 0) {
    return degraded('True', 'WorkloadBlocked', c.blocked.slice(0, NAMED).join('; '));
  }
  if (c.contradicted.length > 0) {
    return degraded(
      'True',
      'Contradiction',
      `required rules cannot all hold in ${c.contradicted.length} workload(s): nothing is ` +
        `written to them, and what they carry stays as it is until one of the rules changes: ` +
        c.contradicted.slice(0, NAMED).join('; '),
    );
  }
  if (c.heldBack.length > 0) {
    return degraded(
      'True',
      'RolloutHeldBack',
      `${c.heldBack.length} template write(s) held back, their rollout could not finish ` +
        `(allowBlockedRollouts: true writes anyway): ${c.heldBack.slice(0, NAMED).join('; ')}`,
    );
  }
  if (c.refused.length > 0) {
    return degraded(
      'True',
      'WriteRefused',
      `the API server refused ${c.refused.length} workload write(s); nothing was changed ` +
        `there: ${c.refused.slice(0, NAMED).join('; ')}`,
    );
  }
  if (c.stalled.length > 0) {
    return degraded(
      'True',
      'RolloutStalled',
      `${c.stalled.length} rollout(s) stopped progressing after the operator changed the ` +
        `pod template, each holding a rollout-budget slot: ${c.stalled.slice(0, NAMED).join('; ')}`,
    );
  }
  return { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' };
}

/** Unsatisfiable: what the audit found the policy's required rules cannot meet, if anything. */
export function unsatisfiableCondition(why: string | undefined): Draft {
  return why !== undefined
    ? { type: 'Unsatisfiable', status: 'True', reason: 'CannotBeMet', message: why }
    : { type: 'Unsatisfiable', status: 'False', reason: 'Satisfiable', message: '' };
}

/** Ready and Degraded of a deleted policy whose finalizer stays: `held` names the workloads. */
export function deletionConditions(held: readonly string[]): Draft[] {
  return [
    {
      type: 'Ready',
      status: 'False',
      reason: 'Deleting',
      message: `deleted; the finalizer stays until its terms are out of every workload, and ${held.length} workload(s) need a person first (see Degraded)`,
    },
    {
      type: 'Degraded',
      status: 'True',
      reason: 'DeletionBlocked',
      message:
        `its terms cannot be taken out of ${held.length} workload(s) until they are fixed, so ` +
        `the policy is kept: ${held.slice(0, NAMED).join('; ')}`,
    },
  ];
}

type Fallback = AdmissionFallback | 'notServed' | 'disabled';

const FALLBACK_REASONS: Readonly<Record<Fallback, string>> = {
  notServed: 'NotServed',
  disabled: 'Disabled',
  tooManyPolicies: 'TooManyPolicies',
};

const FALLBACK_MESSAGES: Readonly<Record<Fallback, string>> = {
  disabled:
    'injection at admission is off (--injection=reconciler); the reconciler writes workloads after they are created',
  notServed:
    'the API server does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy; the reconciler writes workloads after they are created',
  tooManyPolicies: `more than ${String(MAX_ADMITTED_POLICIES)} Enforce policies; those past the limit are left to the reconciler`,
};

export function injectionCondition(injection: PolicyInjection): Draft {
  return injection.kind === 'admission'
    ? {
        type: 'InjectedAtAdmission',
        status: 'True',
        reason: 'MutatingAdmissionPolicy',
        message: 'workloads created or updated get the terms at admission',
      }
    : {
        type: 'InjectedAtAdmission',
        status: 'False',
        reason: FALLBACK_REASONS[injection.why],
        message: FALLBACK_MESSAGES[injection.why],
      };
}

/** Keeps lastTransitionTime where a condition's status did not change. */
export function stamp(
  drafts: readonly Draft[],
  previous: readonly Condition[],
  generation: number,
  now: string,
): Condition[] {
  return drafts.map((d) => {
    const old = previous.find((p) => p.type === d.type);
    const since = old !== undefined && old.status === d.status ? old.lastTransitionTime : now;
    return { ...d, observedGeneration: generation, lastTransitionTime: since };
  });
}
