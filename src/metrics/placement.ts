import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { RULES, type Rule } from '../api/rules.ts';

/**
 * The operator's own metrics. Labels are bounded: a policy, a rule, a state or an outcome,
 * never a pod or workload name. Setters take typed label values so that stays true.
 */

/** `PlacementPolicy/NS/NAME`, `ClusterPlacementPolicy/NAME`, or `pod` for a pod's own terms. */
export type PolicyLabel =
  'pod' | `PlacementPolicy/${string}/${string}` | `ClusterPlacementPolicy/${string}`;

/** A namespaced policy, `PlacementPolicy/NS/NAME`. */
export type NamespacedPolicyLabel = `PlacementPolicy/${string}/${string}`;

export const WORKLOAD_STATES = ['matched', 'enforced', 'pending', 'exempted'] as const;
export type WorkloadState = (typeof WORKLOAD_STATES)[number];

/** How a workload write ended: the kinds of the controller's `WriteResult`. */
export const WRITE_OUTCOMES = ['written', 'conflict', 'gone', 'failed'] as const;
export type WriteOutcome = (typeof WRITE_OUTCOMES)[number];

/** How an eviction ended; `blocked` is the Eviction API's 429 (a PodDisruptionBudget). */
export const EVICTION_OUTCOMES = ['evicted', 'blocked', 'gone', 'failed'] as const;
export type EvictionResultLabel = (typeof EVICTION_OUTCOMES)[number];

export interface PlacementMetrics {
  /**
   * `placement_policy_workloads{policy,state}`: the policy's matched / enforced / pending
   * counts, and the workloads PlacementExceptions exempt from it.
   */
  setPolicyWorkloads(policy: PolicyLabel, counts: Readonly<Record<WorkloadState, number>>): void;
  /** `placement_violations{policy,rule}`: violating pods per rule; rules left out are set to 0. */
  setViolations(policy: PolicyLabel, counts: Readonly<Partial<Record<Rule, number>>>): void;
  /**
   * `placement_cross_namespace_violations{policy,rule}`: pods outside a namespaced policy's
   * namespace that break its terms (by symmetry, say). Shown nowhere else but the log: never
   * in the policy's status, never as an Event, never evicted. Rules left out are set to 0.
   */
  setCrossNamespaceViolations(
    policy: NamespacedPolicyLabel,
    counts: Readonly<Partial<Record<Rule, number>>>,
  ): void;
  /** Drops every series of a policy that no longer exists. */
  forgetPolicy(policy: PolicyLabel): void;
  /** A full audit pass: its duration, and on success the time it finished. */
  auditFinished(seconds: number, succeededAt: Date | undefined): void;
  workloadWritten(result: WriteOutcome): void;
  workloadReverted(result: WriteOutcome): void;
  evicted(result: EvictionResultLabel): void;
  /** Workloads rolling because of the operator, and how many may. */
  setRolloutBudget(inUse: number, limit: number): void;
  /** Workloads waiting for a batch of policy changes to end (the settle window). */
  setSettling(count: number): void;
  /** `placement_rollouts_held_back`: template writes not made because their rollout could not finish. */
  setRolloutsHeldBack(count: number): void;
  /** `placement_injection_mode{mode}`: 1 for the mode the operator runs in, 0 for the other. */
  setInjectionMode(mode: InjectionMode): void;
}

/** Where workloads get the policies' terms: at admission (and the reconciler), or the reconciler only. */
export const INJECTION_MODES = ['admission', 'reconciler'] as const;
export type InjectionMode = (typeof INJECTION_MODES)[number];

// Audits of 150,000 pods are targeted well under a second; the tail covers slow API lists.
const AUDIT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Registers the placement_* metrics on `registry`, every outcome counter at 0. */
export function createPlacementMetrics(registry: Registry): PlacementMetrics {
  const registers = [registry];
  const gauge = <L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ) => new Gauge<L>({ name, help, labelNames, registers });
  const BY_RULE = ['policy', 'rule'] as const;
  const policyWorkloads = gauge(
    'placement_policy_workloads',
    'Workloads a policy targets, by state: matched, enforced (template carries the rules), pending; and exempted (selected, but exempted by a PlacementException)',
    ['policy', 'state'] as const,
  );
  const violations = gauge(
    'placement_violations',
    'Running pods that break a required placement rule (pod affinity, node affinity, nodeSelector, topology spread), by policy (or pod for pods own rules) and rule',
    BY_RULE,
  );
  const crossNamespace = gauge(
    'placement_cross_namespace_violations',
    'Pods outside a namespaced policy namespace that break its required terms (not shown to its namespace, never evicted), by policy and rule',
    BY_RULE,
  );
  const auditDuration = new Histogram({
    name: 'placement_audit_duration_seconds',
    help: 'Duration of a full audit pass',
    buckets: AUDIT_BUCKETS,
    registers,
  });
  const auditLastSuccess = gauge(
    'placement_audit_last_success_timestamp_seconds',
    'Unix time at which the last audit pass succeeded',
  );
  const outcomeCounter = (name: string, help: string, outcomes: readonly string[]) => {
    const counter = new Counter({ name, help, labelNames: ['result'] as const, registers });
    for (const result of outcomes) counter.inc({ result }, 0);
    return counter;
  };
  const writes = outcomeCounter(
    'placement_workload_writes_total',
    'Writes of policy terms into workload pod templates, by result',
    WRITE_OUTCOMES,
  );
  const reverts = outcomeCounter(
    'placement_workload_reverts_total',
    'Writes that took injected terms out of workload pod templates, by result',
    WRITE_OUTCOMES,
  );
  const evictions = outcomeCounter(
    'placement_evictions_total',
    'Evictions of violating pods requested by remediation, by result',
    EVICTION_OUTCOMES,
  );
  const budgetInUse = gauge(
    'placement_rollout_budget_in_use',
    'Workloads currently rolling out because the operator changed their template',
  );
  const budgetLimit = gauge(
    'placement_rollout_budget_limit',
    'Workloads that may roll out at once because of the operator',
  );
  const settling = gauge(
    'placement_workloads_settling',
    'Workloads waiting for a batch of policy changes to end before they are reconciled',
  );

  const heldBack = gauge(
    'placement_rollouts_held_back',
    'Workloads whose template write is held back because the rollout it would start could not finish',
  );

  const injectionMode = gauge(
    'placement_injection_mode',
    'Where workloads get the policies terms: admission (MutatingAdmissionPolicy, plus the reconciler for existing workloads) or reconciler (only)',
    ['mode'] as const,
  );
  for (const m of INJECTION_MODES) injectionMode.set({ mode: m }, 0);
  return {
    setPolicyWorkloads(policy, counts) {
      for (const state of WORKLOAD_STATES) policyWorkloads.set({ policy, state }, counts[state]);
    },
    setViolations(policy, counts) {
      for (const rule of RULES) violations.set({ policy, rule }, counts[rule] ?? 0);
    },
    setCrossNamespaceViolations(policy, counts) {
      for (const rule of RULES) crossNamespace.set({ policy, rule }, counts[rule] ?? 0);
    },
    forgetPolicy(policy) {
      for (const state of WORKLOAD_STATES) policyWorkloads.remove({ policy, state });
      for (const rule of RULES) {
        violations.remove({ policy, rule });
        crossNamespace.remove({ policy, rule });
      }
    },
    auditFinished(seconds, succeededAt) {
      auditDuration.observe(seconds);
      if (succeededAt !== undefined) auditLastSuccess.set(succeededAt.getTime() / 1000);
    },
    workloadWritten(result) {
      writes.inc({ result });
    },
    workloadReverted(result) {
      reverts.inc({ result });
    },
    evicted(result) {
      evictions.inc({ result });
    },
    setRolloutBudget(inUse, limit) {
      budgetInUse.set(inUse);
      budgetLimit.set(limit);
    },
    setSettling(count) {
      settling.set(count);
    },
    setRolloutsHeldBack(count) {
      heldBack.set(count);
    },
    setInjectionMode(mode) {
      for (const m of INJECTION_MODES) injectionMode.set({ mode: m }, m === mode ? 1 : 0);
    },
  };
}
