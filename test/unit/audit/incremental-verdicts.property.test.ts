// Property of the audit kept between passes: after any sequence of changes, as the informers
// tell them (pods added, deleted, relabelled, moved to another node; nodes relabelled, topology
// labels taken off, nodes deleted; namespaces relabelled; the set of policies changed), with
// passes in between, the kept verdicts are those of an audit of an index built from scratch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Namespace, Node, Pod } from '../../../src/api/core.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import type { Workload } from '../../../src/api/cluster.ts';
import { LiveIndex, newAuditStats, type AuditStats } from '../../../src/audit/live-index.ts';
import {
  auditIndex,
  comparePolicies,
  IncrementalAudit,
  ViolationsByPod,
  type AuditReport,
  type CompiledPolicy,
} from '../../../src/engine/index.ts';
import { MemorySource } from '../../support/memory-source.ts';
import { HOSTNAME, ZONE, clusterPolicy, labelsIn, term } from '../builders.ts';
import {
  NODES,
  keyOf,
  namespacesArb,
  nodesArb,
  opArb,
  podsArb,
  type Op,
} from '../engine/affinity-arbitraries.ts';
import { compiled, REQUIRED } from './world.ts';

const RUNS = 300;

/** Bare pods are what the generated pods are: policies for them audit only. */
const forPods = (name: string, spec: Omit<PlacementPolicy['spec'], 'mode'>): PlacementPolicy =>
  clusterPolicy(name, { mode: 'Audit', ...spec, targets: { kinds: ['Pod'], ...spec.targets } });

/** Policies whose terms select across namespaces by label, so namespace changes matter. */
const POLICIES: readonly CompiledPolicy[] = [
  forPods('spread-a', {
    targets: { selector: labelsIn({ app: 'a' }) },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  }),
  forPods('team-x-near-tier-x', {
    targets: { namespaceSelector: labelsIn({ team: 'x' }) },
    affinity: {
      podAffinity: {
        [REQUIRED]: [
          { ...term(labelsIn({ tier: 'x' }), ZONE), namespaceSelector: labelsIn({ team: 'x' }) },
        ],
      },
    },
  }),
  forPods('b-away-from-team-y', {
    targets: { selector: labelsIn({ app: 'b' }) },
    affinity: {
      podAntiAffinity: {
        [REQUIRED]: [{ ...term({}, ZONE), namespaceSelector: labelsIn({ team: 'y' }) }],
      },
    },
  }),
  forPods('prefer-zones', {
    targets: { namespaces: ['ns-b'] },
    spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 10 }],
  }),
].map(compiled);

/** A change to the cluster, a new set of policies, or a pass of the audit. */
type Change =
  | Op
  | { readonly kind: 'rebindPod'; readonly which: number; readonly node: string }
  | { readonly kind: 'policies'; readonly chosen: readonly boolean[] }
  | { readonly kind: 'pass' };

const changeArb: fc.Arbitrary<Change> = fc.oneof(
  { weight: 13, arbitrary: opArb },
  {
    weight: 2,
    arbitrary: fc
      .record({ which: fc.nat(), node: fc.constantFrom(...NODES) })
      .map((c): Change => ({ kind: 'rebindPod', ...c })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.boolean(), { minLength: POLICIES.length, maxLength: POLICIES.length })
      .map((chosen): Change => ({ kind: 'policies', chosen })),
  },
  { weight: 3, arbitrary: fc.constant<Change>({ kind: 'pass' }) },
);

/** The informers in memory, a live index listening to them, and the policies of the moment. */
class Cluster {
  readonly pods: MemorySource<Pod>;
  readonly nodes: MemorySource<Node>;
  readonly namespaces: MemorySource<Namespace>;
  policies: readonly CompiledPolicy[];
  readonly live: LiveIndex;

  constructor(nodes: readonly Node[], namespaces: readonly Namespace[], pods: readonly Pod[]) {
    this.pods = new MemorySource(keyOf, pods);
    this.nodes = new MemorySource((n) => n.metadata.name, nodes);
    this.namespaces = new MemorySource((n) => n.metadata.name, namespaces);
    this.policies = POLICIES;
    const quiet = (): undefined => undefined;
    const stats: AuditStats = newAuditStats();
    this.live = new LiveIndex(
      {
        pods: this.pods,
        nodes: this.nodes,
        namespaces: this.namespaces,
        workloads: [new MemorySource<Workload>((w) => w.name)],
        policies: () => this.policies,
        log: { info: quiet, warn: quiet, error: quiet, debug: quiet },
      },
      stats,
    );
    this.live.install(this.live.build(this.policies), this.policies, null);
    this.pods.addHandler((e) => this.live.onPod(e));
    this.nodes.addHandler((e) => this.live.onNode(e));
    this.namespaces.addHandler((e) => this.live.onNamespace(e));
  }

  private existing(which: number): Pod | undefined {
    const all = this.pods.list();
    return all[which % Math.max(all.length, 1)];
  }

  apply(c: Change): void {
    switch (c.kind) {
      case 'upsertPod':
        this.pods.set(c.pod);
        return;
      case 'removePod': {
        const p = this.existing(c.which);
        if (p !== undefined) this.pods.delete(keyOf(p));
        return;
      }
      case 'relabelPod': {
        const p = this.existing(c.which);
        if (p !== undefined) this.pods.set({ ...p, metadata: { ...p.metadata, labels: c.labels } });
        return;
      }
      case 'rebindPod': {
        const p = this.existing(c.which);
        if (p !== undefined) this.pods.set({ ...p, spec: { ...p.spec, nodeName: c.node } });
        return;
      }
      case 'setNode':
        this.nodes.set({ metadata: { name: c.name, labels: c.labels } });
        return;
      case 'removeNode':
        this.nodes.delete(c.name);
        return;
      case 'setNamespace':
        this.namespaces.set({ metadata: { name: c.name, labels: c.labels } });
        return;
      case 'policies':
        // Policies that stay are the same objects, as the policy catalog keeps them.
        this.policies = POLICIES.filter((_, i) => c.chosen[i] === true).sort(comparePolicies);
        this.live.adopt(this.policies);
        return;
      case 'pass':
        return;
    }
  }

  /** What an audit of an index built from the informers now reports. */
  fromScratch(): AuditReport {
    return auditIndex(this.live.build(this.policies));
  }
}

function sameReport(kept: AuditReport, scratch: AuditReport, after: string): void {
  assert.deepEqual(kept.violations, scratch.violations, `violations ${after}`);
  assert.deepEqual(kept.preferred, scratch.preferred, `preferred scores ${after}`);
  assert.deepEqual(kept.summary, scratch.summary, `summary ${after}`);
}

void test('verdicts kept between passes equal an audit from scratch after any changes', () => {
  let judgedLess = 0;
  fc.assert(
    fc.property(
      nodesArb(1),
      namespacesArb(1),
      podsArb(8),
      fc.array(changeArb, { maxLength: 30 }),
      (nodes, namespaces, pods, changes) => {
        const cluster = new Cluster(nodes, namespaces, pods);
        const kept = new IncrementalAudit();
        // What a reader of takeChanged keeps: the violations of the pods it is told of.
        const mirror = new ViolationsByPod();
        const told = (report: AuditReport): void => {
          const judged = kept.takeChanged();
          if (judged === null) mirror.setAll(report.violations);
          else for (const pod of judged.pods) mirror.set(pod, judged.violationsOf(pod));
          assert.deepEqual([...mirror.all()], report.violations, 'the pods judged again, told');
        };
        const index = (): NonNullable<LiveIndex['index']> => {
          const i = cluster.live.index;
          assert.ok(i !== null);
          return i;
        };
        const first = kept.pass(index());
        sameReport(first, cluster.fromScratch(), 'at the start');
        told(first);
        changes.forEach((c, i) => {
          cluster.apply(c);
          if (c.kind !== 'pass' && i !== changes.length - 1) return;
          const report = kept.pass(index());
          if (kept.lastJudged < report.summary.pods) judgedLess++;
          sameReport(
            report,
            cluster.fromScratch(),
            `after ${JSON.stringify(changes.slice(0, i + 1))}`,
          );
          told(report);
        });
      },
    ),
    { numRuns: RUNS },
  );
  // Passes that judged every pod would prove nothing about choosing the affected ones.
  assert.ok(judgedLess > RUNS / 2, `${judgedLess} passes judged fewer pods than the index holds`);
});
