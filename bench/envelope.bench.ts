/**
 * The operator at the Kubernetes envelope: 5,000 KWOK nodes and 150,000 pods on the local
 * control plane, with the operator started against it as a child process: compiled as the
 * image runs it (`dist/main.js`), or from src/ with `--operator source`.
 * Measures, against these goals (reported, not asserted):
 *
 *   - operator RSS after the first audit ≤ 600 MiB (stretch 400 MiB); bytes per cached pod
 *     ≤ 1 KiB;
 *   - first complete audit ≤ 10 s after the caches have synced;
 *   - a node relabel shows in placement_violations in ≤ 1 s;
 *   - steady-state CPU at 10 pod changes/s ≤ 0.05 cores;
 *
 * and where the control plane itself limits the run: kube-apiserver and etcd RSS, the time
 * to list every pod, the create rate.
 *
 *   hack/node --expose-gc bench/envelope.bench.ts                          # 5,000 / 150,000: an hour or more
 *   hack/node --expose-gc bench/envelope.bench.ts --nodes 500 --pods 15000  # ~10 min
 *
 * How the cluster stays still. kube-controller-manager is stopped once the Node objects
 * exist, before any workload does: a ReplicaSet controller would otherwise count, adopt or replace
 * the pods created here, and the garbage collector delete any whose owner it has not seen.
 * With it off, every object stays as written, owner references and all:
 *   - Deployments (two thirds of the workloads), each with one ReplicaSet (replicas = its
 *     pods, pod-template-hash label, owned by the Deployment), whose pods it owns;
 *   - StatefulSets (a third), whose pods are named <set>-<ordinal> and carry the
 *     controller-revision-hash and pod-name labels, as the StatefulSet controller's would.
 * The pods are created already bound (spec.nodeName) with bounded concurrency over one
 * HTTP/2 connection. kwok plays the nodes only (Ready, heartbeats): the pods stay Pending,
 * which saves 150,000 status writes, and the audit judges a bound pod the same whether it is
 * Pending or Running. The namespaces' default ServiceAccounts are created here (their
 * controller is off too). etcd's quota is raised to 8 GiB for this bench.
 *
 * The placement, the workloads' own terms and the policies are bench/operator.bench.ts's
 * generator: groups of nine workloads, a third with required (anti-)affinity of their own,
 * a third under policies (all in Audit mode, so the operator writes no workload), placed so
 * that every required term holds, plus the drift probe on the first node.
 *
 * Prints progress on stderr; on stdout one line per figure, then one JSON line with every
 * figure. Exits 1 when a figure could not be measured (a wait timed out, the operator died,
 * the first audit found a violation, the operator wrote a workload), 2 on bad flags.
 * docs/benchmarks.md, "Operator at the envelope", has the method and the figures.
 */
import { createHash } from 'node:crypto';

import { inParallel } from '../test/support/parallel.ts';
import { SeededRandom } from '../test/support/seeded-random.ts';
import { startLocalCluster, type LocalCluster } from '../test/cluster/local-cluster.ts';
import { ensureBinaries } from '../test/cluster/select.ts';
import {
  installCrds,
  metricValue,
  operatorAccount,
  scrape,
  type Cluster,
  type OperatorProcess,
} from '../test/integration/harness.ts';
import { PODS } from '../src/kube/resources.ts';
import type { Pod } from '../src/api/core.ts';
import { intFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import { H2Api } from './h2-api.ts';
import type { OperatorForm } from './operator-entry.ts';
import {
  BENCH_LABEL,
  DRIFT_NS,
  Fatal,
  ZONES,
  failed,
  figures,
  finish,
  generateAndShow,
  giveUpAfter,
  launchAndProbe,
  machine,
  memory,
  operatorFormFlag,
  mib,
  operatorCluster,
  podSpec,
  print,
  progress,
  round,
  seconds,
  showMemory,
  showOperatorForm,
  sleep,
  stopOperator,
  type JsonObject,
  type Plan,
  type WorkloadPlan,
} from './operator.bench.ts';

const USAGE = `usage: hack/node --expose-gc bench/envelope.bench.ts [--nodes N] [--pods N]
  [--workload-size N] [--namespaces N] [--concurrency N] [--seed N] [--drift-runs N]
  [--window SECONDS] [--churn PER_SECOND] [--timeout-min N] [--operator-cpu-prof DIR]
  [--operator built|source]`;

interface Options {
  readonly nodes: number;
  readonly pods: number;
  readonly workloadSize: number;
  readonly namespaces: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly driftRuns: number;
  readonly windowS: number;
  readonly churn: number;
  readonly timeoutMin: number;
  readonly cpuProfDir: string | undefined;
  /** Compiled, as the image runs it (the default), or from src/. */
  readonly operator: OperatorForm;
}

function options(argv: readonly string[]): Options {
  const v = stringFlags(
    argv,
    [
      'nodes',
      'pods',
      'workload-size',
      'namespaces',
      'concurrency',
      'seed',
      'drift-runs',
      'window',
      'churn',
      'timeout-min',
      'operator-cpu-prof',
      'operator',
    ],
    USAGE,
  );
  const o: Options = {
    nodes: intFlag('nodes', v.nodes, 5000, 10),
    pods: intFlag('pods', v.pods, 150_000, 100),
    workloadSize: intFlag('workload-size', v['workload-size'], 10, 1),
    namespaces: intFlag('namespaces', v.namespaces, 50, 1),
    concurrency: intFlag('concurrency', v.concurrency, 48, 1),
    seed: intFlag('seed', v.seed, 1, 0),
    driftRuns: intFlag('drift-runs', v['drift-runs'], 3, 1),
    windowS: intFlag('window', v.window, 60, 5),
    churn: intFlag('churn', v.churn, 10, 1),
    timeoutMin: intFlag('timeout-min', v['timeout-min'], 120, 1),
    cpuProfDir: v['operator-cpu-prof'],
    operator: operatorFormFlag(v.operator),
  };
  if (o.workloadSize > o.nodes - 1) {
    throw new Error(`--workload-size ${o.workloadSize} needs more than ${o.workloadSize} nodes`);
  }
  return o;
}

// ---------------------------------------------------------------- objects

/** Positions in each group of nine (operator.bench.ts's generator) that are StatefulSets. */
const STATEFUL_POSITIONS = new Set(['0', '5', '8']);
const GIB = 2 ** 30;

const isStateful = (w: WorkloadPlan): boolean =>
  w.namespace !== DRIFT_NS && STATEFUL_POSITIONS.has(w.name.slice(w.name.lastIndexOf('-') + 1));

/** A stable 10-character hash, in the alphabet the workload controllers use for theirs. */
function shortHash(text: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = createHash('sha256').update(text).digest();
  let out = '';
  for (let i = 0; i < 10; i++) out += alphabet.charAt((bytes[i] ?? 0) % alphabet.length);
  return out;
}

interface Owner {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

const ownerRef = (o: Owner): JsonObject => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.name,
  uid: o.uid,
  controller: true,
  blockOwnerDeletion: true,
});

const labelsOf = (w: WorkloadPlan): Record<string, string> => ({
  [BENCH_LABEL]: 'true',
  ...w.labels,
});

function workloadObject(w: WorkloadPlan): JsonObject {
  const labels = labelsOf(w);
  const spec: JsonObject = {
    replicas: w.nodes.length,
    selector: { matchLabels: { app: w.labels['app'] ?? w.name } },
    template: { metadata: { labels }, spec: podSpec(w.affinity) },
  };
  return isStateful(w)
    ? {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: w.name, namespace: w.namespace, labels },
        spec: { ...spec, serviceName: w.name, podManagementPolicy: 'Parallel' },
      }
    : {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: w.name, namespace: w.namespace, labels },
        spec,
      };
}

function replicaSet(w: WorkloadPlan, hash: string, deployment: Owner): JsonObject {
  const labels = { ...labelsOf(w), 'pod-template-hash': hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${w.name}-${hash}`,
      namespace: w.namespace,
      labels,
      annotations: { 'deployment.kubernetes.io/revision': '1' },
      ownerReferences: [ownerRef(deployment)],
    },
    spec: {
      replicas: w.nodes.length,
      selector: { matchLabels: { app: w.labels['app'] ?? w.name, 'pod-template-hash': hash } },
      template: { metadata: { labels }, spec: podSpec(w.affinity) },
    },
  };
}

/** The pods a workload's controller would have made, each bound to its planned node. */
function podsOf(w: WorkloadPlan, owner: Owner, hash: string): JsonObject[] {
  return w.nodes.map((node, i) => {
    const stateful = owner.kind === 'StatefulSet';
    const name = stateful
      ? `${w.name}-${i}`
      : `${owner.name}-${shortHash(`${owner.name}/${i}`).slice(0, 5)}`;
    const labels = stateful
      ? {
          ...labelsOf(w),
          'controller-revision-hash': `${w.name}-${hash}`,
          'statefulset.kubernetes.io/pod-name': name,
          'apps.kubernetes.io/pod-index': String(i),
        }
      : { ...labelsOf(w), 'pod-template-hash': hash };
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: w.namespace, labels, ownerReferences: [ownerRef(owner)] },
      spec: { ...podSpec(w.affinity), nodeName: node },
    };
  });
}

const POLICY_API = '/apis/placement.dev/v1alpha1';

/** A created pod: where to find it again. */
interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

/** Creates everything in the plan; resolves with the bench's pods (the drift probe's aside). */
async function build(
  api: H2Api,
  c: Cluster,
  cluster: LocalCluster,
  plan: Plan,
  o: Options,
): Promise<PodRef[]> {
  let t = performance.now();
  await installCrds(c);
  for (const ns of plan.namespaces) {
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: ns });
    // The ServiceAccount controller is off: pods are refused until "default" exists.
    await api.create(`/api/v1/namespaces/${ns.name}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default' },
    });
  }
  await inParallel(plan.policies, 8, async (p) => {
    const meta = p['metadata'] as { namespace?: string };
    await api.create(
      meta.namespace === undefined
        ? `${POLICY_API}/clusterplacementpolicies`
        : `${POLICY_API}/namespaces/${meta.namespace}/placementpolicies`,
      p,
    );
  });
  const setupS = seconds(performance.now() - t);

  // Owners first (their uids go into the pods), then every pod.
  t = performance.now();
  const pods: { namespace: string; body: JsonObject }[] = [];
  let replicaSets = 0;
  await inParallel(plan.workloads, o.concurrency, async (w) => {
    const body = workloadObject(w);
    const kind = isStateful(w) ? 'StatefulSet' : 'Deployment';
    const plural = kind === 'StatefulSet' ? 'statefulsets' : 'deployments';
    const made = await api.create<{ metadata: { uid: string } }>(
      `/apis/apps/v1/namespaces/${w.namespace}/${plural}`,
      body,
    );
    const top: Owner = { apiVersion: 'apps/v1', kind, name: w.name, uid: made.metadata.uid };
    const hash = shortHash(JSON.stringify(body['spec'])).slice(0, kind === 'StatefulSet' ? 10 : 9);
    let owner = top;
    if (kind === 'Deployment') {
      const rs = await api.create<{ metadata: { uid: string; name: string } }>(
        `/apis/apps/v1/namespaces/${w.namespace}/replicasets`,
        replicaSet(w, hash, top),
      );
      replicaSets++;
      owner = {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: rs.metadata.name,
        uid: rs.metadata.uid,
      };
    }
    for (const body of podsOf(w, owner, hash)) pods.push({ namespace: w.namespace, body });
  });
  const ownersS = seconds(performance.now() - t);

  t = performance.now();
  const cpu0 = cluster.cpuSecondsByComponent();
  let created = 0;
  let lastReport = t;
  await inParallel(pods, o.concurrency, async (p) => {
    await api.create(`/api/v1/namespaces/${p.namespace}/pods`, p.body);
    created++;
    const now = performance.now();
    if (now - lastReport > 15_000) {
      lastReport = now;
      const rate = Math.round(created / ((now - t) / 1000));
      progress(`${created}/${pods.length} pods created (${rate}/s), load ${loadAverage()}`);
    }
  });
  const podsMs = performance.now() - t;
  const podsPerS = Math.round(pods.length / (podsMs / 1000));
  const cpuPerPod = createCost(cpu0, cluster.cpuSecondsByComponent(), pods.length, podsMs);
  const statefulSets = plan.workloads.filter(isStateful).length;
  print('namespaces, ServiceAccounts, CRDs, policies', `${setupS} s`);
  print(
    'created workloads',
    `${plan.workloads.length - statefulSets} Deployments + ${replicaSets} ReplicaSets, ` +
      `${statefulSets} StatefulSets in ${ownersS} s`,
  );
  print(
    'created bound pods (HTTP/2)',
    `${pods.length} in ${seconds(podsMs)} s = ${podsPerS} pods/s, ${o.concurrency} in flight`,
  );
  print(
    'control plane CPU per created pod',
    Object.entries(cpuPerPod.msPerPod)
      .map(([name, ms]) => `${name} ${ms} ms`)
      .join(', ') + ` (together ${cpuPerPod.cores} cores while creating)`,
  );
  figures['build'] = {
    setupS,
    deployments: plan.workloads.length - statefulSets,
    replicaSets,
    statefulSets,
    ownersS,
    podsS: seconds(podsMs),
    podsPerS,
    concurrency: o.concurrency,
    controlPlaneCpuMsPerPod: cpuPerPod.msPerPod,
    controlPlaneCores: cpuPerPod.cores,
  };
  return pods
    .filter((p) => p.namespace !== DRIFT_NS)
    .map((p) => ({ namespace: p.namespace, name: (p.body['metadata'] as { name: string }).name }));
}

// ---------------------------------------------------------------- control plane figures

/** CPU each control-plane process spent per created pod, and the cores they used together. */
function createCost(
  before: Record<string, number>,
  after: Record<string, number>,
  pods: number,
  ms: number,
): { msPerPod: Record<string, number>; cores: number } {
  const msPerPod: Record<string, number> = {};
  let total = 0;
  for (const [name, cpuS] of Object.entries(after)) {
    const used = cpuS - (before[name] ?? 0);
    total += used;
    msPerPod[name] = round((used * 1000) / pods, 2);
  }
  return { msPerPod, cores: round(total / (ms / 1000), 2) };
}

/** RSS of etcd, kube-apiserver and kwok, and etcd's size as the API server sees it. */
async function controlPlane(api: H2Api, cluster: LocalCluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, bytes] of Object.entries(cluster.rssByComponent())) {
    out[`${name}RssMiB`] = mib(bytes);
  }
  const res = await api.send('GET', '/metrics');
  if (res.status === 200) {
    let size = 0;
    for (const line of res.body.split('\n')) {
      if (line.startsWith('apiserver_storage_size_bytes'))
        size = Math.max(size, Number(line.split(' ').pop()));
    }
    out['etcdDbMiB'] = mib(size);
  }
  return out;
}

const showControlPlane = (cp: Record<string, number>): string =>
  Object.entries(cp)
    .map(([k, v]) => `${k.replace(/RssMiB$/, '').replace(/MiB$/, '')} ${v} MiB`)
    .join(', ');

/**
 * Every pod in pages of 500, as an informer lists them, gzipped as the operator's client asks;
 * and the pods trimmed by the operator's own transform into a Map, as its cache holds them,
 * with the heap that Map takes (needs --expose-gc).
 */
async function listAndTrim(api: H2Api): Promise<Record<string, number | null>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const cache = new Map<string, Pod>();
  // The heap before the list too: the transform's tables of shared values (src/kube/
  // shared-values.ts) outlive the Map, so only "after - before" counts them.
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const t = performance.now();
  let pages = 0;
  let bytes = 0;
  let wireBytes = 0;
  let parseMs = 0;
  let next = '';
  do {
    const query = `?limit=500${next === '' ? '' : `&continue=${encodeURIComponent(next)}`}`;
    const res = await api.send('GET', `/api/v1/pods${query}`, undefined, undefined, true);
    if (res.status !== 200) throw new Error(`GET /api/v1/pods: HTTP ${res.status}`);
    pages++;
    bytes += Buffer.byteLength(res.body);
    wireBytes += res.wireBytes;
    const p0 = performance.now();
    const page = JSON.parse(res.body) as { items: unknown[]; metadata: { continue?: string } };
    for (const raw of page.items) {
      const pod = PODS.transform(raw);
      if (pod !== undefined) cache.set(PODS.key(pod), pod);
    }
    parseMs += performance.now() - p0;
    next = page.metadata.continue ?? '';
  } while (next !== '');
  const listMs = performance.now() - t;
  // The heap with the cache and without it: what the cache alone keeps alive.
  const count = cache.size;
  gc?.();
  const heapWith = process.memoryUsage().heapUsed;
  cache.clear();
  gc?.();
  const cacheBytes = heapWith - process.memoryUsage().heapUsed;
  const perPod = gc === undefined ? null : Math.round(cacheBytes / count);
  const withShared = heapWith - heapBefore;
  const withSharedPerPod = gc === undefined ? null : Math.round(withShared / count);
  print(
    'API server: every pod, pages of 500, gzip, one client',
    `${seconds(listMs)} s (${pages} pages, ${mib(bytes)} MiB of JSON = ` +
      `${Math.round(bytes / count)} B/pod, ${mib(wireBytes)} MiB on the wire; ` +
      `parse + trim ${seconds(parseMs)} s of it)`,
  );
  print(
    'trimmed pod cache (operator transform, a Map)',
    perPod === null
      ? 'not measured: run with --expose-gc'
      : `${mib(cacheBytes)} MiB for ${count} pods = ${perPod} B/pod (goal ≤ 1024); with the ` +
          `shared values' tables ${mib(withShared)} MiB = ${String(withSharedPerPod)} B/pod`,
  );
  return {
    pods: count,
    listS: seconds(listMs),
    pages,
    mib: mib(bytes),
    gzipMiB: mib(wireBytes),
    parseAndTrimS: seconds(parseMs),
    cacheMiB: gc === undefined ? null : mib(cacheBytes),
    cacheBytesPerPod: perPod,
    withSharedTablesMiB: gc === undefined ? null : mib(withShared),
    withSharedTablesBytesPerPod: withSharedPerPod,
  };
}

// ---------------------------------------------------------------- steady state

/** Operator CPU and audit passes over `windowS`, while `change` runs `perSecond` times a second. */
async function cpuWindow(
  op: OperatorProcess,
  windowS: number,
  perSecond: number,
  change: (n: number) => Promise<void>,
): Promise<Record<string, number | null>> {
  const w0 = (await scrape(op)).body;
  const t0 = performance.now();
  let changes = 0;
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  if (perSecond > 0) {
    for (let n = 0; performance.now() - t0 < windowS * 1000; n++) {
      const due = t0 + (n * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      inFlight.push(
        change(n).then(
          () => {
            changes++;
          },
          () => {
            failed++;
          },
        ),
      );
    }
    await Promise.all(inFlight);
  } else {
    await sleep(windowS * 1000);
  }
  const w1 = (await scrape(op)).body;
  const elapsedS = (performance.now() - t0) / 1000;
  const delta = (name: string): number => metricValue(w1, name) - metricValue(w0, name);
  const passes = delta('placement_audit_duration_seconds_count');
  const cpu = delta('process_cpu_seconds_total');
  return {
    seconds: round(elapsedS, 1),
    changes,
    failedChanges: failed,
    auditPasses: passes,
    meanPassS:
      passes === 0 ? null : round(delta('placement_audit_duration_seconds_sum') / passes, 3),
    operatorCpuS: round(cpu, 2),
    cores: round(cpu / elapsedS, 3),
  };
}

/** Label patches on seeded-random pods (a label no selector reads): each one a pod update. */
function churn(api: H2Api, pods: readonly PodRef[], seed: number): (n: number) => Promise<void> {
  const rng = new SeededRandom(seed >>> 0 || 1);
  return async (n) => {
    const pod = pods[Math.floor(rng.next() * pods.length)];
    if (pod === undefined) return;
    await api.mergePatch(`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`, {
      metadata: { labels: { 'placement.dev/bench-churn': String(n) } },
    });
  };
}

// ---------------------------------------------------------------- the operator's Lease

/** The operator's renew period (src/kube/leader.ts's default retry period). */
const RENEW_PERIOD_MS = 2000;

/**
 * Polls the operator's Lease twice per renew period for the whole run: who held it, how
 * many times it changed hands, and the gaps between renewals (by the renewTime the operator
 * wrote, so the poll's own delay does not count). A renewal comes a period after the last one
 * finished, so gaps run a little over a period; a gap of n whole periods is n - 1 missed.
 */
function watchLease(api: H2Api, c: Cluster): () => Promise<Record<string, unknown>> {
  const { lease, namespace } = operatorAccount(c);
  const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${lease}`;
  const holders = new Set<string>();
  const transitions = new Set<number>();
  let last: number | undefined;
  let renewals = 0;
  let missed = 0;
  let longestGapMs = 0;
  let pollErrors = 0;
  let stopped = false;
  const poll = async (): Promise<void> => {
    while (!stopped) {
      try {
        const res = await api.send('GET', path);
        if (res.status === 200) {
          const spec = (
            JSON.parse(res.body) as {
              spec?: { holderIdentity?: string; renewTime?: string; leaseTransitions?: number };
            }
          ).spec;
          if (spec?.holderIdentity !== undefined) holders.add(spec.holderIdentity);
          transitions.add(spec?.leaseTransitions ?? 0);
          const renewed = Date.parse(spec?.renewTime ?? '');
          if (!Number.isNaN(renewed) && renewed !== last) {
            if (last !== undefined) {
              const gap = renewed - last;
              longestGapMs = Math.max(longestGapMs, gap);
              missed += Math.max(0, Math.floor(gap / RENEW_PERIOD_MS) - 1);
            }
            renewals++;
            last = renewed;
          }
        }
      } catch {
        pollErrors++;
      }
      await sleep(RENEW_PERIOD_MS / 4);
    }
  };
  const running = poll();
  return async () => {
    stopped = true;
    await running;
    const out = {
      holders: holders.size,
      leaseTransitions: [...transitions].sort((a, b) => a - b),
      renewals,
      missedRenewals: missed,
      longestGapS: seconds(longestGapMs),
      pollErrors,
    };
    print(
      "operator's Lease over the run",
      `${holders.size} holder(s), ${renewals} renewals seen, ${missed} missed ` +
        `(longest gap ${out.longestGapS} s; renew every ${RENEW_PERIOD_MS / 1000} s, ` +
        'step down after 10 s)',
    );
    return out;
  };
}

// ---------------------------------------------------------------- main

async function envelope(api: H2Api, c: Cluster, cluster: LocalCluster, o: Options): Promise<void> {
  const plan = generateAndShow(o, cluster.nodeNames, 'workloads');
  const pods = await build(api, c, cluster, plan, o);
  const cpBefore = await controlPlane(api, cluster);
  print('control plane RSS before the operator', showControlPlane(cpBefore));
  figures['controlPlaneBeforeOperator'] = cpBefore;
  figures['podList'] = await listAndTrim(api);
  const leaseWatch = watchLease(api, c);
  try {
    const { op } = await launchAndProbe(api, c, plan, o);
    const startup = figures['startup'] as { toFirstAuditS: number; cachesSyncedS: number | null };
    const syncedToAudit =
      startup.cachesSyncedS === null
        ? null
        : round(startup.toFirstAuditS - startup.cachesSyncedS, 2);
    print('caches synced → first complete audit', `${String(syncedToAudit)} s (goal ≤ 10 s)`);
    figures['syncedToFirstAuditS'] = syncedToAudit;

    const idle = await cpuWindow(op, o.windowS, 0, () => Promise.resolve());
    print(
      `idle window (${idle['seconds']} s, node heartbeats only)`,
      `${idle['auditPasses']} passes, operator CPU ${idle['operatorCpuS']} s = ${idle['cores']} cores`,
    );
    figures['idleWindow'] = idle;
    const busy = await cpuWindow(op, o.windowS, o.churn, churn(api, pods, o.seed));
    print(
      `churn window (${busy['seconds']} s, ${o.churn} pod label changes/s)`,
      `${busy['changes']} changes (${busy['failedChanges']} failed), ${busy['auditPasses']} passes ` +
        `(mean ${String(busy['meanPassS'])} s wall), operator CPU ${busy['operatorCpuS']} s = ` +
        `${busy['cores']} cores (goal ≤ 0.05)`,
    );
    figures['churnWindow'] = busy;

    const atEnd = await memory(op);
    print('operator memory at the end', showMemory(atEnd));
    figures['memoryAtEnd'] = atEnd;
    const cpEnd = await controlPlane(api, cluster);
    print('control plane RSS at the end', showControlPlane(cpEnd));
    figures['controlPlaneAtEnd'] = cpEnd;
    const writes = metricValue((await scrape(op)).body, 'placement_workload_writes_total');
    print('workload writes (Audit mode: expected 0)', String(writes));
    figures['workloadWrites'] = writes;
    if (writes !== 0) throw new Fatal(`the operator wrote ${writes} workloads in Audit mode`);
    await stopOperator(op);
  } finally {
    figures['lease'] = await leaseWatch();
  }
}

async function main(): Promise<void> {
  const o = optionsOrExit(options, USAGE);
  const benchStart = performance.now();
  figures['machine'] = machine();
  figures['options'] = o;
  showOperatorForm(o.operator);
  const watchdog = giveUpAfter('envelope bench', o.timeoutMin);
  let cluster: LocalCluster | undefined;
  let api: H2Api | undefined;
  try {
    cluster = await startLocalCluster({
      nodes: o.nodes,
      name: 'envelope',
      zones: [...ZONES],
      binDir: await ensureBinaries(),
      timeoutMs: 120_000 + o.nodes * 400,
      kwokPods: false,
      etcdQuotaBytes: 8 * GIB,
      // A kubelet's 40 s Leases, renewed every 10 s, are 500 writes/s at 5,000 nodes: the
      // API server's whole budget on this machine. Nothing here reads them once the nodes are up.
      nodeLeaseDurationSeconds: 600,
      // kwok makes 5,000 nodes Ready in tens of minutes on a loaded machine; the audit reads
      // their labels only, so the bench goes on once they exist and kwok carries on meanwhile.
      waitForNodesReady: false,
      kwokNodeParallelism: 64,
      auditUsers: [],
      log: (line) => {
        progress(`cluster: ${line}`);
      },
    });
    const local = cluster;
    print(
      'control plane up',
      `${seconds(performance.now() - benchStart)} s with ${o.nodes} kwok nodes (kwok makes them Ready meanwhile)`,
    );
    figures['clusterStartS'] = seconds(performance.now() - benchStart);
    await local.stopControllerManager();
    // Every pod is created bound: the scheduler would only cache each one and use CPU the
    // API server needs for the creates.
    await local.stopScheduler();
    api = new H2Api(local.kubeconfigPath);
    const c = await operatorCluster(local);
    await envelope(api, c, local, o);
  } catch (err) {
    failed('envelope bench', err);
  }
  await finish(benchStart, api, cluster, watchdog);
}

await main();
