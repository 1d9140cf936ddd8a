import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Labels, Pod } from '../../../src/api/core.ts';
import type { PlacementPolicy, PlacementPolicySpec } from '../../../src/api/policy.ts';
import {
  auditSnapshot,
  compareViolations,
  compileAuditPolicies,
  compilePolicy,
  policyMayTarget,
  policyTargets,
  resolveWorkload,
  SERVER_ADDED_POD_LABELS,
  WorkloadLookup,
  workloadOfPod,
  workloadResolver,
  type CompiledPolicy,
  type WorkloadObject,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  ZONE,
  audit,
  clusterPolicy,
  exprs,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  nodeInZone,
  pod,
  replicaSetOwner,
  snapshotOf,
  sortTuples,
  term,
  tuplesOf,
  type Cluster,
  type PodOptions,
  type Tuple,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREFERRED = 'preferredDuringSchedulingIgnoredDuringExecution';

/** Input as it comes from a file or the API server: typed fields may hold anything. */
const untyped = (spec: Record<string, unknown>): PlacementPolicySpec => spec;

function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

void describe('compilePolicy validation', () => {
  const cases: {
    name: string;
    policy: PlacementPolicy;
    want: { object: string; field: string; problem: RegExp }[];
  }[] = [
    {
      name: 'unknown selector operator in an affinity term',
      policy: namespacedPolicy('shop', 'spread-web', {
        affinity: {
          podAntiAffinity: {
            [REQUIRED]: [term(exprs(['app', 'Inn', ['web']]), HOSTNAME)],
          },
        },
      }),
      want: [
        {
          object: 'PlacementPolicy shop/spread-web',
          field: `spec.affinity.podAntiAffinity.${REQUIRED}[0].labelSelector.matchExpressions[0].operator`,
          problem: /"Inn" is not one of In, NotIn, Exists, DoesNotExist/,
        },
      ],
    },
    {
      name: 'unknown operator in the target selector',
      policy: clusterPolicy('all', { targets: { selector: exprs(['app', 'Equals', ['x']]) } }),
      want: [
        {
          object: 'ClusterPlacementPolicy all',
          field: 'spec.targets.selector.matchExpressions[0].operator',
          problem: /"Equals" is not one of/,
        },
      ],
    },
    {
      name: 'preferred weight 0 and 101',
      policy: clusterPolicy('weights', {
        affinity: {
          podAffinity: {
            [PREFERRED]: [
              { weight: 0, podAffinityTerm: term(labelsIn({ app: 'db' }), HOSTNAME) },
              { weight: 101, podAffinityTerm: term(labelsIn({ app: 'db' }), HOSTNAME) },
              { weight: 100, podAffinityTerm: term(labelsIn({ app: 'db' }), HOSTNAME) },
            ],
          },
        },
      }),
      want: [
        {
          object: 'ClusterPlacementPolicy weights',
          field: `spec.affinity.podAffinity.${PREFERRED}[0].weight`,
          problem: /0 is not an integer in 1\.\.100/,
        },
        {
          object: 'ClusterPlacementPolicy weights',
          field: `spec.affinity.podAffinity.${PREFERRED}[1].weight`,
          problem: /101 is not an integer in 1\.\.100/,
        },
      ],
    },
    {
      name: 'spreadAcross weight 0 and 101',
      policy: clusterPolicy('spread', {
        spreadAcross: [
          { topologyKey: HOSTNAME, weight: 0 },
          { topologyKey: ZONE, weight: 101 },
        ],
      }),
      want: [
        {
          object: 'ClusterPlacementPolicy spread',
          field: 'spec.spreadAcross[0].weight',
          problem: /0 is not an integer in 1\.\.100/,
        },
        {
          object: 'ClusterPlacementPolicy spread',
          field: 'spec.spreadAcross[1].weight',
          problem: /101 is not an integer/,
        },
      ],
    },
    {
      name: 'empty topologyKey in a term and in spreadAcross',
      policy: namespacedPolicy('shop', 'keys', {
        affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'db' }), '')] } },
        spreadAcross: [{ topologyKey: '' }],
      }),
      want: [
        {
          object: 'PlacementPolicy shop/keys',
          field: `spec.affinity.podAffinity.${REQUIRED}[0].topologyKey`,
          problem: /must not be empty/,
        },
        {
          object: 'PlacementPolicy shop/keys',
          field: 'spec.spreadAcross[0].topologyKey',
          problem: /must not be empty/,
        },
      ],
    },
    {
      name: 'namespaceSelector on a namespaced PlacementPolicy',
      policy: namespacedPolicy('shop', 'reach', { targets: { namespaceSelector: {} } }),
      want: [
        {
          object: 'PlacementPolicy shop/reach',
          field: 'spec.targets.namespaceSelector',
          problem: /is not allowed on a namespaced PlacementPolicy/,
        },
      ],
    },
    {
      name: 'namespaces on a namespaced PlacementPolicy',
      policy: namespacedPolicy('shop', 'reach', { targets: { namespaces: ['other'] } }),
      want: [
        {
          object: 'PlacementPolicy shop/reach',
          field: 'spec.targets.namespaces',
          problem: /is not allowed on a namespaced PlacementPolicy/,
        },
      ],
    },
    {
      name: 'unknown target kind',
      policy: clusterPolicy('kinds', { targets: { kinds: ['Deployment', 'Deploymnet'] } }),
      want: [
        {
          object: 'ClusterPlacementPolicy kinds',
          field: 'spec.targets.kinds[1]',
          problem:
            /"Deploymnet" is not one of Deployment, StatefulSet, ReplicaSet, DaemonSet, CronJob, Job, Pod/,
        },
      ],
    },
    {
      name: 'bad mode',
      policy: clusterPolicy('mode', untyped({ mode: 'Enforcing' })),
      want: [
        {
          object: 'ClusterPlacementPolicy mode',
          field: 'spec.mode',
          problem: /"Enforcing" is not one of Enforce, Audit/,
        },
      ],
    },
    {
      name: 'bad spreadAcross mode',
      policy: clusterPolicy(
        'spread-mode',
        untyped({ spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Strict' }] }),
      ),
      want: [
        {
          object: 'ClusterPlacementPolicy spread-mode',
          field: 'spec.spreadAcross[0].mode',
          problem: /"Strict" is not one of Required, Preferred/,
        },
      ],
    },
    {
      name: 'bad spreadAcross constraint',
      policy: clusterPolicy(
        'spread-constraint',
        untyped({ spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpreadConstraint' }] }),
      ),
      want: [
        {
          object: 'ClusterPlacementPolicy spread-constraint',
          field: 'spec.spreadAcross[0].constraint',
          problem: /"TopologySpreadConstraint" is not one of PodAntiAffinity, TopologySpread/,
        },
      ],
    },
    {
      name: 'maxSkew below 1',
      policy: namespacedPolicy('shop', 'skew', {
        spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', maxSkew: 0 }],
      }),
      want: [
        {
          object: 'PlacementPolicy shop/skew',
          field: 'spec.spreadAcross[0].maxSkew',
          problem: /0 is not an integer of 1 or more/,
        },
      ],
    },
    {
      name: 'maxSkew with anti-affinity',
      policy: namespacedPolicy('shop', 'skew', {
        spreadAcross: [{ topologyKey: ZONE, maxSkew: 2 }],
      }),
      want: [
        {
          object: 'PlacementPolicy shop/skew',
          field: 'spec.spreadAcross[0].maxSkew',
          problem: /is allowed with constraint TopologySpread only/,
        },
      ],
    },
    {
      name: 'minDomains with mode Preferred (ScheduleAnyway)',
      policy: clusterPolicy('domains', {
        spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', minDomains: 3 }],
      }),
      want: [
        {
          object: 'ClusterPlacementPolicy domains',
          field: 'spec.spreadAcross[0].minDomains',
          problem: /is allowed with constraint TopologySpread and mode Required only/,
        },
      ],
    },
    {
      name: 'minDomains not a whole number',
      policy: clusterPolicy('domains', {
        spreadAcross: [
          { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required', minDomains: 1.5 },
        ],
      }),
      want: [
        {
          object: 'ClusterPlacementPolicy domains',
          field: 'spec.spreadAcross[0].minDomains',
          problem: /1.5 is not an integer of 1 or more/,
        },
      ],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const result = compilePolicy(c.policy);
      assert.equal(result.kind, 'invalid');
      assert.deepEqual(
        result.errors.map((e) => ({ object: e.object, field: e.field })),
        c.want.map(({ object, field }) => ({ object, field })),
      );
      result.errors.forEach((e, i) => {
        const want = c.want[i];
        assert.ok(want !== undefined);
        assert.match(e.problem, want.problem);
        assert.ok(e.message.startsWith(`${want.object}: ${want.field}: `), e.message);
      });
    });
  }

  void test('a valid policy with every field compiles', () => {
    const result = compilePolicy(
      clusterPolicy('full', {
        mode: 'Audit',
        priority: 5,
        targets: {
          kinds: ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'CronJob', 'Job', 'Pod'],
          selector: labelsIn({ app: 'web' }),
          namespaceSelector: labelsIn({ env: 'prod' }),
          namespaces: ['shop'],
        },
        affinity: {
          podAffinity: {
            [REQUIRED]: [term(labelsIn({ app: 'db' }), HOSTNAME, { namespaceSelector: {} })],
            [PREFERRED]: [{ weight: 1, podAffinityTerm: term(labelsIn({ app: 'db' }), ZONE) }],
          },
          podAntiAffinity: { [REQUIRED]: [term(exprs(['app', 'Exists']), HOSTNAME)] },
        },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Required', weight: 100 }],
        audit: { enabled: true, remediation: 'None' },
      }),
    );
    assert.equal(result.kind, 'ok');
  });
});

void describe('compilePolicy defaults', () => {
  void test('kinds Deployment and StatefulSet, priority 0, mode Enforce, audit enabled', () => {
    const p = compiled(namespacedPolicy('shop', 'bare', {}));
    assert.deepEqual([...p.kinds].sort(), ['Deployment', 'StatefulSet']);
    assert.equal(p.priority, 0);
    assert.equal(p.mode, 'Enforce');
    assert.equal(p.auditEnabled, true);
    assert.equal(p.ref, 'PlacementPolicy/shop/bare');
  });

  void test('spreadAcross defaults to mode Preferred and weight 100', () => {
    const p = compiled(clusterPolicy('spread', { spreadAcross: [{ topologyKey: ZONE }] }));
    assert.deepEqual(p.spread, [
      {
        topologyKey: ZONE,
        mode: 'Preferred',
        weight: 100,
        constraint: 'PodAntiAffinity',
        maxSkew: 1,
      },
    ]);
    assert.equal(p.ref, 'ClusterPlacementPolicy/spread');
  });

  void test('spreadAcross TopologySpread: maxSkew 1 unless given, minDomains only when given', () => {
    const p = compiled(
      clusterPolicy('spread', {
        spreadAcross: [
          { topologyKey: ZONE, constraint: 'TopologySpread' },
          {
            topologyKey: HOSTNAME,
            constraint: 'TopologySpread',
            mode: 'Required',
            maxSkew: 2,
            minDomains: 3,
          },
        ],
      }),
    );
    assert.deepEqual(p.spread, [
      {
        topologyKey: ZONE,
        mode: 'Preferred',
        weight: 100,
        constraint: 'TopologySpread',
        maxSkew: 1,
      },
      {
        topologyKey: HOSTNAME,
        mode: 'Required',
        weight: 100,
        constraint: 'TopologySpread',
        maxSkew: 2,
        minDomains: 3,
      },
    ]);
  });
});

void describe('policyTargets', () => {
  const deployment = (ns: string, labels: Labels, kind = 'Deployment'): WorkloadRef => ({
    kind,
    namespace: ns,
    name: 'web',
    templateLabels: labels,
    podSelector: { matchLabels: labels },
  });
  const cases: {
    name: string;
    policy: PlacementPolicy;
    workload: WorkloadRef;
    namespaceLabels?: Labels;
    want: boolean;
  }[] = [
    {
      name: 'a namespaced policy targets its own namespace',
      policy: namespacedPolicy('shop', 'p', { targets: { selector: {} } }),
      workload: deployment('shop', { app: 'web' }),
      want: true,
    },
    {
      name: 'a namespaced policy never targets another namespace, whatever its selector',
      policy: namespacedPolicy('shop', 'p', { targets: { selector: {} } }),
      workload: deployment('other', { app: 'web' }),
      want: false,
    },
    {
      name: 'a namespaced policy without a selector targets every workload of its namespace',
      policy: namespacedPolicy('shop', 'p', {}),
      workload: deployment('shop', {}),
      want: true,
    },
    {
      name: 'the selector is matched against the template labels',
      policy: namespacedPolicy('shop', 'p', { targets: { selector: labelsIn({ app: 'db' }) } }),
      workload: deployment('shop', { app: 'web' }),
      want: false,
    },
    {
      name: 'default kinds do not include DaemonSet',
      policy: namespacedPolicy('shop', 'p', {}),
      workload: deployment('shop', { app: 'web' }, 'DaemonSet'),
      want: false,
    },
    {
      name: 'default kinds include StatefulSet',
      policy: namespacedPolicy('shop', 'p', {}),
      workload: deployment('shop', { app: 'web' }, 'StatefulSet'),
      want: true,
    },
    {
      name: 'listed kinds only',
      policy: namespacedPolicy('shop', 'p', { targets: { kinds: ['Pod'] } }),
      workload: deployment('shop', { app: 'web' }, 'Pod'),
      want: true,
    },
    {
      name: 'a cluster policy without namespaces or namespaceSelector targets every namespace',
      policy: clusterPolicy('c', {}),
      workload: deployment('anywhere', { app: 'web' }),
      want: true,
    },
    {
      name: 'a cluster policy with namespaces targets those namespaces',
      policy: clusterPolicy('c', { targets: { namespaces: ['shop'] } }),
      workload: deployment('shop', { app: 'web' }),
      want: true,
    },
    {
      name: 'a cluster policy with namespaces does not target other namespaces',
      policy: clusterPolicy('c', { targets: { namespaces: ['shop'] } }),
      workload: deployment('other', { app: 'web' }),
      want: false,
    },
    {
      name: 'a cluster policy with a namespaceSelector targets namespaces whose labels match',
      policy: clusterPolicy('c', { targets: { namespaceSelector: labelsIn({ env: 'prod' }) } }),
      workload: deployment('shop', { app: 'web' }),
      namespaceLabels: { env: 'prod' },
      want: true,
    },
    {
      name: 'a cluster policy with a namespaceSelector skips namespaces whose labels do not match',
      policy: clusterPolicy('c', { targets: { namespaceSelector: labelsIn({ env: 'prod' }) } }),
      workload: deployment('shop', { app: 'web' }),
      namespaceLabels: { env: 'dev' },
      want: false,
    },
    {
      name: 'namespaces and namespaceSelector together target their union',
      policy: clusterPolicy('c', {
        targets: { namespaces: ['shop'], namespaceSelector: labelsIn({ env: 'prod' }) },
      }),
      workload: deployment('shop', { app: 'web' }),
      namespaceLabels: { env: 'dev' },
      want: true,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.equal(policyTargets(compiled(c.policy), c.workload, c.namespaceLabels ?? {}), c.want);
    });
  }
});

void describe('policy order', () => {
  void test('highest priority first, ties by reference; disabled audits are left out', () => {
    const { ok, errors } = compileAuditPolicies([
      clusterPolicy('b', { priority: 1 }),
      namespacedPolicy('shop', 'z', { priority: 10 }),
      clusterPolicy('a', { priority: 1 }),
      namespacedPolicy('shop', 'low', {}),
      clusterPolicy('off', { priority: 100, audit: { enabled: false } }),
    ]);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      ok.map((p) => p.ref),
      [
        'PlacementPolicy/shop/z',
        'ClusterPlacementPolicy/a',
        'ClusterPlacementPolicy/b',
        'PlacementPolicy/shop/low',
      ],
    );
  });
});

// ---- audits with policies ----

const SHOP = [namespace('shop', { env: 'prod' }), namespace('dev', { env: 'dev' })];
const TWO_NODES = [node('n1'), node('n2')];

/** A pod of Deployment `deploy` (ReplicaSet `deploy-5d8f7c6b9`), as the API serves it. */
function deploymentPod(
  deploy: string,
  suffix: string,
  nodeName: string,
  labels: Labels,
  extra: Omit<PodOptions, 'labels' | 'node' | 'owner'> = {},
): Pod {
  return pod(`${deploy}-5d8f7c6b9-${suffix}`, {
    ns: 'shop',
    ...extra,
    node: nodeName,
    labels: { ...labels, 'pod-template-hash': '5d8f7c6b9' },
    owner: replicaSetOwner(`${deploy}-5d8f7c6b9`),
  });
}

const by = (source: string) => ({
  anti: (p: string, t: number): Tuple => ({ pod: p, rule: 'podAntiAffinity', source, term: t }),
  symmetric: (p: string, t: number): Tuple => ({
    pod: p,
    rule: 'symmetricAntiAffinity',
    source,
    term: t,
  }),
  affinity: (p: string, t: number): Tuple => ({ pod: p, rule: 'podAffinity', source, term: t }),
  /** Pods kept apart by the source's first anti-affinity term, found together. */
  together: (...pods: string[]): Tuple[] =>
    pods.flatMap((p) => [
      { pod: p, rule: 'podAntiAffinity', source, term: 0 },
      { pod: p, rule: 'symmetricAntiAffinity', source, term: 0 },
    ]),
});

/** The two pods of Deployment web, on these nodes. */
const webPods = (
  first: string,
  second: string,
  extra: Parameters<typeof deploymentPod>[4] = {},
) => [
  deploymentPod('web', 'aaaaa', first, { app: 'web' }, extra),
  deploymentPod('web', 'bbbbb', second, { app: 'web' }, extra),
];
const [WEB_A, WEB_B] = ['shop/web-5d8f7c6b9-aaaaa', 'shop/web-5d8f7c6b9-bbbbb'] as const;
/** The pod's own term that keeps web pods on separate nodes. */
const KEEP_WEB_APART = { anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] };

const SPREAD_WEB = clusterPolicy('spread-web', {
  targets: { selector: labelsIn({ app: 'web' }) },
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
});
const spread = by('ClusterPlacementPolicy/spread-web');
const own = by('pod');

void describe('audit with policies', () => {
  const cases: {
    name: string;
    cluster: Cluster;
    want: Tuple[];
  }[] = [
    {
      name: 'a required spread applies to pods that do not carry it yet (pending)',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [SPREAD_WEB],
        pods: [...webPods('n1', 'n1')],
      },
      want: [...spread.together(WEB_A, WEB_B)],
    },
    {
      name: 'a required spread that holds reports nothing',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [SPREAD_WEB],
        pods: [...webPods('n1', 'n2')],
      },
      want: [],
    },
    {
      name: 'a pod that already carries the identical injected term reports it once, as the policy’s',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [SPREAD_WEB],
        pods: [...webPods('n1', 'n1', KEEP_WEB_APART)],
      },
      want: [...spread.together(WEB_A, WEB_B)],
    },
    {
      name: 'a pod term that differs from the policy term is judged as well, as the pod’s',
      cluster: {
        nodes: [nodeInZone('n1', 'a'), nodeInZone('n2', 'a')],
        namespaces: SHOP,
        policies: [
          clusterPolicy('zones', {
            targets: { selector: labelsIn({ app: 'web' }) },
            affinity: { podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'web' }), ZONE)] } },
          }),
        ],
        pods: [...webPods('n1', 'n1', KEEP_WEB_APART)],
      },
      want: [
        ...own.together(WEB_A, WEB_B),
        ...by('ClusterPlacementPolicy/zones').together(WEB_A, WEB_B),
      ],
    },
    {
      name: 'a PlacementPolicy’s affinity applies in its own namespace only',
      cluster: {
        nodes: TWO_NODES,
        namespaces: [...SHOP, namespace('other')],
        policies: [
          namespacedPolicy('shop', 'next-to-store', {
            targets: { selector: labelsIn({ app: 'web-store' }) },
            affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'store' }), HOSTNAME)] } },
          }),
        ],
        pods: [
          deploymentPod('store', 'aaaaa', 'n1', { app: 'store' }),
          deploymentPod('web-store', 'aaaaa', 'n2', { app: 'web-store' }),
          pod('web-store-5d8f7c6b9-bbbbb', {
            ns: 'other',
            node: 'n2',
            labels: { app: 'web-store', 'pod-template-hash': '5d8f7c6b9' },
            owner: replicaSetOwner('web-store-5d8f7c6b9'),
          }),
        ],
      },
      want: [
        by('PlacementPolicy/shop/next-to-store').affinity('shop/web-store-5d8f7c6b9-aaaaa', 0),
      ],
    },
    {
      name: 'a ClusterPlacementPolicy reaches the namespaces its namespaceSelector picks',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [
          clusterPolicy('prod-spread', {
            targets: { namespaceSelector: labelsIn({ env: 'prod' }) },
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          }),
        ],
        pods: [
          ...webPods('n1', 'n1'),
          pod('web-5d8f7c6b9-ccccc', {
            ns: 'dev',
            node: 'n1',
            labels: { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
            owner: replicaSetOwner('web-5d8f7c6b9'),
          }),
          pod('web-5d8f7c6b9-ddddd', {
            ns: 'dev',
            node: 'n1',
            labels: { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
            owner: replicaSetOwner('web-5d8f7c6b9'),
          }),
        ],
      },
      want: [
        by('ClusterPlacementPolicy/prod-spread').anti('shop/web-5d8f7c6b9-aaaaa', 0),
        by('ClusterPlacementPolicy/prod-spread').symmetric('shop/web-5d8f7c6b9-aaaaa', 0),
        by('ClusterPlacementPolicy/prod-spread').anti('shop/web-5d8f7c6b9-bbbbb', 0),
        by('ClusterPlacementPolicy/prod-spread').symmetric('shop/web-5d8f7c6b9-bbbbb', 0),
      ],
    },
    {
      name: 'spread terms select the workload’s own pods only',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [
          clusterPolicy('spread-all', {
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          }),
        ],
        pods: [
          deploymentPod('web', 'aaaaa', 'n1', { app: 'web' }),
          deploymentPod('api', 'aaaaa', 'n1', { app: 'api' }),
        ],
      },
      want: [],
    },
    {
      name: 'spread term indexes follow the policy’s own required anti-affinity terms',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [
          clusterPolicy('both', {
            affinity: {
              podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'db' }), HOSTNAME)] },
            },
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          }),
        ],
        pods: [...webPods('n1', 'n1')],
      },
      want: [
        by('ClusterPlacementPolicy/both').anti('shop/web-5d8f7c6b9-aaaaa', 1),
        by('ClusterPlacementPolicy/both').symmetric('shop/web-5d8f7c6b9-aaaaa', 1),
        by('ClusterPlacementPolicy/both').anti('shop/web-5d8f7c6b9-bbbbb', 1),
        by('ClusterPlacementPolicy/both').symmetric('shop/web-5d8f7c6b9-bbbbb', 1),
      ],
    },
    {
      name: 'a preferred spread (the default mode) never makes a violation',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [clusterPolicy('soft', { spreadAcross: [{ topologyKey: HOSTNAME }] })],
        pods: [...webPods('n1', 'n1')],
      },
      want: [],
    },
    {
      name: 'Audit mode policies are audited like Enforce ones',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [{ ...SPREAD_WEB, spec: { ...SPREAD_WEB.spec, mode: 'Audit' } }],
        pods: [...webPods('n1', 'n1')],
      },
      want: [...spread.together(WEB_A, WEB_B)],
    },
    {
      name: 'a policy with audit disabled is not judged',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [{ ...SPREAD_WEB, spec: { ...SPREAD_WEB.spec, audit: { enabled: false } } }],
        pods: [...webPods('n1', 'n1')],
      },
      want: [],
    },
    {
      name: 'default kinds do not reach a bare Pod',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [SPREAD_WEB],
        pods: [
          pod('web-a', { ns: 'shop', node: 'n1', labels: { app: 'web' } }),
          pod('web-b', { ns: 'shop', node: 'n1', labels: { app: 'web' } }),
        ],
      },
      want: [],
    },
    {
      name: 'kind Pod reaches bare Pods, spread over the pod’s own labels',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [
          clusterPolicy('pods', {
            targets: { kinds: ['Pod'], selector: labelsIn({ app: 'web' }) },
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          }),
        ],
        pods: [
          pod('web-a', { ns: 'shop', node: 'n1', labels: { app: 'web' } }),
          pod('web-b', { ns: 'shop', node: 'n1', labels: { app: 'web' } }),
        ],
      },
      want: [
        by('ClusterPlacementPolicy/pods').anti('shop/web-a', 0),
        by('ClusterPlacementPolicy/pods').symmetric('shop/web-a', 0),
        by('ClusterPlacementPolicy/pods').anti('shop/web-b', 0),
        by('ClusterPlacementPolicy/pods').symmetric('shop/web-b', 0),
      ],
    },
    {
      name: 'policy and pod violations are reported side by side',
      cluster: {
        nodes: TWO_NODES,
        namespaces: SHOP,
        policies: [SPREAD_WEB],
        pods: [
          deploymentPod(
            'web',
            'aaaaa',
            'n1',
            { app: 'web' },
            {
              affinity: [term(labelsIn({ app: 'db' }), HOSTNAME)],
            },
          ),
          deploymentPod('web', 'bbbbb', 'n1', { app: 'web' }),
        ],
      },
      want: [own.affinity('shop/web-5d8f7c6b9-aaaaa', 0), ...spread.together(WEB_A, WEB_B)],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const report = audit(c.cluster);
      assert.deepEqual(tuplesOf(report.violations), sortTuples(c.want));
      assert.deepEqual([...report.violations].sort(compareViolations), report.violations);
    });
  }

  void test('an invalid policy makes the audit invalid, naming the policy and the field', () => {
    const result = auditSnapshot(
      snapshotOf({
        nodes: TWO_NODES,
        policies: [namespacedPolicy('shop', 'bad', { targets: { namespaceSelector: {} } })],
      }),
    );
    assert.equal(result.kind, 'invalid');
    assert.deepEqual(
      result.errors.map((e) => e.message),
      [
        'PlacementPolicy shop/bad: spec.targets.namespaceSelector: is not allowed on a namespaced PlacementPolicy',
      ],
    );
  });

  void test('a pod term that cannot be read makes the audit invalid, naming the pod and the field', () => {
    const result = auditSnapshot(
      snapshotOf({
        nodes: TWO_NODES,
        pods: [
          pod('web', {
            ns: 'shop',
            node: 'n1',
            anti: [term(exprs(['app', 'Inn', ['web']]), HOSTNAME)],
          }),
        ],
      }),
    );
    assert.equal(result.kind, 'invalid');
    assert.deepEqual(
      result.errors.map((e) => [e.object, e.field]),
      [
        [
          'Pod shop/web',
          `spec.affinity.podAntiAffinity.${REQUIRED}[0].labelSelector.matchExpressions[0].operator`,
        ],
      ],
    );
  });
});

// ---- workload resolution ----

void describe('workloadOfPod', () => {
  const rsPod = pod('web-5d8f7c6b9-aaaaa', {
    ns: 'shop',
    labels: { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
    owner: replicaSetOwner('web-5d8f7c6b9'),
  });
  const deploymentObject: WorkloadObject = {
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web', team: 'shop' } } },
    },
  };
  const replicaSetObject: WorkloadObject = {
    kind: 'ReplicaSet',
    metadata: {
      name: 'web-5d8f7c6b9',
      namespace: 'shop',
      ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }],
    },
  };
  const jobPod = pod('nightly-29000000-abcde', {
    ns: 'shop',
    labels: {
      app: 'report',
      'job-name': 'nightly-29000000',
      'batch.kubernetes.io/job-name': 'nightly-29000000',
    },
    owner: { kind: 'Job', name: 'nightly-29000000', controller: true },
  });
  const cases: {
    name: string;
    pod: Pod;
    objects: WorkloadObject[];
    want: WorkloadRef;
  }[] = [
    {
      name: 'ReplicaSet with pod-template-hash suffix, no objects: the Deployment, from the pod labels',
      pod: rsPod,
      objects: [],
      want: {
        kind: 'Deployment',
        namespace: 'shop',
        name: 'web',
        templateLabels: { app: 'web' },
        podSelector: { matchLabels: { app: 'web' } },
      },
    },
    {
      name: 'ReplicaSet and Deployment objects known: the Deployment as written',
      pod: rsPod,
      objects: [replicaSetObject, deploymentObject],
      want: {
        kind: 'Deployment',
        namespace: 'shop',
        name: 'web',
        templateLabels: { app: 'web', team: 'shop' },
        podSelector: { matchLabels: { app: 'web' } },
      },
    },
    {
      name: 'ReplicaSet object known, its Deployment not: the Deployment, from the pod labels',
      pod: rsPod,
      objects: [replicaSetObject],
      want: {
        kind: 'Deployment',
        namespace: 'shop',
        name: 'web',
        templateLabels: { app: 'web' },
        podSelector: { matchLabels: { app: 'web' } },
      },
    },
    {
      name: 'a ReplicaSet without an owner is the workload itself',
      pod: rsPod,
      objects: [
        {
          kind: 'ReplicaSet',
          metadata: { name: 'web-5d8f7c6b9', namespace: 'shop' },
          spec: {
            selector: { matchLabels: { app: 'web', rs: 'own' } },
            template: { metadata: { labels: { app: 'web', rs: 'own' } } },
          },
        },
      ],
      want: {
        kind: 'ReplicaSet',
        namespace: 'shop',
        name: 'web-5d8f7c6b9',
        templateLabels: { app: 'web', rs: 'own' },
        podSelector: { matchLabels: { app: 'web', rs: 'own' } },
      },
    },
    {
      name: 'a ReplicaSet whose name does not end in the hash stays a ReplicaSet',
      pod: pod('cache-x1', {
        ns: 'shop',
        labels: { app: 'cache' },
        owner: replicaSetOwner('cache'),
      }),
      objects: [],
      want: {
        kind: 'ReplicaSet',
        namespace: 'shop',
        name: 'cache',
        templateLabels: { app: 'cache' },
        podSelector: { matchLabels: { app: 'cache' } },
      },
    },
    {
      name: 'Job owned by a CronJob: the CronJob, with its job template labels',
      pod: jobPod,
      objects: [
        {
          kind: 'Job',
          metadata: {
            name: 'nightly-29000000',
            namespace: 'shop',
            ownerReferences: [{ kind: 'CronJob', name: 'nightly', controller: true }],
          },
        },
        {
          kind: 'CronJob',
          metadata: { name: 'nightly', namespace: 'shop' },
          spec: {
            jobTemplate: { spec: { template: { metadata: { labels: { app: 'report' } } } } },
          },
        },
      ],
      want: {
        kind: 'CronJob',
        namespace: 'shop',
        name: 'nightly',
        templateLabels: { app: 'report' },
        podSelector: { matchLabels: { app: 'report' } },
      },
    },
    {
      name: 'Job without its object: the Job, from the pod labels less the generated ones',
      pod: jobPod,
      objects: [],
      want: {
        kind: 'Job',
        namespace: 'shop',
        name: 'nightly-29000000',
        templateLabels: { app: 'report' },
        podSelector: { matchLabels: { app: 'report' } },
      },
    },
    {
      name: 'StatefulSet pod: generated labels are not template labels',
      pod: pod('db-0', {
        ns: 'shop',
        labels: {
          app: 'db',
          'controller-revision-hash': 'db-6c7d8',
          'statefulset.kubernetes.io/pod-name': 'db-0',
          'apps.kubernetes.io/pod-index': '0',
        },
        owner: { kind: 'StatefulSet', name: 'db', controller: true },
      }),
      objects: [],
      want: {
        kind: 'StatefulSet',
        namespace: 'shop',
        name: 'db',
        templateLabels: { app: 'db' },
        podSelector: { matchLabels: { app: 'db' } },
      },
    },
    {
      name: 'a bare Pod is its own workload',
      pod: pod('debug', { ns: 'shop', labels: { app: 'debug' } }),
      objects: [],
      want: {
        kind: 'Pod',
        namespace: 'shop',
        name: 'debug',
        templateLabels: { app: 'debug' },
        podSelector: { matchLabels: { app: 'debug' } },
      },
    },
    {
      name: 'a pod without owner references is a bare Pod, whatever its labels',
      pod: pod('web-5d8f7c6b9-aaaaa', {
        ns: 'shop',
        labels: { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
      }),
      objects: [],
      want: {
        kind: 'Pod',
        namespace: 'shop',
        name: 'web-5d8f7c6b9-aaaaa',
        templateLabels: { app: 'web' },
        podSelector: { matchLabels: { app: 'web' } },
      },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.deepEqual(workloadOfPod(c.pod, new WorkloadLookup(c.objects)), c.want);
    });
  }

  void test('the controller reference wins over other owner references', () => {
    const p: Pod = {
      ...rsPod,
      metadata: {
        ...rsPod.metadata,
        ownerReferences: [
          { kind: 'ConfigMap', name: 'unrelated' },
          { kind: 'ReplicaSet', name: 'web-5d8f7c6b9', controller: true },
        ],
      },
    };
    assert.equal(workloadOfPod(p, new WorkloadLookup([])).kind, 'Deployment');
  });
});

void test('workloadResolver: a replica after its like gets its resolution; any other pod its own', () => {
  const labels = { app: 'web', 'pod-template-hash': '5d8f7c6b9' };
  const owner = replicaSetOwner('web-5d8f7c6b9');
  const owners = [owner];
  const replica = (name: string, ns = 'shop'): Pod => {
    const p = pod(name, { ns, labels });
    return { ...p, metadata: { ...p.metadata, labels, ownerReferences: owners } };
  };
  const deployment: WorkloadObject = {
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web', team: 'shop' } } },
    },
  };
  const lookup = new WorkloadLookup([deployment]);
  const resolve = workloadResolver(lookup);
  const first = resolve(replica('web-5d8f7c6b9-aaaaa'));
  assert.deepEqual(first, resolveWorkload(replica('web-5d8f7c6b9-aaaaa'), lookup));
  assert.equal(first.exact, true);
  assert.equal(resolve(replica('web-5d8f7c6b9-bbbbb')), first, 'same owners and labels objects');
  // Another namespace, equal but other objects, no owner: each resolved on its own.
  const elsewhere = resolve(replica('web-5d8f7c6b9-ccccc', 'other'));
  assert.notEqual(elsewhere, first);
  assert.deepEqual(elsewhere, resolveWorkload(replica('web-5d8f7c6b9-ccccc', 'other'), lookup));
  assert.equal(elsewhere.exact, false, 'no Deployment web in namespace other');
  const copied = pod('web-5d8f7c6b9-ddddd', { ns: 'shop', labels: { ...labels }, owner });
  assert.deepEqual(resolve(copied), first);
  const loose = [pod('solo-a', { ns: 'shop', labels }), pod('solo-b', { ns: 'shop', labels })];
  assert.deepEqual(
    loose.map((p) => resolve(p).workload.name),
    ['solo-a', 'solo-b'],
    'a pod without owners is its own workload',
  );
});

void describe('resolveWorkload: exact, or which objects are missing', () => {
  const rs = replicaSetOwner('web-5d8f7c6b9');
  const rsPod = pod('web-5d8f7c6b9-aaaaa', {
    ns: 'shop',
    labels: { app: 'web', 'pod-template-hash': '5d8f7c6b9' },
    owner: rs,
  });
  const deployment = (selector: Labels): WorkloadObject => ({
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: selector },
      template: { metadata: { labels: { app: 'web', team: 'shop' } } },
    },
  });
  const ownedRs = (owner: { kind: string; name: string }, name = 'web-5d8f7c6b9') => ({
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'shop',
      ownerReferences: [{ ...owner, controller: true }],
    },
  });
  const jobPod = pod('nightly-1-abcde', {
    ns: 'shop',
    labels: { app: 'report', 'batch.kubernetes.io/job-name': 'nightly-1' },
    owner: { kind: 'Job', name: 'nightly-1', controller: true },
  });
  const ownedBy = (kind: string, name: string) =>
    pod(`${name}-0`, {
      ns: 'shop',
      labels: { app: name },
      owner: { kind, name, controller: true },
    });
  type Want =
    | { exact: true; kind: string; templateLabels: Labels }
    | { exact: false; kind: string; kinds: string[]; missing: string; needs: string[] };
  /** The pod of a ReplicaSet that is not known, named as a Deployment's. */
  const unknownDeployment: Want = {
    exact: false,
    kind: 'Deployment',
    kinds: ['Deployment', 'ReplicaSet'],
    missing: 'ReplicaSet web-5d8f7c6b9',
    needs: ['Deployment', 'ReplicaSet'],
  };
  const cases: { name: string; pod: Pod; objects: WorkloadObject[]; want: Want }[] = [
    {
      name: 'a pod without an owner is its own workload, exactly',
      pod: pod('debug', { ns: 'shop', labels: { app: 'debug' } }),
      objects: [],
      want: { exact: true, kind: 'Pod', templateLabels: { app: 'debug' } },
    },
    {
      name: 'ReplicaSet and Deployment known: exact',
      pod: rsPod,
      objects: [ownedRs({ kind: 'Deployment', name: 'web' }), deployment({ app: 'web' })],
      want: { exact: true, kind: 'Deployment', templateLabels: { app: 'web', team: 'shop' } },
    },
    {
      name: 'ReplicaSet missing, its Deployment known by name and selecting the pod: exact',
      pod: rsPod,
      objects: [deployment({ app: 'web' })],
      want: { exact: true, kind: 'Deployment', templateLabels: { app: 'web', team: 'shop' } },
    },
    {
      name: 'ReplicaSet missing, a Deployment of that name not selecting the pod: not exact',
      pod: rsPod,
      objects: [deployment({ app: 'other' })],
      want: unknownDeployment,
    },
    {
      name: 'ReplicaSet and Deployment missing: a Deployment or a ReplicaSet',
      pod: rsPod,
      objects: [],
      want: unknownDeployment,
    },
    {
      name: 'ReplicaSet known, its Deployment missing: a Deployment',
      pod: rsPod,
      objects: [ownedRs({ kind: 'Deployment', name: 'web' })],
      want: {
        exact: false,
        kind: 'Deployment',
        kinds: ['Deployment'],
        missing: 'Deployment web',
        needs: ['Deployment'],
      },
    },
    {
      name: "a missing ReplicaSet not named after the hash is no Deployment's",
      pod: pod('cache-x1', {
        ns: 'shop',
        labels: { app: 'cache' },
        owner: replicaSetOwner('cache'),
      }),
      objects: [],
      want: {
        exact: false,
        kind: 'ReplicaSet',
        kinds: ['ReplicaSet'],
        missing: 'ReplicaSet cache',
        needs: ['ReplicaSet'],
      },
    },
    {
      name: 'StatefulSet missing',
      pod: ownedBy('StatefulSet', 'db'),
      objects: [],
      want: {
        exact: false,
        kind: 'StatefulSet',
        kinds: ['StatefulSet'],
        missing: 'StatefulSet db',
        needs: ['StatefulSet'],
      },
    },
    {
      name: 'DaemonSet known: exact',
      pod: ownedBy('DaemonSet', 'agent'),
      objects: [
        {
          kind: 'DaemonSet',
          metadata: { name: 'agent', namespace: 'shop' },
          spec: { template: { metadata: { labels: { app: 'agent' } } } },
        },
      ],
      want: { exact: true, kind: 'DaemonSet', templateLabels: { app: 'agent' } },
    },
    {
      name: 'Job missing: a Job or a CronJob',
      pod: jobPod,
      objects: [],
      want: {
        exact: false,
        kind: 'Job',
        kinds: ['Job', 'CronJob'],
        missing: 'Job nightly-1',
        needs: ['Job', 'CronJob'],
      },
    },
    {
      name: 'Job known, its CronJob missing: a CronJob',
      pod: jobPod,
      objects: [
        {
          kind: 'Job',
          metadata: {
            name: 'nightly-1',
            namespace: 'shop',
            ownerReferences: [{ kind: 'CronJob', name: 'nightly', controller: true }],
          },
        },
      ],
      want: {
        exact: false,
        kind: 'CronJob',
        kinds: ['CronJob'],
        missing: 'CronJob nightly',
        needs: ['CronJob'],
      },
    },
    {
      name: 'Job known without an owner: exact, with the template labels the API server gave it',
      pod: jobPod,
      objects: [
        {
          kind: 'Job',
          metadata: { name: 'nightly-1', namespace: 'shop' },
          spec: {
            template: {
              metadata: {
                labels: { app: 'report', 'batch.kubernetes.io/job-name': 'nightly-1' },
              },
            },
          },
        },
      ],
      want: {
        exact: true,
        kind: 'Job',
        templateLabels: { app: 'report', 'batch.kubernetes.io/job-name': 'nightly-1' },
      },
    },
    {
      name: 'an owner of a kind no policy targets is reported missing all the same',
      pod: ownedBy('Rollout', 'canary'),
      objects: [],
      want: {
        exact: false,
        kind: 'Rollout',
        kinds: ['Rollout'],
        missing: 'Rollout canary',
        needs: ['Rollout'],
      },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const r = resolveWorkload(c.pod, new WorkloadLookup(c.objects));
      const got: Want = r.exact
        ? { exact: true, kind: r.workload.kind, templateLabels: r.workload.templateLabels }
        : {
            exact: false,
            kind: r.workload.kind,
            kinds: [...r.kinds],
            missing: `${r.missing.kind} ${r.missing.name}`,
            needs: [...r.needs],
          };
      assert.deepEqual(got, c.want);
      assert.deepEqual(workloadOfPod(c.pod, new WorkloadLookup(c.objects)), r.workload);
    });
  }
});

void describe('a workload guessed from its pod leaves out every label the API server adds', () => {
  // One case per label: controllers' revision and identity labels, and the node's zone and
  // region that PodTopologyLabels copies at binding (1.34+; topology.k8s.io/ in 1.33's alpha).
  const added: Record<string, string> = {
    'pod-template-hash': '5d8f7c6b9',
    'controller-revision-hash': 'db-6c7d8',
    'pod-template-generation': '3',
    'statefulset.kubernetes.io/pod-name': 'db-0',
    'apps.kubernetes.io/pod-index': '0',
    'controller-uid': '0b7c1f9e',
    'job-name': 'nightly-1',
    'batch.kubernetes.io/controller-uid': '0b7c1f9e',
    'batch.kubernetes.io/job-name': 'nightly-1',
    'batch.kubernetes.io/job-completion-index': '0',
    'topology.kubernetes.io/zone': 'zone-a',
    'topology.kubernetes.io/region': 'region-1',
    'topology.k8s.io/zone': 'zone-a',
    'topology.k8s.io/region': 'region-1',
  };
  void test('the table covers SERVER_ADDED_POD_LABELS exactly', () => {
    assert.deepEqual(Object.keys(added).sort(), [...SERVER_ADDED_POD_LABELS].sort());
  });
  const owners = [
    { kind: 'ReplicaSet', name: 'web-5d8f7c6b9', controller: true },
    { kind: 'StatefulSet', name: 'web', controller: true },
    { kind: 'Job', name: 'web', controller: true },
    undefined,
  ];
  for (const [key, value] of Object.entries(added)) {
    void test(key, () => {
      for (const owner of owners) {
        const p = pod('web-0', {
          ns: 'shop',
          labels: { app: 'web', [key]: value },
          ...(owner === undefined ? {} : { owner }),
        });
        const w = workloadOfPod(p, new WorkloadLookup([]));
        assert.deepEqual(w.templateLabels, { app: 'web' }, `owner ${owner?.kind ?? 'none'}`);
        assert.deepEqual(w.podSelector, { matchLabels: { app: 'web' } });
      }
    });
  }
  void test('kubernetes.io/hostname is kept: PodTopologyLabels does not copy it', () => {
    const p = pod('web-0', {
      ns: 'shop',
      labels: { app: 'web', [HOSTNAME]: 'node-1' },
      owner: { kind: 'StatefulSet', name: 'web', controller: true },
    });
    assert.deepEqual(workloadOfPod(p, new WorkloadLookup([])).templateLabels, {
      app: 'web',
      [HOSTNAME]: 'node-1',
    });
  });
});

void describe('policyMayTarget: what a policy may target of a pod whose workload is unknown', () => {
  const spread = { spreadAcross: [{ topologyKey: ZONE, mode: 'Required' as const }] };
  const cases: {
    name: string;
    policy: PlacementPolicy;
    kinds: string[];
    namespace: string;
    nsLabels?: Labels;
    want: boolean;
  }[] = [
    {
      name: 'default kinds include Deployment, whatever its selector asks of template labels',
      policy: namespacedPolicy('shop', 'p', {
        ...spread,
        targets: { selector: { matchLabels: { app: 'nothing-has-this' } } },
      }),
      kinds: ['Deployment', 'ReplicaSet'],
      namespace: 'shop',
      want: true,
    },
    {
      name: 'a namespaced policy never reaches another namespace',
      policy: namespacedPolicy('shop', 'p', spread),
      kinds: ['Deployment'],
      namespace: 'other',
      want: false,
    },
    {
      name: 'no kind in common',
      policy: namespacedPolicy('shop', 'p', { ...spread, targets: { kinds: ['StatefulSet'] } }),
      kinds: ['Deployment', 'ReplicaSet'],
      namespace: 'shop',
      want: false,
    },
    ...[
      { env: 'prod', want: true },
      { env: 'dev', want: false },
    ].map(({ env, want }) => ({
      name: `a cluster policy for Jobs in env=prod namespaces, a Job's pod in env=${env}`,
      policy: clusterPolicy('p', {
        ...spread,
        targets: { kinds: ['Job'], namespaceSelector: { matchLabels: { env: 'prod' } } },
      }),
      kinds: ['Job', 'CronJob'],
      namespace: 'shop',
      nsLabels: { env },
      want,
    })),
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.equal(
        policyMayTarget(compiled(c.policy), c.kinds, c.namespace, c.nsLabels ?? {}),
        c.want,
      );
    });
  }
});
