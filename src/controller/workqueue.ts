/**
 * A rate-limited work queue with client-go's semantics (`util/workqueue`): keys are
 * de-duplicated while they wait, one key is never handed to two workers at once, a key
 * re-added while it is processed comes back when the worker calls `done`, and failures
 * back off per key. Time comes from an injected clock so tests are deterministic.
 *
 * Long because it is one class and its rate limiter: the semantics above hold only together (a key re-added
 * while processed, its backoff, and done), so they are not split.
 */

import { systemClock, type Clock, type TimerHandle } from '../util/clock.ts';

/** Decides how long a failing key waits before its next try. */
export interface RateLimiter {
  /** The delay before the key's next retry; counts that retry. */
  when(key: string): number;
  /** Clears the key's failure history. */
  forget(key: string): void;
  /** How many retries the key has had since it was last forgotten. */
  numRequeues(key: string): number;
}

export interface BackoffOptions {
  /** First delay, in ms (client-go: 5 ms). */
  readonly baseMs?: number;
  /** Ceiling, in ms (client-go: 1000 s). */
  readonly maxMs?: number;
}

/** client-go's `ItemExponentialFailureRateLimiter`: base · 2^failures, capped at max. */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor({ baseMs = 5, maxMs = 1_000_000 }: BackoffOptions = {}) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new RangeError(
        `backoff: need 0 < baseMs <= maxMs, got baseMs ${baseMs}, maxMs ${maxMs}`,
      );
    }
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    // 2 ** n reaches Infinity for large n; min() still returns the cap.
    return Math.min(this.baseMs * 2 ** failures, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * What the queue reports for metrics (client-go's `queueMetrics`); src/metrics adapts it to
 * Prometheus. Keys are not passed on: per-key labels would be unbounded cardinality.
 */
export interface WorkQueueListener {
  /** A key became pending (an add that merges into a pending key is not counted). */
  added(depth: number): void;
  /** A worker took a key that had been pending for `waitedMs`. */
  started(depth: number, waitedMs: number): void;
  /** A worker called `done` after `workedMs`. */
  finished(workedMs: number): void;
  /** A retry was scheduled (`addAfter`, `addRateLimited`). */
  retried(): void;
  /** Work still in progress: sampled periodically while keys are processed, (0, 0) when none is. */
  unfinishedWork(totalMs: number, longestMs: number): void;
}

export interface WorkQueueOptions {
  readonly clock?: Clock;
  readonly rateLimiter?: RateLimiter;
  readonly listener?: WorkQueueListener;
  /** How often unfinished work is sampled while keys are processed (client-go: 500 ms). */
  readonly unfinishedWorkIntervalMs?: number;
}

// setTimeout fires after 1 ms for delays above 2^31 - 1; longer waits re-arm.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Delayed {
  readonly key: string;
  readonly readyAt: number;
  readonly seq: number;
}

export class WorkQueue {
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly listener: WorkQueueListener | undefined;
  private readonly unfinishedWorkIntervalMs: number;

  /** Keys ready for a worker, in FIFO order, from `head` on. */
  private ready: string[] = [];
  private head = 0;
  /** Pending keys (ready, or re-added while processing) and when each became pending. */
  private readonly dirty = new Map<string, number>();
  /** Keys a worker holds, and when it took each. */
  private readonly processing = new Map<string, number>();
  /** Workers blocked in `get()`, oldest first. */
  private readonly waiters: ((key: string | undefined) => void)[] = [];

  /** Delayed adds: the earliest time per key, plus a min-heap that may hold stale entries. */
  private readonly waitingUntil = new Map<string, number>();
  private readonly heap: Delayed[] = [];
  private seq = 0;
  private delayTimer: { readonly handle: TimerHandle; readonly at: number } | undefined;

  private unfinishedTimer: TimerHandle | undefined;
  private shuttingDown = false;
  private readonly drained: (() => void)[] = [];

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.rateLimiter = options.rateLimiter ?? new ExponentialBackoff();
    this.listener = options.listener;
    this.unfinishedWorkIntervalMs = options.unfinishedWorkIntervalMs ?? 500;
  }

  /** Queues the key unless it is already pending; ignored after shutdown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.set(key, this.clock.now());
    this.listener?.added(this.dirty.size);
    // A key being processed goes back to the ready list only when its worker calls done().
    if (this.processing.has(key)) return;
    this.ready.push(key);
    this.dispatch();
  }

  /** Adds the key once `ms` have passed; a key already waiting keeps the earlier time. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    this.listener?.retried();
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.now() + ms;
    const waiting = this.waitingUntil.get(key);
    if (waiting !== undefined && waiting <= readyAt) return;
    this.waitingUntil.set(key, readyAt);
    this.heapPush({ key, readyAt, seq: this.seq++ });
    this.armDelayTimer();
  }

  /** Adds the key after its rate limiter's delay (5 ms, 10 ms, 20 ms, ... by default). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Ends the key's backoff: its next failure starts again at the base delay. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next ready key, waiting for one if none is; `undefined` once the queue shuts down.
   * The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
    });
  }

  /** Releases a key taken by `get()`; if it was re-added meanwhile, it is queued again now. */
  done(key: string): void {
    const startedAt = this.processing.get(key);
    if (startedAt === undefined) return;
    this.processing.delete(key);
    this.listener?.finished(this.clock.now() - startedAt);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.ready.push(key);
      this.dispatch();
    }
    if (this.processing.size === 0) this.idle();
  }

  /** Keys ready for a worker (not those waiting on a delay or on their current worker). */
  len(): number {
    return this.ready.length - this.head;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops the queue: adds are ignored, delayed adds are dropped, and `get()` returns
   * `undefined`, also to workers already waiting. Unlike client-go, keys still queued are
   * not handed out: the controller is level-triggered and relists them on its next start.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.delayTimer !== undefined) this.clock.clearTimeout(this.delayTimer.handle);
    this.delayTimer = undefined;
    this.waitingUntil.clear();
    this.heap.length = 0;
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    if (this.processing.size === 0) this.idle();
  }

  /** Shuts down, then resolves once every key handed out has been marked done. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained.push(resolve);
    });
  }

  /** Keys currently held by workers. */
  inProgress(): string[] {
    return [...this.processing.keys()];
  }

  private take(): string | undefined {
    if (this.head === this.ready.length) return undefined;
    const key = this.ready[this.head++];
    if (key === undefined) return undefined;
    if (this.head > 1024 && this.head * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
    const now = this.clock.now();
    const pendingSince = this.dirty.get(key) ?? now;
    this.dirty.delete(key);
    this.processing.set(key, now);
    this.listener?.started(this.dirty.size, now - pendingSince);
    if (this.processing.size === 1) this.scheduleUnfinishedWork();
    return key;
  }

  /** Hands ready keys to waiting workers, marking each processing before anything else runs. */
  private dispatch(): void {
    while (this.waiters.length > 0 && this.len() > 0) {
      const key = this.take();
      if (key === undefined) return;
      this.waiters.shift()?.(key);
    }
  }

  /** No key is processed any more: report it, and release shutDownWithDrain(). */
  private idle(): void {
    if (this.unfinishedTimer !== undefined) this.clock.clearTimeout(this.unfinishedTimer);
    this.unfinishedTimer = undefined;
    this.listener?.unfinishedWork(0, 0);
    if (this.shuttingDown) for (const resolve of this.drained.splice(0)) resolve();
  }

  private scheduleUnfinishedWork(): void {
    if (this.listener === undefined || this.unfinishedTimer !== undefined) return;
    this.unfinishedTimer = this.clock.setTimeout(() => {
      this.unfinishedTimer = undefined;
      this.reportUnfinishedWork();
      if (this.processing.size > 0) this.scheduleUnfinishedWork();
    }, this.unfinishedWorkIntervalMs);
  }

  private reportUnfinishedWork(): void {
    const now = this.clock.now();
    let total = 0;
    let longest = 0;
    for (const startedAt of this.processing.values()) {
      total += now - startedAt;
      longest = Math.max(longest, now - startedAt);
    }
    this.listener?.unfinishedWork(total, longest);
  }

  /** One timer, for the earliest delayed key; it moves earlier when an earlier key arrives. */
  private armDelayTimer(): void {
    const next = this.heap[0];
    if (next === undefined) return;
    if (this.delayTimer !== undefined) {
      if (this.delayTimer.at <= next.readyAt) return;
      this.clock.clearTimeout(this.delayTimer.handle);
    }
    const wait = Math.min(Math.max(next.readyAt - this.clock.now(), 0), MAX_TIMER_MS);
    const handle = this.clock.setTimeout(() => {
      this.delayTimer = undefined;
      this.releaseDue();
    }, wait);
    this.delayTimer = { handle, at: next.readyAt };
  }

  /** Adds every delayed key whose time has come, earliest first (ties in call order). */
  private releaseDue(): void {
    const now = this.clock.now();
    for (let next = this.heap[0]; next !== undefined && next.readyAt <= now; next = this.heap[0]) {
      this.heapPop();
      // Skip entries superseded by an earlier addAfter for the same key.
      if (this.waitingUntil.get(next.key) !== next.readyAt) continue;
      this.waitingUntil.delete(next.key);
      this.add(next.key);
    }
    this.armDelayTimer();
  }

  private heapPush(entry: Delayed): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent])) break;
      heap[i] = heap[parent] as Delayed;
      i = parent;
    }
    heap[i] = entry;
  }

  private heapPop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let child = left;
      if (right < heap.length && before(heap[right], heap[left])) child = right;
      if (child >= heap.length || !before(heap[child], last)) break;
      heap[i] = heap[child] as Delayed;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: Delayed | undefined, b: Delayed | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq);
}
