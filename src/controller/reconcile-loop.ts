import { randomUUID } from 'node:crypto';

import type { ReconcileResultLabel } from '../metrics/metrics.ts';
import type { ReconcileResult } from './result.ts';
import type { Logger } from '../util/logger.ts';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.ts';
import type { WorkQueue } from './workqueue.ts';

/**
 * N workers over a work queue, after controller-runtime's `pkg/internal/controller`: each
 * worker takes a key, reconciles it, and one switch over the outcome picks the queue action
 * and the `controller_runtime_reconcile_total{result}` label.
 */

/** What a reconcile asks for next (defined with the reconcilers, in result.ts). */
export type Result = ReconcileResult;

export interface ReconcileContext {
  readonly controller: string;
  /** Unique per reconcile; every log line of this reconcile carries it. */
  readonly reconcileID: string;
  /** Aborted when `stop()` stops waiting for this reconcile. */
  readonly signal: AbortSignal;
}

export type Reconciler = (key: string, ctx: ReconcileContext) => Promise<Result>;

/** What the loop reports for metrics; src/metrics adapts it to the controller_runtime_* series. */
export interface ReconcileObserver {
  /** Workers configured (`controller_runtime_max_concurrent_reconciles`). */
  workers(count: number): void;
  /** Workers reconciling right now (`controller_runtime_active_workers`). */
  activeWorkers(count: number): void;
  /** One reconcile ended; `panicked` when it threw or rejected instead of returning a Result. */
  reconciled(result: ReconcileResultLabel, seconds: number, panicked: boolean): void;
}

export interface ReconcileLoopOptions {
  /** Controller name: the `controller` label and the `controller` log field. */
  readonly name: string;
  readonly queue: WorkQueue;
  readonly reconcile: Reconciler;
  /** Concurrent workers (`MaxConcurrentReconciles`), default 1. */
  readonly workers?: number;
  readonly clock?: Clock;
  readonly newReconcileID?: () => string;
  readonly observer?: ReconcileObserver;
  readonly logger?: Logger;
}

export type StopResult =
  { readonly kind: 'drained' } | { readonly kind: 'abandoned'; readonly keys: readonly string[] };

interface InFlight {
  readonly key: string;
  readonly abort: AbortController;
}

export class ReconcileLoop {
  private readonly name: string;
  private readonly queue: WorkQueue;
  private readonly reconcile: Reconciler;
  private readonly workerCount: number;
  private readonly clock: Clock;
  private readonly newReconcileID: () => string;
  private readonly observer: ReconcileObserver | undefined;
  private readonly logger: Logger | undefined;

  private readonly inFlight = new Set<InFlight>();
  private workerRuns: Promise<void>[] = [];
  private started = false;
  private stopping: Promise<StopResult> | undefined;

  constructor(options: ReconcileLoopOptions) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(
        `controller ${options.name}: workers must be a positive integer, got ${workers}`,
      );
    }
    this.name = options.name;
    this.queue = options.queue;
    this.reconcile = options.reconcile;
    this.workerCount = workers;
    this.clock = options.clock ?? systemClock;
    this.newReconcileID = options.newReconcileID ?? randomUUID;
    this.observer = options.observer;
    this.logger = options.logger;
  }

  /** Starts the workers; they run until `stop()`. */
  start(): void {
    if (this.started) throw new Error(`controller ${this.name}: already started`);
    this.started = true;
    this.observer?.workers(this.workerCount);
    this.observer?.activeWorkers(0);
    this.workerRuns = Array.from({ length: this.workerCount }, () => this.work());
  }

  /**
   * Stops taking keys and waits for reconciles in flight; after `timeoutMs` it aborts their
   * signals and returns without them (their keys are reported as abandoned).
   */
  stop({ timeoutMs = 30_000 }: { readonly timeoutMs?: number } = {}): Promise<StopResult> {
    this.stopping ??= this.drain(timeoutMs);
    return this.stopping;
  }

  private async drain(timeoutMs: number): Promise<StopResult> {
    const drained = this.queue.shutDownWithDrain().then(() => Promise.all(this.workerRuns));
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => {
        resolve('timeout');
      }, timeoutMs);
    });
    const outcome = await Promise.race([drained, timedOut]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    if (outcome !== 'timeout') return { kind: 'drained' };
    const keys = [...this.inFlight].map((run) => run.key);
    for (const run of this.inFlight) {
      run.abort.abort(
        new Error(`controller ${this.name}: reconcile of ${run.key} abandoned at stop`),
      );
    }
    return { kind: 'abandoned', keys };
  }

  private async work(): Promise<void> {
    for (let key = await this.queue.get(); key !== undefined; key = await this.queue.get()) {
      await this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const run: InFlight = { key, abort: new AbortController() };
    const ctx: ReconcileContext = {
      controller: this.name,
      reconcileID: this.newReconcileID(),
      signal: run.abort.signal,
    };
    const startedAt = this.clock.now();
    this.inFlight.add(run);
    this.observer?.activeWorkers(this.inFlight.size);
    try {
      const { result, panicked } = await this.invoke(key, ctx);
      const label = this.settle(key, result);
      const seconds = (this.clock.now() - startedAt) / 1000;
      this.observer?.reconciled(label, seconds, panicked);
      if (result.kind === 'error' || result.kind === 'terminal')
        this.logError(key, ctx, result.error, panicked, result.kind === 'terminal');
      else
        this.logger?.debug('Reconciled', { ...this.logFields(key, ctx), result: label, seconds });
    } finally {
      this.inFlight.delete(run);
      this.observer?.activeWorkers(this.inFlight.size);
      this.queue.done(key);
    }
  }

  /** Runs the reconciler; a throw or a rejection becomes an error Result (panic recovery). */
  private async invoke(
    key: string,
    ctx: ReconcileContext,
  ): Promise<{ result: Result; panicked: boolean }> {
    try {
      return { result: await this.reconcile(key, ctx), panicked: false };
    } catch (thrown: unknown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      return { result: { kind: 'error', error }, panicked: true };
    }
  }

  /** The queue action for an outcome, and its metric label (controller-runtime's order). */
  private settle(key: string, result: Result): ReconcileResultLabel {
    switch (result.kind) {
      case 'error':
        this.queue.addRateLimited(key);
        return 'error';
      case 'terminal':
        // Counted as an error, never retried: the backoff starts over for the next change.
        this.queue.forget(key);
        return 'error';
      case 'requeue':
        this.queue.addRateLimited(key);
        return 'requeue';
      case 'requeueAfter':
        // A timed requeue is not a failure: the backoff starts over.
        this.queue.forget(key);
        this.queue.addAfter(key, result.ms);
        return 'requeue_after';
      case 'done':
        this.queue.forget(key);
        return 'success';
    }
  }

  private logError(
    key: string,
    ctx: ReconcileContext,
    error: Error,
    panicked: boolean,
    terminal: boolean,
  ): void {
    this.logger?.error(panicked ? 'Reconciler threw' : 'Reconciler error', {
      ...this.logFields(key, ctx),
      error: error.message,
      ...(terminal ? { terminal: true } : {}),
      ...(panicked && error.stack !== undefined ? { stack: error.stack } : {}),
    });
  }

  private logFields(key: string, ctx: ReconcileContext): Record<string, string> {
    return { controller: this.name, key, reconcileID: ctx.reconcileID };
  }
}
