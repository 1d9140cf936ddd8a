// How the workloads a policy selects stand, from the cache: matched, enforced, pending and
// exempted, and the ones its conditions name (blocked, refused, contradicted, held back).
import {
  describeContradiction,
  describeContradictionFor,
  injectionFor,
  policyReach,
  SLOTS,
  type CompiledPolicy,
  managedByDeployment,
  workloadRef,
} from '../engine/index.ts';
import type { Labels } from '../api/core.ts';
import type { Workload } from '../api/cluster.ts';
import { jsonEqual } from '../util/json.ts';
import { appliedRecordOf, planWorkload } from './plan.ts';
import type { PolicyCatalog } from './policy-catalog.ts';

export interface Counts {
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

/** How the workloads a policy selects stand: counts, and the ones to name in its conditions. */
export function countWorkloads(
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
