/**
 * Builders for the clusters unit tests describe: nodes, namespaces, pods and affinity terms
 * in the shape the API server serves them, and violations reduced to what a test compares.
 */
import type {
  Labels,
  LabelSelector,
  LabelSelectorRequirement,
  Namespace,
  Node,
  OwnerReference,
  Pod,
  PodAffinityTerm,
  WeightedPodAffinityTerm,
} from '../../src/api/core.ts';
import type { Workload } from '../../src/api/cluster.ts';
import {
  API_VERSION,
  type PlacementPolicy,
  type PlacementPolicySpec,
} from '../../src/api/policy.ts';
import {
  auditSnapshot,
  type AuditReport,
  type ClusterSnapshot,
  type Violation,
  type WorkloadObject,
} from '../../src/engine/index.ts';

export const HOSTNAME = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';

/** A node; its labels default to the hostname label alone. */
export function node(name: string, labels: Labels = { [HOSTNAME]: name }): Node {
  return { metadata: { name, labels } };
}

/** A node with a hostname and a zone label. */
export const nodeInZone = (name: string, zone: string): Node =>
  node(name, { [HOSTNAME]: name, [ZONE]: zone });

/** A namespace with the label the API server adds to every namespace, plus `labels`. */
export function namespace(name: string, labels: Labels = {}): Namespace {
  return { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export interface PodOptions {
  /** Default `default`. */
  readonly ns?: string;
  readonly labels?: Labels;
  /** `spec.nodeName`; the pod is unbound without it. */
  readonly node?: string;
  readonly affinity?: readonly PodAffinityTerm[];
  readonly anti?: readonly PodAffinityTerm[];
  readonly preferred?: readonly WeightedPodAffinityTerm[];
  readonly preferredAnti?: readonly WeightedPodAffinityTerm[];
  /** Default `Running` when bound, `Pending` otherwise. */
  readonly phase?: string;
  /** Sets `metadata.deletionTimestamp`. */
  readonly deleting?: boolean;
  readonly owner?: OwnerReference;
}

/** A pod as `kubectl get -o json` shows the fields the engine reads. */
export function pod(name: string, o: PodOptions = {}): Pod {
  const rules = (
    required: readonly PodAffinityTerm[] | undefined,
    preferred: readonly WeightedPodAffinityTerm[] | undefined,
  ) =>
    required === undefined && preferred === undefined
      ? undefined
      : {
          ...(required === undefined
            ? {}
            : { requiredDuringSchedulingIgnoredDuringExecution: required }),
          ...(preferred === undefined
            ? {}
            : { preferredDuringSchedulingIgnoredDuringExecution: preferred }),
        };
  const podAffinity = rules(o.affinity, o.preferred);
  const podAntiAffinity = rules(o.anti, o.preferredAnti);
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      labels: o.labels ?? {},
      ...(o.owner === undefined ? {} : { ownerReferences: [o.owner] }),
      ...(o.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      ...(o.node === undefined ? {} : { nodeName: o.node }),
      ...(podAffinity === undefined && podAntiAffinity === undefined
        ? {}
        : {
            affinity: {
              ...(podAffinity === undefined ? {} : { podAffinity }),
              ...(podAntiAffinity === undefined ? {} : { podAntiAffinity }),
            },
          }),
    },
    status: { phase: o.phase ?? (o.node === undefined ? 'Pending' : 'Running') },
  };
}

/** `{matchLabels}` */
export const labelsIn = (matchLabels: Labels): LabelSelector => ({ matchLabels });

/** `{matchExpressions: [...]}` from `[key, operator, values?]` triples. */
export function exprs(
  ...list: readonly (readonly [string, string, (readonly string[])?])[]
): LabelSelector {
  return {
    matchExpressions: list.map(([key, operator, values]): LabelSelectorRequirement =>
      values === undefined ? { key, operator } : { key, operator, values },
    ),
  };
}

/** A pod affinity term; `extra` holds namespaces, namespaceSelector, (mis)matchLabelKeys. */
export function term(
  labelSelector: LabelSelector | null,
  topologyKey: string,
  extra: Omit<PodAffinityTerm, 'labelSelector' | 'topologyKey'> = {},
): PodAffinityTerm {
  return { labelSelector, topologyKey, ...extra };
}

export const weighted = (weight: number, podAffinityTerm: PodAffinityTerm) => ({
  weight,
  podAffinityTerm,
});

export const replicaSetOwner = (name: string): OwnerReference => ({
  kind: 'ReplicaSet',
  name,
  controller: true,
});

export function clusterPolicy(name: string, spec: PlacementPolicySpec): PlacementPolicy {
  return { apiVersion: API_VERSION, kind: 'ClusterPlacementPolicy', metadata: { name }, spec };
}

export function namespacedPolicy(
  ns: string,
  name: string,
  spec: PlacementPolicySpec,
): PlacementPolicy {
  return {
    apiVersion: API_VERSION,
    kind: 'PlacementPolicy',
    metadata: { name, namespace: ns },
    spec,
  };
}

export interface Cluster {
  readonly nodes?: readonly Node[];
  readonly namespaces?: readonly Namespace[];
  readonly pods?: readonly Pod[];
  readonly policies?: readonly PlacementPolicy[];
  readonly workloads?: readonly WorkloadObject[];
}

export const snapshotOf = (c: Cluster): ClusterSnapshot => ({
  nodes: c.nodes ?? [],
  namespaces: c.namespaces ?? [],
  pods: c.pods ?? [],
  policies: c.policies ?? [],
  workloads: c.workloads ?? [],
});

/** Audits a cluster that must be valid. */
export function audit(c: Cluster): AuditReport {
  const result = auditSnapshot(snapshotOf(c));
  if (result.kind === 'invalid') {
    throw new Error(`unexpected invalid input: ${result.errors.map((e) => e.message).join('; ')}`);
  }
  return result.report;
}

/** A violation as tests compare it: who, which rule, whose term, which term. */
export interface Tuple {
  readonly pod: string;
  readonly rule: Violation['rule'];
  readonly source: string;
  readonly term: number;
}

const tupleText = (t: Tuple): string => `${t.pod} ${t.rule} ${t.source} ${t.term}`;

/** Sorted, so that tests compare multisets. */
export function sortTuples(list: readonly Tuple[]): Tuple[] {
  return [...list].sort((a, b) => (tupleText(a) < tupleText(b) ? -1 : 1));
}

export const tuplesOf = (violations: readonly Violation[]): Tuple[] =>
  sortTuples(violations.map(({ pod, rule, source, term }) => ({ pod, rule, source, term })));

/** A rolled-out Deployment as the operator's informer caches it. */
export const cachedDeployment = (
  ns: string,
  name: string,
  labels: Labels,
  extra: Partial<Workload> = {},
): Workload => ({
  kind: 'Deployment',
  namespace: ns,
  name,
  uid: `uid-${name}`,
  resourceVersion: '1',
  generation: 1,
  annotations: {},
  ownerReferences: [],
  selector: { matchLabels: labels },
  templateLabels: labels,
  affinity: undefined,
  rolledOut: true,
  replicas: 1,
  ...extra,
});
