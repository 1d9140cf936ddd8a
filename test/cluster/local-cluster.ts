// A real, local Kubernetes control plane for tests: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler from the pinned binaries that
// hack/control-plane/build.sh builds, plus kwok, which plays the kubelet for N
// fake nodes (marks them Ready, runs scheduled pods). Everything listens on
// 127.0.0.1 only, in a temporary directory, and nothing is downloaded.
//
// Processes are started directly rather than through `kwokctl --runtime
// binary`: kwokctl daemonises its components, so they would survive a crashed
// test run, and it can fall back to downloading what it is not given.
import { execFile } from 'node:child_process';
import { mkdtempSync, realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { fakeNodeManifest, POD_NETWORK_CIDR } from './fake-node.ts';
import { KubeHttp } from './kube-http.ts';
import { inParallel } from '../support/parallel.ts';
import { defaultBinDir, missingBinaries, readVersions, STAGES_DIR } from './paths.ts';
import { OPERATOR_USER } from './operator-account.ts';
import { createPki, type KeyPair, type Pki } from './pki.ts';
import { Supervisor } from './supervisor.ts';

const runFile = promisify(execFile);

export interface NodeCapacity {
  cpu: string;
  memory: string;
  pods: string;
}

export interface LocalClusterOptions {
  /** Number of fake (kwok) nodes. */
  nodes: number;
  /** Zones assigned round-robin to the nodes. Default zone-a, zone-b, zone-c. */
  zones?: string[];
  /** Value of topology.kubernetes.io/region on every node. Default region-1. */
  region?: string;
  /** Prefix of the node names (<name>-node-<i>) and the kubeconfig context. Default "local". */
  name?: string;
  /** Capacity (= allocatable) of each node. Default 16 CPUs, 64Gi, 110 pods. */
  nodeCapacity?: NodeCapacity;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /** Directory with the binaries. Default: build.sh's cache directory. */
  binDir?: string;
  /** Keep the working directory (logs, etcd data) after stop(). Also PLACEMENT_KEEP_CLUSTER_DIR=1. */
  keepDir?: boolean;
  /** Give up starting after this long. Default 120 s. */
  timeoutMs?: number;
  /** Pods kwok moves through a stage (Running, deleted) at once. Default 16 (kwok's own: 4). */
  kwokPodParallelism?: number;
  /**
   * Users whose requests the API server's audit log records (Metadata level, everyone else
   * ignored). Default: the operator's ServiceAccount as the tests install it
   * (operator-account.ts). [] turns the audit log off.
   */
  auditUsers?: readonly string[];
  /** etcd's --quota-backend-bytes. Default: etcd's own (2 GiB), enough below ~50,000 pods. */
  etcdQuotaBytes?: number;
  /**
   * Whether kwok plays pods (Running, completed, deleted) besides nodes. Default true. Off,
   * bound pods stay Pending: one status write less per pod when creating many.
   */
  kwokPods?: boolean;
  /** The node Leases kwok renews (a quarter of this apart, like a kubelet). Default 40 s. */
  nodeLeaseDurationSeconds?: number;
  /** Nodes kwok initialises and heartbeats at once. Default 16. */
  kwokNodeParallelism?: number;
  /**
   * Whether start-up waits until every node is Ready and untainted. Default true. Off, it
   * returns once the Node objects exist, and kwok goes on making them Ready.
   */
  waitForNodesReady?: boolean;
}

export interface LocalCluster {
  name: string;
  /** Admin (system:masters) kubeconfig, with the credentials embedded. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Node names, in creation order. */
  nodeNames: string[];
  binDir: string;
  /** Absolute path of the pinned kubectl. */
  kubectlPath: string;
  /** Temporary directory holding certificates, kubeconfigs, etcd data and logs/. */
  workDir: string;
  /**
   * The API server's audit log (JSON lines, audit.k8s.io/v1 Events) next to the kubeconfig:
   * the requests of `auditUsers`, one line per stage after the request was received.
   * Undefined when the audit log is off.
   */
  auditLogPath: string | undefined;
  startupMs: number;
  /** Current resident memory of all cluster processes, in bytes. */
  rssBytes(): number;
  /** Current resident memory of each cluster process (etcd, kube-apiserver, ...), in bytes. */
  rssByComponent(): Record<string, number>;
  /** CPU seconds each running cluster process (etcd, kube-apiserver, ...) has used so far. */
  cpuSecondsByComponent(): Record<string, number>;
  /**
   * Stops kube-controller-manager for good (SIGTERM): no controller reconciles, collects
   * garbage or writes status from then on, so objects created afterwards stay as written.
   */
  stopControllerManager(): Promise<void>;
  /**
   * Stops kube-scheduler for good (SIGTERM): for runs that create their pods already bound,
   * where it would only keep a cache of every pod and spend CPU on every pod event.
   */
  stopScheduler(): Promise<void>;
  /** Runs the pinned kubectl against this cluster; resolves with stdout, rejects with stderr. */
  kubectl(...args: string[]): Promise<string>;
  /** Kills kube-apiserver alone (SIGKILL, as a crash would); etcd and the rest keep running. */
  stopApiserver(): Promise<void>;
  /** Starts kube-apiserver again: same port, flags and etcd; resolves once /readyz is ok. */
  startApiserver(): Promise<void>;
  /** Kills every process and removes the working directory. Safe to call twice. */
  stop(): Promise<void>;
}

const DEFAULT_ZONES = ['zone-a', 'zone-b', 'zone-c'];
const DEFAULT_CAPACITY: NodeCapacity = { cpu: '16', memory: '64Gi', pods: '110' };
const SERVICE_CIDR = '10.96.0.0/16';
const POLL_MS = 100;
/** Node creations in flight: the API server takes them in parallel. */
const NODE_CREATE_PARALLELISM = 16;
const KWOK_POD_PARALLELISM = 16;
/** Nodes kwok initialises and heartbeats at once (its default is 4). */
const KWOK_NODE_PARALLELISM = 16;
/** Ports taken between our probe and the component's bind are the one race left: retry. */
const START_ATTEMPTS = 3;

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      const portRace = error instanceof Error && /address already in use/.test(error.message);
      if (!portRace || attempt === START_ATTEMPTS) throw error;
      (options.log ?? logToStderr)(`a port was taken while starting; retrying (${attempt})`);
    }
  }
}

function logToStderr(line: string): void {
  process.stderr.write(`[local-cluster] ${line}\n`);
}

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
}

/** Everything the start-up steps share. */
interface Context {
  name: string;
  binDir: string;
  dir: string;
  ports: Ports;
  pki: Pki;
  server: string;
  supervisor: Supervisor;
  deadline: number;
  log: (line: string) => void;
  /** The audit policy and log; undefined when no user is audited. */
  audit: { policyPath: string; logPath: string } | undefined;
}

async function startOnce(options: LocalClusterOptions): Promise<LocalCluster> {
  const started = performance.now();
  const log = options.log ?? logToStderr;
  const binDir = options.binDir ?? defaultBinDir();
  const missing = missingBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')} in ${binDir}: run hack/control-plane/build.sh`);
  }
  const keepDir = options.keepDir ?? process.env['PLACEMENT_KEEP_CLUSTER_DIR'] === '1';
  // realpath: on macOS-like setups tmpdir() is a symlink; components log real paths.
  const dir = mkdtempSync(join(realpathSync(tmpdir()), 'placement-cluster-'));
  const supervisor = new Supervisor(dir, keepDir);
  try {
    const ports = await freePorts();
    const audit = await writeAuditPolicy(dir, options.auditUsers ?? [OPERATOR_USER]);
    const context: Context = {
      name: options.name ?? 'local',
      binDir,
      dir,
      ports,
      pki: await createPki(dir),
      server: `https://127.0.0.1:${ports.apiserver}`,
      supervisor,
      deadline: Date.now() + (options.timeoutMs ?? 120_000),
      log,
      audit,
    };
    const api = new KubeHttp(context.server, { ca: context.pki.ca.cert, ...context.pki.admin });
    try {
      const cluster = await bringUp(context, api, options, started);
      log(
        `cluster up in ${(cluster.startupMs / 1000).toFixed(1)} s with ${options.nodes} node(s), ` +
          `RSS ${formatMiB(cluster.rssBytes())}; KUBECONFIG=${cluster.kubeconfigPath}`,
      );
      return cluster;
    } finally {
      api.close();
    }
  } catch (error) {
    await supervisor.stop();
    if (keepDir) log(`kept ${dir}`);
    throw error;
  }
}

async function bringUp(
  context: Context,
  api: KubeHttp,
  options: LocalClusterOptions,
  started: number,
): Promise<LocalCluster> {
  const { pki, dir, supervisor } = context;
  const kubeconfig = (file: string, user: string, pair: KeyPair): Promise<string> =>
    writeKubeconfig(join(dir, file), context.name, user, context.server, pki.ca.cert, pair);
  const [adminConfig, controllerManagerConfig, schedulerConfig] = await Promise.all([
    kubeconfig('admin.kubeconfig', 'admin', pki.admin),
    kubeconfig('controller-manager.kubeconfig', 'kube-controller-manager', pki.controllerManager),
    kubeconfig('scheduler.kubeconfig', 'kube-scheduler', pki.scheduler),
  ]);

  await startEtcd(context, options.etcdQuotaBytes);
  await startApiserver(context, api);
  startControllerManager(context, controllerManagerConfig, options);
  startScheduler(context, schedulerConfig);
  await startKwok(context, adminConfig, options);

  const nodeNames = await createNodes(context, api, options);
  await Promise.all([
    componentHealthy(context, 'kube-controller-manager', context.ports.controllerManager),
    componentHealthy(context, 'kube-scheduler', context.ports.scheduler),
    // Each poll lists every node: at thousands of nodes, megabytes a poll.
    options.waitForNodesReady === false
      ? Promise.resolve()
      : waitFor(context, 'nodes Ready', () => nodesReady(api, nodeNames), nodeNames.length / 2),
    // Pods in a namespace are refused until its default ServiceAccount exists.
    waitFor(
      context,
      'default ServiceAccount',
      async () =>
        (await api.get('/api/v1/namespaces/default/serviceaccounts/default')) !== undefined,
    ),
  ]);

  const kubectlPath = join(context.binDir, 'kubectl');
  return {
    name: context.name,
    kubeconfigPath: adminConfig,
    server: context.server,
    nodeNames,
    binDir: context.binDir,
    kubectlPath,
    workDir: dir,
    auditLogPath: context.audit?.logPath,
    startupMs: performance.now() - started,
    rssBytes: () => supervisor.rssBytes(),
    rssByComponent: () => supervisor.rssByComponent(),
    cpuSecondsByComponent: () => supervisor.cpuSecondsByComponent(),
    stopControllerManager: () => supervisor.stopComponent('kube-controller-manager', 'SIGTERM'),
    stopScheduler: () => supervisor.stopComponent('kube-scheduler', 'SIGTERM'),
    kubectl: (...args) => runKubectl(kubectlPath, adminConfig, args),
    stopApiserver: () => supervisor.stopComponent('kube-apiserver'),
    startApiserver: () => restartApiserver(context, options.timeoutMs ?? 120_000),
    stop: () => supervisor.stop(),
  };
}

// ---------------------------------------------------------------- components

async function startEtcd(context: Context, quotaBytes: number | undefined): Promise<void> {
  const { binDir, dir, ports, supervisor } = context;
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  supervisor.start('etcd', join(binDir, 'etcd'), [
    '--name=local',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=local=${peer}`,
    // The data is thrown away after the run: fsync would only cost latency.
    '--unsafe-no-fsync=true',
    // A lone member has nobody to lose an election to; a short timeout only
    // makes it elect itself sooner (~0.2 s instead of up to ~1 s).
    '--heartbeat-interval=10',
    '--election-timeout=100',
    '--log-level=warn',
    ...(quotaBytes === undefined ? [] : [`--quota-backend-bytes=${quotaBytes}`]),
  ]);
  const health = new URL('/health', client);
  await waitFor(context, 'etcd /health', async () => {
    const res = await fetch(health);
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  });
}

async function startApiserver(context: Context, api: KubeHttp): Promise<void> {
  const { pki, ports } = context;
  context.supervisor.start('kube-apiserver', join(context.binDir, 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.apiserver}`,
    // Kubernetes 1.36 accepts a loopback advertise address (1.37 would need
    // --endpoint-reconciler-type=none), so the kubernetes Service points here.
    '--advertise-address=127.0.0.1',
    `--cert-dir=${join(context.dir, 'apiserver')}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    '--authorization-mode=Node,RBAC',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccount.publicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccount.privateKey}`,
    '--allow-privileged=true',
    ...auditFlags(context),
  ]);
  // /readyz covers etcd, the RBAC bootstrap roles and the other post-start hooks.
  await waitFor(context, 'kube-apiserver /readyz', () => api.ok('/readyz'));
}

/**
 * The audit policy: Metadata (who did what to which object, no bodies) for the given users,
 * nothing for anyone else, and no RequestReceived stage (each request then has one line,
 * two for a watch: ResponseStarted and ResponseComplete). JSON is YAML to the API server.
 */
async function writeAuditPolicy(dir: string, users: readonly string[]): Promise<Context['audit']> {
  if (users.length === 0) return undefined;
  const policyPath = join(dir, 'audit-policy.yaml');
  const policy = {
    apiVersion: 'audit.k8s.io/v1',
    kind: 'Policy',
    omitStages: ['RequestReceived'],
    rules: [{ level: 'Metadata', users }, { level: 'None' }],
  };
  await writeFile(policyPath, `${JSON.stringify(policy, null, 2)}\n`);
  return { policyPath, logPath: join(dir, 'audit.log') };
}

function auditFlags(context: Context): string[] {
  if (context.audit === undefined) return [];
  return [
    `--audit-policy-file=${context.audit.policyPath}`,
    `--audit-log-path=${context.audit.logPath}`,
    '--audit-log-format=json',
    // An event is on disk before its response is sent: whoever reads the log after the
    // requests finished sees every one of them (batch mode would buffer them).
    '--audit-log-mode=blocking',
    // One file for the cluster's life: a reader needs no rotated pieces. The log stays small
    // (a few audited users, no bodies); a restarted API server appends to it.
    '--audit-log-maxsize=0',
  ];
}

/** startApiserver again, after stopApiserver, with a deadline of its own. */
async function restartApiserver(context: Context, timeoutMs: number): Promise<void> {
  const api = new KubeHttp(context.server, { ca: context.pki.ca.cert, ...context.pki.admin });
  try {
    await startApiserver({ ...context, deadline: Date.now() + timeoutMs }, api);
  } finally {
    api.close();
  }
}

/** Flags shared by the controller manager and the scheduler. */
function componentFlags(
  context: Context,
  name: string,
  kubeconfig: string,
  port: number,
): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    // Lets /healthz requests and delegated authn/z work as kubeadm sets them up.
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${join(context.dir, name)}`,
    // One instance only: skip the lease round trips.
    '--leader-elect=false',
  ];
}

function startControllerManager(
  context: Context,
  kubeconfig: string,
  options: LocalClusterOptions,
): void {
  const leaseSeconds = options.nodeLeaseDurationSeconds;

  const { pki, ports } = context;
  const name = 'kube-controller-manager';
  context.supervisor.start(name, join(context.binDir, name), [
    ...componentFlags(context, name, kubeconfig, ports.controllerManager),
    // All controllers share the manager's own identity. Per-controller
    // ServiceAccounts (kubeadm's choice) make it start controllers one by one,
    // each waiting for its token: ~5 s more before the cluster is usable.
    '--use-service-account-credentials=false',
    `--service-account-private-key-file=${pki.serviceAccount.privateKey}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // Longer Leases than a kubelet's: a node is not lost between two renewals.
    ...(leaseSeconds === undefined
      ? []
      : [`--node-monitor-grace-period=${Math.max(50, Math.ceil(leaseSeconds * 1.25))}s`]),
  ]);
}

function startScheduler(context: Context, kubeconfig: string): void {
  const name = 'kube-scheduler';
  context.supervisor.start(
    name,
    join(context.binDir, name),
    componentFlags(context, name, kubeconfig, context.ports.scheduler),
  );
}

async function startKwok(
  context: Context,
  kubeconfig: string,
  options: LocalClusterOptions,
): Promise<void> {
  const podParallelism = options.kwokPodParallelism ?? KWOK_POD_PARALLELISM;
  if (!Number.isInteger(podParallelism) || podParallelism < 1) {
    throw new Error(`kwokPodParallelism must be a positive integer, got ${podParallelism}`);
  }
  // JSON is YAML: kwok reads it as one more --config document.
  const configuration = join(context.dir, 'kwok-configuration.yaml');
  await writeFile(
    configuration,
    `${JSON.stringify({
      apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
      kind: 'KwokConfiguration',
      // A configuration document replaces kwok's defaults rather than adding to them: a
      // parallelism left out is 0, which kwok refuses.
      options: {
        podPlayStageParallelism: podParallelism,
        nodePlayStageParallelism: options.kwokNodeParallelism ?? KWOK_NODE_PARALLELISM,
        nodeLeaseParallelism: 4, // kwok's default
      },
    })}\n`,
  );
  const stages = [
    'node-initialize',
    'node-heartbeat-with-lease',
    ...(options.kwokPods === false ? [] : ['pod-ready', 'pod-complete', 'pod-delete']),
  ].map((stage) => join(STAGES_DIR, `${stage}.yaml`));
  context.supervisor.start(
    'kwok',
    join(context.binDir, 'kwok'),
    [
      `--kubeconfig=${kubeconfig}`,
      `--config=${[configuration, ...stages].join(',')}`,
      // Only nodes we mark as fake, so a real node added by hand is left alone.
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      // kwok renews node Leases like a kubelet; the node lifecycle controller reads them.
      `--node-lease-duration-seconds=${options.nodeLeaseDurationSeconds ?? 40}`,
      // Pod IPs of nodes without a pod CIDR of their own (fake-node.ts gives node i the
      // i-th /24 of the same range).
      `--cidr=${POD_NETWORK_CIDR}`,
    ],
    // kwok also reads ~/.kwok/kwok.yaml: isolate it from the user's.
    { ...process.env, HOME: context.dir },
  );
}

async function componentHealthy(context: Context, name: string, port: number): Promise<void> {
  const health = new KubeHttp(`https://127.0.0.1:${port}`, undefined);
  try {
    await waitFor(context, `${name} /healthz`, () => health.ok('/healthz'));
  } finally {
    health.close();
  }
}

// --------------------------------------------------------------------- nodes

async function createNodes(
  context: Context,
  api: KubeHttp,
  options: LocalClusterOptions,
): Promise<string[]> {
  const zones = options.zones ?? DEFAULT_ZONES;
  if (zones.length === 0) throw new Error('zones must not be empty');
  const kubeletVersion = readVersions().kubernetes;
  const nodes = Array.from({ length: options.nodes }, (_, i) =>
    fakeNode(context.name, i, {
      zone: zones[i % zones.length] ?? '',
      region: options.region ?? 'region-1',
      capacity: options.nodeCapacity ?? DEFAULT_CAPACITY,
      kubeletVersion,
    }),
  );
  const since = performance.now();
  await inParallel(nodes, NODE_CREATE_PARALLELISM, async (node) => {
    const res = await api.send('POST', '/api/v1/nodes', node);
    if (res.status !== 201) {
      throw new Error(`creating node ${node.metadata.name}: HTTP ${res.status}: ${res.body}`);
    }
  });
  context.log(
    `${nodes.length} node(s) created in ${((performance.now() - since) / 1000).toFixed(1)} s`,
  );
  return nodes.map((node) => node.metadata.name);
}

interface NodeTraits {
  zone: string;
  region: string;
  capacity: NodeCapacity;
  kubeletVersion: string;
}

function fakeNode(prefix: string, index: number, traits: NodeTraits) {
  return fakeNodeManifest({
    name: `${prefix}-node-${index}`,
    index,
    labels: {
      'topology.kubernetes.io/zone': traits.zone,
      'topology.kubernetes.io/region': traits.region,
    },
    capacity: traits.capacity,
    kubeletVersion: traits.kubeletVersion,
  });
}

interface NodeList {
  items: {
    metadata: { name: string };
    spec?: { taints?: { key: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  }[];
}

/** Ready, and the not-ready taint that admission puts on new nodes has been lifted. */
async function nodesReady(api: KubeHttp, names: string[]): Promise<boolean> {
  const list = (await api.get('/api/v1/nodes')) as NodeList | undefined;
  const ready = new Set(
    (list?.items ?? [])
      .filter((node) =>
        node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )
      .filter((node) => !node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/not-ready'))
      .map((node) => node.metadata.name),
  );
  return names.every((name) => ready.has(name));
}

// ------------------------------------------------------------------- helpers

/**
 * Polls check until it holds. A check that throws counts as "not yet" (the
 * error is reported at the deadline); a component that died fails at once.
 */
async function waitFor(
  context: Context,
  what: string,
  check: () => Promise<boolean>,
  pollMs = POLL_MS,
): Promise<void> {
  const since = performance.now();
  let lastError = '';
  for (;;) {
    context.supervisor.assertRunning();
    try {
      if (await check()) break;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > context.deadline) {
      const detail = lastError === '' ? '' : ` (last error: ${lastError})`;
      throw new Error(
        `timed out waiting for ${what}${detail}; logs in ${context.supervisor.logDir}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(POLL_MS, pollMs)));
  }
  context.log(`${what}: ok after ${((performance.now() - since) / 1000).toFixed(1)} s`);
}

/** Reserves distinct free loopback ports by binding them all at once, then releases them. */
async function freePorts(): Promise<Ports> {
  const servers = await Promise.all(Array.from({ length: 5 }, () => listen(createServer())));
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler] = ports as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { etcdClient, etcdPeer, apiserver, controllerManager, scheduler };
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve(server);
    });
  });
}

async function writeKubeconfig(
  path: string,
  cluster: string,
  user: string,
  server: string,
  caFile: string,
  pair: KeyPair,
): Promise<string> {
  const base64 = async (file: string): Promise<string> => (await readFile(file)).toString('base64');
  // JSON is valid YAML, so kubectl and client libraries read it as a kubeconfig.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: cluster, cluster: { server, 'certificate-authority-data': await base64(caFile) } },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate-data': await base64(pair.cert),
          'client-key-data': await base64(pair.key),
        },
      },
    ],
    contexts: [{ name: cluster, context: { cluster, user } }],
    'current-context': cluster,
  };
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return path;
}

async function runKubectl(kubectl: string, kubeconfig: string, args: string[]): Promise<string> {
  const { stdout } = await runFile(kubectl, [`--kubeconfig=${kubeconfig}`, ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

export function formatMiB(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}
