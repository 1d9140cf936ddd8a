// Rules that cannot both hold (issue 15): a required podAffinity whose every partner a
// required podAntiAffinity of the same pod forbids, and node requirements no node meets.
// One named case per behaviour; the loops below run them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Labels, NodeSelectorRequirement, PodAffinityTerm } from '../../../src/api/core.ts';
import {
  compilePolicy,
  contradictionPolicies,
  contradictions,
  describeContradiction,
  describeContradictionFor,
  requirementsContradict,
  resolveTerm,
  termsContradict,
  type CompiledPolicy,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import type { PlacementPolicySpec } from '../../../src/api/policy.ts';
import { exprs, HOSTNAME, labelsIn, namespacedPolicy, term, ZONE } from '../builders.ts';

const REGION = 'topology.kubernetes.io/region';
const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

/** Namespace labels of the cluster the cases look at. */
const NAMESPACES: Readonly<Record<string, Labels>> = {
  shop: { team: 'shop' },
  data: { team: 'data' },
  other: {},
};
const namespaceLabels = (ns: string): Labels => NAMESPACES[ns] ?? {};
/** The pod whose terms these are: in `shop`, labelled app=web, tier=front. */
const owner = { namespace: 'shop', labels: { app: 'web', tier: 'front' } };

const podCases: {
  name: string;
  affinity: PodAffinityTerm;
  anti: PodAffinityTerm;
  contradict: boolean;
}[] = [
  // ----- cannot both hold
  {
    name: 'same selector, same namespace, same key',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME),
    contradict: true,
  },
  {
    name: 'affinity on hostname inside anti-affinity on zone',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), ZONE),
    contradict: true,
  },
  {
    name: 'affinity on zone inside anti-affinity on region',
    affinity: term(labelsIn({ app: 'x' }), ZONE),
    anti: term(labelsIn({ app: 'x' }), REGION),
    contradict: true,
  },
  {
    name: 'legacy zone key inside region',
    affinity: term(labelsIn({ app: 'x' }), 'failure-domain.beta.kubernetes.io/zone'),
    anti: term(labelsIn({ app: 'x' }), REGION),
    contradict: true,
  },
  {
    name: 'affinity selects a subset of what anti-affinity forbids (more labels)',
    affinity: term(labelsIn({ app: 'x', tier: 'db' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME),
    contradict: true,
  },
  {
    name: 'affinity In (x) inside anti-affinity In (x, y)',
    affinity: term(exprs(['app', 'In', ['x']]), HOSTNAME),
    anti: term(exprs(['app', 'In', ['x', 'y']]), HOSTNAME),
    contradict: true,
  },
  {
    name: 'anti-affinity Exists on the key the affinity pins',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(exprs(['app', 'Exists']), HOSTNAME),
    contradict: true,
  },
  {
    name: 'anti-affinity NotIn a value the affinity excludes',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(exprs(['app', 'NotIn', ['y']]), HOSTNAME),
    contradict: true,
  },
  {
    name: 'anti-affinity selecting every pod',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term({}, HOSTNAME),
    contradict: true,
  },
  {
    name: 'affinity in a listed namespace, anti-affinity in every namespace',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaceSelector: {} }),
    contradict: true,
  },
  {
    name: 'affinity namespaces inside the anti-affinity namespaces',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data', 'shop'] }),
    contradict: true,
  },
  {
    name: 'affinity namespace matched by the anti-affinity namespaceSelector',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaceSelector: labelsIn({ team: 'data' }) }),
    contradict: true,
  },
  {
    name: 'affinity namespaceSelector narrower than the anti-affinity one',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, {
      namespaceSelector: labelsIn({ team: 'data', env: 'prod' }),
    }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaceSelector: labelsIn({ team: 'data' }) }),
    contradict: true,
  },
  {
    name: 'matchLabelKeys merged from the pod: still inside the anti-affinity',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { matchLabelKeys: ['tier'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME),
    contradict: true,
  },
  // ----- can both hold
  {
    name: 'different namespaces',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['other'] }),
    contradict: false,
  },
  {
    name: 'the pod’s own namespace against another one',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['data'] }),
    contradict: false,
  },
  {
    name: 'disjoint selectors',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'y' }), HOSTNAME),
    contradict: false,
  },
  {
    name: 'affinity on a wider key than the anti-affinity (zone vs hostname)',
    affinity: term(labelsIn({ app: 'x' }), ZONE),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME),
    contradict: false,
  },
  {
    name: 'anti-affinity narrower than the affinity (more labels)',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x', tier: 'db' }), HOSTNAME),
    contradict: false,
  },
  {
    name: 'affinity In (x, y) against anti-affinity on x alone',
    affinity: term(exprs(['app', 'In', ['x', 'y']]), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME),
    contradict: false,
  },
  {
    name: 'anti-affinity DoesNotExist on the key the affinity pins',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(exprs(['app', 'DoesNotExist']), HOSTNAME),
    contradict: false,
  },
  {
    name: 'keys of no known nesting (rack vs zone)',
    affinity: term(labelsIn({ app: 'x' }), 'example.com/rack'),
    anti: term(labelsIn({ app: 'x' }), ZONE),
    contradict: false,
  },
  {
    name: 'anti-affinity without a labelSelector selects no pod',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(null, HOSTNAME),
    contradict: false,
  },
  {
    name: 'affinity in every namespace, anti-affinity in listed ones',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaceSelector: {} }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['shop', 'data', 'other'] }),
    contradict: false,
  },
  {
    name: 'affinity namespace not matched by the anti-affinity namespaceSelector',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaces: ['other'] }),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { namespaceSelector: labelsIn({ team: 'data' }) }),
    contradict: false,
  },
  {
    name: 'mismatchLabelKeys merged from the pod narrow the anti-affinity',
    affinity: term(labelsIn({ app: 'x' }), HOSTNAME),
    anti: term(labelsIn({ app: 'x' }), HOSTNAME, { mismatchLabelKeys: ['tier'] }),
    contradict: false,
  },
];

for (const c of podCases) {
  void test(`termsContradict: ${c.name}`, () => {
    const a = resolveTerm(c.affinity, owner, 'affinity');
    const b = resolveTerm(c.anti, owner, 'anti');
    assert.equal(termsContradict(a, b, namespaceLabels), c.contradict);
  });
}

const req = (key: string, operator: string, values?: string[]): NodeSelectorRequirement =>
  values === undefined ? { key, operator } : { key, operator, values };

const nodeCases: {
  name: string;
  a: NodeSelectorRequirement;
  b: NodeSelectorRequirement;
  contradict: boolean;
}[] = [
  {
    name: 'In disjoint values',
    a: req('pool', 'In', ['a']),
    b: req('pool', 'In', ['b']),
    contradict: true,
  },
  {
    name: 'In sharing a value',
    a: req('pool', 'In', ['a', 'b']),
    b: req('pool', 'In', ['b']),
    contradict: false,
  },
  {
    name: 'In all excluded by NotIn',
    a: req('pool', 'In', ['a']),
    b: req('pool', 'NotIn', ['a']),
    contradict: true,
  },
  {
    name: 'In partly excluded by NotIn',
    a: req('pool', 'In', ['a', 'b']),
    b: req('pool', 'NotIn', ['a']),
    contradict: false,
  },
  {
    name: 'Exists and DoesNotExist',
    a: req('gpu', 'Exists'),
    b: req('gpu', 'DoesNotExist'),
    contradict: true,
  },
  {
    name: 'In and DoesNotExist',
    a: req('gpu', 'In', ['a']),
    b: req('gpu', 'DoesNotExist'),
    contradict: true,
  },
  {
    name: 'NotIn and DoesNotExist',
    a: req('gpu', 'NotIn', ['a']),
    b: req('gpu', 'DoesNotExist'),
    contradict: false,
  },
  {
    name: 'Gt 5 and Lt 6: no integer between',
    a: req('cpus', 'Gt', ['5']),
    b: req('cpus', 'Lt', ['6']),
    contradict: true,
  },
  {
    name: 'Gt 5 and Lt 7: 6 fits',
    a: req('cpus', 'Gt', ['5']),
    b: req('cpus', 'Lt', ['7']),
    contradict: false,
  },
  {
    name: 'Gt 5 and In (3)',
    a: req('cpus', 'Gt', ['5']),
    b: req('cpus', 'In', ['3']),
    contradict: true,
  },
  {
    name: 'Gt 5 and In (7)',
    a: req('cpus', 'Gt', ['5']),
    b: req('cpus', 'In', ['7']),
    contradict: false,
  },
  {
    name: 'Gt 5 and NotIn (6)',
    a: req('cpus', 'Gt', ['5']),
    b: req('cpus', 'NotIn', ['6']),
    contradict: false,
  },
  {
    name: 'different keys',
    a: req('pool', 'In', ['a']),
    b: req('zone', 'In', ['b']),
    contradict: false,
  },
];

for (const c of nodeCases) {
  void test(`requirementsContradict: ${c.name}`, () => {
    assert.equal(requirementsContradict(c.a, c.b), c.contradict);
    assert.equal(requirementsContradict(c.b, c.a), c.contradict, 'either order');
  });
}

// ------------------------------------------------------------ whole workloads

const web: WorkloadRef = {
  kind: 'Deployment',
  namespace: 'shop',
  name: 'web',
  templateLabels: { app: 'web' },
  podSelector: labelsIn({ app: 'web' }),
};

function compiled(name: string, spec: PlacementPolicySpec): CompiledPolicy {
  const c = compilePolicy(namespacedPolicy('shop', name, spec));
  if (c.kind !== 'ok') assert.fail(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

const near = compiled('near-x', {
  affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] } },
});
const far = compiled('far-from-x', {
  affinity: { podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), ZONE)] } },
});

void test('two policies: the pair is found, each side named by policy and field', () => {
  const found = contradictions(web, [near, far], undefined, namespaceLabels);
  assert.equal(found.length, 1);
  const [c] = found;
  assert.ok(c?.kind === 'pod');
  assert.equal(c.affinity.policy, 'PlacementPolicy/shop/near-x');
  assert.equal(c.affinity.field, `spec.affinity.podAffinity.${REQUIRED}[0]`);
  assert.equal(c.antiAffinity.policy, 'PlacementPolicy/shop/far-from-x');
  assert.deepEqual(contradictionPolicies(c), [
    'PlacementPolicy/shop/near-x',
    'PlacementPolicy/shop/far-from-x',
  ]);
  assert.equal(
    describeContradiction(c),
    "PlacementPolicy/shop/near-x's required podAffinity (app=x on kubernetes.io/hostname) and " +
      "PlacementPolicy/shop/far-from-x's required podAntiAffinity (app=x on topology.kubernetes.io/zone) cannot both hold",
  );
  assert.equal(
    describeContradictionFor(c, 'PlacementPolicy/shop/far-from-x'),
    'its required podAntiAffinity (app=x on topology.kubernetes.io/zone) cannot hold together with ' +
      "PlacementPolicy/shop/near-x's required podAffinity (app=x on kubernetes.io/hostname)",
  );
  assert.equal(describeContradictionFor(c, 'PlacementPolicy/shop/other'), undefined);
});

void test('either policy alone has nothing to contradict', () => {
  assert.deepEqual(contradictions(web, [near], undefined, namespaceLabels), []);
  assert.deepEqual(contradictions(web, [far], undefined, namespaceLabels), []);
});

void test("a policy against the workload's own required term", () => {
  const own = { podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] } };
  const [c, ...rest] = contradictions(web, [near], own, namespaceLabels);
  assert.equal(rest.length, 0);
  assert.ok(c?.kind === 'pod');
  assert.equal(c.antiAffinity.policy, null);
  assert.equal(c.antiAffinity.field, `spec.template.spec.affinity.podAntiAffinity.${REQUIRED}[0]`);
  assert.match(
    describeContradictionFor(c, near.ref) ?? '',
    /cannot hold together with the workload's own required podAntiAffinity/,
  );
});

void test("the workload's own terms against each other are its owner's business", () => {
  const own = {
    podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] },
    podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] },
  };
  assert.deepEqual(contradictions(web, [], own, namespaceLabels), []);
});

void test("a required spread (anti-affinity on the workload's own pods) against affinity to them", () => {
  const spread = compiled('spread', { spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }] });
  const together = compiled('together', {
    affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'web' }), HOSTNAME)] } },
  });
  const [c] = contradictions(web, [spread, together], undefined, namespaceLabels);
  assert.ok(c?.kind === 'pod');
  assert.equal(c.antiAffinity.field, 'spec.spreadAcross[0]');
  // A preferred spread is only scored: it never contradicts.
  const soft = compiled('soft', { spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred' }] });
  assert.deepEqual(contradictions(web, [soft, together], undefined, namespaceLabels), []);
});

void test('one policy contradicting itself is reported against itself', () => {
  const both = compiled('both', {
    affinity: {
      podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] },
      podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] },
    },
  });
  const [c] = contradictions(web, [both], undefined, namespaceLabels);
  assert.ok(c);
  assert.match(describeContradictionFor(c, both.ref) ?? '', /cannot hold together with its own/);
});

void test('node requirements of two policies that no node meets', () => {
  const pin = (name: string, pool: string) =>
    compiled(name, {
      affinity: {
        nodeAffinity: {
          [REQUIRED]: { nodeSelectorTerms: [{ matchExpressions: [req('pool', 'In', [pool])] }] },
        },
      },
    });
  const [c, ...rest] = contradictions(
    web,
    [pin('a', 'a'), pin('b', 'b')],
    undefined,
    namespaceLabels,
  );
  assert.equal(rest.length, 0);
  assert.ok(c?.kind === 'node');
  assert.match(
    describeContradiction(c),
    /PlacementPolicy\/shop\/a's required node requirement \(pool In \(a\)\) and PlacementPolicy\/shop\/b's required node requirement \(pool In \(b\)\) cannot both hold/,
  );
  assert.deepEqual(
    contradictions(web, [pin('a', 'a'), pin('a2', 'a')], undefined, namespaceLabels),
    [],
  );
});
