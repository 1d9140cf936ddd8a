import type { Affinity, Labels, LabelSelector, OwnerReference } from '../api/core.ts';
import type { PlacementPolicy } from '../api/policy.ts';

/**
 * What the controller needs from the API, as interfaces it owns; src/kube implements them
 * with @kubernetes/client-node. Objects here are trimmed to the fields the operator uses.
 */

/** A workload kind the operator can rewrite or audit, with its API coordinates. */
export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'ReplicaSet' | 'DaemonSet' | 'CronJob';

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
  /** Whether the last template change has fully rolled out (always true for CronJob). */
  readonly rolledOut: boolean;
  /** Desired pods (spec.replicas, default 1; DaemonSet: scheduled nodes; CronJob: 1). */
  readonly replicas: number;
}

export const workloadKey = (w: Pick<Workload, 'kind' | 'namespace' | 'name'>): string =>
  `${w.kind}/${w.namespace}/${w.name}`;

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
  | { readonly kind: 'failed'; readonly message: string; readonly retryable: boolean };

export interface AffinityWrite {
  readonly workload: Workload;
  /** The whole new pod-template affinity, or undefined to remove it. */
  readonly affinity: Affinity | undefined;
  /** The new `placement.dev/applied` annotation text, or undefined to remove it. */
  readonly appliedAnnotation: string | undefined;
}

export interface WorkloadWriter {
  /** Writes the template affinity and annotation, guarded by the workload's resourceVersion. */
  writeAffinity(write: AffinityWrite): Promise<WriteResult>;
}

export interface PolicyStatusWriter {
  writeStatus(policy: PlacementPolicy, status: unknown): Promise<WriteResult>;
  setFinalizer(policy: PlacementPolicy, present: boolean): Promise<WriteResult>;
}

export interface EventTarget {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly apiVersion: string;
}

export interface EventRecorder {
  /** Records a Kubernetes Event; failures are logged, never thrown. */
  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/** A store that also tells of changes: what an informer gives the controller. */
export interface Source<T> extends Store<T> {
  addHandler(handler: (event: WatchEvent<T>) => void): () => void;
}
