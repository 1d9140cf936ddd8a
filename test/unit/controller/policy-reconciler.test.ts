// A deleted policy keeps its finalizer while any workload may still carry its terms: those
// whose record lists it, and those whose record cannot be read (it may list the policy) when
// the policy targets them or the unreadable text names it. The ones a person must fix first
// are named on the policy.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Store, Workload, WriteResult } from '../../../src/api/cluster.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import {
  reconcilePolicy,
  REVERT_POLL_MS,
  type PolicyReconcilerDeps,
} from '../../../src/controller/policy-reconciler.ts';
import type { PolicyStatus } from '../../../src/controller/policy-status.ts';
import { HOSTNAME, labelsIn, namespacedPolicy } from '../builders.ts';
import { APPLIED_ANNOTATION, POLICY_FINALIZER } from '../../../src/api/cluster.ts';

const deleted: PlacementPolicy = (() => {
  const p = namespacedPolicy('shop', 'spread', {
    targets: { kinds: ['Deployment'], selector: labelsIn({ app: 'web' }) },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  });
  return {
    ...p,
    metadata: {
      ...p.metadata,
      generation: 1,
      finalizers: [POLICY_FINALIZER],
      deletionTimestamp: '2026-12-01T00:00:00Z',
    },
  };
})();

const workload = (name: string, labels: Record<string, string>, record?: string): Workload => ({
  kind: 'Deployment',
  namespace: 'shop',
  name,
  uid: `uid-${name}`,
  resourceVersion: '1',
  generation: 1,
  annotations: record === undefined ? {} : { [APPLIED_ANNOTATION]: record },
  ownerReferences: [],
  selector: { matchLabels: labels },
  templateLabels: labels,
  affinity: undefined,
  rolledOut: true,
  replicas: 1,
});

const store = <T>(items: readonly T[], key: (t: T) => string): Store<T> => ({
  synced: true,
  list: () => items,
  get: (k) => items.find((t) => key(t) === k),
});

async function reconcile(workloads: readonly Workload[]) {
  const statuses: PolicyStatus[] = [];
  const finalizers: boolean[] = [];
  const enqueued: string[] = [];
  const deps: PolicyReconcilerDeps = {
    policies: store([deleted], (p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`),
    workloads: store(workloads, (w) => `Deployment/${w.namespace}/${w.name}`),
    namespaceLabels: () => ({}),
    catalog: new PolicyCatalog(),
    writer: {
      writeStatus: (_p, status): Promise<WriteResult> => {
        statuses.push(status as PolicyStatus);
        return Promise.resolve({ kind: 'written', resourceVersion: '2' });
      },
      setFinalizer: (_p, present): Promise<WriteResult> => {
        finalizers.push(present);
        return Promise.resolve({ kind: 'written', resourceVersion: '2' });
      },
    },
    events: { record: () => undefined },
    isWaiting: () => false,
    isRolling: () => false,
    refusal: () => undefined,
    enqueueWorkload: (k) => enqueued.push(k),
    audit: () => undefined,
    now: () => new Date('2026-12-01T00:00:05Z'),
  };
  const silent = { info: () => 0, warn: () => 0, error: () => 0, debug: () => 0 };
  const result = await reconcilePolicy('shop/spread', deps, silent);
  return { result, statuses, finalizers, enqueued };
}

const cases: {
  name: string;
  workloads: Workload[];
  held: boolean;
  named?: RegExp;
}[] = [
  { name: 'no workload carries anything: the finalizer goes', workloads: [], held: false },
  {
    name: 'a targeted workload with an unreadable record holds it, named',
    workloads: [workload('web', { app: 'web' }, '{"policies": ')],
    held: true,
    named: /Deployment shop\/web: annotation placement.dev\/applied is not valid JSON/,
  },
  {
    name: 'a record of the wrong shape that names the policy, on a workload it no longer targets',
    workloads: [
      workload(
        'left',
        { app: 'other' },
        '{"policies":{"PlacementPolicy/shop/spread":1},"slots":[]}',
      ),
    ],
    held: true,
    named: /Deployment shop\/left: annotation .* slots: \[\] is not an object/,
  },
  {
    name: 'an unreadable record on a workload the policy never reached does not hold it',
    workloads: [workload('db', { app: 'db' }, '{"policies": ')],
    held: false,
  },
];

for (const c of cases) {
  void test(`deleting: ${c.name}`, async () => {
    const { result, statuses, finalizers } = await reconcile(c.workloads);
    if (!c.held) {
      assert.deepEqual(finalizers, [false]);
      return;
    }
    assert.deepEqual(finalizers, [], 'the finalizer stays');
    assert.deepEqual(result, { kind: 'requeueAfter', ms: REVERT_POLL_MS });
    const degraded = statuses[0]?.conditions.find((x) => x.type === 'Degraded');
    assert.equal(degraded?.reason, 'DeletionBlocked');
    assert.match(degraded.message, c.named ?? /./);
    const ready = statuses[0]?.conditions.find((x) => x.type === 'Ready');
    assert.equal(ready?.reason, 'Deleting');
  });
}
