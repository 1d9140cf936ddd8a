import type { Namespace, Node, Pod } from '../api/core.ts';
import type { PlacementPolicy } from '../api/policy.ts';
import { FieldError, InvalidObjectError } from './errors.ts';
import type { PodPlacement, PodVerdict, PreferredScore, Violation } from './placement.ts';
import { PlacementCache } from './placement-cache.ts';
import { isPlaced, placedWith, placementTerms, podKey } from './pod-placement.ts';
import {
  comparePolicies,
  compilePolicy,
  hasRequiredTerms,
  policyMayTarget,
  policyTargets,
  type CompiledPolicy,
  type WorkloadRef,
} from './policy.ts';
import { TopologyIndex } from './topology-index.ts';
import { judgePod } from './verdict.ts';
import {
  resolveWorkload,
  WorkloadLookup,
  workloadOfPod,
  type WorkloadFinder,
  type WorkloadObject,
} from './workload.ts';

/** Everything an audit reads: one consistent picture of the cluster. */
export interface ClusterSnapshot {
  readonly nodes: readonly Node[];
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly PlacementPolicy[];
  /** Deployments, ReplicaSets, StatefulSets, ...: optional, they make ownership exact. */
  readonly workloads: readonly WorkloadObject[];
}

export interface AuditReport {
  readonly violations: readonly Violation[];
  /** Preferred-term scores of the pods that have preferred terms, by pod key. */
  readonly preferred: ReadonlyMap<string, PreferredScore>;
  readonly summary: { readonly pods: number; readonly nodes: number; readonly violations: number };
}

export type AuditResult =
  | {
      readonly kind: 'ok';
      readonly report: AuditReport;
      readonly index: TopologyIndex;
      /** With `workloads: 'exact'`: the pods judged without their policies, by pod key. */
      readonly unresolved: readonly UnresolvedPod[];
      /** Placed pods judged against at least one policy with required terms. */
      readonly judgedByPolicies: number;
    }
  | { readonly kind: 'invalid'; readonly errors: readonly InvalidObjectError[] };

/** How an audit of a snapshot treats a pod whose workload the snapshot does not hold. */
export interface SnapshotAuditOptions {
  /**
   * - `guess` (the default): the workload is guessed from the pod (see resolveWorkload),
   *   as the operator does for the few pods whose owner it does not know.
   * - `exact`: a pod whose workload is not known exactly, and that a policy with required
   *   terms could target, is judged by its own terms only (it still counts as a neighbour
   *   of other pods) and listed in `unresolved`. An answer is then never a guess: it may
   *   only leave such pods out, and says which.
   */
  readonly workloads?: 'guess' | 'exact';
}

/** A pod that `workloads: 'exact'` judged without its policies. */
export interface UnresolvedPod {
  readonly pod: string;
  /** The first owner not found, e.g. `ReplicaSet shop/web-5d8f7c6b9`. */
  readonly missing: string;
  /** The kinds of the objects that would settle it. */
  readonly needs: readonly string[];
}

/** Compiles the policies that take part in audits, highest priority first, or reports every bad one. */
export function compileAuditPolicies(policies: readonly PlacementPolicy[]): {
  ok: CompiledPolicy[];
  errors: InvalidObjectError[];
} {
  const ok: CompiledPolicy[] = [];
  const errors: InvalidObjectError[] = [];
  for (const p of policies) {
    const c = compilePolicy(p);
    if (c.kind === 'invalid') errors.push(...c.errors);
    else if (c.policy.auditEnabled) ok.push(c.policy);
  }
  return { ok: ok.sort(comparePolicies), errors };
}

/**
 * Builds the engine's view of a placed pod, with the policies that target its workload.
 * With a `cache`, pods that resolve alike share one resolution (see PlacementCache).
 */
export function placementOf(
  pod: Pod,
  policies: readonly CompiledPolicy[],
  lookup: WorkloadFinder,
  index: TopologyIndex,
  cache?: PlacementCache,
): PodPlacement {
  const workload = workloadOfPod(pod, lookup);
  return placementWith(pod, workload, targetingOf(policies, workload, index), cache);
}

const targetingOf = (
  policies: readonly CompiledPolicy[],
  workload: WorkloadRef,
  index: TopologyIndex,
): CompiledPolicy[] => {
  const nsLabels = index.namespaceLabels(workload.namespace);
  return policies.filter((p) => policyTargets(p, workload, nsLabels));
};

function placementWith(
  pod: Pod,
  workload: WorkloadRef,
  targeting: readonly CompiledPolicy[],
  cache: PlacementCache | undefined,
): PodPlacement {
  try {
    const resolve = () => placementTerms(pod, workload, targeting);
    return placedWith(
      pod,
      cache === undefined ? resolve() : cache.terms(pod, workload, targeting, resolve),
    );
  } catch (err) {
    if (err instanceof FieldError) throw err.forObject(`Pod ${podKey(pod)}`);
    throw err;
  }
}

/** Builds the topology index of a snapshot from scratch. */
export function buildIndex(
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  lookup: WorkloadFinder = new WorkloadLookup(snapshot.workloads),
): TopologyIndex {
  return build(snapshot, policies, lookup, 'guess').index;
}

function build(
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  lookup: WorkloadFinder,
  workloads: 'guess' | 'exact',
): { index: TopologyIndex; unresolved: UnresolvedPod[]; judgedByPolicies: number } {
  const index = new TopologyIndex();
  for (const n of snapshot.nodes) index.setNode(n.metadata.name, n.metadata.labels ?? {});
  for (const ns of snapshot.namespaces)
    index.setNamespace(ns.metadata.name, ns.metadata.labels ?? {});
  const breakable = policies.filter(hasRequiredTerms);
  const unresolved: UnresolvedPod[] = [];
  let judgedByPolicies = 0;
  // Nothing a resolution reads changes during the build: one cache serves every pod.
  const cache = new PlacementCache();
  for (const pod of snapshot.pods) {
    if (!isPlaced(pod)) continue;
    const resolution = resolveWorkload(pod, lookup);
    const ns = pod.metadata.namespace;
    if (
      workloads === 'exact' &&
      !resolution.exact &&
      breakable.some((p) => policyMayTarget(p, resolution.kinds, ns, index.namespaceLabels(ns)))
    ) {
      const { kind, name } = resolution.missing;
      unresolved.push({
        pod: podKey(pod),
        missing: `${kind} ${ns}/${name}`,
        needs: resolution.needs,
      });
      index.upsertPod(placementWith(pod, resolution.workload, [], cache));
      continue;
    }
    const targeting = targetingOf(policies, resolution.workload, index);
    if (targeting.some(hasRequiredTerms)) judgedByPolicies++;
    index.upsertPod(placementWith(pod, resolution.workload, targeting, cache));
  }
  return { index, unresolved, judgedByPolicies };
}

/** Judges every placed pod of the index. */
export function auditIndex(index: TopologyIndex): AuditReport {
  const violations: Violation[] = [];
  const preferred = new Map<string, PreferredScore>();
  let pods = 0;
  for (const entry of index.allPods()) {
    if (entry.pod.terminating === true) continue;
    pods++;
    const verdict: PodVerdict = judgePod(index, entry);
    if (verdict.kind === 'violated') violations.push(...verdict.violations);
    if (verdict.preferred.totalWeight > 0) preferred.set(entry.pod.key, verdict.preferred);
  }
  violations.sort(compareViolations);
  return {
    violations,
    preferred,
    summary: { pods, nodes: index.size.nodes, violations: violations.length },
  };
}

/**
 * Audits a snapshot: every placed pod against its own terms and the policies that target it.
 * See SnapshotAuditOptions for pods whose workload the snapshot does not hold.
 */
export function auditSnapshot(
  snapshot: ClusterSnapshot,
  options: SnapshotAuditOptions = {},
): AuditResult {
  const policies = compileAuditPolicies(snapshot.policies);
  if (policies.errors.length > 0) return { kind: 'invalid', errors: policies.errors };
  try {
    const built = build(
      snapshot,
      policies.ok,
      new WorkloadLookup(snapshot.workloads),
      options.workloads ?? 'guess',
    );
    return {
      kind: 'ok',
      report: auditIndex(built.index),
      index: built.index,
      unresolved: built.unresolved,
      judgedByPolicies: built.judgedByPolicies,
    };
  } catch (err) {
    if (err instanceof InvalidObjectError) return { kind: 'invalid', errors: [err] };
    throw err;
  }
}

const RULE_ORDER = { podAffinity: 0, podAntiAffinity: 1, symmetricAntiAffinity: 2 } as const;

export function compareViolations(a: Violation, b: Violation): number {
  if (a.pod !== b.pod) return a.pod < b.pod ? -1 : 1;
  if (a.rule !== b.rule) return RULE_ORDER[a.rule] - RULE_ORDER[b.rule];
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return a.term - b.term || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}
