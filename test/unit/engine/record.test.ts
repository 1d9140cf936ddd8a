// The `placement.dev/applied` record is read at the boundary, every field checked: a record
// that parses as JSON but has the wrong shape must block its workload with a message naming
// the field, never reach merge.ts half-read (where it used to throw a TypeError on every retry).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { desiredAffinity, parseRecord, revertInjected } from '../../../src/engine/index.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

/** A record as the operator writes it: every field present and well formed. */
const valid = {
  policies: { 'PlacementPolicy/shop/spread': 3, 'ClusterPlacementPolicy/zones': 1 },
  slots: {
    'podAntiAffinity.required': [
      { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
    ],
  },
  node: {
    matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }],
    matchFields: [],
    createdTerm: false,
    alreadyThere: [
      { term: 1, matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
    ],
  },
  created: ['affinity.podAntiAffinity', `affinity.podAntiAffinity.${REQUIRED}`],
};

/** The valid record with one field replaced (`undefined` removes it). */
function withField(path: readonly (string | number)[], value: unknown): string {
  const copy = structuredClone(valid) as Record<string, unknown>;
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1) ?? '';
  if (value === undefined) Reflect.deleteProperty(parent, last);
  else parent[last] = value;
  return JSON.stringify(copy);
}

const cases: { name: string; text: string | undefined; problem?: RegExp }[] = [
  { name: 'no annotation: no record', text: undefined },
  { name: 'a record as the operator writes it', text: JSON.stringify(valid) },
  {
    name: 'an old record (no alreadyThere, no node)',
    text: JSON.stringify({ policies: { 'PlacementPolicy/a/b': 1 }, slots: {}, created: [] }),
  },
  { name: 'not JSON', text: '{"policies": ', problem: /^is not valid JSON$/ },
  {
    name: 'JSON but not an object',
    text: '[1,2]',
    problem: /\(record\): \[1,2\] is not an object/,
  },
  {
    name: 'the example from issue 16',
    text: '{"policies":{},"slots":{},"created":[1],"node":"x"}',
    problem: /^is not a valid record: node: "x" is not an object; created\[0\]: 1 is not a string$/,
  },
  {
    name: 'an unknown field',
    text: withField(['extra'], true),
    problem: /extra: is not a field of the record/,
  },
  {
    name: 'policies missing',
    text: withField(['policies'], undefined),
    problem: /policies: is missing/,
  },
  {
    name: 'policies a list',
    text: withField(['policies'], []),
    problem: /policies: \[\] is not an object/,
  },
  {
    name: 'a policy ref of the wrong form',
    text: withField(['policies'], { 'Deployment/shop/web': 1 }),
    problem: /policies\["Deployment\/shop\/web"\]: is not a policy/,
  },
  {
    name: 'a generation that is not a whole number',
    text: withField(['policies', 'PlacementPolicy/shop/spread'], '3'),
    problem: /policies\["PlacementPolicy\/shop\/spread"\]: "3" is not a generation/,
  },
  {
    name: 'a negative generation',
    text: withField(['policies', 'PlacementPolicy/shop/spread'], -1),
    problem: /-1 is not a generation/,
  },
  { name: 'slots missing', text: withField(['slots'], undefined), problem: /slots: is missing/ },
  {
    name: 'slots a string',
    text: withField(['slots'], 'x'),
    problem: /slots: "x" is not an object/,
  },
  {
    name: 'an unknown slot',
    text: withField(['slots', 'nodeAffinity.required'], []),
    problem: /slots\["nodeAffinity.required"\]: is not one of podAffinity.required, /,
  },
  {
    name: 'a slot that is not a list',
    text: withField(['slots', 'podAntiAffinity.required'], {}),
    problem: /slots\["podAntiAffinity.required"\]: \{\} is not a list/,
  },
  {
    name: 'a term that is not an object',
    text: withField(['slots', 'podAntiAffinity.required', 0], 'web'),
    problem: /slots\["podAntiAffinity.required"\]\[0\]: "web" is not an object/,
  },
  {
    name: 'injected spread constraints',
    text: withField(
      ['topologySpreadConstraints'],
      [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' }],
    ),
  },
  {
    name: 'spread constraints that are not a list',
    text: withField(['topologySpreadConstraints'], { maxSkew: 1 }),
    problem: /topologySpreadConstraints: \{"maxSkew":1\} is not a list/,
  },
  {
    name: 'a spread constraint that is not an object',
    text: withField(['topologySpreadConstraints'], ['zone']),
    problem: /topologySpreadConstraints\[0\]: "zone" is not an object/,
  },
  {
    name: 'the spread list among the containers it created',
    text: withField(['created'], ['topologySpreadConstraints']),
  },
  { name: 'node a string', text: withField(['node'], 'x'), problem: /node: "x" is not an object/ },
  {
    name: 'node.matchExpressions missing',
    text: withField(['node', 'matchExpressions'], undefined),
    problem: /node.matchExpressions: is missing/,
  },
  {
    name: 'node.matchFields not a list',
    text: withField(['node', 'matchFields'], 7),
    problem: /node.matchFields: 7 is not a list/,
  },
  {
    name: 'a node requirement that is not an object',
    text: withField(['node', 'matchExpressions', 0], null),
    problem: /node.matchExpressions\[0\]: null is not an object/,
  },
  {
    name: 'node.createdTerm not a boolean',
    text: withField(['node', 'createdTerm'], 'yes'),
    problem: /node.createdTerm: "yes" is not true or false/,
  },
  {
    name: 'an unknown node field',
    text: withField(['node', 'terms'], []),
    problem: /node.terms: is not a field of the record/,
  },
  {
    name: 'node.alreadyThere not a list',
    text: withField(['node', 'alreadyThere'], {}),
    problem: /node.alreadyThere: \{\} is not a list/,
  },
  {
    name: 'an alreadyThere position that is not a whole number',
    text: withField(['node', 'alreadyThere', 0, 'term'], 1.5),
    problem: /node.alreadyThere\[0\].term: 1.5 is not a position/,
  },
  {
    name: 'alreadyThere requirements that are not objects',
    text: withField(['node', 'alreadyThere', 0, 'matchExpressions'], ['type']),
    problem: /node.alreadyThere\[0\].matchExpressions\[0\]: "type" is not an object/,
  },
  {
    name: 'created missing',
    text: withField(['created'], undefined),
    problem: /created: is missing/,
  },
  {
    name: 'created not a list',
    text: withField(['created'], 'affinity'),
    problem: /created: "affinity" is not a list/,
  },
  {
    name: 'a created path the operator never creates',
    text: withField(['created', 0], 'affinity.podAntiAffinity.somethingElse'),
    problem:
      /created\[0\]: "affinity.podAntiAffinity.somethingElse" is not a container an injection creates/,
  },
  {
    name: 'a long value is cut short in the message',
    text: withField(['created', 0], 'x'.repeat(10_000)),
    problem: /created\[0\]: "x{36}\.\.\. is not a container/,
  },
];

for (const c of cases) {
  void test(`parseRecord: ${c.name}`, () => {
    const parsed = parseRecord(c.text);
    if (c.problem === undefined) {
      assert.notEqual(parsed.kind, 'invalid', JSON.stringify(parsed));
      return;
    }
    if (parsed.kind !== 'invalid') assert.fail(`accepted: ${JSON.stringify(parsed)}`);
    assert.match(parsed.problem, c.problem);
    if (c.text !== undefined && c.text.length > 1000) assert.ok(parsed.problem.length < 300);
  });
}

void test('every problem of a record is reported at once', () => {
  const parsed = parseRecord('{"policies":{},"slots":{},"created":[1],"node":"x"}');
  if (parsed.kind !== 'invalid') assert.fail('accepted');
  assert.equal(parsed.problem.split('; ').length, 2);
});

void test('a record that parses can be reverted without throwing', () => {
  const parsed = parseRecord(JSON.stringify(valid));
  if (parsed.kind !== 'ok') assert.fail(parsed.kind);
  assert.doesNotThrow(() => revertInjected({ nodeAffinity: {} }, parsed.record));
  assert.doesNotThrow(() => desiredAffinity(undefined, parsed.record, null));
});
