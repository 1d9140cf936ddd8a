// Property of the report kept between passes (KeptReport): after any sequence of changes to
// the inter-pod verdicts and the node and spread findings of a few pods, each side told of
// the pods it judged again (or of nothing: "any pod may differ"), the merged report is what
// withNodeAndSpread makes of the two from scratch: the same violations in the same order,
// the same scores, the same summary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Rule } from '../../../src/api/rules.ts';
import {
  compareViolations,
  KeptReport,
  ViolationsByPod,
  withNodeAndSpread,
  type AuditReport,
  type ChangedPods,
  type NodeSpreadAudit,
  type PreferredScore,
  type Violation,
} from '../../../src/engine/index.ts';

const PODS = ['ns-a/p0', 'ns-a/p1', 'ns-a/p10', 'ns-b/p0', 'ns-b/p2', 'ns-c/x'] as const;
const INTER_POD: readonly Rule[] = ['podAffinity', 'podAntiAffinity', 'symmetricAntiAffinity'];
const NODE_SPREAD: readonly Rule[] = ['nodeAffinity', 'nodeSelector', 'topologySpread'];

const violationsArb = (pod: string, rules: readonly Rule[]): fc.Arbitrary<Violation[]> =>
  fc
    .array(
      fc.record({
        rule: fc.constantFrom(...rules),
        source: fc.constantFrom('pod', 'ClusterPlacementPolicy/a', 'PlacementPolicy/ns-a/b'),
        term: fc.nat(2),
        message: fc.constantFrom('x', 'y'),
      }),
      { maxLength: 3 },
    )
    .map((vs) => vs.map((v) => ({ pod, node: 'n0', ...v })));

const scoreArb: fc.Arbitrary<PreferredScore | undefined> = fc.option(
  fc.record(
    {
      score: fc.integer({ min: -5, max: 5 }),
      satisfiedWeight: fc.nat(5),
      totalWeight: fc.nat(5),
      spread: fc.record({ satisfied: fc.nat(2), total: fc.nat(2), excess: fc.nat(2) }),
    },
    { requiredKeys: ['score', 'satisfiedWeight', 'totalWeight'] },
  ),
  { nil: undefined },
);

type Side = 'interPod' | 'nodeSpread';
type Change =
  | {
      kind: 'pod';
      side: Side;
      pod: string;
      violations: Violation[];
      score: PreferredScore | undefined;
    }
  | { kind: 'forget'; side: Side }
  | { kind: 'pass' };

const changeArb: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        side: fc.constantFrom<Side>('interPod', 'nodeSpread'),
        pod: fc.constantFrom(...PODS),
      })
      .chain(({ side, pod }) =>
        fc.record({
          kind: fc.constant('pod' as const),
          side: fc.constant(side),
          pod: fc.constant(pod),
          violations: violationsArb(pod, side === 'interPod' ? INTER_POD : NODE_SPREAD),
          score: scoreArb,
        }),
      ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('forget' as const),
      side: fc.constantFrom<Side>('interPod', 'nodeSpread'),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'pass' as const }) },
);

/** One side's findings, as IncrementalAudit or IncrementalNodeSpread keep them. */
class Kept {
  readonly book = new ViolationsByPod();
  readonly preferred = new Map<string, PreferredScore>();
  private changed: Set<string> | null = null;

  set(pod: string, violations: readonly Violation[], score: PreferredScore | undefined): void {
    this.book.set(pod, violations);
    if (score === undefined) this.preferred.delete(pod);
    else this.preferred.set(pod, score);
    this.changed?.add(pod);
  }

  /** The side told nothing of what changed (a restart). */
  forget(): void {
    this.changed = null;
  }

  take(): ChangedPods | null {
    const pods = this.changed;
    this.changed = new Set();
    return pods === null ? null : { pods, violationsOf: (pod) => this.book.get(pod) };
  }

  /** The same findings as a report built from scratch: a sorted copy, a copied map. */
  scratch(): AuditReport {
    const violations = [...PODS].flatMap((p) => [...this.book.get(p)]).sort(compareViolations);
    return {
      violations,
      preferred: new Map(this.preferred),
      summary: { pods: PODS.length, nodes: 1, violations: violations.length },
    };
  }
}

const asNodeSpread = (r: AuditReport): NodeSpreadAudit => ({
  violations: r.violations,
  preferred: r.preferred,
  problems: [],
  accepts: () => true,
});

void test('the report kept between passes equals withNodeAndSpread from scratch', () => {
  fc.assert(
    fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
      const sides = { interPod: new Kept(), nodeSpread: new Kept() };
      const kept = new KeptReport();
      const check = (): void => {
        const interPod = sides.interPod.book.report(sides.interPod.preferred, {
          pods: PODS.length,
          nodes: 1,
        });
        const nodeSpread = asNodeSpread(
          sides.nodeSpread.book.report(sides.nodeSpread.preferred, { pods: 0, nodes: 0 }),
        );
        const got = kept.pass(
          interPod,
          sides.interPod.take(),
          nodeSpread,
          sides.nodeSpread.take(),
        ).report;
        const want = withNodeAndSpread(
          sides.interPod.scratch(),
          asNodeSpread(sides.nodeSpread.scratch()),
        );
        assert.deepEqual([...got.violations], [...want.violations]);
        assert.deepEqual(got.preferred, want.preferred);
        assert.deepEqual(got.summary, want.summary);
      };
      check();
      for (const c of changes) {
        if (c.kind === 'pod') sides[c.side].set(c.pod, c.violations, c.score);
        else if (c.kind === 'forget') sides[c.side].forget();
        else check();
      }
      check();
    }),
    { numRuns: 500 },
  );
});
