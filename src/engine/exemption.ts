import type { Labels } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import type { CompiledException } from './exception.ts';
import { type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { exceptionAllowed, policyReach, withExemptions } from './policy-reach.ts';
import { workloadKey } from '../api/cluster.ts';

/** Why an exception has no effect; the condition reasons of its `Accepted=False` status. */
export type RefusalReason =
  'InvalidSpec' | 'PolicyNotFound' | 'PolicyInvalid' | 'NotAllowed' | 'NamespaceNotAllowed';

export type ExceptionVerdict =
  | { readonly kind: 'accepted'; readonly message: string }
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly message: string };

/** What is known of the policy an exception names. */
export type NamedPolicy =
  | { readonly kind: 'valid'; readonly policy: CompiledPolicy }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'missing' };

/** Whether an exception takes effect, and if not, why: for its status and the CLI. */
export function judgeException(
  e: CompiledException,
  named: NamedPolicy,
  namespaceLabels: Labels,
): ExceptionVerdict {
  const what = e.policy.replace('/', ' ');
  switch (named.kind) {
    case 'missing':
      return {
        kind: 'refused',
        reason: 'PolicyNotFound',
        message: `${what} does not exist`,
      };
    case 'invalid':
      return {
        kind: 'refused',
        reason: 'PolicyInvalid',
        message: `${what} cannot be read (see its status); the exception waits until it is fixed`,
      };
    case 'valid': {
      const allowance = exceptionAllowed(named.policy, e.namespace, namespaceLabels);
      if (allowance.kind === 'refused') return allowance;
      return { kind: 'accepted', message: `exempts the selected workloads from ${e.policy}` };
    }
  }
}

/** Each policy with the exceptions that name it attached (see withExemptions). */
export function attachExemptions(
  policies: readonly CompiledPolicy[],
  exceptions: readonly CompiledException[],
): CompiledPolicy[] {
  return policies.map((p) => withExemptions(p, exceptions));
}

/** One workload a policy does not apply to because of accepted exceptions. */
export interface Exemption {
  /** `Kind/namespace/name`. */
  readonly workload: string;
  readonly policy: PolicyRef;
  /** The exceptions that exempt it, `PlacementException/NS/NAME`. */
  readonly exceptions: readonly string[];
}

/**
 * The workloads each policy exempts, sorted by workload then policy; `workloads` may hold
 * one workload several times (once per pod, say): each is reported once. They are asked for
 * only when a policy has exceptions attached.
 */
export function exemptionsOf(
  policies: readonly CompiledPolicy[],
  workloads: () => Iterable<WorkloadRef>,
  namespaceLabels: (namespace: string) => Labels,
): Exemption[] {
  const withExceptions = policies.filter((p) => p.exemptions.length > 0);
  const found = new Map<string, Exemption>();
  if (withExceptions.length === 0) return [];
  for (const w of workloads()) {
    const workload = workloadKey(w);
    for (const p of withExceptions) {
      const key = `${workload}|${p.ref}`;
      if (found.has(key)) continue;
      const reach = policyReach(p, w, namespaceLabels(w.namespace));
      if (reach.kind !== 'exempted') continue;
      found.set(key, { workload, policy: p.ref, exceptions: reach.by.map((e) => e.ref).sort() });
    }
  }
  return [...found.values()].sort((a, b) =>
    a.workload !== b.workload
      ? a.workload < b.workload
        ? -1
        : 1
      : a.policy < b.policy
        ? -1
        : a.policy > b.policy
          ? 1
          : 0,
  );
}
