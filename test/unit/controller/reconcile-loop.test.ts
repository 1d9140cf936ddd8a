import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ReconcileLoop,
  type ReconcileContext,
  type ReconcileObserver,
  type Reconciler,
  type Result,
} from '../../../src/controller/reconcile-loop.ts';
import { WorkQueue, type WorkQueueListener } from '../../../src/controller/workqueue.ts';
import {
  createMetrics,
  RECONCILE_RESULTS,
  reconcileObserver,
  workQueueListener,
  type Metrics,
  type ReconcileResultLabel,
} from '../../../src/metrics/index.ts';
import { FakeClock, flush, peek } from './fake-clock.ts';
import type { Logger } from '../../../src/util/logger.ts';

const CONTROLLER = 'workload';

/** A queue that records the actions the loop takes on it. */
class RecordingQueue extends WorkQueue {
  readonly actions: string[] = [];

  override addRateLimited(key: string): void {
    this.actions.push(`addRateLimited ${key}`);
    super.addRateLimited(key);
  }

  override addAfter(key: string, ms: number): void {
    this.actions.push(`addAfter ${key} ${ms}`);
    super.addAfter(key, ms);
  }

  override forget(key: string): void {
    this.actions.push(`forget ${key}`);
    super.forget(key);
  }
}

/** A promise to settle by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Setup {
  readonly clock: FakeClock;
  readonly queue: RecordingQueue;
  readonly metrics: Metrics;
  readonly loop: ReconcileLoop;
  readonly logged: { message: string; meta: Readonly<Record<string, unknown>> }[];
}

function setup(reconcile: Reconciler, workers = 1): Setup {
  const clock = new FakeClock();
  const metrics = createMetrics({ controllers: [CONTROLLER], processMetrics: false });
  // The metrics adapters must fit the controller's hooks as they are.
  const listener: WorkQueueListener = workQueueListener(metrics, CONTROLLER);
  const observer: ReconcileObserver = reconcileObserver(metrics, CONTROLLER);
  const queue = new RecordingQueue({ clock, listener });
  const logged: Setup['logged'] = [];
  const logger: Logger = {
    error: (message, meta = {}) => logged.push({ message, meta }),
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
  };
  let ids = 0;
  const loop = new ReconcileLoop({
    name: CONTROLLER,
    queue,
    reconcile,
    workers,
    clock,
    observer,
    logger,
    newReconcileID: () => `id-${++ids}`,
  });
  return { clock, queue, metrics, loop, logged };
}

async function value(
  metrics: Metrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { values } = await metric.get();
  const found = values.find((v) =>
    Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return found?.value ?? Number.NaN;
}

async function resultCounts(metrics: Metrics): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const result of RECONCILE_RESULTS) {
    const n = await value(metrics, 'controller_runtime_reconcile_total', {
      controller: CONTROLLER,
      result,
    });
    if (n > 0) counts[result] = n;
  }
  return counts;
}

interface OutcomeCase {
  readonly name: string;
  /** What the first reconcile of key `k` does; later ones return done. */
  readonly first: () => Promise<Result>;
  readonly actions: readonly string[];
  readonly label: ReconcileResultLabel;
  /** When `k` is reconciled again, in ms after the first reconcile; undefined for never. */
  readonly againAfterMs: number | undefined;
  readonly errors: number;
  readonly panics: number;
}

const outcomes: OutcomeCase[] = [
  {
    name: 'done forgets the key and does not requeue it',
    first: () => Promise.resolve({ kind: 'done' }),
    actions: ['forget k'],
    label: 'success',
    againAfterMs: undefined,
    errors: 0,
    panics: 0,
  },
  {
    name: 'requeue retries with backoff',
    first: () => Promise.resolve({ kind: 'requeue' }),
    actions: ['addRateLimited k', 'addAfter k 5'],
    label: 'requeue',
    againAfterMs: 5,
    errors: 0,
    panics: 0,
  },
  {
    name: 'requeueAfter forgets the backoff and requeues after the given time',
    first: () => Promise.resolve({ kind: 'requeueAfter', ms: 30_000 }),
    actions: ['forget k', 'addAfter k 30000'],
    label: 'requeue_after',
    againAfterMs: 30_000,
    errors: 0,
    panics: 0,
  },
  {
    name: 'an error result retries with backoff and counts an error',
    first: () => Promise.resolve({ kind: 'error', error: new Error('conflict') }),
    actions: ['addRateLimited k', 'addAfter k 5'],
    label: 'error',
    againAfterMs: 5,
    errors: 1,
    panics: 0,
  },
  {
    name: 'a terminal result counts an error and is not retried',
    first: () => Promise.resolve({ kind: 'terminal', error: new Error('422 Invalid') }),
    actions: ['forget k'],
    label: 'error',
    againAfterMs: undefined,
    errors: 1,
    panics: 0,
  },
  {
    name: 'a throwing reconcile is an error, retried with backoff',
    first: () => {
      throw new TypeError('cannot read properties of undefined');
    },
    actions: ['addRateLimited k', 'addAfter k 5'],
    label: 'error',
    againAfterMs: 5,
    errors: 1,
    panics: 1,
  },
  {
    name: 'a rejected promise is an error, retried with backoff',
    first: () => Promise.reject(new Error('socket hang up')),
    actions: ['addRateLimited k', 'addAfter k 5'],
    label: 'error',
    againAfterMs: 5,
    errors: 1,
    panics: 1,
  },
];

for (const c of outcomes) {
  void test(`reconcile loop: ${c.name}`, async () => {
    const calls: number[] = [];
    const { clock, queue, metrics, loop } = setup((_key) => {
      calls.push(clock.now());
      return calls.length === 1 ? c.first() : Promise.resolve({ kind: 'done' });
    });
    loop.start();
    queue.add('k');
    await flush();
    assert.deepEqual(queue.actions, c.actions);
    assert.deepEqual(await resultCounts(metrics), { [c.label]: 1 });
    const labels = { controller: CONTROLLER };
    assert.equal(
      await value(metrics, 'controller_runtime_reconcile_errors_total', labels),
      c.errors,
    );
    assert.equal(
      await value(metrics, 'controller_runtime_reconcile_panics_total', labels),
      c.panics,
    );

    if (c.againAfterMs !== undefined) {
      clock.advance(c.againAfterMs - 1);
      await flush();
      assert.equal(calls.length, 1, 'not retried early');
      clock.advance(1);
      await flush();
    } else {
      clock.advance(3_600_000);
      await flush();
    }
    assert.deepEqual(calls, c.againAfterMs === undefined ? [0] : [0, c.againAfterMs]);
    assert.equal(queue.numRequeues('k'), 0, 'the final success forgets the key');
    assert.deepEqual(await loop.stop(), { kind: 'drained' });
  });
}

void test('reconcile loop: a key is never reconciled by two workers at once', async () => {
  const running = new Map<string, number>();
  let overlap = 0;
  const gates: { resolve: (r: Result) => void }[] = [];
  const { queue, loop } = setup((key) => {
    running.set(key, (running.get(key) ?? 0) + 1);
    if ((running.get(key) ?? 0) > 1) overlap++;
    const gate = deferred<Result>();
    gates.push(gate);
    return gate.promise.finally(() => running.set(key, (running.get(key) ?? 1) - 1));
  }, 4);
  loop.start();
  queue.add('a');
  await flush();
  queue.add('a');
  queue.add('b');
  await flush();
  assert.equal(gates.length, 2, 'a and b run; the second a waits');
  gates[0]?.resolve({ kind: 'done' });
  await flush();
  assert.equal(gates.length, 3, 'the re-added a runs once the first is done');
  for (const gate of gates) gate.resolve({ kind: 'done' });
  assert.deepEqual(await loop.stop(), { kind: 'drained' });
  assert.equal(overlap, 0);
});

void test('reconcile loop: every reconcile gets its own reconcileID and the controller name', async () => {
  const seen: ReconcileContext[] = [];
  const { queue, loop, logged } = setup((_key, ctx) => {
    seen.push(ctx);
    return Promise.resolve(
      seen.length === 1 ? { kind: 'error', error: new Error('boom') } : { kind: 'done' },
    );
  });
  loop.start();
  queue.add('a');
  queue.add('b');
  await flush();
  assert.deepEqual(
    seen.map((ctx) => [ctx.controller, ctx.reconcileID]),
    [
      [CONTROLLER, 'id-1'],
      [CONTROLLER, 'id-2'],
    ],
  );
  assert.deepEqual(logged, [
    {
      message: 'Reconciler error',
      meta: { controller: CONTROLLER, key: 'a', reconcileID: 'id-1', error: 'boom' },
    },
  ]);
  await loop.stop();
});

void test('reconcile loop: worker gauges follow the work', async () => {
  const gate = deferred<Result>();
  const { queue, loop, metrics } = setup(() => gate.promise, 3);
  const labels = { controller: CONTROLLER };
  loop.start();
  assert.equal(await value(metrics, 'controller_runtime_max_concurrent_reconciles', labels), 3);
  queue.add('a');
  queue.add('b');
  await flush();
  assert.equal(await value(metrics, 'controller_runtime_active_workers', labels), 2);
  gate.resolve({ kind: 'done' });
  await flush();
  assert.equal(await value(metrics, 'controller_runtime_active_workers', labels), 0);
  assert.equal(await value(metrics, 'workqueue_adds_total', { name: CONTROLLER }), 2);
  await loop.stop();
});

void test('reconcile loop: stop takes no new keys and waits for reconciles in flight', async () => {
  const gate = deferred<Result>();
  const started: string[] = [];
  const { queue, loop } = setup((key) => {
    started.push(key);
    return gate.promise;
  });
  loop.start();
  queue.add('a');
  queue.add('b');
  await flush();
  const stopped = loop.stop();
  assert.equal(await peek(stopped), 'pending');
  queue.add('c');
  gate.resolve({ kind: 'requeue' });
  assert.deepEqual(await peek(stopped), { value: { kind: 'drained' } });
  assert.deepEqual(started, ['a'], 'b was queued, c added after stop: neither is taken');
});

void test('reconcile loop: stop abandons reconciles still running after its timeout', async () => {
  const signals: AbortSignal[] = [];
  const { clock, queue, loop } = setup((_key, ctx) => {
    signals.push(ctx.signal);
    return new Promise<Result>(() => undefined);
  }, 2);
  loop.start();
  queue.add('stuck-1');
  queue.add('stuck-2');
  await flush();
  const stopped = loop.stop({ timeoutMs: 10_000 });
  clock.advance(9_999);
  assert.equal(await peek(stopped), 'pending');
  clock.advance(1);
  assert.deepEqual(await peek(stopped), {
    value: { kind: 'abandoned', keys: ['stuck-1', 'stuck-2'] },
  });
  assert.ok(signals.every((signal) => signal.aborted));
});

void test('reconcile loop: refuses a worker count that is not a positive integer', () => {
  assert.throws(
    () => setup(() => Promise.resolve({ kind: 'done' }), 0),
    /controller workload: workers must be a positive integer, got 0/,
  );
});
