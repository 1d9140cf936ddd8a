// A PlacementCache must never hand a pod terms resolved for something else: every pod
// placed through a cache must equal the same pod resolved afresh, whatever changed in
// between (pod labels, policies, workload templates, namespaces).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import type {
  Labels,
  LabelSelector,
  Namespace,
  Pod,
  PodAffinityTerm,
} from '../../../src/api/core.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import {
  auditIndex,
  buildIndex,
  comparePolicies,
  compilePolicy,
  isPlaced,
  PlacementCache,
  placementOf,
  TopologyIndex,
  WorkloadLookup,
  type CompiledPolicy,
  type PlacementTerms,
  type PodPlacement,
  type WorkloadObject,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  ZONE,
  clusterPolicy,
  exprs,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  pod,
  replicaSetOwner,
  snapshotOf,
  term,
  weighted,
  type PodOptions,
} from '../builders.ts';

function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

/** What the cluster looks like when a pod is placed. */
interface World {
  readonly namespaces: readonly Namespace[];
  readonly workloads: readonly WorkloadObject[];
  readonly policies: readonly CompiledPolicy[];
}

/** Places `p` through `cache` and checks it against the same pod resolved without a cache. */
function placeBoth(cache: PlacementCache, p: Pod, world: World): PodPlacement {
  const index = new TopologyIndex();
  for (const ns of world.namespaces) index.setNamespace(ns.metadata.name, ns.metadata.labels ?? {});
  const lookup = new WorkloadLookup(world.workloads);
  const cached = placementOf(p, world.policies, lookup, index, cache);
  const fresh = placementOf(p, world.policies, lookup, index);
  assert.deepStrictEqual(cached, fresh);
  return cached;
}

const termsOf = (p: PodPlacement): PlacementTerms => ({
  affinity: p.affinity,
  antiAffinity: p.antiAffinity,
  preferredAffinity: p.preferredAffinity,
  preferredAntiAffinity: p.preferredAntiAffinity,
});

const deployment = (name: string, selector: LabelSelector, templateLabels: Labels) =>
  ({
    kind: 'Deployment',
    metadata: { name, namespace: 'shop' },
    spec: { selector, template: { metadata: { labels: templateLabels } } },
  }) satisfies WorkloadObject;

const replicaSet = (name: string, owner: string) =>
  ({
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'shop',
      ownerReferences: [{ kind: 'Deployment', name: owner, controller: true }],
    },
  }) satisfies WorkloadObject;

/** A pod of ReplicaSet `web-h1` in `shop`. */
const webPod = (name: string, o: Omit<PodOptions, 'owner' | 'node'> = {}): Pod =>
  pod(name, { ns: 'shop', node: 'n1', owner: replicaSetOwner('web-h1'), ...o });

const WEB = { app: 'web', 'pod-template-hash': 'h1' };
const SHOP = [namespace('shop', { env: 'prod' }), namespace('dev', { env: 'dev' })];
const WEB_WORKLOADS = [
  deployment('web', labelsIn({ app: 'web' }), { app: 'web' }),
  replicaSet('web-h1', 'web'),
];
const SPREAD = clusterPolicy('spread', {
  targets: { selector: labelsIn({ app: 'web' }) },
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
});
const PLAIN: World = { namespaces: SHOP, workloads: WEB_WORKLOADS, policies: [] };
const SPREADING: World = { ...PLAIN, policies: [compiled(SPREAD)] };
const PROD_SPREAD = compiled(
  clusterPolicy('prod', {
    ...SPREAD.spec,
    targets: { ...SPREAD.spec.targets, namespaceSelector: labelsIn({ env: 'prod' }) },
  }),
);
/** The web pods with one policy, `shop/away`: required anti-affinity `t`. */
const awayFromWeb = (t: PodAffinityTerm): World => ({
  ...PLAIN,
  policies: [
    compiled(
      namespacedPolicy('shop', 'away', {
        targets: { selector: labelsIn({ app: 'web' }) },
        affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [t] } },
      }),
    ),
  ],
});
const versioned = (keys: 'matchLabelKeys' | 'mismatchLabelKeys') =>
  term(labelsIn({ app: 'web' }), HOSTNAME, { [keys]: ['version'] });

void describe('PlacementCache gives each pod its own terms', () => {
  const cases: {
    name: string;
    before: [Pod, World];
    after: [Pod, World];
  }[] = [
    {
      name: 'a replica with another value of a matchLabelKeys key',
      before: [
        webPod('a', { labels: { ...WEB, version: 'v1' }, anti: [versioned('matchLabelKeys')] }),
        PLAIN,
      ],
      after: [
        webPod('b', { labels: { ...WEB, version: 'v2' }, anti: [versioned('matchLabelKeys')] }),
        PLAIN,
      ],
    },
    {
      name: 'a pod relabelled off a mismatchLabelKeys key',
      before: [
        webPod('a', { labels: { ...WEB, version: 'v1' }, anti: [versioned('mismatchLabelKeys')] }),
        PLAIN,
      ],
      after: [webPod('a', { labels: WEB, anti: [versioned('mismatchLabelKeys')] }), PLAIN],
    },
    {
      name: 'a policy edited: another spread key',
      before: [webPod('a', { labels: WEB }), SPREADING],
      after: [
        webPod('a', { labels: WEB }),
        {
          ...PLAIN,
          policies: [
            compiled(
              clusterPolicy('spread', {
                ...SPREAD.spec,
                spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
              }),
            ),
          ],
        },
      ],
    },
    {
      name: 'a policy edited: its term now reads a pod label (matchLabelKeys)',
      before: [
        webPod('a', { labels: { ...WEB, version: 'v1' } }),
        awayFromWeb(term(labelsIn({ app: 'web' }), HOSTNAME)),
      ],
      after: [
        webPod('a', { labels: { ...WEB, version: 'v1' } }),
        awayFromWeb(versioned('matchLabelKeys')),
      ],
    },
    {
      name: 'a workload template changed: the selector a spread reads',
      before: [webPod('a', { labels: { ...WEB, track: 'stable' } }), SPREADING],
      after: [
        webPod('a', { labels: { ...WEB, track: 'stable' } }),
        {
          ...SPREADING,
          workloads: [
            deployment('web', labelsIn({ app: 'web', track: 'stable' }), {
              app: 'web',
              track: 'stable',
            }),
            replicaSet('web-h1', 'web'),
          ],
        },
      ],
    },
    {
      name: 'a workload template relabelled out of a policy selector',
      before: [webPod('a', { labels: WEB }), SPREADING],
      after: [
        webPod('a', { labels: WEB }),
        {
          ...SPREADING,
          workloads: [
            deployment('web', labelsIn({ app: 'web' }), { app: 'api' }),
            replicaSet('web-h1', 'web'),
          ],
        },
      ],
    },
    {
      name: 'a namespace relabelled out of a cluster policy namespaceSelector',
      before: [webPod('a', { labels: WEB }), { ...PLAIN, policies: [PROD_SPREAD] }],
      after: [
        webPod('a', { labels: WEB }),
        { ...PLAIN, namespaces: [namespace('shop', { env: 'dev' })], policies: [PROD_SPREAD] },
      ],
    },
    {
      name: 'the same terms written in another namespace (the default namespace differs)',
      before: [
        webPod('a', { labels: WEB, anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] }),
        PLAIN,
      ],
      after: [
        webPod('a', { ns: 'dev', labels: WEB, anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] }),
        PLAIN,
      ],
    },
    {
      name: 'another template under the same owner (a ReplicaSet edited in place)',
      before: [
        webPod('a', { labels: WEB, anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] }),
        PLAIN,
      ],
      after: [webPod('b', { labels: WEB, anti: [term(labelsIn({ app: 'web' }), ZONE)] }), PLAIN],
    },
    {
      name: 'weights JSON writes alike (NaN and Infinity are both null)',
      before: [
        webPod('a', {
          labels: WEB,
          preferredAnti: [weighted(Number.NaN, term(labelsIn({ app: 'web' }), HOSTNAME))],
        }),
        PLAIN,
      ],
      after: [
        webPod('b', {
          labels: WEB,
          preferredAnti: [weighted(Infinity, term(labelsIn({ app: 'web' }), HOSTNAME))],
        }),
        PLAIN,
      ],
    },
    {
      name: 'a label value that is not a string (YAML read `version: 1` as a number)',
      before: [
        webPod('a', { labels: { ...WEB, version: '1' }, anti: [versioned('matchLabelKeys')] }),
        PLAIN,
      ],
      after: [
        webPod('b', {
          labels: { ...WEB, version: 1 as unknown as string },
          anti: [versioned('matchLabelKeys')],
        }),
        PLAIN,
      ],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const cache = new PlacementCache();
      const before = placeBoth(cache, ...c.before);
      const after = placeBoth(cache, ...c.after);
      assert.notDeepStrictEqual(termsOf(after), termsOf(before), 'the change changes the terms');
      // And back: the first entry is still right.
      placeBoth(cache, ...c.before);
    });
  }
});

void describe('PlacementCache shares what is the same', () => {
  void test('replicas of a workload share one resolution, frozen', () => {
    const cache = new PlacementCache();
    const anti = [versioned('matchLabelKeys')];
    const a = placeBoth(cache, webPod('a', { labels: { ...WEB, version: 'v1' }, anti }), SPREADING);
    // Written again, as a second object from the API server would be.
    const b = placeBoth(
      cache,
      structuredClone(webPod('b', { labels: { ...WEB, version: 'v1' }, anti })),
      SPREADING,
    );
    assert.equal(a.antiAffinity, b.antiAffinity);
    assert.equal(a.antiAffinity.length, 2);
    assert.ok(Object.isFrozen(a.antiAffinity));
    assert.notEqual(a.key, b.key);
  });

  void test('one affinity object in a row, another namespace or other policies: each its own terms', () => {
    const cache = new PlacementCache();
    const first = webPod('a', { labels: WEB, anti: [term(labelsIn({ app: 'web' }), ZONE)] });
    // The same affinity object (as transforms.ts shares it between replicas) on each pod.
    const sharing = (name: string, ns: string): Pod => ({
      ...first,
      metadata: { ...first.metadata, name, namespace: ns },
    });
    const inShop = placeBoth(cache, first, PLAIN);
    const inDev = placeBoth(cache, sharing('b', 'dev'), PLAIN);
    assert.notDeepEqual(termsOf(inDev), termsOf(inShop), 'its own namespace in its terms');
    const spread = placeBoth(cache, sharing('c', 'dev'), SPREADING);
    assert.notDeepEqual(termsOf(spread), termsOf(inDev), 'the policy adds its terms');
    assert.deepEqual(termsOf(placeBoth(cache, sharing('d', 'dev'), PLAIN)), termsOf(inDev));
  });

  void test('a term that cannot be read fails for every pod, cached or not', () => {
    const cache = new PlacementCache();
    const bad = (name: string) =>
      webPod(name, { labels: WEB, anti: [term(labelsIn({ app: 'web' }), '')] });
    for (const name of ['a', 'b']) {
      assert.throws(
        () => placeBoth(cache, bad(name), PLAIN),
        /Pod shop\/\w: .*topologyKey: must not be empty/,
      );
    }
  });
});

// ---- properties: random pods and changes, one cache throughout ----

const VERSIONS = ['v1', 'v2'] as const;

const TERMS: readonly PodAffinityTerm[] = [
  term(labelsIn({ app: 'web' }), HOSTNAME, { matchLabelKeys: ['version'] }),
  term(labelsIn({ app: 'api' }), ZONE, { mismatchLabelKeys: ['tier'] }),
  term(exprs(['tier', 'In', ['x', 'y']]), HOSTNAME),
  term(null, HOSTNAME, { matchLabelKeys: ['version'] }),
  term(labelsIn({ app: 'web' }), HOSTNAME, { namespaces: ['dev'] }),
  term(labelsIn({ app: 'web' }), HOSTNAME, { namespaceSelector: {} }),
];

const at = (i: number): PodAffinityTerm => TERMS[i] ?? at(0);

/** A few pod templates, so that replicas (same template, other labels) meet in one cache. */
const TEMPLATES: readonly Omit<PodOptions, 'labels'>[] = [
  {},
  { anti: [at(0)] },
  { affinity: [at(1)], preferredAnti: [weighted(50, at(0))] },
  { anti: [at(3)], preferred: [weighted(1, at(2))] },
  { anti: [at(4), at(5)], affinity: [at(0), at(1)] },
];

const labelsArb: fc.Arbitrary<Labels> = fc
  .record({
    app: fc.constantFrom('web', 'api'),
    version: fc.option(fc.constantFrom(...VERSIONS), { nil: undefined }),
    tier: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
  })
  .map(({ app, version, tier }) => ({
    app,
    'pod-template-hash': 'h1',
    ...(version === undefined ? {} : { version }),
    ...(tier === undefined ? {} : { tier }),
  }));

const podArb: fc.Arbitrary<Pod> = fc
  .record({
    name: fc.constantFrom('p0', 'p1', 'p2', 'p3'),
    ns: fc.constantFrom('shop', 'dev'),
    owner: fc.constantFrom('web-h1', 'api-h1'),
    labels: labelsArb,
    template: fc.constantFrom(...TEMPLATES),
    copied: fc.boolean(),
  })
  .map(({ name, owner, copied, template, ...o }) => {
    const p = pod(name, { ...o, ...template, node: 'n1', owner: replicaSetOwner(owner) });
    return copied ? structuredClone(p) : p;
  });

/** Each policy slot holds nothing or one of its versions; a new version is an edit. */
const POLICY_SLOTS: readonly (readonly CompiledPolicy[])[] = [
  [
    compiled(SPREAD),
    compiled(
      clusterPolicy('spread', {
        ...SPREAD.spec,
        spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 50 }],
      }),
    ),
  ],
  [
    compiled(
      namespacedPolicy('shop', 'away', {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [at(0)],
          },
        },
      }),
    ),
    compiled(
      namespacedPolicy('shop', 'away', {
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [weighted(10, at(1))],
          },
        },
      }),
    ),
  ],
  [
    compiled(
      clusterPolicy('prod-near', {
        targets: { namespaceSelector: labelsIn({ env: 'prod' }) },
        affinity: {
          podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [at(2)],
          },
        },
      }),
    ),
  ],
];

const policiesArb: fc.Arbitrary<CompiledPolicy[]> = fc
  .tuple(
    ...POLICY_SLOTS.map((versions) => fc.option(fc.constantFrom(...versions), { nil: undefined })),
  )
  .map((chosen) => chosen.filter((p) => p !== undefined).sort(comparePolicies));

const workloadsArb: fc.Arbitrary<WorkloadObject[]> = fc
  .record({
    selector: fc.constantFrom(labelsIn({ app: 'web' }), labelsIn({ app: 'web', tier: 'x' })),
    template: fc.constantFrom<Labels>({ app: 'web' }, { app: 'api' }),
  })
  .map(({ selector, template }) => [
    deployment('web', selector, template),
    replicaSet('web-h1', 'web'),
    deployment('api', labelsIn({ app: 'api' }), { app: 'api' }),
    replicaSet('api-h1', 'api'),
  ]);

const namespacesArb: fc.Arbitrary<Namespace[]> = fc
  .constantFrom('prod', 'dev')
  .map((env) => [namespace('shop', { env }), namespace('dev', { env: 'dev' })]);

type Step =
  | { readonly kind: 'pod'; readonly pod: Pod }
  | { readonly kind: 'change'; readonly change: Partial<World> };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: podArb.map((p): Step => ({ kind: 'pod', pod: p })) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        policiesArb.map((policies): Partial<World> => ({ policies })),
        workloadsArb.map((workloads): Partial<World> => ({ workloads })),
        namespacesArb.map((namespaces): Partial<World> => ({ namespaces })),
      )
      .map((change): Step => ({ kind: 'change', change })),
  },
);

void test('one cache across pod, policy, workload and namespace changes resolves as no cache does', () => {
  fc.assert(
    fc.property(
      policiesArb,
      workloadsArb,
      namespacesArb,
      fc.array(stepArb, { maxLength: 30 }),
      (policies, workloads, namespaces, steps) => {
        const cache = new PlacementCache();
        let world: World = { policies, workloads, namespaces };
        for (const step of steps) {
          if (step.kind === 'pod') placeBoth(cache, step.pod, world);
          else world = { ...world, ...step.change };
        }
      },
    ),
    { numRuns: 300 },
  );
});

void test('buildIndex (one cache per build) equals an index of pods resolved one by one', () => {
  fc.assert(
    fc.property(
      policiesArb,
      workloadsArb,
      namespacesArb,
      fc.uniqueArray(podArb, {
        maxLength: 8,
        selector: (p) => `${p.metadata.namespace}/${p.metadata.name}`,
      }),
      (policies, workloads, namespaces, pods) => {
        const nodes = [node('n1')];
        const built = buildIndex(snapshotOf({ nodes, namespaces, pods, workloads }), policies);
        const byHand = new TopologyIndex();
        byHand.setNode('n1', nodes[0]?.metadata.labels ?? {});
        for (const ns of namespaces)
          byHand.setNamespace(ns.metadata.name, ns.metadata.labels ?? {});
        const lookup = new WorkloadLookup(workloads);
        for (const p of pods)
          if (isPlaced(p)) byHand.upsertPod(placementOf(p, policies, lookup, byHand));
        assert.equal(built.describe(), byHand.describe());
        assert.deepStrictEqual(auditIndex(built), auditIndex(byHand));
      },
    ),
    { numRuns: 300 },
  );
});
