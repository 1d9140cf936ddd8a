import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Workload } from '../../../src/api/cluster.ts';
import { RolloutBudget } from '../../../src/controller/rollout-budget.ts';

const workload = (generation: number, rolledOut: boolean, extra: Partial<Workload> = {}) => {
  const w: Workload = {
    kind: 'Deployment',
    namespace: 'shop',
    name: 'web',
    uid: 'uid-web',
    resourceVersion: '1',
    generation,
    annotations: {},
    ownerReferences: [],
    selector: { matchLabels: { app: 'web' } },
    templateLabels: { app: 'web' },
    affinity: undefined,
    rolledOut,
    replicas: 2,
    ...extra,
  };
  return w;
};

void test('a slot is held from the write until the rollout of that generation is done', () => {
  const freed: string[][] = [];
  const budget = new RolloutBudget(1, (keys) => freed.push([...keys]));
  assert.ok(budget.tryAcquire('a'));
  assert.equal(budget.isRolling('a'), false, 'taken, not yet written');
  assert.equal(budget.tryAcquire('b'), false);
  assert.ok(budget.isWaiting('b'));

  budget.wrote('a', 4);
  assert.ok(budget.isRolling('a'));
  budget.observe(workload(4, true), 'a'); // the old generation's status: not ours yet
  budget.observe(workload(5, false), 'a');
  assert.ok(budget.isRolling('a'));
  assert.deepEqual(freed, []);

  budget.observe(workload(5, true), 'a');
  assert.equal(budget.isRolling('a'), false);
  assert.deepEqual(freed, [['b']], 'the waiting workload is woken');
  assert.equal(budget.inUse, 0);
});

void test('a stalled rollout keeps its slot: nothing more rolls out until it completes', () => {
  const freed: string[][] = [];
  const budget = new RolloutBudget(1, (keys) => freed.push([...keys]));
  assert.ok(budget.tryAcquire('a'));
  budget.wrote('a', 1);
  budget.observe(workload(2, false, { rolloutStalled: 'ProgressDeadlineExceeded' }), 'a');
  assert.ok(budget.isRolling('a'));
  assert.equal(budget.tryAcquire('b'), false);
  assert.deepEqual(freed, []);

  budget.forget('a'); // deleted, or taken out of the policy and reverted elsewhere
  assert.deepEqual(freed, [['b']]);
  assert.ok(budget.tryAcquire('b'));
});

void test('a write that failed gives its slot back; a slot never written is not rolling', () => {
  const budget = new RolloutBudget(2, () => undefined);
  assert.ok(budget.tryAcquire('a'));
  budget.cancel('a');
  assert.equal(budget.inUse, 0);
  assert.throws(() => new RolloutBudget(0, () => undefined), /positive integer/);
});
