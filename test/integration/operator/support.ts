// What the operator integration tests share: the cluster with the CRDs installed, a cleanup
// scope per test, namespaces and fake nodes of its own, workload and policy manifests, an
// operator process (as the chart's ServiceAccount, on the chart's Lease), and readers for
// what the tests assert on.
//
// Every test owns what it creates. Cleanup runs after the test, operators first (so that no
// operator is left reacting to the deletions), then everything else in reverse order.
import assert from 'node:assert/strict';
import { fakeNodeManifest } from '../../cluster/fake-node.ts';
import { readVersions } from '../../cluster/paths.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseAllDocuments } from 'yaml';

import {
  cluster,
  installCrds,
  metricValue,
  operatorAccount,
  scrape,
  startOperator,
  uniqueName,
  waitFor,
  type Cluster,
  type OperatorProcess,
} from '../harness.ts';

export const HOSTNAME = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';
export const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';
export const PREF = 'preferredDuringSchedulingIgnoredDuringExecution';
export const APPLIED = 'placement.dev/applied';
export const FINALIZER = 'placement.dev/finalizer';
/** On every namespace and node these tests create. */
export const TEST_LABEL = 'placement.dev/test';
export const POOL_KEY = 'placement.dev/test-pool';
const EXAMPLES = join(import.meta.dirname, '..', '..', '..', 'examples');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

// --------------------------------------------------------------------- scope

/** Cleanups of one test: operators stop first, then the rest runs in reverse order. */
export class Scope {
  readonly #operators: (() => Promise<unknown>)[] = [];
  readonly #cleanups: (() => Promise<unknown>)[] = [];

  constructor(t: TestContext) {
    t.after(async () => {
      for (const fn of [...this.#operators.reverse(), ...this.#cleanups.reverse()]) {
        try {
          await fn();
        } catch (error) {
          process.stderr.write(
            `cleanup: ${error instanceof Error ? error.message : String(error)}\n`,
          );
        }
      }
    });
  }

  defer(fn: () => Promise<unknown>): void {
    this.#cleanups.push(fn);
  }

  deferOperator(fn: () => Promise<unknown>): void {
    this.#operators.push(fn);
  }
}

export interface ClusterTestOptions {
  readonly timeout?: number;
  /** A fresh namespace for the test, named from this prefix (deleted after it). */
  readonly namespace?: string;
  /** Labels of that namespace. */
  readonly labels?: Record<string, string>;
}

/** What a cluster test's body is handed: its context, the cluster and its cleanup scope. */
export interface ClusterTestEnv {
  readonly t: TestContext;
  readonly c: Cluster;
  readonly s: Scope;
}

/**
 * The opening every integration test shares: a top-level test on the shared cluster with
 * the CRDs served, a cleanup scope, and with `namespace`, a fresh namespace (`ns`).
 */
export function clusterTest(
  name: string,
  options: ClusterTestOptions & { readonly namespace: string },
  body: (env: ClusterTestEnv & { readonly ns: string }) => Promise<void>,
): void;
export function clusterTest(
  name: string,
  options: ClusterTestOptions,
  body: (env: ClusterTestEnv) => Promise<void>,
): void;
export function clusterTest(
  name: string,
  options: ClusterTestOptions,
  body: (env: ClusterTestEnv & { readonly ns: string }) => Promise<void>,
): void {
  void test(name, options.timeout === undefined ? {} : { timeout: options.timeout }, async (t) => {
    const c = await cluster();
    await installCrds(c);
    const s = new Scope(t);
    const ns =
      options.namespace === undefined
        ? ''
        : await makeNamespace(c, s, options.namespace, options.labels);
    await body({ t, c, s, ns });
  });
}

// ---------------------------------------------------------------- namespaces

/** A fresh namespace, deleted after the test with everything in it. */
export async function makeNamespace(
  c: Cluster,
  s: Scope,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = uniqueName(prefix);
  await c.apply(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { [TEST_LABEL]: 'operator', ...labels } },
    }),
  );
  s.defer(() => dropNamespace(c, name));
  // Pods are refused until the namespace's default ServiceAccount exists.
  await waitFor(`default ServiceAccount in ${name}`, async () =>
    (await c.kubectl('get', 'serviceaccount', 'default', '-n', name, '-o', 'name')).trim() !== ''
      ? true
      : undefined,
  );
  return name;
}

/**
 * Deletes a namespace without leaving work for the next test's operator: finalizers of
 * policies whose operator is gone are dropped, and workloads are deleted at once (their
 * records of injected terms would otherwise be reverted by whichever operator runs next).
 */
async function dropNamespace(c: Cluster, ns: string): Promise<void> {
  const policies = await c.json<{ items: { metadata: { name: string; finalizers?: string[] } }[] }>(
    'get',
    'placementpolicies',
    '-n',
    ns,
  );
  for (const p of policies.items) {
    if ((p.metadata.finalizers ?? []).length === 0) continue;
    await c.kubectl(
      'patch',
      'placementpolicy',
      p.metadata.name,
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    );
  }
  await c.kubectl(
    'delete',
    'deployments,statefulsets,daemonsets,replicasets,cronjobs,jobs,pods',
    '--all',
    '-n',
    ns,
    '--wait=false',
  );
  await c.kubectl('delete', 'namespace', ns, '--wait=false');
}

// --------------------------------------------------------------------- nodes

/** Fake nodes only this test's pods go to: a unique taint keeps others off, a label draws ours. */
export interface Pool {
  readonly id: string;
  readonly nodes: readonly string[];
  /** Merge into a pod spec: the toleration and the nodeSelector. */
  readonly podSpec: JsonObject;
}

/** Creates `zones.length` KWOK nodes (one per zone given) and waits until they are Ready. */
export async function makePool(c: Cluster, s: Scope, zones: readonly string[]): Promise<Pool> {
  const id = uniqueName('pool');
  const nodes = zones.map((zone, i) =>
    fakeNodeManifest({
      name: `${id}-node-${i}`,
      labels: {
        [ZONE]: zone,
        'topology.kubernetes.io/region': 'region-1',
        [TEST_LABEL]: 'operator',
        [POOL_KEY]: id,
      },
      taints: [{ key: POOL_KEY, value: id, effect: 'NoSchedule' }],
      capacity: { cpu: '16', memory: '64Gi', pods: '110' },
      kubeletVersion: readVersions().kubernetes,
    }),
  );
  const names = nodes.map((n) => n.metadata.name);
  s.defer(() => c.kubectl('delete', 'nodes', ...names, '--wait=false', '--ignore-not-found'));
  await c.apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: nodes }));
  await waitFor(
    `nodes ${names.join(', ')} Ready`,
    async () => {
      const list = await c.json<{
        items: {
          spec?: { taints?: { key: string }[] };
          status?: { conditions?: { type: string; status: string }[] };
        }[];
      }>('get', 'nodes', '-l', `${POOL_KEY}=${id}`);
      const ready = list.items.filter(
        (n) =>
          n.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') === true &&
          !(n.spec?.taints ?? []).some((x) => x.key.startsWith('node.kubernetes.io/')),
      );
      return ready.length === names.length ? true : undefined;
    },
    60_000,
  );
  return {
    id,
    nodes: names,
    podSpec: {
      tolerations: [{ key: POOL_KEY, operator: 'Equal', value: id, effect: 'NoSchedule' }],
      nodeSelector: { [POOL_KEY]: id },
    },
  };
}

// ----------------------------------------------------------------- manifests

export interface WorkloadOptions {
  readonly replicas?: number;
  /** Pod template labels (also the selector's matchLabels unless `selector` is given). */
  readonly labels?: Record<string, string>;
  readonly selector?: Record<string, string>;
  readonly affinity?: JsonObject;
  /** Merged into the pod spec (a pool's toleration and nodeSelector, say). */
  readonly podSpec?: JsonObject;
  /** Merged into the workload's spec. */
  readonly spec?: JsonObject;
}

export function podSpec(o: WorkloadOptions, restartPolicy?: string): JsonObject {
  return {
    containers: [
      {
        name: 'app',
        image: 'registry.example/app:1.0',
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      },
    ],
    ...(restartPolicy === undefined ? {} : { restartPolicy }),
    ...(o.affinity === undefined ? {} : { affinity: o.affinity }),
    ...(o.podSpec ?? {}),
  };
}

/** A Deployment, StatefulSet, DaemonSet, CronJob or Job manifest. */
export function workload(
  kind: 'Deployment' | 'StatefulSet' | 'ReplicaSet' | 'DaemonSet' | 'CronJob' | 'Job',
  ns: string,
  name: string,
  o: WorkloadOptions = {},
): JsonObject {
  const labels = o.labels ?? { app: name };
  const template = {
    metadata: { labels },
    spec: podSpec(o, kind === 'CronJob' || kind === 'Job' ? 'Never' : undefined),
  };
  const selector = { matchLabels: o.selector ?? labels };
  const apiVersion = kind === 'CronJob' || kind === 'Job' ? 'batch/v1' : 'apps/v1';
  let spec: JsonObject;
  switch (kind) {
    case 'Deployment':
    case 'ReplicaSet':
      spec = { replicas: o.replicas ?? 1, selector, template };
      break;
    case 'StatefulSet':
      spec = { replicas: o.replicas ?? 1, serviceName: name, selector, template };
      break;
    case 'DaemonSet':
      spec = { selector, template };
      break;
    case 'Job':
      spec = { template };
      break;
    case 'CronJob':
      // Never due: the test looks at the template, not at the Jobs.
      spec = { schedule: '0 0 1 1 *', suspend: true, jobTemplate: { spec: { template } } };
      break;
  }
  return {
    apiVersion,
    kind,
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { ...spec, ...(o.spec ?? {}) },
  };
}

export const deployment = (ns: string, name: string, o: WorkloadOptions = {}): JsonObject =>
  workload('Deployment', ns, name, o);

export function policy(
  ns: string | undefined,
  name: string,
  spec: JsonObject,
  kind = 'PlacementPolicy',
): JsonObject {
  return {
    apiVersion: 'placement.dev/v1alpha1',
    kind,
    metadata: { name, ...(ns === undefined ? {} : { namespace: ns }) },
    spec,
  };
}

/** The documents of an examples/ file, parsed. */
export function example(path: string): JsonObject[] {
  return parseAllDocuments(readFileSync(join(EXAMPLES, path), 'utf8'))
    .map((d) => d.toJS() as JsonObject | null)
    .filter((d): d is JsonObject => d !== null);
}

/**
 * The seed workloads of one file, moved into `ns` and onto the pool. `strategy` is the
 * owner's choice: on exactly two nodes a surge pod of a one-per-node Deployment has nowhere
 * to go, so owners of such Deployments roll them with Recreate.
 */
export function seedWorkloads(
  file: string,
  ns: string,
  pool: Pool,
  strategy?: JsonObject,
): JsonObject[] {
  return example(file)
    .filter((d) => d['kind'] === 'Deployment')
    .map((d) => {
      const meta = d['metadata'] as JsonObject;
      const spec = d['spec'] as JsonObject;
      const template = spec['template'] as JsonObject;
      return {
        ...d,
        metadata: { ...meta, namespace: ns },
        spec: {
          ...spec,
          ...(strategy === undefined ? {} : { strategy }),
          template: {
            ...template,
            spec: { ...(template['spec'] as JsonObject), ...pool.podSpec },
          },
        },
      };
    });
}

/** The policies of one examples/ file, moved into `ns`. */
export function seedPolicies(file: string, ns: string): JsonObject[] {
  return example(file).map((d) => ({
    ...d,
    metadata: { ...(d['metadata'] as JsonObject), namespace: ns },
  }));
}

/**
 * Deletes the operator's MutatingAdmissionPolicy and its binding after the test: they outlive
 * the operator when its policies do (they keep their finalizer once it stops), and no later
 * test may run under them.
 */
export function deferAdmissionPolicy(c: Cluster, s: Scope): void {
  s.defer(() => removeAdmissionPolicy(c));
}

/** Deletes the operator's MutatingAdmissionPolicy and its binding, if there. */
const removeAdmissionPolicy = (c: Cluster): Promise<string> =>
  c.kubectl(
    'delete',
    'mutatingadmissionpolicybinding,mutatingadmissionpolicy',
    'placement.dev-injection',
    '--ignore-not-found',
  );

/**
 * Deletes the ClusterPlacementPolicy `name` after the test, its finalizer dropped first (the
 * operator that would release it is stopped by then).
 */
export function deferClusterPolicy(c: Cluster, s: Scope, name: string): void {
  s.defer(() =>
    c.kubectl('delete', 'clusterplacementpolicy', name, '--ignore-not-found', '--wait=false'),
  );
  s.defer(() =>
    c
      .kubectl(
        'patch',
        'clusterplacementpolicy',
        name,
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      )
      .catch(() => ''),
  );
}

export const list = (...items: JsonObject[]): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

// ------------------------------------------------------------------ operator

export interface Operator {
  readonly process: OperatorProcess;
  readonly lease: string;
  readonly identity: string;
  /** Workload writes so far: workload_writes + workload_reverts with result="written". */
  writes(): Promise<number>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Log lines whose message is `message`. */
  logged(message: string): Record<string, unknown>[];
}

export interface OperatorOptions {
  readonly identity?: string;
  /** Wait until this replica leads (default true unless --leader-elect=false is given). */
  readonly waitLeading?: boolean;
}

/** The Lease (by default one of its own in `default`) and an identity, as flags. */
export const leaseFlags = (lease: string, identity: string, namespace = 'default'): string[] => [
  '--lease-name',
  lease,
  '--lease-namespace',
  namespace,
  '--identity',
  identity,
];

/**
 * Starts the operator as a child process, as the chart's ServiceAccount; stopped (SIGTERM)
 * before the test's other cleanups. Every operator of the suite competes for the chart's one
 * Lease (its RBAC grants no other): replicas of one test share it on purpose, and a stopped
 * operator releases it, so the next test's operator takes it at once.
 */
export async function runOperator(
  c: Cluster,
  s: Scope,
  flags: readonly string[] = [],
  o: OperatorOptions = {},
): Promise<Operator> {
  const { lease, namespace } = operatorAccount(c);
  const identity = o.identity ?? uniqueName('op');
  const process = startOperator(c, ...leaseFlags(lease, identity, namespace), ...flags);
  s.deferOperator(async () => {
    if (process.child.exitCode === null && process.child.signalCode === null) await process.stop();
    // The admission policy outlives its operator on purpose (docs/operations.md); a test's
    // must not reach the next test's workloads before that test's operator rewrites it.
    await removeAdmissionPolicy(c).catch(() => '');
  });
  const op = operatorHandle(process, lease, identity);
  const electing = !flags.includes('--leader-elect=false');
  await waitFor(
    `operator ${identity} ${electing && o.waitLeading !== false ? 'leading' : 'synced'}`,
    () => {
      if (process.child.exitCode !== null) throw new Error(`operator exited: ${tail(process)}`);
      const want =
        electing && o.waitLeading !== false ? 'became leader; reconciling' : 'caches synced';
      return Promise.resolve(op.logged(want).length > 0 ? true : undefined);
    },
    60_000,
  );
  return op;
}

export function operatorHandle(
  process: OperatorProcess,
  lease: string,
  identity: string,
): Operator {
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
    metricValue((await scrape(process)).body, name, labels);
  return {
    process,
    lease,
    identity,
    metric,
    writes: async () => {
      const body = (await scrape(process)).body;
      return (
        metricValue(body, 'placement_workload_writes_total', { result: 'written' }) +
        metricValue(body, 'placement_workload_reverts_total', { result: 'written' })
      );
    },
    logged: (message) => process.logs.filter((l) => l['message'] === message),
  };
}

/**
 * Waits until `count` (a counter of the operator's: reconciles, audit passes, log lines about
 * one workload) has gone `by` past `from`: the operator has looked again since, so a write or
 * an Event that was going to come has come. What a test asserts did not happen, it asserts
 * after this, not after a fixed observation window. Returns the count reached.
 */
export async function waitAdvanced(
  what: string,
  count: () => Promise<number> | number,
  from: number,
  by = 1,
  timeoutMs = 90_000,
): Promise<number> {
  return waitFor(
    `${what} (${String(by)} past ${String(from)})`,
    async () => {
      const now = await count();
      return now >= from + by ? now : undefined;
    },
    timeoutMs,
  );
}

/** How many times the operator logged `message` about the workload `Kind/namespace/name`. */
export const loggedAbout = (op: Operator, message: string, workload: string): number =>
  op.logged(message).filter((l) => l['workload'] === workload).length;

/**
 * Waits until `by` more audit passes than now have finished, remediation included: an
 * eviction or an Event due by then has come. The operator needs a short --audit-interval
 * for passes to go on while nothing changes.
 */
export async function waitAuditPasses(op: OperatorProcess, by: number): Promise<number> {
  const passes = async (): Promise<number> =>
    metricValue((await scrape(op)).body, 'placement_audit_duration_seconds_count', {});
  return waitAdvanced(`${String(by)} more audit passes`, passes, await passes(), by);
}

/**
 * Waits until the operator has finished `by` more reconciles of each of `workloads`
 * (`Kind/namespace/name`) than so far: a resync has looked at them again. Needs
 * --log-level debug (a `Reconciled` line a reconcile).
 */
export async function waitReconciledAgain(
  op: Operator,
  workloads: readonly string[],
  by = 1,
): Promise<void> {
  const count = (key: string) => (): number =>
    op.logged('Reconciled').filter((l) => l['key'] === key).length;
  const from = workloads.map((key) => count(key)());
  for (const [i, key] of workloads.entries())
    await waitAdvanced(`${key} reconciled again`, count(key), from[i] ?? 0, by);
}

/** Waits until the operator has logged `message` about `workload` once more than so far. */
export function waitLoggedAgain(
  op: Operator,
  message: string,
  workload: string,
  timeoutMs?: number,
): Promise<number> {
  const count = (): number => loggedAbout(op, message, workload);
  return waitAdvanced(`"${message}" about ${workload} again`, count, count(), 1, timeoutMs);
}

/** The last log lines of an operator, for failure messages. */
export function tail(op: OperatorProcess, n = 15): string {
  return op.logs
    .slice(-n)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

// ------------------------------------------------------------------- readers

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  managedFields?: unknown;
}

export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec: JsonObject & { replicas?: number; template?: Template };
  status?: JsonObject;
}

export interface Template {
  metadata?: { labels?: Record<string, string> };
  spec: JsonObject & { affinity?: Affinity };
}

export type Affinity = Record<string, Record<string, Json> | undefined>;

export interface PolicyStatus {
  observedGeneration?: number;
  matched?: number;
  enforced?: number;
  pending?: number;
  exempted?: number;
  workloads?: { auditOnly?: number };
  violations?: number;
  violationSample?: { pod: string; node: string; rule: string; source: string; message: string }[];
  lastAuditTime?: string;
  conditions?: {
    type: string;
    status: string;
    reason: string;
    message: string;
    observedGeneration?: number;
  }[];
}

export const get = (c: Cluster, kind: string, ns: string, name: string): Promise<Obj> =>
  c.json<Obj>('get', kind, name, '-n', ns);

export const listOf = async (
  c: Cluster,
  kind: string,
  ns: string,
  ...args: string[]
): Promise<Obj[]> => (await c.json<{ items: Obj[] }>('get', kind, '-n', ns, ...args)).items;

/** The pod template of a workload (CronJobs nest it under the job template). */
export function templateOf(w: Obj): Template {
  if (w.kind === 'CronJob') {
    const jt = w.spec['jobTemplate'] as unknown as { spec: { template: Template } };
    return jt.spec.template;
  }
  assert.ok(w.spec.template, `${w.kind} ${w.metadata.name} has a template`);
  return w.spec.template;
}

export const affinityOf = (w: Obj): Affinity | undefined => templateOf(w).spec.affinity;

/** The list in one affinity slot, e.g. slot(a, 'podAntiAffinity', REQ). */
export function slot(a: Affinity | undefined, group: string, field: string): Json[] {
  const value = a?.[group]?.[field];
  return Array.isArray(value) ? value : [];
}

/** The policies the workload's placement.dev/applied record lists, ref → generation. */
export function appliedPolicies(w: Obj): Record<string, number> | undefined {
  const text = w.metadata.annotations?.[APPLIED];
  if (text === undefined) return undefined;
  return (JSON.parse(text) as { policies: Record<string, number> }).policies;
}

export const policyRef = (ns: string, name: string): string => `PlacementPolicy/${ns}/${name}`;

/** A PlacementPolicy in `ns`, or the ClusterPlacementPolicy `name` when `ns` is undefined. */
export async function policyStatus(
  c: Cluster,
  ns: string | undefined,
  name: string,
): Promise<{ status: PolicyStatus; generation: number; metadata: Meta }> {
  const p = await c.json<{ metadata: Meta; status?: PolicyStatus }>(
    ...(ns === undefined
      ? ['get', 'clusterplacementpolicy', name]
      : ['get', 'placementpolicy', name, '-n', ns]),
  );
  return { status: p.status ?? {}, generation: p.metadata.generation ?? 0, metadata: p.metadata };
}

export const condition = (status: PolicyStatus, type: string) =>
  status.conditions?.find((x) => x.type === type);

/**
 * Waits until the policy's status is about its current generation, Ready, with every one of
 * `matched` workloads enforced; returns that status.
 */
export async function waitEnforced(
  c: Cluster,
  ns: string | undefined,
  name: string,
  matched: number,
  timeoutMs = 90_000,
): Promise<PolicyStatus> {
  let last: PolicyStatus = {};
  try {
    return await waitFor(
      `policy ${ns ?? '(cluster)'}/${name} Ready with ${matched} workload(s) enforced`,
      async () => {
        const { status, generation } = await policyStatus(c, ns, name);
        last = status;
        const ready = condition(status, 'Ready');
        return status.observedGeneration === generation &&
          ready?.status === 'True' &&
          ready.observedGeneration === generation &&
          status.matched === matched &&
          status.enforced === matched &&
          status.pending === 0
          ? status
          : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status ${JSON.stringify(last)}`);
  }
}

/** Waits until the PlacementPolicy is gone (its finalizer released). */
export async function waitPolicyGone(
  c: Cluster,
  ns: string,
  name: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    `policy ${ns}/${name} gone`,
    async () => {
      const out = await c.kubectl(
        'get',
        'placementpolicy',
        name,
        '-n',
        ns,
        '--ignore-not-found',
        '-o',
        'name',
      );
      return out.trim() === '' ? true : undefined;
    },
    timeoutMs,
  );
}

/** Waits until every Deployment in `ns` has rolled out its current template completely. */
export async function waitRolledOut(c: Cluster, ns: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `Deployments in ${ns} rolled out`,
    async () => {
      const items = await listOf(c, 'deployments', ns);
      return items.every(rolledOut) ? true : undefined;
    },
    timeoutMs,
  );
}

/** As `kubectl rollout status` judges a Deployment. */
export function rolledOut(d: Obj): boolean {
  const st = (d.status ?? {}) as Record<string, number | undefined>;
  const want = d.spec.replicas ?? 1;
  return (
    (st['observedGeneration'] ?? 0) >= (d.metadata.generation ?? 0) &&
    (st['updatedReplicas'] ?? 0) === want &&
    (st['availableReplicas'] ?? 0) === want &&
    (st['replicas'] ?? 0) === want
  );
}

/**
 * Whether the workload's own controller is done with it: it has seen its current generation,
 * and every replica it wants is updated and available, none terminating. Its status changes
 * no more until something else changes. CronJobs (suspended here) have nothing to finish.
 */
export function controllerDone(w: Obj): boolean {
  const st = (w.status ?? {}) as Record<string, unknown>;
  const n = (field: string): number => {
    const value = st[field];
    return typeof value === 'number' ? value : 0;
  };
  const all = (fields: readonly string[], want: number): boolean =>
    fields.every((f) => n(f) === want) && n('terminatingReplicas') === 0;
  const seen = n('observedGeneration') >= (w.metadata.generation ?? 0);
  const want = w.spec.replicas ?? 1;
  switch (w.kind) {
    case 'Deployment': {
      const conditions = (st['conditions'] ?? []) as { type: string; reason?: string }[];
      const progressing = conditions.find((x) => x.type === 'Progressing');
      return (
        rolledOut(w) &&
        all(['unavailableReplicas'], 0) &&
        progressing?.reason === 'NewReplicaSetAvailable'
      );
    }
    case 'ReplicaSet':
      return (
        seen &&
        all(['replicas', 'fullyLabeledReplicas', 'readyReplicas', 'availableReplicas'], want)
      );
    case 'StatefulSet':
      return (
        seen &&
        all(
          ['replicas', 'readyReplicas', 'availableReplicas', 'currentReplicas', 'updatedReplicas'],
          want,
        ) &&
        st['currentRevision'] === st['updateRevision']
      );
    case 'DaemonSet':
      return (
        seen &&
        n('numberMisscheduled') === 0 &&
        all(
          ['currentNumberScheduled', 'numberReady', 'numberAvailable', 'updatedNumberScheduled'],
          n('desiredNumberScheduled'),
        )
      );
    default:
      return true;
  }
}

/** Waits until the controllers of every workload of `kinds` in `ns` are done with them. */
export async function waitControllersDone(
  c: Cluster,
  ns: string,
  kinds: string,
  timeoutMs = 90_000,
): Promise<Obj[]> {
  let pending: string[] = [];
  try {
    return await waitFor(
      `the controllers of the ${kinds} in ${ns} done with them`,
      async () => {
        const items = await listOf(c, kinds, ns);
        pending = items
          .filter((w) => !controllerDone(w))
          .map((w) => `${w.kind}/${w.metadata.name}`);
        return pending.length === 0 ? items : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; not done: ${pending.join(', ')}`);
  }
}

/** The object as its owner sees it: without what the API server keeps changing on its own. */
export function ownerView(o: Obj): JsonObject {
  const {
    generation: _g,
    resourceVersion: _r,
    managedFields: _m,
    annotations = {},
    ...metadata
  } = o.metadata;
  const { 'deployment.kubernetes.io/revision': _rev, ...rest } = annotations;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: {
      ...metadata,
      ...(Object.keys(rest).length > 0 ? { annotations: rest } : {}),
    },
    spec: o.spec,
  };
}

export interface Pod {
  metadata: Meta & { ownerReferences?: { kind: string; name: string }[] };
  spec: { nodeName?: string; affinity?: Affinity };
  status: { phase?: string };
}

/** Pods with the label app=`app` that are not being deleted. */
export async function podsOf(c: Cluster, ns: string, app: string): Promise<Pod[]> {
  const pods = await c.json<{ items: Pod[] }>('get', 'pods', '-n', ns, '-l', `app=${app}`);
  return pods.items.filter((p) => p.metadata.deletionTimestamp === undefined);
}

/** The messages of the FailedScheduling events about one pod. */
export async function failedScheduling(c: Cluster, ns: string, pod: string): Promise<string[]> {
  const events = await c.json<{ items: { reason: string; message: string }[] }>(
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.name=${pod},reason=FailedScheduling`,
  );
  return events.items.map((e) => e.message);
}

/** The Events of one reason about one Deployment. */
export async function eventsAbout(
  c: Cluster,
  ns: string,
  name: string,
  reason: string,
): Promise<{ type: string; message: string }[]> {
  const found = await c.json<{ items: { type: string; message: string }[] }>(
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.kind=Deployment,involvedObject.name=${name},reason=${reason}`,
  );
  return found.items;
}

/** How many ReplicaSets carry the label app=`app`: one as long as no rollout started. */
export async function replicaSetCount(c: Cluster, ns: string, app: string): Promise<number> {
  const found = await c.json<{ items: unknown[] }>(
    'get',
    'replicasets',
    '-n',
    ns,
    '-l',
    `app=${app}`,
  );
  return found.items.length;
}

/** Node name → its zone label. */
export async function nodeZones(c: Cluster): Promise<Map<string, string>> {
  const nodes = await c.json<{ items: { metadata: Meta }[] }>('get', 'nodes');
  return new Map(nodes.items.map((n) => [n.metadata.name, n.metadata.labels?.[ZONE] ?? '']));
}

/** Resolves after `ms`; for deliberate observation windows only, never to wait for a state. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export { uniqueName, waitFor, type Cluster };
