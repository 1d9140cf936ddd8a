import type { Pod, PodAffinityRules } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import type { PlacementTerms, PodPlacement, SourcedTerm, WeightedTerm } from './placement.ts';
import { resolvePolicyTerms, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import {
  PREFERRED_TERMS as PREFERRED,
  REQUIRED_TERMS as REQUIRED,
  resolveTerm,
  type TermOwner,
} from './term.ts';

/**
 * Whether the scheduler counts this pod as a neighbour: bound to a node and not finished.
 * A pod being deleted still counts until it is gone, as in kube-scheduler's cache.
 */
export function isPlaced(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return (pod.spec.nodeName ?? '') !== '' && phase !== 'Succeeded' && phase !== 'Failed';
}

/** Whether the pod is judged: placed and not being deleted (its breach will end with it). */
export const isJudged = (pod: Pod): boolean =>
  isPlaced(pod) && pod.metadata.deletionTimestamp === undefined;

export const podKey = (pod: Pod): string => `${pod.metadata.namespace}/${pod.metadata.name}`;

function ownTerms(
  rules: PodAffinityRules | undefined,
  kind: string,
  owner: TermOwner,
): SourcedTerm[] {
  return (rules?.[REQUIRED] ?? []).map((t, i) => {
    const field = `spec.affinity.${kind}.${REQUIRED}[${i}]`;
    return { term: resolveTerm(t, owner, field), source: 'pod', index: i, field };
  });
}

function ownWeighted(
  rules: PodAffinityRules | undefined,
  kind: string,
  owner: TermOwner,
): WeightedTerm[] {
  return (rules?.[PREFERRED] ?? []).map((w, i) => {
    const field = `spec.affinity.${kind}.${PREFERRED}[${i}].podAffinityTerm`;
    return {
      term: resolveTerm(w.podAffinityTerm, owner, field),
      source: 'pod',
      index: i,
      field,
      weight: w.weight,
    };
  });
}

/**
 * Adds policy terms to a pod's own. A pod term equal to a policy term is the policy's
 * (the operator injected it, or will), so it is judged and reported once, as the policy's.
 */
function merge<T extends SourcedTerm>(
  own: readonly T[],
  fromPolicies: readonly T[],
  same: (a: T, b: T) => boolean,
): T[] {
  const out = [...own];
  for (const t of fromPolicies) {
    const i = out.findIndex((o) => same(o, t));
    if (i === -1) out.push(t);
    else if (out[i]?.source === 'pod') out[i] = t;
  }
  return out;
}

const sameTerm = (a: SourcedTerm, b: SourcedTerm): boolean => a.term.id === b.term.id;
const sameWeighted = (a: WeightedTerm, b: WeightedTerm): boolean =>
  a.term.id === b.term.id && a.weight === b.weight;

/**
 * Every pod (anti-)affinity term that applies to a pod: its own required and preferred
 * terms, plus those of `policies` (already chosen as the ones targeting its workload, in
 * priority order), all resolved against the pod. Throws FieldError for a term that cannot
 * be read.
 */
export function placementTerms(
  pod: Pod,
  workload: WorkloadRef,
  policies: readonly CompiledPolicy[],
): PlacementTerms {
  const owner: TermOwner = { namespace: pod.metadata.namespace, labels: pod.metadata.labels ?? {} };
  const affinity = pod.spec.affinity;
  const fromPolicies = policies.map((p) => resolvePolicyTerms(p, workload, owner));
  type Kind = 'podAffinity' | 'podAntiAffinity';
  const required = (kind: Kind, key: 'affinity' | 'antiAffinity'): SourcedTerm[] =>
    merge(
      ownTerms(affinity?.[kind], kind, owner),
      fromPolicies.flatMap((p) => p[key]),
      sameTerm,
    );
  const preferred = (kind: Kind, key: 'preferredAffinity' | 'preferredAntiAffinity') =>
    merge(
      ownWeighted(affinity?.[kind], kind, owner),
      fromPolicies.flatMap((p) => p[key]),
      sameWeighted,
    );
  return {
    affinity: required('podAffinity', 'affinity'),
    antiAffinity: required('podAntiAffinity', 'antiAffinity'),
    preferredAffinity: preferred('podAffinity', 'preferredAffinity'),
    preferredAntiAffinity: preferred('podAntiAffinity', 'preferredAntiAffinity'),
  };
}

/**
 * The engine's view of a pod (every PodPlacement is built here) from its terms, resolved
 * already by placementTerms; `exemptFrom` names the policies exceptions exempt its workload
 * from. judge-cluster.ts's placementOf finds both for a pod of the cluster.
 */
export function placedWith(
  pod: Pod,
  terms: PlacementTerms,
  exemptFrom: readonly PolicyRef[] = [],
): PodPlacement {
  return {
    key: podKey(pod),
    terminating: pod.metadata.deletionTimestamp !== undefined,
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    labels: pod.metadata.labels ?? {},
    nodeName: pod.spec.nodeName ?? '',
    affinity: terms.affinity,
    antiAffinity: terms.antiAffinity,
    preferredAffinity: terms.preferredAffinity,
    preferredAntiAffinity: terms.preferredAntiAffinity,
    ...(exemptFrom.length === 0 ? {} : { exemptFrom }),
  };
}
