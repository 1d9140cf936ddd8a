import type { Affinity, Labels, LabelSelector, OwnerReference } from '../api/core.ts';
import type { PlacementPolicy, WorkloadKind } from '../api/policy.ts';

/*
 * The shapes of src/controller/ports.ts, restated here because the layer rule keeps
 * src/kube from importing src/controller; TypeScript's structural typing makes these
 * the same types (test/unit/kube/ports.test.ts checks that they stay assignable).
 */

export type { WorkloadKind };

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

export interface Store<T> {
  list(): readonly T[];
  get(key: string): T | undefined;
  readonly synced: boolean;
}

export type WatchEvent<T> =
  | { readonly type: 'added' | 'updated'; readonly object: T; readonly old?: T }
  | { readonly type: 'deleted'; readonly object: T };

export type WriteResult =
  | { readonly kind: 'written'; readonly resourceVersion: string }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly message: string; readonly retryable: boolean };

export interface AffinityWrite {
  readonly workload: Workload;
  readonly affinity: Affinity | undefined;
  readonly appliedAnnotation: string | undefined;
}

export interface EventTarget {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly apiVersion: string;
}

/**
 * A policy as the informer caches it: src/api's PlacementPolicy plus what writes need,
 * the resourceVersion (the precondition of every write) and the current status (a status
 * write is the merge-patch difference from it).
 */
export interface CachedPolicy extends PlacementPolicy {
  readonly metadata: PlacementPolicy['metadata'] & { readonly resourceVersion: string };
  readonly status?: Readonly<Record<string, unknown>>;
}

/** Structured logging, as winston's logger provides it; src/kube never picks a logger itself. */
export interface KubeLogger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export const silentLogger: KubeLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
