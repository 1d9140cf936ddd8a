// A deleted policy keeps its finalizer while any workload may still carry its terms: those
// whose record lists it, and those whose record cannot be read (it may list the policy) when
// the policy targets them or the unreadable text names it. The ones a person must fix first
// are named on the policy.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Workload, WriteResult } from '../../../src/api/cluster.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import {
  reconcilePolicy,
  REVERT_POLL_MS,
  type PolicyReconcilerDeps,
} from '../../../src/controller/policy-reconciler.ts';
import type { PolicyStatus } from '../../../src/controller/policy-status.ts';
import { cachedDeployment, HOSTNAME, labelsIn, namespacedPolicy } from '../builders.ts';
import { APPLIED_ANNOTATION, POLICY_FINALIZER, workloadKey } from '../../../src/api/cluster.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { storeOf } from './scenes.ts';

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

const workload = (name: string, labels: Record<string, string>, record?: string): Workload =>
  cachedDeployment('shop', name, labels, {
    annotations: record === undefined ? {} : { [APPLIED_ANNOTATION]: record },
  });

/** The policy `spread` as it is before deletion, with these finalizers. */
const live = (finalizers: string[]): PlacementPolicy => {
  const { deletionTimestamp: _, ...metadata } = deleted.metadata;
  return { ...deleted, metadata: { ...metadata, finalizers } };
};

async function reconcile(
  workloads: readonly Workload[],
  policy: PlacementPolicy = deleted,
  answer: WriteResult = { kind: 'written', resourceVersion: '2' },
) {
  const statuses: PolicyStatus[] = [];
  const finalizers: boolean[] = [];
  const enqueued: string[] = [];
  const deps: PolicyReconcilerDeps = {
    policies: storeOf([policy], (p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`),
    workloads: storeOf(workloads, workloadKey),
    namespaceLabels: () => ({}),
    catalog: new PolicyCatalog(),
    writer: {
      writeStatus: (_p, status): Promise<WriteResult> => {
        statuses.push(status as PolicyStatus);
        return Promise.resolve(answer);
      },
      setFinalizer: (_p, present): Promise<WriteResult> => {
        finalizers.push(present);
        return Promise.resolve(answer);
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
  const result = await reconcilePolicy('shop/spread', deps, silentLogger);
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

const INVALID: WriteResult = {
  kind: 'failed',
  message: 'HTTP 422: status.conditions[0].reason: Invalid value',
  retryable: false,
  invalid: ['status.conditions[0].reason'],
};

const LIVE: readonly {
  name: string;
  policy: PlacementPolicy;
  answer?: WriteResult;
  want: { result: string; finalizers: boolean[]; statuses: number };
}[] = [
  {
    name: 'without its finalizer: the finalizer is added first, nothing else',
    policy: live([]),
    want: { result: 'done', finalizers: [true], statuses: 0 },
  },
  {
    name: 'the finalizer write rejected as invalid: terminal',
    policy: live([]),
    answer: INVALID,
    want: { result: 'terminal', finalizers: [true], statuses: 0 },
  },
  {
    name: 'with its finalizer: the status is written',
    policy: live([POLICY_FINALIZER]),
    want: { result: 'done', finalizers: [], statuses: 1 },
  },
  {
    name: 'the status write lost to another (409): requeued at once',
    policy: live([POLICY_FINALIZER]),
    answer: { kind: 'conflict' },
    want: { result: 'requeue', finalizers: [], statuses: 1 },
  },
  {
    name: 'the status write refused (403): an error, retried with backoff',
    policy: live([POLICY_FINALIZER]),
    answer: { kind: 'failed', message: 'HTTP 403: forbidden', retryable: false },
    want: { result: 'error', finalizers: [], statuses: 1 },
  },
  {
    name: 'the status write rejected as invalid: terminal',
    policy: live([POLICY_FINALIZER]),
    answer: INVALID,
    want: { result: 'terminal', finalizers: [], statuses: 1 },
  },
  {
    name: 'the policy went meanwhile (404): done',
    policy: live([POLICY_FINALIZER]),
    answer: { kind: 'gone' },
    want: { result: 'done', finalizers: [], statuses: 1 },
  },
];

for (const c of LIVE) {
  void test(`reconcilePolicy: ${c.name}`, async () => {
    const got = await reconcile([workload('web', { app: 'web' })], c.policy, c.answer);
    assert.equal(got.result.kind, c.want.result);
    assert.deepEqual(got.finalizers, c.want.finalizers);
    assert.equal(got.statuses.length, c.want.statuses);
  });
}
