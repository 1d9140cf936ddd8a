/**
 * Feasibility: the policies whose required rules cannot be met, with a reason a person can
 * act on, found from the workloads and the cluster before pods wait in Pending (see
 * `unsatisfiablePolicies`), and what finding them read, so a result holds until that changes.
 *
 * Long because its three findings (too few domains for a spread, required affinity no pod can
 * meet, and capacity through capacity-problems.ts) share the targets, the node constraints and
 * the record of reads (`FeasibilityReads`) that decides when a result goes stale.
 */
import type {
  Labels,
  NodeSelectorTerm,
  PodAffinityTerm,
  TopologySpreadConstraint,
} from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { nodeAdmits, type NodeFacts, type PodConstraints } from './node-eligibility.ts';
import type { PodPlacement } from './placement.ts';
import { policyTermsFor, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { selectorAnchor } from './selector.ts';
import { resolveTerm, termMatches, type ResolvedTerm } from './term.ts';
import type { TopologyIndex } from './topology-index.ts';
import { labelOf } from './labels.ts';
import { capacityProblems } from './capacity-problems.ts';
import { jsonEqual, sameLabels } from '../util/json.ts';
import { workloadKey } from '../api/cluster.ts';
import { runAll, type Steps } from '../util/steps.ts';
import { ownerFinder } from './rollout-prediction.ts';

/** A workload and what the policies that target it require of its pods. */
export interface FeasibilityTarget {
  readonly workload: WorkloadRef;
  readonly replicas: number;
  /** The policies that target the workload (Enforce and Audit). */
  readonly policies: readonly CompiledPolicy[];
  /** The workload's own required podAffinity terms, from its template. */
  readonly ownAffinity: readonly PodAffinityTerm[];
  /** Its own required podAntiAffinity terms, from its template. */
  readonly ownAntiAffinity?: readonly PodAffinityTerm[];
  /** Where its pods may go at all: the template's nodeSelector, node affinity, tolerations. */
  readonly constraints?: PodConstraints;
  /** Its own topologySpreadConstraints, from its template (the policies' come from them). */
  readonly ownSpreadConstraints?: readonly TopologySpreadConstraint[];
}

interface Requirement {
  readonly term: ResolvedTerm;
  readonly policy: PolicyRef | null;
}

const describe = (w: WorkloadRef): string => `${w.kind} ${w.namespace}/${w.name}`;

/** Terms one running pod had to meet together; `ofGhosts`: see `FeasibilityReads.lookedUp`. */
interface Lookup {
  readonly terms: readonly ResolvedTerm[];
  ofGhosts: boolean;
}

/**
 * What a feasibility computation read of the cluster besides its targets and the namespace
 * labels, so that a caller can tell which later changes may alter its result.
 */
export class FeasibilityReads {
  /** Topology keys whose node domains were counted. */
  readonly domainKeys = new Set<string>();
  /**
   * Whether some count looked at more of a node than those keys: a workload with node
   * constraints (any label may matter), or a node with taints or a cordon.
   */
  nodeDetails = false;
  /** Whether any pod with required anti-affinity may change the result (capacity counts them). */
  antiAffinityPods = false;
  /**
   * Each look-up for running pods (the terms one pod had to meet together), filed under a
   * `key=value` label every pod it finds carries, or under '' when there is none; `ofGhosts`:
   * whether it also finds the running pods of a workload the model places anew (see `seen`).
   */
  private readonly lookups = new Map<string, Map<string, Lookup>>();

  /**
   * Notes a look-up. `ofGhosts` is false for one that a workload placed anew leaves alone in
   * its old pods: anti-affinity and spreading count only the pods the model places.
   */
  lookedUp(terms: readonly ResolvedTerm[], ofGhosts = true): void {
    // A null labelSelector selects no pod: no pod can change what such a look-up found.
    if (terms.some((t) => t.selector.kind === 'nothing')) return;
    const anchor = terms.map((t) => selectorAnchor(t.selector)).find((a) => a.kind === 'values');
    const id = terms.map((t) => t.id).join(' && ');
    for (const value of anchor?.values ?? [null]) {
      const label = anchor === undefined || value === null ? '' : `${anchor.key}=${value}`;
      const filed = this.lookups.get(label) ?? new Map<string, Lookup>();
      const known = filed.get(id);
      if (known === undefined) filed.set(id, { terms, ofGhosts });
      else known.ofGhosts ||= ofGhosts;
      this.lookups.set(label, filed);
    }
  }

  /**
   * Whether adding or removing this pod (as the index holds it) can change the result: some
   * look-up for running pods would find it. Namespace labels are read from `index`.
   */
  couldFind(pod: PodPlacement, index: TopologyIndex): boolean {
    return this.seen(pod, index) !== null;
  }

  /**
   * The workloads the scheduling model places (`moved`: their running pods are placed anew;
   * otherwise they stay and only the missing ones are placed), which of them owns a pod (by
   * its labels) being read too. `antiAffinity`: its new pods carry required anti-affinity.
   */
  owners(
    workloads: readonly {
      readonly workload: WorkloadRef;
      readonly moved: boolean;
      readonly antiAffinity: boolean;
    }[],
  ): void {
    this.ownerOf = ownerFinder(workloads.map((w) => w.workload));
    this.placed = new Map(workloads.map((w) => [workloadKey(w.workload), w]));
  }

  private ownerOf: ((namespace: string, labels: Labels) => string | undefined) | null = null;
  private placed = new Map<
    string,
    { readonly workload: WorkloadRef; readonly moved: boolean; readonly antiAffinity: boolean }
  >();

  /**
   * Whether pods that went from `before` to `after` (as the index holds them; undefined: not
   * there) can change the result: what it read of them, taken together, changed — which
   * look-ups find one, where it runs, its anti-affinity when other pods' anti-affinity
   * counts, or the workload it is counted under. A pod deleted and replaced by one the
   * result reads the same (a ReplicaSet's new pod with the same labels on the same node)
   * changes nothing: the model names a pod only by what it read of it, and by its key when
   * its anti-affinity counts (a message may name it).
   */
  podsChanged(
    changes: Iterable<readonly [PodPlacement | undefined, PodPlacement | undefined]>,
    index: TopologyIndex,
  ): boolean {
    const balance = new Map<string, number>();
    const count = (seen: string | null, n: number): void => {
      if (seen !== null) balance.set(seen, (balance.get(seen) ?? 0) + n);
    };
    for (const [before, after] of changes) {
      count(this.seen(before, index), 1);
      count(this.seen(after, index), -1);
    }
    for (const n of balance.values()) if (n !== 0) return true;
    return false;
  }

  /** The look-ups that find a pod with these labels in `namespace` (of a ghost: `ghost`). */
  private found(
    namespace: string,
    labels: Labels,
    index: TopologyIndex,
    ghost: boolean,
  ): Set<string> {
    const found = new Set<string>();
    const nsLabels = index.namespaceLabels(namespace);
    const look = (label: string): void => {
      for (const [id, l] of this.lookups.get(label) ?? [])
        if (
          !found.has(id) &&
          (l.ofGhosts || !ghost) &&
          l.terms.every((t) => termMatches(t, namespace, labels, nsLabels))
        )
          found.add(id);
    };
    look('');
    for (const [k, v] of Object.entries(labels)) look(`${k}=${v}`);
    return found;
  }

  /**
   * What the result read of a pod, as a string; null when it read nothing of it.
   * - A pod of a workload placed anew only provides for affinity (the model's ghost): the
   *   look-ups of its old pods are all that read it.
   * - A pod of a workload that stays is counted as that workload's: one fewer, and the model
   *   places one. That new pod, with the template's labels, matters only where a look-up
   *   finds those labels or it carries anti-affinity; otherwise which workload owns the pod
   *   changes nothing for any other.
   */
  private seen(pod: PodPlacement | undefined, index: TopologyIndex): string | null {
    if (pod === undefined) return null;
    const owner = this.ownerOf?.(pod.namespace, pod.labels);
    const model = owner === undefined ? undefined : this.placed.get(owner);
    const ghost = model?.moved === true;
    const found = this.found(pod.namespace, pod.labels, index, ghost);
    const anti = this.antiAffinityPods && !ghost ? pod.antiAffinity : [];
    const counted =
      model !== undefined &&
      (ghost
        ? found.size > 0
        : model.antiAffinity ||
          this.found(model.workload.namespace, model.workload.templateLabels, index, false).size >
            0);
    if (found.size === 0 && anti.length === 0 && !counted) return null;
    return JSON.stringify([
      anti.length > 0 ? pod.key : null,
      pod.namespace,
      pod.nodeName,
      [...found].sort(),
      anti.map((n) => [n.term.id, n.source, n.field]),
      counted ? [owner, ghost] : null,
    ]);
  }

  /** Whether a node that went from `before` to `after` changes a domain count read. */
  domainsMoved(before: NodeFacts | undefined, after: NodeFacts | undefined): boolean {
    if (before === undefined || after === undefined) {
      // A node with a counted key adds to its domains; one without it takes any number of
      // pods that the key's anti-affinity would cap (feasibility counts it as unbounded).
      if (before === undefined && after === undefined) return false;
      return this.nodeDetails || this.domainKeys.size > 0;
    }
    for (const key of this.domainKeys)
      if (labelOf(before.labels, key) !== labelOf(after.labels, key)) return true;
    if (!this.nodeDetails) return false;
    return (
      !sameLabels(before.labels, after.labels) ||
      !jsonEqual(before.taints, after.taints) ||
      before.unschedulable !== after.unschedulable
    );
  }
}

/** The policies that cannot be met (see `unsatisfiablePolicies`) and what finding them read. */
export interface Feasibility {
  readonly unsatisfiable: Map<PolicyRef, string[]>;
  readonly reads: FeasibilityReads;
}

/**
 * Policies whose required rules cannot be met, with a reason a person can act on, found
 * from the workloads and the cluster before pods wait in Pending:
 * - required anti-affinity among a workload's own pods on a key with fewer domains than
 *   replicas (at most one pod per domain);
 * - required podAffinity that no running pod meets and no workload can meet first: the
 *   target pods do not exist, the workload's own pods do not match all its terms (so the
 *   scheduler's first-pod exception does not apply), and every workload that could provide
 *   a match is itself waiting — the cycle of mutual required affinity;
 * - otherwise, all its required rules together (capacity-problems.ts): fewer of its pods
 *   fit than it has replicas.
 */
export function unsatisfiablePolicies(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodes: Iterable<NodeFacts>,
  namespaceLabels: (ns: string) => Labels,
): Map<PolicyRef, string[]> {
  return feasibility(targets, index, nodes, namespaceLabels).unsatisfiable;
}

/**
 * `unsatisfiablePolicies`, with what it read: the result holds until a target, a namespace's
 * labels, or something `reads` names changes.
 */
export function feasibility(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodes: Iterable<NodeFacts>,
  namespaceLabels: (ns: string) => Labels,
): Feasibility {
  return runAll(feasibilitySteps(targets, index, nodes, namespaceLabels));
}

/**
 * `feasibility`, yielding between the pods its scheduling model places. The index and the
 * nodes are read before the first yield; the namespace labels are read throughout. What it
 * reads is noted in `reads` before the first yield: a caller can tell from then on whether a
 * change makes the result stale before it is done.
 */
export function* feasibilitySteps(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodes: Iterable<NodeFacts>,
  namespaceLabels: (ns: string) => Labels,
  reads = new FeasibilityReads(),
): Steps<Feasibility> {
  const out = new Map<PolicyRef, string[]>();
  const report = (ref: PolicyRef, message: string): void => {
    const list = out.get(ref) ?? [];
    list.push(message);
    out.set(ref, list);
  };
  const nodeList = [...nodes];
  const domains = domainCounter(nodeList, reads);
  for (const t of targets) spreadProblems(t, domains, namespaceLabels, report);
  affinityProblems(targets, index, namespaceLabels, report, reads);
  // A workload whose rules fail one by one is not counted again for them all together.
  const reported = [...out.values()].flat();
  const told = (w: WorkloadRef): boolean =>
    reported.some((m) => m.startsWith(`${describe(w)} `) || m.startsWith(`${describe(w)}:`));
  yield* capacityProblems(targets, index, nodeList, namespaceLabels, told, report, reads);
  return { unsatisfiable: out, reads };
}

/** The node constraints a workload's pods will have once the policies' terms are in. */
export interface NodeConstraints {
  readonly pod: PodConstraints;
  /** Each policy's required nodeSelectorTerms (ORed within a policy, ANDed across them). */
  readonly policies: readonly (readonly NodeSelectorTerm[])[];
}

const unconstrained = (c: NodeConstraints): boolean =>
  c.policies.length === 0 &&
  Object.keys(c.pod.nodeSelector ?? {}).length === 0 &&
  c.pod.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution === undefined;

/**
 * How many node domains a topology key has among the nodes a workload's pods may use,
 * counted once per key and per distinct set of constraints; Infinity when one of those
 * nodes lacks the key.
 */
function domainCounter(
  nodes: readonly NodeFacts[],
  reads: FeasibilityReads,
): (key: string, constraints: NodeConstraints) => number {
  const eligible = new Map<string, readonly NodeFacts[]>();
  const counts = new Map<string, number>();
  const anyDetails = nodes.some((n) => n.taints.length > 0 || n.unschedulable);
  return (key, constraints) => {
    const signature = JSON.stringify(constraints);
    const countKey = `${key}\u0000${signature}`;
    let n = counts.get(countKey);
    if (n !== undefined) return n;
    let pool = eligible.get(signature);
    if (pool === undefined) {
      const plain = unconstrained(constraints) && !anyDetails;
      pool = plain
        ? nodes
        : nodes.filter(
            (node) =>
              nodeAdmits(node, constraints.pod) &&
              constraints.policies.every((terms) =>
                nodeAdmits(node, {
                  nodeAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms },
                  },
                }),
              ),
          );
      if (!plain) reads.nodeDetails = true;
      eligible.set(signature, pool);
    }
    // A node without the key is in no domain: anti-affinity on that key never refuses it, so
    // it takes any number of pods.
    n = pool.some((node) => labelOf(node.labels, key) === undefined)
      ? Infinity
      : new Set(pool.map((node) => labelOf(node.labels, key))).size;
    counts.set(countKey, n);
    reads.domainKeys.add(key);
    return n;
  };
}

function ownerOf(w: WorkloadRef): { namespace: string; labels: Labels } {
  return { namespace: w.namespace, labels: w.templateLabels };
}

function spreadProblems(
  t: FeasibilityTarget,
  domainsOf: (key: string, constraints: NodeConstraints) => number,
  namespaceLabels: (ns: string) => Labels,
  report: (ref: PolicyRef, message: string) => void,
): void {
  const { workload } = t;
  const constraints: NodeConstraints = {
    pod: t.constraints ?? {},
    policies: t.policies.flatMap((p) => {
      const terms =
        p.mode === 'Enforce'
          ? p.affinity.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
              ?.nodeSelectorTerms
          : undefined;
      return terms === undefined || terms.length === 0 ? [] : [terms];
    }),
  };
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
      const domains = domainsOf(term.topologyKey, constraints);
      if (t.replicas > domains) {
        const where = unconstrained(constraints)
          ? 'node domain(s) carry that label'
          : 'node domain(s) carry that label among the nodes its pods may use (nodeSelector, node affinity, taints, cordon)';
        report(
          policy.ref,
          `${describe(workload)} wants ${t.replicas} replicas, but required anti-affinity allows one per ${term.topologyKey} and only ${domains} ${where}`,
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
  reads: FeasibilityReads,
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
  const runningMatch = (term: ResolvedTerm): boolean => {
    reads.lookedUp([term]);
    return !index.podsSelectedBy(term).next().done;
  };
  // The scheduler counts only pods that match every required podAffinity term of the
  // incoming pod (podMatchesAllAffinityTerms): one pod must meet them all, not one per term.
  const runningMatchesAll = (reqs: readonly Requirement[]): boolean => {
    const [first, ...rest] = reqs;
    if (first === undefined) return true;
    reads.lookedUp(reqs.map((r) => r.term));
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
