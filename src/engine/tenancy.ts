import type { Labels, PodAffinityTerm } from '../api/core.ts';
import type { PlacementPolicy } from '../api/policy.ts';
import { type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { policyReach } from './policy-reach.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';

/**
 * How far a policy's finding about a pod may travel (see docs/adr/0003-tenancy.md):
 *
 * - `act`: the policy's status, `placement_violations`, an Event on the pod, and the policy's
 *   remediation may evict the pod;
 * - `show`: the same, but never evicted: the pod breaks one of the policy's terms without
 *   being a pod of a workload the policy targets (another pod's anti-affinity term matches it);
 * - `platform`: only where the platform team looks: `placement_cross_namespace_violations`
 *   (no pod names) and one line of the operator's log. Never in the policy's status, never an
 *   Event, never evicted. A namespaced policy's finding about a pod of another namespace.
 */
export type FindingReach = 'act' | 'show' | 'platform';

/**
 * May this policy's finding about a pod of `workload` (the workload `workloadOfPod` finds for
 * it, in the pod's namespace) be shown or acted on in that namespace? `namespaceLabels` are
 * the labels of the pod's namespace.
 *
 * A namespaced policy is written by whoever may write PlacementPolicies in its namespace: what
 * it makes the operator show or do stays there. Any policy acts only on pods it targets: a
 * workload that an accepted PlacementException exempts from the policy is not targeted by it
 * (policyReach), so its pods are at most shown, never evicted for that policy.
 */
export function findingReach(
  policy: CompiledPolicy,
  workload: WorkloadRef,
  namespaceLabels: Labels,
): FindingReach {
  if (policy.scope.kind === 'own' && workload.namespace !== policy.scope.namespace)
    return 'platform';
  return policyReach(policy, workload, namespaceLabels).kind === 'targeted' ? 'act' : 'show';
}

/**
 * The fields of a namespaced policy's pod (anti-)affinity terms that select pods outside
 * its own namespace: every `namespaceSelector` (even `{}` selects all namespaces), and every
 * `namespaces` list that names another namespace than the policy's. Empty for a cluster policy.
 */
export function crossNamespaceTermFields(policy: PlacementPolicy): string[] {
  if (policy.kind !== 'PlacementPolicy') return [];
  const own = policy.metadata.namespace ?? '';
  const fields: string[] = [];
  const check = (t: PodAffinityTerm, field: string): void => {
    if (t.namespaces?.some((n) => n !== own) === true) fields.push(`${field}.namespaces`);
    if (t.namespaceSelector !== undefined && t.namespaceSelector !== null)
      fields.push(`${field}.namespaceSelector`);
  };
  for (const kind of ['podAffinity', 'podAntiAffinity'] as const) {
    const rules = policy.spec.affinity?.[kind];
    const base = `spec.affinity.${kind}`;
    (rules?.[REQUIRED] ?? []).forEach((t, i) => {
      check(t, `${base}.${REQUIRED}[${i}]`);
    });
    (rules?.[PREFERRED] ?? []).forEach((w, i) => {
      check(w.podAffinityTerm, `${base}.${PREFERRED}[${i}].podAffinityTerm`);
    });
  }
  return fields;
}
