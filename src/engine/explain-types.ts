/**
 * What `kubectl-placement why` says about one pod (explain.ts decides it): the rules, in the
 * scheduler's filter order, the blocks that refuse a node or that a bound pod breaks, the
 * changes that would open a node, and where each rule came from.
 */
import type { TermSource } from './placement.ts';

/** The rules `why` names, in the order kube-scheduler's filters run. */
export const WHY_RULES = [
  'nodeUnschedulable',
  'taint',
  'nodeSelector',
  'nodeAffinity',
  'topologySpread',
  'podAffinity',
  'podAntiAffinity',
  'symmetricAntiAffinity',
] as const;
export type WhyRule = (typeof WHY_RULES)[number];

/**
 * How kube-scheduler's FailedScheduling message names each rule (the reason strings of
 * the NodeUnschedulable, TaintToleration, NodeAffinity, PodTopologySpread and
 * InterPodAffinity filters); a taint's adds `{key: value}`.
 */
export const SCHEDULER_REASON: Readonly<Record<WhyRule, string>> = {
  nodeUnschedulable: 'node(s) were unschedulable',
  taint: 'node(s) had untolerated taint',
  nodeSelector: "node(s) didn't match Pod's node affinity/selector",
  nodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  topologySpread: "node(s) didn't match pod topology spread constraints",
  podAffinity: "node(s) didn't match pod affinity rules",
  podAntiAffinity: "node(s) didn't match pod anti-affinity rules",
  symmetricAntiAffinity: "node(s) didn't satisfy existing pods anti-affinity rules",
};

/** Who a rule comes from: the pod's spec, a policy, or the node (a cordon, a taint). */
export type WhySource = TermSource | 'node';

/** A pod that takes part in a rule's verdict, and the domain it does so in. */
export interface InvolvedPod {
  readonly pod: string;
  readonly node: string;
  /** `key=value`. */
  readonly domain: string;
}

/** One rule refusing one node, or broken where a pod runs. */
export interface Block {
  readonly rule: WhyRule;
  readonly source: WhySource;
  /** Where the rule is written: `spec.nodeSelector`, `spec.spreadAcross[0]`, `spec.taints`. */
  readonly field: string;
  /** The topology key the rule is judged by, when it has one. */
  readonly topologyKey?: string;
  /** `key=value` of the domain the rule is judged in (a taint: `key: value`), when it has one. */
  readonly domain?: string;
  /** Pod terms: the pods the term selects, as kubectl writes a selector (`app=checkout`). */
  readonly selects?: string;
  /** topologySpread: how many matching pods would have to leave the domain. */
  readonly excess?: number;
  readonly pods: readonly InvolvedPod[];
  readonly message: string;
}

/** One node as the pod's rules see it. */
export interface NodeVerdict {
  readonly node: string;
  /** Every rule that refuses the node, in the scheduler's filter order (empty: it fits). */
  readonly blocks: readonly Block[];
}

/** One rule and the nodes it rules out. */
export interface RuleOutcome {
  readonly rule: WhyRule;
  readonly source: WhySource;
  readonly field: string;
  readonly nodes: readonly string[];
  readonly pods: readonly InvolvedPod[];
  /** The message for the first node it rules out. */
  readonly message: string;
}

/** A change to the cluster that would let the pod schedule onto one node. */
export interface Change {
  /** What to do, as a person reads it; several steps are joined by "and". */
  readonly change: string;
  /** The node it opens (`new` for a node to add). */
  readonly node: string;
  /** How big it is: pods moved, labels or taints changed, nodes added. */
  readonly cost: number;
}

/** A rule the pod is under, and who put it there. */
export interface RuleOrigin {
  readonly rule:
    'nodeSelector' | 'nodeAffinity' | 'topologySpread' | 'podAffinity' | 'podAntiAffinity';
  readonly required: boolean;
  readonly field: string;
  readonly source: TermSource;
  /** `its owner Deployment shop/web`, `PlacementPolicy/shop/p (injected, generation 2)`, ... */
  readonly putBy: string;
  readonly text: string;
}

export type WhyStatus = 'unschedulable' | 'schedulable' | 'violating' | 'fine';

export interface Explanation {
  readonly pod: string;
  readonly node: string | null;
  readonly phase: string;
  readonly status: WhyStatus;
  /** The pod's workload (`Kind/ns/name`), or null for a bare pod. */
  readonly workload: string | null;
  readonly rules: readonly RuleOrigin[];
  /** Not bound: each node and the rules that refuse it. */
  readonly nodes: readonly NodeVerdict[];
  /** Not bound: each rule and the nodes it rules out, in filter order. */
  readonly ruledOut: readonly RuleOutcome[];
  /** Not bound: how many nodes the scheduler would report under each reason (first failing filter). */
  readonly schedulerReasons: readonly { readonly reason: string; readonly nodes: number }[];
  /** Not bound and no node fits: the smallest changes that would let it schedule, smallest first. */
  readonly changes: readonly Change[];
  /** Bound: the rules it breaks where it runs. */
  readonly violations: readonly Block[];
}

export type WhyResult =
  | { readonly kind: 'ok'; readonly explanation: Explanation }
  | { readonly kind: 'notFound'; readonly message: string }
  | { readonly kind: 'invalid'; readonly message: string };
