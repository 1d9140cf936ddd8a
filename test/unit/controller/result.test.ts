// From a write's result to what the reconcile asks of the queue.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { WriteResult } from '../../../src/api/cluster.ts';
import { afterWrite, type ReconcileResult } from '../../../src/controller/result.ts';

const CASES: readonly {
  readonly name: string;
  readonly write: WriteResult;
  readonly want: { readonly kind: ReconcileResult['kind'] | 'go on'; readonly message?: string };
}[] = [
  {
    name: 'written: go on',
    write: { kind: 'written', resourceVersion: '7' },
    want: { kind: 'go on' },
  },
  { name: 'gone: go on', write: { kind: 'gone' }, want: { kind: 'go on' } },
  { name: 'conflict: requeue at once', write: { kind: 'conflict' }, want: { kind: 'requeue' } },
  {
    name: 'a failure worth retrying: an error, retried with backoff',
    write: { kind: 'failed', message: '503 Service Unavailable', retryable: true },
    want: { kind: 'error', message: 'writing x: 503 Service Unavailable' },
  },
  {
    name: 'a refusal that may pass later (admission, quota, RBAC): an error, retried with backoff',
    write: { kind: 'failed', message: '403 Forbidden', retryable: false },
    want: { kind: 'error', message: 'writing x: 403 Forbidden' },
  },
  {
    name: 'a request the API server rejects as invalid: terminal',
    write: { kind: 'failed', message: '422 Invalid', retryable: false, invalid: ['spec'] },
    want: { kind: 'terminal', message: 'writing x: 422 Invalid' },
  },
];

for (const c of CASES) {
  void test(`afterWrite: ${c.name}`, () => {
    const got = afterWrite(c.write, 'writing x');
    assert.equal(got?.kind ?? 'go on', c.want.kind);
    if (c.want.message !== undefined)
      assert.equal(got !== undefined && 'error' in got ? got.error.message : '', c.want.message);
  });
}
