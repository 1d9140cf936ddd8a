// Shared by the integration tests: the cluster the global setup started (or an existing
// one named by KUBECONFIG_TEST), kubectl against it, polling, and the operator as a child
// process. A file run alone (without the global setup) starts its own cluster.
//
// The operator runs as the Helm chart's ServiceAccount, with the chart's RBAC and nothing
// more (test/cluster/operator-account.ts): startOperator uses the cluster's `operator`
// account. A test that must run it with other credentials says so by passing a cluster
// whose `operator` is another account (chart.test.ts does, with its own release's).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import {
  installOperatorAccount,
  publishedOperatorAccount,
  type OperatorAccount,
} from '../cluster/operator-account.ts';
import { defaultBinDir } from '../cluster/paths.ts';
import { selectTestCluster } from '../cluster/select.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');

export interface Cluster {
  /** Admin credentials: what the tests themselves use. */
  readonly kubeconfigPath: string;
  /**
   * The account the operator runs as (startOperator); undefined on a cluster that has none
   * yet (`withOperatorAccount` installs it).
   */
  readonly operator: OperatorAccount | undefined;
  kubectl(...args: string[]): Promise<string>;
  /** kubectl with `-o json`, parsed. */
  json<T>(...args: string[]): Promise<T>;
  /** `kubectl apply -f -` of the given manifest text (YAML or JSON). */
  apply(manifest: string, ...args: string[]): Promise<string>;
}

let shared: Promise<Cluster> | undefined;

/** The test cluster; started once per process when no global setup provided one. */
export function cluster(): Promise<Cluster> {
  shared ??= connect();
  return shared;
}

async function connect(): Promise<Cluster> {
  const given = process.env['KUBECONFIG_TEST'];
  if (given !== undefined && given !== '') {
    // The global setup installed the account; a cluster named by hand may lack it.
    const account = publishedOperatorAccount();
    const c = clusterAt(given);
    return account === undefined ? withOperatorAccount(c) : { ...c, operator: account };
  }
  const started = await selectTestCluster({
    nodes: 4,
    name: 'solo',
    zones: ['zone-a', 'zone-b'],
  });
  process.once('exit', () => void started.stop());
  return withOperatorAccount(clusterAt(started.kubeconfigPath));
}

const kubectlBinary = (): string =>
  join(process.env['PLACEMENT_TEST_BIN_DIR'] || defaultBinDir(), 'kubectl');

/**
 * Installs the chart's ServiceAccount and RBAC on the cluster (a test's private one, say)
 * and returns it with the account, for startOperator. Its kubeconfig lives in a temporary
 * directory removed when the process exits.
 */
export async function withOperatorAccount(c: Cluster): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'placement-operator-account-'));
  process.once('exit', () => {
    rmSync(dir, { recursive: true, force: true });
  });
  return { ...c, operator: await installOperatorAccount(kubectlBinary(), c.kubeconfigPath, dir) };
}

/** The cluster's operator account; throws, saying how to get one, when it has none. */
export function operatorAccount(c: Cluster): OperatorAccount {
  if (c.operator === undefined) {
    throw new Error(
      `${c.kubeconfigPath}: no operator account on this cluster; the operator runs as the ` +
        "chart's ServiceAccount: use withOperatorAccount(cluster) first",
    );
  }
  return c.operator;
}

/** kubectl against the cluster of a kubeconfig (a test's private cluster, say). */
export function clusterAt(kubeconfigPath: string): Cluster {
  const kubectlPath = kubectlBinary();
  const env = { ...process.env, KUBECONFIG: kubeconfigPath };
  const kubectl = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(kubectlPath, args, { env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  };
  const apply = (manifest: string, ...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(kubectlPath, ['apply', '-f', '-', ...args], { env });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => {
        if (code === 0) resolve(out);
        else reject(new Error(`kubectl apply failed (${String(code)}): ${err.trim()}`));
      });
      child.stdin.end(manifest);
    });
  return {
    kubeconfigPath,
    operator: undefined,
    kubectl,
    apply,
    json: async <T>(...args: string[]): Promise<T> =>
      JSON.parse(await kubectl(...args, '-o', 'json')) as T,
  };
}

/** A fresh namespace name for one test. */
export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(3).toString('hex')}`;

/** Polls `probe` until it returns a value other than undefined; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Installs the CRDs (idempotent) and waits until they are served. */
export async function installCrds(c: Cluster): Promise<void> {
  await c.kubectl('apply', '--server-side', '--force-conflicts', '-f', join(REPO, 'crds'));
  await waitEstablished(c, CRD_NAMES);
}

export const CRD_NAMES = [
  'placementpolicies.placement.dev',
  'clusterplacementpolicies.placement.dev',
  'placementexceptions.placement.dev',
] as const;

/**
 * Waits until the named CRDs are Established. Not `kubectl wait --for=condition=Established`:
 * it fails outright ("accessor error") when it reads a CRD created a moment ago whose status
 * has no conditions yet.
 */
export async function waitEstablished(c: Cluster, names: readonly string[]): Promise<void> {
  await waitFor('the CRDs Established', async () => {
    const crds = await c.json<{
      items: { metadata: { name: string }; status?: { conditions?: ConditionLike[] } }[];
    }>('get', 'crd', ...names);
    const established = crds.items.filter((crd) =>
      (crd.status?.conditions ?? []).some((x) => x.type === 'Established' && x.status === 'True'),
    );
    return established.length === names.length ? true : undefined;
  });
}

interface ConditionLike {
  readonly type: string;
  readonly status: string;
}

export interface OperatorProcess {
  readonly child: ChildProcess;
  /** Every log line so far, parsed (JSON lines; others kept as {message}). */
  readonly logs: Record<string, unknown>[];
  /** The metrics/probe port once listening. */
  port(): Promise<number>;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: no cleanup at all. */
  kill(): Promise<void>;
}

/** The operator's entry point as a checkout runs it: TypeScript, its types stripped at start. */
export const OPERATOR_SOURCE = join(REPO, 'src', 'main.ts');

/**
 * Starts `src/main.ts` against the cluster with extra flags, as the cluster's operator
 * account (the chart's ServiceAccount): its token is the only credential it gets.
 */
export function startOperator(c: Cluster, ...flags: string[]): OperatorProcess {
  return startOperatorFrom(OPERATOR_SOURCE, c, ...flags);
}

/** `startOperator` with another entry point, e.g. the compiled `dist/main.js` the image runs. */
export function startOperatorFrom(main: string, c: Cluster, ...flags: string[]): OperatorProcess {
  const { kubeconfigPath } = operatorAccount(c);
  const child = spawn(
    join(REPO, 'hack', 'node'),
    [main, '--metrics-port', '0', '--metrics-host', '127.0.0.1', ...flags],
    {
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  let buffer = '';
  const onData = (d: Buffer): void => {
    buffer += d.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ message: line });
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
    }),
  );
  process.once('exit', () => {
    child.kill('SIGKILL');
  });
  return {
    child,
    logs,
    port: () =>
      waitFor(
        'operator metrics port',
        () => {
          const line = logs.find((l) => l['message'] === 'metrics and probes listening');
          return Promise.resolve(typeof line?.['port'] === 'number' ? line['port'] : undefined);
        },
        60_000,
      ),
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Fetches a URL path from the operator's metrics server. */
export async function scrape(
  op: OperatorProcess,
  path = '/metrics',
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${String(await op.port())}${path}`);
  return { status: res.status, body: await res.text() };
}

/** The value of one sample in Prometheus text output (sum over matching label sets). */
export function metricValue(
  body: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const line of body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** A TCP port free on the host now (for a server that must be told its port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}
