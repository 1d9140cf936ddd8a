import type { Affinity, LabelSelector } from './core.ts';

export const GROUP = 'placement.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const POLICY_KINDS = ['ClusterPlacementPolicy', 'PlacementPolicy'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export const WORKLOAD_KINDS = [
  'Deployment',
  'StatefulSet',
  'ReplicaSet',
  'DaemonSet',
  'CronJob',
] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];
/** Objects whose pod template cannot change: audited, never rewritten. */
export const AUDIT_ONLY_KINDS = ['Job', 'Pod'] as const;
/** Kinds a policy may target: workloads it rewrites, plus Jobs and bare Pods, which it only audits. */
export const TARGET_KINDS = [...WORKLOAD_KINDS, ...AUDIT_ONLY_KINDS] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];
export const DEFAULT_TARGET_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet'];

export const POLICY_MODES = ['Enforce', 'Audit'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
export const SPREAD_MODES = ['Required', 'Preferred'] as const;
export type SpreadMode = (typeof SPREAD_MODES)[number];
/** What a `spreadAcross` entry writes: an anti-affinity term, or a topologySpreadConstraint. */
export const SPREAD_CONSTRAINTS = ['PodAntiAffinity', 'TopologySpread'] as const;
export type SpreadConstraint = (typeof SPREAD_CONSTRAINTS)[number];
/** What the continuous audit may do about a running pod in breach of the policy. */
export const REMEDIATIONS = ['None', 'Evict'] as const;
export type Remediation = (typeof REMEDIATIONS)[number];

export interface SpreadAcross {
  readonly topologyKey: string;
  readonly mode?: SpreadMode;
  readonly weight?: number;
  /** Default PodAntiAffinity. */
  readonly constraint?: SpreadConstraint;
  /** TopologySpread only; default 1. */
  readonly maxSkew?: number;
  /** TopologySpread with mode Required only. */
  readonly minDomains?: number;
}

export interface PolicyTargets {
  readonly kinds?: readonly string[];
  readonly selector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly namespaces?: readonly string[];
}

export interface PolicyAudit {
  readonly enabled?: boolean;
  readonly remediation?: Remediation;
  readonly maxEvictionsPerMinute?: number;
}

/**
 * Whether PlacementExceptions may exempt workloads from the policy, and from which
 * namespaces (ClusterPlacementPolicy only: a PlacementPolicy's exceptions live in its own
 * namespace). Neither `namespaces` nor `namespaceSelector`: from every namespace.
 */
export interface PolicyExceptions {
  readonly allowed?: boolean;
  readonly namespaceSelector?: LabelSelector;
  readonly namespaces?: readonly string[];
}

export interface PlacementPolicySpec {
  readonly mode?: PolicyMode;
  readonly priority?: number;
  readonly targets?: PolicyTargets;
  readonly affinity?: Affinity;
  readonly spreadAcross?: readonly SpreadAcross[];
  readonly audit?: PolicyAudit;
  /**
   * Write templates even when the rollout the write would start cannot finish (default
   * false: such a write is held back and the policy says why).
   */
  readonly allowBlockedRollouts?: boolean;
  readonly exceptions?: PolicyExceptions;
}

export interface PlacementPolicy {
  readonly apiVersion?: string;
  readonly kind: PolicyKind;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly generation?: number;
    readonly uid?: string;
    readonly deletionTimestamp?: string;
    readonly finalizers?: readonly string[];
  };
  readonly spec: PlacementPolicySpec;
}

/** `PlacementPolicy/NS/NAME` or `ClusterPlacementPolicy/NAME`: how reports name a policy. */
export type PolicyRef = `PlacementPolicy/${string}/${string}` | `ClusterPlacementPolicy/${string}`;

export function policyRef(policy: Pick<PlacementPolicy, 'kind' | 'metadata'>): PolicyRef {
  return policy.kind === 'PlacementPolicy'
    ? `PlacementPolicy/${policy.metadata.namespace ?? ''}/${policy.metadata.name}`
    : `ClusterPlacementPolicy/${policy.metadata.name}`;
}

/** What the continuous audit reports of one policy, shown in its status. */
export interface PolicyAuditSummary {
  readonly violations: number;
  /** A bounded sample of the violating pods. */
  readonly violationSample: readonly {
    readonly pod: string;
    readonly node: string;
    readonly rule: string;
    readonly source: string;
    readonly message: string;
  }[];
  readonly lastAuditTime: string;
  /** Pods of Jobs and bare Pods the policy targets: audited, never rewritten. */
  readonly auditOnly: number;
  /** Why the policy's required rules cannot be met, when they cannot. */
  readonly unsatisfiable?: string;
}
