import type { PlacementPolicy } from '../api/policy.ts';

/**
 * What the controller needs from the API, as interfaces it owns; src/kube implements them
 * with @kubernetes/client-node. Objects here are trimmed to the fields the operator uses.
 */

export type {
  AffinityWrite,
  EventTarget,
  Store,
  WatchEvent,
  Workload,
  WorkloadKind,
  WriteResult,
} from '../api/cluster.ts';
export { workloadKey } from '../api/cluster.ts';
import type { AffinityWrite, EventTarget, Store, WatchEvent, WriteResult } from '../api/cluster.ts';

export interface WorkloadWriter {
  /** Writes the template affinity and annotation, guarded by the workload's resourceVersion. */
  writeAffinity(write: AffinityWrite): Promise<WriteResult>;
}

export interface PolicyStatusWriter {
  writeStatus(policy: PlacementPolicy, status: unknown): Promise<WriteResult>;
  setFinalizer(policy: PlacementPolicy, present: boolean): Promise<WriteResult>;
}

export interface EventRecorder {
  /** Records a Kubernetes Event; failures are logged, never thrown. */
  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/** A store that also tells of changes: what an informer gives the controller. */
export interface Source<T> extends Store<T> {
  addHandler(handler: (event: WatchEvent<T>) => void): () => void;
}
