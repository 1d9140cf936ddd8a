import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { createPlacementMetrics, type PlacementMetrics } from './placement.ts';

/**
 * The operator's Prometheus registry. controller_runtime_*, workqueue_* and
 * leader_election_* carry controller-runtime's and client-go's names, help texts and
 * buckets, so dashboards built for Go operators read them unchanged.
 */

/** The `result` label values of `controller_runtime_reconcile_total`. */
export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
export type ReconcileResultLabel = (typeof RECONCILE_RESULTS)[number];

/** controller-runtime's per-controller series; their types are those `controllerRuntimeMetrics` creates. */
export type ControllerRuntimeMetrics = Readonly<ReturnType<typeof controllerRuntimeMetrics>>;

/** client-go's per-queue series; their types are those `workqueueMetrics` creates. */
export type WorkqueueMetrics = Readonly<ReturnType<typeof workqueueMetrics>>;

export interface Metrics {
  /** This operator's own registry (not prom-client's global one). */
  readonly registry: Registry;
  readonly controllerRuntime: ControllerRuntimeMetrics;
  readonly workqueue: WorkqueueMetrics;
  /** `leader_election_master_status{name}`: 1 while this replica holds the lease, else 0. */
  readonly leaderElectionMasterStatus: Gauge<'name'>;
  readonly placement: PlacementMetrics;
  /** Creates a controller's series, and its queue's (named after it), at 0. */
  registerController(name: string): void;
}

export interface MetricsOptions {
  /** Controllers whose series exist from the start, at 0. */
  readonly controllers?: readonly string[];
  /** Lease names whose leader_election_master_status starts at 0. */
  readonly leases?: readonly string[];
  /** Node process and runtime metrics (prom-client's default collectors); default true. */
  readonly processMetrics?: boolean;
}

// controller-runtime's reconcile_time_seconds buckets.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
  1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// client-go's ExponentialBuckets(10e-9, 10, 12): 10 ns to 1000 s.
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

// prom-client's default collectors export these gauges with a `_total` suffix, which
// `promtool check metrics` rejects (only counters may end in _total). Each is the sum over
// `type` of its unsuffixed sibling (nodejs_active_handles{type}, ...), so nothing is lost.
const NON_COUNTER_TOTALS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Creates the registry and every metric on it. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(name);
  }

  const controllerRuntime = controllerRuntimeMetrics(registers);
  const workqueue = workqueueMetrics(registers);
  const perQueue = { labelNames: ['name'] as const, registers };

  const leaderElectionMasterStatus = new Gauge({
    name: 'leader_election_master_status',
    help:
      'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, ' +
      "1 indicates master. 'name' is the string used to identify the lease. Please make sure " +
      'to group by name.',
    ...perQueue,
  });
  for (const name of options.leases ?? []) leaderElectionMasterStatus.set({ name }, 0);

  // As controller-runtime's initMetrics: every series a dashboard graphs exists before the
  // first reconcile, so rate() and absent() behave from the start.
  const registerController = (controller: string): void => {
    for (const result of RECONCILE_RESULTS)
      controllerRuntime.reconcileTotal.inc({ controller, result }, 0);
    controllerRuntime.reconcileErrors.inc({ controller }, 0);
    controllerRuntime.reconcilePanics.inc({ controller }, 0);
    controllerRuntime.reconcileTime.zero({ controller });
    controllerRuntime.maxConcurrentReconciles.set({ controller }, 0);
    controllerRuntime.activeWorkers.set({ controller }, 0);
    const name = controller;
    workqueue.depth.set({ name }, 0);
    workqueue.adds.inc({ name }, 0);
    workqueue.queueDuration.zero({ name });
    workqueue.workDuration.zero({ name });
    workqueue.retries.inc({ name }, 0);
    workqueue.unfinishedWork.set({ name }, 0);
    workqueue.longestRunningProcessor.set({ name }, 0);
  };
  for (const controller of options.controllers ?? []) registerController(controller);

  return {
    registry,
    controllerRuntime,
    workqueue,
    leaderElectionMasterStatus,
    placement: createPlacementMetrics(registry),
    registerController,
  };
}

/** controller-runtime's `controller_runtime_*` series, labelled by controller. */
function controllerRuntimeMetrics(registers: Registry[]) {
  const perController = { labelNames: ['controller'] as const, registers };
  return {
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      ...perController,
    }),
    reconcilePanics: new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics per controller',
      ...perController,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      buckets: RECONCILE_BUCKETS,
      ...perController,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      ...perController,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      ...perController,
    }),
  };
}

/** client-go's `workqueue_*` series, labelled by queue name. */
function workqueueMetrics(registers: Registry[]) {
  const perQueue = { labelNames: ['name'] as const, registers };
  return {
    depth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', ...perQueue }),
    adds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      ...perQueue,
    }),
    queueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      buckets: QUEUE_BUCKETS,
      ...perQueue,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      buckets: QUEUE_BUCKETS,
      ...perQueue,
    }),
    retries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      ...perQueue,
    }),
    unfinishedWork: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help:
        "How many seconds of work has been done that is in progress and hasn't been observed by " +
        'work_duration. Large values indicate stuck threads. One can deduce the number of stuck ' +
        'threads by observing the rate at which this increases.',
      ...perQueue,
    }),
    longestRunningProcessor: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      ...perQueue,
    }),
  };
}
