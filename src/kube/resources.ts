/** The resources the operator watches: where they are served, how they are trimmed and keyed. */
import type { Namespace, Node, Pod } from '../api/core.ts';
import { GROUP, VERSION, type PolicyKind, type WorkloadKind } from '../api/policy.ts';
import {
  exceptionTransform,
  metaKey,
  policyTransform,
  trimNamespace,
  trimNode,
  trimPod,
  workloadTransform,
} from './transforms.ts';
import type { CachedException, CachedPolicy } from './types.ts';
import { workloadKey, type Workload } from '../api/cluster.ts';

export interface Resource<T> {
  /** `/api/v1` or `/apis/<group>/<version>`. */
  readonly groupVersion: string;
  readonly plural: string;
  readonly namespaced: boolean;
  readonly transform: (raw: unknown) => T | undefined;
  readonly key: (object: T) => string;
}

/** The collection path: across all namespaces, or in one. */
export function collectionPath(
  resource: Pick<Resource<unknown>, 'groupVersion' | 'plural' | 'namespaced'>,
  namespace?: string,
): string {
  if (namespace === undefined || !resource.namespaced) {
    return `${resource.groupVersion}/${resource.plural}`;
  }
  return `${resource.groupVersion}/namespaces/${encodeURIComponent(namespace)}/${resource.plural}`;
}

export const PODS: Resource<Pod> = {
  groupVersion: '/api/v1',
  plural: 'pods',
  namespaced: true,
  transform: trimPod,
  key: metaKey,
};

export const NODES: Resource<Node> = {
  groupVersion: '/api/v1',
  plural: 'nodes',
  namespaced: false,
  transform: trimNode,
  key: metaKey,
};

export const NAMESPACES: Resource<Namespace> = {
  groupVersion: '/api/v1',
  plural: 'namespaces',
  namespaced: false,
  transform: trimNamespace,
  key: metaKey,
};

/** API coordinates of each workload kind. */
export const WORKLOAD_API: Readonly<
  Record<WorkloadKind, { groupVersion: string; plural: string }>
> = {
  Deployment: { groupVersion: '/apis/apps/v1', plural: 'deployments' },
  StatefulSet: { groupVersion: '/apis/apps/v1', plural: 'statefulsets' },
  ReplicaSet: { groupVersion: '/apis/apps/v1', plural: 'replicasets' },
  DaemonSet: { groupVersion: '/apis/apps/v1', plural: 'daemonsets' },
  CronJob: { groupVersion: '/apis/batch/v1', plural: 'cronjobs' },
};

/** The informer resource for one workload kind; keys are ports.ts's `Kind/namespace/name`. */
export function workloads(kind: WorkloadKind): Resource<Workload> {
  return {
    ...WORKLOAD_API[kind],
    namespaced: true,
    transform: workloadTransform(kind),
    key: workloadKey,
  };
}

export const POLICY_PLURAL: Readonly<Record<PolicyKind, string>> = {
  PlacementPolicy: 'placementpolicies',
  ClusterPlacementPolicy: 'clusterplacementpolicies',
};

export function policies(kind: PolicyKind): Resource<CachedPolicy> {
  return {
    groupVersion: `/apis/${GROUP}/${VERSION}`,
    plural: POLICY_PLURAL[kind],
    namespaced: kind === 'PlacementPolicy',
    transform: policyTransform(kind),
    key: metaKey,
  };
}

export const EXCEPTION_PLURAL = 'placementexceptions';

/** PlacementExceptions, every namespace; keys are `namespace/name`. */
export const EXCEPTIONS: Resource<CachedException> = {
  groupVersion: `/apis/${GROUP}/${VERSION}`,
  plural: EXCEPTION_PLURAL,
  namespaced: true,
  transform: exceptionTransform,
  key: metaKey,
};
