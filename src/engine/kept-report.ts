import { withScore, type AuditReport } from './judge-cluster.ts';
import type { NodeSpreadAudit } from './judge-node-spread.ts';
import type { PreferredScore, Violation } from './placement.ts';
import { ViolationsByPod, type ChangedPods } from './violations-by-pod.ts';

/**
 * withNodeAndSpread kept between passes: the inter-pod report and the node and spread
 * findings merged pod by pod, and after a pass only the pods that either side judged again
 * merged anew (a pass no longer sorts every violation or copies every score).
 */
export class KeptReport {
  private readonly violations = new ViolationsByPod();
  private readonly preferred = new Map<string, PreferredScore>();

  /**
   * What withNodeAndSpread(interPod, nodeSpread) reports now (read it before the next
   * pass), and the pods whose violations or score may differ from the last pass's (null:
   * any). Each side's changes are what its takeChanged gave; null: anywhere.
   */
  pass(
    interPod: AuditReport,
    interPodChanged: ChangedPods | null,
    nodeSpread: NodeSpreadAudit,
    nodeSpreadChanged: ChangedPods | null,
  ): { readonly report: AuditReport; readonly changed: ReadonlySet<string> | null } {
    let changed: ReadonlySet<string> | null = null;
    if (interPodChanged === null || nodeSpreadChanged === null) {
      this.violations.setAll([...interPod.violations, ...nodeSpread.violations]);
      this.preferred.clear();
      for (const [key, s] of interPod.preferred) this.preferred.set(key, s);
      for (const [key, s] of nodeSpread.preferred)
        this.preferred.set(key, withScore(this.preferred.get(key), s));
    } else {
      changed = new Set([...interPodChanged.pods, ...nodeSpreadChanged.pods]);
      for (const key of changed) {
        this.violations.set(key, [
          ...interPodChanged.violationsOf(key),
          ...nodeSpreadChanged.violationsOf(key),
        ]);
        const s = nodeSpread.preferred.get(key);
        const had = interPod.preferred.get(key);
        const score = s === undefined ? had : withScore(had, s);
        if (score === undefined) this.preferred.delete(key);
        else this.preferred.set(key, score);
      }
    }
    const { pods, nodes } = interPod.summary;
    return { report: this.violations.report(this.preferred, { pods, nodes }), changed };
  }

  /** A pod's violations as of the last pass, sorted. */
  readonly violationsOf = (pod: string): readonly Violation[] => this.violations.get(pod);

  /** The pods with violations as of the last pass, in report order. */
  get pods(): readonly string[] {
    return this.violations.pods();
  }
}
