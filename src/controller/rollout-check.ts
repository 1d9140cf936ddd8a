import type { Labels, Node, Pod } from '../api/core.ts';
import {
  blockedMessage,
  clusterOf,
  predictRollout,
  workloadRef,
  type SimCluster,
} from '../engine/index.ts';
import { type WorkloadPlan } from './plan.ts';
import type { Store, Workload } from '../api/cluster.ts';

/** The cluster a rollout is simulated on: bound pods and nodes, from the informers. */
export interface ClusterView {
  readonly pods: Store<Pod>;
  readonly nodes: Store<Node>;
}

export type RolloutCheck =
  | { readonly kind: 'proceed' }
  /** The write would start a rollout that cannot finish: it is not made. */
  | { readonly kind: 'holdBack'; readonly message: string };

const PROCEED: RolloutCheck = { kind: 'proceed' };

/**
 * Whether a template write may go ahead: the rollout it would start is simulated first,
 * and one that cannot finish is held back with what would unblock it, unless a policy
 * that asks for the change says `allowBlockedRollouts: true`. Reverts and annotation-only
 * changes always go ahead: they take rules away or roll nothing.
 */
export function checkRollout(
  w: Workload,
  plan: Extract<WorkloadPlan, { kind: 'change' }>,
  view: ClusterView,
  namespaceLabels: (ns: string) => Labels,
): RolloutCheck {
  if (!plan.templateChanged || plan.enforced.length === 0) return PROCEED;
  if (plan.enforced.some((p) => p.source.spec.allowBlockedRollouts === true)) return PROCEED;
  const cluster = clusterOf(view.nodes.list(), view.pods.list(), [workloadRef(w)], namespaceLabels);
  return checkRolloutOn(cluster, w, plan);
}

/**
 * checkRollout on a scheduler model already built (left as it was): one model can serve
 * the checks of many workloads, each of its pods filed under its workload.
 */
export function checkRolloutOn(
  cluster: SimCluster,
  w: Workload,
  plan: Extract<WorkloadPlan, { kind: 'change' }>,
): RolloutCheck {
  if (!plan.templateChanged || plan.enforced.length === 0) return PROCEED;
  if (plan.enforced.some((p) => p.source.spec.allowBlockedRollouts === true)) return PROCEED;
  const ref = workloadRef(w);
  const outcome = predictRollout(cluster, {
    workload: ref,
    replicas: w.replicas,
    strategy: w.rollout,
    constraints: {
      ...(w.nodeSelector === undefined ? {} : { nodeSelector: w.nodeSelector }),
      ...(w.tolerations === undefined ? {} : { tolerations: w.tolerations }),
    },
    affinity: plan.affinity,
    topologySpreadConstraints: plan.topologySpreadConstraints,
    enforced: plan.enforced,
  });
  if (outcome.kind !== 'blocked') return PROCEED;
  return {
    kind: 'holdBack',
    message: `${w.kind} ${w.namespace}/${w.name}: ${blockedMessage(outcome)}`,
  };
}
