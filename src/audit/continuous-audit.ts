/**
 * The continuous audit's life cycle: start and stop, a pass scheduled after each burst of
 * changes (one at a time), the pass itself (evaluate) and the periodic full check.
 *
 * Long because those four share one state (the timers, the queue of passes, the summaries
 * last published) and one order of steps per pass: judge, publish, remediate. The index is
 * live-index.ts, what is published findings.ts, and eviction remediation.ts.
 */
import type { PolicyRef } from '../api/policy.ts';
import {
  auditIndexSteps,
  IncrementalAudit,
  IncrementalNodeSpread,
  judgeNodeAndSpreadSteps,
  KeptReport,
  ViolationsByPod,
  nodePolicyReach,
  podKey,
  sameNodeSpread,
  SpreadPodCache,
  withNodeAndSpread,
  type AuditReport,
  type CompiledPolicy,
  type Feasibility,
  type NodeSpreadAudit,
  type NodeSpreadChanges,
  type NodeSpreadInput,
  type TopologyIndex,
  type Violation,
} from '../engine/index.ts';
import type { Labels, Node, Pod } from '../api/core.ts';
import type { PlacementMetrics } from '../metrics/index.ts';
import {
  audited,
  auditOnlyCounts,
  classifier,
  publish,
  SAMPLE_SIZE,
  tallyOf,
  violationEvent,
  CROSS_NAMESPACE_FINDING,
  type Finding,
  type FindingTally,
  type PolicyAudit,
} from './findings.ts';
import { KeptAuditOnly, KeptFindings, type PodViolations } from './kept-findings.ts';
import { ChangedObjects } from './changed-objects.ts';
import { LiveIndex, newAuditStats, type AuditStats, type LiveIndexDeps } from './live-index.ts';
import type { ChangeSource, PodEvictor } from './ports.ts';
import { Remediation, type RemediationOptions } from './remediation.ts';
import type { ReportSync } from './report-sync.ts';
import { errorMessage } from '../util/errors.ts';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.ts';
import { runSliced } from '../util/steps.ts';
import { sameJson } from '../util/json.ts';
import type { EventRecorder } from '../api/cluster.ts';

export { CROSS_NAMESPACE_FINDING, type PolicyAudit } from './findings.ts';
export type { AuditStats } from './live-index.ts';

export interface ContinuousAuditDeps extends LiveIndexDeps {
  /** Tell of policy changes, so that a new or edited policy is judged without other changes. */
  readonly policyChanges?: readonly ChangeSource[];
  readonly events: EventRecorder;
  readonly metrics: PlacementMetrics;
  readonly evictor?: PodEvictor;
  readonly evictionDryRun: boolean;
  /** Told which policies' audit results changed, so their status is refreshed. */
  readonly onChange: (refs: readonly PolicyRef[]) => void;
  /** Where the findings also go as report objects (OpenReports, PolicyReports), where served. */
  readonly reports?: readonly ReportSync[];
  readonly now?: () => number;
  /** Times the quiet time between passes. Default: the process clock. */
  readonly clock?: Clock;
}

export interface ContinuousAuditOptions extends RemediationOptions {
  /**
   * A pass starts at most once per this time: a change heard longer than this after the last
   * pass started is judged at once, later ones together when the time is up. Default 500 ms.
   */
  readonly debounceMs?: number;
  /** A rebuild from scratch checks the incremental index this often. */
  readonly fullCheckMs: number;
  /** Violating pods listed in a policy's status. */
  readonly sampleSize?: number;
  /**
   * Keep nothing between passes: feasibility is computed anew on every pass, and new
   * policies rebuild the index. What passes cost before they reused work; benchmarks
   * compare against it.
   */
  readonly fromScratch?: boolean;
  /**
   * The long steps of a pass (building the index, judging every pod, feasibility: a
   * scheduling model run over every workload) run in slices of about this long, between which
   * timers and I/O run: the leader Lease is renewed on the same event loop. Default 50 ms.
   */
  readonly sliceMs?: number;
}

/**
 * The continuous audit: an index of every placed pod kept current from the informers
 * (live-index.ts), judged after each burst of changes, rebuilt from scratch now and then to
 * prove the incremental state right. Reports go to policy status, Events and metrics
 * (findings.ts); policies that ask for it get their violating pods evicted, within limits
 * (remediation.ts).
 */
export class ContinuousAudit {
  private readonly deps: ContinuousAuditDeps;
  private readonly options: ContinuousAuditOptions;
  private readonly live: LiveIndex;
  private readonly remediation: Remediation;
  private summaries = new Map<PolicyRef, PolicyAudit>();
  private problems = new Set<string>();
  /** The last feasibility result published: status shows it until a new one is computed. */
  private unsatisfiable: ReadonlyMap<PolicyRef, string[]> = new Map();
  /**
   * Pods' compiled spread rules, kept between passes (a changed pod is a new object), with
   * the key strings the index keeps.
   */
  private readonly spreadPods = new SpreadPodCache((pod) => this.indexedKey(pod));
  private lastReport: AuditReport | null = null;
  /** Verdicts kept between passes: a pass judges only the pods a change can affect. */
  private readonly verdicts = new IncrementalAudit();
  /** Node-rule and spread findings kept between passes, likewise. */
  private readonly nodeSpreadKept = new IncrementalNodeSpread(this.spreadPods);
  /** The two kept, merged pod by pod. */
  private readonly merged = new KeptReport();
  /** Its findings, classified and counted, likewise. */
  private readonly findingsKept = new KeptFindings();
  /** The audit-only pods each policy targets, likewise. */
  private readonly auditOnlyKept = new KeptAuditOnly();
  /** What changed since the last pass: the kept node and spread findings look at that only. */
  private readonly changed = new ChangedObjects();
  private timer: TimerHandle | undefined;
  /** When the last pass was started by the timer (clock ms). */
  private lastStarted = -Infinity;
  /**
   * Changes heard while a pass judges the index in slices, applied once it has judged (null:
   * none held), and whether one was a workload's (placements read workloads as they are).
   */
  private held: { apply: (() => boolean)[]; workloads: boolean } | null = null;
  private fullTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private running: Promise<void> = Promise.resolve();
  /**
   * Feasibility, computed after the passes one at a time beside the queue of passes: a pass
   * publishes its verdicts without waiting for the previous pass's feasibility.
   */
  private settling: Promise<void> = Promise.resolve();
  /** A feasibility step is queued and not started: it serves every pass until it starts. */
  private settlePending = false;
  /** Publishes feasibility problems with the findings of the last pass. */
  private showLatest: ((unsatisfiable: ReadonlyMap<PolicyRef, string[]>) => void) | null = null;
  private stopped = false;
  /** The next pass also judges the node and spread rules from scratch and compares. */
  private checkNodeSpread = false;
  /** How often the audit did its work. */
  readonly stats: AuditStats = newAuditStats();

  /** The pod's key as the index keeps it (a new string when the index does not hold the pod). */
  private indexedKey(pod: Pod): string {
    const key = podKey(pod);
    return this.live.index?.get(key)?.pod.key ?? key;
  }

  constructor(deps: ContinuousAuditDeps, options: ContinuousAuditOptions) {
    this.deps = deps;
    this.options = options;
    this.live = new LiveIndex(deps, this.stats);
    this.remediation = new Remediation({ ...deps, now: () => this.now() }, options, () => {
      this.schedule();
    });
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private get clock(): Clock {
    return this.deps.clock ?? systemClock;
  }

  private get sliceMs(): number {
    return this.options.sliceMs ?? SLICE_MS;
  }

  /**
   * Subscribes to changes and judges once after the quiet time; the first pass builds the
   * index from the (synced) caches.
   */
  start(): void {
    const { deps, live } = this;
    const heard =
      <E>(apply: (e: E) => boolean, workload = false) =>
      (e: E): void => {
        const held = this.held;
        if (held === null) {
          if (apply(e)) this.schedule();
          return;
        }
        held.apply.push(() => apply(e));
        held.workloads ||= workload;
      };
    this.unsubscribe.push(
      deps.pods.addHandler(heard((e) => live.onPod(e))),
      deps.nodes.addHandler(heard((e) => live.onNode(e))),
      deps.namespaces.addHandler(heard((e) => live.onNamespace(e))),
      ...deps.workloads.map((s) => s.addHandler(heard((e) => live.onWorkload(e), true))),
      ...this.changed.listen(deps),
      // Status writes tell too; only a new policy array (evaluate() rebuilds for it) counts.
      // Whoever keeps that array may hear of the change after this handler: look once done.
      ...(deps.policyChanges ?? []).map((s) =>
        s.addHandler(() => {
          setImmediate(() => {
            if (this.deps.policies() !== live.policies) this.schedule();
          });
        }),
      ),
    );
    this.fullTimer = setInterval(() => {
      this.enqueue(() => this.fullCheck());
    }, this.options.fullCheckMs);
    this.fullTimer.unref();
    this.lastStarted = this.clock.now();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    clearInterval(this.fullTimer);
    this.remediation.stop();
    for (const u of this.unsubscribe) u();
    await this.running;
    await this.settling;
  }

  /** Pods the last pass judged (every pod, `fromScratch`). */
  get judgedLastPass(): number {
    return this.options.fromScratch === true
      ? (this.lastReport?.summary.pods ?? 0)
      : this.verdicts.lastJudged;
  }

  /** What the last evaluation found for a policy. */
  summary(ref: string): PolicyAudit | undefined {
    return this.summaries.get(ref as PolicyRef);
  }

  get report(): AuditReport | null {
    return this.lastReport;
  }

  // ---- judging ----

  private schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    const quiet = this.options.debounceMs ?? 500;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.lastStarted = this.clock.now();
        this.enqueue(() => this.pass());
      },
      Math.max(0, this.lastStarted + quiet - this.clock.now()),
    );
    if (typeof this.timer === 'object') this.timer.unref();
  }

  /** Holds back the changes heard from now on (the index stays as it is) until release(). */
  private hold(): void {
    this.held ??= { apply: [], workloads: false };
  }

  /** Applies the changes held back, and schedules a pass if one calls for it. */
  private release(): void {
    const held = this.held;
    this.held = null;
    let changed = false;
    for (const apply of held?.apply ?? []) changed = apply() || changed;
    if (changed) this.schedule();
  }

  /** Runs one audit step at a time. */
  private enqueue(step: () => Promise<void>): void {
    this.running = this.running.then(step).catch((err: unknown) => {
      this.deps.log.error('audit failed', {
        error: errorMessage(err),
      });
    });
  }

  /** Judges the whole index now and computes feasibility (tests and the full check call this). */
  async evaluate(): Promise<void> {
    await this.pass();
    await this.settling;
  }

  /** A pass: judges and publishes, and queues feasibility after it. */
  private async pass(): Promise<void> {
    if (this.stopped) return;
    // Changes heard while the index is built and judged in slices wait until the verdicts
    // are published: every step reads one state, and the next pass judges what they changed.
    this.hold();
    try {
      await this.judgeAndPublish();
    } finally {
      this.release();
    }
  }

  private async judgeAndPublish(): Promise<void> {
    const started = performance.now();
    const { live, sliceMs } = this;
    const policies = this.deps.policies();
    if (live.index === null || (policies !== live.policies && this.options.fromScratch === true))
      await live.rebuild(policies, sliceMs);
    else if (policies !== live.policies) live.adopt(policies);
    const index = live.index;
    if (index === null) return;
    const judged = audited(policies);
    const { deps } = this;
    let nodes: readonly Node[] | undefined;
    let pods: readonly Pod[] | undefined;
    // Listed only when read: a pass told what changed reads neither list.
    const nodeSpreadInput: NodeSpreadInput = {
      get nodes() {
        return (nodes ??= deps.nodes.list());
      },
      get pods() {
        return (pods ??= deps.pods.list());
      },
      policiesOf: nodePolicyReach(judged, (pod) => live.workloadOf(pod), index),
      compiled: this.spreadPods,
    };
    const changes = this.changed.take(policies, deps);
    let nodeSpread = await runSliced(
      this.options.fromScratch === true
        ? judgeNodeAndSpreadSteps(nodeSpreadInput)
        : this.nodeSpreadKept.passSteps(nodeSpreadInput, changes),
      sliceMs,
    );
    const checking = this.checkNodeSpread;
    if (this.checkNodeSpread) {
      this.checkNodeSpread = false;
      const rebuilt = await runSliced(judgeNodeAndSpreadSteps(nodeSpreadInput), sliceMs);
      const kept = sameNodeSpread(nodeSpread, rebuilt);
      if (kept !== null) {
        this.stats.mismatches++;
        this.deps.log.error(
          'node and spread findings kept between passes disagreed with a rebuild; using the rebuild',
          { pod: kept },
        );
        this.nodeSpreadKept.reset();
        nodeSpread = rebuilt;
      }
    }
    this.tellProblems(nodeSpread.problems.map((e) => e.message));
    let report: AuditReport;
    let byPod: PodViolations;
    let changed: ReadonlySet<string> | null = null;
    let interPod: AuditReport | undefined;
    if (this.options.fromScratch === true) {
      report = withNodeAndSpread(await runSliced(auditIndexSteps(index), sliceMs), nodeSpread);
      const book = new ViolationsByPod();
      book.setAll(report.violations);
      byPod = { pods: book.pods(), violationsOf: (pod) => book.get(pod) };
    } else {
      interPod = await runSliced(this.verdicts.passSteps(index), sliceMs);
      ({ report, changed } = this.merged.pass(
        interPod,
        this.verdicts.takeChanged(),
        nodeSpread,
        this.nodeSpreadKept.takeChanged(),
      ));
      byPod = this.merged;
    }
    const nsLabels = (ns: string) => index.namespaceLabels(ns);
    const classify = classifier(policies, (key) => live.workloadOfKey(key), nsLabels);
    const fresh = this.findingsKept.update(
      byPod,
      changes === undefined
        ? { changed: null, pods: [], namespaces: 'all' }
        : { changed, pods: changes.pods, namespaces: changes.namespaces },
      classify,
    );
    if (checking && interPod !== undefined)
      report = this.checkMerged(policies, interPod, nodeSpread, report, classify);
    this.lastReport = report;
    this.stats.evaluations++;
    this.tell(fresh);
    let listed: readonly Finding[] | undefined;
    const findings = (): readonly Finding[] => (listed ??= this.findingsKept.all());
    const show = this.shower(
      policies,
      this.findingsKept,
      nsLabels,
      this.options.fromScratch === true ? undefined : changes,
      checking,
    );
    // Violations first: status and metrics do not wait for the feasibility computation.
    show(this.unsatisfiable);
    this.release();
    // After status and metrics, so that slow report writes delay neither.
    for (const r of this.deps.reports ?? [])
      await r.publish({
        findings: findings(),
        policies,
        podUid: (key) => this.deps.pods.get(key)?.metadata.uid,
      });
    await this.remediation.remediate(
      policies,
      findings,
      index,
      (p) => live.workloadOf(p),
      nodeSpread.accepts,
    );
    this.showLatest = show;
    if (this.settlePending) return;
    this.settlePending = true;
    this.settling = this.settling
      .then(async () => {
        this.settlePending = false;
        if (this.stopped) return;
        const feasible = await live.feasibility(this.options.fromScratch === true, sliceMs);
        // Null: something it read changed while it was computed; the next pass computes again.
        if (feasible === null) this.schedule();
        else if (!sameProblems(feasible.unsatisfiable, this.unsatisfiable)) {
          this.unsatisfiable = feasible.unsatisfiable;
          this.showLatest?.(this.unsatisfiable);
        }
        this.deps.metrics.auditFinished((performance.now() - started) / 1000, new Date(this.now()));
      })
      .catch((err: unknown) => {
        this.deps.log.error('audit failed', { error: errorMessage(err) });
      });
  }

  /**
   * After a full check: the merged report and the findings kept between passes against ones
   * made from scratch of the same two parts; the report to use (the rebuilt one if they differ).
   */
  private checkMerged(
    policies: readonly CompiledPolicy[],
    interPod: AuditReport,
    nodeSpread: NodeSpreadAudit,
    report: AuditReport,
    classify: (v: Violation) => Finding,
  ): AuditReport {
    const rebuilt = withNodeAndSpread(interPod, nodeSpread);
    const findings = rebuilt.violations.map(classify);
    const tally = tallyOf(findings);
    const kept = this.findingsKept;
    const sources = [...policies.map((p) => p.ref), 'pod'];
    const differs =
      sameVerdicts(report, rebuilt) ??
      (!sameJson(kept.all(), findings) ||
      sources.some(
        (s) =>
          !sameJson(
            [kept.own(s, SAMPLE_SIZE), kept.elsewhere(s)],
            [tally.own(s, SAMPLE_SIZE), tally.elsewhere(s)],
          ),
      )
        ? '(findings)'
        : null);
    if (differs === null) return report;
    this.stats.mismatches++;
    this.deps.log.error(
      'report or findings kept between passes disagreed with a rebuild; using the rebuild',
      { pod: differs },
    );
    const repaired = this.merged.pass(interPod, null, nodeSpread, null).report;
    kept.update(this.merged, { changed: null, pods: [], namespaces: 'all' }, classify);
    return repaired;
  }

  /** Publishes a pass's findings, with the feasibility problems given, to status and metrics. */
  private shower(
    policies: readonly CompiledPolicy[],
    findings: FindingTally,
    nsLabels: (ns: string) => Labels,
    changes: NodeSpreadChanges | undefined,
    /** The pass after a full check: the kept counts are compared with a recount. */
    checking: boolean,
  ): (unsatisfiable: ReadonlyMap<PolicyRef, string[]>) => void {
    const { live } = this;
    const podsNow = {
      list: () => this.deps.pods.list(),
      get: (key: string) => this.deps.pods.get(key),
    };
    const workloadOf = (p: Pod) => live.workloadOf(p);
    let auditOnly = this.auditOnlyKept.update(policies, changes, podsNow, workloadOf, nsLabels);
    if (checking) {
      const counted = auditOnlyCounts(policies, podsNow.list, workloadOf, nsLabels);
      const same =
        counted.size === auditOnly.size &&
        [...counted].every(([ref, n]) => auditOnly.get(ref) === n);
      if (!same) {
        this.stats.mismatches++;
        this.deps.log.error(
          'audit-only counts kept between passes disagreed with a recount; using the recount',
          { kept: Object.fromEntries(auditOnly), counted: Object.fromEntries(counted) },
        );
        auditOnly = this.auditOnlyKept.update(policies, undefined, podsNow, workloadOf, nsLabels);
      }
    }
    const time = new Date(this.now()).toISOString();
    return (unsatisfiable) => {
      const published = publish({
        policies,
        findings,
        unsatisfiable,
        auditOnly,
        before: this.summaries,
        time,
        sampleSize: this.options.sampleSize ?? SAMPLE_SIZE,
      });
      for (const [ref, counts] of published.violations)
        this.deps.metrics.setViolations(ref, counts);
      for (const [ref, counts] of published.crossNamespace)
        this.deps.metrics.setCrossNamespaceViolations(ref, counts);
      this.summaries = published.summaries;
      if (published.changed.length > 0) this.deps.onChange(published.changed);
    };
  }

  /** One line per pod whose rules cannot be read, when it is first seen so. */
  private tellProblems(problems: readonly string[]): void {
    const now = new Set(problems);
    for (const p of now) {
      if (!this.problems.has(p))
        this.deps.log.warn('pod judged without its unreadable rules', { problem: p });
    }
    this.problems = now;
  }

  /** One Event (and a log line) per new violation; the platform's log for those of reach 'platform'. */
  private tell(fresh: readonly Finding[]): void {
    for (const { violation: v, reach } of fresh) {
      if (reach === 'platform') {
        this.deps.log.info(CROSS_NAMESPACE_FINDING, { policy: v.source, pod: v.pod, rule: v.rule });
        continue;
      }
      const event = violationEvent(v, this.deps.pods.get(v.pod)?.metadata.uid);
      // The audit knows when a violation is new: no deduplication by the recorder.
      this.deps.events.record(event.target, 'Warning', event.reason, event.message, {
        deduplicate: false,
      });
      this.deps.log.info('pod breaks a placement rule', {
        pod: v.pod,
        node: v.node,
        rule: v.rule,
        source: v.source,
      });
    }
  }

  /**
   * Rebuilds the index and computes feasibility from scratch, and checks that the
   * incremental index, the verdicts kept between passes and the kept feasibility result agree.
   */
  async fullCheck(): Promise<void> {
    const { live, sliceMs } = this;
    await this.settling; // one feasibility computation at a time
    const current = live.index;
    const policies = this.deps.policies();
    // Built and judged in slices, the index held still; changes heard meanwhile go to the
    // new index once it is installed.
    this.hold();
    let comparable: boolean;
    let kept: Feasibility | null;
    try {
      const fresh = await runSliced(live.buildSteps(policies), sliceMs);
      const rebuilt = await runSliced(auditIndexSteps(fresh), sliceMs);
      // A workload changed meanwhile placed the pods built after it by its new form.
      comparable = current !== null && policies === live.policies && this.held?.workloads !== true;
      kept = this.installRebuilt(current, fresh, rebuilt, policies, comparable);
    } finally {
      this.release();
    }
    for (const r of this.deps.reports ?? []) r.resync();
    const feasible = await live.computeFeasibility(policies, sliceMs);
    if (
      comparable &&
      kept !== null &&
      feasible !== null &&
      !sameProblems(kept.unsatisfiable, feasible.unsatisfiable)
    ) {
      this.stats.mismatches++;
      this.deps.log.error('kept feasibility result disagreed with a new one; using the new one', {
        kept: Object.fromEntries(kept.unsatisfiable),
        computed: Object.fromEntries(feasible.unsatisfiable),
      });
    }
    await this.evaluate();
    this.deps.log.debug('audit full check done', { mismatches: this.stats.mismatches });
  }

  /**
   * Compares the incremental index and the verdicts kept between passes with a rebuild
   * (`fresh`, judged as `rebuilt`) when `comparable`, installs the rebuild, and returns the
   * feasibility result kept until then.
   */
  private installRebuilt(
    current: TopologyIndex | null,
    fresh: TopologyIndex,
    rebuilt: AuditReport,
    policies: readonly CompiledPolicy[],
    comparable: boolean,
  ): Feasibility | null {
    const { live } = this;
    if (comparable && current !== null && current.describe() !== fresh.describe()) {
      this.stats.mismatches++;
      this.deps.log.error('incremental audit index disagreed with a rebuild; using the rebuild', {
        incremental: current.size,
        rebuilt: fresh.size,
      });
    }
    let agreed = false;
    if (comparable && current !== null && this.options.fromScratch !== true) {
      const kept = sameVerdicts(this.verdicts.pass(current), rebuilt);
      agreed = kept === null;
      if (kept !== null) {
        this.stats.mismatches++;
        this.deps.log.error(
          'verdicts kept between passes disagreed with a rebuild; using the rebuild',
          {
            pod: kept,
          },
        );
      }
    }
    // Agreed: what was told of the verdicts stays true, and the next pass's merged report
    // and findings are still kept ones, which it compares with ones made from scratch.
    if (this.options.fromScratch !== true) this.verdicts.restart(fresh, rebuilt, agreed);
    this.checkNodeSpread = comparable && this.options.fromScratch !== true;
    const kept = live.kept;
    // Installed first: changes heard from now on (and those held) go to the new index.
    live.install(fresh, policies, null);
    return kept;
  }
}

const SLICE_MS = 50;

/** Null when two reports give every pod the same verdict, else the first pod they differ on. */
function sameVerdicts(a: AuditReport, b: AuditReport): string | null {
  const n = Math.max(a.violations.length, b.violations.length);
  for (let i = 0; i < n; i++) {
    const x = a.violations[i];
    const y = b.violations[i];
    if (!sameJson(x, y)) return x?.pod ?? y?.pod ?? '';
  }
  for (const [key, score] of b.preferred) if (!sameJson(a.preferred.get(key), score)) return key;
  if (a.preferred.size !== b.preferred.size)
    return [...a.preferred.keys()].find((k) => !b.preferred.has(k)) ?? '';
  return a.summary.pods === b.summary.pods ? null : '(judged pods)';
}

function sameProblems(a: ReadonlyMap<string, string[]>, b: ReadonlyMap<string, string[]>): boolean {
  return sameJson([...a], [...b]);
}
