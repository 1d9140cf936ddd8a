/**
 * Which nodes a workload's pods may be put on at all, before any pod affinity is looked at:
 * kube-scheduler's NodeUnschedulable, NodeAffinity (nodeSelector and required node
 * affinity) and TaintToleration filters. Feasibility counts topology domains over these
 * nodes only; remediation asks whether an evicted pod has anywhere else to go.
 */
import type {
  Labels,
  Node,
  NodeAffinity,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  Taint,
  Toleration,
} from '../api/core.ts';
import { labelOf } from './labels.ts';

/** What the filters read of a node. */
export interface NodeFacts {
  readonly name: string;
  readonly labels: Labels;
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
export interface PodConstraints {
  readonly nodeSelector?: Labels;
  readonly nodeAffinity?: NodeAffinity;
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

/** An integer as node affinity's Gt/Lt read it, or undefined. */
function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}

/** Whether a node's value for the key (undefined: no such label) meets one requirement. */
export function requirementHolds(r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      const have = integer(value);
      const bound = integer(values[0]);
      if (have === undefined || bound === undefined || values.length !== 1) return false;
      return r.operator === 'Gt' ? have > bound : have < bound;
    }
    default:
      return false;
  }
}

/** A nodeSelectorTerm: every requirement holds; a term with none matches no node. */
function termMatches(term: NodeSelectorTerm, node: NodeFacts): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  return (
    expressions.every((r) => requirementHolds(r, labelOf(node.labels, r.key))) &&
    fields.every((r) => r.key === 'metadata.name' && requirementHolds(r, node.name))
  );
}

/** Whether kube-scheduler's node filters let a pod with `pod`'s constraints onto `node`. */
export function nodeAdmits(node: NodeFacts, pod: PodConstraints): boolean {
  const tolerations = pod.tolerations ?? [];
  if (node.unschedulable && !toleratedBy(tolerations, UNSCHEDULABLE_TAINT)) return false;
  for (const [key, value] of Object.entries(pod.nodeSelector ?? {})) {
    if (labelOf(node.labels, key) !== value) return false;
  }
  const required = pod.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined && !required.nodeSelectorTerms.some((t) => termMatches(t, node))) {
    return false;
  }
  return node.taints.every(
    (taint) => taint.effect === 'PreferNoSchedule' || toleratedBy(tolerations, taint),
  );
}
