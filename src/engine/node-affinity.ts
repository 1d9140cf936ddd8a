/**
 * A pod's node rules against one node's labels, as kube-scheduler's NodeAffinity plugin
 * reads them: `nodeSelector` (every pair present), required node affinity
 * (`nodeSelectorTerms` ORed, each term's requirements ANDed) and preferred node affinity
 * (a score). The one home of node-selector matching: eligibility (node-eligibility.ts),
 * the drift judge below and topology spread's node inclusion all call it.
 */
import type {
  Labels,
  NodeAffinity,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  Pod,
} from '../api/core.ts';
import { labelOf } from './labels.ts';
import type { Verdict } from './placement.ts';

/** What node affinity reads of a node: its name (matchFields) and its labels. */
export interface NodeIdentity {
  readonly name: string;
  readonly labels: Labels;
}

/** The node rules of a pod (or of a pod template). */
export interface NodeRules {
  readonly nodeSelector?: Labels;
  readonly nodeAffinity?: NodeAffinity;
}

/** A Pod's node rules: its nodeSelector and its node affinity. */
export const nodeRulesOfPod = (pod: Pod): NodeRules => ({
  ...(pod.spec.nodeSelector ? { nodeSelector: pod.spec.nodeSelector } : {}),
  ...(pod.spec.affinity?.nodeAffinity ? { nodeAffinity: pod.spec.affinity.nodeAffinity } : {}),
});

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

/** Why one nodeSelectorTerm does not match a node. */
export type TermMiss =
  /** A term with no requirement matches no node. */
  | { readonly kind: 'empty' }
  | {
      readonly kind: 'matchExpressions' | 'matchFields';
      readonly index: number;
      readonly requirement: NodeSelectorRequirement;
      /** The node's value for the key (its name for matchFields); undefined: not set. */
      readonly value: string | undefined;
    };

/** The node's value for a matchFields key: only `metadata.name` is a field the scheduler knows. */
const fieldOf = (node: NodeIdentity, key: string): string | undefined =>
  key === 'metadata.name' ? node.name : undefined;

/** The first requirement of `term` that `node` fails, or undefined when the term matches. */
export function termMiss(term: NodeSelectorTerm, node: NodeIdentity): TermMiss | undefined {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return { kind: 'empty' };
  for (const [index, requirement] of expressions.entries()) {
    const value = labelOf(node.labels, requirement.key);
    if (!requirementHolds(requirement, value)) {
      return { kind: 'matchExpressions', index, requirement, value };
    }
  }
  for (const [index, requirement] of fields.entries()) {
    // An unknown field is a term the scheduler cannot parse: it matches no node.
    const value = fieldOf(node, requirement.key);
    if (requirement.key !== 'metadata.name' || !requirementHolds(requirement, value)) {
      return { kind: 'matchFields', index, requirement, value };
    }
  }
  return undefined;
}

export const nodeTermMatches = (term: NodeSelectorTerm, node: NodeIdentity): boolean =>
  termMiss(term, node) === undefined;

/** The `nodeSelector` key whose value the node lacks, or undefined when every pair is there. */
export function nodeSelectorMiss(
  nodeSelector: Labels | undefined,
  labels: Labels,
): { readonly key: string; readonly want: string; readonly have: string | undefined } | undefined {
  for (const [key, want] of Object.entries(nodeSelector ?? {})) {
    const have = labelOf(labels, key);
    if (have !== want) return { key, want, have };
  }
  return undefined;
}

const requiredTerms = (rules: NodeRules): readonly NodeSelectorTerm[] | undefined =>
  rules.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;

/** Whether the node meets the pod's nodeSelector and required node affinity (the NodeAffinity filter). */
export function nodeRulesHold(rules: NodeRules, node: NodeIdentity): boolean {
  if (nodeSelectorMiss(rules.nodeSelector, node.labels) !== undefined) return false;
  const terms = requiredTerms(rules);
  return terms === undefined || terms.some((t) => nodeTermMatches(t, node));
}

/**
 * The NodeAffinity score of a node before normalisation: the sum of the weights of the
 * preferred terms it matches.
 */
export function preferredNodeAffinityScore(rules: NodeRules, node: NodeIdentity): number {
  let score = 0;
  for (const p of rules.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
    if (p.weight !== 0 && nodeTermMatches(p.preference, node)) score += p.weight;
  }
  return score;
}

/** A node rule a bound pod breaks where it runs. */
export type NodeRuleViolation =
  | {
      readonly rule: 'nodeSelector';
      readonly key: string;
      readonly want: string;
      readonly have: string | undefined;
      readonly message: string;
    }
  | {
      readonly rule: 'nodeAffinity';
      /** Why each term misses, in term order (the terms are ORed: all of them miss). */
      readonly misses: readonly TermMiss[];
      readonly message: string;
    };

export type NodeRuleVerdict = Verdict<NodeRuleViolation, { readonly preferredScore: number }>;

const valueText = (v: string | undefined): string => (v === undefined ? 'none' : `"${v}"`);

/** One term's miss as a person reads it: `nodeSelectorTerms[1].matchExpressions[0] (pool In [gpu]): node has "cpu"`. */
export function termMissText(term: number, miss: TermMiss): string {
  const at = `nodeSelectorTerms[${term}]`;
  if (miss.kind === 'empty') return `${at} has no requirement and matches no node`;
  const r = miss.requirement;
  const values = r.values === undefined ? '' : ` [${r.values.join(',')}]`;
  const what = miss.kind === 'matchFields' ? 'field' : 'label';
  return `${at}.${miss.kind}[${miss.index}] (${r.key} ${r.operator}${values}): node ${what} is ${valueText(miss.value)}`;
}

/** Required node affinity none of whose terms a node matches, each term's miss in term order. */
export function noTermText(node: string, misses: readonly TermMiss[]): string {
  const why =
    misses.length === 0
      ? 'no nodeSelectorTerms'
      : misses.map((m, i) => termMissText(i, m)).join('; ');
  return `required node affinity: node ${node} matches no term: ${why}`;
}

/**
 * Whether a bound pod still meets its node rules on the node it runs on, now: the
 * NodeAffinity filter applied again to the node's current labels (the rules are
 * IgnoredDuringExecution, so a relabelled node keeps pods that no longer meet them).
 */
export function judgeNodeRules(rules: NodeRules, node: NodeIdentity): NodeRuleVerdict {
  const violations: NodeRuleViolation[] = [];
  const selectorMiss = nodeSelectorMiss(rules.nodeSelector, node.labels);
  if (selectorMiss !== undefined) {
    violations.push({
      rule: 'nodeSelector',
      ...selectorMiss,
      message: `nodeSelector ${selectorMiss.key}=${selectorMiss.want}: node ${node.name} has ${valueText(selectorMiss.have)}`,
    });
  }
  const terms = requiredTerms(rules);
  if (terms !== undefined) {
    const misses: TermMiss[] = [];
    for (const term of terms) {
      const miss = termMiss(term, node);
      if (miss === undefined) break;
      misses.push(miss);
    }
    if (misses.length === terms.length) {
      violations.push({ rule: 'nodeAffinity', misses, message: noTermText(node.name, misses) });
    }
  }
  const preferredScore = preferredNodeAffinityScore(rules, node);
  return violations.length === 0
    ? { kind: 'ok', preferredScore }
    : { kind: 'violated', violations, preferredScore };
}
