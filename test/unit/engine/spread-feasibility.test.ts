// A spreadAcross entry with constraint TopologySpread and mode Required writes a
// DoNotSchedule topologySpreadConstraint: a scheduling filter. The rollout prediction must
// count it (through the PodTopologySpread judge) so that a write whose rollout cannot
// finish is held back, naming the policy entry; ScheduleAnyway never blocks. Capacity
// (Unsatisfiable, "at most N of M") counts it the same way.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Node, Pod } from '../../../src/api/core.ts';
import type { SpreadAcross } from '../../../src/api/policy.ts';
import {
  blockedMessage,
  buildIndex,
  clusterOf,
  compilePolicy,
  predictRollout,
  withPolicySpread,
  workloadCapacities,
  type CompiledPolicy,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import { clusterPolicy, HOSTNAME, nodeInZone, pod, ZONE } from '../builders.ts';

const NS = 'shop';
const web: WorkloadRef = {
  kind: 'Deployment',
  namespace: NS,
  name: 'web',
  templateLabels: { app: 'web' },
  podSelector: { matchLabels: { app: 'web' } },
};

const policyOf = (spread: SpreadAcross): CompiledPolicy => {
  const c = compilePolicy(clusterPolicy('spread', { spreadAcross: [spread] }));
  if (c.kind !== 'ok') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
};

const tainted = (n: Node): Node => ({
  ...n,
  spec: { taints: [{ key: 'maintenance', effect: 'NoSchedule' }] },
});

/** `web` pods running on these nodes, one each (a node named twice runs two). */
const webPods = (nodes: readonly string[]): Pod[] =>
  nodes.map((n, i) => pod(`web-${String(i)}`, { ns: NS, labels: { app: 'web' }, node: n }));

interface Case {
  readonly name: string;
  readonly nodes: readonly Node[];
  readonly running: readonly string[];
  readonly spread: SpreadAcross;
  /** undefined: the rollout finishes; else what the held-back message must say. */
  readonly blocked?: RegExp;
}

const twoZones = [
  nodeInZone('n1', 'zone-a'),
  nodeInZone('n2', 'zone-a'),
  nodeInZone('n3', 'zone-b'),
  nodeInZone('n4', 'zone-b'),
];
const zoneBTainted = [
  nodeInZone('n1', 'zone-a'),
  nodeInZone('n2', 'zone-a'),
  tainted(nodeInZone('n3', 'zone-b')),
];
const REQUIRED_ZONES: SpreadAcross = {
  topologyKey: ZONE,
  constraint: 'TopologySpread',
  mode: 'Required',
};

const cases: Case[] = [
  {
    name: 'DoNotSchedule over two open zones: the rollout finishes',
    nodes: twoZones,
    running: ['n1', 'n2', 'n3', 'n4'],
    spread: REQUIRED_ZONES,
  },
  {
    name: 'DoNotSchedule, the other zone tainted (it still counts, nodeTaintsPolicy Ignore): held back',
    nodes: zoneBTainted,
    running: ['n1', 'n2', 'n1', 'n2'],
    spread: REQUIRED_ZONES,
    blocked:
      /topologySpreadConstraint ClusterPlacementPolicy\/spread spec\.spreadAcross\[0\].*skew \d+ > maxSkew 1/,
  },
  {
    name: 'ScheduleAnyway in the same cluster never blocks',
    nodes: zoneBTainted,
    running: ['n1', 'n2', 'n1', 'n2'],
    spread: { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Preferred' },
  },
  {
    name: 'minDomains above the zones there are: the global minimum is 0, held back',
    nodes: twoZones,
    running: ['n1', 'n2', 'n3', 'n4'],
    spread: { ...REQUIRED_ZONES, minDomains: 3 },
    blocked: /spec\.spreadAcross\[0\]/,
  },
  {
    name: 'a node without the topology key is refused; the others still take the pods',
    nodes: [...twoZones, { metadata: { name: 'bare', labels: { [HOSTNAME]: 'bare' } } }],
    running: ['n1', 'n2', 'n3', 'n4'],
    spread: REQUIRED_ZONES,
  },
];

void describe('predictRollout with a DoNotSchedule spread constraint from a policy', () => {
  for (const c of cases) {
    void test(c.name, () => {
      const policy = policyOf(c.spread);
      const cluster = clusterOf(c.nodes, webPods(c.running), [web], () => ({}));
      const outcome = predictRollout(cluster, {
        workload: web,
        replicas: c.running.length,
        strategy: undefined,
        constraints: {},
        affinity: undefined,
        topologySpreadConstraints: withPolicySpread(undefined, [policy], web),
        enforced: [policy],
      });
      if (c.blocked === undefined) {
        assert.equal(outcome.kind, 'finishes', JSON.stringify(outcome));
        return;
      }
      if (outcome.kind !== 'blocked') assert.fail(`not held back: ${JSON.stringify(outcome)}`);
      assert.match(blockedMessage(outcome), c.blocked);
    });
  }

  void test("the owner's own DoNotSchedule constraint counts, named as its own", () => {
    const cluster = clusterOf(zoneBTainted, webPods(['n1', 'n2', 'n1', 'n2']), [web], () => ({}));
    const outcome = predictRollout(cluster, {
      workload: web,
      replicas: 4,
      strategy: undefined,
      constraints: {},
      affinity: undefined,
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: ZONE,
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: { matchLabels: { app: 'web' } },
        },
      ],
      enforced: [],
    });
    if (outcome.kind !== 'blocked') assert.fail(`not held back: ${JSON.stringify(outcome)}`);
    assert.match(blockedMessage(outcome), /its own topologySpreadConstraints\[0\]/);
  });
});

void describe('capacity counts a policy DoNotSchedule spread constraint', () => {
  const capacity = (spread: SpreadAcross, replicas: number): number => {
    const pods = webPods(['n1']);
    const index = buildIndex(
      { nodes: zoneBTainted, pods, namespaces: [], policies: [], workloads: [] },
      [],
    );
    const [result] = workloadCapacities(
      [{ workload: web, replicas, policies: [policyOf(spread)], ownAffinity: [] }],
      index,
      zoneBTainted.map(nodeFacts),
      () => ({}),
    );
    return result?.placed ?? -1;
  };

  void test('the other zone tainted: one pod in the open zone, at most 1 of 4', () => {
    assert.equal(capacity(REQUIRED_ZONES, 4), 1);
  });

  void test('maxSkew 2: at most 2 of 4', () => {
    assert.equal(capacity({ ...REQUIRED_ZONES, maxSkew: 2 }, 4), 2);
  });

  void test('ScheduleAnyway: all 4', () => {
    assert.equal(capacity({ ...REQUIRED_ZONES, mode: 'Preferred' }, 4), 4);
  });
});
