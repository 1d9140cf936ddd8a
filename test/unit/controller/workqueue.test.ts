import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ExponentialBackoff,
  WorkQueue,
  type WorkQueueListener,
  type WorkQueueOptions,
} from '../../../src/controller/workqueue.ts';
import { FakeClock, peek } from './fake-clock.ts';

interface Harness {
  readonly q: WorkQueue;
  readonly clock: FakeClock;
  /** What the listener heard, one line per call. */
  readonly heard: string[];
}

/** Takes `n` ready keys without waiting (each is held until done). */
async function take(q: WorkQueue, n: number): Promise<(string | undefined)[]> {
  const keys: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const got = await peek(q.get());
    keys.push(got === 'pending' ? 'pending' : got.value);
  }
  return keys;
}

/** Releases each key to the queue as soon as it is taken. */
async function drainKeys(q: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  for (;;) {
    if (q.len() === 0) return keys;
    const key = await q.get();
    if (key === undefined) return keys;
    keys.push(key);
    q.done(key);
  }
}

interface Case {
  readonly name: string;
  readonly options?: Omit<WorkQueueOptions, 'clock' | 'listener'>;
  readonly run: (h: Harness) => Promise<void>;
}

const cases: Case[] = [
  {
    name: 'add de-duplicates a key that is already queued',
    run: async ({ q }) => {
      for (const key of ['a', 'b', 'a', 'a', 'b', 'c']) q.add(key);
      assert.equal(q.len(), 3);
      assert.deepEqual(await drainKeys(q), ['a', 'b', 'c']);
    },
  },
  {
    name: 'a key being processed is not handed to a second worker',
    run: async ({ q }) => {
      q.add('a');
      assert.equal(await q.get(), 'a');
      q.add('a');
      assert.equal(q.len(), 0, 'the re-added key waits for its worker');
      const second = q.get();
      assert.equal(await peek(second), 'pending');
      q.done('a');
      assert.deepEqual(await peek(second), { value: 'a' });
    },
  },
  {
    name: 're-adds while processing come back once, when done is called',
    run: async ({ q }) => {
      q.add('a');
      await q.get();
      q.add('a');
      q.add('a');
      q.add('b');
      assert.equal(q.len(), 1);
      q.done('a');
      assert.deepEqual(await drainKeys(q), ['b', 'a']);
    },
  },
  {
    name: 'done without a re-add does not queue the key again',
    run: async ({ q }) => {
      q.add('a');
      await q.get();
      q.done('a');
      q.done('a');
      assert.equal(q.len(), 0);
    },
  },
  {
    name: 'waiting workers are served in the order they asked',
    run: async ({ q }) => {
      const first = q.get();
      const second = q.get();
      q.add('a');
      q.add('b');
      assert.deepEqual(await peek(first), { value: 'a' });
      assert.deepEqual(await peek(second), { value: 'b' });
    },
  },
  {
    name: 'addRateLimited backs off 5, 10, 20, 40 ms per key',
    run: async ({ q, clock }) => {
      const delays: number[] = [];
      for (let retry = 0; retry < 4; retry++) {
        const before = clock.now();
        q.addRateLimited('a');
        q.addRateLimited('b');
        assert.equal(q.len(), 0);
        while (q.len() === 0) clock.advance(1);
        delays.push(clock.now() - before);
        assert.deepEqual(await drainKeys(q), ['a', 'b']);
      }
      assert.deepEqual(delays, [5, 10, 20, 40]);
      assert.equal(q.numRequeues('a'), 4);
    },
  },
  {
    name: 'forget resets the backoff and numRequeues',
    run: async ({ q, clock }) => {
      q.addRateLimited('a');
      q.addRateLimited('a');
      q.addRateLimited('a');
      assert.equal(q.numRequeues('a'), 3);
      q.forget('a');
      assert.equal(q.numRequeues('a'), 0);
      clock.advance(100);
      await drainKeys(q);
      q.addRateLimited('a');
      clock.advance(4);
      assert.equal(q.len(), 0);
      clock.advance(1);
      assert.equal(q.len(), 1);
    },
  },
  {
    name: 'addAfter releases keys in time order, not call order',
    run: async ({ q, clock }) => {
      q.addAfter('c', 30);
      q.addAfter('a', 10);
      q.addAfter('b', 20);
      q.addAfter('d', 20);
      clock.advance(9);
      assert.equal(q.len(), 0);
      clock.advance(21);
      assert.deepEqual(await drainKeys(q), ['a', 'b', 'd', 'c']);
    },
  },
  {
    name: 'addAfter keeps the earliest time for a key already waiting',
    run: async ({ q, clock }) => {
      q.addAfter('a', 100);
      q.addAfter('a', 10);
      q.addAfter('b', 10);
      q.addAfter('b', 100);
      clock.advance(10);
      assert.deepEqual(await drainKeys(q), ['a', 'b']);
      clock.advance(200);
      assert.equal(q.len(), 0, 'the superseded times do not add the keys again');
      assert.equal(clock.pending(), 0);
    },
  },
  {
    name: 'addAfter with no delay adds at once',
    run: async ({ q }) => {
      q.addAfter('a', 0);
      q.addAfter('b', -5);
      assert.deepEqual(await drainKeys(q), ['a', 'b']);
    },
  },
  {
    name: 'a delayed key that is already queued is not queued twice',
    run: async ({ q, clock }) => {
      q.addAfter('a', 10);
      q.add('a');
      clock.advance(10);
      assert.deepEqual(await drainKeys(q), ['a']);
    },
  },
  {
    name: 'backoff is capped at its maximum',
    options: { rateLimiter: new ExponentialBackoff({ baseMs: 100, maxMs: 300 }) },
    run: async ({ q, clock }) => {
      const delays: number[] = [];
      for (let retry = 0; retry < 4; retry++) {
        const before = clock.now();
        q.addRateLimited('a');
        while (q.len() === 0) clock.advance(1);
        delays.push(clock.now() - before);
        await drainKeys(q);
      }
      assert.deepEqual(delays, [100, 200, 300, 300]);
    },
  },
  {
    name: 'shutDown answers waiting and later gets with undefined and ignores adds',
    run: async ({ q, clock }) => {
      const waiting = q.get();
      q.addAfter('late', 10);
      q.shutDown();
      assert.deepEqual(await peek(waiting), { value: undefined });
      q.add('a');
      clock.advance(10);
      assert.equal(q.len(), 0);
      assert.equal(await q.get(), undefined);
      assert.equal(q.isShuttingDown(), true);
      assert.equal(clock.pending(), 0);
    },
  },
  {
    name: 'shutDownWithDrain resolves once every key handed out is done',
    run: async ({ q }) => {
      q.add('a');
      q.add('b');
      assert.deepEqual(await take(q, 2), ['a', 'b']);
      const drained = q.shutDownWithDrain();
      q.done('a');
      assert.equal(await peek(drained), 'pending');
      q.done('b');
      assert.deepEqual(await peek(drained), { value: undefined });
      assert.deepEqual(q.inProgress(), []);
    },
  },
  {
    name: 'shutDownWithDrain with nothing in progress resolves at once',
    run: async ({ q }) => {
      q.add('queued-only');
      assert.deepEqual(await peek(q.shutDownWithDrain()), { value: undefined });
    },
  },
  {
    name: 'the listener hears adds, depth, waits, work time and retries',
    run: async ({ q, clock, heard }) => {
      q.add('a');
      q.add('a');
      q.add('b');
      clock.advance(7);
      await q.get();
      clock.advance(3);
      q.done('a');
      q.addRateLimited('c');
      assert.deepEqual(heard, [
        'added depth=1',
        'added depth=2',
        'started depth=1 waited=7',
        'finished worked=3',
        'unfinished total=0 longest=0',
        'retried',
      ]);
    },
  },
  {
    name: 'the listener samples unfinished work while keys are processed',
    options: { unfinishedWorkIntervalMs: 500 },
    run: async ({ q, clock, heard }) => {
      q.add('a');
      q.add('b');
      await q.get();
      clock.advance(200);
      await q.get();
      clock.advance(800);
      q.done('a');
      q.done('b');
      clock.advance(1000);
      assert.deepEqual(
        heard.filter((line) => line.startsWith('unfinished')),
        [
          'unfinished total=800 longest=500',
          'unfinished total=1800 longest=1000',
          'unfinished total=0 longest=0',
        ],
      );
      assert.equal(clock.pending(), 0, 'no timer runs while the queue is idle');
    },
  },
];

for (const c of cases) {
  void test(`workqueue: ${c.name}`, async () => {
    const clock = new FakeClock();
    const heard: string[] = [];
    const listener: WorkQueueListener = {
      added: (depth) => heard.push(`added depth=${depth}`),
      started: (depth, waitedMs) => heard.push(`started depth=${depth} waited=${waitedMs}`),
      finished: (workedMs) => heard.push(`finished worked=${workedMs}`),
      retried: () => heard.push('retried'),
      unfinishedWork: (totalMs, longestMs) =>
        heard.push(`unfinished total=${totalMs} longest=${longestMs}`),
    };
    const q = new WorkQueue({ ...c.options, clock, listener });
    await c.run({ q, clock, heard });
  });
}

void test('workqueue: ExponentialBackoff doubles from 5 ms and stops at 1000 s', () => {
  const backoff = new ExponentialBackoff();
  const delays = Array.from({ length: 30 }, () => backoff.when('k'));
  assert.deepEqual(delays.slice(0, 6), [5, 10, 20, 40, 80, 160]);
  assert.equal(delays[17], 5 * 2 ** 17);
  assert.ok(delays.slice(18).every((ms) => ms === 1_000_000));
  assert.equal(backoff.numRequeues('k'), 30);
  assert.equal(backoff.when('other'), 5, 'backoff is per key');
});

void test('workqueue: ExponentialBackoff refuses a base above its maximum', () => {
  assert.throws(() => new ExponentialBackoff({ baseMs: 10, maxMs: 5 }), RangeError);
  assert.throws(() => new ExponentialBackoff({ baseMs: 0 }), RangeError);
});

void test('workqueue: the system clock drives delays when no clock is given', async () => {
  const q = new WorkQueue();
  const before = performance.now();
  q.addAfter('a', 20);
  assert.equal(await q.get(), 'a');
  assert.ok(performance.now() - before >= 19, 'not released before its time');
  q.done('a');
  q.addRateLimited('b');
  q.shutDown();
  assert.equal(await q.get(), undefined);
});
