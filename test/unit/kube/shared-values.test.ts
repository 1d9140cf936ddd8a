import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SharedStrings, SharedValues } from '../../../src/kube/shared-values.ts';

void test('a value is held once under its key; the table drops its oldest entry when full', () => {
  const values = new SharedValues<{ readonly n: number }>(2);
  const one = { n: 1 };
  assert.equal(values.share('1', one), one);
  assert.equal(values.share('1', { n: 1 }), one, 'the held copy, not the new one');
  const two = values.share('2', { n: 2 });
  values.share('3', { n: 3 }); // full: "1" goes
  assert.equal(values.size, 2);
  assert.notEqual(values.share('1', { n: 1 }), one, '"1" was dropped, so a new copy is held');
  assert.equal(values.share('3', { n: 3 }).n, 3);
  assert.notEqual(values.share('2', { n: 2 }), two, '"2" was dropped when "1" came back');
});

void test('a string is its own key; undefined stays undefined', () => {
  const strings = new SharedStrings(4);
  assert.equal(strings.share(undefined), undefined);
  assert.equal(strings.share(['zone', 'a'].join('-')), 'zone-a');
  assert.equal(strings.size, 1);
});

void test('repeats in a row get the held copy; a key back after it was dropped, a new one', () => {
  const values = new SharedValues<{ readonly n: number }>(1);
  const a = values.share(['a', 'key'].join('-'), { n: 1 });
  assert.equal(values.share(['a', 'key'].join('-'), { n: 1 }), a, 'a new string, an equal key');
  const b = values.share('b', { n: 2 }); // full: "a-key" goes
  assert.equal(values.share('b', { n: 2 }), b);
  assert.equal(values.size, 1);
  const again = values.share('a-key', { n: 1 });
  assert.notEqual(again, a, '"a-key" was dropped and not the last key: a new copy is held');
  assert.equal(values.share('a-key', { n: 1 }), again);
  assert.notEqual(values.share('b', { n: 2 }), b, '"b" was dropped when "a-key" came back');
});
