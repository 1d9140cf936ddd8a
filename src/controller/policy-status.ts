// A policy's status from the cache: the counts (policy-counts.ts) and the conditions
// (policy-conditions.ts) put together, each condition's lastTransitionTime kept while its
// status holds, and the status of a policy being deleted.
import type { Labels } from '../api/core.ts';
import type { PlacementPolicy, PolicyAuditSummary } from '../api/policy.ts';
import type { Workload } from '../api/cluster.ts';
import { jsonEqual } from '../util/json.ts';
import type { PolicyInjection } from './admission-sync.ts';
import type { CatalogEntry, PolicyCatalog } from './policy-catalog.ts';
import {
  deletionConditions,
  degradedCondition,
  injectionCondition,
  readyCondition,
  stamp,
  unsatisfiableCondition,
  type Condition,
} from './policy-conditions.ts';
import { countWorkloads } from './policy-counts.ts';

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
  const unsatisfiable = unsatisfiableCondition(audit?.unsatisfiable);
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
  const drafts = deletionConditions(held);
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
