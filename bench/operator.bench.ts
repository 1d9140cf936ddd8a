/**
 * Operator benchmark (issue #5, "Scale"): the local control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, kwok) with N fake nodes and M pods, and the
 * operator (compiled as the image runs it; `--operator source`: src/main.ts) started against
 * it as a child process. Measures
 *
 *   1. time from operator start to the first complete audit (the value of
 *      placement_audit_last_success_timestamp_seconds), with the phases before it from the
 *      operator's log, and /readyz;
 *   2. time to detect a drift: one node's zone is relabelled so that a pod's own required
 *      zone affinity and a PlacementPolicy's required zone anti-affinity both break; timed
 *      until placement_violations and the policy's status.violations show it, and again
 *      until they clear when the label is put back;
 *   3. operator memory after the first audit and at the end: VmRSS / VmHWM of the process,
 *      process_resident_memory_bytes and the V8 heap from /metrics; operator CPU, and audit
 *      passes and CPU over a steady window;
 *   4. (phase "rollout") a new Enforce policy over 1,000 real Deployments, once per rollout
 *      budget (5 and 50): time until every template carries its term and every rollout is
 *      complete, writes/s, the most Deployments rolling at once against the budget, writes
 *      and 409s by result, owner-written terms kept; then the policy's deletion, until every
 *      template is back to what its owner wrote.
 *
 *   hack/node bench/operator.bench.ts                           # both phases, 500 nodes
 *   hack/node bench/operator.bench.ts --phases audit --nodes 20 --pods 300   # ~30 s
 *   hack/node bench/operator.bench.ts --phases rollout --nodes 20 --rollout-workloads 40
 *
 * Prints progress on stderr; on stdout one line per figure, then one JSON line with every
 * figure (printed before the cluster is torn down). Exits 1 when a figure could not be
 * measured (a wait timed out, the operator died, the first audit found a violation, the
 * drift was not reported, the operator wrote a workload in Audit mode, more Deployments
 * rolled at once than the budget allows, an owner's term was lost, a reverted template
 * differs from the original), 2 on bad flags. docs/benchmarks.md,
 * "Operator at scale", has the method and the figures.
 *
 * The audit phase's cluster is built in bulk, not through the scheduler: paused Deployments (so the
 * controller manager never creates ReplicaSets or pods for them) and their pods, bound
 * directly with spec.nodeName by parallel POSTs with the admin client certificate; kwok
 * then marks them Running. The pods name their Deployment as controller owner. They cannot
 * name a ReplicaSet that does not exist: the garbage collector deletes pods whose owners
 * are all absent. Placement is generated to satisfy every required term, so the first
 * audit must find no violation; the drift node holds only the drift probe's pod. The
 * rollout phase's Deployments are real ones: the controller manager, the scheduler and kwok
 * roll them out.
 */
import { SeededRandom } from '../test/support/seeded-random.ts';
import { inParallel } from '../test/support/parallel.ts';
import { intFlag, listFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { H2Api as Api } from './h2-api.ts';
import {
  describeOperatorForm,
  OPERATOR_FORMS,
  operatorEntry,
  type OperatorForm,
} from './operator-entry.ts';

import { startLocalCluster, type LocalCluster } from '../test/cluster/local-cluster.ts';
import { ensureBinaries } from '../test/cluster/select.ts';
import {
  installCrds,
  metricValue,
  operatorAccount,
  scrape,
  startOperatorFrom,
  withOperatorAccount,
  type Cluster,
  type OperatorProcess,
} from '../test/integration/harness.ts';

export const HOSTNAME = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';
export const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';
export const BENCH_LABEL = 'placement.dev/bench';
export const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
export const PODS_PER_NODE = 110;
export const DRIFT_NS = 'bench-drift';
const DRIFT_POLICY = 'drift-guard';

// ---------------------------------------------------------------- flags

const USAGE = `usage: hack/node bench/operator.bench.ts [--phases audit,rollout] [--nodes N] [--pods N]
  [--workload-size N] [--namespaces N] [--drift-runs N] [--concurrency N] [--seed N]
  [--timeout-min N] [--settle-timeout-s N] [--window SECONDS] [--operator-cpu-prof DIR]
  [--rollout-workloads N] [--rollout-replicas N] [--rollout-budgets N,N...]
  [--operator built|source]`;

const PHASES = ['audit', 'rollout'] as const;
type Phase = (typeof PHASES)[number];

interface Options {
  readonly phases: ReadonlySet<Phase>;
  readonly nodes: number;
  readonly pods: number;
  readonly workloadSize: number;
  readonly namespaces: number;
  readonly driftRuns: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly timeoutMin: number;
  readonly settleTimeoutS: number;
  readonly windowS: number;
  readonly cpuProfDir: string | undefined;
  readonly rolloutWorkloads: number;
  readonly rolloutReplicas: number;
  /** One apply-and-revert run per value of the operator's --rollout-budget. */
  readonly rolloutBudgets: readonly number[];
  /** Compiled, as the image runs it (the default), or from src/. */
  readonly operator: OperatorForm;
}

function options(argv: readonly string[]): Options {
  const values = stringFlags(
    argv,
    [
      'nodes',
      'pods',
      'workload-size',
      'namespaces',
      'drift-runs',
      'concurrency',
      'seed',
      'timeout-min',
      'settle-timeout-s',
      'window',
      'operator-cpu-prof',
      'phases',
      'rollout-workloads',
      'rollout-replicas',
      'rollout-budgets',
      'operator',
    ],
    USAGE,
  );
  const phases = listFlag('phases', values.phases, [...PHASES], (p) =>
    (PHASES as readonly string[]).includes(p) ? (p as Phase) : undefined,
  );
  const o: Options = {
    phases: new Set(phases),
    nodes: intFlag('nodes', values.nodes, 500, 10),
    pods: intFlag('pods', values.pods, 10_000, 100),
    workloadSize: intFlag('workload-size', values['workload-size'], 10, 1),
    namespaces: intFlag('namespaces', values.namespaces, 10, 1),
    driftRuns: intFlag('drift-runs', values['drift-runs'], 3, 1),
    concurrency: intFlag('concurrency', values.concurrency, 32, 1),
    seed: intFlag('seed', values.seed, 1, 0),
    // The rollout phase runs for many minutes: 1,000 rollouts a few at a time, twice per budget.
    timeoutMin: intFlag(
      'timeout-min',
      values['timeout-min'],
      phases.includes('rollout') ? 120 : 30,
      1,
    ),
    settleTimeoutS: intFlag('settle-timeout-s', values['settle-timeout-s'], 300, 0),
    windowS: intFlag('window', values.window, 10, 1),
    cpuProfDir: values['operator-cpu-prof'],
    rolloutWorkloads: intFlag('rollout-workloads', values['rollout-workloads'], 1000, 1),
    rolloutReplicas: intFlag('rollout-replicas', values['rollout-replicas'], 1, 1),
    rolloutBudgets: listFlag('rollout-budgets', values['rollout-budgets'], [5, 50], (b) =>
      intFlag('rollout-budgets', b, 0, 1),
    ),
    operator: operatorFormFlag(values.operator),
  };
  // The drift node holds only the probe; the one-per-node workloads need that many others.
  if (o.workloadSize > o.nodes - 1) {
    throw new Error(`--workload-size ${o.workloadSize} needs more than ${o.workloadSize} nodes`);
  }
  const pods =
    (o.phases.has('audit') ? o.pods : 0) +
    (o.phases.has('rollout') ? o.rolloutWorkloads * (o.rolloutReplicas + 1) : 0);
  if (pods > (o.nodes - 1) * PODS_PER_NODE * 0.8) {
    throw new Error(`${pods} pods do not fit on ${o.nodes} nodes of ${PODS_PER_NODE} pods`);
  }
  return o;
}

// ---------------------------------------------------------------- output

export const figures: Record<string, unknown> = {};

export function print(label: string, text: string): void {
  console.log(`${label.padEnd(50)} ${text}`);
}

export const round = (x: number, digits: number): number => Number(x.toFixed(digits));
export const seconds = (ms: number): number => round(ms / 1000, 2);
export const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

/** Progress goes to stderr so that stdout holds figures only. */
export function progress(line: string): void {
  process.stderr.write(`[operator-bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Polls until probe gives a value; throws naming `what` after timeoutMs. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const detail =
        last === undefined
          ? ''
          : ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})`;
      throw new Error(`timed out after ${seconds(timeoutMs)} s waiting for ${what}${detail}`);
    }
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------- API client

export class Fatal extends Error {}

// ---------------------------------------------------------------- the generated cluster

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Seeded choices to scatter pods (seed 0 counts as 1, as this bench always has). */
class Rng extends SeededRandom {
  constructor(seed: number) {
    super(seed >>> 0 || 1);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export interface WorkloadPlan {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly affinity: JsonObject | undefined;
  /** Node of each replica. */
  readonly nodes: string[];
}

export interface Plan {
  readonly namespaces: { name: string; labels: Record<string, string> }[];
  readonly workloads: WorkloadPlan[];
  readonly policies: JsonObject[];
  readonly driftNode: string;
  readonly stats: Record<string, number>;
}

const term = (app: string, topologyKey: string): JsonObject => ({
  labelSelector: { matchLabels: { app } },
  topologyKey,
});

/**
 * Workloads in groups of nine per namespace; a third carry required terms on hostname or
 * zone, and every replica is placed so that those terms (and the policies below) hold:
 *
 *   g0  one per node          podAntiAffinity(hostname, itself)
 *   g1  all in one zone Z     podAffinity(zone, itself)
 *   g2  next to g3, not in Z  podAffinity(hostname, g3) + podAntiAffinity(zone, g1)
 *   g3  tier=web, one per node, not in Z   (policy: web one per node, Required)
 *   g4  tier=web, one per node             (same policy)
 *   g5  tier=db                            (cluster policy: spread over zones, Preferred)
 *   g6..g8 tier=batch, anywhere
 *
 * Policies are in Audit mode: templates lack their terms, so the audit judges the running
 * pods against them as "pending", and the operator writes no workload.
 */
export function generate(
  o: Pick<Options, 'seed' | 'namespaces' | 'workloadSize' | 'pods'>,
  nodeNames: readonly string[],
): Plan {
  const rng = new Rng(o.seed);
  const driftNode = nodeNames[0] ?? '';
  const nodeZone = new Map(nodeNames.map((n, i) => [n, ZONES[i % ZONES.length] ?? 'zone-a']));
  const usable = nodeNames.slice(1); // the drift node holds only the probe
  const load = new Map(usable.map((n) => [n, 0]));
  const inZones = (zones: readonly string[]): string[] =>
    usable.filter((n) => zones.includes(nodeZone.get(n) ?? ''));

  /** `count` nodes from `pool`, distinct when asked, each with room for one more pod. */
  const pick = (pool: readonly string[], count: number, distinct: boolean): string[] => {
    const out: string[] = [];
    const taken = new Set<string>();
    for (let guard = 0; out.length < count; guard++) {
      if (guard > 100_000) throw new Error('placement: no room left (too many pods for the nodes)');
      const n = pool[rng.int(pool.length)] ?? '';
      if ((load.get(n) ?? PODS_PER_NODE) >= PODS_PER_NODE) continue;
      if (distinct && taken.has(n)) continue;
      taken.add(n);
      load.set(n, (load.get(n) ?? 0) + 1);
      out.push(n);
    }
    return out;
  };

  const namespaces = Array.from({ length: o.namespaces }, (_, i) => ({
    name: `bench-${String(i).padStart(2, '0')}`,
    labels: { [BENCH_LABEL]: 'true', env: i % 2 === 0 ? 'prod' : 'dev' },
  }));
  const size = o.workloadSize;
  const count = Math.ceil(o.pods / size);
  const workloads: WorkloadPlan[] = [];
  let withTerms = 0;
  for (let g = 0; g * 9 < count; g++) {
    const ns = namespaces[g % namespaces.length]?.name ?? '';
    const app = (k: number): string => `w${String(g).padStart(4, '0')}-${k}`;
    const zoneZ = ZONES[rng.int(ZONES.length)] ?? 'zone-a';
    const notZ = ZONES.filter((z) => z !== zoneZ);
    const add = (
      k: number,
      tier: string,
      affinity: JsonObject | undefined,
      nodes: string[],
    ): void => {
      if (g * 9 + k >= count) return;
      if (affinity !== undefined) withTerms++;
      workloads.push({
        namespace: ns,
        name: app(k),
        labels: { app: app(k), tier },
        affinity,
        nodes,
      });
    };
    const room = g * 9;
    const want = (k: number): boolean => room + k < count;
    const g3 = want(3) ? pick(inZones(notZ), size, true) : [];
    add(
      0,
      'cache',
      { podAntiAffinity: { [REQ]: [term(app(0), HOSTNAME)] } },
      want(0) ? pick(usable, size, true) : [],
    );
    add(
      1,
      'queue',
      { podAffinity: { [REQ]: [term(app(1), ZONE)] } },
      want(1) ? pick(inZones([zoneZ]), size, false) : [],
    );
    // Next to g3, one pod on each of its nodes; without a g3 (the last, partial group) all
    // on one node, next to each other.
    const g2: string[] = [];
    if (want(2)) {
      const alone = g3.length === 0 ? pick(inZones(notZ), 1, false)[0] : undefined;
      for (let i = 0; i < size; i++) {
        const n = alone ?? g3[i] ?? '';
        load.set(n, (load.get(n) ?? 0) + 1);
        g2.push(n);
      }
    }
    add(
      2,
      'api',
      // g3 may not exist in the last, partial group: then g2 stands alone next to itself.
      {
        podAffinity: { [REQ]: [term(want(3) ? app(3) : app(2), HOSTNAME)] },
        podAntiAffinity: { [REQ]: [term(app(1), ZONE)] },
      },
      g2,
    );
    add(3, 'web', undefined, g3);
    add(4, 'web', undefined, want(4) ? pick(usable, size, true) : []);
    add(5, 'db', undefined, want(5) ? pick(usable, size, false) : []);
    for (const k of [6, 7, 8]) add(k, 'batch', undefined, want(k) ? pick(usable, size, false) : []);
  }

  // The drift probe: one pod on the drift node (zone-a), next to an anchor in zone-a (its own
  // term) and away from the avoid pods in zone-c (a policy's term). Relabelling the node to
  // zone-c breaks both.
  const driftZone = nodeZone.get(driftNode) ?? 'zone-a';
  if (driftZone !== 'zone-a')
    throw new Error(`drift node ${driftNode} is in ${driftZone}, not zone-a`);
  namespaces.push({ name: DRIFT_NS, labels: { [BENCH_LABEL]: 'true', env: 'prod' } });
  workloads.push(
    {
      namespace: DRIFT_NS,
      name: 'drift-anchor',
      labels: { app: 'drift-anchor' },
      affinity: undefined,
      nodes: pick(inZones(['zone-a']), 3, true),
    },
    {
      namespace: DRIFT_NS,
      name: 'drift-avoid',
      labels: { app: 'drift-avoid' },
      affinity: undefined,
      nodes: pick(inZones(['zone-c']), 3, true),
    },
    {
      namespace: DRIFT_NS,
      name: 'drift-probe',
      labels: { app: 'drift-probe' },
      affinity: { podAffinity: { [REQ]: [term('drift-anchor', ZONE)] } },
      nodes: [driftNode],
    },
  );

  const policy = (
    kind: 'PlacementPolicy' | 'ClusterPlacementPolicy',
    metadata: JsonObject,
    spec: JsonObject,
  ): JsonObject => ({
    apiVersion: 'placement.dev/v1alpha1',
    kind,
    metadata,
    spec: { mode: 'Audit', ...spec },
  });
  const policies: JsonObject[] = [
    ...namespaces
      .filter((n) => n.name !== DRIFT_NS)
      .map((n) =>
        policy(
          'PlacementPolicy',
          { name: 'web-one-per-node', namespace: n.name },
          {
            targets: { selector: { matchLabels: { tier: 'web' } } },
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          },
        ),
      ),
    policy(
      'ClusterPlacementPolicy',
      { name: 'db-zone-spread' },
      {
        targets: {
          selector: { matchLabels: { tier: 'db' } },
          namespaceSelector: { matchLabels: { [BENCH_LABEL]: 'true', env: 'prod' } },
        },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 50 }],
      },
    ),
    policy(
      'PlacementPolicy',
      { name: DRIFT_POLICY, namespace: DRIFT_NS },
      {
        targets: { selector: { matchLabels: { app: 'drift-probe' } } },
        affinity: { podAntiAffinity: { [REQ]: [term('drift-avoid', ZONE)] } },
      },
    ),
  ];
  const pods = workloads.reduce((s, w) => s + w.nodes.length, 0);
  return {
    namespaces,
    workloads,
    policies,
    driftNode,
    stats: {
      namespaces: namespaces.length,
      workloads: workloads.length,
      workloadsWithTerms: withTerms + 1,
      pods,
      podsWithTerms: workloads
        .filter((w) => w.affinity !== undefined)
        .reduce((s, w) => s + w.nodes.length, 0),
      policies: policies.length,
      maxPodsPerNode: Math.max(...load.values()),
    },
  };
}

export function podSpec(affinity: JsonObject | undefined): JsonObject {
  return {
    containers: [
      {
        name: 'app',
        image: 'registry.k8s.io/pause:3.10',
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      },
    ],
    ...(affinity === undefined ? {} : { affinity }),
  };
}

function deployment(w: WorkloadPlan): JsonObject {
  const labels = { [BENCH_LABEL]: 'true', ...w.labels };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: w.name, namespace: w.namespace, labels },
    spec: {
      replicas: w.nodes.length,
      // Paused: the controller manager creates no ReplicaSet, so no pod but ours. Without a
      // progress deadline it also skips its DeploymentPaused condition write; what is left
      // is one status write per Deployment, at its 20 requests per second.
      paused: true,
      progressDeadlineSeconds: 2147483647,
      selector: { matchLabels: { app: w.labels['app'] ?? w.name } },
      template: { metadata: { labels }, spec: podSpec(w.affinity) },
    },
  };
}

function pod(w: WorkloadPlan, index: number, node: string, ownerUid: string): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${w.name}-${index}`,
      namespace: w.namespace,
      labels: { [BENCH_LABEL]: 'true', ...w.labels },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: w.name,
          uid: ownerUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: { ...podSpec(w.affinity), nodeName: node },
  };
}

// ---------------------------------------------------------------- building it

async function build(api: Api, c: Cluster, plan: Plan, o: Options): Promise<void> {
  let t = performance.now();
  await installCrds(c);
  for (const ns of plan.namespaces) {
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: ns });
  }
  await defaultServiceAccounts(
    api,
    plan.namespaces.map((n) => n.name),
  );
  await inParallel(plan.policies, 8, async (p) => {
    const meta = p['metadata'] as { namespace?: string };
    const path =
      meta.namespace === undefined
        ? '/apis/placement.dev/v1alpha1/clusterplacementpolicies'
        : `/apis/placement.dev/v1alpha1/namespaces/${meta.namespace}/placementpolicies`;
    await api.create(path, p);
  });
  const setupMs = performance.now() - t;

  t = performance.now();
  let created = 0;
  let lastReport = performance.now();
  await inParallel(plan.workloads, Math.max(1, Math.floor(o.concurrency / 4)), async (w) => {
    const d = await api.create<{ metadata: { uid: string } }>(
      `/apis/apps/v1/namespaces/${w.namespace}/deployments`,
      deployment(w),
    );
    await inParallel(
      w.nodes.map((n, i) => ({ n, i })),
      8,
      async ({ n, i }) => {
        await api.create(`/api/v1/namespaces/${w.namespace}/pods`, pod(w, i, n, d.metadata.uid));
        created++;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          progress(
            `${created} pods created (${Math.round(created / ((lastReport - t) / 1000))}/s)`,
          );
        }
      },
    );
  });
  const createMs = performance.now() - t;
  const pods = plan.stats['pods'] ?? 0;
  print('namespaces, CRDs, policies', `${seconds(setupMs)} s`);
  print(
    'created Deployments and bound pods',
    `${plan.workloads.length} + ${pods} in ${seconds(createMs)} s ` +
      `(${Math.round(pods / (createMs / 1000))} pods/s, ${o.concurrency} in flight)`,
  );
  figures['build'] = {
    setupS: seconds(setupMs),
    createS: seconds(createMs),
    podsPerS: Math.round(pods / (createMs / 1000)),
  };

  // Quiet before the operator starts: kwok has marked every pod Running, and the controller
  // manager has written every Deployment's status (else those writes would land in the
  // operator's startup and blur the figures). On a starved machine kwok may not get there in
  // --settle-timeout-s: the run goes on, and says how many pods were still Pending.
  t = performance.now();
  const deadline = Date.now() + o.settleTimeoutS * 1000;
  const pending = async (limit: number): Promise<number> => {
    const list = await api.get<{ items: unknown[] }>(
      `/api/v1/pods?labelSelector=${BENCH_LABEL}&fieldSelector=status.phase!=Running` +
        (limit > 0 ? `&limit=${limit}` : ''),
    );
    return list.items.length;
  };
  let runningMs: number | null = null;
  while (Date.now() < deadline) {
    if ((await pending(1)) === 0) {
      runningMs = performance.now() - t;
      break;
    }
    if (performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      progress(`waiting for kwok: ${await pending(0)} pods not Running yet`);
    }
    await sleep(1000);
  }
  const notRunning = runningMs === null ? await pending(0) : 0;
  // The controller manager writes Deployment status at 20 requests a second: its own budget.
  const deploymentsDeadline = Date.now() + Math.max(60_000, plan.workloads.length * 100);
  let quietMs: number | null = null;
  while (Date.now() < deploymentsDeadline) {
    const list = await api.get<{
      items: { metadata: { generation?: number }; status?: { observedGeneration?: number } }[];
    }>(`/apis/apps/v1/deployments?labelSelector=${BENCH_LABEL}`);
    const behind = list.items.filter(
      (d) => (d.status?.observedGeneration ?? 0) < (d.metadata.generation ?? 1),
    ).length;
    if (behind === 0 && list.items.length === plan.workloads.length) {
      quietMs = performance.now() - t;
      break;
    }
    await sleep(2000);
  }
  const show = (ms: number | null): string => (ms === null ? 'not yet' : `${seconds(ms)} s`);
  print(
    'after creation: all pods Running; Deployments seen',
    `${show(runningMs)}${notRunning > 0 ? ` (${notRunning} pods still Pending)` : ''}; ${show(quietMs)}`,
  );
  Object.assign(figures['build'] as Record<string, unknown>, {
    allRunningS: runningMs === null ? null : seconds(runningMs),
    pendingAtOperatorStart: notRunning,
    deploymentsObservedS: quietMs === null ? null : seconds(quietMs),
  });
}

/** Pods are refused until their namespace's default ServiceAccount exists. */
async function defaultServiceAccounts(api: Api, namespaces: readonly string[]): Promise<void> {
  await until(
    'default ServiceAccounts',
    async () => {
      const list = await api.get<{ items: { metadata: { namespace: string } }[] }>(
        '/api/v1/serviceaccounts?fieldSelector=metadata.name=default',
      );
      const have = new Set(list.items.map((i) => i.metadata.namespace));
      return namespaces.every((n) => have.has(n)) ? true : undefined;
    },
    60_000,
    200,
  );
}

/** Lists a collection page by page, as the informers do; wall time, pages and bytes. */
async function listPaged(
  api: Api,
  path: string,
  limit: number,
  gzip: boolean,
): Promise<{ ms: number; pages: number; bytes: number; wireBytes: number }> {
  const t = performance.now();
  let pages = 0;
  let bytes = 0;
  let wireBytes = 0;
  let next = '';
  do {
    const query = `?limit=${limit}${next === '' ? '' : `&continue=${encodeURIComponent(next)}`}`;
    const res = await api.send('GET', `${path}${query}`, undefined, undefined, gzip);
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
    pages++;
    bytes += Buffer.byteLength(res.body);
    wireBytes += res.wireBytes;
    next = (JSON.parse(res.body) as { metadata: { continue?: string } }).metadata.continue ?? '';
  } while (next !== '');
  return { ms: performance.now() - t, pages, bytes, wireBytes };
}

/** Bench pods not (yet) Running. */
async function countPending(api: Api): Promise<number> {
  const list = await api.get<{ items: unknown[] }>(
    `/api/v1/pods?labelSelector=${BENCH_LABEL}&fieldSelector=status.phase!=Running`,
  );
  return list.items.length;
}

// ---------------------------------------------------------------- the operator

export interface Memory {
  vmRssMiB: number;
  vmHwmMiB: number;
  processResidentMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  cpuSeconds: number;
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kib('VmRSS') * 1024, hwm: kib('VmHWM') * 1024 };
}

export async function memory(op: OperatorProcess): Promise<Memory> {
  const pid = op.child.pid ?? 0;
  const { body } = await scrape(op);
  const proc = procStatus(pid);
  return {
    vmRssMiB: mib(proc.rss),
    vmHwmMiB: mib(proc.hwm),
    processResidentMiB: mib(metricValue(body, 'process_resident_memory_bytes')),
    heapUsedMiB: mib(metricValue(body, 'nodejs_heap_size_used_bytes')),
    heapTotalMiB: mib(metricValue(body, 'nodejs_heap_size_total_bytes')),
    externalMiB: mib(metricValue(body, 'nodejs_external_memory_bytes')),
    cpuSeconds: round(metricValue(body, 'process_cpu_seconds_total'), 2),
  };
}

export const showMemory = (m: Memory): string =>
  `VmRSS ${m.vmRssMiB} MiB (peak ${m.vmHwmMiB}), process_resident_memory_bytes ${m.processResidentMiB} MiB, ` +
  `heap ${m.heapUsedMiB}/${m.heapTotalMiB} MiB used/total, external ${m.externalMiB} MiB`;

/** The time of the first log line with this message, by its winston timestamp. */
function logTime(op: OperatorProcess, message: string): number | undefined {
  const line = op.logs.find((l) => l['message'] === message);
  const ts = line?.['timestamp'];
  return typeof ts === 'string' ? Date.parse(ts) : undefined;
}

export async function firstAudit(
  op: OperatorProcess,
  startedAt: number,
  o: Pick<Options, 'pods'>,
): Promise<void> {
  let readyAt: number | undefined;
  const observed = await until(
    'the first complete audit (placement_audit_last_success_timestamp_seconds > 0)',
    async () => {
      if (op.child.exitCode !== null) throw new Fatal(`operator exited with ${op.child.exitCode}`);
      if (logPort(op) === undefined) return undefined;
      if (readyAt === undefined && (await scrape(op, '/readyz')).status === 200) {
        readyAt = Date.now();
      }
      const { body } = await scrape(op);
      const last = metricValue(body, 'placement_audit_last_success_timestamp_seconds');
      return last > 0 ? { at: Date.now(), lastSuccess: last * 1000, body } : undefined;
    },
    Math.max(120_000, o.pods * 20),
    // The figure is the gauge's own timestamp, so a slow poll loses no precision; a fast one
    // would add its scrapes to the operator's CPU.
    200,
  );
  readyAt ??= await until(
    '/readyz 200',
    async () => ((await scrape(op, '/readyz')).status === 200 ? Date.now() : undefined),
    30_000,
    50,
  );
  const since = (t: number | undefined): number | null =>
    t === undefined ? null : seconds(t - startedAt);
  const first = {
    toFirstAuditS: seconds(observed.lastSuccess - startedAt),
    toFirstAuditObservedS: seconds(observed.at - startedAt),
    toReadyzS: seconds(readyAt - startedAt),
    listeningS: since(logTime(op, 'metrics and probes listening')),
    cachesSyncedS: since(logTime(op, 'caches synced')),
    leaderS: since(logTime(op, 'became leader; reconciling')),
    firstAuditPassS: round(metricValue(observed.body, 'placement_audit_duration_seconds_sum'), 3),
    auditPasses: metricValue(observed.body, 'placement_audit_duration_seconds_count'),
    violations: metricValue(observed.body, 'placement_violations'),
  };
  print(
    'operator start → first complete audit',
    `${first.toFirstAuditS} s (placement_audit_last_success_timestamp_seconds)`,
  );
  print(
    'operator start → /readyz 200 (caches synced)',
    `${first.toReadyzS} s (polled every 200 ms; ready once caches sync: a standby is ready too)`,
  );
  print(
    '  of which: listening, caches synced, leader',
    `${String(first.listeningS)} s, ${String(first.cachesSyncedS)} s, ${String(first.leaderS)} s`,
  );
  print(
    '  first audit pass (placement_audit_duration)',
    `${first.firstAuditPassS} s over ${first.auditPasses} pass(es)`,
  );
  print('violations at the first audit (expected 0)', String(first.violations));
  figures['startup'] = first;
  if (first.violations !== 0) {
    const sample = op.logs
      .filter((l) => l['message'] === 'pod breaks a placement rule')
      .slice(0, 10);
    for (const l of sample) console.error(`  unexpected violation: ${JSON.stringify(l)}`);
    throw new Fatal(
      `the first audit found ${first.violations} violations; the generated placement has none`,
    );
  }
}

/** The operator process running now, if any: its logs are shown on failure, and it is stopped. */
let live: OperatorProcess | undefined;

/**
 * As the chart's ServiceAccount, on the chart's Lease (the only one its RBAC grants), in
 * the form asked (see operator-entry.ts).
 */
export function launch(c: Cluster, form: OperatorForm, ...flags: string[]): OperatorProcess {
  const { lease, namespace } = operatorAccount(c);
  const main = operatorEntry(form);
  live = startOperatorFrom(
    main,
    c,
    '--lease-name',
    lease,
    '--lease-namespace',
    namespace,
    ...flags,
  );
  return live;
}

/** The `--operator` flag: compiled as the image runs it unless `source` is asked. */
export function operatorFormFlag(value: string | undefined): OperatorForm {
  const form = OPERATOR_FORMS.find((f) => f === (value ?? 'built'));
  if (form === undefined) throw new Error(`--operator: "${value ?? ''}" is not built or source`);
  return form;
}

/** Compiles the operator when asked (before any cluster is built), and prints which form runs. */
export function showOperatorForm(form: OperatorForm): void {
  print('operator runs', describeOperatorForm(form));
  figures['operatorForm'] = form;
}

/** SIGTERM, and a failure unless it exits 0 (a graceful shutdown). */
export async function stopOperator(op: OperatorProcess): Promise<void> {
  const code = op.child.exitCode ?? (await op.stop());
  if (live === op) live = undefined;
  if (code !== 0) {
    console.error(`operator exited with ${String(code)} on SIGTERM`);
    process.exitCode = 1;
  }
}

function logPort(op: OperatorProcess): number | undefined {
  const line = op.logs.find((l) => l['message'] === 'metrics and probes listening');
  return typeof line?.['port'] === 'number' ? line['port'] : undefined;
}

// ---------------------------------------------------------------- drift

export interface DriftRun {
  detectMetricS: number;
  detectStatusS: number;
  clearMetricS: number;
  clearStatusS: number;
  /** What the metrics and status showed once the drift was seen. */
  seen: { podAffinity: number; policy: number; status: number };
}

const DRIFT_SOURCE = `PlacementPolicy/${DRIFT_NS}/${DRIFT_POLICY}`;

/** The probe's own podAffinity term, and every rule of the drift policy (symmetric included). */
async function driftCounts(op: OperatorProcess): Promise<{ pod: number; policy: number }> {
  const { body } = await scrape(op);
  return {
    pod: metricValue(body, 'placement_violations', { policy: 'pod', rule: 'podAffinity' }),
    policy: metricValue(body, 'placement_violations', { policy: DRIFT_SOURCE }),
  };
}

async function policyViolations(api: Pick<Api, 'get'>): Promise<number> {
  const p = await api.get<{ status?: { violations?: number } }>(
    `/apis/placement.dev/v1alpha1/namespaces/${DRIFT_NS}/placementpolicies/${DRIFT_POLICY}`,
  );
  return p.status?.violations ?? 0;
}

/**
 * One relabel and one revert, each timed from just before the PATCH until the metrics
 * (polled every 25 ms) and the policy status (polled every 50 ms) show the change.
 */
export async function driftRun(
  api: Pick<Api, 'get' | 'mergePatch'>,
  op: OperatorProcess,
  node: string,
): Promise<DriftRun> {
  const base = await driftCounts(op);
  if (base.pod !== 0 || base.policy !== 0 || (await policyViolations(api)) !== 0) {
    throw new Fatal(`drift: violations before the relabel: ${JSON.stringify(base)}`);
  }
  const phase = async (zone: string, broken: boolean): Promise<[number, number]> => {
    const t0 = performance.now();
    await api.mergePatch(`/api/v1/nodes/${node}`, { metadata: { labels: { [ZONE]: zone } } });
    const what = broken ? 'show' : 'clear';
    const metric = until(
      `placement_violations to ${what} the drift probe after ${node} → ${zone}`,
      async () => {
        const n = await driftCounts(op);
        const done = broken ? n.pod > 0 && n.policy > 0 : n.pod === 0 && n.policy === 0;
        return done ? performance.now() - t0 : undefined;
      },
      60_000,
      25,
    );
    const status = until(
      `${DRIFT_POLICY} status.violations to ${what} it after ${node} → ${zone}`,
      async () => {
        const n = await policyViolations(api);
        return (broken ? n > 0 : n === 0) ? performance.now() - t0 : undefined;
      },
      60_000,
      50,
    );
    return Promise.all([metric, status]);
  };
  const [detectMetric, detectStatus] = await phase('zone-c', true);
  const counts = await driftCounts(op);
  const seen = {
    podAffinity: counts.pod,
    policy: counts.policy,
    status: await policyViolations(api),
  };
  await sleep(1000);
  const [clearMetric, clearStatus] = await phase('zone-a', false);
  return {
    detectMetricS: seconds(detectMetric),
    detectStatusS: seconds(detectStatus),
    clearMetricS: seconds(clearMetric),
    clearStatusS: seconds(clearStatus),
    seen,
  };
}

/** generate's plan, its counts printed and kept as the `cluster` figure. */
export function generateAndShow(
  o: Parameters<typeof generate>[0] & { readonly nodes: number },
  nodeNames: readonly string[],
  workloads: string,
): Plan {
  const plan = generate(o, nodeNames);
  print(
    'generated',
    `${plan.stats['workloads']} ${workloads} (${plan.stats['workloadsWithTerms']} with required terms), ` +
      `${plan.stats['pods']} pods (${plan.stats['podsWithTerms']} with own terms), ` +
      `${plan.stats['namespaces']} namespaces, ${plan.stats['policies']} policies; ` +
      `busiest node ${plan.stats['maxPodsPerNode']} pods`,
  );
  figures['cluster'] = { nodes: o.nodes, ...plan.stats };
  return plan;
}

/** The image's `ENV NODE_OPTIONS` (Dockerfile): the V8 options the operator runs with. */
const IMAGE_NODE_OPTIONS = ((): string => {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  const value = /^ENV NODE_OPTIONS=(.*)$/m.exec(dockerfile)?.[1];
  if (value === undefined) throw new Error('Dockerfile: no ENV NODE_OPTIONS line');
  return value.replace(/^"(.*)"$/, '$1');
})();

/**
 * Starts the operator against the built cluster and measures what every size reports the
 * same way: (1) start → first complete audit, (3) its memory right after, (2) the drift
 * probe. Resolves with the running operator and that memory.
 */
export async function launchAndProbe(
  api: Pick<Api, 'get' | 'mergePatch'>,
  c: Cluster,
  plan: Plan,
  o: Pick<Options, 'pods' | 'cpuProfDir' | 'driftRuns' | 'operator'>,
): Promise<{ op: OperatorProcess; afterFirst: Memory }> {
  print('load average before the operator starts', loadAverage());
  figures['loadAverageAtOperatorStart'] = loadAverage();
  // The operator runs with the V8 options it ships with: they decide how far its heap grows.
  const nodeOptions = [
    IMAGE_NODE_OPTIONS,
    ...(o.cpuProfDir === undefined ? [] : [`--cpu-prof --cpu-prof-dir=${o.cpuProfDir}`]),
  ].join(' ');
  process.env['NODE_OPTIONS'] = nodeOptions;
  print("operator NODE_OPTIONS (the image's)", nodeOptions);
  figures['operatorNodeOptions'] = nodeOptions;
  const startedAt = Date.now();
  const op = launch(c, o.operator, '--log-level', 'info');
  await firstAudit(op, startedAt, o);

  const afterFirst = await memory(op);
  print('operator memory after the first audit', showMemory(afterFirst));
  print(
    'operator RSS after the first audit; heap used per pod',
    `${afterFirst.vmRssMiB} MiB (goal ≤ 600, stretch ≤ 400); ` +
      `${Math.round((afterFirst.heapUsedMiB * 2 ** 20) / (plan.stats['pods'] ?? 1))} B ` +
      '(every heap byte charged to pods)',
  );
  print(
    'operator CPU to the first audit',
    `${afterFirst.cpuSeconds} s (process_cpu_seconds_total)`,
  );
  figures['memoryAfterFirstAudit'] = afterFirst;

  await sleep(2000); // let the start-up status writes settle
  await measureDrift(api, op, plan.driftNode, o.driftRuns);
  return { op, afterFirst };
}

/** `count` drift runs on `node`, printed as medians and kept in figures.drift. */
export async function measureDrift(
  api: Pick<Api, 'get' | 'mergePatch'>,
  op: OperatorProcess,
  node: string,
  count: number,
): Promise<void> {
  const runs: DriftRun[] = [];
  for (let r = 0; r < count; r++) {
    runs.push(await driftRun(api, op, node));
    await sleep(1000);
  }
  const summary = (k: Exclude<keyof DriftRun, 'seen'>): Record<string, number> => {
    const xs = runs.map((x) => x[k]);
    return { median: round(median(xs), 2), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const drift = {
    node,
    runs,
    detectMetricS: summary('detectMetricS'),
    detectStatusS: summary('detectStatusS'),
    clearMetricS: summary('clearMetricS'),
    clearStatusS: summary('clearStatusS'),
  };
  const show = (s: Record<string, number>): string =>
    `median ${s['median']} s (min ${s['min']}, max ${s['max']}; ${runs.length} runs)`;
  print('node relabel → placement_violations shows it', show(drift.detectMetricS));
  print('node relabel → policy status.violations shows it', show(drift.detectStatusS));
  print('label restored → metric back to 0', show(drift.clearMetricS));
  print('label restored → policy status back to 0', show(drift.clearStatusS));
  figures['drift'] = drift;
}

/**
 * Figures 1-5: the generated cluster of paused Deployments and bound pods, policies in Audit
 * mode, the operator's start-up, drift detection and memory. The operator is stopped at the
 * end, so that a later phase starts its own.
 */
async function auditPhase(
  api: Api,
  c: Cluster,
  cluster: LocalCluster,
  nodeNames: readonly string[],
  o: Options,
): Promise<void> {
  const plan = generateAndShow(o, nodeNames, 'Deployments');
  await build(api, c, plan, o);
  const cpRss = cluster.rssBytes();
  print(
    'control plane RSS before the operator',
    `${mib(cpRss)} MiB (etcd, apiserver, kcm, scheduler, kwok)`,
  );
  figures['controlPlaneRssMiB'] = mib(cpRss);
  // What the API server alone needs to hand over the pods as an informer lists them: the
  // floor under "caches synced". Plain and gzipped (the operator's client asks for gzip).
  const plain = await listPaged(api, '/api/v1/pods', 500, false);
  const zipped = await listPaged(api, '/api/v1/pods', 500, true);
  print(
    'API server: every pod in pages of 500, one client',
    `${seconds(plain.ms)} s plain, ${seconds(zipped.ms)} s gzip (${plain.pages} pages, ` +
      `${mib(plain.bytes)} MiB of JSON, ${mib(zipped.wireBytes)} MiB gzipped)`,
  );
  figures['podList'] = {
    pages: plain.pages,
    plainS: seconds(plain.ms),
    gzipS: seconds(zipped.ms),
    mib: mib(plain.bytes),
    gzipMiB: mib(zipped.wireBytes),
  };
  const { op } = await launchAndProbe(api, c, plan, o);

  // (4) What the operator costs while the cluster keeps changing a little (kwok marking the
  // last pods Running, node leases): audit passes and CPU over a fixed window.
  const w0 = await scrape(op);
  const pending0 = await countPending(api);
  await sleep(o.windowS * 1000);
  const w1 = await scrape(op);
  const pending1 = await countPending(api);
  const delta = (name: string): number => metricValue(w1.body, name) - metricValue(w0.body, name);
  const passes = delta('placement_audit_duration_seconds_count');
  const window = {
    seconds: o.windowS,
    podsMarkedRunning: pending0 - pending1,
    auditPasses: passes,
    meanPassS:
      passes === 0 ? null : round(delta('placement_audit_duration_seconds_sum') / passes, 3),
    operatorCpuS: round(delta('process_cpu_seconds_total'), 2),
  };
  print(
    `steady window (${o.windowS} s, kwok marked ${window.podsMarkedRunning} pods Running)`,
    `${passes} audit passes (mean ${String(window.meanPassS)} s wall), operator CPU ` +
      `${window.operatorCpuS} s = ${round(window.operatorCpuS / o.windowS, 2)} cores`,
  );
  figures['steadyWindow'] = window;

  const afterDrift = await memory(op);
  print('operator memory at the end', showMemory(afterDrift));
  print('operator CPU in all', `${afterDrift.cpuSeconds} s (process_cpu_seconds_total)`);
  figures['memoryAtEnd'] = afterDrift;
  const { body } = await scrape(op);
  figures['auditPasses'] = metricValue(body, 'placement_audit_duration_seconds_count');
  figures['auditMeanPassS'] = round(
    metricValue(body, 'placement_audit_duration_seconds_sum') /
      Math.max(1, metricValue(body, 'placement_audit_duration_seconds_count')),
    3,
  );
  print(
    'audit passes in all, mean pass',
    `${String(figures['auditPasses'])}, ${String(figures['auditMeanPassS'])} s (placement_audit_duration_seconds)`,
  );
  const writes = metricValue(body, 'placement_workload_writes_total');
  print('workload writes (Audit mode: expected 0)', String(writes));
  figures['workloadWrites'] = writes;
  if (writes !== 0) throw new Fatal(`the operator wrote ${writes} workloads in Audit mode`);
  await stopOperator(op);
}

// ---------------------------------------------------------------- rollout (a new Enforce policy)

const ROLLOUT_LABEL = 'placement.dev/bench-rollout';
const ROLLOUT_POLICY = 'bench-rollout-spread';
const ROLLOUT_POLICY_PATH = `/apis/placement.dev/v1alpha1/clusterplacementpolicies/${ROLLOUT_POLICY}`;
const APPLIED_ANNOTATION = 'placement.dev/applied';
/** Every n-th rollout Deployment carries affinity terms of its own, which must survive. */
const OWNER_TERMS_EVERY = 4;
const ROLLOUT_NAMESPACE_SIZE = 100;
/** The operator's controllers, as its metrics label them. */
const CONTROLLERS = ['placement-workload', 'placement-policy'] as const;
/** Deployments are listed this often while a policy rolls out (a full list: ~1 s of API work). */
const ROLLOUT_SAMPLE_MS = 1000;
/** placement_rollout_budget_in_use is scraped this often. */
const GAUGE_SAMPLE_MS = 250;

interface DeploymentJson {
  metadata: {
    namespace: string;
    name: string;
    generation?: number;
    annotations?: Record<string, string>;
  };
  spec: { replicas?: number; template: { spec: { affinity?: JsonObject } } };
  status?: Record<string, number | undefined>;
}

const deploymentKey = (d: DeploymentJson): string => `${d.metadata.namespace}/${d.metadata.name}`;

/** Complete as `kubectl rollout status` judges it: observed, all replicas updated and available, no old pod left. */
function rolledOut(d: DeploymentJson): boolean {
  const st = d.status ?? {};
  const want = d.spec.replicas ?? 1;
  const updated = st['updatedReplicas'] ?? 0;
  return (
    (st['observedGeneration'] ?? 0) >= (d.metadata.generation ?? 0) &&
    updated === want &&
    (st['availableReplicas'] ?? 0) === want &&
    (st['replicas'] ?? 0) === updated
  );
}

/** The owner's own terms: preferred ones, so that kwok's nodes can run every replica. */
function ownerAffinity(app: string): JsonObject {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 100, podAffinityTerm: term(app, HOSTNAME) },
      ],
    },
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 10,
          preference: {
            matchExpressions: [
              { key: 'topology.kubernetes.io/region', operator: 'In', values: ['region-1'] },
            ],
          },
        },
      ],
    },
  };
}

function rolloutDeployment(namespace: string, index: number, replicas: number): JsonObject {
  const name = `r${String(index).padStart(4, '0')}`;
  const labels = { [ROLLOUT_LABEL]: 'true', app: name };
  const affinity = index % OWNER_TERMS_EVERY === 0 ? ownerAffinity(name) : undefined;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels }, spec: podSpec(affinity) },
    },
  };
}

/** The policy under test: every rollout Deployment spread over zones (a preferred term). */
const rolloutPolicy: JsonObject = {
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'ClusterPlacementPolicy',
  metadata: { name: ROLLOUT_POLICY },
  spec: {
    mode: 'Enforce',
    targets: {
      kinds: ['Deployment'],
      selector: { matchLabels: { [ROLLOUT_LABEL]: 'true' } },
      namespaceSelector: { matchLabels: { [ROLLOUT_LABEL]: 'true' } },
    },
    spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 50 }],
  },
};

/** The policy's term is in the template: a preferred anti-affinity term on the zone key. */
function carriesPolicyTerm(d: DeploymentJson): boolean {
  const anti = d.spec.template.spec.affinity?.['podAntiAffinity'] as
    | { preferredDuringSchedulingIgnoredDuringExecution?: { podAffinityTerm?: JsonObject }[] }
    | undefined;
  return (
    d.metadata.annotations?.[APPLIED_ANNOTATION] !== undefined &&
    (anti?.preferredDuringSchedulingIgnoredDuringExecution ?? []).some(
      (t) => t.podAffinityTerm?.['topologyKey'] === ZONE,
    )
  );
}

/** Owner terms (from the original template) missing from the current one, by exact match. */
function lostOwnerTerms(original: DeploymentJson, now: DeploymentJson): number {
  const before = original.spec.template.spec.affinity ?? {};
  const after = now.spec.template.spec.affinity ?? {};
  let lost = 0;
  for (const [kind, rules] of Object.entries(before)) {
    for (const [rule, terms] of Object.entries(rules as Record<string, Json[]>)) {
      const present = new Set(
        ((after[kind] as Record<string, Json[]> | undefined)?.[rule] ?? []).map((t) =>
          JSON.stringify(t),
        ),
      );
      lost += terms.filter((t) => !present.has(JSON.stringify(t))).length;
    }
  }
  return lost;
}

async function listRollout(api: Api): Promise<DeploymentJson[]> {
  return (
    await api.get<{ items: DeploymentJson[] }>(
      `/apis/apps/v1/deployments?labelSelector=${encodeURIComponent(`${ROLLOUT_LABEL}=true`)}`,
    )
  ).items;
}

/** Requests the API server served for a resource, by verb and code (its own counter). */
async function apiserverRequests(api: Api, resource: string): Promise<Record<string, number>> {
  const res = await api.send('GET', '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const out: Record<string, number> = {};
  for (const line of res.body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{') || !line.includes(`resource="${resource}"`)) {
      continue;
    }
    const label = (k: string): string => new RegExp(`${k}="([^"]*)"`).exec(line)?.[1] ?? '';
    const key = `${label('verb')}${label('subresource') === '' ? '' : `/${label('subresource')}`} ${label('code')}`;
    out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

function difference(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Counters of the operator, by label value, between two scrapes. */
function counterDelta(
  after: string,
  before: string,
  name: string,
  label: string,
  values: readonly string[],
): Record<string, number> {
  return Object.fromEntries(
    values.map((v) => [
      v,
      metricValue(after, name, { [label]: v }) - metricValue(before, name, { [label]: v }),
    ]),
  );
}

interface RolloutRun {
  /** Apply (POST) or delete (DELETE) of the policy → every template as wanted. */
  allTemplatesS: number;
  /** → also every rollout complete. */
  allRolledOutS: number;
  /** First and last write the operator logged, from the apply or delete. */
  firstWriteS: number;
  lastWriteS: number;
  writesLogged: number;
  writesPerS: number;
  /** Most Deployments rolling at once, in the API's lists and in the operator's gauge. */
  maxRolling: number;
  maxBudgetInUse: number;
  samples: number;
  /** Scrapes of the gauge that failed (each a lost sample). */
  gaugeFailures: number;
  operatorWrites: Record<string, number>;
  operatorReverts: Record<string, number>;
  /** Reconciles and queue retries, by controller. */
  reconciles: Record<string, number>;
  workqueueRetries: Record<string, number>;
  reconcileErrors: number;
  apiserverDeploymentRequests: Record<string, number>;
  apiserverPolicyRequests: Record<string, number>;
  operatorCpuS: number;
}

/**
 * One change (apply or delete of the policy) followed to its end: Deployments listed every
 * second (how many carry what `done` wants, how many are rolling), the budget gauge scraped
 * every 250 ms, and the operator's write log lines and counters.
 */
async function followRollout(
  api: Api,
  op: OperatorProcess,
  change: () => Promise<void>,
  done: (d: DeploymentJson) => boolean,
  logMessage: string,
  budget: number,
  count: number,
): Promise<RolloutRun> {
  const before = (await scrape(op)).body;
  const deploymentsBefore = await apiserverRequests(api, 'deployments');
  const policiesBefore = await apiserverRequests(api, 'clusterplacementpolicies');
  const logsBefore = op.logs.length;
  let maxBudgetInUse = 0;
  const sampling = new AbortController();
  let gaugeFailures = 0;
  // A failed scrape (a reset keep-alive connection under load) costs one sample, not the run;
  // an operator that died is caught by the main loop.
  const gauge = (async () => {
    while (!sampling.signal.aborted) {
      try {
        const { body } = await scrape(op);
        maxBudgetInUse = Math.max(
          maxBudgetInUse,
          metricValue(body, 'placement_rollout_budget_in_use'),
        );
      } catch {
        gaugeFailures++;
      }
      await sleep(GAUGE_SAMPLE_MS);
    }
  })();
  const t0 = Date.now();
  await change();
  let allTemplates: number | undefined;
  let maxRolling = 0;
  let samples = 0;
  let lastReport = Date.now();
  try {
    const end = await until(
      `${count} Deployments ${logMessage === 'injected affinity' ? 'carrying the policy' : 'back as written'}, rolled out`,
      async () => {
        if (op.child.exitCode !== null)
          throw new Fatal(`operator exited with ${op.child.exitCode}`);
        const items = await listRollout(api);
        const at = Date.now();
        samples++;
        const rolling = items.filter((d) => !rolledOut(d)).length;
        maxRolling = Math.max(maxRolling, rolling);
        const wanted = items.filter(done).length;
        if (wanted === count) allTemplates ??= at;
        if (at - lastReport > 15_000) {
          lastReport = at;
          progress(`${wanted}/${count} templates done, ${rolling} rolling`);
        }
        return allTemplates !== undefined && rolling === 0 ? at : undefined;
      },
      // 1,000 rollouts a few at a time take minutes; the run's own timeout is the bound.
      24 * 3_600_000,
      ROLLOUT_SAMPLE_MS,
    );
    if (maxRolling > budget) {
      throw new Fatal(`${maxRolling} Deployments were rolling at once; the budget is ${budget}`);
    }
    if (maxBudgetInUse === 0) {
      throw new Fatal(
        `placement_rollout_budget_in_use never read above 0 (${gaugeFailures} failed scrapes)`,
      );
    }
    if (maxBudgetInUse > budget) {
      throw new Fatal(
        `placement_rollout_budget_in_use reached ${maxBudgetInUse}; the limit is ${budget}`,
      );
    }
    const writes = op.logs
      .slice(logsBefore)
      .filter((l) => l['message'] === logMessage)
      .map((l) => Date.parse(String(l['timestamp'])));
    if (writes.length === 0) throw new Fatal(`the operator logged no "${logMessage}"`);
    const first = Math.min(...writes);
    const last = Math.max(...writes);
    const after = (await scrape(op)).body;
    const results = ['written', 'conflict', 'gone', 'failed'] as const;
    return {
      allTemplatesS: seconds((allTemplates ?? end) - t0),
      allRolledOutS: seconds(end - t0),
      firstWriteS: seconds(first - t0),
      lastWriteS: seconds(last - t0),
      writesLogged: writes.length,
      writesPerS: last > first ? round(writes.length / ((last - first) / 1000), 2) : writes.length,
      maxRolling,
      maxBudgetInUse,
      samples,
      gaugeFailures,
      operatorWrites: counterDelta(
        after,
        before,
        'placement_workload_writes_total',
        'result',
        results,
      ),
      operatorReverts: counterDelta(
        after,
        before,
        'placement_workload_reverts_total',
        'result',
        results,
      ),
      reconciles: counterDelta(
        after,
        before,
        'controller_runtime_reconcile_total',
        'controller',
        CONTROLLERS,
      ),
      workqueueRetries: counterDelta(after, before, 'workqueue_retries_total', 'name', CONTROLLERS),
      reconcileErrors:
        metricValue(after, 'controller_runtime_reconcile_errors_total') -
        metricValue(before, 'controller_runtime_reconcile_errors_total'),
      apiserverDeploymentRequests: difference(
        await apiserverRequests(api, 'deployments'),
        deploymentsBefore,
      ),
      apiserverPolicyRequests: difference(
        await apiserverRequests(api, 'clusterplacementpolicies'),
        policiesBefore,
      ),
      operatorCpuS: round(
        metricValue(after, 'process_cpu_seconds_total') -
          metricValue(before, 'process_cpu_seconds_total'),
        2,
      ),
    };
  } finally {
    sampling.abort();
    await gauge.catch(() => undefined);
  }
}

function showRun(what: string, budget: number, r: RolloutRun): void {
  print(
    `${what}, budget ${budget}: every template done`,
    `${r.allTemplatesS} s; every rollout complete ${r.allRolledOutS} s`,
  );
  print(
    `  writes logged, first → last`,
    `${r.writesLogged}, ${r.firstWriteS} → ${r.lastWriteS} s = ${r.writesPerS} writes/s`,
  );
  print(
    '  most Deployments rolling at once',
    `${r.maxRolling} (API lists, ${r.samples} samples), gauge max ${r.maxBudgetInUse}; budget ${budget}`,
  );
  print(
    '  placement_workload_writes / reverts by result',
    `${JSON.stringify(r.operatorWrites)} / ${JSON.stringify(r.operatorReverts)}`,
  );
  print(
    '  API server: deployments, clusterplacementpolicies',
    `${JSON.stringify(r.apiserverDeploymentRequests)}, ${JSON.stringify(r.apiserverPolicyRequests)}`,
  );
  print(
    '  reconciles, queue retries, errors, operator CPU',
    `${JSON.stringify(r.reconciles)}, ${JSON.stringify(r.workqueueRetries)}, ${r.reconcileErrors}, ` +
      `${r.operatorCpuS} s`,
  );
}

/**
 * Figure 6 (docs/benchmarks.md, "A new policy over 1,000 workloads"): all rewritten as fast
 * as the API server's rate limits allow, with the rollout budget respected. Real Deployments (not
 * paused; the controller manager, scheduler and kwok roll them out), a quarter with affinity
 * terms of their own. For each budget, a fresh operator (default flags but --rollout-budget),
 * then an Enforce ClusterPlacementPolicy over all of them is created, followed until every
 * template carries its term and every rollout is complete, and deleted, followed until every
 * template is back to what its owner wrote.
 */
async function rolloutPhase(api: Api, c: Cluster, o: Options): Promise<void> {
  const t = performance.now();
  await installCrds(c);
  const namespaces = Array.from(
    { length: Math.ceil(o.rolloutWorkloads / ROLLOUT_NAMESPACE_SIZE) },
    (_, i) => `bench-rollout-${String(i).padStart(2, '0')}`,
  );
  for (const name of namespaces) {
    await api.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { [ROLLOUT_LABEL]: 'true' } },
    });
  }
  await defaultServiceAccounts(api, namespaces);
  const indices = Array.from({ length: o.rolloutWorkloads }, (_, i) => i);
  await inParallel(indices, Math.max(1, Math.floor(o.concurrency / 4)), async (i) => {
    const ns = namespaces[Math.floor(i / ROLLOUT_NAMESPACE_SIZE)] ?? '';
    await api.create(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      rolloutDeployment(ns, i, o.rolloutReplicas),
    );
  });
  const createdS = seconds(performance.now() - t);
  // The controller manager creates the ReplicaSets and pods at its own 20 requests/s.
  let lastReport = performance.now();
  const originals = await until(
    `${o.rolloutWorkloads} Deployments rolled out`,
    async () => {
      const items = await listRollout(api);
      const behind = items.filter((d) => !rolledOut(d)).length;
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        progress(`rollout Deployments: ${behind} of ${items.length} not rolled out yet`);
      }
      return items.length === o.rolloutWorkloads && behind === 0 ? items : undefined;
    },
    Math.max(300_000, o.rolloutWorkloads * o.rolloutReplicas * 600),
    2000,
  );
  const readyS = seconds(performance.now() - t);
  const original = new Map(originals.map((d) => [deploymentKey(d), d]));
  const template = (d: DeploymentJson): string => JSON.stringify(d.spec.template);
  const withOwnTerms = originals.filter((d) => d.spec.template.spec.affinity !== undefined).length;
  print(
    'rollout Deployments created; all rolled out',
    `${o.rolloutWorkloads} × ${o.rolloutReplicas} replica(s) (${withOwnTerms} with own terms) ` +
      `in ${createdS} s; ${readyS} s`,
  );
  const runs: Record<string, unknown>[] = [];
  figures['rollout'] = {
    workloads: o.rolloutWorkloads,
    replicas: o.rolloutReplicas,
    withOwnTerms,
    createdS,
    rolledOutS: readyS,
    runs,
  };

  for (const budget of o.rolloutBudgets) {
    print(`load average before the budget-${budget} run`, loadAverage());
    const op = launch(c, o.operator, '--rollout-budget', String(budget), '--log-level', 'info');
    await until(
      'the operator leading, its first audit done',
      async () => {
        if (op.child.exitCode !== null)
          throw new Fatal(`operator exited with ${op.child.exitCode}`);
        if (logPort(op) === undefined) return undefined;
        const { body } = await scrape(op);
        return metricValue(body, 'placement_audit_last_success_timestamp_seconds') > 0
          ? true
          : undefined;
      },
      300_000,
      500,
    );
    const loadAtApply = loadAverage();
    const apply = await followRollout(
      api,
      op,
      () =>
        api
          .create('/apis/placement.dev/v1alpha1/clusterplacementpolicies', rolloutPolicy)
          .then(() => undefined),
      carriesPolicyTerm,
      'injected affinity',
      budget,
      o.rolloutWorkloads,
    );
    showRun('policy applied', budget, apply);
    const applied = await listRollout(api);
    const lost = applied.reduce((n, d) => {
      const was = original.get(deploymentKey(d));
      return n + (was === undefined ? 0 : lostOwnerTerms(was, d));
    }, 0);
    const notRolled = applied.filter(
      (d) =>
        (d.metadata.generation ?? 0) <= (original.get(deploymentKey(d))?.metadata.generation ?? 0),
    ).length;
    print('  owner terms lost; Deployments not re-rolled', `${lost}; ${notRolled}`);
    if (lost > 0) throw new Fatal(`${lost} owner-written terms were lost by the apply`);
    if (notRolled > 0) throw new Fatal(`${notRolled} Deployments kept their old generation`);

    const loadAtDelete = loadAverage();
    const revert = await followRollout(
      api,
      op,
      async () => {
        const res = await api.send('DELETE', ROLLOUT_POLICY_PATH);
        if (res.status !== 200 && res.status !== 202) {
          throw new Fatal(
            `DELETE ${ROLLOUT_POLICY}: HTTP ${res.status}: ${res.body.slice(0, 300)}`,
          );
        }
      },
      (d) =>
        d.metadata.annotations?.[APPLIED_ANNOTATION] === undefined &&
        template(d) === template(original.get(deploymentKey(d)) ?? d),
      'reverted injected affinity',
      budget,
      o.rolloutWorkloads,
    );
    showRun('policy deleted', budget, revert);
    // The finalizer comes off once every injected term is out.
    await until(
      `${ROLLOUT_POLICY} gone`,
      async () => ((await api.send('GET', ROLLOUT_POLICY_PATH)).status === 404 ? true : undefined),
      60_000,
      500,
    );
    const reverted = await listRollout(api);
    const differing = reverted.filter(
      (d) => template(d) !== template(original.get(deploymentKey(d)) ?? d),
    ).length;
    print('  templates not equal to the originals', String(differing));
    if (differing > 0)
      throw new Fatal(`${differing} templates differ from the originals after the revert`);
    runs.push({
      budget,
      loadAtApply,
      apply,
      ownerTermsLost: lost,
      loadAtDelete,
      revert,
      templatesDiffering: differing,
    });
    await stopOperator(op);
  }
}

// ---------------------------------------------------------------- main

export function machine(): Record<string, unknown> {
  const m = {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadAverageAtStart: loadAverage(),
  };
  print('machine', `${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}`);
  print('load average at start (1, 5, 15 min)', m.loadAverageAtStart);
  return m;
}

async function main(): Promise<void> {
  const o = optionsOrExit(options, USAGE);
  const benchStart = performance.now();
  figures['machine'] = machine();
  figures['options'] = { ...o, phases: [...o.phases] };
  showOperatorForm(o.operator);
  const watchdog = giveUpAfter('operator bench', o.timeoutMin);

  let cluster: LocalCluster | undefined;
  let api: Api | undefined;
  try {
    const binDir = await ensureBinaries();
    cluster = await startLocalCluster({
      nodes: o.nodes,
      name: 'bench',
      zones: [...ZONES],
      binDir,
      // Nodes are created 16 at a time, then wait for kwok and the node lifecycle controller
      // (20 requests/s) to make them Ready and lift the not-ready taint.
      timeoutMs: 120_000 + o.nodes * 400,
      log: (line) => {
        progress(`cluster: ${line}`);
      },
    });
    const local = cluster;
    api = new Api(local.kubeconfigPath);
    const nodeNames = local.nodeNames;
    const upMs = performance.now() - benchStart;
    print('control plane up', `${seconds(upMs)} s with ${nodeNames.length} kwok nodes Ready`);
    figures['clusterStartS'] = seconds(upMs);
    const c = await operatorCluster(local);

    if (o.phases.has('audit')) await auditPhase(api, c, local, nodeNames, o);
    if (o.phases.has('rollout')) await rolloutPhase(api, c, o);
  } catch (err) {
    failed('operator bench', err);
  }
  await finish(benchStart, api, cluster, watchdog);
}

/** The cluster as the operator sees it: it runs as the chart's ServiceAccount, as it would in a cluster. */
export function operatorCluster(local: LocalCluster): Promise<Cluster> {
  return withOperatorAccount({
    kubeconfigPath: local.kubeconfigPath,
    operator: undefined,
    kubectl: (...args) => local.kubectl(...args),
    json: async <T>(...args: string[]) =>
      JSON.parse(await local.kubectl(...args, '-o', 'json')) as T,
    apply: () => Promise.reject(new Error('not used')),
  });
}

/** A failed run: the error, the running operator's last warnings, exit code 1. */
export function failed(bench: string, err: unknown): void {
  console.error(`${bench} failed: ${err instanceof Error ? err.message : String(err)}`);
  if (live !== undefined) {
    // Warnings and errors, and the last lines of any level: where it was when it failed.
    const last = live.logs.slice(-15);
    const shown = live.logs.filter(
      (x) => x['level'] === 'error' || x['level'] === 'warn' || last.includes(x),
    );
    for (const l of shown.slice(-25)) console.error(`  operator: ${JSON.stringify(l)}`);
  }
  process.exitCode = 1;
}

/**
 * Exits 1 after `minutes`: a hung wait must not hold CI forever (the supervisor's watchdog
 * tears the cluster down). Unref'd; `finish` clears it.
 */
export function giveUpAfter(bench: string, minutes: number): NodeJS.Timeout {
  const watchdog = setTimeout(() => {
    console.error(`${bench}: gave up after ${minutes} minutes`);
    process.exit(1);
  }, minutes * 60_000);
  watchdog.unref();
  return watchdog;
}

/** The closing figures and the JSON line, then the operator and the cluster stopped. */
export async function finish(
  benchStart: number,
  api: Api | undefined,
  cluster: LocalCluster | undefined,
  watchdog: NodeJS.Timeout,
): Promise<void> {
  figures['loadAverageAtEnd'] = loadAverage();
  figures['totalS'] = seconds(performance.now() - benchStart);
  print('load average at end', String(figures['loadAverageAtEnd']));
  print('total (before teardown)', `${String(figures['totalS'])} s`);
  console.log(JSON.stringify(figures));

  // The cluster's processes are unref'd: while stop() waits for one that needed SIGKILL,
  // nothing else would keep Node.js running, and it would exit with stop() unfinished.
  const hold = setInterval(() => undefined, 1000);
  try {
    if (live !== undefined) await stopOperator(live);
    api?.close();
    await cluster?.stop();
  } finally {
    clearInterval(hold);
    clearTimeout(watchdog);
  }
}

// bench/envelope.bench.ts imports the pieces above; only a direct run runs this bench.
if (import.meta.main) await main();
