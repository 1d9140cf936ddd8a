// The platform team's switch for namespaced policies whose affinity terms select pods of other
// namespaces (docs/adr/0003-tenancy.md): allowed by default; under
// --namespaced-policy-cross-namespace-terms=deny such a policy is invalid (Degraded with a
// reason of its own and a message naming each field), is not active, so it never reaches a
// workload and is never judged, and the operator's flag is read and checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { PlacementPolicy } from '../../../src/api/policy.ts';
import { PolicyCatalog, type CrossNamespaceTerms } from '../../../src/controller/policy-catalog.ts';
import { planWorkload } from '../../../src/controller/plan.ts';
import { policyStatus } from '../../../src/controller/policy-status.ts';
import { readConfig } from '../../../src/main.ts';
import { HOSTNAME, labelsIn, namespacedPolicy, term } from '../builders.ts';
import type { Workload } from '../../../src/api/cluster.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const FIELD = `spec.affinity.podAntiAffinity.${REQUIRED}[0].namespaceSelector`;

const withGeneration = (p: PlacementPolicy): PlacementPolicy => ({
  ...p,
  metadata: { ...p.metadata, generation: 1 },
});

/** Issue #16's policy, in Enforce mode so that a valid one would write the workload. */
const evil = withGeneration(
  namespacedPolicy('team-a', 'evil', {
    affinity: {
      podAntiAffinity: { [REQUIRED]: [term({}, HOSTNAME, { namespaceSelector: {} })] },
    },
    audit: { remediation: 'Evict', maxEvictionsPerMinute: 100 },
  }),
);
const ownNamespaceOnly = withGeneration(
  namespacedPolicy('team-a', 'own', {
    affinity: {
      podAntiAffinity: {
        [REQUIRED]: [term(labelsIn({ app: 'web' }), HOSTNAME, { namespaces: ['team-a'] })],
      },
    },
  }),
);

const web: Workload = {
  kind: 'Deployment',
  namespace: 'team-a',
  name: 'web',
  uid: 'uid-web',
  resourceVersion: '1',
  generation: 1,
  annotations: {},
  ownerReferences: [],
  selector: { matchLabels: { app: 'web' } },
  templateLabels: { app: 'web' },
  affinity: undefined,
  rolledOut: true,
  replicas: 1,
};

function statusUnder(setting: CrossNamespaceTerms, policy: PlacementPolicy) {
  const catalog = new PolicyCatalog({ crossNamespaceTerms: setting });
  const entry = catalog.set(policy);
  const status = policyStatus(policy, {
    entry,
    workloads: [web],
    catalog,
    namespaceLabels: () => ({}),
    isWaiting: () => false,
    isRolling: () => false,
    refusal: () => undefined,
    audit: undefined,
    now: '2026-12-05T00:00:00Z',
  });
  return { catalog, entry, status, plan: planWorkload(web, catalog, () => ({})) };
}

void describe('--namespaced-policy-cross-namespace-terms', () => {
  void test('allow (the default): the policy is valid, active, and writes its terms', () => {
    const { catalog, entry, plan } = statusUnder('allow', evil);
    assert.equal(entry.kind, 'valid');
    assert.deepEqual(
      catalog.active().map((p) => p.ref),
      ['PlacementPolicy/team-a/evil'],
    );
    assert.equal(plan.kind, 'change');
    assert.equal(new PolicyCatalog().set(evil).kind, 'valid', 'allow is the default');
  });

  void test('deny: Degraded with a reason of its own and a message naming the field', () => {
    const { status } = statusUnder('deny', evil);
    for (const type of ['Ready', 'Degraded']) {
      const c = status.conditions.find((x) => x.type === type) ?? assert.fail(`no ${type}`);
      assert.equal(c.reason, 'CrossNamespaceTermsDenied', type);
      assert.equal(c.status, type === 'Ready' ? 'False' : 'True');
      assert.ok(c.message.startsWith(`${FIELD}: selects pods of other namespaces`), c.message);
      assert.match(c.message, /--namespaced-policy-cross-namespace-terms=deny/);
    }
    assert.equal(status.matched, 0);
  });

  void test('deny: never active, so it reaches no workload and is never judged', () => {
    const { catalog, plan } = statusUnder('deny', evil);
    assert.deepEqual(catalog.active(), []);
    assert.deepEqual(catalog.targeting({ ...web, podSelector: {} }, {}), []);
    assert.equal(plan.kind, 'inSync', 'nothing to write into the workload');
  });

  void test('deny: namespaces naming only its own namespace is still allowed', () => {
    const { entry } = statusUnder('deny', ownNamespaceOnly);
    assert.equal(entry.kind, 'valid');
  });

  void test('deny: a spec that is invalid anyway keeps reason InvalidSpec', () => {
    const broken = withGeneration(
      namespacedPolicy('team-a', 'broken', {
        ...evil.spec,
        targets: { kinds: ['Deploymnet'] },
      }),
    );
    const { entry } = statusUnder('deny', broken);
    assert.equal(entry.kind === 'invalid' ? entry.reason : entry.kind, 'InvalidSpec');
  });

  const flag = '--namespaced-policy-cross-namespace-terms';
  const cases: readonly { argv: string[]; want: CrossNamespaceTerms | RegExp }[] = [
    { argv: [], want: 'allow' },
    { argv: [`${flag}=deny`], want: 'deny' },
    { argv: [flag, 'allow'], want: 'allow' },
    {
      argv: [`${flag}=Deny`],
      want: /: --namespaced-policy-cross-namespace-terms: Deny is not one of allow, deny$/,
    },
    { argv: [`${flag}=`], want: /is not one of allow, deny/ },
  ];
  for (const c of cases) {
    void test(`readConfig ${c.argv.join(' ') || '(no flag)'}`, () => {
      const read = () => readConfig(c.argv, { KUBECONFIG: '/dev/null' });
      if (c.want instanceof RegExp) {
        assert.throws(read, c.want);
        return;
      }
      const config = read();
      assert.ok(config !== 'help');
      assert.equal(config.crossNamespaceTerms, c.want);
    });
  }
});
