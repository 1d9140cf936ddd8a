import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';

import { createMetrics, startMetricsServer, type Readiness } from '../../../src/metrics/index.ts';

const EXPECTED_NAMES = [
  'controller_runtime_reconcile_total',
  'controller_runtime_reconcile_errors_total',
  'controller_runtime_reconcile_time_seconds',
  'controller_runtime_max_concurrent_reconciles',
  'controller_runtime_active_workers',
  'workqueue_depth',
  'workqueue_adds_total',
  'workqueue_queue_duration_seconds',
  'workqueue_work_duration_seconds',
  'workqueue_retries_total',
  'workqueue_unfinished_work_seconds',
  'workqueue_longest_running_processor_seconds',
  'leader_election_master_status',
  'process_resident_memory_bytes',
  'placement_policy_workloads',
  'placement_violations',
  'placement_cross_namespace_violations',
  'placement_audit_duration_seconds',
  'placement_audit_last_success_timestamp_seconds',
  'placement_workload_writes_total',
  'placement_workload_reverts_total',
  'placement_evictions_total',
  'placement_rollout_budget_in_use',
  'placement_rollout_budget_limit',
];

interface Case {
  readonly name: string;
  readonly method?: string;
  readonly path: string;
  readonly ready: Readiness | Error;
  readonly status: number;
  readonly contentType: RegExp;
  /** The body, or patterns it must match. */
  readonly body: string | readonly RegExp[];
}

const cases: Case[] = [
  {
    name: '/metrics serves every metric name in the Prometheus text format',
    path: '/metrics',
    ready: { ready: true },
    status: 200,
    contentType: /^text\/plain; version=0\.0\.4; charset=utf-8$/,
    body: EXPECTED_NAMES.map((name) => new RegExp(`^# TYPE ${name} `, 'm')),
  },
  {
    name: '/healthz answers 200 even when not ready',
    path: '/healthz',
    ready: { ready: false, reason: 'caches not synced' },
    status: 200,
    contentType: /^text\/plain/,
    body: 'ok\n',
  },
  {
    name: '/readyz answers 200 when ready',
    path: '/readyz',
    ready: { ready: true },
    status: 200,
    contentType: /^text\/plain/,
    body: 'ok\n',
  },
  {
    name: '/readyz answers 503 with the reason when not ready',
    path: '/readyz',
    ready: { ready: false, reason: 'informer caches not synced: pods' },
    status: 503,
    contentType: /^text\/plain/,
    body: 'not ready: informer caches not synced: pods\n',
  },
  {
    name: '/readyz answers 503 when the check itself throws',
    path: '/readyz?verbose',
    ready: new Error('lease client gone'),
    status: 503,
    contentType: /^text\/plain/,
    body: 'not ready: readiness check failed: lease client gone\n',
  },
  {
    name: 'HEAD /metrics sends headers without a body',
    method: 'HEAD',
    path: '/metrics',
    ready: { ready: true },
    status: 200,
    contentType: /^text\/plain; version=0\.0\.4/,
    body: '',
  },
  {
    name: 'an unknown path is 404',
    path: '/debug/pprof',
    ready: { ready: true },
    status: 404,
    contentType: /^text\/plain/,
    body: 'not found\n',
  },
  {
    name: 'a write method is 405',
    method: 'POST',
    path: '/metrics',
    ready: { ready: true },
    status: 405,
    contentType: /^text\/plain/,
    body: 'method not allowed\n',
  },
];

/** One HTTP request; node:http rather than fetch so HEAD and keep-alive behave as Prometheus'. */
function get(
  port: number,
  path: string,
  method = 'GET',
  keepAlive = true,
): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const agent = keepAlive ? undefined : false;
    const req = request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'] ?? '',
          body,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

void test('metrics server', async (t) => {
  const metrics = createMetrics({ controllers: ['workload'], leases: ['placement-operator'] });
  let readiness: Readiness | Error = { ready: true };
  const server = await startMetricsServer({
    registry: metrics.registry,
    host: '127.0.0.1',
    port: 0,
    ready: () => {
      if (readiness instanceof Error) throw readiness;
      return readiness;
    },
  });
  t.after(() => server.close());
  assert.ok(server.port > 0, 'port 0 binds a free port and reports it');

  for (const c of cases) {
    await t.test(c.name, async () => {
      readiness = c.ready;
      const res = await get(server.port, c.path, c.method);
      assert.equal(res.status, c.status);
      assert.match(res.contentType, c.contentType);
      if (typeof c.body === 'string') assert.equal(res.body, c.body);
      else for (const pattern of c.body) assert.match(res.body, pattern);
    });
  }
});

void test('metrics server: close stops listening, not held up by a keep-alive client', async () => {
  const metrics = createMetrics({ processMetrics: false });
  const server = await startMetricsServer({
    registry: metrics.registry,
    host: '127.0.0.1',
    port: 0,
    ready: () => ({ ready: true }),
  });
  // Node's global agent keeps this connection open, as Prometheus does between scrapes.
  assert.equal((await get(server.port, '/healthz')).status, 200);
  await server.close();
  await assert.rejects(get(server.port, '/healthz', 'GET', false), /ECONNREFUSED/);
});

void test('metrics server: a port in use is an error that names the address', async () => {
  const metrics = createMetrics({ processMetrics: false });
  const ready = (): Readiness => ({ ready: true });
  const options = { registry: metrics.registry, host: '127.0.0.1', ready };
  const first = await startMetricsServer({ ...options, port: 0 });
  try {
    await assert.rejects(
      startMetricsServer({ ...options, port: first.port }),
      new RegExp(`metrics server: cannot listen on 127\\.0\\.0\\.1:${first.port}: .*EADDRINUSE`),
    );
  } finally {
    await first.close();
  }
});
