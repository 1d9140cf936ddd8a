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

void test('a freed slot wakes the first in line only, and is kept for it', () => {
  const freed: string[][] = [];
  const budget = new RolloutBudget(1, (keys) => freed.push([...keys]));
  assert.ok(budget.tryAcquire('a'));
  for (const k of ['b', 'c', 'd']) assert.equal(budget.tryAcquire(k), false);
  budget.wrote('a', 1);
  budget.observe(workload(2, true), 'a');
  assert.deepEqual(freed, [['b']], 'not the whole line');
  assert.equal(budget.tryAcquire('c'), false, 'c asking again does not take the slot kept for b');
  assert.ok(budget.isWaiting('b'), 'b counts as waiting until it takes the slot');
  assert.ok(budget.tryAcquire('b'));
  assert.equal(budget.inUse, 1);
});

void test('a woken key that needs no slot passes its turn on; so does one that is gone', () => {
  const freed: string[][] = [];
  const budget = new RolloutBudget(1, (keys) => freed.push([...keys]));
  assert.ok(budget.tryAcquire('a'));
  for (const k of ['b', 'c', 'd']) assert.equal(budget.tryAcquire(k), false);
  budget.cancel('a'); // a's write failed: its slot frees
  assert.deepEqual(freed.at(-1), ['b']);
  budget.declined('b'); // b's policy no longer asks for a template change
  assert.deepEqual(freed.at(-1), ['c']);
  budget.forget('c'); // c was deleted
  assert.deepEqual(freed.at(-1), ['d']);
  assert.equal(budget.isWaiting('b'), false);
  assert.ok(budget.tryAcquire('d'));
  budget.declined('d'); // holding a slot, declined changes nothing
  assert.equal(budget.inUse, 1);
});

void test('with two slots free, two are woken in the order they asked', () => {
  const freed: string[][] = [];
  const budget = new RolloutBudget(2, (keys) => freed.push([...keys]));
  assert.ok(budget.tryAcquire('a'));
  assert.ok(budget.tryAcquire('b'));
  for (const k of ['c', 'd', 'e']) assert.equal(budget.tryAcquire(k), false);
  budget.cancel('a');
  budget.cancel('b');
  assert.deepEqual(freed, [['c'], ['d']]);
  assert.ok(budget.tryAcquire('d'));
  assert.ok(budget.tryAcquire('c'));
  assert.equal(budget.tryAcquire('e'), false);
});
