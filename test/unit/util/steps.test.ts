// Long computations as generators: run at once, or in slices that let the event loop run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runAll, runSliced, runSlicedUnless, type Steps } from '../../../src/util/steps.ts';

/** Sums 1..n, yielding after each term, and notes how many terms it had added at each yield. */
function* sum(n: number, seen: number[]): Steps<number> {
  let total = 0;
  for (let i = 1; i <= n; i++) {
    total += i;
    seen.push(i);
    yield;
  }
  return total;
}

void test('runAll runs the steps to the end without yielding', () => {
  let other = false;
  setImmediate(() => {
    other = true;
  });
  assert.equal(runAll(sum(100, [])), 5050);
  assert.equal(other, false, 'nothing else ran in between');
});

void test('runSliced lets other callbacks run between slices and returns the same', async () => {
  const seen: number[] = [];
  const between: number[] = [];
  // Slices of no time: the loop gets a turn after every step.
  const note = (): void => {
    between.push(seen.length);
    if (seen.length < 5) setImmediate(note);
  };
  setImmediate(note);
  assert.equal(await runSliced(sum(5, seen), 0), 15);
  assert.ok(
    between.some((n) => n > 0 && n < 5),
    `a callback ran while the steps were under way (it saw ${JSON.stringify(between)})`,
  );
});

void test('runSlicedUnless stops between slices once told to, and runs no further step', async () => {
  const seen: number[] = [];
  let told = false;
  setImmediate(() => {
    told = seen.length < 5;
  });
  assert.equal(await runSlicedUnless(sum(5, seen), 0, () => told), null);
  assert.deepEqual(seen, [1], 'stopped after the first slice (one step: slices of no time)');
  assert.deepEqual(await runSlicedUnless(sum(5, []), 0, () => false), { value: 15 });
});
