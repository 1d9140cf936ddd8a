/**
 * Operator benchmark (issue #5, "Scale"): the local control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, kwok) with N fake nodes and M pods, and the
 * operator (src/main.ts) started against it as a child process. Measures
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
 *      passes and CPU over a steady window.
 *
 *   hack/node bench/operator.bench.ts                           # 500 nodes, 10,000 pods
 *   hack/node bench/operator.bench.ts --nodes 20 --pods 300     # smoke test, ~30 s
 *
 * Prints progress on stderr; on stdout one line per figure, then one JSON line with every
 * figure (printed before the cluster is torn down). Exits 1 when a figure could not be
 * measured (a wait timed out, the operator died, the first audit found a violation, the
 * drift was not reported, the operator wrote a workload), 2 on bad flags. docs/benchmarks.md,
 * "Operator at scale", has the method and the figures.
 *
 * The cluster is built in bulk, not through the scheduler: paused Deployments (so the
 * controller manager never creates ReplicaSets or pods for them) and their pods, bound
 * directly with spec.nodeName by parallel POSTs with the admin client certificate; kwok
 * then marks them Running. The pods name their Deployment as controller owner. They cannot
 * name a ReplicaSet that does not exist: the garbage collector deletes pods whose owners
 * are all absent. Placement is generated to satisfy every required term, so the first
 * audit must find no violation; the drift node holds only the drift probe's pod.
 */
import { SeededRandom } from '../test/support/seeded-random.ts';
import { intFlag } from './flags.ts';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

import { fakeNodeManifest } from '../test/cluster/fake-node.ts';
import { startLocalCluster, type LocalCluster } from '../test/cluster/local-cluster.ts';
import { readVersions } from '../test/cluster/paths.ts';
import { ensureBinaries } from '../test/cluster/select.ts';
import {
  installCrds,
  metricValue,
  scrape,
  startOperator,
  type Cluster,
  type OperatorProcess,
} from '../test/integration/harness.ts';

const HOSTNAME = 'kubernetes.io/hostname';
const ZONE = 'topology.kubernetes.io/zone';
const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';
const BENCH_LABEL = 'placement.dev/bench';
const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
const PODS_PER_NODE = 110;
const DRIFT_NS = 'bench-drift';
/**
 * startLocalCluster gives node i the pod CIDR 10.244.<i>.0/24, which the API server refuses
 * from i = 256 on; nodes past that are created here, continuing in 10.245.0.0/16 and up.
 */
const LOCAL_CLUSTER_MAX_NODES = 256;
const DRIFT_POLICY = 'drift-guard';

// ---------------------------------------------------------------- flags

const USAGE = `usage: hack/node bench/operator.bench.ts [--nodes N] [--pods N] [--workload-size N]
  [--namespaces N] [--drift-runs N] [--concurrency N] [--seed N] [--timeout-min N]
  [--settle-timeout-s N] [--window SECONDS]
  [--operator-cpu-prof DIR]`;

interface Options {
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
}

function options(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string' },
      pods: { type: 'string' },
      'workload-size': { type: 'string' },
      namespaces: { type: 'string' },
      'drift-runs': { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      'timeout-min': { type: 'string' },
      'settle-timeout-s': { type: 'string' },
      window: { type: 'string' },
      'operator-cpu-prof': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const o: Options = {
    nodes: intFlag('nodes', values.nodes, 500, 10),
    pods: intFlag('pods', values.pods, 10_000, 100),
    workloadSize: intFlag('workload-size', values['workload-size'], 10, 1),
    namespaces: intFlag('namespaces', values.namespaces, 10, 1),
    driftRuns: intFlag('drift-runs', values['drift-runs'], 3, 1),
    concurrency: intFlag('concurrency', values.concurrency, 32, 1),
    seed: intFlag('seed', values.seed, 1, 0),
    timeoutMin: intFlag('timeout-min', values['timeout-min'], 30, 1),
    settleTimeoutS: intFlag('settle-timeout-s', values['settle-timeout-s'], 300, 0),
    windowS: intFlag('window', values.window, 10, 1),
    cpuProfDir: values['operator-cpu-prof'],
  };
  // The drift node holds only the probe; the one-per-node workloads need that many others.
  if (o.workloadSize > o.nodes - 1) {
    throw new Error(`--workload-size ${o.workloadSize} needs more than ${o.workloadSize} nodes`);
  }
  if (o.pods > (o.nodes - 1) * PODS_PER_NODE * 0.8) {
    throw new Error(`--pods ${o.pods} does not fit on ${o.nodes} nodes of ${PODS_PER_NODE} pods`);
  }
  return o;
}

// ---------------------------------------------------------------- output

const figures: Record<string, unknown> = {};

function print(label: string, text: string): void {
  console.log(`${label.padEnd(50)} ${text}`);
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));
const seconds = (ms: number): number => round(ms / 1000, 2);
const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

/** Progress goes to stderr so that stdout holds figures only. */
function progress(line: string): void {
  process.stderr.write(`[operator-bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Polls until probe gives a value; throws naming `what` after timeoutMs. */
async function until<T>(
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

interface Response {
  readonly status: number;
  readonly body: string;
  /** Bytes on the wire (compressed, when the server gzipped the body). */
  readonly wireBytes: number;
}

/**
 * Bulk requests over keep-alive HTTPS with the admin client certificate from the cluster's
 * kubeconfig (system:masters: exempt from API priority and fairness, so the only limits
 * are the server's own speed and `concurrency`).
 */
class Api {
  readonly #server: string;
  readonly #agent: Agent;

  constructor(kubeconfigPath: string, concurrency: number) {
    const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
    };
    const cluster = config.clusters[0]?.cluster;
    const user = config.users[0]?.user;
    if (cluster === undefined || user === undefined) throw new Error('kubeconfig: no cluster/user');
    const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
    this.#server = cluster.server;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: concurrency,
      ca: b64(cluster['certificate-authority-data']),
      cert: b64(user['client-certificate-data']),
      key: b64(user['client-key-data']),
    });
  }

  send(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    gzip = false,
  ): Promise<Response> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': contentType,
    };
    if (gzip) headers['accept-encoding'] = 'gzip';
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.#server),
        {
          method,
          agent: this.#agent,
          timeout: 60_000,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            const plain = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
            resolve({
              status: res.statusCode ?? 0,
              body: plain.toString('utf8'),
              wireBytes: raw.length,
            });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async get<T>(path: string): Promise<T> {
    const res = await this.send('GET', path);
    if (res.status !== 200)
      throw new Error(`GET ${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    return JSON.parse(res.body) as T;
  }

  /** POST that retries on 429/5xx/connection errors (the API server under load); returns the object. */
  async create<T>(path: string, body: unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.send('POST', path, body);
        if (res.status === 201 || res.status === 200) return JSON.parse(res.body) as T;
        if (res.status !== 429 && res.status < 500) {
          throw new Fatal(`POST ${path}: HTTP ${res.status}: ${res.body.slice(0, 500)}`);
        }
        if (attempt >= 5) throw new Fatal(`POST ${path}: HTTP ${res.status} ${attempt} times`);
      } catch (err) {
        if (err instanceof Fatal || attempt >= 5) throw err;
      }
      await sleep(200 * attempt);
    }
  }

  async mergePatch(path: string, patch: unknown): Promise<void> {
    const res = await this.send('PATCH', path, patch, 'application/merge-patch+json');
    if (res.status !== 200)
      throw new Error(`PATCH ${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  }

  close(): void {
    this.#agent.destroy();
  }
}

class Fatal extends Error {}

/** Runs `work` over `items` with at most `limit` in flight. */
async function parallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---------------------------------------------------------------- the generated cluster

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Seeded choices to scatter pods (seed 0 counts as 1, as this bench always has). */
class Rng extends SeededRandom {
  constructor(seed: number) {
    super(seed >>> 0 || 1);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

interface WorkloadPlan {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly affinity: JsonObject | undefined;
  /** Node of each replica. */
  readonly nodes: string[];
}

interface Plan {
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
function generate(o: Options, nodeNames: readonly string[]): Plan {
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

function podSpec(affinity: JsonObject | undefined): JsonObject {
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

// ---------------------------------------------------------------- nodes past 256

/** A KWOK node of the bench's cluster, numbered past 256 like the local cluster's. */
function fakeNode(prefix: string, i: number, kubeletVersion: string): JsonObject {
  const name = `${prefix}-node-${i}`;
  return fakeNodeManifest({
    name,
    index: i,
    labels: {
      [ZONE]: ZONES[i % ZONES.length] ?? 'zone-a',
      'topology.kubernetes.io/region': 'region-1',
    },
    capacity: { cpu: '16', memory: '64Gi', pods: String(PODS_PER_NODE) },
    kubeletVersion,
  }) as unknown as JsonObject;
}

interface NodeList {
  items: {
    metadata: { name: string };
    spec?: { taints?: { key: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  }[];
}

/** Creates nodes from..to-1 and waits until kwok has them Ready and their not-ready taint is gone. */
async function addNodes(
  api: Api,
  prefix: string,
  from: number,
  to: number,
  o: Options,
): Promise<string[]> {
  if (to <= from) return [];
  const t = performance.now();
  const kubeletVersion = readVersions().kubernetes;
  const indices = Array.from({ length: to - from }, (_, k) => from + k);
  await parallel(indices, o.concurrency, async (i) => {
    await api.create('/api/v1/nodes', fakeNode(prefix, i, kubeletVersion));
  });
  const names = indices.map((i) => `${prefix}-node-${i}`);
  await until(
    `${names.length} more nodes Ready`,
    async () => {
      const list = await api.get<NodeList>('/api/v1/nodes');
      const ready = new Set(
        list.items
          .filter((n) =>
            n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          )
          .filter((n) => !n.spec?.taints?.some((x) => x.key === 'node.kubernetes.io/not-ready'))
          .map((n) => n.metadata.name),
      );
      return names.every((n) => ready.has(n)) ? true : undefined;
    },
    120_000 + names.length * 200,
    500,
  );
  progress(`${names.length} more nodes created and Ready in ${seconds(performance.now() - t)} s`);
  return names;
}

// ---------------------------------------------------------------- building it

async function build(api: Api, c: Cluster, plan: Plan, o: Options): Promise<void> {
  let t = performance.now();
  await installCrds(c);
  for (const ns of plan.namespaces) {
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: ns });
  }
  // Pods are refused until the namespace's default ServiceAccount exists.
  await until(
    'default ServiceAccounts',
    async () => {
      const list = await api.get<{ items: { metadata: { namespace: string } }[] }>(
        '/api/v1/serviceaccounts?fieldSelector=metadata.name=default',
      );
      const have = new Set(list.items.map((i) => i.metadata.namespace));
      return plan.namespaces.every((n) => have.has(n.name)) ? true : undefined;
    },
    60_000,
    200,
  );
  await parallel(plan.policies, 8, async (p) => {
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
  await parallel(plan.workloads, Math.max(1, Math.floor(o.concurrency / 4)), async (w) => {
    const d = await api.create<{ metadata: { uid: string } }>(
      `/apis/apps/v1/namespaces/${w.namespace}/deployments`,
      deployment(w),
    );
    await parallel(
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

interface Memory {
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

async function memory(op: OperatorProcess): Promise<Memory> {
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

const showMemory = (m: Memory): string =>
  `VmRSS ${m.vmRssMiB} MiB (peak ${m.vmHwmMiB}), process_resident_memory_bytes ${m.processResidentMiB} MiB, ` +
  `heap ${m.heapUsedMiB}/${m.heapTotalMiB} MiB used/total, external ${m.externalMiB} MiB`;

/** The time of the first log line with this message, by its winston timestamp. */
function logTime(op: OperatorProcess, message: string): number | undefined {
  const line = op.logs.find((l) => l['message'] === message);
  const ts = line?.['timestamp'];
  return typeof ts === 'string' ? Date.parse(ts) : undefined;
}

async function firstAudit(op: OperatorProcess, startedAt: number, o: Options): Promise<void> {
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

function logPort(op: OperatorProcess): number | undefined {
  const line = op.logs.find((l) => l['message'] === 'metrics and probes listening');
  return typeof line?.['port'] === 'number' ? line['port'] : undefined;
}

// ---------------------------------------------------------------- drift

interface DriftRun {
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

async function policyViolations(api: Api): Promise<number> {
  const p = await api.get<{ status?: { violations?: number } }>(
    `/apis/placement.dev/v1alpha1/namespaces/${DRIFT_NS}/placementpolicies/${DRIFT_POLICY}`,
  );
  return p.status?.violations ?? 0;
}

/**
 * One relabel and one revert, each timed from just before the PATCH until the metrics
 * (polled every 25 ms) and the policy status (polled every 50 ms) show the change.
 */
async function driftRun(api: Api, op: OperatorProcess, node: string): Promise<DriftRun> {
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

// ---------------------------------------------------------------- main

function machine(): Record<string, unknown> {
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
  let o: Options;
  try {
    o = options(process.argv.slice(2));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  const benchStart = performance.now();
  figures['machine'] = machine();
  figures['options'] = o;
  // A hung wait must not hold CI forever; the supervisor's watchdog tears the cluster down.
  const watchdog = setTimeout(() => {
    console.error(`operator bench: gave up after ${o.timeoutMin} minutes`);
    process.exit(1);
  }, o.timeoutMin * 60_000);
  watchdog.unref();

  let cluster: LocalCluster | undefined;
  let op: OperatorProcess | undefined;
  let api: Api | undefined;
  try {
    const binDir = await ensureBinaries();
    cluster = await startLocalCluster({
      nodes: Math.min(o.nodes, LOCAL_CLUSTER_MAX_NODES),
      name: 'bench',
      zones: [...ZONES],
      binDir,
      // Nodes are created one by one, then wait for kwok and the node lifecycle controller
      // (20 requests/s) to make them Ready and lift the not-ready taint: ~50 s for 256.
      timeoutMs: 120_000 + o.nodes * 400,
      log: (line) => {
        progress(`cluster: ${line}`);
      },
    });
    const local = cluster;
    api = new Api(local.kubeconfigPath, o.concurrency);
    const more = await addNodes(api, 'bench', local.nodeNames.length, o.nodes, o);
    const nodeNames = [...local.nodeNames, ...more];
    const upMs = performance.now() - benchStart;
    print('control plane up', `${seconds(upMs)} s with ${nodeNames.length} kwok nodes Ready`);
    figures['clusterStartS'] = seconds(upMs);
    const c: Cluster = {
      kubeconfigPath: local.kubeconfigPath,
      kubectl: (...args) => local.kubectl(...args),
      json: async <T>(...args: string[]) =>
        JSON.parse(await local.kubectl(...args, '-o', 'json')) as T,
      apply: () => Promise.reject(new Error('not used')),
    };

    const plan = generate(o, nodeNames);
    print(
      'generated',
      `${plan.stats['workloads']} Deployments (${plan.stats['workloadsWithTerms']} with required terms), ` +
        `${plan.stats['pods']} pods (${plan.stats['podsWithTerms']} with own terms), ` +
        `${plan.stats['namespaces']} namespaces, ${plan.stats['policies']} policies; ` +
        `busiest node ${plan.stats['maxPodsPerNode']} pods`,
    );
    figures['cluster'] = { nodes: o.nodes, ...plan.stats };
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
    print('load average before the operator starts', loadAverage());
    figures['loadAverageAtOperatorStart'] = loadAverage();

    // (1) start → first complete audit
    if (o.cpuProfDir !== undefined) {
      process.env['NODE_OPTIONS'] = `--cpu-prof --cpu-prof-dir=${o.cpuProfDir}`;
    }
    const startedAt = Date.now();
    op = startOperator(c, '--lease-name', 'placement-bench', '--log-level', 'info');
    await firstAudit(op, startedAt, o);

    // (3) memory right after the first audit
    const afterFirst = await memory(op);
    print('operator memory after the first audit', showMemory(afterFirst));
    print(
      'operator CPU to the first audit',
      `${afterFirst.cpuSeconds} s (process_cpu_seconds_total)`,
    );
    figures['memoryAfterFirstAudit'] = afterFirst;

    // (2) drift
    const runs: DriftRun[] = [];
    await sleep(2000); // let the start-up status writes settle
    for (let r = 0; r < o.driftRuns; r++) {
      runs.push(await driftRun(api, op, plan.driftNode));
      await sleep(1000);
    }
    const summary = (k: Exclude<keyof DriftRun, 'seen'>): Record<string, number> => {
      const xs = runs.map((x) => x[k]);
      return { median: round(median(xs), 2), min: Math.min(...xs), max: Math.max(...xs) };
    };
    const drift = {
      node: plan.driftNode,
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
  } catch (err) {
    console.error(`operator bench failed: ${err instanceof Error ? err.message : String(err)}`);
    if (op !== undefined) {
      for (const l of op.logs
        .filter((x) => x['level'] === 'error' || x['level'] === 'warn')
        .slice(-10)) {
        console.error(`  operator: ${JSON.stringify(l)}`);
      }
    }
    process.exitCode = 1;
  }
  figures['loadAverageAtEnd'] = loadAverage();
  figures['totalS'] = seconds(performance.now() - benchStart);
  print('load average at end', String(figures['loadAverageAtEnd']));
  print('total (before teardown)', `${String(figures['totalS'])} s`);
  console.log(JSON.stringify(figures));

  // The cluster's processes are unref'd: while stop() waits for one that needed SIGKILL,
  // nothing else would keep Node.js running, and it would exit with stop() unfinished.
  const hold = setInterval(() => undefined, 1000);
  try {
    if (op !== undefined) {
      const code = await op.stop();
      if (code !== 0) {
        console.error(`operator exited with ${String(code)} on SIGTERM`);
        process.exitCode = 1;
      }
    }
    api?.close();
    await cluster?.stop();
  } finally {
    clearInterval(hold);
    clearTimeout(watchdog);
  }
}

await main();
