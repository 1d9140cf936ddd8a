/**
 * The audit of a whole cluster snapshot: compile the policies and exceptions, build the
 * index of placed pods (each pod's placement from its own terms and the policies that reach its
 * workload), judge every pod, and add the node and spread findings, in one report.
 *
 * Long because those steps are one pass whose intermediate results (compiled policies, the
 * workload lookup, the index) are handed from one to the next; the judges themselves are
 * verdict.ts and judge-node-spread.ts.
 */
import type { Labels, Namespace, Node, Pod } from '../api/core.ts';
import type { PlacementException } from '../api/exception.ts';
import type { PlacementPolicy, PolicyRef } from '../api/policy.ts';
import { FieldError, InvalidObjectError } from './errors.ts';
import { compileException, type CompiledException } from './exception.ts';
import {
  attachExemptions,
  exemptionsOf,
  judgeException,
  type Exemption,
  type NamedPolicy,
  type RefusalReason,
} from './exemption.ts';
import { RULES, type Rule } from '../api/rules.ts';
import type { PodPlacement, PreferredScore, Violation } from './placement.ts';
import { PlacementCache } from './placement-cache.ts';
import { isPlaced, placedWith, placementTerms, podKey } from './pod-placement.ts';
import { hasRequiredTerms, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { compilePolicy } from './policy-compile.ts';
import { comparePolicies, policyMayTarget, policyReach } from './policy-reach.ts';
import {
  hasNodeOrSpreadRules,
  judgeNodeAndSpread,
  type NodeSpreadAudit,
  type PodPolicies,
} from './judge-node-spread.ts';
import { TopologyIndex, type IndexedPod } from './topology-index.ts';
import { judgePodInto } from './verdict.ts';
import { runAll, UNITS_PER_STEP, type Steps } from '../util/steps.ts';
import {
  WorkloadLookup,
  workloadOfPod,
  workloadResolver,
  type WorkloadFinder,
  type WorkloadObject,
  type WorkloadResolution,
} from './workload.ts';

/** Everything an audit reads: one consistent picture of the cluster. */
export interface ClusterSnapshot {
  readonly nodes: readonly Node[];
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly PlacementPolicy[];
  /** Deployments, ReplicaSets, StatefulSets, ...: optional, they make ownership exact. */
  readonly workloads: readonly WorkloadObject[];
  /** PlacementExceptions: optional; accepted ones exempt workloads from a policy. */
  readonly exceptions?: readonly PlacementException[];
}

export interface AuditReport {
  readonly violations: readonly Violation[];
  /** Preferred-term scores of the pods that have preferred terms, by pod key. */
  readonly preferred: ReadonlyMap<string, PreferredScore>;
  readonly summary: { readonly pods: number; readonly nodes: number; readonly violations: number };
}

/** What became of one PlacementException of the snapshot. */
export interface ExceptionReport {
  /** `PlacementException/NS/NAME`. */
  readonly exception: string;
  readonly policy: PolicyRef;
  readonly accepted: boolean;
  /** Why it has no effect, when it has none. */
  readonly reason?: RefusalReason;
  readonly message: string;
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
      /** Workloads exempted from a policy by accepted exceptions (their pods are not judged by it). */
      readonly exemptions: readonly Exemption[];
      readonly exceptions: readonly ExceptionReport[];
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

/**
 * Compiles the policies that take part in audits, highest priority first, with the
 * exceptions that name them attached, or reports every bad policy and exception.
 */
export function compileAuditPolicies(
  policies: readonly PlacementPolicy[],
  exceptions: readonly PlacementException[] = [],
): {
  ok: CompiledPolicy[];
  errors: InvalidObjectError[];
  /** Every valid policy by reference, audited or not. */
  all: Map<string, CompiledPolicy>;
  exceptions: CompiledException[];
} {
  const ok: CompiledPolicy[] = [];
  const errors: InvalidObjectError[] = [];
  const all = new Map<string, CompiledPolicy>();
  const compiledExceptions: CompiledException[] = [];
  for (const e of exceptions) {
    const c = compileException(e);
    if (c.kind === 'invalid') errors.push(...c.errors);
    else compiledExceptions.push(c.exception);
  }
  for (const p of policies) {
    const c = compilePolicy(p);
    if (c.kind === 'invalid') errors.push(...c.errors);
    else {
      all.set(c.policy.ref, c.policy);
      if (c.policy.auditEnabled) ok.push(c.policy);
    }
  }
  return {
    ok: attachExemptions(ok.sort(comparePolicies), compiledExceptions),
    errors,
    all,
    exceptions: compiledExceptions,
  };
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
  return placementWith(pod, workload, reachOf(policies, workload, index), cache);
}

/** The policies that target a workload, and those that an accepted exception exempts it from. */
type Reached = PodPolicies;

/** The policies that target a workload (priority order), and those it is exempt from. */
export const reachOf = (
  policies: readonly CompiledPolicy[],
  workload: WorkloadRef,
  index: TopologyIndex,
): Reached => {
  const nsLabels = index.namespaceLabels(workload.namespace);
  const targeting: CompiledPolicy[] = [];
  const exempt: CompiledPolicy['ref'][] = [];
  for (const p of policies) {
    const reach = policyReach(p, workload, nsLabels);
    if (reach.kind === 'targeted') targeting.push(p);
    else if (reach.kind === 'exempted') exempt.push(p.ref);
  }
  return { targeting, exempt };
};

function placementWith(
  pod: Pod,
  workload: WorkloadRef,
  { targeting, exempt }: Reached,
  cache: PlacementCache | undefined,
): PodPlacement {
  try {
    const resolve = () => placementTerms(pod, workload, targeting);
    return placedWith(
      pod,
      cache === undefined ? resolve() : cache.terms(pod, workload, targeting, resolve),
      exempt,
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
  return runAll(buildIndexSteps(snapshot, policies, lookup));
}

/** buildIndex, yielding every UNITS_PER_STEP pods. */
export function* buildIndexSteps(
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  lookup: WorkloadFinder = new WorkloadLookup(snapshot.workloads),
): Steps<TopologyIndex> {
  return (yield* build(snapshot, policies, workloadResolver(lookup), 'guess')).index;
}

function* build(
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  resolveWorkload: (pod: Pod) => WorkloadResolution,
  workloads: 'guess' | 'exact',
): Steps<{ index: TopologyIndex; unresolved: UnresolvedPod[]; judgedByPolicies: number }> {
  const index = new TopologyIndex();
  for (const n of snapshot.nodes) index.setNode(n.metadata.name, n.metadata.labels ?? {});
  for (const ns of snapshot.namespaces)
    index.setNamespace(ns.metadata.name, ns.metadata.labels ?? {});
  const breakable = policies.filter(hasRequiredTerms);
  const unresolved: UnresolvedPod[] = [];
  let judgedByPolicies = 0;
  // Nothing a resolution reads changes during the build: one cache serves every pod.
  const cache = new PlacementCache();
  let placed = 0;
  for (const pod of snapshot.pods) {
    if (++placed % UNITS_PER_STEP === 0) yield;
    if (!isPlaced(pod)) continue;
    const resolution = resolveWorkload(pod);
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
      index.upsertPod(
        placementWith(pod, resolution.workload, { targeting: [], exempt: [] }, cache),
      );
      continue;
    }
    const reached = reachOf(policies, resolution.workload, index);
    if (reached.targeting.some(hasRequiredTerms)) judgedByPolicies++;
    index.upsertPod(placementWith(pod, resolution.workload, reached, cache));
  }
  return { index, unresolved, judgedByPolicies };
}

/** Judges every placed pod of the index. */
export function auditIndex(index: TopologyIndex): AuditReport {
  // A loop of its own rather than runAll(auditIndexSteps(index)): resuming the generator
  // every UNITS_PER_STEP pods costs the whole-cluster pass measurably.
  const violations: Violation[] = [];
  const preferred = new Map<string, PreferredScore>();
  let pods = 0;
  for (const entry of index.allPods()) pods += auditEntry(index, entry, violations, preferred);
  return auditReport(index, violations, preferred, pods);
}

/** auditIndex, yielding every UNITS_PER_STEP pods. */
export function* auditIndexSteps(index: TopologyIndex): Steps<AuditReport> {
  const violations: Violation[] = [];
  const preferred = new Map<string, PreferredScore>();
  let pods = 0;
  // The per-pod work in a function of its own: it stays optimized from call to call, where a
  // loop body inlined here would be compiled again (on-stack replacement) on every call.
  let seen = 0;
  for (const entry of index.allPods()) {
    pods += auditEntry(index, entry, violations, preferred);
    if (++seen % UNITS_PER_STEP === 0) yield;
  }
  return auditReport(index, violations, preferred, pods);
}

function auditReport(
  index: TopologyIndex,
  violations: Violation[],
  preferred: Map<string, PreferredScore>,
  pods: number,
): AuditReport {
  violations.sort(compareViolations);
  return {
    violations,
    preferred,
    summary: { pods, nodes: index.size.nodes, violations: violations.length },
  };
}

/** Judges one pod of the index into `violations` and `preferred`; 1 when it was judged. */
function auditEntry(
  index: TopologyIndex,
  entry: IndexedPod,
  violations: Violation[],
  preferred: Map<string, PreferredScore>,
): number {
  if (entry.pod.terminating === true) return 0;
  const score = judgePodInto(index, entry, violations);
  if (score.totalWeight > 0) preferred.set(entry.pod.key, score);
  return 1;
}

/**
 * Audits a snapshot: every placed pod against its own terms and the policies that target it.
 * See SnapshotAuditOptions for pods whose workload the snapshot does not hold.
 */
export function auditSnapshot(
  snapshot: ClusterSnapshot,
  options: SnapshotAuditOptions = {},
): AuditResult {
  const policies = compileAuditPolicies(snapshot.policies, snapshot.exceptions);
  if (policies.errors.length > 0) return { kind: 'invalid', errors: policies.errors };
  try {
    const resolve = workloadResolver(new WorkloadLookup(snapshot.workloads));
    const workloadOf = (pod: Pod): WorkloadRef => resolve(pod).workload;
    const built = runAll(build(snapshot, policies.ok, resolve, options.workloads ?? 'guess'));
    const index = built.index;
    const nsLabels = (ns: string): Labels => index.namespaceLabels(ns);
    const exemptions = exemptionsOf(
      policies.ok,
      () => snapshot.pods.filter(isPlaced).map(workloadOf),
      nsLabels,
    );
    const exceptions = policies.exceptions
      .map((e): ExceptionReport => {
        const policy = policies.all.get(e.policy);
        const named: NamedPolicy =
          policy !== undefined ? { kind: 'valid', policy } : { kind: 'missing' };
        const verdict = judgeException(e, named, nsLabels(e.namespace));
        return {
          exception: e.ref,
          policy: e.policy,
          accepted: verdict.kind === 'accepted',
          ...(verdict.kind === 'refused' ? { reason: verdict.reason } : {}),
          message: verdict.message,
        };
      })
      .sort((a, b) => (a.exception < b.exception ? -1 : a.exception > b.exception ? 1 : 0));
    const unresolved = new Set(built.unresolved.map((u) => u.pod));
    const reachNodePolicies = nodePolicyReach(policies.ok, workloadOf, index);
    const nodeSpread = judgeNodeAndSpread({
      nodes: snapshot.nodes,
      pods: snapshot.pods,
      policiesOf: (pod) => (unresolved.has(podKey(pod)) ? NO_POLICIES : reachNodePolicies(pod)),
    });
    if (nodeSpread.problems.length > 0) return { kind: 'invalid', errors: nodeSpread.problems };
    return {
      kind: 'ok',
      report: withNodeAndSpread(auditIndex(index), nodeSpread),
      index,
      unresolved: built.unresolved,
      judgedByPolicies: built.judgedByPolicies,
      exemptions,
      exceptions,
    };
  } catch (err) {
    if (err instanceof InvalidObjectError) return { kind: 'invalid', errors: [err] };
    throw err;
  }
}

const NO_POLICIES: PodPolicies = Object.freeze({ targeting: [], exempt: [] });

/**
 * For judgeNodeAndSpread: the policies with node affinity or spread constraints that reach a
 * pod, and its workload (nothing to look up, for any pod, when no policy has either).
 */
export function nodePolicyReach(
  policies: readonly CompiledPolicy[],
  workloadOf: (pod: Pod) => WorkloadRef,
  index: TopologyIndex,
): (pod: Pod) => PodPolicies {
  const judged = policies.filter(hasNodeOrSpreadRules);
  if (judged.length === 0) return () => NO_POLICIES;
  return (pod) => {
    const workload = workloadOf(pod);
    return { ...reachOf(judged, workload, index), workload };
  };
}

/** An audit report with the node and spread rules' findings (judge-node-spread.ts) added. */
export function withNodeAndSpread(report: AuditReport, found: NodeSpreadAudit): AuditReport {
  if (found.violations.length === 0 && found.preferred.size === 0) return report;
  const violations = [...report.violations, ...found.violations].sort(compareViolations);
  const preferred = new Map(report.preferred);
  for (const [key, s] of found.preferred) preferred.set(key, withScore(preferred.get(key), s));
  return { violations, preferred, summary: { ...report.summary, violations: violations.length } };
}

/** A pod's inter-pod score (if any) with its node and spread score added. */
export function withScore(had: PreferredScore | undefined, s: PreferredScore): PreferredScore {
  return had === undefined
    ? s
    : {
        score: had.score + s.score,
        satisfiedWeight: had.satisfiedWeight + s.satisfiedWeight,
        totalWeight: had.totalWeight + s.totalWeight,
        ...(s.spread === undefined ? {} : { spread: s.spread }),
      };
}

const RULE_ORDER = Object.fromEntries(RULES.map((r, i) => [r, i])) as Record<Rule, number>;

export function compareViolations(a: Violation, b: Violation): number {
  if (a.pod !== b.pod) return a.pod < b.pod ? -1 : 1;
  if (a.rule !== b.rule) return RULE_ORDER[a.rule] - RULE_ORDER[b.rule];
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return a.term - b.term || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}
