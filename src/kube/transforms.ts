/**
 * Trimming transforms: each turns a full API object into the few fields the operator reads,
 * before it is cached. At 150,000 pods the cache holds these small objects only; the raw
 * object (managedFields, status, containers, ...) becomes garbage at once.
 *
 * Long because every cached kind (pods, nodes, namespaces, each workload kind, policies,
 * exceptions) has its own transform, and they share the field readers at the top; keeping
 * them together lists in one file all that the cache holds.
 */
import type {
  Affinity,
  LabelSelector,
  Namespace,
  Node,
  OwnerReference,
  Pod,
  Taint,
  Toleration,
  TopologySpreadConstraint,
} from '../api/core.ts';
import { EXCEPTION_KIND } from '../api/exception.ts';
import { API_VERSION, type PolicyKind, type WorkloadKind } from '../api/policy.ts';
import { int, isRecord, record, stringMap, text, type JsonRecord } from './json.ts';
import type { RolloutStrategy, Workload } from '../api/cluster.ts';
import type { CachedException, CachedPolicy } from './types.ts';
import { SharedStrings, SharedValues } from './shared-values.ts';

/** Only annotations under this prefix are cached: others (last-applied-configuration!) can be huge. */
export const CACHED_ANNOTATION_PREFIX = 'placement.dev/';

type Loose<T> = { [K in keyof T]: T[K] | undefined };

/** The object without its undefined values, so optional fields are absent, not undefined. */
function compact<T extends object>(value: Loose<T>): T {
  const out: Record<string, unknown> = {};
  // for-in, not Object.entries: no array per entry, for every cached object (150,000 pods).
  for (const key in value) {
    const v = value[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}

const ownerReferences = (value: unknown): readonly OwnerReference[] | undefined =>
  shared.ownerReferences.shareParsed(value, readOwnerReferences);

function readOwnerReferences(value: unknown): readonly OwnerReference[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const refs: OwnerReference[] = [];
  for (const item of value) {
    const ref = record(item);
    const kind = text(ref['kind']);
    const name = text(ref['name']);
    if (kind === undefined || name === undefined) continue;
    refs.push(
      compact<OwnerReference>({ kind, name, controller: ref['controller'] === true || undefined }),
    );
  }
  return refs.length > 0 ? refs : undefined;
}

/**
 * What the replicas of one template have in common, held once for all of them (see
 * shared-values.ts). The bounds cover the replicas listed together and the objects that
 * recur everywhere (namespaces, nodes, phases).
 */
const shared = {
  /** Namespaces and node names. */
  names: new SharedStrings(16_384),
  labelValues: new SharedStrings(16_384),
  labels: new SharedValues<Readonly<Record<string, string>>>(4096),
  ownerReferences: new SharedValues<readonly OwnerReference[]>(4096),
  affinities: new SharedValues<Affinity>(1024),
  nodeSelectors: new SharedValues<Readonly<Record<string, string>>>(1024),
  spreadConstraints: new SharedValues<TopologySpreadConstraint[]>(1024),
  tolerations: new SharedValues<Toleration[]>(1024),
  phases: new SharedValues<{ readonly phase: string }>(64),
};

/**
 * The API server validated it as a core Affinity; it is kept as parsed, one copy for the
 * replicas that carry the same one.
 */
const affinityOf = (value: unknown): Affinity | undefined =>
  shared.affinities.shareParsed(value, (raw) => (isRecord(raw) ? raw : undefined));

/** A pod's labels: one copy of each value, and one map for the replicas that carry the same. */
const podLabels = (value: unknown): Readonly<Record<string, string>> | undefined =>
  shared.labels.shareParsed(value, readLabels);

function readLabels(value: unknown): Readonly<Record<string, string>> | undefined {
  if (!isRecord(value)) return undefined;
  let out: Record<string, string> | undefined;
  for (const key in value) {
    const v = value[key];
    if (typeof v !== 'string') continue;
    out ??= {};
    out[key] = shared.labelValues.share(v);
  }
  return out;
}

const nonEmpty = <T extends object>(value: T): T | undefined =>
  Object.keys(value).length === 0 ? undefined : value;

/** Likewise a LabelSelector, validated by the API server. */
const selectorOf = (value: unknown): LabelSelector | undefined =>
  isRecord(value) ? value : undefined;

/** An object's body, metadata, name and namespace; undefined without a name or a namespace. */
function namespaced(
  raw: unknown,
):
  | { obj: Record<string, unknown>; meta: Record<string, unknown>; name: string; namespace: string }
  | undefined {
  const obj = record(raw);
  const meta = record(obj['metadata']);
  const name = text(meta['name']);
  const namespace = text(meta['namespace']);
  return name === undefined || namespace === undefined ? undefined : { obj, meta, name, namespace };
}

/**
 * Pod → namespace, name, uid, labels, `placement.dev/` annotations, owners, node, phase,
 * deletion, affinity, nodeSelector, tolerations, topology spread, resourceVersion.
 */
export function trimPod(raw: unknown): Pod | undefined {
  const named = namespaced(raw);
  if (named === undefined) return undefined;
  const { obj, meta, name, namespace } = named;
  const spec = record(obj['spec']);
  const phase = text(record(obj['status'])['phase']);
  return compact<Pod>({
    metadata: compact<Pod['metadata']>({
      name,
      namespace: shared.names.share(namespace),
      uid: text(meta['uid']),
      labels: podLabels(meta['labels']),
      annotations: nonEmpty(placementAnnotations(meta['annotations'])),
      ownerReferences: ownerReferences(meta['ownerReferences']),
      deletionTimestamp: text(meta['deletionTimestamp']),
      resourceVersion: text(meta['resourceVersion']),
    }),
    spec: compact<Pod['spec']>({
      nodeName: shared.names.share(text(spec['nodeName'])),
      affinity: affinityOf(spec['affinity']),
      nodeSelector: shared.nodeSelectors.shareParsed(spec['nodeSelector'], stringMap),
      tolerations: tolerationsOf(spec['tolerations']),
      topologySpreadConstraints: shared.spreadConstraints.shareParsed(
        spec['topologySpreadConstraints'],
        spreadConstraintsOf,
      ),
    }),
    status: phase === undefined ? undefined : shared.phases.share(phase, { phase }),
  });
}

/** Node or Namespace → name, labels (and resourceVersion, so a relist can skip unchanged ones). */
export function trimLabelled(raw: unknown): Node | Namespace | undefined {
  const meta = record(record(raw)['metadata']);
  const name = text(meta['name']);
  if (name === undefined) return undefined;
  return {
    metadata: compact<Node['metadata']>({
      name,
      labels: stringMap(meta['labels']),
      resourceVersion: text(meta['resourceVersion']),
    }),
  };
}

/** Node → name, labels, resourceVersion, and what keeps pods off it (taints, cordon). */
export function trimNode(raw: unknown): Node | undefined {
  const node = trimLabelled(raw);
  if (node === undefined) return undefined;
  const spec = record(record(raw)['spec']);
  const taints = Array.isArray(spec['taints']) ? spec['taints'].flatMap(taintOf) : [];
  const unschedulable = spec['unschedulable'] === true;
  if (taints.length === 0 && !unschedulable) return node;
  return {
    ...node,
    spec: { ...(taints.length > 0 ? { taints } : {}), ...(unschedulable ? { unschedulable } : {}) },
  };
}

/** A taint that can keep a pod off (PreferNoSchedule only scores, so it is not kept). */
function taintOf(raw: unknown): Taint[] {
  const t = record(raw);
  const key = text(t['key']);
  const effect = text(t['effect']);
  if (key === undefined || effect === undefined || effect === 'PreferNoSchedule') return [];
  const value = text(t['value']);
  return [{ key, effect, ...(value === undefined || value === '' ? {} : { value }) }];
}

/**
 * A template's topologySpreadConstraints, whole and as stored: what policies injected is
 * taken out of them by exact match, so nothing may be trimmed.
 */
function spreadConstraintsOf(raw: unknown): TopologySpreadConstraint[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  return raw.filter(isRecord) as unknown as TopologySpreadConstraint[];
}

/**
 * A template's or pod's tolerations, as the scheduler's filters read them (read-only); the
 * API server gives nearly every pod the same two (not-ready and unreachable).
 */
const tolerationsOf = (raw: unknown): Toleration[] | undefined =>
  shared.tolerations.shareParsed(raw, readTolerations);

function readTolerations(raw: unknown): Toleration[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  const read = raw.map((item) => {
    const t = record(item);
    return compact<Toleration>({
      key: text(t['key']),
      operator: text(t['operator']),
      value: text(t['value']),
      effect: text(t['effect']),
    });
  });
  return read;
}
export const trimNamespace: (raw: unknown) => Namespace | undefined = trimLabelled;

/** Where the pod template sits: CronJobs nest it under the job template. */
export function podTemplateOf(kind: WorkloadKind, spec: JsonRecord): JsonRecord {
  if (kind === 'CronJob') return record(record(record(spec['jobTemplate'])['spec'])['template']);
  return record(spec['template']);
}

/** The trimming transform for one workload kind. */
export function workloadTransform(kind: WorkloadKind): (raw: unknown) => Workload | undefined {
  return (raw) => {
    const named = namespaced(raw);
    if (named === undefined) return undefined;
    const { obj, meta, name, namespace } = named;
    const spec = record(obj['spec']);
    const template = podTemplateOf(kind, spec);
    const generation = int(meta['generation']) ?? 0;
    const selectorSource =
      kind === 'CronJob'
        ? record(record(spec['jobTemplate'])['spec'])['selector']
        : spec['selector'];
    return {
      kind,
      namespace,
      name,
      uid: text(meta['uid']) ?? '',
      resourceVersion: text(meta['resourceVersion']) ?? '',
      generation,
      annotations: placementAnnotations(meta['annotations']),
      ownerReferences: ownerReferences(meta['ownerReferences']) ?? [],
      selector: selectorOf(selectorSource),
      templateLabels: stringMap(record(template['metadata'])['labels']) ?? {},
      affinity: affinityOf(record(template['spec'])['affinity']),
      ...compact({
        nodeSelector: stringMap(record(template['spec'])['nodeSelector']),
        tolerations: tolerationsOf(record(template['spec'])['tolerations']),
        topologySpreadConstraints: spreadConstraintsOf(
          record(template['spec'])['topologySpreadConstraints'],
        ),
      }),
      rolledOut: rolledOut(kind, generation, spec, record(obj['status'])),
      replicas: desiredReplicas(kind, spec, record(obj['status'])),
      ...stalled(kind, generation, record(obj['status'])),
      ...rolloutOf(kind, spec),
    };
  };
}

const intOrPercent = (value: unknown): number | string | undefined =>
  typeof value === 'number' || typeof value === 'string' ? value : undefined;

/** The update strategy as written; the engine applies the controllers' defaults. */
function rolloutOf(kind: WorkloadKind, spec: JsonRecord): { rollout?: RolloutStrategy } {
  if (kind !== 'Deployment' && kind !== 'StatefulSet' && kind !== 'DaemonSet') return {};
  const strategy = record(kind === 'Deployment' ? spec['strategy'] : spec['updateStrategy']);
  const rolling = record(strategy['rollingUpdate']);
  const rollout = compact<RolloutStrategy>({
    type: text(strategy['type']),
    maxSurge: intOrPercent(rolling['maxSurge']),
    maxUnavailable: intOrPercent(rolling['maxUnavailable']),
    partition: int(rolling['partition']),
    podManagementPolicy: text(spec['podManagementPolicy']),
  });
  // Nothing written: the cache keeps nothing, and the engine applies the defaults.
  return Object.keys(rollout).length === 0 ? {} : { rollout };
}

/**
 * A Deployment whose controller gave up waiting for its current rollout: condition
 * Progressing=False with reason ProgressDeadlineExceeded, for the current generation.
 */
function stalled(
  kind: WorkloadKind,
  generation: number,
  status: JsonRecord,
): { rolloutStalled?: string } {
  if (kind !== 'Deployment' || (int(status['observedGeneration']) ?? 0) < generation) return {};
  const conditions = Array.isArray(status['conditions']) ? status['conditions'] : [];
  for (const raw of conditions) {
    const c = record(raw);
    if (
      c['type'] === 'Progressing' &&
      c['status'] === 'False' &&
      c['reason'] === 'ProgressDeadlineExceeded'
    ) {
      return { rolloutStalled: text(c['message']) ?? 'ProgressDeadlineExceeded' };
    }
  }
  return {};
}

function placementAnnotations(value: unknown): Readonly<Record<string, string>> {
  const all = stringMap(value) ?? {};
  const kept: Record<string, string> = {};
  for (const [key, v] of Object.entries(all)) {
    if (key.startsWith(CACHED_ANNOTATION_PREFIX)) kept[key] = v;
  }
  return kept;
}

/**
 * Whether the workload's controller has finished rolling out its current template, judged
 * from status the way `kubectl rollout status` does for each kind.
 */
export function rolledOut(
  kind: WorkloadKind,
  generation: number,
  spec: JsonRecord,
  status: JsonRecord,
): boolean {
  if (kind === 'CronJob') return true; // each Job takes the template when it starts
  const observed = (int(status['observedGeneration']) ?? 0) >= generation;
  const count = (field: string): number => int(status[field]) ?? 0;
  const desired = int(spec['replicas']) ?? 1; // the API's default
  switch (kind) {
    case 'Deployment':
      return (
        observed &&
        count('updatedReplicas') === desired &&
        count('availableReplicas') === desired &&
        // no pod of an old ReplicaSet left
        count('replicas') === count('updatedReplicas')
      );
    case 'StatefulSet':
      return (
        observed &&
        (status['updateRevision'] === status['currentRevision'] ||
          count('updatedReplicas') === desired)
      );
    case 'DaemonSet':
      return (
        observed &&
        count('updatedNumberScheduled') === count('desiredNumberScheduled') &&
        count('numberAvailable') === count('desiredNumberScheduled')
      );
    case 'ReplicaSet':
      return observed;
  }
}

/** How many pods the workload wants: spec.replicas (default 1), a DaemonSet's scheduled nodes. */
export function desiredReplicas(kind: WorkloadKind, spec: JsonRecord, status: JsonRecord): number {
  if (kind === 'DaemonSet') return int(status['desiredNumberScheduled']) ?? 0;
  if (kind === 'CronJob') return 1;
  return int(spec['replicas']) ?? 1;
}

/** The trimming transform for PlacementPolicy or ClusterPlacementPolicy. */
export function policyTransform(kind: PolicyKind): (raw: unknown) => CachedPolicy | undefined {
  return (raw) => {
    const obj = record(raw);
    const meta = record(obj['metadata']);
    const name = text(meta['name']);
    if (name === undefined) return undefined;
    const finalizers = Array.isArray(meta['finalizers'])
      ? meta['finalizers'].filter((f): f is string => typeof f === 'string')
      : undefined;
    return compact<CachedPolicy>({
      // Constant: list items carry no apiVersion, watch events do; the cache must not differ.
      apiVersion: API_VERSION,
      kind,
      metadata: compact<CachedPolicy['metadata']>({
        name,
        namespace: kind === 'PlacementPolicy' ? text(meta['namespace']) : undefined,
        uid: text(meta['uid']),
        generation: int(meta['generation']),
        resourceVersion: text(meta['resourceVersion']) ?? '',
        deletionTimestamp: text(meta['deletionTimestamp']),
        finalizers,
      }),
      // Schema-checked by the CRD; the controller validates the rest and reports in status.
      spec: record(obj['spec']),
      status: isRecord(obj['status']) ? obj['status'] : undefined,
    });
  };
}

/** The trimming transform for PlacementException: identity, spec and status (all small). */
export function exceptionTransform(raw: unknown): CachedException | undefined {
  const named = namespaced(raw);
  if (named === undefined) return undefined;
  const { obj, meta, name, namespace } = named;
  return compact<CachedException>({
    apiVersion: API_VERSION,
    kind: EXCEPTION_KIND,
    metadata: compact<CachedException['metadata']>({
      name,
      namespace,
      uid: text(meta['uid']),
      generation: int(meta['generation']),
      resourceVersion: text(meta['resourceVersion']) ?? '',
      deletionTimestamp: text(meta['deletionTimestamp']),
    }),
    // Schema-checked by the CRD; the controller validates the rest and reports in status.
    spec: record(obj['spec']) as unknown as CachedException['spec'],
    status: isRecord(obj['status']) ? obj['status'] : undefined,
  });
}

/** `namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKey). */
export const objectKey = (namespace: string | undefined, name: string): string =>
  namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;

export const metaKey = (obj: {
  readonly metadata: { readonly name: string; readonly namespace?: string };
}): string => objectKey(obj.metadata.namespace, obj.metadata.name);
