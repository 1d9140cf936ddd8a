import { InterPodAffected, type AffectedPods } from './affected-pods.ts';
import { auditIndex, auditIndexSteps, type AuditReport } from './judge-cluster.ts';
import type { PodVerdict, PreferredScore } from './placement.ts';
import type { IndexChange, IndexedPod, TopologyIndex } from './topology-index.ts';
import { judgePod } from './verdict.ts';
import { ViolationsByPod, type ChangedPods } from './violations-by-pod.ts';
import type { Steps } from '../util/steps.ts';

/**
 * auditIndex kept current: the verdict of every pod from the last pass, and after a change
 * only the pods whose verdict it can alter judged again. The index tells of each change as
 * it makes it (TopologyIndex.observe); each kind of rule names the pods that change affects
 * (AffectedPods), and every pod taken out or put back is judged again. A pass on another
 * index object (a rebuild) judges every pod.
 */
export class IncrementalAudit {
  private readonly kinds: readonly AffectedPods[];
  private readonly judge: (index: TopologyIndex, entry: IndexedPod) => PodVerdict;
  private index: TopologyIndex | null = null;
  /** Keys of the pods to judge again at the next pass. */
  private readonly dirty = new Set<string>();
  private readonly violations = new ViolationsByPod();
  /** Pods judged since the last takeChanged; null: any pod (a restart). */
  private judgedSince: Set<string> | null = null;
  private readonly preferred = new Map<string, PreferredScore>();
  /** Indexed pods that are not terminating: the pods a pass judges. */
  private judged = 0;
  private report: AuditReport | null = null;
  /** Pods the last pass judged. */
  lastJudged = 0;
  private readonly affect = (podKey: string): void => {
    this.dirty.add(podKey);
  };

  constructor(
    kinds: readonly AffectedPods[] = [new InterPodAffected()],
    judge: (index: TopologyIndex, entry: IndexedPod) => PodVerdict = judgePod,
  ) {
    this.kinds = kinds;
    this.judge = judge;
  }

  /**
   * What auditIndex(index) would report now. Its `preferred` is this audit's own map, as of
   * the latest pass (copying tens of thousands of scores would cost more than the pass).
   */
  pass(index: TopologyIndex): AuditReport {
    if (index !== this.index || this.report === null) return this.restart(index);
    let violationsMoved = false;
    let preferredMoved = false;
    for (const key of this.dirty) {
      const had = this.violations.get(key);
      this.judgedSince?.add(key);
      const hadScore = this.preferred.get(key);
      const entry = index.get(key);
      const verdict =
        entry === undefined || entry.pod.terminating === true
          ? undefined
          : this.judge(index, entry);
      const now = verdict?.kind === 'violated' ? verdict.violations : undefined;
      const score =
        verdict !== undefined && verdict.preferred.totalWeight > 0 ? verdict.preferred : undefined;
      this.violations.set(key, now ?? []);
      if (score === undefined) this.preferred.delete(key);
      else this.preferred.set(key, score);
      violationsMoved ||= had.length > 0 || now !== undefined;
      preferredMoved ||= !sameScore(hadScore, score);
    }
    this.lastJudged = this.dirty.size;
    this.dirty.clear();
    const before = this.report;
    const same = before.summary.nodes === index.size.nodes && before.summary.pods === this.judged;
    if (same && !violationsMoved && !preferredMoved) return before;
    this.report = this.violations.report(this.preferred, {
      pods: this.judged,
      nodes: index.size.nodes,
    });
    return this.report;
  }

  /**
   * pass(index), yielding every so many pods when it judges every pod (a new index). The
   * index must not change until it is done.
   */
  *passSteps(index: TopologyIndex): Steps<AuditReport> {
    if (index === this.index && this.report !== null) return this.pass(index);
    return this.restart(index, yield* auditIndexSteps(index));
  }

  /**
   * Takes `index` as it is, with `report` as what auditIndex(index) reports (computed here
   * when not given), and follows its changes from now on. `agreed`: the report gives every
   * pod the verdict this audit had (a full check found no difference), so the pods judged
   * since the last takeChanged are still all that changed.
   */
  restart(
    index: TopologyIndex,
    report: AuditReport = auditIndex(index),
    agreed = false,
  ): AuditReport {
    this.index?.observe(null);
    this.index = index;
    this.dirty.clear();
    this.violations.clear();
    this.preferred.clear();
    if (!agreed) this.judgedSince = null;
    this.violations.setAll(report.violations);
    for (const [key, score] of report.preferred) this.preferred.set(key, score);
    this.judged = report.summary.pods;
    for (const kind of this.kinds) kind.reset(index);
    index.observe((change) => {
      this.changed(change, index);
    });
    this.report = report;
    this.lastJudged = report.summary.pods;
    return report;
  }

  private changed(change: IndexChange, index: TopologyIndex): void {
    if (change.kind === 'pod') {
      this.dirty.add(change.entry.pod.key);
      if (change.entry.pod.terminating !== true) this.judged += change.delta;
    }
    for (const kind of this.kinds) kind.changed(change, index, this.affect);
  }

  /** The pods judged since the last call, with their violations now; null: any may differ. */
  takeChanged(): ChangedPods | null {
    const pods = this.judgedSince;
    this.judgedSince = new Set();
    return pods === null ? null : { pods, violationsOf: (pod) => this.violations.get(pod) };
  }
}

function sameScore(a: PreferredScore | undefined, b: PreferredScore | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.score === b.score &&
    a.satisfiedWeight === b.satisfiedWeight &&
    a.totalWeight === b.totalWeight
  );
}
