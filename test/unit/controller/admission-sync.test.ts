// Injection mode: where the API server does not serve admissionregistration.k8s.io/v1
// MutatingAdmissionPolicy, the operator injects by the reconciler only and every Enforce
// policy says so in its InjectedAtAdmission condition.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AdmissionSync } from '../../../src/controller/admission-sync.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import { policyStatus } from '../../../src/controller/policy-status.ts';
import { servesMutatingAdmissionPolicy } from '../../../src/kube/admission.ts';
import { labelsIn, namespacedPolicy } from '../builders.ts';

const quiet = (): void => undefined;
const log = { info: quiet, warn: quiet, error: quiet, debug: quiet };

/** admissionregistration.k8s.io/v1 discovery as Kubernetes 1.35 answers it, and as 1.36 does. */
const resources = (...names: string[]) => ({
  kind: 'APIResourceList',
  groupVersion: 'admissionregistration.k8s.io/v1',
  resources: names.map((name) => ({ name, namespaced: false, kind: name, verbs: ['get'] })),
});
const BEFORE_1_36 = resources(
  'mutatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicies/status',
  'validatingadmissionpolicybindings',
  'validatingwebhookconfigurations',
);
const FROM_1_36 = resources(
  ...BEFORE_1_36.resources.map((r) => r.name),
  'mutatingadmissionpolicies',
  'mutatingadmissionpolicybindings',
);

const CASES = [
  { name: 'Kubernetes 1.36: both served', list: FROM_1_36, served: true },
  { name: 'before 1.36: neither served', list: BEFORE_1_36, served: false },
  {
    name: 'the policy without its binding is not enough',
    list: resources('mutatingadmissionpolicies'),
    served: false,
  },
  { name: 'not a resource list', list: { kind: 'Status' }, served: false },
] as const;

for (const c of CASES) {
  void test(`discovery: ${c.name}`, () => {
    assert.equal(servesMutatingAdmissionPolicy(c.list), c.served);
  });
}

void test('without MutatingAdmissionPolicy: reconciler mode, and each Enforce policy says NotServed', async () => {
  const sync = new AdmissionSync(undefined, log);
  assert.equal(sync.mode, 'reconciler');
  const policy = {
    ...namespacedPolicy('shop', 'spread', {
      targets: { kinds: ['Deployment'], selector: labelsIn({ app: 'web' }) },
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 10,
              podAffinityTerm: {
                labelSelector: { matchLabels: { app: 'web' } },
                topologyKey: 'kubernetes.io/hostname',
              },
            },
          ],
        },
      },
    }),
    metadata: { namespace: 'shop', name: 'spread', generation: 1 },
  };
  const catalog = new PolicyCatalog();
  const entry = catalog.set(policy);
  // Nothing to write to: a change of the policies is taken and nothing happens.
  sync.policiesChanged(catalog);
  await sync.settled();
  const injection = sync.injectionOf('PlacementPolicy/shop/spread');
  assert.deepEqual(injection, { kind: 'reconciler', why: 'notServed' });
  const status = policyStatus(policy, {
    entry,
    workloads: [],
    catalog,
    namespaceLabels: () => ({}),
    isWaiting: () => false,
    isRolling: () => false,
    refusal: () => undefined,
    audit: undefined,
    injection,
    now: '2026-12-05T00:00:00Z',
  });
  const condition = status.conditions.find((c) => c.type === 'InjectedAtAdmission');
  assert.equal(condition?.status, 'False');
  assert.equal(condition.reason, 'NotServed');
  assert.match(condition.message, /does not serve admissionregistration.k8s.io\/v1/);
});

void test('workloads the reconciler holds back are left alone at admission; the policy is rewritten only when that set changes', async () => {
  const written: string[] = [];
  const writer = {
    apply: (objects: readonly unknown[]) => {
      written.push(JSON.stringify(objects));
      return Promise.resolve();
    },
    remove: () => Promise.resolve(),
  };
  const sync = new AdmissionSync(writer, log);
  assert.equal(sync.mode, 'admission');
  const catalog = new PolicyCatalog();
  catalog.set({
    ...namespacedPolicy('shop', 'spread', {
      targets: { kinds: ['Deployment'], selector: labelsIn({ app: 'web' }) },
      spreadAcross: [{ topologyKey: 'kubernetes.io/hostname', mode: 'Required' }],
    }),
    metadata: { namespace: 'shop', name: 'spread', generation: 1 },
  });
  // Held back before the catalog is known: remembered, nothing written yet.
  sync.heldBackChanged(['Deployment/shop/web']);
  await sync.settled();
  assert.equal(written.length, 0);
  sync.policiesChanged(catalog);
  await sync.settled();
  assert.equal(written.length, 1);
  assert.match(written[0] ?? '', /\\"Deployment\/shop\/web\\"\]/);
  // The same set, in another order or again: nothing to write.
  sync.heldBackChanged(new Map([['Deployment/shop/web', 'why']]).keys());
  await sync.settled();
  assert.equal(written.length, 1);
  // Released: written without it.
  sync.heldBackChanged([]);
  await sync.settled();
  assert.equal(written.length, 2);
  assert.doesNotMatch(written[1] ?? '', /Deployment\/shop\/web/);
});
