// What the audit integration tests share on top of ../operator/support.ts: bare pods pinned
// to one node of a test's own pool, a policy's audit status, label edits, the PlacementViolation
// Events of a pod, and the operator's metrics.
import {
  deployment,
  HOSTNAME,
  makePool,
  podSpec,
  policy,
  policyStatus,
  REQ,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
  type Pool,
  type Scope,
} from '../operator/support.ts';

export interface Sample {
  readonly pod: string;
  readonly node: string;
  readonly rule: string;
  readonly source: string;
  readonly message: string;
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

/** The fields of a policy's status the audit fills in. */
export interface AuditStatus {
  readonly violations?: number;
  readonly violationSample?: readonly Sample[];
  readonly lastAuditTime?: string;
  readonly conditions?: readonly Condition[];
}

export async function auditStatus(c: Cluster, ns: string, name: string): Promise<AuditStatus> {
  return (await policyStatus(c, ns, name)).status;
}

export const conditionOf = (s: AuditStatus, type: string): Condition | undefined =>
  s.conditions?.find((x) => x.type === type);

/** Waits until the policy's status satisfies `ok`; the last status is in the failure message. */
export async function waitStatus(
  c: Cluster,
  ns: string,
  name: string,
  what: string,
  ok: (s: AuditStatus) => boolean,
  timeoutMs = 30_000,
): Promise<AuditStatus> {
  let last: AuditStatus = {};
  try {
    return await waitFor(
      `${ns}/${name}: ${what}`,
      async () => {
        last = await auditStatus(c, ns, name);
        return ok(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status ${JSON.stringify(last)}`);
  }
}

/** The pod spec parts that put a pod on `node` of `pool` (its toleration, its nodeSelector). */
export function onNode(pool: Pool, node: string): JsonObject {
  const nodeSelector = pool.podSpec['nodeSelector'] as JsonObject;
  return { ...pool.podSpec, nodeSelector: { ...nodeSelector, [HOSTNAME]: node } };
}

/** A bare Pod on one node of the pool. */
export function barePod(
  ns: string,
  name: string,
  labels: Record<string, string>,
  pool: Pool,
  node: string,
): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: podSpec({ podSpec: onNode(pool, node) }),
  };
}

/** `kubectl label --overwrite`; a null value removes the label. */
export async function label(
  c: Cluster,
  kind: string,
  name: string,
  labels: Record<string, string | null>,
  ns?: string,
): Promise<void> {
  await c.kubectl(
    'label',
    kind,
    name,
    '--overwrite',
    ...(ns === undefined ? [] : ['-n', ns]),
    ...Object.entries(labels).map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`)),
  );
}

export interface PodInfo {
  readonly metadata: {
    readonly name: string;
    readonly uid: string;
    readonly labels?: Record<string, string>;
    readonly deletionTimestamp?: string;
  };
  readonly spec: { readonly nodeName?: string };
  readonly status: { readonly phase?: string };
}

/** Pods in `ns` with the label app=`app` (those being deleted included). */
export async function pods(c: Cluster, ns: string, app: string): Promise<PodInfo[]> {
  return (await c.json<{ items: PodInfo[] }>('get', 'pods', '-n', ns, '-l', `app=${app}`)).items;
}

export const running = (p: PodInfo): boolean =>
  p.status.phase === 'Running' && p.metadata.deletionTimestamp === undefined;

/** Waits until `n` pods of the app run (and none is being deleted); returns them. */
export async function waitRunning(
  c: Cluster,
  ns: string,
  app: string,
  n: number,
  timeoutMs = 60_000,
): Promise<PodInfo[]> {
  return waitFor(
    `${n} pod(s) app=${app} Running in ${ns}`,
    async () => {
      const list = await pods(c, ns, app);
      return list.length === n && list.every(running) ? list : undefined;
    },
    timeoutMs,
  );
}

export interface EventInfo {
  readonly reason: string;
  readonly message?: string;
  readonly note?: string;
  readonly type: string;
}

/** The PlacementViolation Events about one pod. */
export async function violationEvents(c: Cluster, ns: string, pod: string): Promise<EventInfo[]> {
  const events = await c.json<{ items: EventInfo[] }>(
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.name=${pod},reason=PlacementViolation`,
  );
  return events.items;
}

/** Seconds since `start` (ms), to one decimal: how long the audit took to tell. */
export const secondsSince = (start: number): number => Math.round((Date.now() - start) / 100) / 10;

/** A PlacementPolicy manifest whose one required podAffinity term is `term`. */
export function affinityPolicy(
  ns: string,
  name: string,
  targets: JsonObject,
  term: JsonObject,
  extra: JsonObject = {},
): JsonObject {
  return {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementPolicy',
    metadata: { name, namespace: ns },
    spec: {
      targets,
      affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } },
      ...extra,
    },
  };
}

/** A node label that lets follower pods onto a node. */
const FOLLOWER_OK = 'placement.dev/test-follower';

/**
 * Three nodes of a pool for eviction tests: n0 (zone-a) for anchor pods; n1 (zone-a) and n2
 * (zone-b) for followers (`followerSpec`). Followers start on n1, the only one in the anchors'
 * zone; swapping the zones of n1 and n2 leaves them in breach with a place to go.
 */
export async function zoneSwapPool(
  c: Cluster,
  s: Scope,
): Promise<{ pool: Pool; n0: string; n1: string; n2: string; followerSpec: JsonObject }> {
  const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b']);
  const [n0, n1, n2] = pool.nodes as [string, string, string];
  for (const n of [n1, n2]) await label(c, 'node', n, { [FOLLOWER_OK]: 'ok' });
  const nodeSelector = pool.podSpec['nodeSelector'] as JsonObject;
  const followerSpec = { ...pool.podSpec, nodeSelector: { ...nodeSelector, [FOLLOWER_OK]: 'ok' } };
  return { pool, n0, n1, n2, followerSpec };
}

/**
 * A Deployment whose pods must share a zone with an `anchor` pod (app=`anchor`), and the
 * policy `<app>-near-<anchor>` that says so too, in Audit mode (the template already carries
 * the term, so the policy's part is remediation: Evict).
 */
export function follower(
  ns: string,
  app: string,
  anchor: string,
  replicas: number,
  podSpec: JsonObject,
): JsonObject[] {
  const affinity = {
    podAffinity: {
      [REQ]: [{ labelSelector: { matchLabels: { app: anchor } }, topologyKey: ZONE }],
    },
  };
  return [
    deployment(ns, app, { replicas, affinity, podSpec }),
    policy(ns, `${app}-near-${anchor}`, {
      mode: 'Audit',
      targets: { selector: { matchLabels: { app } } },
      affinity,
      audit: { remediation: 'Evict', maxEvictionsPerMinute: 5 },
    }),
  ];
}
