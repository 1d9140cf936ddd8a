import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EventDeduplicator, eventKey, truncateUtf8 } from '../../../src/kube/events.ts';

const MINUTE = 60_000;

void test('EventDeduplicator admits an identical event once per window', () => {
  const dedup = new EventDeduplicator(10 * MINUTE);
  assert.equal(dedup.admit('k', 0), true);
  assert.equal(dedup.admit('k', 5 * MINUTE), false);
  assert.equal(dedup.admit('k', 10 * MINUTE - 1), false);
  assert.equal(dedup.admit('k', 10 * MINUTE), true);
  assert.equal(dedup.admit('other', 10 * MINUTE), true);
});

void test('EventDeduplicator forgets a failed write so the next one is tried', () => {
  const dedup = new EventDeduplicator(10 * MINUTE);
  dedup.admit('k', 0);
  dedup.forget('k');
  assert.equal(dedup.admit('k', 1), true);
});

void test('EventDeduplicator stays bounded and drops expired entries', () => {
  const dedup = new EventDeduplicator(10 * MINUTE, 3);
  for (let i = 0; i < 10; i++) dedup.admit(`k${i}`, i);
  assert.equal(dedup.size, 3);
  dedup.admit('late', 30 * MINUTE);
  assert.equal(dedup.size, 1);
});

void test('eventKey tells apart target, type, reason and message', () => {
  const target = { kind: 'Pod', namespace: 'ns', name: 'p', apiVersion: 'v1' };
  const keys = new Set([
    eventKey(target, 'Warning', 'Violation', 'm'),
    eventKey({ ...target, name: 'q' }, 'Warning', 'Violation', 'm'),
    eventKey(target, 'Normal', 'Violation', 'm'),
    eventKey(target, 'Warning', 'Other', 'm'),
    eventKey(target, 'Warning', 'Violation', 'n'),
  ]);
  assert.equal(keys.size, 5);
});

void test('truncateUtf8 keeps within the byte limit without splitting a character', () => {
  assert.equal(truncateUtf8('short', 10), 'short');
  const cut = truncateUtf8('é'.repeat(600), 1024);
  assert.ok(Buffer.byteLength(cut, 'utf8') <= 1024);
  assert.ok(cut.endsWith('...'));
  assert.ok(!cut.includes('\uFFFD'));
});
