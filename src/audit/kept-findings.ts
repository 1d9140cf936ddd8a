/**
 * A pass's findings kept until the next, pod by pod: each violation with its reach
 * (classify), which are new (newFindings), and the counts and samples each policy's status
 * and metrics show (FindingTally). A pass classifies again only the pods whose violations
 * changed and those whose reach may have (their namespace relabelled, a workload of it
 * changed), so telling and publishing cost what changed, not what is found.
 */
import type { Labels, Pod } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { podKey, type CompiledPolicy, type Violation, type WorkloadRef } from '../engine/index.ts';
import { compareText } from '../util/compare.ts';
import { SortedKeys } from '../util/sorted-keys.ts';
import {
  auditOnlyPolicies,
  auditOnlyTargets,
  ruleCounts,
  violationKey,
  type Finding,
  type FindingTally,
  type RuleCounts,
} from './findings.ts';

/** The findings of one source its status may show. */
interface SourceTally {
  count: number;
  readonly rules: Counts;
  /** Pod → how many of its findings are this source's; and those pods, in order. */
  readonly perPod: Map<string, number>;
  readonly pods: SortedKeys;
}

/** A pass's violations, by pod. */
export interface PodViolations {
  /** The pods that have violations, in report order. */
  readonly pods: readonly string[];
  readonly violationsOf: (pod: string) => readonly Violation[];
}

/** What to classify again (see KeptFindings.update). */
export interface Reclassify {
  /** Pods whose violations may differ from the last pass's; null: any pod. */
  readonly changed: Iterable<string> | null;
  /** Pods whose reach may differ though their violations do not (a pod object replaced). */
  readonly pods: Iterable<string>;
  /** Namespaces whose pods' reach may differ; 'all': every pod's (the policies changed). */
  readonly namespaces: Iterable<string> | 'all';
}

const NONE: readonly Finding[] = Object.freeze([]);

export class KeptFindings implements FindingTally {
  private readonly byPod = new Map<string, readonly Finding[]>();
  private readonly bySource = new Map<string, SourceTally>();
  private readonly platform = new Map<string, Counts>();
  private order: readonly string[] = [];

  /**
   * Takes a pass's violations; returns the findings new since the last pass (each violation
   * whose violationKey the pass before did not have), in report order.
   */
  update(now: PodViolations, redo: Reclassify, classify: (v: Violation) => Finding): Finding[] {
    this.order = now.pods;
    const fresh: Finding[] = [];
    if (redo.changed === null || redo.namespaces === 'all') {
      const listed = new Set(now.pods);
      for (const pod of [...this.byPod.keys()]) if (!listed.has(pod)) this.take(pod, NONE);
      for (const pod of now.pods) this.take(pod, now.violationsOf(pod).map(classify), fresh);
      return fresh;
    }
    const pods = new Set([...redo.changed, ...redo.pods]);
    const namespaces = new Set(redo.namespaces);
    if (namespaces.size > 0)
      for (const pod of this.byPod.keys())
        if (namespaces.has(pod.slice(0, pod.indexOf('/')))) pods.add(pod);
    for (const pod of [...pods].sort(compareText))
      this.take(pod, now.violationsOf(pod).map(classify), fresh);
    return fresh;
  }

  /** Every finding, in report order. */
  all(): Finding[] {
    const all: Finding[] = [];
    for (const pod of this.order) for (const f of this.byPod.get(pod) ?? NONE) all.push(f);
    return all;
  }

  own(
    source: string,
    n: number,
  ): { readonly count: number; readonly sample: readonly Violation[]; readonly rules: RuleCounts } {
    const t = this.bySource.get(source);
    const sample: Violation[] = [];
    for (const pod of t?.pods.list ?? []) {
      if (sample.length >= n) break;
      for (const f of this.byPod.get(pod) ?? NONE)
        if (f.violation.source === source && f.reach !== 'platform' && sample.length < n)
          sample.push(f.violation);
    }
    return { count: t?.count ?? 0, sample, rules: ruleCounts(t?.rules) };
  }

  elsewhere(source: string): RuleCounts {
    return ruleCounts(this.platform.get(source));
  }

  /** Sets a pod's findings; those whose key it did not have go to `fresh`. */
  private take(pod: string, findings: readonly Finding[], fresh?: Finding[]): void {
    const had = this.byPod.get(pod) ?? NONE;
    if (fresh !== undefined) {
      const before = new Set(had.map((f) => violationKey(f.violation)));
      for (const f of findings) if (!before.has(violationKey(f.violation))) fresh.push(f);
    }
    this.count(pod, had, -1);
    this.count(pod, findings, 1);
    if (findings.length === 0) this.byPod.delete(pod);
    else this.byPod.set(pod, findings);
  }

  /** Adds (sign 1) or takes out (-1) a pod's findings from the counts. */
  private count(pod: string, findings: readonly Finding[], sign: 1 | -1): void {
    for (const { violation: v, reach } of findings) {
      if (reach === 'platform') {
        let rules = this.platform.get(v.source);
        if (rules === undefined) this.platform.set(v.source, (rules = new Map<Rule, number>()));
        bump(rules, v.rule, sign);
        continue;
      }
      let t = this.bySource.get(v.source);
      if (t === undefined) {
        t = { count: 0, rules: new Map(), perPod: new Map(), pods: new SortedKeys() };
        this.bySource.set(v.source, t);
      }
      t.count += sign;
      bump(t.rules, v.rule, sign);
      const n = (t.perPod.get(pod) ?? 0) + sign;
      if (n === 0) {
        t.perPod.delete(pod);
        t.pods.delete(pod);
      } else {
        if (!t.perPod.has(pod)) t.pods.add(pod);
        t.perPod.set(pod, n);
      }
    }
  }
}

type Rule = Violation['rule'];
type Counts = Map<Rule, number>;

/** Counts one more or one less; a rule at 0 is left out, as counting from scratch does. */
function bump(rules: Counts, rule: Violation['rule'], sign: 1 | -1): void {
  const n = (rules.get(rule) ?? 0) + sign;
  if (n === 0) rules.delete(rule);
  else rules.set(rule, n);
}

/**
 * auditOnlyCounts kept between passes: each pod's part in the counts, so that a pass after
 * pod changes counts those pods again, not every pod. Policies, namespaces or workloads
 * changed: every pod is counted anew (a namespace relabelled may bring in pods that counted
 * for nothing).
 */
export class KeptAuditOnly {
  private readonly perPod = new Map<string, readonly PolicyRef[]>();
  private readonly counts = new Map<PolicyRef, number>();

  /**
   * What auditOnlyCounts gives now. `redo`: the pods changed since the last call, and the
   * namespaces whose pods' workloads or labels may have ('all': the policies changed);
   * undefined: not known, every pod is counted.
   */
  update(
    policies: readonly CompiledPolicy[],
    redo:
      | { readonly pods: Iterable<string>; readonly namespaces: Iterable<string> | 'all' }
      | undefined,
    pods: { readonly list: () => readonly Pod[]; readonly get: (key: string) => Pod | undefined },
    workloadOf: (pod: Pod) => WorkloadRef,
    namespaceLabels: (namespace: string) => Labels,
  ): ReadonlyMap<PolicyRef, number> {
    const relevant = auditOnlyPolicies(policies);
    const recount =
      redo === undefined || redo.namespaces === 'all' || new Set(redo.namespaces).size > 0;
    if (relevant.length === 0 || recount) {
      this.perPod.clear();
      this.counts.clear();
    }
    if (relevant.length === 0) return this.counts; // without listing every pod
    const count = (key: string, pod: Pod | undefined): void => {
      for (const ref of this.perPod.get(key) ?? []) this.add(ref, -1);
      const refs =
        pod === undefined ? [] : auditOnlyTargets(relevant, pod, workloadOf, namespaceLabels);
      for (const ref of refs) this.add(ref, 1);
      if (refs.length === 0) this.perPod.delete(key);
      else this.perPod.set(key, refs);
    };
    if (redo === undefined || recount) for (const pod of pods.list()) count(podKey(pod), pod);
    else for (const key of redo.pods) count(key, pods.get(key));
    return this.counts;
  }

  private add(ref: PolicyRef, n: 1 | -1): void {
    const now = (this.counts.get(ref) ?? 0) + n;
    if (now === 0) this.counts.delete(ref);
    else this.counts.set(ref, now);
  }
}
