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

void test('shareParsed: an equal raw value in a row gets the last answer, without making it again', () => {
  const values = new SharedValues<Readonly<Record<string, string>>>(8);
  let made = 0;
  const make = (raw: unknown): Readonly<Record<string, string>> | undefined => {
    made++;
    return typeof raw === 'object' && raw !== null
      ? { ...(raw as Record<string, string>) }
      : undefined;
  };
  const first = values.shareParsed(JSON.parse('{"app":"web","tier":"front"}'), make);
  assert.deepEqual(first, { app: 'web', tier: 'front' });
  assert.equal(values.shareParsed(JSON.parse('{"app":"web","tier":"front"}'), make), first);
  assert.equal(made, 1, 'the repeat in a row was not made again');
  // Key order is part of the value (it is shared by its JSON text): not the last one.
  const reordered = values.shareParsed(JSON.parse('{"tier":"front","app":"web"}'), make);
  assert.equal(made, 2);
  assert.notEqual(reordered, first);
  assert.deepEqual(reordered, { tier: 'front', app: 'web' });
  // Back to the first text, not in a row: found by its JSON text, the held copy.
  assert.equal(values.shareParsed(JSON.parse('{"app":"web","tier":"front"}'), make), first);
  assert.equal(made, 3);
  assert.equal(values.size, 2);
});

void test('shareParsed compares nested arrays and objects item by item', () => {
  const values = new SharedValues<unknown>(8);
  const make = (raw: unknown): unknown => raw;
  const a = values.shareParsed(JSON.parse('[{"k":["x","y"]},1,null,true]'), make);
  assert.equal(values.shareParsed(JSON.parse('[{"k":["x","y"]},1,null,true]'), make), a);
  for (const other of [
    '[{"k":["x","z"]},1,null,true]',
    '[{"k":["x"]},1,null,true]',
    '[{"k":["x","y"]},"1",null,true]',
    '[{"k":["x","y"]},1,false,true]',
    '[{"j":["x","y"]},1,null,true]',
    '[{"k":{"0":"x","1":"y"}},1,null,true]',
    '[{"k":["x","y"],"l":1},1,null,true]',
  ]) {
    const got = values.shareParsed(JSON.parse(other), make);
    assert.deepEqual(got, JSON.parse(other), other);
    assert.equal(values.shareParsed(JSON.parse('[{"k":["x","y"]},1,null,true]'), make), a, other);
  }
  assert.equal(values.shareParsed(undefined, make), undefined, 'undefined stays undefined');
});

void test('shareParsed: what make refuses is not held', () => {
  const values = new SharedValues<string>(8);
  assert.equal(
    values.shareParsed(42, () => undefined),
    undefined,
  );
  assert.equal(
    values.shareParsed(42, () => 'made'),
    undefined,
    'the same raw value in a row',
  );
  assert.equal(values.size, 0);
});
