import type { AffinityWrite, WriteResult } from '../api/cluster.ts';
import type { PlacementPolicy } from '../api/policy.ts';

/**
 * What the controller needs from the API, as interfaces it owns; src/kube implements them
 * with @kubernetes/client-node. Objects here are trimmed to the fields the operator uses.
 */

export interface WorkloadWriter {
  /** Writes the template affinity and annotation, guarded by the workload's resourceVersion. */
  writeAffinity(write: AffinityWrite): Promise<WriteResult>;
}

export interface PolicyStatusWriter {
  writeStatus(policy: PlacementPolicy, status: unknown): Promise<WriteResult>;
  setFinalizer(policy: PlacementPolicy, present: boolean): Promise<WriteResult>;
}
