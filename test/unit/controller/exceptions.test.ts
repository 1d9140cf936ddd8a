// PlacementExceptions in the controller: the catalog attaches them to the policies they name
// (and changes a policy's identity only when its exceptions change), the plan takes an
// exempted workload's injected terms out exactly, the policy's status counts it as
// exempted, and the exception's own status says whether it is accepted and what it exempts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Workload } from '../../../src/api/cluster.ts';
import type { PlacementException } from '../../../src/api/exception.ts';
import type { PlacementPolicy, PlacementPolicySpec } from '../../../src/api/policy.ts';
import { exceptionStatus } from '../../../src/controller/exception-reconciler.ts';
import { planWorkload } from '../../../src/controller/plan.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import { policyStatus } from '../../../src/controller/policy-status.ts';
import { cachedDeployment, HOSTNAME } from '../builders.ts';
import { APPLIED_ANNOTATION } from '../../../src/api/cluster.ts';

const SPREAD = 'ClusterPlacementPolicy/spread';

const cpp = (spec: PlacementPolicySpec, generation = 1): PlacementPolicy => ({
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'ClusterPlacementPolicy',
  metadata: { name: 'spread', generation },
  spec: { spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }], ...spec },
});

const exception = (
  name: string,
  names: string[],
  extra: Partial<PlacementException['metadata']> = {},
): PlacementException => ({
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'PlacementException',
  metadata: { name, namespace: 'team-a', generation: 1, ...extra },
  spec: {
    policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
    workloads: { names },
    reason: 'local volume',
  },
});

const deployment = (name: string, extra: Partial<Workload> = {}): Workload =>
  cachedDeployment('team-a', name, { app: name }, { replicas: 2, ...extra });

/** The workload as the operator leaves it once the policy's terms are in. */
function enforced(catalog: PolicyCatalog, w: Workload): Workload {
  const plan = planWorkload(w, catalog, () => ({}));
  assert.ok(plan.kind === 'change', plan.kind);
  return {
    ...w,
    affinity: plan.affinity,
    annotations: plan.annotation === undefined ? {} : { [APPLIED_ANNOTATION]: plan.annotation },
  };
}

void describe('PolicyCatalog with exceptions', () => {
  void test('an exception changes the identity of the policy it names, and of no other', () => {
    const catalog = new PolicyCatalog();
    catalog.set(cpp({ exceptions: { allowed: true } }));
    catalog.set({ ...cpp({}), metadata: { name: 'other', generation: 1 } });
    const before = catalog.active();
    const other = before.find((p) => p.ref === 'ClusterPlacementPolicy/other');
    const { changed } = catalog.setException(exception('db', ['db']));
    assert.equal(changed, true);
    const after = catalog.active();
    assert.notEqual(after, before, 'a new array: the audit looks again');
    assert.equal(
      after.find((p) => p.ref === 'ClusterPlacementPolicy/other'),
      other,
      'untouched policies keep their object',
    );
    const spread = after.find((p) => p.ref === SPREAD);
    assert.deepEqual(
      spread?.exemptions.map((e) => e.ref),
      ['PlacementException/team-a/db'],
    );
    assert.equal(catalog.active(), after, 'asked again: the same array');
  });

  void test('the same generation again (a status write) changes nothing', () => {
    const catalog = new PolicyCatalog();
    catalog.set(cpp({ exceptions: { allowed: true } }));
    catalog.setException(exception('db', ['db']));
    const active = catalog.active();
    assert.equal(catalog.setException(exception('db', ['db'])).changed, false);
    assert.equal(catalog.active(), active);
  });

  void test('deleting it, or marking it for deletion, detaches it', () => {
    for (const remove of [
      (c: PolicyCatalog) => c.deleteException('PlacementException/team-a/db'),
      (c: PolicyCatalog) =>
        c.setException(exception('db', ['db'], { deletionTimestamp: '2026-01-01T00:00:00Z' })),
    ]) {
      const catalog = new PolicyCatalog();
      catalog.set(cpp({ exceptions: { allowed: true } }));
      catalog.setException(exception('db', ['db']));
      remove(catalog);
      assert.deepEqual(catalog.active()[0]?.exemptions, []);
    }
  });
});

void describe('an exempted workload in the plan and in the policy status', () => {
  const policy = cpp({ exceptions: { allowed: true } });

  void test('its terms come out exactly: the template the owner wrote, no record', () => {
    const catalog = new PolicyCatalog();
    catalog.set(policy);
    const ownAffinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
          ],
        },
      },
    };
    const original = deployment('db', { affinity: ownAffinity });
    const withTerms = enforced(catalog, original);
    assert.notDeepEqual(withTerms.affinity, ownAffinity);

    catalog.setException(exception('db', ['db']));
    const plan = planWorkload(withTerms, catalog, () => ({}));
    assert.ok(plan.kind === 'change', plan.kind);
    assert.deepEqual(plan.affinity, ownAffinity);
    assert.equal(plan.annotation, undefined);
    assert.deepEqual(plan.enforced, []);
    assert.deepEqual(plan.reverted, [SPREAD]);
    assert.deepEqual([...plan.exempted], [[SPREAD, ['PlacementException/team-a/db']]]);
  });

  void test('deleting the exception brings the terms back', () => {
    const catalog = new PolicyCatalog();
    catalog.set(policy);
    const withTerms = enforced(catalog, deployment('db'));
    catalog.setException(exception('db', ['db']));
    const plan = planWorkload(withTerms, catalog, () => ({}));
    assert.ok(plan.kind === 'change');
    const reverted = { ...withTerms, affinity: plan.affinity, annotations: {} };
    catalog.deleteException('PlacementException/team-a/db');
    const back = planWorkload(reverted, catalog, () => ({}));
    assert.ok(back.kind === 'change');
    assert.deepEqual(back.affinity, withTerms.affinity);
  });

  void test('the policy counts it as exempted, apart from matched', () => {
    const catalog = new PolicyCatalog();
    const entry = catalog.set(policy);
    catalog.setException(exception('db', ['db']));
    const workloads = [deployment('db'), enforced(catalog, deployment('web'))];
    const status = policyStatus(policy, {
      entry,
      workloads,
      catalog,
      namespaceLabels: () => ({}),
      isWaiting: () => false,
      isRolling: () => false,
      refusal: () => undefined,
      audit: undefined,
      now: '2026-11-26T00:00:00Z',
    });
    assert.deepEqual(
      { matched: status.matched, enforced: status.enforced, exempted: status.exempted },
      { matched: 1, enforced: 1, exempted: 1 },
    );
    const ready = status.conditions.find((c) => c.type === 'Ready');
    assert.equal(
      ready?.message,
      'all 1 workload(s) carry the rules; 1 exempted by PlacementExceptions',
    );
  });
});

void describe('exception status', () => {
  const statusFor = (policy: PlacementPolicy | undefined, e: PlacementException) => {
    const catalog = new PolicyCatalog();
    if (policy !== undefined) catalog.set(policy);
    const { entry } = catalog.setException(e);
    assert.ok(entry);
    return exceptionStatus(e, entry, {
      catalog,
      workloads: [
        deployment('db'),
        deployment('web'),
        { ...deployment('db'), namespace: 'team-b' },
      ],
      namespaceLabels: {},
      now: '2026-11-26T00:00:00Z',
    });
  };
  const cases: {
    name: string;
    policy: PlacementPolicy | undefined;
    exception: PlacementException;
    want: {
      status: string;
      reason: string;
      message: string;
      exempted: number;
      workloads: string[];
    };
  }[] = [
    {
      name: 'accepted: names the workloads it exempts, in its namespace only',
      policy: cpp({ exceptions: { allowed: true } }),
      exception: exception('db', ['db']),
      want: {
        status: 'True',
        reason: 'Accepted',
        message: `exempts 1 workload(s) from ${SPREAD}`,
        exempted: 1,
        workloads: ['Deployment/db'],
      },
    },
    {
      name: 'accepted, but nothing it names exists',
      policy: cpp({ exceptions: { allowed: true } }),
      exception: exception('gone', ['gone']),
      want: {
        status: 'True',
        reason: 'Accepted',
        message: `exempts the selected workloads from ${SPREAD}; none of them exists now`,
        exempted: 0,
        workloads: [],
      },
    },
    {
      name: 'the policy does not allow exceptions',
      policy: cpp({}),
      exception: exception('db', ['db']),
      want: {
        status: 'False',
        reason: 'NotAllowed',
        message:
          'ClusterPlacementPolicy spread does not allow exceptions (spec.exceptions.allowed is not true)',
        exempted: 0,
        workloads: [],
      },
    },
    {
      name: 'no such policy',
      policy: undefined,
      exception: exception('db', ['db']),
      want: {
        status: 'False',
        reason: 'PolicyNotFound',
        message: 'ClusterPlacementPolicy spread does not exist',
        exempted: 0,
        workloads: [],
      },
    },
    {
      name: 'an exception that cannot be read',
      policy: cpp({ exceptions: { allowed: true } }),
      exception: { ...exception('bad', []), spec: { ...exception('bad', []).spec, workloads: {} } },
      want: {
        status: 'False',
        reason: 'InvalidSpec',
        message: 'spec.workloads: needs a selector or names: which workloads are exempted',
        exempted: 0,
        workloads: [],
      },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const s = statusFor(c.policy, c.exception);
      const [accepted] = s.conditions;
      assert.deepEqual(
        {
          status: accepted?.status,
          reason: accepted?.reason,
          message: accepted?.message,
          exempted: s.exempted,
          workloads: s.workloads,
        },
        c.want,
      );
      assert.equal(accepted?.observedGeneration, 1);
    });
  }
});
