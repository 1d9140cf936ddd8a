import type { Labels, Namespace, Node, Pod } from '../api/core.ts';
import type { PolicyAuditSummary, PolicyRef } from '../api/policy.ts';
import {
  nodeAdmits,
  nodeFacts,
  auditIndex,
  buildIndex,
  feasibility,
  findingReach,
  isJudged,
  isPlaced,
  judgePod,
  placementOf,
  podKey,
  policyTargets,
  workloadOfPod,
  type AuditReport,
  type CompiledPolicy,
  type Feasibility,
  type FeasibilityTarget,
  type FindingReach,
  type PodConstraints,
  type WorkloadRef,
  type TopologyIndex,
  type Violation,
  type WorkloadFinder,
  type WorkloadObject,
} from '../engine/index.ts';
import { workloadKey } from '../api/cluster.ts';
import type { EventTarget, Store, WatchEvent, Workload } from '../kube/types.ts';
import type { PlacementMetrics } from '../metrics/index.ts';
import type { PodEvictor } from './ports.ts';
import { EvictionLimiter } from './remediation.ts';

/** A store that tells of changes (an informer). */
export interface AuditSource<T> extends Store<T> {
  addHandler(handler: (event: WatchEvent<T>) => void): () => void;
}

/** Something that tells of changes without the audit reading it (the policy informers). */
export interface ChangeSource {
  addHandler(handler: () => void): () => void;
}

export interface AuditLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

export interface AuditEvents {
  record(
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    options?: { readonly deduplicate?: boolean },
  ): void;
}

/** What a policy's status shows of the audit. */
export type PolicyAudit = PolicyAuditSummary;

export interface ContinuousAuditDeps {
  readonly pods: AuditSource<Pod>;
  readonly nodes: AuditSource<Node>;
  readonly namespaces: AuditSource<Namespace>;
  readonly workloads: readonly AuditSource<Workload>[];
  /** The valid policies, highest priority first; a new array whenever they change. */
  readonly policies: () => readonly CompiledPolicy[];
  /** Tell of policy changes, so that a new or edited policy is judged without other changes. */
  readonly policyChanges?: readonly ChangeSource[];
  readonly events: AuditEvents;
  readonly metrics: PlacementMetrics;
  readonly log: AuditLogger;
  readonly evictor?: PodEvictor;
  readonly evictionDryRun: boolean;
  /** Told which policies' audit results changed, so their status is refreshed. */
  readonly onChange: (refs: readonly PolicyRef[]) => void;
  readonly now?: () => number;
}

export interface ContinuousAuditOptions {
  /** Changes are judged together after this quiet time. Default 500 ms. */
  readonly debounceMs?: number;
  /** A rebuild from scratch checks the incremental index this often. */
  readonly fullCheckMs: number;
  /** Violating pods listed in a policy's status. */
  readonly sampleSize?: number;
  /** No second eviction of a workload's pods for this long. Default 60 s. */
  readonly evictionCooldownMs?: number;
  /** An eviction a budget blocked (or that failed) is tried again after this. Default 30 s. */
  readonly evictionRetryMs?: number;
  /**
   * Keep nothing between passes: feasibility is computed anew on every pass, and new
   * policies rebuild the index. What passes cost before they reused work; benchmarks
   * compare against it.
   */
  readonly fromScratch?: boolean;
}

const SAMPLE_SIZE = 10;
/** Nodes tried when asking whether an evicted pod could be placed elsewhere. */
const PROBE_NODES = 500;

const violationKey = (v: Violation): string => `${v.pod}|${v.rule}|${v.source}|${String(v.term)}`;

/** A violation, and how far it may travel (see findingReach). */
interface Finding {
  readonly violation: Violation;
  readonly reach: FindingReach;
}

/** What the operator logs, once, when a namespaced policy's term is broken by a pod of another namespace. */
export const CROSS_NAMESPACE_FINDING = 'namespaced policy term broken outside its namespace';

/** Policies with `spec.audit.enabled: false` take no part in judging pods (as in the CLI). */
const audited = (policies: readonly CompiledPolicy[]): CompiledPolicy[] =>
  policies.filter((p) => p.auditEnabled);

/** Workloads as ownership needs them, read from the workload informers. */
class WorkloadStores implements WorkloadFinder {
  private readonly stores: readonly Store<Workload>[];

  constructor(stores: readonly Store<Workload>[]) {
    this.stores = stores;
  }

  get(kind: string, namespace: string, name: string): WorkloadObject | undefined {
    const key = `${kind}/${namespace}/${name}`;
    for (const s of this.stores) {
      const w = s.get(key);
      if (w !== undefined) return asObject(w);
    }
    return undefined;
  }
}

function asObject(w: Workload): WorkloadObject {
  return {
    kind: w.kind,
    metadata: { name: w.name, namespace: w.namespace, ownerReferences: w.ownerReferences },
    spec: {
      ...(w.selector === undefined ? {} : { selector: w.selector }),
      template: { metadata: { labels: w.templateLabels } },
    },
  };
}

/**
 * The continuous audit: an index of every placed pod kept current from the informers,
 * judged after each burst of changes, rebuilt from scratch now and then to prove the
 * incremental state right. Feasibility is kept from pass to pass until something it read
 * changes: a workload, a policy, a namespace's labels, a node label whose domains it
 * counted, or a pod that one of its look-ups for running pods could find. Reports go to
 * policy status, Events and metrics; policies that ask for it get their violating pods
 * evicted, within limits.
 */
export class ContinuousAudit {
  private readonly deps: ContinuousAuditDeps;
  private readonly options: ContinuousAuditOptions;
  private readonly finder: WorkloadStores;
  private index: TopologyIndex | null = null;
  private placedWith: readonly CompiledPolicy[] | null = null;
  /** The audited ones of `placedWith`: the policies whose terms pods are judged by. */
  private judgedBy: readonly CompiledPolicy[] = [];
  private summaries = new Map<PolicyRef, PolicyAudit>();
  private violating = new Set<string>();
  private lastReport: AuditReport | null = null;
  /** The last feasibility result, until something it read changes (then null). */
  private feasible: Feasibility | null = null;
  private timer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly limiter: EvictionLimiter;
  /** Evictions not made yet are tried again by then, with or without other changes. */
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = Infinity;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Incremental index or kept feasibility and a computation from scratch disagreed (should stay 0). */
  mismatches = 0;
  evaluations = 0;
  /** Feasibility computations; passes after changes it did not read keep the last result. */
  feasibilityRuns = 0;

  constructor(deps: ContinuousAuditDeps, options: ContinuousAuditOptions) {
    this.deps = deps;
    this.options = options;
    this.finder = new WorkloadStores(deps.workloads);
    this.limiter = new EvictionLimiter(options.evictionCooldownMs);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Builds the index from the (synced) caches, subscribes to changes and judges once. */
  start(): void {
    this.rebuild();
    const { deps } = this;
    this.unsubscribe.push(
      deps.pods.addHandler((e) => {
        this.onPod(e);
      }),
      deps.nodes.addHandler((e) => {
        this.onNode(e);
      }),
      deps.namespaces.addHandler((e) => {
        this.onNamespace(e);
      }),
      ...deps.workloads.map((s) =>
        s.addHandler((e) => {
          this.onWorkload(e);
        }),
      ),
      // Status writes tell too; only a new policy array (evaluate() rebuilds for it) counts.
      // Whoever keeps that array may hear of the change after this handler: look once done.
      ...(deps.policyChanges ?? []).map((s) =>
        s.addHandler(() => {
          setImmediate(() => {
            if (this.deps.policies() !== this.placedWith) this.schedule();
          });
        }),
      ),
    );
    this.fullTimer = setInterval(() => {
      this.enqueue(() => this.fullCheck());
    }, this.options.fullCheckMs);
    this.fullTimer.unref();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.fullTimer);
    clearTimeout(this.retryTimer);
    for (const u of this.unsubscribe) u();
    await this.running;
  }

  /** What the last evaluation found for a policy. */
  summary(ref: string): PolicyAudit | undefined {
    return this.summaries.get(ref as PolicyRef);
  }

  get report(): AuditReport | null {
    return this.lastReport;
  }

  // ---- keeping the index current (cache maintenance only; judging happens in evaluate) ----

  private snapshot(): Parameters<typeof buildIndex>[0] {
    return {
      nodes: this.deps.nodes.list(),
      namespaces: this.deps.namespaces.list(),
      pods: this.deps.pods.list(),
      policies: [],
      workloads: [],
    };
  }

  private rebuild(): void {
    this.feasible = null;
    const policies = this.deps.policies();
    this.judgedBy = audited(policies);
    this.index = buildIndex(this.snapshot(), this.judgedBy, this.finder);
    this.placedWith = policies;
  }

  /**
   * Judges pods by a new set of policies: only the pods of workloads that a policy added,
   * removed or changed targets (before or now) get other terms, so only they are placed again.
   * A policy that stays is the same object, and keeps its place in the priority order.
   */
  private adopt(policies: readonly CompiledPolicy[]): void {
    const index = this.index;
    if (index === null) {
      this.rebuild();
      return;
    }
    const judgedBy = audited(policies);
    const before = new Set(this.judgedBy);
    const now = new Set(judgedBy);
    const changed = [
      ...this.judgedBy.filter((p) => !now.has(p)),
      ...judgedBy.filter((p) => !before.has(p)),
    ];
    this.feasible = null;
    this.placedWith = policies;
    this.judgedBy = judgedBy;
    if (changed.length === 0) return;
    for (const pod of this.deps.pods.list()) {
      if (!isPlaced(pod)) continue;
      const workload = workloadOfPod(pod, this.finder);
      const nsLabels = index.namespaceLabels(pod.metadata.namespace);
      if (changed.some((p) => policyTargets(p, workload, nsLabels))) this.place(pod);
    }
  }

  private place(pod: Pod): void {
    const index = this.index;
    if (index === null) return;
    this.changingPod(index, podKey(pod), () => {
      if (!isPlaced(pod)) {
        index.removePod(podKey(pod));
        return;
      }
      try {
        index.upsertPod(placementOf(pod, this.judgedBy, this.finder, index));
      } catch (err) {
        index.removePod(podKey(pod));
        this.deps.log.warn('pod left out of the audit', { pod: podKey(pod), error: String(err) });
      }
    });
  }

  /** Runs `change` on the indexed pod `key`; feasibility is done again if it looked for that pod. */
  private changingPod(index: TopologyIndex, key: string, change: () => void): void {
    const before = index.get(key)?.pod;
    change();
    const after = index.get(key)?.pod;
    const reads = this.feasible?.reads;
    if (
      reads !== undefined &&
      ((before !== undefined && reads.couldFind(before, index)) ||
        (after !== undefined && reads.couldFind(after, index)))
    )
      this.feasible = null;
  }

  private onPod(e: WatchEvent<Pod>): void {
    const index = this.index;
    if (e.type !== 'deleted') this.place(e.object);
    else if (index !== null)
      this.changingPod(index, podKey(e.object), () => {
        index.removePod(podKey(e.object));
      });
    this.schedule();
  }

  private onNode(e: WatchEvent<Node>): void {
    const name = e.object.metadata.name;
    const labels = e.object.metadata.labels ?? {};
    const relabelled = e.type !== 'updated' || !sameLabels(e.old?.metadata.labels, labels);
    if (e.type === 'deleted') this.index?.removeNode(name);
    else if (relabelled) this.index?.setNode(name, labels);
    // Feasibility counts domains over the nodes pods may use; an update without the old
    // node may have moved anything.
    const before = e.type === 'added' ? undefined : e.type === 'deleted' ? e.object : e.old;
    const after = e.type === 'deleted' ? undefined : e.object;
    const moved =
      (e.type === 'updated' && e.old === undefined) ||
      this.feasible?.reads.domainsMoved(before && nodeFacts(before), after && nodeFacts(after)) ===
        true;
    if (moved) this.feasible = null;
    // Taints and cordons change no pod's verdict: only feasibility reads them.
    if (relabelled || moved) this.schedule();
  }

  private onNamespace(e: WatchEvent<Namespace>): void {
    const name = e.object.metadata.name;
    if (e.type === 'updated' && sameLabels(e.old?.metadata.labels, e.object.metadata.labels))
      return;
    if (e.type === 'deleted') this.index?.removeNamespace(name);
    else this.index?.setNamespace(name, e.object.metadata.labels ?? {});
    this.feasible = null; // namespace labels choose targets and providers
    // Cluster policies choose namespaces by label: the pods' policy terms may change too.
    this.replaceNamespace(name);
    this.schedule();
  }

  private onWorkload(e: WatchEvent<Workload>): void {
    const old = e.type === 'updated' ? e.old : undefined;
    if (old !== undefined && sameLabels(old.templateLabels, e.object.templateLabels)) {
      // Replicas, selector, owners and the template's own affinity change no pod's terms,
      // but feasibility; a status-only update changes neither.
      if (sameForFeasibility(old, e.object)) return;
      this.feasible = null;
      this.schedule();
      return;
    }
    this.feasible = null;
    this.replaceNamespace(e.object.namespace);
    this.schedule();
  }

  private replaceNamespace(namespace: string): void {
    for (const pod of this.deps.pods.list())
      if (pod.metadata.namespace === namespace) this.place(pod);
  }

  // ---- judging ----

  private schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.enqueue(() => this.evaluate());
    }, this.options.debounceMs ?? 500);
    this.timer.unref();
  }

  /** Runs one audit step at a time. */
  private enqueue(step: () => Promise<void>): void {
    this.running = this.running.then(step).catch((err: unknown) => {
      this.deps.log.error('audit failed', {
        error: err instanceof Error ? err.message : String(err),
      });
    });
  }

  /** Judges the whole index now (tests and the periodic check call this too). */
  async evaluate(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    const policies = this.deps.policies();
    if (policies !== this.placedWith) {
      if (this.options.fromScratch === true) this.rebuild();
      else this.adopt(policies);
    }
    const index = this.index;
    if (index === null) return;
    const report = auditIndex(index);
    this.lastReport = report;
    this.evaluations++;
    const findings = this.classify(policies, report.violations, index);
    this.recordViolations(findings);
    if (this.options.fromScratch === true || this.feasible === null)
      this.feasible = this.computeFeasibility(policies, index);
    const unsatisfiable = this.feasible.unsatisfiable;
    this.publish(policies, findings, unsatisfiable);
    await this.remediate(policies, findings);
    this.deps.metrics.auditFinished((performance.now() - started) / 1000, new Date(this.now()));
  }

  /**
   * Rebuilds the index and computes feasibility from scratch, and checks that the
   * incremental index and the kept feasibility result agree.
   */
  async fullCheck(): Promise<void> {
    const current = this.index;
    const policies = this.deps.policies();
    const judgedBy = audited(policies);
    const fresh = buildIndex(this.snapshot(), judgedBy, this.finder);
    const comparable = current !== null && policies === this.placedWith;
    if (comparable && current.describe() !== fresh.describe()) {
      this.mismatches++;
      this.deps.log.error('incremental audit index disagreed with a rebuild; using the rebuild', {
        incremental: current.size,
        rebuilt: fresh.size,
      });
    }
    const kept = this.feasible;
    const feasible = this.computeFeasibility(policies, fresh);
    if (comparable && kept !== null && !sameProblems(kept.unsatisfiable, feasible.unsatisfiable)) {
      this.mismatches++;
      this.deps.log.error('kept feasibility result disagreed with a new one; using the new one', {
        kept: Object.fromEntries(kept.unsatisfiable),
        computed: Object.fromEntries(feasible.unsatisfiable),
      });
    }
    this.index = fresh;
    this.placedWith = policies;
    this.judgedBy = judgedBy;
    this.feasible = feasible;
    await this.evaluate();
  }

  /**
   * How far each violation may travel: a policy's findings go through findingReach, the one
   * rule for that; a pod's own terms are shown on the pod and acted on by nobody.
   */
  private classify(
    policies: readonly CompiledPolicy[],
    violations: readonly Violation[],
    index: TopologyIndex,
  ): Finding[] {
    const byRef = new Map<string, CompiledPolicy>(policies.map((p) => [p.ref, p]));
    return violations.map((v): Finding => {
      const policy = v.source === 'pod' ? undefined : byRef.get(v.source);
      if (policy === undefined) return { violation: v, reach: 'show' };
      const [namespace = '', name = ''] = v.pod.split('/');
      const pod = this.deps.pods.get(v.pod);
      // A pod gone from the cache since the index saw it: judged as a bare pod of its namespace.
      const workload: WorkloadRef =
        pod === undefined
          ? { kind: 'Pod', namespace, name, templateLabels: {}, podSelector: {} }
          : workloadOfPod(pod, this.finder);
      return {
        violation: v,
        reach: findingReach(policy, workload, index.namespaceLabels(namespace)),
      };
    });
  }

  private recordViolations(findings: readonly Finding[]): void {
    const now = new Set<string>();
    for (const { violation: v, reach } of findings) {
      const key = violationKey(v);
      now.add(key);
      if (this.violating.has(key)) continue; // one Event per new violation, not one per audit
      if (reach === 'platform') {
        // Not the policy's namespace's business, nor its author's: the platform team's log only.
        this.deps.log.info(CROSS_NAMESPACE_FINDING, { policy: v.source, pod: v.pod, rule: v.rule });
        continue;
      }
      const [namespace = '', name = ''] = v.pod.split('/');
      const uid = this.deps.pods.get(v.pod)?.metadata.uid;
      this.deps.events.record(
        { kind: 'Pod', apiVersion: 'v1', namespace, name, ...(uid === undefined ? {} : { uid }) },
        'Warning',
        'PlacementViolation',
        `${v.rule} (${v.source}): ${v.message}`,
        // The audit knows when a violation is new: one that comes back after it cleared is
        // news again, however soon.
        { deduplicate: false },
      );
      this.deps.log.info('pod breaks a placement rule', {
        pod: v.pod,
        node: v.node,
        rule: v.rule,
        source: v.source,
      });
    }
    this.violating = now;
  }

  private computeFeasibility(
    policies: readonly CompiledPolicy[],
    index: TopologyIndex,
  ): Feasibility {
    this.feasibilityRuns++;
    const targets: FeasibilityTarget[] = [];
    const nsLabels = (ns: string): Labels => index.namespaceLabels(ns);
    for (const store of this.deps.workloads) {
      for (const w of store.list()) {
        if (
          w.kind === 'ReplicaSet' &&
          w.ownerReferences.some((r) => r.kind === 'Deployment' && r.controller === true)
        )
          continue;
        const ref = {
          kind: w.kind,
          namespace: w.namespace,
          name: w.name,
          templateLabels: w.templateLabels,
          podSelector: w.selector ?? { matchLabels: w.templateLabels },
        };
        // Workloads no policy targets are listed too: their pods may be what another
        // workload's affinity waits for, and they can start first.
        const targeting = policies.filter((p) => policyTargets(p, ref, nsLabels(w.namespace)));
        targets.push({
          workload: ref,
          replicas: w.replicas,
          policies: targeting,
          ownAffinity:
            w.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [],
          ownAntiAffinity:
            w.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [],
          constraints: workloadConstraints(w),
        });
      }
    }
    return feasibility(targets, index, this.deps.nodes.list().map(nodeFacts), nsLabels);
  }

  /**
   * Per-policy summaries, metrics, and a status refresh for the policies whose results changed.
   * A policy's status and placement_violations show what may be shown in its namespace; a
   * namespaced policy's findings elsewhere are counted in placement_cross_namespace_violations.
   */
  private publish(
    policies: readonly CompiledPolicy[],
    findings: readonly Finding[],
    unsatisfiable: Map<PolicyRef, string[]>,
  ): void {
    const bySource = new Map<string, Violation[]>();
    const elsewhere = new Map<string, Violation[]>();
    for (const { violation: v, reach } of findings) {
      const into = reach === 'platform' ? elsewhere : bySource;
      const list = into.get(v.source) ?? [];
      list.push(v);
      into.set(v.source, list);
    }
    const time = new Date(this.now()).toISOString();
    const next = new Map<PolicyRef, PolicyAudit>();
    const changed: PolicyRef[] = [];
    const auditOnly = this.auditOnlyCounts(policies);
    for (const p of policies) {
      const own = bySource.get(p.ref) ?? [];
      const problems = unsatisfiable.get(p.ref);
      const summary: PolicyAudit = {
        violations: own.length,
        violationSample: own.slice(0, this.options.sampleSize ?? SAMPLE_SIZE).map((v) => ({
          pod: v.pod,
          node: v.node,
          rule: v.rule,
          source: v.source,
          message: v.message,
        })),
        lastAuditTime: time,
        auditOnly: auditOnly.get(p.ref) ?? 0,
        ...(problems === undefined ? {} : { unsatisfiable: problems.slice(0, 3).join('; ') }),
      };
      const before = this.summaries.get(p.ref);
      if (before === undefined || !sameSummary(before, summary)) changed.push(p.ref);
      next.set(p.ref, summary);
      this.deps.metrics.setViolations(p.ref, countRules(own));
      if (isNamespaced(p.ref))
        this.deps.metrics.setCrossNamespaceViolations(
          p.ref,
          countRules(elsewhere.get(p.ref) ?? []),
        );
    }
    this.deps.metrics.setViolations('pod', countRules(bySource.get('pod') ?? []));
    this.summaries = next;
    if (changed.length > 0) this.deps.onChange(changed);
  }

  /** Pods of Jobs and bare Pods each policy targets: audited, never rewritten. */
  private auditOnlyCounts(policies: readonly CompiledPolicy[]): Map<PolicyRef, number> {
    const counts = new Map<PolicyRef, number>();
    const relevant = policies.filter((p) => p.kinds.has('Job') || p.kinds.has('Pod'));
    if (relevant.length === 0 || this.index === null) return counts;
    for (const pod of this.deps.pods.list()) {
      if (!isJudged(pod)) continue;
      const w = workloadOfPod(pod, this.finder);
      if (w.kind !== 'Job' && w.kind !== 'Pod') continue;
      for (const p of relevant) {
        if (policyTargets(p, w, this.index.namespaceLabels(w.namespace)))
          counts.set(p.ref, (counts.get(p.ref) ?? 0) + 1);
      }
    }
    return counts;
  }

  // ---- remediation ----

  private async remediate(
    policies: readonly CompiledPolicy[],
    findings: readonly Finding[],
  ): Promise<void> {
    const evictor = this.deps.evictor;
    if (evictor === undefined) return;
    for (const p of policies) {
      const audit = p.source.spec.audit;
      if (audit?.remediation !== 'Evict') continue;
      const max = audit.maxEvictionsPerMinute ?? 1;
      // Only pods the policy may act on (findingReach): those of workloads it targets.
      const pods = [
        ...new Set(
          findings
            .filter((f) => f.violation.source === p.ref && f.reach === 'act')
            .map((f) => f.violation.pod),
        ),
      ].sort();
      for (const key of pods) {
        const pod = this.deps.pods.get(key);
        if (pod === undefined) continue;
        const w = workloadOfPod(pod, this.finder);
        const workload = `${w.kind}/${w.namespace}/${w.name}`;
        if (!this.limiter.allows(p.ref, max, workload, this.now())) {
          this.retryBy(this.limiter.nextAllowed(p.ref, max, workload, this.now()));
          continue;
        }
        if (!this.fitsElsewhere(key, this.constraintsOf(w))) {
          this.deps.log.info('not evicting: the pod would be unschedulable anyway', {
            pod: key,
            policy: p.ref,
          });
          continue;
        }
        const dryRun = this.deps.evictionDryRun;
        const result = await evictor.evict(
          pod.metadata.namespace,
          pod.metadata.name,
          dryRun,
          pod.metadata.uid,
        );
        // A dry run evicts nothing: placement_evictions_total counts what happened.
        if (!dryRun) this.deps.metrics.evicted(result.kind);
        if (result.kind === 'evicted') this.limiter.record(p.ref, workload, this.now());
        if (result.kind === 'blocked' || (result.kind === 'failed' && result.retryable))
          this.retryBy(this.now() + (this.options.evictionRetryMs ?? 30_000));
        this.deps.log.info(dryRun ? 'would evict (dry run)' : 'evicted violating pod', {
          pod: key,
          policy: p.ref,
          result: result.kind,
          ...(result.kind === 'blocked' || result.kind === 'failed'
            ? { reason: result.message }
            : {}),
        });
      }
    }
  }

  /** Judges again at `at` (ms) at the latest: the pods still in breach then get their turn. */
  private retryBy(at: number): void {
    if (this.stopped || at >= this.retryAt) return;
    clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.retryAt = Infinity;
        this.schedule();
      },
      Math.max(0, at - this.now()),
    );
    this.retryTimer.unref();
  }

  /**
   * Where the workload's pods may go at all (its template's nodeSelector, node affinity and
   * tolerations); a bare pod or a workload not in the caches: anywhere.
   */
  private constraintsOf(w: WorkloadRef): PodConstraints {
    for (const store of this.deps.workloads) {
      const found = store.get(workloadKey(w));
      if (found !== undefined) return workloadConstraints(found);
    }
    return {};
  }

  /**
   * Whether the pod, taken off its node, could be placed on some other node that its
   * constraints admit, without a violation.
   */
  private fitsElsewhere(key: string, constraints: PodConstraints): boolean {
    const index = this.index;
    const entry = index?.get(key);
    if (index === null || entry === undefined) return false;
    const original = entry.pod;
    index.removePod(key);
    try {
      let tried = 0;
      for (const node of this.deps.nodes.list()) {
        const name = node.metadata.name;
        if (name === original.nodeName || !nodeAdmits(nodeFacts(node), constraints)) continue;
        if (++tried > PROBE_NODES) break;
        const probe = { ...original, key: `${key}#probe`, nodeName: name };
        index.upsertPod(probe);
        const probeEntry = index.get(probe.key);
        const verdict = probeEntry === undefined ? undefined : judgePod(index, probeEntry);
        index.removePod(probe.key);
        if (verdict?.kind === 'ok') return true;
      }
      return false;
    } finally {
      index.upsertPod(original);
    }
  }
}

/** Where a workload's pods may go at all, from its pod template. */
function workloadConstraints(w: Workload): PodConstraints {
  return {
    ...(w.nodeSelector === undefined ? {} : { nodeSelector: w.nodeSelector }),
    ...(w.affinity?.nodeAffinity === undefined ? {} : { nodeAffinity: w.affinity.nodeAffinity }),
    ...(w.tolerations === undefined ? {} : { tolerations: w.tolerations }),
  };
}

const isNamespaced = (ref: PolicyRef): ref is `PlacementPolicy/${string}/${string}` =>
  ref.startsWith('PlacementPolicy/');

function sameLabels(a: Labels | undefined, b: Labels | undefined): boolean {
  return (
    JSON.stringify(Object.entries(a ?? {}).sort()) ===
    JSON.stringify(Object.entries(b ?? {}).sort())
  );
}

/** Whether a workload update leaves everything feasibility reads of it as it was. */
function sameForFeasibility(a: Workload, b: Workload): boolean {
  return (
    a.replicas === b.replicas &&
    sameLabels(a.templateLabels, b.templateLabels) &&
    JSON.stringify(a.selector) === JSON.stringify(b.selector) &&
    JSON.stringify(a.ownerReferences) === JSON.stringify(b.ownerReferences) &&
    JSON.stringify(a.affinity) === JSON.stringify(b.affinity) &&
    JSON.stringify(a.nodeSelector) === JSON.stringify(b.nodeSelector) &&
    JSON.stringify(a.tolerations) === JSON.stringify(b.tolerations)
  );
}

function sameProblems(a: ReadonlyMap<string, string[]>, b: ReadonlyMap<string, string[]>): boolean {
  return JSON.stringify([...a]) === JSON.stringify([...b]);
}

function sameSummary(a: PolicyAudit, b: PolicyAudit): boolean {
  return (
    a.violations === b.violations &&
    a.auditOnly === b.auditOnly &&
    a.unsatisfiable === b.unsatisfiable &&
    JSON.stringify(a.violationSample) === JSON.stringify(b.violationSample)
  );
}

function countRules(violations: readonly Violation[]): Partial<Record<Violation['rule'], number>> {
  const out: Partial<Record<Violation['rule'], number>> = {};
  for (const v of violations) out[v.rule] = (out[v.rule] ?? 0) + 1;
  return out;
}
