import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Labels, Node, Pod, PodAffinityTerm } from '../../../src/api/core.ts';
import type { PlacementPolicySpec, PolicyRef } from '../../../src/api/policy.ts';
import { workloadKey } from '../../../src/api/cluster.ts';
import {
  buildIndex,
  compilePolicy,
  feasibility,
  nodeFacts,
  resolveTerm,
  simulatedCluster,
  unsatisfiablePolicies,
  type CompiledPolicy,
  type FeasibilityTarget,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  ZONE,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  nodeInZone,
  pod,
  snapshotOf,
  term,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const NS = 'shop';

function compiled(name: string, spec: PlacementPolicySpec): CompiledPolicy {
  const c = compilePolicy(namespacedPolicy(NS, name, spec));
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

const ref = (name: string): PolicyRef => `PlacementPolicy/${NS}/${name}`;

/** A Deployment whose pods carry `labels` (also its selector). */
const deployment = (name: string, labels: Labels, ns = NS): WorkloadRef => ({
  kind: 'Deployment',
  namespace: ns,
  name,
  templateLabels: labels,
  podSelector: { matchLabels: labels },
});

const target = (
  workload: WorkloadRef,
  policies: readonly CompiledPolicy[],
  replicas = 1,
  ownAffinity: readonly PodAffinityTerm[] = [],
): FeasibilityTarget => ({ workload, replicas, policies, ownAffinity });

/** A policy whose pods must share a `key` domain with pods that `selector` matches. */
const affinityTo = (
  name: string,
  matchLabels: Labels,
  key = ZONE,
  extra: Omit<PodAffinityTerm, 'labelSelector' | 'topologyKey'> = {},
): CompiledPolicy =>
  compiled(name, {
    affinity: { podAffinity: { [REQUIRED]: [term(labelsIn(matchLabels), key, extra)] } },
  });

const spread = (
  name: string,
  topologyKey: string,
  mode: 'Required' | 'Preferred',
): CompiledPolicy => compiled(name, { spreadAcross: [{ topologyKey, mode }] });

const hostnames = (n: number): Node[] => Array.from({ length: n }, (_, i) => node(`n${i}`));
/** Four nodes over two zones. */
const zoned = (): Node[] => [
  nodeInZone('n0', 'a'),
  nodeInZone('n1', 'a'),
  nodeInZone('n2', 'b'),
  nodeInZone('n3', 'b'),
];

interface Case {
  readonly name: string;
  readonly nodes?: readonly Node[];
  readonly pods?: readonly Pod[];
  readonly namespaces?: Record<string, Labels>;
  readonly targets: readonly FeasibilityTarget[];
  /** Policy name → patterns its reported problems must match, one per problem. */
  readonly want: Record<string, readonly RegExp[]>;
}

const web = deployment('web', { app: 'web' });
const db = deployment('db', { app: 'db' });
const cache = deployment('cache', { app: 'cache' });
const frontend = deployment('frontend', { app: 'frontend' });
const backend = deployment('backend', { app: 'backend' });

const redis = deployment('checkout-redis', { app: 'checkout-redis' });
/** The seed policy: next to a checkout pod on `key`, one checkout-redis pod per node. */
/** Links of a chain of required affinities: web needs db, db needs cache. */
const WEB_TO_DB = target(web, [affinityTo('web-to-db', { app: 'db' })]);
const DB_TO_CACHE = target(db, [affinityTo('db-to-cache', { app: 'cache' })]);
/** Frontend and backend, each asking for the other on its node. */
const MUTUAL_AFFINITY = [
  target(frontend, [affinityTo('frontend-to-backend', { app: 'backend' }, HOSTNAME)]),
  target(backend, [affinityTo('backend-to-frontend', { app: 'frontend' }, HOSTNAME)]),
];
const checkout = deployment('checkout', { app: 'checkout' });
/** Checkout's two pods, under a required spread of their own on `key`. */
const checkoutSpread = (name: string, key: string) =>
  target(checkout, [spread(name, key, 'Required')], 2);

const redisWithCheckout = (key: string): CompiledPolicy =>
  compiled('with-checkout', {
    affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'checkout' }), key)] } },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  });

const NO_FIRST_POD =
  /no running pod and no workload that can start first matches all its required podAffinity terms/;

const cases: readonly Case[] = [
  // ---- spread: at most one pod per domain ----
  {
    name: 'required spread on hostname with more replicas than nodes',
    nodes: hostnames(2),
    targets: [target(web, [spread('spread', HOSTNAME, 'Required')], 3)],
    want: {
      spread: [
        /Deployment shop\/web wants 3 replicas.*one per kubernetes\.io\/hostname.*only 2 node domain/,
      ],
    },
  },
  {
    name: 'required spread on hostname with as many replicas as nodes',
    nodes: hostnames(3),
    targets: [target(web, [spread('spread', HOSTNAME, 'Required')], 3)],
    want: {},
  },
  {
    name: 'required spread on zone counts zones, not nodes',
    nodes: zoned(),
    targets: [target(web, [spread('spread', ZONE, 'Required')], 3)],
    want: { spread: [/wants 3 replicas.*only 2 node domain/] },
  },
  {
    name: 'a node without the topology label is in no domain: anti-affinity on it never refuses it',
    nodes: [nodeInZone('n0', 'a'), node('n1'), node('n2')],
    targets: [target(web, [spread('spread', ZONE, 'Required')], 5)],
    want: {},
  },
  {
    name: 'one per zone over the zoned nodes the workload may use',
    nodes: [nodeInZone('n0', 'a'), nodeInZone('n1', 'a'), node('n2')],
    targets: [
      {
        ...target(web, [spread('spread', ZONE, 'Required')], 2),
        constraints: {
          nodeAffinity: {
            [REQUIRED]: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: 'Exists' }] }],
            },
          },
        },
      },
    ],
    want: { spread: [/only 1 node domain/] },
  },
  {
    name: 'preferred spread never makes a policy unsatisfiable',
    nodes: hostnames(1),
    targets: [target(web, [spread('spread', HOSTNAME, 'Preferred')], 5)],
    want: {},
  },
  {
    name: 'required anti-affinity written out that selects the workload itself',
    nodes: hostnames(2),
    targets: [
      target(
        web,
        [
          compiled('anti', {
            affinity: {
              podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'web' }), HOSTNAME)] },
            },
          }),
        ],
        4,
      ),
    ],
    want: { anti: [/wants 4 replicas/] },
  },
  {
    name: 'required anti-affinity against other pods caps nothing',
    nodes: hostnames(1),
    targets: [
      target(
        web,
        [
          compiled('anti', {
            affinity: {
              podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'db' }), HOSTNAME)] },
            },
          }),
        ],
        4,
      ),
    ],
    want: {},
  },
  // ---- required affinity: someone must be there first ----
  {
    name: 'required affinity with no pod and no workload to satisfy it',
    nodes: zoned(),
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })])],
    want: {
      'follow-db': [/Deployment shop\/web: required podAffinity on topology\.kubernetes\.io\/zone/],
    },
  },
  {
    name: 'self-matching affinity: the first pod may start',
    nodes: zoned(),
    targets: [target(web, [affinityTo('together', { app: 'web' })], 3)],
    want: {},
  },
  {
    name: 'a running pod satisfies the affinity',
    nodes: zoned(),
    pods: [pod('db-0', { ns: NS, labels: { app: 'db' }, node: 'n0' })],
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })])],
    want: {},
  },
  {
    name: 'a pending pod does not satisfy the affinity',
    nodes: zoned(),
    pods: [pod('db-0', { ns: NS, labels: { app: 'db' } })],
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })])],
    want: { 'follow-db': [NO_FIRST_POD] },
  },
  {
    name: 'a running pod in another namespace does not satisfy a term for the own namespace',
    nodes: zoned(),
    pods: [pod('db-0', { ns: 'data', labels: { app: 'db' }, node: 'n0' })],
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })])],
    want: { 'follow-db': [NO_FIRST_POD] },
  },
  {
    name: 'a running pod in a namespace the term lists',
    nodes: zoned(),
    pods: [pod('db-0', { ns: 'data', labels: { app: 'db' }, node: 'n0' })],
    targets: [
      target(web, [affinityTo('follow-db', { app: 'db' }, ZONE, { namespaces: ['data'] })]),
    ],
    want: {},
  },
  {
    name: 'a running pod in a namespace the term selects by label',
    nodes: zoned(),
    namespaces: { data: { tier: 'data' } },
    pods: [pod('db-0', { ns: 'data', labels: { app: 'db' }, node: 'n0' })],
    targets: [
      target(web, [
        affinityTo('follow-db', { app: 'db' }, ZONE, {
          namespaceSelector: labelsIn({ tier: 'data' }),
        }),
      ]),
    ],
    want: {},
  },
  {
    name: 'a workload that can start first satisfies the affinity',
    nodes: zoned(),
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })]), target(db, [])],
    want: {},
  },
  {
    name: 'a scaled-to-zero workload starts no pod to satisfy anything',
    nodes: zoned(),
    targets: [target(web, [affinityTo('follow-db', { app: 'db' })]), target(db, [], 0)],
    want: { 'follow-db': [NO_FIRST_POD] },
  },
  {
    name: 'chain A→B where B starts by itself',
    nodes: zoned(),
    targets: [WEB_TO_DB, target(db, [affinityTo('db-together', { app: 'db' })], 3)],
    want: {},
  },
  {
    name: 'chain A→B→C where C starts first',
    nodes: zoned(),
    targets: [WEB_TO_DB, DB_TO_CACHE, target(cache, [])],
    want: {},
  },
  {
    name: 'chain A→B where B waits for a pod that never comes',
    nodes: zoned(),
    targets: [WEB_TO_DB, DB_TO_CACHE],
    want: { 'web-to-db': [NO_FIRST_POD], 'db-to-cache': [NO_FIRST_POD] },
  },
  {
    name: 'mutual required affinity that no first pod can start',
    nodes: zoned(),
    targets: MUTUAL_AFFINITY,
    want: {
      'frontend-to-backend': [
        /Deployment shop\/frontend: required podAffinity on kubernetes\.io\/hostname/,
      ],
      'backend-to-frontend': [
        /Deployment shop\/backend: required podAffinity on kubernetes\.io\/hostname/,
      ],
    },
  },
  {
    name: 'mutual required affinity once one side runs',
    nodes: zoned(),
    pods: [pod('backend-0', { ns: NS, labels: { app: 'backend' }, node: 'n0' })],
    targets: MUTUAL_AFFINITY,
    want: {},
  },
  {
    name: "the workload's own template term that cannot be met blocks its first pod",
    nodes: zoned(),
    targets: [
      target(web, [affinityTo('together', { app: 'web' })], 1, [
        term(labelsIn({ app: 'ghost' }), ZONE),
      ]),
    ],
    want: { together: [NO_FIRST_POD] },
  },
  {
    name: 'an unmet term of the template alone is reported on no policy',
    nodes: zoned(),
    targets: [
      target(web, [spread('spread', HOSTNAME, 'Preferred')], 1, [
        term(labelsIn({ app: 'ghost' }), ZONE),
      ]),
    ],
    want: {},
  },
  {
    // The scheduler counts only pods that match every required term of the incoming pod
    // (podMatchesAllAffinityTerms), so two pods that each match one term satisfy nothing.
    name: 'two terms met by two different running pods',
    nodes: zoned(),
    pods: [
      pod('db-0', { ns: NS, labels: { app: 'db' }, node: 'n0' }),
      pod('cache-0', { ns: NS, labels: { app: 'cache' }, node: 'n0' }),
    ],
    targets: [
      target(web, [
        compiled('both', {
          affinity: {
            podAffinity: {
              [REQUIRED]: [
                term(labelsIn({ app: 'db' }), ZONE),
                term(labelsIn({ app: 'cache' }), ZONE),
              ],
            },
          },
        }),
      ]),
    ],
    want: { both: [NO_FIRST_POD, NO_FIRST_POD] },
  },
  {
    name: 'two terms met by one running pod',
    nodes: zoned(),
    pods: [pod('db-0', { ns: NS, labels: { app: 'db', tier: 'data' }, node: 'n0' })],
    targets: [
      target(web, [
        compiled('both', {
          affinity: {
            podAffinity: {
              [REQUIRED]: [
                term(labelsIn({ app: 'db' }), ZONE),
                term(labelsIn({ tier: 'data' }), HOSTNAME),
              ],
            },
          },
        }),
      ]),
    ],
    want: {},
  },
  // ---- all required rules together: how many pods can run ----
  {
    name: 'the checkout-redis seed: next to checkout (2 nodes) and one per node allows 2 of 3',
    nodes: hostnames(4),
    pods: [
      pod('checkout-0', { ns: NS, labels: { app: 'checkout' }, node: 'n0' }),
      pod('checkout-1', { ns: NS, labels: { app: 'checkout' }, node: 'n1' }),
    ],
    targets: [target(checkout, [], 2), target(redis, [redisWithCheckout(HOSTNAME)], 3)],
    want: {
      'with-checkout': [
        /^Deployment shop\/checkout-redis: at most 2 of 3 pods can run: 2 node\(s\) already run a pod that required podAntiAffinity .*spec\.spreadAcross\[0\].*; 2 node\(s\) have no pod that required podAffinity .*spec\.affinity\.podAffinity/,
      ],
    },
  },
  {
    // Placed anew, checkout's two pods may land on nodes its old pods do not run on; once
    // they run the old ones are gone, and only where the new ones are counts for redis.
    name: 'providers that roll: only the nodes their new pods run on count once they all run',
    nodes: hostnames(4),
    pods: [
      pod('checkout-0', { ns: NS, labels: { app: 'checkout' }, node: 'n2' }),
      pod('checkout-1', { ns: NS, labels: { app: 'checkout' }, node: 'n3' }),
    ],
    targets: [
      checkoutSpread('checkout-one-per-node', HOSTNAME),
      target(redis, [redisWithCheckout(HOSTNAME)], 3),
    ],
    want: { 'with-checkout': [/at most 2 of 3 pods can run/] },
  },
  {
    name: 'affinity on zone with one per node: every node of the provider zone',
    nodes: zoned(),
    pods: [pod('checkout-0', { ns: NS, labels: { app: 'checkout' }, node: 'n0' })],
    targets: [target(redis, [redisWithCheckout(ZONE)], 3)],
    want: { 'with-checkout': [/at most 2 of 3 pods can run/] },
  },
  {
    name: 'providers on nodes the workload may not use',
    nodes: hostnames(4),
    pods: [
      pod('checkout-0', { ns: NS, labels: { app: 'checkout' }, node: 'n0' }),
      pod('checkout-1', { ns: NS, labels: { app: 'checkout' }, node: 'n1' }),
    ],
    targets: [
      {
        ...target(redis, [redisWithCheckout(HOSTNAME)], 2),
        constraints: {
          nodeAffinity: {
            [REQUIRED]: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: HOSTNAME, operator: 'NotIn', values: ['n0'] }] },
              ],
            },
          },
        },
      },
    ],
    want: {
      'with-checkout': [
        /at most 1 of 2 pods can run: .*1 node\(s\) are ruled out by its nodeSelector/,
      ],
    },
  },
  {
    name: 'providers that are themselves limited: checkout one per zone, not yet running',
    nodes: zoned(),
    targets: [
      checkoutSpread('checkout-zones', ZONE),
      target(redis, [redisWithCheckout(HOSTNAME)], 3),
    ],
    want: { 'with-checkout': [/at most 2 of 3 pods can run/] },
  },
  {
    name: 'room for every pod: nothing reported',
    nodes: hostnames(4),
    pods: [0, 1, 2].map((i) =>
      pod(`checkout-${String(i)}`, { ns: NS, labels: { app: 'checkout' }, node: `n${String(i)}` }),
    ),
    targets: [target(redis, [redisWithCheckout(HOSTNAME)], 3)],
    want: {},
  },
  {
    name: 'only the policy with the problem is reported',
    nodes: hostnames(2),
    targets: [
      target(
        web,
        [spread('spread', HOSTNAME, 'Required'), affinityTo('together', { app: 'web' })],
        3,
      ),
    ],
    want: { spread: [/wants 3 replicas/] },
  },
];

void describe('unsatisfiablePolicies', () => {
  for (const c of cases) {
    void test(c.name, () => {
      const namespaces = Object.entries({ [NS]: {}, data: {}, ...c.namespaces }).map(([n, l]) =>
        namespace(n, l),
      );
      const nodes = c.nodes ?? [];
      const index = buildIndex(snapshotOf({ nodes, namespaces, pods: c.pods ?? [] }), []);
      const got = unsatisfiablePolicies(c.targets, index, nodes.map(nodeFacts), (ns) =>
        index.namespaceLabels(ns),
      );
      assert.deepEqual(
        [...got.keys()].sort(),
        Object.keys(c.want).map(ref).sort(),
        `policies reported: ${JSON.stringify(Object.fromEntries(got))}`,
      );
      for (const [name, patterns] of Object.entries(c.want)) {
        const messages = got.get(ref(name)) ?? [];
        assert.equal(messages.length, patterns.length, `${name}: ${JSON.stringify(messages)}`);
        patterns.forEach((p, i) => {
          assert.match(messages[i] ?? '', p);
        });
      }
    });
  }
});

void describe('feasibility: what it read', () => {
  const web = deployment('web', { app: 'web' });
  const db = deployment('db', { app: 'db' }, NS);
  const cluster = (pods: Pod[]) => {
    const nodes = zoned();
    const index = buildIndex(snapshotOf({ nodes, namespaces: [namespace(NS)], pods }), []);
    const run = (targets: readonly FeasibilityTarget[]) =>
      feasibility(targets, index, nodes.map(nodeFacts), (ns) => index.namespaceLabels(ns));
    const placed = (key: string) => {
      const entry = index.get(key);
      assert.ok(entry, key);
      return entry.pod;
    };
    return { run, placed, index };
  };

  void test('the running pods a look-up could find, and no others', () => {
    const c = cluster([
      pod('db-0', { ns: NS, labels: { app: 'db' }, node: 'n0' }),
      pod('cache-0', { ns: NS, labels: { app: 'cache' }, node: 'n0' }),
      pod('db-1', { ns: 'other', labels: { app: 'db' }, node: 'n0' }),
    ]);
    // db has no replicas and no workload can start first: only running pods can meet web's term.
    const { unsatisfiable, reads } = c.run([
      target(web, [affinityTo('web-near-db', { app: 'db' })]),
      target(db, [], 0),
    ]);
    assert.equal(unsatisfiable.size, 0);
    assert.equal(reads.couldFind(c.placed(`${NS}/db-0`), c.index), true);
    assert.equal(reads.couldFind(c.placed(`${NS}/cache-0`), c.index), false);
    assert.equal(reads.couldFind(c.placed('other/db-1'), c.index), false, 'another namespace');
  });

  void test('a workload placed anew reads its own running pods (they meet its affinity until replaced)', () => {
    const c = cluster([
      pod('web-0', { ns: NS, labels: { app: 'web' }, node: 'n0' }),
      pod('cache-0', { ns: NS, labels: { app: 'cache' }, node: 'n0' }),
    ]);
    const { reads } = c.run([target(web, [affinityTo('together', { app: 'web' })])]);
    assert.equal(reads.couldFind(c.placed(`${NS}/web-0`), c.index), true);
    assert.equal(reads.couldFind(c.placed(`${NS}/cache-0`), c.index), false);
  });

  void test('the topology keys whose domains were counted', () => {
    const c = cluster([]);
    const { unsatisfiable, reads } = c.run([target(web, [spread('spread', ZONE, 'Required')], 3)]);
    assert.match(unsatisfiable.get(ref('spread'))?.[0] ?? '', /only 2 node domain/);
    assert.deepEqual([...reads.domainKeys], [ZONE]);
    const facts = (labels: Labels, spec: Node['spec'] = {}) =>
      nodeFacts({ metadata: { name: 'n9', labels }, spec });
    assert.equal(
      reads.domainsMoved(facts({ [ZONE]: 'a', disk: 'ssd' }), facts({ [ZONE]: 'a' })),
      false,
    );
    assert.equal(reads.domainsMoved(facts({ [ZONE]: 'a' }), facts({ [ZONE]: 'c' })), true);
    assert.equal(reads.domainsMoved(undefined, facts({ [ZONE]: 'c' })), true, 'a node added');
    assert.equal(
      reads.domainsMoved(facts({ [HOSTNAME]: 'n9' }), undefined),
      true,
      'a node without a zone removed: it took any number of pods one per zone would cap',
    );
    assert.equal(
      reads.domainsMoved(facts({ [ZONE]: 'a' }), facts({ [ZONE]: 'a' }, { unschedulable: true })),
      false,
      'no count looked at cordons',
    );
  });

  void test('with node constraints, any label, taint or cordon of a node may matter', () => {
    const c = cluster([]);
    const pinned = {
      ...target(web, [spread('spread', ZONE, 'Required')], 2),
      constraints: { nodeSelector: { disk: 'ssd' } },
    };
    const { unsatisfiable, reads } = c.run([pinned]);
    assert.match(
      unsatisfiable.get(ref('spread'))?.[0] ?? '',
      /only 0 node domain\(s\) carry that label among the nodes its pods may use/,
    );
    const facts = (labels: Labels, spec: Node['spec'] = {}) =>
      nodeFacts({ metadata: { name: 'n9', labels }, spec });
    assert.equal(
      reads.domainsMoved(facts({ [ZONE]: 'a' }), facts({ [ZONE]: 'a', disk: 'ssd' })),
      true,
    );
    assert.equal(
      reads.domainsMoved(facts({ [ZONE]: 'a' }), facts({ [ZONE]: 'a' }, { unschedulable: true })),
      true,
    );
  });
});

void describe('feasibility: domains among the nodes a workload may use', () => {
  const web = deployment('web', { app: 'web' });
  const zone = (name: string, z: string, labels: Labels = {}, spec: Node['spec'] = {}): Node => ({
    metadata: { name, labels: { [HOSTNAME]: name, [ZONE]: z, ...labels } },
    spec,
  });
  /** Three zones, but only zones a and b have an ssd node; zone c's node is tainted. */
  const nodes: Node[] = [
    zone('a1', 'a', { disk: 'ssd' }),
    zone('b1', 'b', { disk: 'ssd' }),
    zone('b2', 'b'),
    zone('c1', 'c', {}, { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }),
    zone('c2', 'c', {}, { unschedulable: true }),
  ];
  const run = (t: FeasibilityTarget) => {
    const index = buildIndex(snapshotOf({ nodes, namespaces: [namespace(NS)], pods: [] }), []);
    return unsatisfiablePolicies([t], index, nodes.map(nodeFacts), (ns) =>
      index.namespaceLabels(ns),
    ).get(ref('spread'));
  };
  const spreadZones = (replicas: number, constraints: FeasibilityTarget['constraints']) => ({
    ...target(web, [spread('spread', ZONE, 'Required')], replicas),
    ...(constraints === undefined ? {} : { constraints }),
  });

  void test('a tainted zone and a cordoned node are not domains for a pod that does not tolerate them', () => {
    assert.match(run(spreadZones(3, {}))?.[0] ?? '', /only 2 node domain/);
    assert.equal(run(spreadZones(2, {})), undefined);
  });
  void test('a toleration brings the tainted zone back', () => {
    const tolerations = [
      { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
    ];
    assert.equal(run(spreadZones(3, { tolerations })), undefined);
  });
  void test('a nodeSelector narrows the zones to those of its nodes', () => {
    assert.equal(run(spreadZones(2, { nodeSelector: { disk: 'ssd' } })), undefined);
    assert.match(run(spreadZones(3, { nodeSelector: { disk: 'ssd' } }))?.[0] ?? '', /only 2 /);
  });
  void test('required node affinity of the template narrows them too', () => {
    const nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'DoesNotExist' }] }],
      },
    };
    assert.match(run(spreadZones(2, { nodeAffinity }))?.[0] ?? '', /only 1 node domain/);
  });
  void test("an Enforce policy's required node affinity counts, as it will be injected", () => {
    const pinning = compiled('spread', {
      targets: { selector: { matchLabels: { app: 'web' } } },
      spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
            ],
          },
        },
      },
    });
    assert.match(
      run({ ...target(web, [pinning], 3), constraints: {} })?.[0] ?? '',
      /only 2 node domain/,
    );
  });
});

void describe("simulatedCluster: the scheduler model's view of the running pods", () => {
  const web = deployment('web', { app: 'web' });
  const db = deployment('db', { app: 'db' });
  const cache = deployment('cache', { app: 'cache' });
  const nodes = zoned();
  const index = buildIndex(
    snapshotOf({
      nodes,
      namespaces: [namespace(NS)],
      pods: [
        pod('web-0', { ns: NS, labels: { app: 'web' }, node: 'n0' }),
        pod('db-0', { ns: NS, labels: { app: 'db' }, node: 'n1' }),
        pod('cache-0', { ns: NS, labels: { app: 'cache' }, node: 'n2' }),
        pod('bare', { ns: NS, labels: { app: 'bare' }, node: 'n3' }),
      ],
    }),
    [],
  );
  const webNearDb = resolveTerm(
    term(labelsIn({ app: 'db' }), ZONE),
    { namespace: NS, labels: {} },
    'f',
  );
  const model = simulatedCluster(
    index,
    nodes.map(nodeFacts),
    [web, db, cache],
    (ns) => index.namespaceLabels(ns),
    new Set([workloadKey(web), workloadKey(db)]),
    [webNearDb],
  );
  const held = (key: string) => {
    const p = model.get(key);
    return p && { owner: p.owner, ghost: p.ghost === true, anti: p.antiAffinity.length };
  };

  void test('a pod of a workload placed anew that an affinity term selects is held once, as a ghost', () => {
    assert.deepEqual(held(`${NS}/db-0`), { owner: workloadKey(db), ghost: true, anti: 0 });
  });

  void test('one no affinity term selects is left out: a ghost provides for affinity only', () => {
    assert.equal(held(`${NS}/web-0`), undefined);
  });

  void test('pods of workloads that stay, and pods of no workload, are held as they run', () => {
    assert.deepEqual(held(`${NS}/cache-0`), { owner: workloadKey(cache), ghost: false, anti: 0 });
    assert.deepEqual(held(`${NS}/bare`), { owner: undefined, ghost: false, anti: 0 });
  });
});
