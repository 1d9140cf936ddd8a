import type { Labels, PodAffinityTerm } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { policyTermsFor, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { resolveTerm, termMatches, type ResolvedTerm } from './term.ts';
import type { TopologyIndex } from './topology-index.ts';

/** A workload and what the policies that target it require of its pods. */
export interface FeasibilityTarget {
  readonly workload: WorkloadRef;
  readonly replicas: number;
  /** The policies that target the workload (Enforce and Audit). */
  readonly policies: readonly CompiledPolicy[];
  /** The workload's own required podAffinity terms, from its template. */
  readonly ownAffinity: readonly PodAffinityTerm[];
}

interface Requirement {
  readonly term: ResolvedTerm;
  readonly policy: PolicyRef | null;
}

const describe = (w: WorkloadRef): string => `${w.kind} ${w.namespace}/${w.name}`;

/**
 * Policies whose required rules cannot be met, with a reason a person can act on, found
 * from the workloads and the cluster before pods wait in Pending:
 * - required anti-affinity among a workload's own pods on a key with fewer domains than
 *   replicas (at most one pod per domain);
 * - required podAffinity that no running pod meets and no workload can meet first: the
 *   target pods do not exist, the workload's own pods do not match all its terms (so the
 *   scheduler's first-pod exception does not apply), and every workload that could provide
 *   a match is itself waiting — the cycle of mutual required affinity.
 */
export function unsatisfiablePolicies(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodeLabels: Iterable<Labels>,
  namespaceLabels: (ns: string) => Labels,
): Map<PolicyRef, string[]> {
  const out = new Map<PolicyRef, string[]>();
  const report = (ref: PolicyRef, message: string): void => {
    const list = out.get(ref) ?? [];
    list.push(message);
    out.set(ref, list);
  };
  const nodes = [...nodeLabels];
  for (const t of targets) spreadProblems(t, nodes, namespaceLabels, report);
  affinityProblems(targets, index, namespaceLabels, report);
  return out;
}

function ownerOf(w: WorkloadRef): { namespace: string; labels: Labels } {
  return { namespace: w.namespace, labels: w.templateLabels };
}

function spreadProblems(
  t: FeasibilityTarget,
  nodes: readonly Labels[],
  namespaceLabels: (ns: string) => Labels,
  report: (ref: PolicyRef, message: string) => void,
): void {
  const { workload } = t;
  for (const policy of t.policies) {
    const terms = policyTermsFor(policy, workload).podAntiAffinity;
    terms.forEach((raw, i) => {
      const term = resolveTerm(raw, ownerOf(workload), `podAntiAffinity[${i}]`);
      // Only anti-affinity that selects the workload's own pods caps them per domain.
      if (
        !termMatches(
          term,
          workload.namespace,
          workload.templateLabels,
          namespaceLabels(workload.namespace),
        )
      )
        return;
      const domains = new Set(
        nodes.flatMap((n) => (n[term.topologyKey] === undefined ? [] : [n[term.topologyKey]])),
      );
      if (t.replicas > domains.size) {
        report(
          policy.ref,
          `${describe(workload)} wants ${t.replicas} replicas, but required anti-affinity allows one per ${term.topologyKey} and only ${domains.size} node domain(s) carry that label`,
        );
      }
    });
  }
}

function affinityProblems(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  namespaceLabels: (ns: string) => Labels,
  report: (ref: PolicyRef, message: string) => void,
): void {
  const requirements = targets.map((t): Requirement[] => [
    ...t.ownAffinity.map((raw, i) => ({
      term: resolveTerm(raw, ownerOf(t.workload), `affinity[${i}]`),
      policy: null,
    })),
    ...t.policies.flatMap((p) =>
      policyTermsFor(p, t.workload).podAffinity.map((raw, i) => ({
        term: resolveTerm(raw, ownerOf(t.workload), `affinity[${i}]`),
        policy: p.ref,
      })),
    ),
  ]);
  const selectsWorkload = (term: ResolvedTerm, w: WorkloadRef): boolean =>
    termMatches(term, w.namespace, w.templateLabels, namespaceLabels(w.namespace));
  const runningMatch = (term: ResolvedTerm): boolean => !index.podsSelectedBy(term).next().done;
  // The scheduler counts only pods that match every required podAffinity term of the
  // incoming pod (podMatchesAllAffinityTerms): one pod must meet them all, not one per term.
  const runningMatchesAll = (reqs: readonly Requirement[]): boolean => {
    const [first, ...rest] = reqs;
    if (first === undefined) return true;
    for (const p of index.podsSelectedBy(first.term))
      if (rest.every((r) => index.selects(r.term, p))) return true;
    return false;
  };
  // A workload can start once one running pod meets all its affinity terms, or one other
  // workload that can start (and has replicas) does, or — the first pod — its own pods do.
  const startable = targets.map((t, i) => {
    const reqs = requirements[i] ?? [];
    return reqs.every((r) => selectsWorkload(r.term, t.workload)) || runningMatchesAll(reqs);
  });
  for (let changed = true; changed;) {
    changed = false;
    targets.forEach((_t, i) => {
      if (startable[i] === true) return;
      const reqs = requirements[i] ?? [];
      const ok = targets.some(
        (other, k) =>
          k !== i &&
          startable[k] === true &&
          other.replicas > 0 &&
          reqs.every((r) => selectsWorkload(r.term, other.workload)),
      );
      if (ok) {
        startable[i] = true;
        changed = true;
      }
    });
  }
  targets.forEach((t, i) => {
    if (startable[i] === true) return;
    const own = (requirements[i] ?? []).filter((r) => r.policy !== null);
    // Blame the terms nothing meets; when each is met by a different pod, blame them all.
    const unmet = own.filter((r) => !runningMatch(r.term));
    for (const r of unmet.length > 0 ? unmet : own) {
      if (r.policy === null) continue;
      report(
        r.policy,
        `${describe(t.workload)}: required podAffinity on ${r.term.topologyKey}: no running pod and no workload that can start first matches all its required podAffinity terms, and its own pods do not match them all, so no first pod can be scheduled`,
      );
    }
  });
}
