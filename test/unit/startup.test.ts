// Bad input gets one line: every way src/main.ts can fail to start, run as the real process.
// Each case asserts the exact line on stderr, the exit status (2 for a bad flag, 1 for the
// rest), and that nothing started: no log line on stdout, so no port was opened and no
// request was made (the flag cases carry a kubeconfig for an API server that does not exist:
// had a flag been accepted, the line would be about that server instead). None of them has a
// cluster to write to. The same for a wrong CA and a bogus token on a real API server is in
// test/integration/api-server-problems.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main.ts');
const DIR = mkdtempSync(join(tmpdir(), 'startup-test-'));
after(() => {
  rmSync(DIR, { recursive: true, force: true });
});

/** A loopback port nothing listens on: bound once by the kernel's choice, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

const PORT = await closedPort();
const SERVER = `https://127.0.0.1:${PORT}`;

/** Writes a file under DIR and returns its path. */
function file(name: string, content: string): string {
  const path = join(DIR, name);
  writeFileSync(path, content);
  return path;
}

const kubeconfig = (
  o: {
    server?: string;
    cluster?: Record<string, unknown>;
    context?: Record<string, unknown>;
    current?: string | null;
  } = {},
): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: o.cluster ?? { server: o.server ?? SERVER } }],
    users: [{ name: 'tester', user: { token: 'not-a-real-token' } }],
    contexts: [{ name: 'ctx', context: o.context ?? { cluster: 'test', user: 'tester' } }],
    ...(o.current === null ? {} : { 'current-context': o.current ?? 'ctx' }),
  });

const GOOD = file('good.kubeconfig', kubeconfig());
const HOME = join(DIR, 'home'); // no .kube/config in it
mkdirSync(HOME);

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** The whole of stderr: one line. */
  readonly line: string | RegExp;
  readonly status: number;
  readonly skip?: string;
}

const flagCase = (name: string, args: readonly string[], line: string): Case => ({
  name,
  args: ['--kubeconfig', GOOD, ...args],
  line: `placement-operator: ${line}\n`,
  status: 2,
});

/** A kubeconfig file with `content` that is refused with `problem`. */
function kubeconfigCase(name: string, base: string, content: string, problem: string): Case {
  const path = file(`${base}.kubeconfig`, content);
  return {
    name,
    args: ['--kubeconfig', path],
    line: `placement-operator: --kubeconfig ${path}: ${problem}\n`,
    status: 1,
  };
}

const CASES: readonly Case[] = [
  // --- flag values: out of range, malformed; the ranges are the README's
  flagCase(
    'metrics port above 65535',
    ['--metrics-port', '99999'],
    '--metrics-port: 99999 is not a port (0-65535)',
  ),
  flagCase(
    'negative metrics port',
    ['--metrics-port=-1'],
    '--metrics-port: -1 is not a port (0-65535)',
  ),
  flagCase(
    'resync interval 0 (spun the CPU)',
    ['--resync-interval', '0'],
    '--resync-interval: 0 is out of range (1s-24h)',
  ),
  flagCase(
    'audit interval 0 (spun the CPU)',
    ['--audit-interval', '0'],
    '--audit-interval: 0 is out of range (1s-24h)',
  ),
  flagCase(
    'audit interval under a second',
    ['--audit-interval=500ms'],
    '--audit-interval: 500ms is out of range (1s-24h)',
  ),
  flagCase(
    'audit interval over a day',
    ['--audit-interval', '25h'],
    '--audit-interval: 25h is out of range (1s-24h)',
  ),
  flagCase(
    'resync interval with a unit it does not know',
    ['--resync-interval', '5min'],
    '--resync-interval: 5min is not a duration such as 30s, 5m or 1h (1s-24h)',
  ),
  flagCase(
    'startup timeout 0',
    ['--startup-timeout', '0s'],
    '--startup-timeout: 0s is out of range (1s-10m)',
  ),
  flagCase('workers 0', ['--workers', '0'], '--workers: 0 is out of range (1-64)'),
  flagCase(
    'workers not a number',
    ['--workers', 'many'],
    '--workers: many is not an integer (1-64)',
  ),
  flagCase(
    'rollout budget 0',
    ['--rollout-budget=0'],
    '--rollout-budget: 0 is out of range (1-1000)',
  ),
  flagCase(
    'log level unknown',
    ['--log-level', 'loud'],
    '--log-level: loud is not one of error, warn, info, debug',
  ),
  flagCase(
    'leader-elect not a boolean',
    ['--leader-elect=maybe'],
    '--leader-elect: maybe is not true or false',
  ),
  flagCase('flag without its value', ['--workers'], '--workers: needs a value (N)'),
  // --- unknown flags and arguments
  flagCase('unknown flag', ['--bogus'], '--bogus: unknown flag (--help lists them)'),
  flagCase(
    'unknown flag with a value',
    ['--metrics-prot=9090'],
    '--metrics-prot: unknown flag (--help lists them)',
  ),
  flagCase(
    'a positional argument',
    ['start'],
    'start: unexpected argument (flags only; --help lists them)',
  ),
  {
    name: 'bad value from the environment names the variable',
    args: ['--kubeconfig', GOOD],
    env: { LOG_LEVEL: 'loud' },
    line: 'placement-operator: $LOG_LEVEL: loud is not one of error, warn, info, debug\n',
    status: 2,
  },
  // --- the kubeconfig
  {
    name: 'missing kubeconfig (--kubeconfig)',
    args: ['--kubeconfig', '/nonexistent'],
    line: 'placement-operator: --kubeconfig /nonexistent: no such file\n',
    status: 1,
  },
  {
    name: 'missing kubeconfig ($KUBECONFIG)',
    args: [],
    env: { KUBECONFIG: '/nonexistent' },
    line: 'placement-operator: $KUBECONFIG /nonexistent: no such file\n',
    status: 1,
  },
  {
    name: 'kubeconfig is a directory',
    args: ['--kubeconfig', HOME],
    line: `placement-operator: --kubeconfig ${HOME}: is a directory, not a file\n`,
    status: 1,
  },
  kubeconfigCase(
    'kubeconfig not valid YAML',
    'broken',
    'clusters: [\n',
    'not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1',
  ),
  kubeconfigCase(
    'kubeconfig is YAML but not a mapping',
    'list',
    '- a\n- b\n',
    'not a kubeconfig (a YAML mapping with clusters, users, contexts)',
  ),
  kubeconfigCase(
    'kubeconfig cluster without a server',
    'no-server',
    kubeconfig({ cluster: {} }),
    'clusters[0].cluster.server is missing',
  ),
  kubeconfigCase(
    'kubeconfig context naming a cluster it lacks',
    'no-cluster',
    kubeconfig({ context: { cluster: 'prod', user: 'tester' } }),
    'context "ctx" names cluster "prod", which it does not define (clusters: test)',
  ),
  kubeconfigCase(
    'kubeconfig context without a user',
    'no-user',
    kubeconfig({ context: { cluster: 'test' } }),
    'context "ctx" names no user',
  ),
  kubeconfigCase(
    'kubeconfig context naming a user it lacks',
    'other-user',
    kubeconfig({ context: { cluster: 'test', user: 'admin' } }),
    'context "ctx" names user "admin", which it does not define (users: tester)',
  ),
  kubeconfigCase(
    'kubeconfig without a current-context',
    'no-current',
    kubeconfig({ current: null }),
    'no current-context; pass --context (it has: ctx)',
  ),
  {
    name: 'unknown --context',
    args: ['--kubeconfig', GOOD, '--context', 'prod'],
    line: `placement-operator: --context prod: --kubeconfig ${GOOD} has no such context (it has: ctx)\n`,
    status: 1,
  },
  {
    name: 'no kubeconfig anywhere',
    args: [],
    line: `placement-operator: no kubeconfig: pass --kubeconfig, set $KUBECONFIG, run in a cluster, or create ${join(HOME, '.kube', 'config')}\n`,
    status: 1,
  },
  {
    name: 'in a pod without the service account token',
    args: [],
    env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    line: 'placement-operator: in-cluster config: /var/run/secrets/kubernetes.io/serviceaccount/token: no such file (is the service account token mounted?)\n',
    status: 1,
    ...(process.env['KUBERNETES_SERVICE_HOST'] === undefined ? {} : { skip: 'runs in a pod' }),
  },
  // --- the API server (the retry budget shortened; its default is tested in api-health.test.ts)
  {
    name: 'API server on a closed loopback port',
    args: ['--kubeconfig', GOOD, '--startup-timeout', '2s'],
    line: new RegExp(
      `^placement-operator: API server ${SERVER.replaceAll('.', '\\.')} unreachable after \\d+ attempts in [\\d.]+s: connection refused \\(ECONNREFUSED\\)\\n$`,
    ),
    status: 1,
  },
  {
    name: 'API server name that does not resolve',
    args: [
      '--kubeconfig',
      file('dns.kubeconfig', kubeconfig({ server: 'https://api.placement-test.invalid:6443' })),
      '--startup-timeout',
      '1s',
    ],
    line: /^placement-operator: API server https:\/\/api\.placement-test\.invalid:6443 unreachable after \d+ attempts? in [\d.]+s: DNS: [a-z ()]+\((ENOTFOUND|EAI_AGAIN)\)\n$/,
    status: 1,
  },
];

interface Exit {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs src/main.ts with only PATH and HOME from here, plus `env`. */
function runMain(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

void describe(
  'start-up failures: one line, non-zero exit, nothing started',
  { concurrency: 8 },
  () => {
    for (const c of CASES) {
      void test(c.name, c.skip === undefined ? {} : { skip: c.skip }, async () => {
        const exit = await runMain(c.args, c.env);
        if (typeof c.line === 'string') assert.equal(exit.stderr, c.line);
        else assert.match(exit.stderr, c.line);
        assert.equal(exit.stderr.split('\n').length, 2, 'exactly one line');
        assert.equal(exit.status, c.status);
        assert.equal(exit.stdout, '', 'nothing started (no log line)');
      });
    }
  },
);

void test('--help lists every flag with its range and exits 0', async () => {
  const exit = await runMain(['--help']);
  assert.equal(exit.status, 0);
  assert.equal(exit.stderr, '');
  for (const range of ['0-65535', '1s-24h', '1s-10m', '1-64', '1-1000']) {
    assert.ok(exit.stdout.includes(range), `usage names ${range}`);
  }
});
