import type { Metrics, ReconcileResultLabel } from './metrics.ts';

/**
 * Adapters from the controller's metric hooks to the registry. src/metrics imports nothing
 * of ours, so these match the controller's `WorkQueueListener` and `ReconcileObserver`
 * structurally; the entry point wires one into the other.
 */

/** Feeds the workqueue_* series of the queue `name` (times arrive in ms, leave in seconds). */
export function workQueueListener(metrics: Metrics, name: string) {
  const labels = { name };
  const { workqueue } = metrics;
  return {
    added(depth: number): void {
      workqueue.adds.inc(labels);
      workqueue.depth.set(labels, depth);
    },
    started(depth: number, waitedMs: number): void {
      workqueue.depth.set(labels, depth);
      workqueue.queueDuration.observe(labels, waitedMs / 1000);
    },
    finished(workedMs: number): void {
      workqueue.workDuration.observe(labels, workedMs / 1000);
    },
    retried(): void {
      workqueue.retries.inc(labels);
    },
    unfinishedWork(totalMs: number, longestMs: number): void {
      workqueue.unfinishedWork.set(labels, totalMs / 1000);
      workqueue.longestRunningProcessor.set(labels, longestMs / 1000);
    },
  };
}

/** Feeds the controller_runtime_* series of `controller`. */
export function reconcileObserver(metrics: Metrics, controller: string) {
  const labels = { controller };
  const { controllerRuntime } = metrics;
  return {
    workers(count: number): void {
      controllerRuntime.maxConcurrentReconciles.set(labels, count);
    },
    activeWorkers(count: number): void {
      controllerRuntime.activeWorkers.set(labels, count);
    },
    reconciled(result: ReconcileResultLabel, seconds: number, panicked: boolean): void {
      controllerRuntime.reconcileTotal.inc({ controller, result });
      controllerRuntime.reconcileTime.observe(labels, seconds);
      if (result === 'error') controllerRuntime.reconcileErrors.inc(labels);
      if (panicked) controllerRuntime.reconcilePanics.inc(labels);
    },
  };
}
