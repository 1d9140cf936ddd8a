import type {
  Affinity,
  Labels,
  LabelSelector,
  OwnerReference,
  Toleration,
  TopologySpreadConstraint,
} from './core.ts';
import type { WorkloadKind } from './policy.ts';

/*
 * Shapes the operator's layers share: src/kube produces them from the API, src/controller
 * and src/audit consume them. Objects here are trimmed to the fields the operator uses.
 */

export type { WorkloadKind };

/** A workload as cached: identity, pod template labels and affinity, rollout state. */
export interface Workload {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly generation: number;
  readonly annotations: Labels;
  readonly ownerReferences: readonly OwnerReference[];
  readonly selector: LabelSelector | undefined;
  readonly templateLabels: Labels;
  readonly affinity: Affinity | undefined;
  /** The pod template's nodeSelector and tolerations: where its pods may go at all. */
  readonly nodeSelector?: Labels;
  readonly tolerations?: readonly Toleration[];
  /** The pod template's topologySpreadConstraints, as stored; absent when it has none. */
  readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[];
  /** Whether the last template change has fully rolled out (always true for CronJob). */
  readonly rolledOut: boolean;
  /**
   * Why the current rollout has stopped making progress, when its controller says so (a
   * Deployment past its progressDeadlineSeconds); absent while it progresses or is done.
   */
  readonly rolloutStalled?: string;
  /** Desired pods (spec.replicas, default 1; DaemonSet: scheduled nodes; CronJob: 1). */
  readonly replicas: number;
  /** How a template change rolls out (absent: CronJob, ReplicaSet). */
  readonly rollout?: RolloutStrategy;
}

/** An int or a percentage, as in `maxSurge: 25%`. */
export type IntOrPercent = number | string;

/**
 * A workload's update strategy as written (defaults not applied): Deployment
 * `spec.strategy`, StatefulSet `spec.updateStrategy` and `spec.podManagementPolicy`,
 * DaemonSet `spec.updateStrategy`.
 */
export interface RolloutStrategy {
  /** `RollingUpdate`, `Recreate` (Deployment) or `OnDelete` (StatefulSet, DaemonSet). */
  readonly type?: string;
  readonly maxSurge?: IntOrPercent;
  readonly maxUnavailable?: IntOrPercent;
  /** StatefulSet: ordinals below it keep the old template. */
  readonly partition?: number;
  /** StatefulSet: `OrderedReady` or `Parallel`. */
  readonly podManagementPolicy?: string;
}

/**
 * `placement.dev/evict: "false"` on a pod or on a workload of its owner chain: remediation
 * never evicts the pod, whatever rule it breaks.
 */
export const EVICT_ANNOTATION = 'placement.dev/evict';

/** The annotation that records, on each workload, what the operator injected. */
export const APPLIED_ANNOTATION = 'placement.dev/applied';

/**
 * The field manager every write of the operator carries, so GitOps tools can tell its fields
 * apart; admission leaves the operator's own writes alone by it.
 */
export const FIELD_MANAGER = 'placement-operator';

/** The finalizer that keeps a policy until its terms are out of every workload. */
export const POLICY_FINALIZER = 'placement.dev/finalizer';

/** A workload's key in the caches and the work queue: `<kind>/<namespace>/<name>`. */
export const workloadKey = (w: {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}): string => `${w.kind}/${w.namespace}/${w.name}`;

/** A read-only, informer-backed view of objects of one kind. */
export interface Store<T> {
  list(): readonly T[];
  get(key: string): T | undefined;
  /** True once the first list has been loaded. */
  readonly synced: boolean;
}

export type WatchEvent<T> =
  | { readonly type: 'added' | 'updated'; readonly object: T; readonly old?: T }
  | { readonly type: 'deleted'; readonly object: T };

/** Outcome of a write, as the reconciler branches on it. */
export type WriteResult =
  | { readonly kind: 'written'; readonly resourceVersion: string }
  | { readonly kind: 'conflict' } // 409: someone wrote first; re-read and retry
  | { readonly kind: 'gone' } // 404: the object no longer exists
  | {
      readonly kind: 'failed';
      readonly message: string;
      /** Worth sending again as it is: no answer, throttled, or the server's fault. */
      readonly retryable: boolean;
      /**
       * The fields the API server's validation rejected (400/422 naming them): the request
       * will never be accepted as it stands, only once the object or what is written changes.
       */
      readonly invalid?: readonly string[];
    };

export interface AffinityWrite {
  readonly workload: Workload;
  /** The whole new pod-template affinity, or undefined to remove it. */
  readonly affinity: Affinity | undefined;
  /** The new `placement.dev/applied` annotation text, or undefined to remove it. */
  readonly appliedAnnotation: string | undefined;
  /** The whole new pod-template topologySpreadConstraints; null removes them, absent leaves them. */
  readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[] | null;
}

export interface EventTarget {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly apiVersion: string;
}

/** A store that also tells of changes: what an informer gives the controller and the audit. */
export interface Source<T> extends Store<T> {
  addHandler(handler: (event: WatchEvent<T>) => void): () => void;
}

export interface EventRecorder {
  /**
   * Records a Kubernetes Event; failures are logged, never thrown. A repeat of an identical
   * recent Event is dropped unless `deduplicate` is false.
   */
  record(
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    options?: { readonly deduplicate?: boolean },
  ): void;
}
