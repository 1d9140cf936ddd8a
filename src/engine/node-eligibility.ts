/**
 * Which nodes a workload's pods may be put on at all, before any pod affinity is looked at:
 * kube-scheduler's NodeUnschedulable, NodeAffinity (nodeSelector and required node
 * affinity) and TaintToleration filters. Feasibility counts topology domains over these
 * nodes only; remediation asks whether an evicted pod has anywhere else to go.
 */
import type { Node, Taint, Toleration } from '../api/core.ts';
import { nodeRulesHold, type NodeIdentity, type NodeRules } from './node-affinity.ts';

/** What the filters read of a node. */
export interface NodeFacts extends NodeIdentity {
  readonly taints: readonly Taint[];
  readonly unschedulable: boolean;
}

/** A node as the filters read it. */
export const nodeFacts = (node: Node): NodeFacts => ({
  name: node.metadata.name,
  labels: node.metadata.labels ?? {},
  taints: node.spec?.taints ?? [],
  unschedulable: node.spec?.unschedulable === true,
});

/** What the filters read of a pod template. */
export interface PodConstraints extends NodeRules {
  readonly tolerations?: readonly Toleration[];
}

/** The taint the node lifecycle controller puts on a cordoned node, and the filter checks. */
export const UNSCHEDULABLE_TAINT: Taint = {
  key: 'node.kubernetes.io/unschedulable',
  effect: 'NoSchedule',
};

/** Whether one toleration tolerates one taint (an empty key with Exists tolerates all). */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false;
  if (t.operator === 'Exists') return t.key === undefined || t.key === '' || t.key === taint.key;
  // Equal, the default operator.
  return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
}

const toleratedBy = (tolerations: readonly Toleration[], taint: Taint): boolean =>
  tolerations.some((t) => tolerates(t, taint));

/** Whether kube-scheduler's node filters let a pod with `pod`'s constraints onto `node`. */
export function nodeAdmits(node: NodeFacts, pod: PodConstraints): boolean {
  const tolerations = pod.tolerations ?? [];
  if (node.unschedulable && !toleratedBy(tolerations, UNSCHEDULABLE_TAINT)) return false;
  return nodeRulesHold(pod, node) && toleratesHardTaints(node.taints, tolerations);
}

/**
 * Whether every taint that keeps pods off a node (NoSchedule, NoExecute: all but
 * PreferNoSchedule) is tolerated: the TaintToleration filter, and what topology spread's
 * `nodeTaintsPolicy: Honor` asks of a node before it counts as a domain.
 */
export const toleratesHardTaints = (
  taints: readonly Taint[],
  tolerations: readonly Toleration[],
): boolean =>
  taints.every((taint) => taint.effect === 'PreferNoSchedule' || toleratedBy(tolerations, taint));
