// One reconcile of one workload (workload-reconciler.ts), with the write's outcome chosen by
// the case: what is written, what the queue is asked, which Events are recorded, and what
// the policy status learns (refusals, settled policies).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  APPLIED_ANNOTATION,
  workloadKey,
  type AffinityWrite,
  type Workload,
  type WriteResult,
} from '../../../src/api/cluster.ts';
import { LostRecords } from '../../../src/controller/lost-records.ts';
import type { ReconcileResult } from '../../../src/controller/result.ts';
import { RolloutBudget } from '../../../src/controller/rollout-budget.ts';
import {
  reconcileWorkload,
  type WorkloadReconcilerDeps,
} from '../../../src/controller/workload-reconciler.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { cachedDeployment, HOSTNAME } from '../builders.ts';
import { catalogOf, storeOf, webPolicy } from './scenes.ts';

const web = cachedDeployment('shop', 'web', { app: 'web' });
const KEY = workloadKey(web);
const spread = webPolicy('spread', { spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }] });
const SPREAD = 'PlacementPolicy/shop/spread';

const INVALID_MESSAGE =
  'patch Deployment shop/web: HTTP 422: Deployment.apps "web" is invalid: ' +
  'metadata.annotations: Too long: may not be more than 262144 bytes';

/** The API server's validation rejects the write: the record does not fit beside the rest. */
const REJECTED: WriteResult = {
  kind: 'failed',
  message: INVALID_MESSAGE,
  retryable: false,
  invalid: ['metadata.annotations'],
};

interface Scene {
  readonly name: string;
  /** The cached workload; absent: it is gone. */
  readonly workload?: Workload;
  readonly policies?: readonly ReturnType<typeof webPolicy>[];
  /** What the API server answers to the write. */
  readonly answer?: WriteResult;
  /** The resourceVersion our last write was based on. */
  readonly writtenFrom?: string;
  /** What the refusals map holds before. */
  readonly refusedBefore?: string;
  readonly want: {
    readonly result: ReconcileResult['kind'];
    readonly writes: number;
    /** Event reasons, in order. */
    readonly events: readonly string[];
    /** What the refusals map holds after (undefined: nothing). */
    readonly refused?: RegExp;
    /** Policies told that the workload settled. */
    readonly settled?: readonly string[];
  };
}

const SCENES: readonly Scene[] = [
  {
    name: 'no policy targets it and nothing is carried: done, nothing written',
    workload: web,
    want: { result: 'done', writes: 0, events: [] },
  },
  {
    name: 'a policy targets it: the terms are written once, an Event says so',
    workload: web,
    policies: [spread],
    want: { result: 'done', writes: 1, events: ['AffinityInjected'], settled: [SPREAD] },
  },
  {
    name: 'the cache has not seen our last write yet: nothing decided again',
    workload: web,
    policies: [spread],
    writtenFrom: '1',
    want: { result: 'done', writes: 0, events: [] },
  },
  {
    name: 'someone wrote first (409): requeued at once, no Event',
    workload: web,
    policies: [spread],
    answer: { kind: 'conflict' },
    want: { result: 'requeue', writes: 1, events: [] },
  },
  {
    name: 'the workload went while we wrote (404): done',
    workload: web,
    policies: [spread],
    answer: { kind: 'gone' },
    want: { result: 'done', writes: 1, events: [] },
  },
  {
    name: 'the server failed (503): an error, retried with backoff, no Event',
    workload: web,
    policies: [spread],
    answer: { kind: 'failed', message: 'HTTP 503: etcd', retryable: true },
    want: { result: 'error', writes: 1, events: [] },
  },
  {
    name: 'an admission policy refused it: reported, retried with backoff (it may go)',
    workload: web,
    policies: [spread],
    answer: { kind: 'failed', message: 'HTTP 422: denied request', retryable: false },
    want: {
      result: 'error',
      writes: 1,
      events: ['PlacementWriteFailed'],
      refused: /^HTTP 422: denied request$/,
      settled: [SPREAD],
    },
  },
  {
    name: 'validation rejected it: terminal, the Event and the status name the field',
    workload: web,
    policies: [spread],
    answer: REJECTED,
    want: {
      result: 'terminal',
      writes: 1,
      events: ['PlacementWriteInvalid'],
      refused: /Too long.*; the API server rejects metadata.annotations: not tried again until/,
      settled: [SPREAD],
    },
  },
  {
    name: 'rejected again, as before: the policy status is not asked again',
    workload: web,
    policies: [spread],
    answer: REJECTED,
    refusedBefore:
      `${INVALID_MESSAGE}; the API server rejects metadata.annotations: not tried again ` +
      'until the workload or a policy for it changes',
    want: {
      result: 'terminal',
      writes: 1,
      events: ['PlacementWriteInvalid'],
      refused: /rejects metadata.annotations/,
      settled: [],
    },
  },
  {
    name: 'a refusal no longer holds once nothing needs writing',
    workload: web,
    refusedBefore: 'HTTP 422: denied request',
    want: { result: 'done', writes: 0, events: [] },
  },
  {
    name: 'an unreadable record: left alone, PlacementBlocked, no error',
    workload: { ...web, annotations: { [APPLIED_ANNOTATION]: '{"policies": ' } },
    policies: [spread],
    want: { result: 'done', writes: 0, events: ['PlacementBlocked'], settled: [SPREAD] },
  },
  {
    name: 'the workload is gone: done, what was kept of it forgotten',
    refusedBefore: 'HTTP 422: denied request',
    want: { result: 'done', writes: 0, events: [] },
  },
];

async function run(scene: Scene) {
  const writes: AffinityWrite[] = [];
  const events: string[] = [];
  const settled: string[] = [];
  const refused = new Map<string, string>();
  if (scene.refusedBefore !== undefined) refused.set(KEY, scene.refusedBefore);
  const writtenFrom = new Map<string, string>();
  if (scene.writtenFrom !== undefined) writtenFrom.set(KEY, scene.writtenFrom);
  const deps: WorkloadReconcilerDeps = {
    workloads: storeOf(scene.workload === undefined ? [] : [scene.workload], workloadKey),
    namespaceLabels: () => ({}),
    catalog: catalogOf(...(scene.policies ?? [])),
    writer: {
      writeAffinity: (write) => {
        writes.push(write);
        return Promise.resolve(scene.answer ?? { kind: 'written', resourceVersion: '2' });
      },
    },
    events: { record: (_target, _type, reason) => events.push(reason) },
    budget: new RolloutBudget(5, () => undefined),
    refused,
    writtenFrom,
    lost: new LostRecords(),
    log: silentLogger,
    onWorkloadSettled: (refs) => settled.push(...refs),
  };
  const result = await reconcileWorkload(KEY, deps, silentLogger);
  return { result, writes, events, settled, refused: refused.get(KEY), writtenFrom };
}

for (const scene of SCENES) {
  void test(`reconcileWorkload: ${scene.name}`, async () => {
    const got = await run(scene);
    const { want } = scene;
    assert.equal(got.result.kind, want.result);
    assert.equal(got.writes.length, want.writes);
    assert.deepEqual(got.events, want.events);
    if (want.refused === undefined) assert.equal(got.refused, undefined);
    else assert.match(got.refused ?? '', want.refused);
    assert.deepEqual(got.settled, want.settled ?? []);
    const madeIt = want.writes === 1 && (scene.answer?.kind ?? 'written') === 'written';
    // A write that went through is remembered until the cache shows it; no other is.
    assert.equal(got.writtenFrom.get(KEY), madeIt ? web.resourceVersion : scene.writtenFrom);
  });
}
