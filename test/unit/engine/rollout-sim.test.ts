import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { RolloutStrategy } from '../../../src/api/cluster.ts';
import type { Labels } from '../../../src/api/core.ts';
import {
  capacityMessage,
  placeTogether,
  resolveFenceposts,
  resolveTerm,
  SimCluster,
  simulateRollout,
  statefulSetMaxUnavailable,
  type NamedTerm,
  type NodeFacts,
  type PodRules,
  type RolloutOutcome,
  type SimPod,
} from '../../../src/engine/index.ts';
import { HOSTNAME, ZONE } from '../builders.ts';

const NS = 'shop';
const POLICY = 'PlacementPolicy/shop/p';

const nodeFact = (name: string, extra: Labels = {}): NodeFacts => ({
  name,
  labels: { [HOSTNAME]: name, ...extra },
  taints: [],
  unschedulable: false,
});

/** A required term selecting `app=<app>` on `key`, written by the policy. */
const on = (app: string, key = HOSTNAME, field = 'spec.spreadAcross[0]'): NamedTerm => ({
  term: resolveTerm(
    { labelSelector: { matchLabels: { app } }, topologyKey: key },
    { namespace: NS, labels: {} },
    field,
  ),
  source: POLICY,
  field,
});

const running = (
  owner: string,
  app: string,
  nodeName: string,
  i: number,
  anti: NamedTerm[] = [],
): SimPod => ({
  key: `${NS}/${app}-${String(i)}`,
  namespace: NS,
  labels: { app },
  nodeName,
  antiAffinity: anti,
  owner,
});

const rules = (
  app: string,
  o: { affinity?: NamedTerm[]; anti?: NamedTerm[]; nodeSelector?: Labels } = {},
): PodRules => ({
  namespace: NS,
  labels: { app },
  constraints: o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector },
  affinity: o.affinity ?? [],
  antiAffinity: o.anti ?? [],
});

const DEPLOY = (app: string): string => `Deployment/${NS}/${app}`;

/** The demo's seed: 4 nodes, checkout on n1 and n2, three checkout-redis pods on n1, n2, n3. */
function seed(): SimCluster {
  const nodes = ['n1', 'n2', 'n3', 'n4'].map((n) => nodeFact(n));
  return new SimCluster(
    nodes,
    [
      running(DEPLOY('checkout'), 'checkout', 'n1', 0),
      running(DEPLOY('checkout'), 'checkout', 'n2', 1),
      running(DEPLOY('checkout-redis'), 'checkout-redis', 'n1', 0),
      running(DEPLOY('checkout-redis'), 'checkout-redis', 'n2', 1),
      running(DEPLOY('checkout-redis'), 'checkout-redis', 'n3', 2),
    ],
    () => ({}),
  );
}

const redisRules = rules('checkout-redis', {
  affinity: [on('checkout', HOSTNAME, 'spec.affinity.podAffinity.required[0]')],
  anti: [on('checkout-redis')],
});

void describe('resolveFenceposts: the deployment controller rounding', () => {
  const cases: {
    name: string;
    strategy: RolloutStrategy | undefined;
    replicas: number;
    surge: number;
    unavailable: number;
  }[] = [
    {
      name: 'defaults 25%/25% of 3: surge rounds up to 1, unavailable down to 0',
      strategy: undefined,
      replicas: 3,
      surge: 1,
      unavailable: 0,
    },
    { name: 'defaults of 4: 1 and 1', strategy: undefined, replicas: 4, surge: 1, unavailable: 1 },
    {
      name: 'both resolving to 0 makes unavailable 1',
      strategy: { maxSurge: 0, maxUnavailable: '10%' },
      replicas: 3,
      surge: 0,
      unavailable: 1,
    },
    {
      name: 'ints as written',
      strategy: { maxSurge: 2, maxUnavailable: 1 },
      replicas: 5,
      surge: 2,
      unavailable: 1,
    },
    {
      name: 'unavailable capped at replicas',
      strategy: { maxSurge: 0, maxUnavailable: 9 },
      replicas: 3,
      surge: 0,
      unavailable: 3,
    },
    {
      name: 'percentages 50% of 5: 3 and 2',
      strategy: { maxSurge: '50%', maxUnavailable: '50%' },
      replicas: 5,
      surge: 3,
      unavailable: 2,
    },
  ];
  for (const c of cases)
    void test(c.name, () => {
      assert.deepEqual(resolveFenceposts(c.strategy, c.replicas), {
        surge: c.surge,
        unavailable: c.unavailable,
      });
    });
  void test('StatefulSet maxUnavailable: default 1, a small percentage still 1, 50% of 5 is 2', () => {
    assert.equal(statefulSetMaxUnavailable(undefined, 3), 1);
    assert.equal(statefulSetMaxUnavailable({ maxUnavailable: '10%' }, 3), 1);
    assert.equal(statefulSetMaxUnavailable({ maxUnavailable: '50%' }, 5), 2);
  });
});

void describe('placeTogether: how many pods all required rules allow together', () => {
  const nodes4 = ['n1', 'n2', 'n3', 'n4'].map((n) => nodeFact(n, { [ZONE]: n < 'n3' ? 'a' : 'b' }));
  const cases: {
    name: string;
    nodes?: NodeFacts[];
    pods: SimPod[];
    targets: { app: string; replicas: number; rules: PodRules }[];
    placed: number[];
    /** Capacity.fewest, when the first pod's node decides how many follow. */
    fewest?: number[];
    message?: RegExp;
  }[] = [
    {
      name: 'affinity ∩ anti-affinity: one per node, only where checkout runs',
      pods: [
        running(DEPLOY('checkout'), 'checkout', 'n1', 0),
        running(DEPLOY('checkout'), 'checkout', 'n2', 1),
      ],
      targets: [{ app: 'checkout-redis', replicas: 3, rules: redisRules }],
      placed: [2],
      message:
        /at most 2 of 3 pods can run: 2 node\(s\) already run a pod that required podAntiAffinity PlacementPolicy\/shop\/p spec\.spreadAcross\[0\] forbids.*; 2 node\(s\) have no pod that required podAffinity PlacementPolicy\/shop\/p spec\.affinity\.podAffinity\.required\[0\] selects/,
    },
    {
      name: 'hostname affinity with zone anti-affinity: one per zone',
      pods: [
        running(DEPLOY('checkout'), 'checkout', 'n1', 0),
        running(DEPLOY('checkout'), 'checkout', 'n3', 1),
      ],
      targets: [
        {
          app: 'r',
          replicas: 3,
          rules: rules('r', { affinity: [on('checkout')], anti: [on('r', ZONE)] }),
        },
      ],
      placed: [2],
    },
    {
      name: 'zone affinity with hostname anti-affinity: every node of a provider zone',
      pods: [running(DEPLOY('checkout'), 'checkout', 'n1', 0)],
      targets: [
        {
          app: 'r',
          replicas: 3,
          rules: rules('r', { affinity: [on('checkout', ZONE)], anti: [on('r')] }),
        },
      ],
      placed: [2],
    },
    {
      name: 'providers on nodes its nodeSelector rules out',
      pods: [
        running(DEPLOY('checkout'), 'checkout', 'n1', 0),
        running(DEPLOY('checkout'), 'checkout', 'n3', 1),
      ],
      targets: [
        {
          app: 'r',
          replicas: 2,
          rules: rules('r', {
            affinity: [on('checkout')],
            anti: [on('r')],
            nodeSelector: { [ZONE]: 'b' },
          }),
        },
      ],
      placed: [1],
      message: /2 node\(s\) are ruled out by its nodeSelector/,
    },
    {
      name: 'providers themselves limited: checkout one per zone, redis follows it',
      pods: [],
      targets: [
        {
          app: 'checkout',
          replicas: 4,
          rules: rules('checkout', { anti: [on('checkout', ZONE)] }),
        },
        {
          app: 'r',
          replicas: 4,
          rules: rules('r', { affinity: [on('checkout')], anti: [on('r')] }),
        },
      ],
      placed: [2, 2],
    },
    {
      name: 'self-affinity: the first pod goes anywhere, the rest follow it',
      pods: [],
      targets: [
        {
          app: 'r',
          replicas: 3,
          rules: rules('r', { affinity: [on('r', ZONE)], anti: [on('r')] }),
        },
      ],
      placed: [2],
    },
    {
      name: 'self-affinity: the first pod goes to the zone where the most can follow',
      nodes: [
        nodeFact('n1', { [ZONE]: 'a' }),
        nodeFact('n2', { [ZONE]: 'b' }),
        nodeFact('n3', { [ZONE]: 'b' }),
        nodeFact('n4', { [ZONE]: 'b' }),
      ],
      pods: [],
      targets: [
        {
          app: 'r',
          replicas: 3,
          rules: rules('r', { affinity: [on('r', ZONE)], anti: [on('r')] }),
        },
      ],
      placed: [3],
      fewest: [1],
    },
    {
      name: 'self-affinity by hostname, anti-affinity by zone: a node without a zone takes them all',
      nodes: [nodeFact('n1', { [ZONE]: 'a' }), nodeFact('n2', { [ZONE]: 'b' }), nodeFact('n3')],
      pods: [],
      targets: [
        {
          app: 'r',
          replicas: 3,
          rules: rules('r', { affinity: [on('r')], anti: [on('r', ZONE)] }),
        },
      ],
      placed: [3],
      fewest: [1],
    },
    {
      name: "another workload's anti-affinity against it closes its nodes",
      pods: [
        running(DEPLOY('batch'), 'batch', 'n1', 0, [on('r')]),
        running(DEPLOY('batch'), 'batch', 'n2', 1, [on('r')]),
      ],
      targets: [{ app: 'r', replicas: 3, rules: rules('r', { anti: [on('r')] }) }],
      placed: [2],
      message:
        /share a kubernetes\.io\/hostname domain with a pod whose required podAntiAffinity forbids it/,
    },
    {
      name: 'enough room: all placed',
      pods: [
        running(DEPLOY('checkout'), 'checkout', 'n1', 0),
        running(DEPLOY('checkout'), 'checkout', 'n2', 1),
      ],
      targets: [{ app: 'checkout-redis', replicas: 2, rules: redisRules }],
      placed: [2],
    },
  ];
  for (const c of cases)
    void test(c.name, () => {
      const cluster = new SimCluster(c.nodes ?? nodes4, c.pods, () => ({}));
      const result = placeTogether(
        cluster,
        c.targets.map((t) => ({ key: DEPLOY(t.app), replicas: t.replicas, rules: t.rules })),
      );
      assert.deepEqual(
        result.map((r) => r.placed),
        c.placed,
      );
      assert.deepEqual(
        result.map((r) => r.fewest),
        c.fewest ?? c.placed,
      );
      if (c.message !== undefined) {
        const short = result.find((r) => r.placed < r.replicas);
        assert.ok(short !== undefined, 'some workload is short');
        assert.match(capacityMessage(short), c.message);
      }
    });
});

void describe('simulateRollout', () => {
  const blocked = (o: RolloutOutcome): Extract<RolloutOutcome, { kind: 'blocked' }> => {
    assert.equal(o.kind, 'blocked', JSON.stringify(o));
    return o;
  };

  void test('the checkout-redis seed: held back, at most 2 of 3, one more node with a checkout pod', () => {
    const o = blocked(
      simulateRollout(seed(), {
        key: DEPLOY('checkout-redis'),
        kind: 'Deployment',
        replicas: 3,
        strategy: undefined,
        rules: redisRules,
      }),
    );
    assert.equal(o.updated, 0);
    assert.match(o.reason, /^at most 2 of 3 pods can run/);
    assert.deepEqual(o.unblock, [
      'one more kubernetes.io/hostname domain with a app=checkout pod',
      'replicas ≤ 2',
    ]);
  });

  void test('the cluster is left as it was', () => {
    const cluster = seed();
    const before = [...cluster.all()].map((p) => `${p.key}@${p.nodeName}`).sort();
    simulateRollout(cluster, {
      key: DEPLOY('checkout-redis'),
      kind: 'Deployment',
      replicas: 3,
      strategy: undefined,
      rules: redisRules,
    });
    assert.deepEqual([...cluster.all()].map((p) => `${p.key}@${p.nodeName}`).sort(), before);
  });

  /** checkout on all of n1..n3, redis on n1..n3 without rules: room for 3, but no free checkout node. */
  const full = (): SimCluster =>
    new SimCluster(
      ['n1', 'n2', 'n3', 'n4'].map((n) => nodeFact(n)),
      [0, 1, 2].flatMap((i) => [
        running(DEPLOY('checkout'), 'checkout', `n${String(i + 1)}`, i),
        running(DEPLOY('checkout-redis'), 'checkout-redis', `n${String(i + 1)}`, i),
      ]),
      () => ({}),
    );
  const deploymentCases: {
    name: string;
    strategy: RolloutStrategy | undefined;
    expect: 'finishes' | RegExp;
    unblock?: string[];
  }[] = [
    {
      name: 'default 25% of 3 leaves maxUnavailable 0: surge pod has nowhere to go',
      strategy: undefined,
      expect: /stop with 0 of 3 new pods/,
      unblock: ['maxUnavailable ≥ 1'],
    },
    {
      name: 'maxUnavailable 1: an old pod goes first, each new pod takes its node',
      strategy: { maxUnavailable: 1 },
      expect: 'finishes',
    },
    {
      name: 'maxSurge 0 (unavailable becomes 1)',
      strategy: { maxSurge: 0, maxUnavailable: 0 },
      expect: 'finishes',
    },
    { name: 'Recreate', strategy: { type: 'Recreate' }, expect: 'finishes' },
  ];
  for (const c of deploymentCases)
    void test(`Deployment: ${c.name}`, () => {
      const o = simulateRollout(full(), {
        key: DEPLOY('checkout-redis'),
        kind: 'Deployment',
        replicas: 3,
        strategy: c.strategy,
        rules: redisRules,
      });
      if (c.expect === 'finishes') assert.equal(o.kind, 'finishes', JSON.stringify(o));
      else {
        const b = blocked(o);
        assert.match(b.reason, c.expect);
        assert.deepEqual(b.unblock, c.unblock);
      }
    });

  const STS = `StatefulSet/${NS}/db`;
  /** db-0 and db-1 share n1, db-2 is on n2; the new template spreads one per node. */
  const sts = (nodes: readonly string[]): SimCluster =>
    new SimCluster(
      nodes.map((n) => nodeFact(n)),
      [running(STS, 'db', 'n1', 0), running(STS, 'db', 'n1', 1), running(STS, 'db', 'n2', 2)],
      () => ({}),
    );
  const dbRules = rules('db', { anti: [on('db')] });
  const stsCases: {
    name: string;
    strategy: RolloutStrategy;
    nodes?: readonly string[];
    expect: 'finishes' | 'noRollout' | RegExp;
    unblock?: string[];
  }[] = [
    {
      name: 'OrderedReady, one at a time from db-2 down: each new pod finds a free node',
      strategy: {},
      expect: 'finishes',
    },
    {
      name: 'two nodes for three one-per-node pods: db-2 is replaced, db-1 finds no node',
      strategy: {},
      nodes: ['n1', 'n2'],
      expect: /^at most 2 of 3 pods can run.*stop with 1 of 3 new pods/,
      unblock: ['one more node its rules admit', 'replicas ≤ 2'],
    },
    {
      name: 'Parallel, maxUnavailable 3: all at once',
      strategy: { podManagementPolicy: 'Parallel', maxUnavailable: 3 },
      expect: 'finishes',
    },
    { name: 'partition 2: only db-2 changes', strategy: { partition: 2 }, expect: 'finishes' },
    { name: 'partition 3: nothing rolls', strategy: { partition: 3 }, expect: 'noRollout' },
    { name: 'OnDelete: nothing rolls', strategy: { type: 'OnDelete' }, expect: 'noRollout' },
  ];
  for (const c of stsCases)
    void test(`StatefulSet: ${c.name}`, () => {
      const o = simulateRollout(sts(c.nodes ?? ['n1', 'n2', 'n3']), {
        key: STS,
        kind: 'StatefulSet',
        replicas: 3,
        strategy: c.strategy,
        rules: dbRules,
      });
      if (c.expect === 'finishes' || c.expect === 'noRollout')
        assert.equal(o.kind, c.expect, JSON.stringify(o));
      else {
        const b = blocked(o);
        assert.match(b.reason, c.expect);
        assert.deepEqual(b.unblock, c.unblock);
      }
    });

  void test('DaemonSet: pods pinned per node; a node whose new pod meets anti-affinity blocks', () => {
    const DS = `DaemonSet/${NS}/agent`;
    const cluster = new SimCluster(
      ['n1', 'n2'].map((n) => nodeFact(n)),
      [
        running(DS, 'agent', 'n1', 0),
        running(DS, 'agent', 'n2', 1),
        running(DEPLOY('noisy'), 'noisy', 'n2', 0),
      ],
      () => ({}),
    );
    const o = blocked(
      simulateRollout(cluster, {
        key: DS,
        kind: 'DaemonSet',
        replicas: 2,
        strategy: undefined,
        rules: rules('agent', { anti: [on('noisy')] }),
      }),
    );
    assert.match(o.reason, /pinned per node, and on n2 the new pod cannot run/);
    const fine = simulateRollout(cluster, {
      key: DS,
      kind: 'DaemonSet',
      replicas: 2,
      strategy: undefined,
      rules: rules('agent', { anti: [on('agent')] }),
    });
    assert.equal(fine.kind, 'finishes');
  });
});
