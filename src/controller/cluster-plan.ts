/**
 * What applying policies would do to a cluster, decided as the operator decides it and
 * written nowhere: which workloads it would rewrite (planWorkload, the reconciler's own
 * decision), which of those rollouts would start or be held back (checkRollout, the
 * rollout simulation), which policies would be Unsatisfiable (the continuous audit's
 * feasibility), and which running pods would break the new rules (the audit engine).
 */
import type { Affinity, Labels, TopologySpreadConstraint } from '../api/core.ts';
import { policyRef, type PlacementPolicy, type PolicyRef } from '../api/policy.ts';
import type { PlacementException } from '../api/exception.ts';
import {
  auditSnapshot,
  clusterOf,
  describeContradiction,
  feasibility,
  feasibilityTargetOf,
  injectionFor,
  managedByDeployment,
  policyTargets,
  type ClusterSnapshot,
  type FeasibilityTarget,
  type Injection,
  type InvalidObjectError,
  type JsonValue,
  type Violation,
  workloadRef,
} from '../engine/index.ts';
import { nodeFacts } from '../engine/node-eligibility.ts';
import { PolicyCatalog } from './policy-catalog.ts';
import { planWorkload } from './plan.ts';
import { checkRolloutOn } from './rollout-check.ts';
import { workloadKey, type Workload } from '../api/cluster.ts';
import { jsonEqual } from '../util/json.ts';

/** What would happen to one workload. */
export type WorkloadAction =
  /** Its template changes: a rollout starts. */
  | 'rollout'
  /** Its template would change, but the rollout could not finish: nothing is written. */
  | 'heldBack'
  /** Only the `placement.dev/applied` record changes: no pod restarts. */
  | 'record'
  /** Its policies' required rules contradict each other (or its own): nothing is written. */
  | 'contradiction'
  /** The operator cannot tell safely what to do (an unreadable record or policy). */
  | 'blocked';

export interface PlannedWorkload {
  /** `Kind/namespace/name`. */
  readonly workload: string;
  readonly action: WorkloadAction;
  /** The Enforce policies whose terms it would carry, highest priority first. */
  readonly policies: readonly PolicyRef[];
  /** Policies whose terms would be taken out. */
  readonly reverted: readonly string[];
  /** The terms the policies inject (absent when nothing is injected). */
  readonly injected?: Injection['slots'];
  /** The whole template affinity after the write (`rollout`, `heldBack`, `record`). */
  readonly affinity?: Affinity | null;
  /** The topologySpreadConstraints the policies inject (`spreadAcross` with TopologySpread). */
  readonly injectedSpread?: readonly JsonValue[];
  /** The template's whole topologySpreadConstraints after the write, when it has or gets any. */
  readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[] | null;
  /** Why it is held back, contradicted or blocked. */
  readonly message?: string;
}

export interface Unsatisfiable {
  readonly policy: PolicyRef;
  /** `Kind ns/name: at most N of M pods can run: ...` or another reason the rules cannot hold. */
  readonly message: string;
}

export interface ClusterPlan {
  readonly workloads: readonly PlannedWorkload[];
  readonly unsatisfiable: readonly Unsatisfiable[];
  /** Running pods that break the rules of the applied policies. */
  readonly violations: readonly Violation[];
  readonly summary: {
    readonly workloads: number;
    readonly rollouts: number;
    readonly heldBack: number;
    readonly unsatisfiable: number;
    readonly violations: number;
  };
}

export type ClusterPlanResult =
  | { readonly kind: 'ok'; readonly plan: ClusterPlan }
  | { readonly kind: 'invalid'; readonly errors: readonly InvalidObjectError[] };

/**
 * The policies of the cluster with `applied` put in: one with the same reference replaces
 * the cluster's, and gets the generation the API server would give it (the same one when
 * the spec is unchanged, one more otherwise, 1 for a new policy).
 */
export function withApplied(
  cluster: readonly PlacementPolicy[],
  applied: readonly PlacementPolicy[],
): PlacementPolicy[] {
  const byRef = new Map(cluster.map((p) => [policyRef(p) as string, p]));
  for (const p of applied) {
    const ref = policyRef(p);
    const old = byRef.get(ref);
    const generation =
      old === undefined
        ? 1
        : jsonEqual(old.spec, p.spec)
          ? (old.metadata.generation ?? 1)
          : (old.metadata.generation ?? 0) + 1;
    byRef.set(ref, { ...p, metadata: { ...p.metadata, generation } });
  }
  return [...byRef.values()];
}

/**
 * Plans `applied` (policies, as a person would `kubectl apply` them) over `snapshot` (the
 * cluster as it is, its own policies included). Only policies of `applied` count as the new
 * rules whose breaches are listed; every policy counts for what is rewritten and feasible.
 * `workloads` are the snapshot's workloads as the operator's informers trim them.
 */
export function planCluster(
  snapshot: ClusterSnapshot,
  workloads: readonly Workload[],
  applied: readonly PlacementPolicy[],
): ClusterPlanResult {
  const policies = withApplied(snapshot.policies, applied);
  const catalog = new PolicyCatalog();
  const errors: InvalidObjectError[] = [];
  const appliedRefs = new Set<string>(applied.map(policyRef));
  for (const p of policies) {
    const entry = catalog.set(p);
    if (entry.kind === 'invalid' && appliedRefs.has(policyRef(p))) errors.push(...entry.errors);
  }
  if (errors.length > 0) return { kind: 'invalid', errors };
  for (const e of snapshot.exceptions ?? ([] as PlacementException[])) catalog.setException(e);

  const after: ClusterSnapshot = { ...snapshot, policies };
  const audit = auditSnapshot(after);
  if (audit.kind === 'invalid') return { kind: 'invalid', errors: audit.errors };
  const index = audit.index;
  const nsLabels = (ns: string): Labels => index.namespaceLabels(ns);
  const trimmed = workloads.filter((w) => !managedByDeployment(w));
  // One scheduler model serves every rollout check (each leaves it as it was).
  const cluster = clusterOf(snapshot.nodes, snapshot.pods, trimmed.map(workloadRef), nsLabels);

  const planned: PlannedWorkload[] = [];
  const targets: FeasibilityTarget[] = [];
  const active = catalog.active();
  for (const w of trimmed) {
    const plan = planWorkload(w, catalog, nsLabels);
    const entry = (
      action: WorkloadAction,
      rest: Partial<PlannedWorkload> = {},
    ): PlannedWorkload => ({
      workload: workloadKey(w),
      action,
      policies: [],
      reverted: [],
      ...rest,
    });
    switch (plan.kind) {
      case 'skip':
      case 'inSync':
        break;
      case 'blocked':
        planned.push(entry('blocked', { message: plan.message }));
        break;
      case 'contradiction':
        planned.push(
          entry('contradiction', {
            policies: plan.enforced.map((p) => p.ref),
            message: plan.contradictions.map(describeContradiction).join('; '),
          }),
        );
        break;
      case 'change': {
        const check = plan.templateChanged
          ? checkRolloutOn(cluster, w, plan)
          : ({ kind: 'proceed' } as const);
        const injection =
          plan.enforced.length > 0 ? injectionFor(plan.enforced, workloadRef(w)) : undefined;
        planned.push(
          entry(
            !plan.templateChanged ? 'record' : check.kind === 'holdBack' ? 'heldBack' : 'rollout',
            {
              policies: plan.enforced.map((p) => p.ref),
              reverted: plan.reverted,
              ...(injection === undefined ? {} : { injected: injection.slots }),
              affinity: plan.affinity ?? null,
              ...(injection?.spread === undefined ? {} : { injectedSpread: injection.spread }),
              ...(plan.topologySpreadConstraints === undefined &&
              w.topologySpreadConstraints === undefined
                ? {}
                : { topologySpreadConstraints: plan.topologySpreadConstraints ?? null }),
              ...(check.kind === 'holdBack' ? { message: check.message } : {}),
            },
          ),
        );
        break;
      }
    }
    const ref = workloadRef(w);
    targets.push(
      feasibilityTargetOf(
        w,
        active.filter((p) => policyTargets(p, ref, nsLabels(w.namespace))),
      ),
    );
  }
  planned.sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));

  const found = feasibility(targets, index, snapshot.nodes.map(nodeFacts), nsLabels);
  const unsatisfiable = [...found.unsatisfiable.entries()]
    .flatMap(([policy, messages]) => messages.map((message) => ({ policy, message })))
    .sort((a, b) =>
      a.policy !== b.policy ? (a.policy < b.policy ? -1 : 1) : a.message < b.message ? -1 : 1,
    );
  const violations = audit.report.violations.filter((v) => appliedRefs.has(v.source));
  return {
    kind: 'ok',
    plan: {
      workloads: planned,
      unsatisfiable,
      violations,
      summary: {
        workloads: planned.length,
        rollouts: planned.filter((p) => p.action === 'rollout').length,
        heldBack: planned.filter((p) => p.action === 'heldBack').length,
        unsatisfiable: unsatisfiable.length,
        violations: violations.length,
      },
    },
  };
}

/** Whether the plan holds something back or cannot be met. */
export const planBlocks = (plan: ClusterPlan): boolean =>
  plan.workloads.some((w) => w.action !== 'rollout' && w.action !== 'record') ||
  plan.unsatisfiable.length > 0;
