/**
 * The parts of the core Kubernetes types that placement needs, in the shape the
 * API server serves them. Everything is optional where the API allows it to be.
 */

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export const SELECTOR_OPERATORS: readonly SelectorOperator[] = [
  'In',
  'NotIn',
  'Exists',
  'DoesNotExist',
];

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface PodAffinityTerm {
  readonly topologyKey: string;
  /** null or absent selects no pod; `{}` selects every pod. */
  readonly labelSelector?: LabelSelector | null;
  readonly namespaces?: readonly string[];
  /** null or absent is not used; `{}` selects every namespace. */
  readonly namespaceSelector?: LabelSelector | null;
  readonly matchLabelKeys?: readonly string[];
  readonly mismatchLabelKeys?: readonly string[];
}

export interface WeightedPodAffinityTerm {
  readonly weight: number;
  readonly podAffinityTerm: PodAffinityTerm;
}

export interface PodAffinityRules {
  readonly requiredDuringSchedulingIgnoredDuringExecution?: readonly PodAffinityTerm[];
  readonly preferredDuringSchedulingIgnoredDuringExecution?: readonly WeightedPodAffinityTerm[];
}

export interface NodeSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface NodeSelectorTerm {
  readonly matchExpressions?: readonly NodeSelectorRequirement[];
  readonly matchFields?: readonly NodeSelectorRequirement[];
}

export interface NodeAffinity {
  readonly requiredDuringSchedulingIgnoredDuringExecution?: {
    readonly nodeSelectorTerms: readonly NodeSelectorTerm[];
  };
  readonly preferredDuringSchedulingIgnoredDuringExecution?: readonly {
    readonly weight: number;
    readonly preference: NodeSelectorTerm;
  }[];
}

export interface Affinity {
  readonly nodeAffinity?: NodeAffinity;
  readonly podAffinity?: PodAffinityRules;
  readonly podAntiAffinity?: PodAffinityRules;
}

export interface OwnerReference {
  readonly kind: string;
  readonly name: string;
  readonly controller?: boolean;
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly annotations?: Labels;
  readonly ownerReferences?: readonly OwnerReference[];
  readonly deletionTimestamp?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly uid?: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** How a pod's replicas spread over topology domains (`spec.topologySpreadConstraints[]`). */
export interface TopologySpreadConstraint {
  readonly maxSkew: number;
  readonly topologyKey: string;
  /** DoNotSchedule (a filter) or ScheduleAnyway (a score). */
  readonly whenUnsatisfiable: string;
  /** null or absent selects no pod. */
  readonly labelSelector?: LabelSelector | null;
  /** Absent: 1. */
  readonly minDomains?: number;
  /** Honor (the default) or Ignore: whether the pod's node affinity limits the domains. */
  readonly nodeAffinityPolicy?: string;
  /** Honor or Ignore (the default): whether untolerated taints limit the domains. */
  readonly nodeTaintsPolicy?: string;
  readonly matchLabelKeys?: readonly string[];
}

export interface Pod {
  readonly metadata: ObjectMeta & { readonly namespace: string };
  readonly spec: {
    readonly nodeName?: string;
    readonly affinity?: Affinity;
    readonly nodeSelector?: Labels;
    readonly tolerations?: readonly Toleration[];
    readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[];
  };
  readonly status?: { readonly phase?: string };
}

export interface Taint {
  readonly key: string;
  readonly value?: string;
  /** NoSchedule, PreferNoSchedule or NoExecute. */
  readonly effect: string;
}

export interface Toleration {
  readonly key?: string;
  /** Equal (the default) or Exists. */
  readonly operator?: string;
  readonly value?: string;
  /** Empty tolerates every effect. */
  readonly effect?: string;
}

export interface Node {
  readonly metadata: ObjectMeta;
  /** What keeps pods off a node: its taints, and whether it is cordoned. */
  readonly spec?: { readonly taints?: readonly Taint[]; readonly unschedulable?: boolean };
}

export interface Namespace {
  readonly metadata: ObjectMeta;
}
