import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import type { Labels, LabelSelector } from '../../../src/api/core.ts';
import { FieldError } from '../../../src/engine/errors.ts';
import { compileSelector, selectorMatches } from '../../../src/engine/selector.ts';
import { exprs, labelsIn } from '../builders.ts';
import { referenceSelectorMatches } from '../reference.ts';

const FIELD =
  'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector';

const matches = (selector: LabelSelector | null | undefined, labels: Labels): boolean =>
  selectorMatches(compileSelector(selector, FIELD), labels);

void describe('selectorMatches', () => {
  const cases: {
    name: string;
    selector: LabelSelector | null | undefined;
    labels: Labels;
    want: boolean;
  }[] = [
    {
      name: 'empty selector {} selects a pod without labels',
      selector: {},
      labels: {},
      want: true,
    },
    { name: 'empty selector {} selects any pod', selector: {}, labels: { app: 'web' }, want: true },
    { name: 'null selects nothing', selector: null, labels: {}, want: false },
    {
      name: 'null selects nothing, even a labelled pod',
      selector: null,
      labels: { app: 'web' },
      want: false,
    },
    { name: 'undefined selects nothing', selector: undefined, labels: { app: 'web' }, want: false },
    {
      name: 'matchLabels: equal value',
      selector: labelsIn({ app: 'web' }),
      labels: { app: 'web', tier: 'x' },
      want: true,
    },
    {
      name: 'matchLabels: other value',
      selector: labelsIn({ app: 'web' }),
      labels: { app: 'db' },
      want: false,
    },
    {
      name: 'matchLabels: missing key',
      selector: labelsIn({ app: 'web' }),
      labels: { tier: 'web' },
      want: false,
    },
    {
      name: 'matchLabels: every pair must match',
      selector: labelsIn({ app: 'web', tier: 'fe' }),
      labels: { app: 'web', tier: 'be' },
      want: false,
    },
    {
      name: 'matchLabels: empty value matches an empty label',
      selector: labelsIn({ app: '' }),
      labels: { app: '' },
      want: true,
    },
    {
      name: 'In: one of the values',
      selector: exprs(['app', 'In', ['web', 'db']]),
      labels: { app: 'db' },
      want: true,
    },
    {
      name: 'In: none of the values',
      selector: exprs(['app', 'In', ['web', 'db']]),
      labels: { app: 'cache' },
      want: false,
    },
    {
      name: 'In: pod without the label does not match',
      selector: exprs(['app', 'In', ['web']]),
      labels: {},
      want: false,
    },
    {
      name: 'NotIn: pod without the label matches',
      selector: exprs(['app', 'NotIn', ['web']]),
      labels: {},
      want: true,
    },
    {
      name: 'NotIn: other value matches',
      selector: exprs(['app', 'NotIn', ['web']]),
      labels: { app: 'db' },
      want: true,
    },
    {
      name: 'NotIn: listed value does not match',
      selector: exprs(['app', 'NotIn', ['web', 'db']]),
      labels: { app: 'db' },
      want: false,
    },
    {
      name: 'Exists: label present with any value',
      selector: exprs(['gpu', 'Exists']),
      labels: { gpu: '' },
      want: true,
    },
    {
      name: 'Exists: label missing',
      selector: exprs(['gpu', 'Exists']),
      labels: { app: 'gpu' },
      want: false,
    },
    {
      name: 'DoesNotExist: pod without the label matches',
      selector: exprs(['gpu', 'DoesNotExist']),
      labels: { app: 'web' },
      want: true,
    },
    {
      name: 'DoesNotExist: label present',
      selector: exprs(['gpu', 'DoesNotExist']),
      labels: { gpu: 'a100' },
      want: false,
    },
    {
      name: 'Exists with an empty values list is accepted',
      selector: exprs(['gpu', 'Exists', []]),
      labels: { gpu: 'x' },
      want: true,
    },
    {
      name: 'matchLabels and matchExpressions are ANDed',
      selector: {
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['fe'] }],
      },
      labels: { app: 'web', tier: 'fe' },
      want: false,
    },
    {
      name: 'requirements on one key are ANDed',
      selector: exprs(['app', 'In', ['web', 'db']], ['app', 'NotIn', ['db']]),
      labels: { app: 'db' },
      want: false,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.equal(matches(c.selector, c.labels), c.want);
    });
  }
});

void describe('compileSelector errors name the field', () => {
  const cases: { name: string; selector: LabelSelector; field: string; problem: RegExp }[] = [
    {
      name: 'unknown operator',
      selector: exprs(['app', 'In', ['x']], ['app', 'Inn', ['web']]),
      field: `${FIELD}.matchExpressions[1].operator`,
      problem: /^"Inn" is not one of In, NotIn, Exists, DoesNotExist$/,
    },
    {
      name: 'In without values',
      selector: exprs(['app', 'In']),
      field: `${FIELD}.matchExpressions[0].values`,
      problem: /must be non-empty when operator is In/,
    },
    {
      name: 'In with an empty values list',
      selector: exprs(['app', 'In', []]),
      field: `${FIELD}.matchExpressions[0].values`,
      problem: /must be non-empty when operator is In/,
    },
    {
      name: 'NotIn without values',
      selector: exprs(['app', 'NotIn', []]),
      field: `${FIELD}.matchExpressions[0].values`,
      problem: /must be non-empty when operator is NotIn/,
    },
    {
      name: 'Exists with values',
      selector: exprs(['app', 'Exists', ['web']]),
      field: `${FIELD}.matchExpressions[0].values`,
      problem: /must be empty when operator is Exists/,
    },
    {
      name: 'DoesNotExist with values',
      selector: exprs(['app', 'DoesNotExist', ['web']]),
      field: `${FIELD}.matchExpressions[0].values`,
      problem: /must be empty when operator is DoesNotExist/,
    },
    {
      name: 'empty key',
      selector: exprs(['', 'Exists']),
      field: `${FIELD}.matchExpressions[0].key`,
      problem: /must not be empty/,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.throws(
        () => compileSelector(c.selector, FIELD),
        (err: unknown) => {
          assert.ok(err instanceof FieldError, `expected a FieldError, got ${String(err)}`);
          assert.equal(err.field, c.field);
          assert.match(err.problem, c.problem);
          assert.ok(err.message.startsWith(`${c.field}: `), err.message);
          return true;
        },
      );
    });
  }
});

// ---- property: compiled selectors agree with a direct reading of the API's rules ----
// (referenceSelectorMatches works on the raw selector and shares nothing with the engine)

const KEYS = ['a', 'b', 'c'] as const;
const VALUES = ['1', '2', '3'] as const;
const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

const labelSetArb: fc.Arbitrary<Labels> = fc.dictionary(
  fc.constantFrom(...KEYS),
  fc.constantFrom(...VALUES),
  { maxKeys: 3 },
);

const expressionArb = fc
  .record({
    key: fc.constantFrom(...KEYS),
    operator: fc.constantFrom(...OPERATORS),
    values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 3 }),
  })
  .map((e) =>
    e.operator === 'In' || e.operator === 'NotIn' ? e : { key: e.key, operator: e.operator },
  );

const selectorArb: fc.Arbitrary<LabelSelector | null | undefined> = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.record(
    {
      matchLabels: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), {
        maxKeys: 2,
      }),
      matchExpressions: fc.array(expressionArb, { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
);

void test('selectorMatches agrees with a reference implementation', () => {
  fc.assert(
    fc.property(selectorArb, fc.array(labelSetArb, { minLength: 1, maxLength: 8 }), (s, sets) => {
      const compiled = compileSelector(s, FIELD);
      for (const labels of sets) {
        assert.equal(
          selectorMatches(compiled, labels),
          referenceSelectorMatches(s, labels),
          `selector ${JSON.stringify(s)} on ${JSON.stringify(labels)}`,
        );
      }
    }),
    { numRuns: 1000 },
  );
});
