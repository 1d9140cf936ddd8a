/**
 * What an audit pass tells, as pure functions of what it found: which violations are new
 * (one Event each), each policy's summary for its status, and the violation counts for the
 * metrics. The pass itself (continuous-audit.ts) does the telling.
 */
import type { Labels, Pod } from '../api/core.ts';
import type { PolicyAuditSummary, PolicyRef } from '../api/policy.ts';
import {
  findingReach,
  isJudged,
  policyTargets,
  type CompiledPolicy,
  type FindingReach,
  type Violation,
  type WorkloadRef,
} from '../engine/index.ts';
import type { EventTarget } from '../api/cluster.ts';
import { RULES } from '../api/rules.ts';
import { sameJson } from '../util/json.ts';

/** What a policy's status shows of the audit. */
export type PolicyAudit = PolicyAuditSummary;

/** A violation, and how far it may travel (see findingReach). */
export interface Finding {
  readonly violation: Violation;
  readonly reach: FindingReach;
}

/** What the operator logs, once, when a namespaced policy's term is broken by a pod of another namespace. */
export const CROSS_NAMESPACE_FINDING = 'namespaced policy term broken outside its namespace';

/** Violating pods listed in a policy's status, unless the options say otherwise. */
export const SAMPLE_SIZE = 10;

export const violationKey = (v: Violation): string =>
  `${v.pod}|${v.rule}|${v.source}|${String(v.term)}`;

/** Policies with `spec.audit.enabled: false` take no part in judging pods (as in the CLI). */
export const audited = (policies: readonly CompiledPolicy[]): CompiledPolicy[] =>
  policies.filter((p) => p.auditEnabled);

/**
 * How far each violation may travel: a policy's findings go through findingReach, the one
 * rule for that; a pod's own terms are shown on the pod and acted on by nobody.
 * `workloadOf` names the workload of a pod by its key.
 */
export function classify(
  policies: readonly CompiledPolicy[],
  violations: readonly Violation[],
  workloadOf: (pod: string) => WorkloadRef,
  namespaceLabels: (namespace: string) => Labels,
): Finding[] {
  return violations.map(classifier(policies, workloadOf, namespaceLabels));
}

/** classify, one violation at a time. */
export function classifier(
  policies: readonly CompiledPolicy[],
  workloadOf: (pod: string) => WorkloadRef,
  namespaceLabels: (namespace: string) => Labels,
): (v: Violation) => Finding {
  const byRef = new Map<string, CompiledPolicy>(policies.map((p) => [p.ref, p]));
  return (v) => {
    const policy = v.source === 'pod' ? undefined : byRef.get(v.source);
    if (policy === undefined) return { violation: v, reach: 'show' };
    const [namespace = ''] = v.pod.split('/');
    return {
      violation: v,
      reach: findingReach(policy, workloadOf(v.pod), namespaceLabels(namespace)),
    };
  };
}

/** What a pass found that the pass before did not, in the order found. */
export interface NewFindings {
  /** Every violation of this pass, by violationKey: the next pass's `before`. */
  readonly keys: Set<string>;
  /**
   * The new ones: each gets one Event on its pod, except those of reach 'platform' (a
   * namespaced policy's term broken outside its namespace), which go to the platform's log only.
   */
  readonly fresh: readonly Finding[];
}

export function newFindings(
  findings: readonly Finding[],
  before: ReadonlySet<string>,
): NewFindings {
  const keys = new Set<string>();
  const fresh: Finding[] = [];
  for (const f of findings) {
    const key = violationKey(f.violation);
    keys.add(key);
    // One Event per new violation, not one per audit; one that comes back after it cleared
    // is news again, however soon.
    if (!before.has(key)) fresh.push(f);
  }
  return { keys, fresh };
}

/** The Warning Event a new violation gets, on its pod. */
export function violationEvent(
  v: Violation,
  uid: string | undefined,
): { target: EventTarget; reason: string; message: string } {
  const [namespace = '', name = ''] = v.pod.split('/');
  return {
    target: {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace,
      name,
      ...(uid === undefined ? {} : { uid }),
    },
    reason: 'PlacementViolation',
    message: `${v.rule} (${v.source}): ${v.message}`,
  };
}

export type RuleCounts = Partial<Record<Violation['rule'], number>>;

/** What publish reads of a pass's findings, by source (a policy's ref, or 'pod'). */
export interface FindingTally {
  /**
   * The findings of `source` its status may show (reach other than 'platform'): how many,
   * the first `n` violations in report order, and how many per rule.
   */
  own(
    source: string,
    n: number,
  ): { readonly count: number; readonly sample: readonly Violation[]; readonly rules: RuleCounts };
  /** How many of its findings of reach 'platform' per rule. */
  elsewhere(source: string): RuleCounts;
}

/** The tally of a pass's findings (in report order), counted from scratch. */
export function tallyOf(findings: readonly Finding[]): FindingTally {
  const bySource = new Map<string, Violation[]>();
  const elsewhere = new Map<string, Violation[]>();
  for (const { violation: v, reach } of findings) {
    const into = reach === 'platform' ? elsewhere : bySource;
    const list = into.get(v.source) ?? [];
    list.push(v);
    into.set(v.source, list);
  }
  return {
    own: (source, n) => {
      const own = bySource.get(source) ?? [];
      return { count: own.length, sample: own.slice(0, n), rules: countRules(own) };
    },
    elsewhere: (source) => countRules(elsewhere.get(source) ?? []),
  };
}
type NamespacedRef = `PlacementPolicy/${string}/${string}`;

/** A pass's summaries and counts, ready to be shown. */
export interface Published {
  readonly summaries: Map<PolicyRef, PolicyAudit>;
  /** Policies whose summary differs from the one before: their status is refreshed. */
  readonly changed: PolicyRef[];
  /** placement_violations, per policy and for pods' own terms ('pod'). */
  readonly violations: readonly (readonly [PolicyRef | 'pod', RuleCounts])[];
  /** placement_cross_namespace_violations, per namespaced policy. */
  readonly crossNamespace: readonly (readonly [NamespacedRef, RuleCounts])[];
}

/**
 * Per-policy summaries and metrics, and the policies whose results changed. A policy's
 * status and placement_violations show what may be shown in its namespace; a namespaced
 * policy's findings elsewhere are counted in placement_cross_namespace_violations.
 */
export function publish(input: {
  readonly policies: readonly CompiledPolicy[];
  readonly findings: FindingTally;
  readonly unsatisfiable: ReadonlyMap<PolicyRef, string[]>;
  readonly auditOnly: ReadonlyMap<PolicyRef, number>;
  readonly before: ReadonlyMap<PolicyRef, PolicyAudit>;
  readonly time: string;
  readonly sampleSize: number;
}): Published {
  const summaries = new Map<PolicyRef, PolicyAudit>();
  const changed: PolicyRef[] = [];
  const violations: (readonly [PolicyRef | 'pod', RuleCounts])[] = [];
  const crossNamespace: (readonly [NamespacedRef, RuleCounts])[] = [];
  for (const p of input.policies) {
    const own = input.findings.own(p.ref, input.sampleSize);
    const problems = input.unsatisfiable.get(p.ref);
    const summary: PolicyAudit = {
      violations: own.count,
      violationSample: own.sample.map((v) => ({
        pod: v.pod,
        node: v.node,
        rule: v.rule,
        source: v.source,
        message: v.message,
      })),
      lastAuditTime: input.time,
      auditOnly: input.auditOnly.get(p.ref) ?? 0,
      ...(problems === undefined ? {} : { unsatisfiable: problems.slice(0, 3).join('; ') }),
    };
    const before = input.before.get(p.ref);
    if (before === undefined || !sameSummary(before, summary)) changed.push(p.ref);
    summaries.set(p.ref, summary);
    violations.push([p.ref, own.rules]);
    if (isNamespaced(p.ref)) crossNamespace.push([p.ref, input.findings.elsewhere(p.ref)]);
  }
  violations.push(['pod', input.findings.own('pod', 0).rules]);
  return { summaries, changed, violations, crossNamespace };
}

/** Pods of Jobs and bare Pods each policy targets: audited, never rewritten. */
export function auditOnlyCounts(
  policies: readonly CompiledPolicy[],
  pods: () => readonly Pod[],
  workloadOf: (pod: Pod) => WorkloadRef,
  namespaceLabels: (namespace: string) => Labels,
): Map<PolicyRef, number> {
  const counts = new Map<PolicyRef, number>();
  const relevant = auditOnlyPolicies(policies);
  if (relevant.length === 0) return counts; // without listing every pod
  for (const pod of pods())
    for (const ref of auditOnlyTargets(relevant, pod, workloadOf, namespaceLabels))
      counts.set(ref, (counts.get(ref) ?? 0) + 1);
  return counts;
}

/** The policies that may target pods of Jobs or bare Pods. */
export const auditOnlyPolicies = (policies: readonly CompiledPolicy[]): CompiledPolicy[] =>
  policies.filter((p) => p.kinds.has('Job') || p.kinds.has('Pod'));

/** Which of `relevant` count a pod as audit-only (a judged pod of a Job or a bare Pod). */
export function auditOnlyTargets(
  relevant: readonly CompiledPolicy[],
  pod: Pod,
  workloadOf: (pod: Pod) => WorkloadRef,
  namespaceLabels: (namespace: string) => Labels,
): PolicyRef[] {
  if (!isJudged(pod)) return [];
  const w = workloadOf(pod);
  if (w.kind !== 'Job' && w.kind !== 'Pod') return [];
  return relevant
    .filter((p) => policyTargets(p, w, namespaceLabels(w.namespace)))
    .map((p) => p.ref);
}

const isNamespaced = (ref: PolicyRef): ref is NamespacedRef => ref.startsWith('PlacementPolicy/');

function sameSummary(a: PolicyAudit, b: PolicyAudit): boolean {
  return (
    a.violations === b.violations &&
    a.auditOnly === b.auditOnly &&
    a.unsatisfiable === b.unsatisfiable &&
    sameJson(a.violationSample, b.violationSample)
  );
}

function countRules(violations: readonly Violation[]): RuleCounts {
  const counts = new Map<Violation['rule'], number>();
  for (const v of violations) counts.set(v.rule, (counts.get(v.rule) ?? 0) + 1);
  return ruleCounts(counts);
}

/** Counts per rule as an object, its rules in RULES order (as the report orders them). */
export function ruleCounts(counts: ReadonlyMap<Violation['rule'], number> | undefined): RuleCounts {
  const out: RuleCounts = {};
  for (const rule of RULES) {
    const n = counts?.get(rule);
    if (n !== undefined) out[rule] = n;
  }
  return out;
}
