/**
 * placement-operator: rewrites workload affinity from PlacementPolicies and reports
 * placement drift. This file reads flags and environment and wires the layers together;
 * nothing below it reads either.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import winston from 'winston';
import { Operator, POLICY_CONTROLLER, WORKLOAD_CONTROLLER } from './controller/operator.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { AdmissionSync } from './controller/admission-sync.ts';
import { KubeAdmissionWriter, mutatingAdmissionPolicyServed } from './kube/admission.ts';
import { loadKubeConfig, makeKubeClients } from './kube/client.ts';
import { KubeEventRecorder } from './kube/events.ts';
import { createInformer, type Informer } from './kube/informer.ts';
import { LeaderElector } from './kube/leader.ts';
import { NAMESPACES, NODES, PODS, policies, workloads } from './kube/resources.ts';
import { KubeEvictor, KubePolicyStatusWriter, KubeWorkloadWriter } from './kube/writers.ts';
import { ContinuousAudit } from './audit/continuous-audit.ts';
import { createMetrics, startMetricsServer } from './metrics/index.ts';

const USAGE = `Usage: placement-operator [flags]

  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG, in-cluster config in a pod, ~/.kube/config)
  --context NAME           kubeconfig context to use
  --leader-elect=BOOL      run active/standby with a coordination.k8s.io Lease (default true)
  --lease-name NAME        Lease name (default placement-operator)
  --lease-namespace NS     Lease namespace (default $POD_NAMESPACE, else default)
  --identity ID            this replica's identity (default $POD_NAME, else the hostname)
  --workers N              concurrent workload reconciles (default 4)
  --rollout-budget N       workloads that may roll out at once because of the operator (default 5)
  --metrics-port PORT      port of /metrics, /healthz, /readyz (default 8080; 0 picks a free one)
  --metrics-host HOST      address to listen on (default 0.0.0.0)
  --log-level LEVEL        error, warn, info or debug (default info; env LOG_LEVEL)
  --resync-interval DUR    look at every workload again this often (default 10m)
  --policy-settle DUR      wait this long after the last policy change that reaches a workload
                           before rewriting it, so policies applied together roll it once
                           (default 3s; 0s to 5m; 0s rewrites at once)
  --audit-interval DUR     full audit re-check interval (default 5m)
  --eviction-dry-run       log evictions instead of making them
`;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** `90s`, `5m`, `1h`, or milliseconds as a bare number. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new Error(`${flag}: "${text}" is not a duration such as 30s, 5m or 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return n * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
}

function positiveInt(text: string, flag: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${flag}: "${text}" is not an integer ≥ ${min}`);
  return n;
}

/** Longest settle window: past it a batch of policy changes would look like a stuck operator. */
export const MAX_SETTLE_MS = 5 * 60_000;

function settleWindow(text: string): number {
  const ms = parseDuration(text, '--policy-settle');
  if (ms > MAX_SETTLE_MS)
    throw new Error(`--policy-settle: "${text}" is longer than the maximum of 5m`);
  return ms;
}

export interface Config {
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
  readonly inCluster: boolean;
  readonly leaderElect: boolean;
  readonly leaseName: string;
  readonly leaseNamespace: string;
  readonly identity: string;
  readonly workers: number;
  readonly rolloutBudget: number;
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly resyncMs: number;
  readonly settleMs: number;
  readonly auditMs: number;
  readonly evictionDryRun: boolean;
}

/** Flags first, then the environment, then defaults. Throws with the flag's name on bad input. */
export function readConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'leader-elect': { type: 'string', default: 'true' },
      'lease-name': { type: 'string', default: 'placement-operator' },
      'lease-namespace': { type: 'string' },
      identity: { type: 'string' },
      workers: { type: 'string', default: '4' },
      'rollout-budget': { type: 'string', default: '5' },
      'metrics-port': { type: 'string', default: '8080' },
      'metrics-host': { type: 'string', default: '0.0.0.0' },
      'log-level': { type: 'string' },
      'resync-interval': { type: 'string', default: '10m' },
      'policy-settle': { type: 'string', default: '3s' },
      'audit-interval': { type: 'string', default: '5m' },
      'eviction-dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const level = values['log-level'] ?? env['LOG_LEVEL'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const leaderElect = values['leader-elect'];
  if (leaderElect !== 'true' && leaderElect !== 'false') {
    throw new Error(`--leader-elect: "${leaderElect}" is not true or false`);
  }
  const kubeconfig =
    values.kubeconfig ?? (env['KUBECONFIG'] === '' ? undefined : env['KUBECONFIG']);
  return {
    kubeconfig,
    context: values.context,
    inCluster: kubeconfig === undefined && env['KUBERNETES_SERVICE_HOST'] !== undefined,
    leaderElect: leaderElect === 'true',
    leaseName: values['lease-name'],
    leaseNamespace: values['lease-namespace'] ?? env['POD_NAMESPACE'] ?? 'default',
    identity: values.identity ?? env['POD_NAME'] ?? hostname(),
    workers: positiveInt(values.workers, '--workers'),
    rolloutBudget: positiveInt(values['rollout-budget'], '--rollout-budget'),
    metricsPort: positiveInt(values['metrics-port'], '--metrics-port', 0),
    metricsHost: values['metrics-host'],
    logLevel: level as Config['logLevel'],
    resyncMs: parseDuration(values['resync-interval'], '--resync-interval'),
    settleMs: settleWindow(values['policy-settle']),
    auditMs: parseDuration(values['audit-interval'], '--audit-interval'),
    evictionDryRun: values['eviction-dry-run'],
  };
}

/** Discovery: whether MutatingAdmissionPolicy is served; an unanswered question means no. */
async function admissionServed(kc: KubeConfig, log: winston.Logger): Promise<boolean> {
  try {
    return await mutatingAdmissionPolicyServed(kc, AbortSignal.timeout(30_000));
  } catch (error) {
    log.warn(
      'discovery of admissionregistration.k8s.io/v1 failed; injecting by the reconciler only',
      {
        error: error instanceof Error ? error.message : String(error),
      },
    );
    return false;
  }
}

/** Starts the operator; resolves with a function that shuts it down gracefully. */
export async function runOperator(
  config: Config,
  log: winston.Logger,
): Promise<() => Promise<void>> {
  const kc = loadKubeConfig({
    ...(config.kubeconfig === undefined ? {} : { kubeconfig: config.kubeconfig }),
    ...(config.context === undefined ? {} : { context: config.context }),
    inCluster: config.inCluster,
  });
  const clients = makeKubeClients(kc);
  const metrics = createMetrics({
    controllers: [WORKLOAD_CONTROLLER, POLICY_CONTROLLER],
    leases: [config.leaseName],
  });
  const informerOptions = { logger: log };
  const policyInformers = (['PlacementPolicy', 'ClusterPlacementPolicy'] as const).map((k) =>
    createInformer(kc, policies(k), informerOptions),
  );
  const workloadInformers = (
    ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'CronJob'] as const
  ).map((k) => createInformer(kc, workloads(k), informerOptions));
  const namespaceInformer = createInformer(kc, NAMESPACES, informerOptions);
  const podInformer = createInformer(kc, PODS, informerOptions);
  const nodeInformer = createInformer(kc, NODES, informerOptions);
  const informers: Informer<unknown>[] = [
    ...policyInformers,
    ...workloadInformers,
    namespaceInformer,
    podInformer,
    nodeInformer,
  ] as Informer<unknown>[];
  const events = new KubeEventRecorder(clients, {
    reportingInstance: config.identity,
    logger: log,
  });
  const admission = new AdmissionSync(
    (await admissionServed(kc, log)) ? new KubeAdmissionWriter(kc) : undefined,
    log,
  );
  metrics.placement.setInjectionMode(admission.mode);
  log.info('injection mode', {
    mode: admission.mode,
    detail:
      admission.mode === 'admission'
        ? 'MutatingAdmissionPolicy injects at admission; the reconciler brings existing workloads in line and reverts'
        : 'the API server does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy; the reconciler writes workloads after they are created',
  });
  const operator: Operator = new Operator(
    {
      sources: {
        policies: policyInformers,
        workloads: workloadInformers,
        namespaces: namespaceInformer,
      },
      workloadWriter: new KubeWorkloadWriter(clients),
      statusWriter: new KubePolicyStatusWriter(clients),
      events,
      metrics,
      log,
      audit: (ref: string) => audit.summary(ref),
      admission,
    },
    {
      workers: config.workers,
      rolloutBudget: config.rolloutBudget,
      resyncMs: config.resyncMs,
      settleMs: config.settleMs,
    },
  );
  const audit: ContinuousAudit = new ContinuousAudit(
    {
      pods: podInformer,
      nodes: nodeInformer,
      namespaces: namespaceInformer,
      workloads: workloadInformers,
      policies: () => operator.catalog.active(),
      policyChanges: policyInformers,
      events,
      metrics: metrics.placement,
      log,
      evictor: new KubeEvictor(clients),
      evictionDryRun: config.evictionDryRun,
      onChange: (refs) => {
        operator.refreshPolicies(refs);
      },
    },
    { fullCheckMs: config.auditMs },
  );
  const lead = (): void => {
    operator.start();
    audit.start();
  };
  let leading = !config.leaderElect;
  const server = await startMetricsServer({
    registry: metrics.registry,
    host: config.metricsHost,
    port: config.metricsPort,
    ready: () => {
      if (!informers.every((i) => i.synced)) return { ready: false, reason: 'caches not synced' };
      if (leading && audit.evaluations === 0)
        return { ready: false, reason: 'leader: first audit not done' };
      return { ready: true };
    },
  });
  log.info('metrics and probes listening', { host: server.host, port: server.port });
  await Promise.all(informers.map((i) => i.start()));
  log.info('caches synced', { informers: informers.length });

  const elector = config.leaderElect
    ? new LeaderElector({
        coordination: clients.coordination,
        namespace: config.leaseNamespace,
        name: config.leaseName,
        identity: config.identity,
        logger: log,
        onStartedLeading: () => {
          leading = true;
          metrics.leaderElectionMasterStatus.set({ name: config.leaseName }, 1);
          log.info('became leader; reconciling', { identity: config.identity });
          lead();
        },
        onNewLeader: (holder) => {
          // A standby says so: a replica that only waits must not look like a stuck one.
          if (holder !== config.identity && !leading)
            log.info('standing by', {
              leader: holder === '' ? '(none)' : holder,
              identity: config.identity,
            });
        },
        onStoppedLeading: () => {
          if (!leading) return;
          metrics.leaderElectionMasterStatus.set({ name: config.leaseName }, 0);
          // Another replica may already be writing: stop at once, as controller-runtime does.
          log.error('lost leadership; exiting so a fresh process can stand by');
          process.exit(1);
        },
      })
    : undefined;
  if (elector) elector.start();
  else lead();

  return async () => {
    log.info('shutting down');
    await operator.stop();
    await audit.stop();
    leading = false;
    await elector?.stop(); // releases the lease so a standby takes over at once
    await Promise.all(informers.map((i) => i.stop()));
    await events.flush();
    await server.close();
  };
}

function makeLogger(level: string): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'placement-operator' },
    transports: [new winston.transports.Console()],
  });
}

async function main(): Promise<void> {
  let config;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(
      `placement-operator: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`,
    );
    process.exitCode = 2;
    return;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const log = makeLogger(config.logLevel);
  const shutdown = await runOperator(config, log);
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('signal received', { signal });
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `placement-operator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
