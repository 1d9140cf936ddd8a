// The one targeting rule (policyReach): which compiled policies reach a workload, which
// PlacementExceptions they accept, and the priority order among them.
import type { Labels } from '../api/core.ts';
import { exceptionSelects, type CompiledException } from './exception.ts';
import {
  policyName,
  type CompiledPolicy,
  type NamespaceScope,
  type WorkloadRef,
} from './policy.ts';
import { selectorMatches } from './selector.ts';

const inScope = (scope: NamespaceScope, namespace: string, namespaceLabels: Labels): boolean =>
  scope.kind === 'own'
    ? scope.namespace === namespace
    : scope.names.has(namespace) ||
      (scope.selector !== null && selectorMatches(scope.selector, namespaceLabels));

/** How a policy reaches a workload. */
export type Reach =
  | { readonly kind: 'none' }
  | { readonly kind: 'targeted' }
  /** Selected by the policy, but exempted by accepted PlacementExceptions: gets none of its terms. */
  | { readonly kind: 'exempted'; readonly by: readonly CompiledException[] };

const NONE: Reach = { kind: 'none' };
const TARGETED: Reach = { kind: 'targeted' };

/**
 * Whether a policy targets a workload, given the exceptions attached to it: the one place
 * that decides it, for the controller, the audit, feasibility and the CLI alike.
 * `namespaceLabels` are the labels of the workload's namespace.
 */
export function policyReach(
  policy: CompiledPolicy,
  workload: WorkloadRef,
  namespaceLabels: Labels,
): Reach {
  if (!policy.kinds.has(workload.kind)) return NONE;
  if (!inScope(policy.scope, workload.namespace, namespaceLabels)) return NONE;
  if (!selectorMatches(policy.selector, workload.templateLabels)) return NONE;
  if (policy.exemptions.length === 0) return TARGETED;
  const by = policy.exemptions.filter(
    (e) =>
      exceptionSelects(e, workload) &&
      exceptionAllowed(policy, e.namespace, namespaceLabels).kind === 'allowed',
  );
  return by.length === 0 ? TARGETED : { kind: 'exempted', by };
}

/** Whether a policy targets a workload and no accepted exception exempts it (see policyReach). */
export const policyTargets = (
  policy: CompiledPolicy,
  workload: WorkloadRef,
  namespaceLabels: Labels,
): boolean => policyReach(policy, workload, namespaceLabels).kind === 'targeted';

/** Whether the policy accepts exceptions from a namespace (`spec.exceptions`). */
export type ExceptionAllowance =
  | { readonly kind: 'allowed' }
  | {
      readonly kind: 'refused';
      readonly reason: 'NotAllowed' | 'NamespaceNotAllowed';
      readonly message: string;
    };

export function exceptionAllowed(
  policy: CompiledPolicy,
  namespace: string,
  namespaceLabels: Labels,
): ExceptionAllowance {
  const scope = policy.exceptionScope;
  if (scope === null) {
    return {
      kind: 'refused',
      reason: 'NotAllowed',
      message: `${policyName(policy.source)} does not allow exceptions (spec.exceptions.allowed is not true)`,
    };
  }
  if (!inScope(scope, namespace, namespaceLabels)) {
    return {
      kind: 'refused',
      reason: 'NamespaceNotAllowed',
      message:
        `${policyName(policy.source)} does not allow exceptions from namespace ${namespace} ` +
        `(neither spec.exceptions.namespaces nor spec.exceptions.namespaceSelector selects it)`,
    };
  }
  return { kind: 'allowed' };
}

/**
 * The policy with the exceptions that name it attached (those naming other policies are
 * left out). The same object when there is nothing to attach and nothing was, so that
 * whoever keys work by policy identity sees no change.
 */
export function withExemptions(
  policy: CompiledPolicy,
  exceptions: readonly CompiledException[],
): CompiledPolicy {
  const mine = exceptions.filter((e) => e.policy === policy.ref);
  if (mine.length === 0 && policy.exemptions.length === 0) return policy;
  return { ...policy, exemptions: mine };
}

/**
 * Whether a policy could target a workload of one of `kinds` in `namespace`, whatever its
 * template labels: all that can be told of a pod whose workload is not known (see
 * resolveWorkload).
 */
export function policyMayTarget(
  policy: CompiledPolicy,
  kinds: readonly string[],
  namespace: string,
  namespaceLabels: Labels,
): boolean {
  return (
    kinds.some((k) => policy.kinds.has(k)) && inScope(policy.scope, namespace, namespaceLabels)
  );
}

/** Highest priority first, ties broken by namespace/name. */
export function comparePolicies(a: CompiledPolicy, b: CompiledPolicy): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0;
}
