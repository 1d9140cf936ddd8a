/**
 * placement-operator: rewrites workload affinity from PlacementPolicies and reports
 * placement drift. This file reads flags and environment and wires the layers together;
 * nothing below it reads either.
 *
 * Long because every flag is declared here with its help text, range and default, and
 * wiring follows from them; what each wired piece does lives in its own layer.
 */
import { hostname } from 'node:os';
import winston from 'winston';
import {
  EXCEPTION_CONTROLLER,
  Operator,
  POLICY_CONTROLLER,
  WORKLOAD_CONTROLLER,
} from './controller/operator.ts';
import { CROSS_NAMESPACE_TERMS } from './controller/policy-catalog.ts';
import { ApiHealth, apiTarget, checkApiServer } from './kube/api-health.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { AdmissionSync } from './controller/admission-sync.ts';
import { KubeAdmissionWriter, mutatingAdmissionPolicyServed } from './kube/admission.ts';
import { loadKubeConfig, makeKubeClients } from './kube/client.ts';
import { KubeEventRecorder } from './kube/events.ts';
import { createInformer, type Informer } from './kube/informer.ts';
import { LeaderElector } from './kube/leader.ts';
import { EXCEPTIONS, NAMESPACES, NODES, PODS, policies, workloads } from './kube/resources.ts';
import {
  KubeEvictor,
  KubeExceptionStatusWriter,
  KubePolicyStatusWriter,
  KubeWorkloadWriter,
} from './kube/writers.ts';
import { ContinuousAudit } from './audit/continuous-audit.ts';
import { ReportSync } from './audit/report-sync.ts';
import { KubeReportStore } from './kube/reports.ts';
import { apiVersionOf, OPENREPORTS, POLICY_REPORTS } from './api/reports.ts';
import { createMetrics, startMetricsServer } from './metrics/index.ts';
import { errorMessage } from './util/errors.ts';

/**
 * A flag: the Config field it sets, how it reads, and how its text becomes a value. `parse`
 * throws an Error whose message is the problem without the subject ("99999 is not a port
 * (0-65535)"); readConfig puts the flag's (or the environment variable's) name in front.
 */
interface Flag<K extends string, T> {
  readonly key: K;
  /** The value's name in the usage; absent for a switch (`--flag`, `--flag=true|false`). */
  readonly arg?: string;
  /** How the usage shows a switch: `--flag` (default) or `--flag=BOOL`. */
  readonly usage?: string;
  /** The values allowed, as messages and the README's flag table give them: `1s-24h`. */
  readonly range?: string;
  readonly help: string;
  /** Read when the flag is absent (an empty value counts as unset). */
  readonly env?: string;
  /** The text when neither the flag nor `env` is given; undefined leaves it unset. */
  readonly default?: string | (() => string);
  readonly parse: (text: string | undefined) => T;
}

const flag = <K extends string, T>(spec: Flag<K, T>): Flag<K, T> => spec;

/** `90s`, `5m`, `1h`, or milliseconds as a bare number. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new Error(`${text} is not a duration such as 30s, 5m or 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return n * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
}

const required = (text: string | undefined): string => {
  if (text === undefined) throw new Error('needs a value'); // a default always exists
  return text;
};

const text = <K extends string>(
  key: K,
  arg: string,
  help: string,
  more: { readonly env?: string; readonly default?: string | (() => string) } = {},
) => flag({ key, arg, help, ...more, parse: required });

const optionalText = <K extends string>(key: K, arg: string, help: string, env?: string) =>
  flag({ key, arg, help, ...(env === undefined ? {} : { env }), parse: (t) => t });

/** `--flag` or `--flag=true|false`. */
const toggle = <K extends string>(key: K, help: string, defaultValue: boolean) =>
  flag({
    key,
    help: `${help} (default ${String(defaultValue)})`,
    ...(defaultValue ? { usage: '=BOOL' } : {}),
    default: String(defaultValue),
    parse: (t): boolean => {
      if (t !== 'true' && t !== 'false') throw new Error(`${String(t)} is not true or false`);
      return t === 'true';
    },
  });

/**
 * A number within [min, max]: `read` turns the text into a number (or throws, saying why),
 * and `bound` the range's ends.
 */
const ranged = <K extends string, B extends string | number>(
  key: K,
  arg: string,
  help: string,
  range: { readonly min: B; readonly max: B; readonly default: B },
  read: (text: string) => number,
  bound: (end: B) => number,
) =>
  flag({
    key,
    arg,
    range: `${range.min}-${range.max}`,
    help: `${help}, ${range.min}-${range.max} (default ${range.default})`,
    default: String(range.default),
    parse: (t): number => {
      const bounds = `(${range.min}-${range.max})`;
      let n: number;
      try {
        n = read(required(t));
      } catch (error) {
        throw new Error(`${errorMessage(error)} ${bounds}`);
      }
      if (n < bound(range.min) || n > bound(range.max))
        throw new Error(`${String(t)} is out of range ${bounds}`);
      return n;
    },
  });

const readInteger = (t: string): number => {
  if (!/^-?\d+$/.test(t.trim())) throw new Error(`${t} is not an integer`);
  return Number(t);
};

const integer = <K extends string>(
  key: K,
  help: string,
  range: { readonly min: number; readonly max: number; readonly default: number },
) => ranged(key, 'N', help, range, readInteger, (end) => end);

/** A TCP port; 0 asks the kernel for a free one (tests). */
const port = <K extends string>(key: K, help: string, defaultPort: number) =>
  flag({
    key,
    arg: 'PORT',
    range: '0-65535',
    help: `${help}, 0-65535, 0 picks a free one (default ${defaultPort})`,
    default: String(defaultPort),
    parse: (t): number => {
      const n = Number(required(t).trim());
      if (!/^\d+$/.test(required(t).trim()) || n > 65_535)
        throw new Error(`${String(t)} is not a port (0-65535)`);
      return n;
    },
  });

/** Milliseconds, from one number and one unit, within [min, max] (given as durations). */
const duration = <K extends string>(
  key: K,
  help: string,
  range: { readonly min: string; readonly max: string; readonly default: string },
) => ranged(key, 'DUR', help, range, parseDuration, parseDuration);

const oneOf = <K extends string, const V extends string>(
  key: K,
  arg: string,
  help: string,
  values: readonly V[],
  more: { readonly env?: string; readonly default: V },
) =>
  flag({
    key,
    arg,
    help: `${help}: ${values.join(', ')} (default ${more.default}${more.env === undefined ? '' : `, or $${more.env}`})`,
    ...more,
    parse: (t): V => {
      if (!(values as readonly string[]).includes(required(t)))
        throw new Error(`${String(t)} is not one of ${values.join(', ')}`);
      return t as V;
    },
  });

/**
 * Every flag, in the order the usage lists them. A new flag is one line here; its value
 * appears in Config under `key`. The ranges are documented in the README's flag table.
 */
const FLAGS = {
  kubeconfig: optionalText(
    'kubeconfig',
    'PATH',
    'kubeconfig file (default: $KUBECONFIG, in-cluster config in a pod, ~/.kube/config)',
    'KUBECONFIG',
  ),
  context: optionalText(
    'context',
    'NAME',
    "kubeconfig context to use (default: the file's current-context)",
  ),
  'leader-elect': toggle(
    'leaderElect',
    'run active/standby with a coordination.k8s.io Lease',
    true,
  ),
  'lease-name': text('leaseName', 'NAME', 'Lease name (default placement-operator)', {
    default: 'placement-operator',
  }),
  'lease-namespace': text(
    'leaseNamespace',
    'NS',
    'Lease namespace (default $POD_NAMESPACE, else default)',
    { env: 'POD_NAMESPACE', default: 'default' },
  ),
  identity: text(
    'identity',
    'ID',
    "this replica's identity (default $POD_NAME, else the hostname)",
    { env: 'POD_NAME', default: () => hostname() },
  ),
  workers: integer('workers', 'concurrent workload reconciles', { min: 1, max: 64, default: 4 }),
  'rollout-budget': integer(
    'rolloutBudget',
    'workloads that may roll out at once because of the operator',
    { min: 1, max: 1000, default: 5 },
  ),
  'metrics-port': port('metricsPort', 'port of /metrics, /healthz, /readyz', 8080),
  'metrics-host': text('metricsHost', 'HOST', 'address to listen on (default 0.0.0.0)', {
    default: '0.0.0.0',
  }),
  'log-level': oneOf(
    'logLevel',
    'LEVEL',
    'JSON log lines at this level and above',
    ['error', 'warn', 'info', 'debug'],
    { env: 'LOG_LEVEL', default: 'info' },
  ),
  injection: oneOf(
    'injection',
    'MODE',
    "where policies' terms go into workloads: admission (a MutatingAdmissionPolicy, where the API server serves it; new workloads roll once) or reconciler (written after the workload is)",
    ['admission', 'reconciler'],
    { default: 'admission' },
  ),
  'resync-interval': duration('resyncMs', 'look at every workload again this often', {
    min: '1s',
    max: '24h',
    default: '10m',
  }),
  'policy-settle': duration(
    'settleMs',
    'wait this long after the last policy change that reaches a workload before rewriting it, so policies applied together roll it once; 0s rewrites at once',
    { min: '0s', max: '5m', default: '3s' },
  ),
  'audit-interval': duration('auditMs', 'full audit re-check interval', {
    min: '1s',
    max: '24h',
    default: '5m',
  }),
  'startup-timeout': duration(
    'startupTimeoutMs',
    'give up at start-up when the API server does not answer for this long',
    { min: '1s', max: '10m', default: '30s' },
  ),
  reports: toggle(
    'reports',
    'publish audit results as openreports.io/v1alpha1 Report / ClusterReport objects where the API server serves them',
    true,
  ),
  'policy-reports': toggle(
    'policyReports',
    'also publish them as wgpolicyk8s.io/v1alpha2 PolicyReport / ClusterPolicyReport objects, for older consumers, where served',
    false,
  ),
  'eviction-dry-run': toggle('evictionDryRun', 'log evictions instead of making them', false),
  'namespaced-policy-cross-namespace-terms': oneOf(
    'crossNamespaceTerms',
    'POLICY',
    "whether a PlacementPolicy's affinity terms may select pods of other namespaces (namespaces, namespaceSelector); deny makes such a policy invalid",
    CROSS_NAMESPACE_TERMS,
    { default: 'allow' },
  ),
};

type Flags = typeof FLAGS;
/** The table as one type, for the code that walks it. */
const FLAG_LIST = Object.entries(FLAGS as Readonly<Record<string, Flag<string, unknown>>>);

/** Each flag's name and, for numbers and durations, its range (the README must agree). */
export const FLAG_RANGES: ReadonlyMap<string, string | undefined> = new Map(
  FLAG_LIST.map(([name, spec]) => [name, spec.range]),
);

type FlagValues = {
  readonly [F in keyof Flags as Flags[F]['key']]: ReturnType<Flags[F]['parse']>;
};

export type Config = FlagValues & {
  /** Where the kubeconfig path came from, for messages: `--kubeconfig` or `$KUBECONFIG`. */
  readonly kubeconfigSource: string | undefined;
  /** No kubeconfig given and in a pod: the service account's credentials. */
  readonly inCluster: boolean;
};

export const USAGE = `Usage: placement-operator [flags]

${FLAG_LIST.map(([name, spec]) => {
  const left = `  --${name}${spec.arg === undefined ? (spec.usage ?? '') : ` ${spec.arg}`}`;
  return `${left.padEnd(26)} ${spec.help}`;
}).join('\n')}

Exit status: 0 after a signal, 1 when it cannot start or keep running, 2 for a bad flag.
`;

/** The flags' texts as given: `--name value`, `--name=value`, `--switch`. */
function scanArgs(argv: readonly string[]): Map<string, string> | 'help' {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') return 'help';
    if (!arg.startsWith('--') || arg === '--')
      throw new Error(`${arg}: unexpected argument (flags only; --help lists them)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!Object.hasOwn(FLAGS, name)) throw new Error(`--${name}: unknown flag (--help lists them)`);
    const spec = FLAGS[name as keyof Flags] as Flag<string, unknown>;
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (value === undefined) value = spec.arg === undefined ? 'true' : argv[++i];
    if (value === undefined) throw new Error(`--${name}: needs a value (${spec.arg ?? ''})`);
    given.set(name, value);
  }
  return given;
}

/**
 * Flags first, then the environment, then defaults. Throws an Error whose message is one
 * line naming the flag (or variable), the value and what it should be.
 */
export function readConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config | 'help' {
  const given = scanArgs(argv);
  if (given === 'help') return 'help';
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const [name, spec] of FLAG_LIST) {
    let raw = given.get(name);
    let source = `--${name}`;
    if (raw === undefined && spec.env !== undefined && (env[spec.env] ?? '') !== '') {
      raw = env[spec.env];
      source = `$${spec.env}`;
    }
    if (raw === undefined && spec.default !== undefined) {
      raw = typeof spec.default === 'string' ? spec.default : spec.default();
    }
    try {
      values[spec.key] = spec.parse(raw);
    } catch (error) {
      throw new Error(`${source}: ${errorMessage(error)}`);
    }
    sources[spec.key] = source;
  }
  const flags = values as FlagValues;
  return {
    ...flags,
    kubeconfigSource: flags.kubeconfig === undefined ? undefined : sources['kubeconfig'],
    inCluster: flags.kubeconfig === undefined && env['KUBERNETES_SERVICE_HOST'] !== undefined,
  };
}

/** Discovery: whether MutatingAdmissionPolicy is served; an unanswered question means no. */
async function admissionServed(kc: KubeConfig, log: winston.Logger): Promise<boolean> {
  try {
    return await mutatingAdmissionPolicyServed(kc, AbortSignal.timeout(30_000));
  } catch (error) {
    log.warn(
      'discovery of admissionregistration.k8s.io/v1 failed; injecting by the reconciler only',
      { error: errorMessage(error) },
    );
    return false;
  }
}

/**
 * Where the audit's findings also go as report objects: OpenReports unless --reports=false,
 * wgpolicyk8s.io PolicyReports with --policy-reports; each wherever the API server serves its
 * group version, asked now (and logged) and again at each full audit check.
 */
async function reportSyncs(
  kc: KubeConfig,
  config: Pick<Config, 'reports' | 'policyReports'>,
  log: winston.Logger,
): Promise<ReportSync[]> {
  if (!config.reports)
    log.info('reports off', {
      api: apiVersionOf(OPENREPORTS),
      detail: 'OpenReports publishing is off (--reports=false)',
    });
  const apis = [
    ...(config.reports ? [OPENREPORTS] : []),
    ...(config.policyReports ? [POLICY_REPORTS] : []),
  ];
  const syncs = apis.map((api) => new ReportSync(new KubeReportStore(kc, api), api, log));
  for (const s of syncs) await s.discover();
  return syncs;
}

/** Starts the operator; resolves with a function that shuts it down gracefully. */
export async function runOperator(
  config: Config,
  log: winston.Logger,
): Promise<() => Promise<void>> {
  const kc = loadKubeConfig({
    ...(config.kubeconfig === undefined ? {} : { kubeconfig: config.kubeconfig }),
    ...(config.kubeconfigSource === undefined ? {} : { kubeconfigSource: config.kubeconfigSource }),
    ...(config.context === undefined ? {} : { context: config.context }),
    inCluster: config.inCluster,
  });
  // Nothing starts (no port, no informer, no write) before the API server has answered.
  const target = apiTarget(kc);
  await checkApiServer(kc, {
    budgetMs: config.startupTimeoutMs,
    onRetry: (attempt, problem, delayMs) => {
      log.debug('API server not answering yet; retrying', {
        server: target.server,
        attempt,
        delayMs,
        cause: problem.cause,
      });
    },
  });
  const health = new ApiHealth(target, log);
  const clients = makeKubeClients(kc);
  const metrics = createMetrics({
    controllers: [WORKLOAD_CONTROLLER, POLICY_CONTROLLER, EXCEPTION_CONTROLLER],
    leases: [config.leaseName],
  });
  const informerOptions = { logger: log, health };
  const policyInformers = (['PlacementPolicy', 'ClusterPlacementPolicy'] as const).map((k) =>
    createInformer(kc, policies(k), informerOptions),
  );
  const workloadInformers = (
    ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'CronJob'] as const
  ).map((k) => createInformer(kc, workloads(k), informerOptions));
  const exceptionInformer = createInformer(kc, EXCEPTIONS, informerOptions);
  const namespaceInformer = createInformer(kc, NAMESPACES, informerOptions);
  const podInformer = createInformer(kc, PODS, informerOptions);
  const nodeInformer = createInformer(kc, NODES, informerOptions);
  const informers: Informer<unknown>[] = [
    ...policyInformers,
    ...workloadInformers,
    exceptionInformer,
    namespaceInformer,
    podInformer,
    nodeInformer,
  ] as Informer<unknown>[];
  const events = new KubeEventRecorder(clients, {
    reportingInstance: config.identity,
    logger: log,
  });
  const served = config.injection === 'admission' && (await admissionServed(kc, log));
  const admission = new AdmissionSync(
    served ? new KubeAdmissionWriter(kc) : undefined,
    log,
    config.injection === 'admission' ? 'notServed' : 'disabled',
  );
  metrics.placement.setInjectionMode(admission.mode);
  log.info('injection mode', {
    mode: admission.mode,
    detail:
      admission.mode === 'admission'
        ? 'MutatingAdmissionPolicy injects at admission; the reconciler brings existing workloads in line and reverts'
        : config.injection === 'reconciler'
          ? 'injection at admission is off (--injection=reconciler); the reconciler writes workloads after they are created'
          : 'the API server does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy; the reconciler writes workloads after they are created',
  });
  const reports = await reportSyncs(kc, config, log);
  const operator: Operator = new Operator(
    {
      sources: {
        policies: policyInformers,
        workloads: workloadInformers,
        namespaces: namespaceInformer,
        exceptions: exceptionInformer,
      },
      workloadWriter: new KubeWorkloadWriter(clients),
      statusWriter: new KubePolicyStatusWriter(clients),
      exceptionStatusWriter: new KubeExceptionStatusWriter(clients),
      events,
      metrics,
      log,
      audit: (ref: string) => audit.summary(ref),
      cluster: { pods: podInformer, nodes: nodeInformer },
      admission,
    },
    {
      workers: config.workers,
      rolloutBudget: config.rolloutBudget,
      resyncMs: config.resyncMs,
      settleMs: config.settleMs,
      crossNamespaceTerms: config.crossNamespaceTerms,
    },
  );
  const audit: ContinuousAudit = new ContinuousAudit(
    {
      pods: podInformer,
      nodes: nodeInformer,
      namespaces: namespaceInformer,
      workloads: workloadInformers,
      policies: () => operator.catalog.active(),
      // An exception changes which policies judge which pods, as a policy edit does.
      policyChanges: [...policyInformers, exceptionInformer],
      events,
      metrics: metrics.placement,
      log,
      evictor: new KubeEvictor(clients),
      evictionDryRun: config.evictionDryRun,
      reports,
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
      if (!informers.every((i) => i.synced)) {
        const problems = health.problems;
        const why = problems.length === 0 ? '' : `: ${problems.join('; ')}`;
        return { ready: false, reason: `caches not synced${why}` };
      }
      if (leading && audit.stats.evaluations === 0)
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
        health,
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

/** The first line of an error's message: what the operator prints when it cannot start. */
const oneLine = (error: unknown): string => (errorMessage(error).split('\n')[0] ?? '').trim();

/** Prints `placement-operator: <what is wrong>` on one line and sets the exit status. */
function fail(error: unknown, status: number): void {
  process.stderr.write(`placement-operator: ${oneLine(error)}\n`);
  process.exitCode = status;
}

async function main(): Promise<void> {
  let config;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (err) {
    fail(err, 2);
    return;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const log = makeLogger(config.logLevel);
  let shutdown;
  try {
    shutdown = await runOperator(config, log);
  } catch (err) {
    // A missing kubeconfig, an API server that never answered, a port in use: one line.
    fail(err, 1);
    process.exit();
  }
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('signal received', { signal });
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: oneLine(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    fail(err, 1);
    process.exit();
  });
}
