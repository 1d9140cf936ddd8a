// The operator's wiring: the three controllers' loops, their dependencies and the event
// handlers that feed them. Long because every source's handler and every loop's deps are
// spelt out in one place, which is the point: how a change reaches a reconcile reads top to
// bottom here. The decisions themselves live in the reconcilers and plan.ts.
import type { Labels, Namespace } from '../api/core.ts';
import { exceptionRef, type PlacementException } from '../api/exception.ts';
import { policyRef, type PlacementPolicy } from '../api/policy.ts';
import type { Metrics } from '../metrics/index.ts';
import { workQueueListener, reconcileObserver } from '../metrics/index.ts';
import { policyTargets, managedByDeployment, workloadRef } from '../engine/index.ts';
import {
  reconcileException,
  type ExceptionReconcilerDeps,
  type ExceptionStatusWriter,
} from './exception-reconciler.ts';
import {
  PolicyCatalog,
  type CatalogEntry,
  type CrossNamespaceTerms,
  type ExceptionEntry,
} from './policy-catalog.ts';
import { LostRecords } from './lost-records.ts';
import { reconcilePolicy, type PolicyReconcilerDeps } from './policy-reconciler.ts';
import type { AuditSummary } from './policy-status.ts';
import { type PolicyStatusWriter, type WorkloadWriter } from './ports.ts';
import { ReconcileLoop } from './reconcile-loop.ts';
import { withFields, type ReconcileResult } from './result.ts';
import type { Logger } from '../util/logger.ts';
import type { AdmissionSync } from './admission-sync.ts';
import { RolloutBudget } from './rollout-budget.ts';
import { SettleWindow } from './settle-window.ts';
import type { ClusterView } from './rollout-check.ts';
import { reconcileWorkload, type WorkloadReconcilerDeps } from './workload-reconciler.ts';
import { WorkQueue } from './workqueue.ts';
import type { Clock } from '../util/clock.ts';
import { sameLabels } from '../util/json.ts';
import {
  APPLIED_ANNOTATION,
  workloadKey,
  type EventRecorder,
  type Source,
  type Store,
  type Workload,
} from '../api/cluster.ts';

export const WORKLOAD_CONTROLLER = 'placement-workload';
export const POLICY_CONTROLLER = 'placement-policy';
export const EXCEPTION_CONTROLLER = 'placement-exception';
/** Policy status is recomputed at most this often however many workloads change. */
export const STATUS_DEBOUNCE_MS = 1_000;

export interface OperatorSources {
  /** PlacementPolicy and ClusterPlacementPolicy informers. */
  readonly policies: readonly Source<PlacementPolicy>[];
  /** One informer per workload kind; keys are `Kind/namespace/name`. */
  readonly workloads: readonly Source<Workload>[];
  readonly namespaces: Source<Namespace>;
  /** The PlacementException informer; without it no exception exists. */
  readonly exceptions?: Source<PlacementException>;
}

export interface OperatorDeps {
  readonly sources: OperatorSources;
  readonly workloadWriter: WorkloadWriter;
  readonly statusWriter: PolicyStatusWriter;
  readonly exceptionStatusWriter?: ExceptionStatusWriter;
  readonly events: EventRecorder;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** What the continuous audit knows of a policy. */
  readonly audit?: (ref: string) => AuditSummary | undefined;
  /** Pods and nodes: template writes are simulated on them first (none: no simulation). */
  readonly cluster?: ClusterView;
  readonly now?: () => Date;
  /** Timers of the settle window (tests pass a fake one). */
  readonly clock?: Clock;
  /** Keeps the MutatingAdmissionPolicy in step with the policies (injection at admission). */
  readonly admission?: AdmissionSync;
}

export interface OperatorOptions {
  readonly workers: number;
  readonly rolloutBudget: number;
  /** Every workload and policy is looked at again this often (level-triggered safety net). */
  readonly resyncMs: number;
  /**
   * How long the workloads a policy change reaches wait for more policy changes before they
   * are reconciled (see SettleWindow); 0 reconciles them at once.
   */
  readonly settleMs: number;
  /** Whether a namespaced policy's terms may select pods of other namespaces (default allow). */
  readonly crossNamespaceTerms?: CrossNamespaceTerms;
}

/** Several informers read as one store (their keys never collide). */
class UnionStore<T> implements Store<T> {
  private readonly parts: readonly Store<T>[];
  private readonly keyOf: (key: string) => string;

  constructor(parts: readonly Store<T>[], keyOf: (key: string) => string = (k) => k) {
    this.parts = parts;
    this.keyOf = keyOf;
  }

  get synced(): boolean {
    return this.parts.every((p) => p.synced);
  }

  list(): readonly T[] {
    return this.parts.flatMap((p) => p.list());
  }

  get(key: string): T | undefined {
    const k = this.keyOf(key);
    for (const p of this.parts) {
      const found = p.get(k);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

/** `PlacementPolicy/ns/name` → `ns/name`; `ClusterPlacementPolicy/name` → `name` (informer keys). */
const informerKeyOfPolicy = (ref: string): string => ref.slice(ref.indexOf('/') + 1);

/** An exception's informer and queue key, `namespace/name`. */
const exceptionKey = (e: ExceptionEntry): string => {
  const meta = e.kind === 'valid' ? e.exception.source.metadata : e.source.metadata;
  return `${meta.namespace}/${meta.name}`;
};

const NO_EXCEPTIONS: Store<PlacementException> = {
  synced: true,
  list: () => [],
  get: () => undefined,
};

/**
 * The operator: informers feed two controllers. The workload controller brings each
 * workload's affinity to what its policies ask; the policy controller keeps finalizers and
 * status. Event handlers only keep the policy catalog current and enqueue keys.
 */
export class Operator {
  readonly catalog: PolicyCatalog;
  readonly budget: RolloutBudget;
  readonly settle: SettleWindow;
  private readonly workloads: UnionStore<Workload>;
  private readonly policies: UnionStore<PlacementPolicy>;
  private readonly workloadQueue: WorkQueue;
  private readonly policyQueue: WorkQueue;
  private readonly exceptionQueue: WorkQueue;
  private readonly loops: ReconcileLoop[];
  private readonly deps: OperatorDeps;
  private readonly options: OperatorOptions;
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  /** Workload key → why the API server refused our last write (see WorkloadReconcilerDeps). */
  private readonly refused = new Map<string, string>();
  /** Workload key → the resourceVersion our last write was based on (see WorkloadReconcilerDeps). */
  private readonly writtenFrom = new Map<string, string>();
  /** Records removed by hand while their terms stayed (see LostRecords). */
  private readonly lost = new LostRecords();
  /** Workload key → why its template write is held back (see WorkloadReconcilerDeps). */
  private readonly heldBack = new Map<string, string>();

  constructor(deps: OperatorDeps, options: OperatorOptions) {
    this.deps = deps;
    this.options = options;
    this.catalog = new PolicyCatalog({
      crossNamespaceTerms: options.crossNamespaceTerms ?? 'allow',
    });
    const { sources, metrics } = deps;
    this.workloads = new UnionStore(sources.workloads);
    this.policies = new UnionStore(sources.policies, informerKeyOfPolicy);
    this.budget = new RolloutBudget(options.rolloutBudget, (keys) => {
      for (const k of keys) this.enqueueWorkload(k);
      this.reportBudget();
    });
    this.settle = new SettleWindow({
      windowMs: options.settleMs,
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
      release: (keys) => {
        for (const k of keys) this.workloadQueue.add(k);
        this.deps.metrics.placement.setSettling(this.settle.size);
      },
    });
    metrics.registerController(WORKLOAD_CONTROLLER);
    metrics.registerController(POLICY_CONTROLLER);
    metrics.registerController(EXCEPTION_CONTROLLER);
    const queueOf = (name: string): WorkQueue =>
      new WorkQueue({ listener: workQueueListener(metrics, name) });
    this.workloadQueue = queueOf(WORKLOAD_CONTROLLER);
    this.policyQueue = queueOf(POLICY_CONTROLLER);
    this.exceptionQueue = queueOf(EXCEPTION_CONTROLLER);
    /** A loop over `queue` whose every reconcile logs with the key under `field`. */
    const loopOf = (
      name: string,
      queue: WorkQueue,
      workers: number,
      field: string,
      reconcile: (key: string, log: Logger) => Promise<ReconcileResult>,
    ): ReconcileLoop =>
      new ReconcileLoop({
        name,
        queue,
        workers,
        observer: reconcileObserver(metrics, name),
        logger: deps.log,
        reconcile: (key, ctx) =>
          reconcile(key, withFields(deps.log, { [field]: key, reconcileID: ctx.reconcileID })),
      });
    this.loops = [
      loopOf(WORKLOAD_CONTROLLER, this.workloadQueue, options.workers, 'workload', (key, log) =>
        reconcileWorkload(key, this.workloadDeps(), log),
      ),
      loopOf(POLICY_CONTROLLER, this.policyQueue, 1, 'policy', (key, log) =>
        reconcilePolicy(key, this.policyDeps(), log),
      ),
      loopOf(EXCEPTION_CONTROLLER, this.exceptionQueue, 1, 'exception', (key, log) =>
        reconcileException(key, this.exceptionDeps(), log),
      ),
    ];
    this.subscribe();
    this.reportBudget();
  }

  private namespaceLabels = (ns: string): Labels =>
    this.deps.sources.namespaces.get(ns)?.metadata.labels ?? {};

  private workloadDeps(): WorkloadReconcilerDeps {
    const placement = this.deps.metrics.placement;
    return {
      workloads: this.workloads,
      namespaceLabels: this.namespaceLabels,
      catalog: this.catalog,
      writer: this.deps.workloadWriter,
      events: this.deps.events,
      budget: this.budget,
      refused: this.refused,
      writtenFrom: this.writtenFrom,
      lost: this.lost,
      log: this.deps.log,
      onWrite: (what, result) => {
        if (what === 'revert') placement.workloadReverted(result);
        else placement.workloadWritten(result);
        this.reportBudget();
      },
      onWorkloadSettled: (refs) => {
        placement.setRolloutsHeldBack(this.heldBack.size);
        this.deps.admission?.heldBackChanged(this.heldBack.keys());
        for (const ref of refs) this.policyQueue.addAfter(ref, STATUS_DEBOUNCE_MS);
      },
      ...(this.deps.cluster === undefined
        ? {}
        : { cluster: this.deps.cluster, heldBack: this.heldBack }),
    };
  }

  private policyDeps(): PolicyReconcilerDeps {
    return {
      policies: this.policies,
      workloads: this.workloads,
      namespaceLabels: this.namespaceLabels,
      catalog: this.catalog,
      writer: this.deps.statusWriter,
      events: this.deps.events,
      isWaiting: (w) => this.budget.isWaiting(workloadKey(w)),
      isRolling: (w) => this.budget.isRolling(workloadKey(w)),
      refusal: (w) => this.refused.get(workloadKey(w)),
      heldBack: (w) => this.heldBack.get(workloadKey(w)),
      enqueueWorkload: (key) => {
        this.enqueueWorkload(key);
      },
      audit: (ref) => this.deps.audit?.(ref),
      ...(this.deps.admission === undefined
        ? {}
        : {
            injection: (ref: string) =>
              this.deps.admission?.injectionOf(ref) ?? { kind: 'admission' as const },
          }),
      now: this.deps.now ?? (() => new Date()),
      onStatus: (ref, status) => {
        this.deps.metrics.placement.setPolicyWorkloads(ref, {
          matched: status.matched,
          enforced: status.enforced,
          pending: status.pending,
          exempted: status.exempted,
        });
      },
    };
  }

  private exceptionDeps(): ExceptionReconcilerDeps {
    const writer = this.deps.exceptionStatusWriter;
    return {
      exceptions: this.deps.sources.exceptions ?? NO_EXCEPTIONS,
      workloads: this.workloads,
      namespaceLabels: this.namespaceLabels,
      catalog: this.catalog,
      // Without a writer the status can never be written: terminal, like a rejected request.
      writer: writer ?? {
        writeStatus: () =>
          Promise.resolve({
            kind: 'failed',
            message: 'no status writer',
            retryable: false,
            invalid: ['status'],
          }),
      },
      events: this.deps.events,
      now: this.deps.now ?? (() => new Date()),
    };
  }

  private reportBudget(): void {
    this.deps.metrics.placement.setRolloutBudget(this.budget.inUse, this.budget.max);
  }

  /** Event handlers: keep the catalog current, enqueue keys, decide nothing. */
  private subscribe(): void {
    const { sources } = this.deps;
    for (const source of sources.policies) {
      source.addHandler((event) => {
        const ref = policyRef(event.object);
        const before = this.catalog.get(ref);
        let after: CatalogEntry | undefined;
        if (event.type === 'deleted') {
          this.catalog.delete(ref);
          this.deps.metrics.placement.forgetPolicy(ref);
        } else {
          after = this.catalog.set(event.object);
        }
        this.policyQueue.add(ref);
        // The catalog keeps its entry when neither the generation nor the deletion state
        // moved: a status write of ours changes nothing a workload reads.
        if (after !== before) {
          this.policyChanged(ref, [before, after]);
          // Another policy's status can depend on this one (a contradiction between them
          // appears or goes) even when no workload is written because of it.
          this.enqueuePoliciesFor();
          // Whether the policy accepts its exceptions may have changed with it.
          for (const e of this.catalog.allExceptions())
            if (e.kind === 'valid' && e.exception.policy === ref)
              this.exceptionQueue.add(exceptionKey(e));
          if (this.started) this.deps.admission?.policiesChanged(this.catalog);
        }
      });
    }
    sources.exceptions?.addHandler((event) => {
      const ref = exceptionRef(event.object);
      const before = this.catalog.exception(ref);
      const changed =
        event.type === 'deleted'
          ? this.catalog.deleteException(ref) !== undefined
          : this.catalog.setException(event.object).changed;
      if (event.type !== 'deleted')
        this.exceptionQueue.add(`${event.object.metadata.namespace}/${event.object.metadata.name}`);
      if (!changed) return;
      // The workloads of its namespace gain or lose the policy's terms; the policies it named
      // before and names now count their exempted workloads again.
      this.enqueueWorkloadsIn(event.object.metadata.namespace);
      // Which workloads admission gives a policy's terms changes with its exceptions.
      if (this.started) this.deps.admission?.policiesChanged(this.catalog);
      const after = this.catalog.exception(ref);
      for (const e of [before, after])
        if (e?.kind === 'valid') this.policyQueue.addAfter(e.exception.policy, STATUS_DEBOUNCE_MS);
    });
    for (const source of sources.workloads) {
      source.addHandler((event) => {
        const key = workloadKey(event.object);
        if (event.type === 'deleted') {
          this.budget.forget(key);
          this.settle.forget(key);
          this.lost.forget(key);
        } else {
          this.budget.observe(event.object, key);
          if (event.old !== undefined) this.lost.observe(event.old, event.object);
        }
        this.enqueueWorkload(key);
        this.enqueuePoliciesFor();
        this.enqueueExceptionsIn(event.object.namespace, STATUS_DEBOUNCE_MS);
      });
    }
    sources.namespaces.addHandler((event) => {
      const labelsChanged =
        event.type !== 'updated' ||
        !sameLabels(event.old?.metadata.labels, event.object.metadata.labels);
      // New labels may bring the namespace into (or out of) the reach of policies.
      if (labelsChanged) {
        const ns = event.object.metadata.name;
        this.holdForPolicies(this.workloads.list().filter((w) => w.namespace === ns));
        // A cluster policy may accept exceptions from namespaces chosen by label.
        this.enqueueExceptionsIn(ns, 0);
      }
    });
  }

  /** Queues a workload unless it waits for a batch of policy changes to end. */
  private enqueueWorkload(key: string): void {
    if (!this.settle.isHeld(key)) this.workloadQueue.add(key);
  }

  private enqueueExceptionsIn(namespace: string | undefined, delayMs: number): void {
    const entries =
      namespace === undefined
        ? [...this.catalog.allExceptions()]
        : this.catalog.exceptionsIn(namespace);
    for (const e of entries) this.exceptionQueue.addAfter(exceptionKey(e), delayMs);
  }

  private enqueueWorkloadsIn(namespace: string | undefined): void {
    for (const w of this.workloads.list()) {
      if (namespace === undefined || w.namespace === namespace)
        this.enqueueWorkload(workloadKey(w));
    }
  }

  /**
   * A policy's spec or deletion state moved: the workloads it reaches (targeted by the old
   * or the new version, or carrying its terms) wait for the settle window.
   */
  private policyChanged(ref: string, versions: readonly (CatalogEntry | undefined)[]): void {
    const valid = versions.flatMap((e) => (e?.kind === 'valid' ? [e.policy] : []));
    const reached = this.workloads.list().filter((w) => {
      if (managedByDeployment(w)) return false;
      if (w.annotations[APPLIED_ANNOTATION]?.includes(`"${ref}"`) === true) return true;
      const ref0 = workloadRef(w);
      const labels = this.namespaceLabels(w.namespace);
      return valid.some((p) => policyTargets(p, ref0, labels));
    });
    this.holdForPolicies(reached);
  }

  private holdForPolicies(workloads: readonly Workload[]): void {
    // Before start, the first resync looks at every workload anyway.
    if (!this.started || workloads.length === 0) return;
    this.settle.hold(workloads.map(workloadKey));
    this.deps.metrics.placement.setSettling(this.settle.size);
  }

  private enqueuePoliciesFor(): void {
    for (const p of this.policies.list())
      this.policyQueue.addAfter(policyRef(p), STATUS_DEBOUNCE_MS);
  }

  /** Looks at these policies' status again (the audit found something new). */
  refreshPolicies(refs: readonly string[]): void {
    for (const ref of refs) this.policyQueue.add(ref);
  }

  /** Starts reconciling (on becoming leader): everything is looked at once, then on change. */
  start(): void {
    for (const p of this.policies.list()) this.catalog.set(p);
    this.started = true;
    for (const e of this.deps.sources.exceptions?.list() ?? []) this.catalog.setException(e);
    this.deps.admission?.policiesChanged(this.catalog);
    for (const loop of this.loops) loop.start();
    this.resync();
    this.resyncTimer = setInterval(() => {
      this.resync();
    }, this.options.resyncMs);
    this.resyncTimer.unref();
  }

  private resync(): void {
    this.enqueueWorkloadsIn(undefined);
    // Also retries a write of the admission policy that failed.
    if (this.started) this.deps.admission?.policiesChanged(this.catalog);
    for (const p of this.policies.list()) this.policyQueue.add(policyRef(p));
    for (const e of this.deps.sources.exceptions?.list() ?? [])
      this.exceptionQueue.add(`${e.metadata.namespace}/${e.metadata.name}`);
  }

  /** Stops taking work; waits for reconciles in flight (abandoning them after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    clearInterval(this.resyncTimer);
    this.settle.stop();
    this.deps.admission?.stop();
    await Promise.all(this.loops.map((l) => l.stop({ timeoutMs })));
  }

  /** Workloads and policies synced: the operator may decide from the cache. */
  get synced(): boolean {
    return (
      this.workloads.synced &&
      this.policies.synced &&
      this.deps.sources.namespaces.synced &&
      (this.deps.sources.exceptions?.synced ?? true)
    );
  }

  /** Everything queued has been handled (tests and the demo wait for it). */
  get idle(): boolean {
    return (
      this.workloadQueue.len() === 0 &&
      this.policyQueue.len() === 0 &&
      this.exceptionQueue.len() === 0 &&
      this.settle.size === 0
    );
  }
}
