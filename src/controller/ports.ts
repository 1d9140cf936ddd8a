import type { AffinityWrite, EventRecorder, Store, Workload, WriteResult } from '../api/cluster.ts';
import type { Labels } from '../api/core.ts';
import type { PlacementPolicy } from '../api/policy.ts';
import type { PolicyCatalog } from './policy-catalog.ts';

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

/** What the policy and exception reconcilers both read, and where they record Events. */
export interface CatalogReaderDeps {
  readonly workloads: Store<Workload>;
  readonly namespaceLabels: (namespace: string) => Labels;
  readonly catalog: PolicyCatalog;
  readonly events: EventRecorder;
}
