import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../../../src/kube/backoff.ts';

void test('Backoff doubles from 1 s to a 30 s cap', () => {
  const backoff = new Backoff();
  const delays = Array.from({ length: 8 }, () => backoff.next());
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
});

void test('Backoff starts over after reset', () => {
  const backoff = new Backoff();
  backoff.next();
  backoff.next();
  backoff.reset();
  assert.deepEqual([backoff.next(), backoff.next()], [1_000, 2_000]);
});

void test('Backoff takes its bounds from options', () => {
  const backoff = new Backoff({ initialMs: 10, maxMs: 35 });
  assert.deepEqual(
    [backoff.next(), backoff.next(), backoff.next(), backoff.next()],
    [10, 20, 35, 35],
  );
});
