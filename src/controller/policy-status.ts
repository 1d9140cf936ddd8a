// A policy's status from the cache: the counts, then one function per condition (Ready,
// Degraded, Unsatisfiable, InjectedAtAdmission), each choosing among its reasons in the
// order docs/operations.md gives. Kept in one file because that order is the contract: the
// reasons of one condition are read against each other, and the counts feed them all.
import type { Labels } from '../api/core.ts';
import type { PlacementPolicy, PolicyAuditSummary } from '../api/policy.ts';
import {
  describeContradiction,
  describeContradictionFor,
  injectionFor,
  policyReach,
  SLOTS,
  MAX_ADMITTED_POLICIES,
  type AdmissionFallback,
  type CompiledPolicy,
  managedByDeployment,
  workloadRef,
} from '../engine/index.ts';
import { jsonEqual } from '../util/json.ts';
import { appliedRecordOf, planWorkload } from './plan.ts';
import type { PolicyInjection } from './admission-sync.ts';
import type { CatalogEntry, PolicyCatalog } from './policy-catalog.ts';
import type { Workload } from '../api/cluster.ts';

export interface Condition {
  readonly type: 'Ready' | 'Degraded' | 'Unsatisfiable' | 'InjectedAtAdmission';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

/** What the audit knows of a policy, merged into its status. */
export type AuditSummary = PolicyAuditSummary;

export interface PolicyStatus {
  readonly observedGeneration: number;
  readonly conditions: readonly Condition[];
  readonly matched: number;
  readonly enforced: number;
  readonly pending: number;
  /** Workloads the policy selects that accepted PlacementExceptions exempt from it. */
  readonly exempted: number;
  readonly violations: number;
  readonly violationSample: AuditSummary['violationSample'];
  readonly lastAuditTime?: string;
  /** Where the CRD declares it: a top-level auditOnly would be pruned on every write. */
  readonly workloads: { readonly auditOnly: number };
}

interface Counts {
  matched: number;
  enforced: number;
  pending: number;
  exempted: number;
  blocked: string[];
  waiting: number;
  /** Workloads whose rollout after our write stopped progressing. */
  stalled: string[];
  /** Workloads whose last write the API server refused, with its reason. */
  refused: string[];
  /** Workloads left unwritten because required rules contradict, with the contradiction. */
  contradicted: string[];
  /** Workloads whose template write is held back: its rollout could not finish. */
  heldBack: string[];
  /** Workloads that carry the rules while the rollout our write started still runs. */
  rolling: number;
}

/** Whether the workload's template already carries every term this one policy asks. */
function carriesTerms(w: Workload, policy: CompiledPolicy): boolean {
  const injection = injectionFor([policy], workloadRef(w));
  const affinity = (w.affinity ?? {}) as Record<
    string,
    Record<string, unknown[] | undefined> | undefined
  >;
  for (const [slot, terms] of Object.entries(injection.slots)) {
    const [group, field] = SLOTS[slot as keyof typeof SLOTS];
    const list = affinity[group]?.[field] ?? [];
    if (!terms.every((t) => list.some((x) => jsonEqual(x, t)))) return false;
  }
  return true;
}

function countWorkloads(
  policy: CompiledPolicy,
  workloads: readonly Workload[],
  catalog: PolicyCatalog,
  namespaceLabels: (ns: string) => Labels,
  isWaiting: (w: Workload) => boolean,
  isRolling: (w: Workload) => boolean,
  refusal: (w: Workload) => string | undefined,
  heldBack: (w: Workload) => string | undefined,
): Counts {
  const c: Counts = {
    matched: 0,
    enforced: 0,
    pending: 0,
    exempted: 0,
    blocked: [],
    waiting: 0,
    stalled: [],
    refused: [],
    contradicted: [],
    heldBack: [],
    rolling: 0,
  };
  for (const w of workloads) {
    const labels = namespaceLabels(w.namespace);
    const reach = policyReach(policy, workloadRef(w), labels);
    if (reach.kind === 'exempted' && !managedByDeployment(w)) c.exempted++;
    if (reach.kind !== 'targeted') continue;
    const plan = planWorkload(w, catalog, namespaceLabels);
    if (plan.kind === 'skip') continue;
    c.matched++;
    if (w.rolloutStalled !== undefined && isRolling(w)) {
      c.stalled.push(`${w.kind} ${w.namespace}/${w.name}: ${w.rolloutStalled}`);
    }
    const refused = refusal(w);
    if (refused !== undefined) c.refused.push(refused);
    const held = policy.mode === 'Enforce' ? heldBack(w) : undefined;
    if (held !== undefined) c.heldBack.push(held);
    if (plan.kind === 'blocked') {
      c.pending++;
      c.blocked.push(`${w.kind} ${w.namespace}/${w.name}: ${plan.message}`);
      continue;
    }
    if (plan.kind === 'contradiction' && policy.mode === 'Enforce') {
      c.pending++;
      const what = plan.contradictions.map(
        (x) => describeContradictionFor(x, policy.ref) ?? describeContradiction(x),
      );
      c.contradicted.push(`${w.kind} ${w.namespace}/${w.name}: ${what.join('; ')}`);
      continue;
    }
    const done =
      policy.mode === 'Audit'
        ? carriesTerms(w, policy)
        : plan.kind === 'inSync' && isCurrent(w, policy);
    if (done && policy.mode === 'Enforce' && isRolling(w)) c.rolling++;
    if (done) c.enforced++;
    else {
      c.pending++;
      if (isWaiting(w)) c.waiting++;
    }
  }
  return c;
}

/** The workload's record lists this policy at its current generation. */
function isCurrent(w: Workload, policy: CompiledPolicy): boolean {
  const parsed = appliedRecordOf(w);
  const generation = policy.source.metadata.generation ?? 0;
  return parsed.kind === 'ok' && parsed.record.policies[policy.ref] === generation;
}

type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

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

function readyCondition(policy: CompiledPolicy, c: Counts, unsatisfiable: boolean): Draft {
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
const NAMED = 3;

function degradedCondition(c: Counts): Draft {
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

/** Keeps lastTransitionTime where a condition's status did not change. */
function stamp(
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

export interface StatusInputs {
  readonly entry: CatalogEntry;
  readonly workloads: readonly Workload[];
  readonly catalog: PolicyCatalog;
  readonly namespaceLabels: (ns: string) => Labels;
  readonly isWaiting: (w: Workload) => boolean;
  /** Whether the workload holds a rollout-budget slot for a write of ours. */
  readonly isRolling: (w: Workload) => boolean;
  /** Why the API server refused the last write to the workload, if it did. */
  readonly refusal: (w: Workload) => string | undefined;
  /** Why the workload's template write is held back, if it is. */
  readonly heldBack?: (w: Workload) => string | undefined;
  readonly audit: AuditSummary | undefined;
  /** Where an Enforce policy's terms are injected (shown as the InjectedAtAdmission condition). */
  readonly injection?: PolicyInjection;
  readonly now: string;
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

function injectionCondition(injection: PolicyInjection): Draft {
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

/** The status a policy should show, per Kubernetes API conventions. */
export function policyStatus(source: PlacementPolicy, inputs: StatusInputs): PolicyStatus {
  const generation = source.metadata.generation ?? 0;
  const previous = previousConditions(source);
  const audit = inputs.audit;
  const auditFields = {
    violations: audit?.violations ?? 0,
    violationSample: audit?.violationSample ?? [],
    ...(audit ? { lastAuditTime: audit.lastAuditTime } : {}),
    workloads: { auditOnly: audit?.auditOnly ?? 0 },
  };
  if (inputs.entry.kind === 'invalid') {
    const message = inputs.entry.errors.map((e) => `${e.field}: ${e.problem}`).join('; ');
    return {
      observedGeneration: generation,
      conditions: stamp(
        [
          { type: 'Ready', status: 'False', reason: inputs.entry.reason, message },
          { type: 'Degraded', status: 'True', reason: inputs.entry.reason, message },
        ],
        previous,
        generation,
        inputs.now,
      ),
      matched: 0,
      enforced: 0,
      pending: 0,
      exempted: 0,
      ...auditFields,
    };
  }
  // With the exceptions that name it: the workloads they exempt are counted apart.
  const policy = inputs.catalog.effective(inputs.entry.policy);
  const c = countWorkloads(
    policy,
    inputs.workloads,
    inputs.catalog,
    inputs.namespaceLabels,
    inputs.isWaiting,
    inputs.isRolling,
    inputs.refusal,
    inputs.heldBack ?? (() => undefined),
  );
  const degraded = degradedCondition(c);
  const unsatisfiable: Draft =
    audit?.unsatisfiable !== undefined
      ? {
          type: 'Unsatisfiable',
          status: 'True',
          reason: 'CannotBeMet',
          message: audit.unsatisfiable,
        }
      : { type: 'Unsatisfiable', status: 'False', reason: 'Satisfiable', message: '' };
  return {
    observedGeneration: generation,
    conditions: stamp(
      [
        readyCondition(policy, c, unsatisfiable.status === 'True'),
        degraded,
        unsatisfiable,
        ...(inputs.injection !== undefined && policy.mode === 'Enforce'
          ? [injectionCondition(inputs.injection)]
          : []),
      ],
      previous,
      generation,
      inputs.now,
    ),
    matched: c.matched,
    enforced: c.enforced,
    pending: c.pending,
    exempted: c.exempted,
    ...auditFields,
  };
}

function previousConditions(p: PlacementPolicy): readonly Condition[] {
  const status = (p as { status?: { conditions?: readonly Condition[] } }).status;
  return status?.conditions ?? [];
}

/** Whether writing `next` would change what the policy shows (timestamps aside). */
export function statusDiffers(p: PlacementPolicy, next: PolicyStatus): boolean {
  const current = (p as { status?: unknown }).status ?? {};
  const strip = (s: unknown): unknown => {
    const {
      lastAuditTime: _t,
      conditions,
      ...rest
    } = (s ?? {}) as Record<string, unknown> & {
      conditions?: readonly Condition[];
    };
    return { ...rest, conditions: (conditions ?? []).map(({ lastTransitionTime: _l, ...c }) => c) };
  };
  return !jsonEqual(strip(current), strip(next));
}

/**
 * The status of a deleted policy whose finalizer stays because its terms cannot be taken out
 * of some workloads until a person fixes them: `held` names each, with why.
 */
export function deletionStatus(
  source: PlacementPolicy,
  held: readonly string[],
  now: string,
): PolicyStatus {
  const generation = source.metadata.generation ?? 0;
  const previous = previousConditions(source);
  const current: Partial<PolicyStatus> =
    (source as { status?: Partial<PolicyStatus> }).status ?? {};
  const drafts: Draft[] = [
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
  return {
    observedGeneration: generation,
    matched: current.matched ?? 0,
    enforced: current.enforced ?? 0,
    pending: current.pending ?? 0,
    exempted: current.exempted ?? 0,
    violations: current.violations ?? 0,
    violationSample: current.violationSample ?? [],
    ...(current.lastAuditTime === undefined ? {} : { lastAuditTime: current.lastAuditTime }),
    workloads: { auditOnly: current.workloads?.auditOnly ?? 0 },
    conditions: [
      ...stamp(drafts, previous, generation, now),
      ...previous.filter((c) => c.type !== 'Ready' && c.type !== 'Degraded'),
    ],
  };
}
