import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { jsonEqual, mergeDiff } from '../../../src/util/json.ts';

/** RFC 7396's MergePatch(target, patch), to check that the diff does what it says. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out = new Map<string, unknown>(
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? Object.entries(target)
      : [],
  );
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) out.delete(key);
    else out.set(key, applyMergePatch(out.get(key), value));
  }
  return Object.fromEntries(out);
}

const term = (key: string) => ({
  labelSelector: { matchLabels: { app: key } },
  topologyKey: 'kubernetes.io/hostname',
});

interface Case {
  readonly name: string;
  readonly from: unknown;
  readonly to: unknown;
  readonly patch: unknown;
}

const CASES: readonly Case[] = [
  { name: 'equal values need no patch', from: { a: 1 }, to: { a: 1 }, patch: undefined },
  { name: 'key order does not matter', from: { a: 1, b: 2 }, to: { b: 2, a: 1 }, patch: undefined },
  { name: 'both absent need no patch', from: undefined, to: undefined, patch: undefined },
  { name: 'a new value is written whole', from: undefined, to: { a: 1 }, patch: { a: 1 } },
  { name: 'removing the value is null', from: { a: 1 }, to: undefined, patch: null },
  { name: 'a removed key is null', from: { a: 1, b: 2 }, to: { a: 1 }, patch: { b: null } },
  {
    name: 'an undefined key counts as removed',
    from: { a: 1, b: 2 },
    to: { a: 1, b: undefined },
    patch: { b: null },
  },
  {
    name: 'nested changes stay nested',
    from: { a: { b: 1, c: 2 } },
    to: { a: { b: 1, c: 3 } },
    patch: { a: { c: 3 } },
  },
  {
    name: 'arrays are replaced whole',
    from: { podAntiAffinity: { required: [term('a')] } },
    to: { podAntiAffinity: { required: [term('a'), term('b')] } },
    patch: { podAntiAffinity: { required: [term('a'), term('b')] } },
  },
  {
    name: 'a sibling rule is left alone',
    from: { nodeAffinity: { x: 1 }, podAffinity: { required: [term('a')] } },
    to: { nodeAffinity: { x: 1 } },
    patch: { podAffinity: null },
  },
  {
    name: 'an object replacing a scalar is written whole',
    from: { a: 1 },
    to: { a: { b: 1 } },
    patch: { a: { b: 1 } },
  },
];

for (const c of CASES) {
  void test(`mergeDiff: ${c.name}`, () => {
    assert.deepEqual(mergeDiff(c.from, c.to), c.patch);
  });
}

void test('jsonEqual can ignore keys at any depth', () => {
  const ignore = new Set(['resourceVersion']);
  assert.equal(
    jsonEqual(
      { metadata: { resourceVersion: '1', name: 'a' } },
      { metadata: { resourceVersion: '2', name: 'a' } },
      ignore,
    ),
    true,
  );
  assert.equal(jsonEqual({ metadata: { name: 'a' } }, { metadata: { name: 'b' } }, ignore), false);
});

/** JSON without nulls: a merge patch cannot express a null value (null means delete). */
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.boolean(),
    fc.integer(),
    fc.string({ maxLength: 3 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('value'), { maxKeys: 4 }),
  ),
})).value;
const object = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), json, { maxKeys: 4 });

void test('applying mergeDiff(from, to) to from gives to', () => {
  fc.assert(
    fc.property(object, object, (from, to) => {
      const patch = mergeDiff(from, to);
      const result = patch === undefined ? from : applyMergePatch(from, patch);
      assert.ok(jsonEqual(result, to), JSON.stringify({ from, to, patch, result }));
    }),
  );
});
