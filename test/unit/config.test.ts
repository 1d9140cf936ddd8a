// src/main.ts's flag table in-process: the edges of every range are accepted, the defaults
// and the environment apply, and the README's flag table names every flag with its range.
// The refusals, as one line from the real process, are in startup.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { FLAG_RANGES, readConfig, type Config } from '../../src/main.ts';

const config = (argv: readonly string[], env: NodeJS.ProcessEnv = {}): Config => {
  const c = readConfig(argv, env);
  assert.notEqual(c, 'help');
  return c as Config;
};

const EDGES: readonly { name: string; argv: string[]; want: Partial<Config> }[] = [
  { name: 'port 0 picks a free one', argv: ['--metrics-port', '0'], want: { metricsPort: 0 } },
  { name: 'port 65535', argv: ['--metrics-port=65535'], want: { metricsPort: 65_535 } },
  { name: 'resync 1s', argv: ['--resync-interval', '1s'], want: { resyncMs: 1_000 } },
  { name: 'resync 24h', argv: ['--resync-interval', '24h'], want: { resyncMs: 86_400_000 } },
  { name: 'audit 1000 (ms)', argv: ['--audit-interval', '1000'], want: { auditMs: 1_000 } },
  { name: 'audit 1440m', argv: ['--audit-interval=1440m'], want: { auditMs: 86_400_000 } },
  { name: 'startup 1s', argv: ['--startup-timeout', '1s'], want: { startupTimeoutMs: 1_000 } },
  { name: 'startup 10m', argv: ['--startup-timeout', '10m'], want: { startupTimeoutMs: 600_000 } },
  { name: 'workers 1', argv: ['--workers', '1'], want: { workers: 1 } },
  { name: 'workers 64', argv: ['--workers', '64'], want: { workers: 64 } },
  {
    name: 'rollout budget 1000',
    argv: ['--rollout-budget', '1000'],
    want: { rolloutBudget: 1000 },
  },
  {
    name: 'switches: bare, =true, =false',
    argv: ['--eviction-dry-run', '--leader-elect=false'],
    want: { evictionDryRun: true, leaderElect: false },
  },
  {
    name: 'the last of a repeated flag wins',
    argv: ['--workers', '2', '--workers=3'],
    want: { workers: 3 },
  },
];

void describe('readConfig: the edges of every range are accepted', () => {
  for (const { name, argv, want } of EDGES) {
    void test(name, () => {
      const c = config(argv);
      assert.deepEqual(
        Object.fromEntries(Object.keys(want).map((k) => [k, c[k as keyof Config]])),
        want,
      );
    });
  }
});

void test('readConfig: defaults, then the environment, then flags', () => {
  const defaults = config([], {});
  assert.equal(defaults.metricsPort, 8080);
  assert.equal(defaults.resyncMs, 600_000);
  assert.equal(defaults.auditMs, 300_000);
  assert.equal(defaults.startupTimeoutMs, 30_000);
  assert.equal(defaults.leaseNamespace, 'default');
  assert.equal(defaults.logLevel, 'info');
  assert.equal(defaults.kubeconfig, undefined);
  assert.equal(defaults.inCluster, false);

  const env = { KUBECONFIG: '/k', LOG_LEVEL: 'debug', POD_NAMESPACE: 'ops', POD_NAME: 'po-1' };
  const fromEnv = config([], env);
  assert.deepEqual(
    [
      fromEnv.kubeconfig,
      fromEnv.kubeconfigSource,
      fromEnv.logLevel,
      fromEnv.leaseNamespace,
      fromEnv.identity,
    ],
    ['/k', '$KUBECONFIG', 'debug', 'ops', 'po-1'],
  );
  const fromFlags = config(['--kubeconfig', '/f', '--log-level', 'warn'], env);
  assert.deepEqual(
    [fromFlags.kubeconfig, fromFlags.kubeconfigSource, fromFlags.logLevel],
    ['/f', '--kubeconfig', 'warn'],
  );
  assert.equal(config([], { KUBECONFIG: '' }).kubeconfig, undefined, 'empty is unset');
  assert.equal(config([], { KUBERNETES_SERVICE_HOST: '10.96.0.1' }).inCluster, true);
});

void test('README: the flag table names every flag, with its range', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((line) => line.startsWith('| `--'));
  for (const [name, range] of FLAG_RANGES) {
    const row = rows.find((r) => new RegExp(`\`--${name}[ =\`]`).test(r));
    assert.ok(row !== undefined, `README's flag table has --${name}`);
    if (range !== undefined) assert.ok(row.includes(range), `--${name}: README says ${range}`);
  }
});
