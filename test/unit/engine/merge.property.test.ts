// Never lose a term (docs/architecture.md, "Rewriting"), as properties of the
// pure merge: for any affinity an owner may have written and any terms policies may ask,
// injecting then reverting gives back the owner's affinity byte for byte; the owner's terms
// stay in place and in order; a policy edit replaces what the old version injected instead
// of piling up; a second reconcile of the same inputs changes nothing; an owner's edit made
// after the injection survives the revert; the record survives its annotation round trip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Affinity } from '../../../src/api/core.ts';
import type { JsonValue } from '../../../src/engine/canonical.ts';
import {
  desiredAffinity,
  inject,
  revertInjected,
  type Injection,
} from '../../../src/engine/merge.ts';
import { parseRecord, serializeRecord, SLOTS, type Slot } from '../../../src/engine/record.ts';
import { jsonEqual } from '../../../src/util/json.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREFERRED = 'preferredDuringSchedulingIgnoredDuringExecution';
const RUNS = { numRuns: 500 };

// ------------------------------------------------------------------ generators

const key = fc.constantFrom('app', 'tier', 'team', 'zone');
const value = fc.constantFrom('a', 'b', 'c');
const expression = fc.oneof(
  fc.record({
    key,
    operator: fc.constantFrom('In', 'NotIn'),
    values: fc.uniqueArray(value, { minLength: 1, maxLength: 2 }),
  }),
  fc.record({ key, operator: fc.constantFrom('Exists', 'DoesNotExist') }),
);
const selector = fc.record(
  {
    matchLabels: fc.dictionary(key, value, { minKeys: 1, maxKeys: 2 }),
    matchExpressions: fc.array(expression, { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const podTerm = fc.record(
  {
    labelSelector: selector,
    topologyKey: fc.constantFrom('kubernetes.io/hostname', 'topology.kubernetes.io/zone'),
    namespaces: fc.uniqueArray(fc.constantFrom('shop', 'data'), { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: ['topologyKey'] },
);
const weighted = fc.record({ weight: fc.integer({ min: 1, max: 100 }), podAffinityTerm: podTerm });
const nodeRequirement = fc.record({
  key: fc.constantFrom('pool', 'disk', 'kubernetes.io/arch'),
  operator: fc.constantFrom('In', 'NotIn'),
  values: fc.uniqueArray(fc.constantFrom('x', 'y', 'amd64'), { minLength: 1, maxLength: 2 }),
});
const preferredNode = fc.record({
  weight: fc.integer({ min: 1, max: 100 }),
  preference: fc.record({
    matchExpressions: fc.array(nodeRequirement, { minLength: 1, maxLength: 2 }),
  }),
});

/** A list as the API server stores it: absent rather than empty. */
const list = <T>(item: fc.Arbitrary<T>) => fc.array(item, { minLength: 1, maxLength: 3 });
const podRules = <T, U>(required: fc.Arbitrary<T>, preferred: fc.Arbitrary<U>) =>
  fc.record({ [REQUIRED]: list(required), [PREFERRED]: list(preferred) }, { requiredKeys: [] });

/** What an owner may have written; `{}` containers included, since the server keeps them. */
const ownerAffinity: fc.Arbitrary<Affinity | undefined> = fc.option(
  fc.record(
    {
      podAffinity: podRules(podTerm, weighted),
      podAntiAffinity: podRules(podTerm, weighted),
      nodeAffinity: fc.record(
        {
          [REQUIRED]: fc.record({
            nodeSelectorTerms: list(
              fc.record(
                { matchExpressions: list(nodeRequirement), matchFields: list(nodeRequirement) },
                { requiredKeys: [] },
              ),
            ),
          }),
          [PREFERRED]: list(preferredNode),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

/** Terms of one slot as injectionFor makes them: no two alike. */
const slotTerms = (item: fc.Arbitrary<unknown>) =>
  fc.uniqueArray(item, { maxLength: 3, selector: (t) => JSON.stringify(t) }) as fc.Arbitrary<
    JsonValue[]
  >;

const injection: fc.Arbitrary<Injection> = fc
  .record({
    generation: fc.integer({ min: 1, max: 9 }),
    slots: fc.record({
      'podAffinity.required': slotTerms(podTerm),
      'podAffinity.preferred': slotTerms(weighted),
      'podAntiAffinity.required': slotTerms(podTerm),
      'podAntiAffinity.preferred': slotTerms(weighted),
      'nodeAffinity.preferred': slotTerms(preferredNode),
    }),
    matchExpressions: slotTerms(nodeRequirement),
    matchFields: slotTerms(nodeRequirement),
  })
  .map(({ generation, slots, matchExpressions, matchFields }) => {
    const kept: Partial<Record<Slot, JsonValue[]>> = {};
    for (const [slot, terms] of Object.entries(slots) as [Slot, JsonValue[]][]) {
      if (terms.length > 0) kept[slot] = terms;
    }
    return {
      policies: { 'PlacementPolicy/shop/p': generation },
      slots: kept,
      node: { matchExpressions, matchFields },
    };
  });

// ------------------------------------------------------------------ helpers

/** Byte for byte, key order included: what a JSON patch would send. */
const bytes = (a: Affinity | undefined): string => (a === undefined ? 'absent' : JSON.stringify(a));

type Obj = Record<string, unknown>;
const listAt = (a: Affinity | undefined, slot: Slot): unknown[] => {
  const [group, field] = SLOTS[slot];
  const container = (a as Obj | undefined)?.[group] as Obj | undefined;
  const found = container?.[field];
  return Array.isArray(found) ? found : [];
};

/** Whether `part` appears in `whole` in the same order (other items may sit between). */
function isSubsequence(part: readonly unknown[], whole: readonly unknown[]): boolean {
  let i = 0;
  for (const item of whole) {
    if (i < part.length && JSON.stringify(item) === JSON.stringify(part[i])) i++;
  }
  return i === part.length;
}

// ------------------------------------------------------------------ properties

void test('inject then revert gives the owner affinity back, byte for byte', () => {
  fc.assert(
    fc.property(ownerAffinity, injection, (owner, inj) => {
      const before = bytes(owner);
      const { affinity, record } = inject(owner, inj);
      assert.equal(bytes(owner), before, 'inject leaves its input alone');
      assert.equal(bytes(revertInjected(affinity, record)), before);
      // The same through the annotation, as the next reconcile reads it.
      const parsed = parseRecord(serializeRecord(record));
      if (parsed.kind !== 'ok') assert.fail(`the record does not parse: ${JSON.stringify(parsed)}`);
      assert.equal(bytes(revertInjected(affinity, parsed.record)), before);
    }),
    RUNS,
  );
});

void test("the owner's terms stay, in order; every term asked for is there", () => {
  fc.assert(
    fc.property(ownerAffinity, injection, (owner, inj) => {
      const { affinity } = inject(owner, inj);
      for (const slot of Object.keys(SLOTS) as Slot[]) {
        const result = listAt(affinity, slot);
        assert.ok(isSubsequence(listAt(owner, slot), result), `${slot}: owner's terms kept`);
        assert.equal(
          JSON.stringify(result.slice(0, listAt(owner, slot).length)),
          JSON.stringify(listAt(owner, slot)),
          `${slot}: the owner's terms come first, untouched`,
        );
        // Present as asked, or as an equal term the owner wrote with its keys in another order
        // (matchLabels is a map): such a term is not injected twice.
        for (const t of inj.slots[slot] ?? []) {
          assert.ok(
            result.some((x) => jsonEqual(x, t)),
            `${slot}: asked-for term present`,
          );
        }
      }
      const terms = ((affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? []) as Obj[]).map(
        (t) => [...((t.matchExpressions as unknown[] | undefined) ?? [])],
      );
      for (const e of inj.node.matchExpressions) {
        for (const t of terms) assert.ok(t.some((x) => jsonEqual(x, e)));
      }
    }),
    RUNS,
  );
});

void test('a policy edit replaces what the old version injected; no policy leaves the owner', () => {
  fc.assert(
    fc.property(ownerAffinity, injection, injection, (owner, first, second) => {
      const applied = inject(owner, first);
      const edited = desiredAffinity(applied.affinity, applied.record, second);
      // As if the new version had been the only one (an empty one leaves the owner as is).
      assert.equal(bytes(edited.affinity), bytes(desiredAffinity(owner, null, second).affinity));
      const removed = desiredAffinity(applied.affinity, applied.record, null);
      assert.equal(bytes(removed.affinity), bytes(owner));
      assert.equal(removed.record, null);
    }),
    RUNS,
  );
});

void test('a second reconcile of the same inputs changes nothing', () => {
  fc.assert(
    fc.property(ownerAffinity, injection, (owner, inj) => {
      const once = desiredAffinity(owner, null, inj);
      if (once.record === null) return;
      const twice = desiredAffinity(once.affinity, once.record, inj);
      assert.equal(bytes(twice.affinity), bytes(once.affinity));
      assert.equal(
        twice.record === null ? '' : serializeRecord(twice.record),
        serializeRecord(once.record),
      );
    }),
    RUNS,
  );
});

void test("an owner's term added after the injection survives the revert", () => {
  const slots = Object.keys(SLOTS) as Slot[];
  fc.assert(
    fc.property(
      ownerAffinity,
      injection,
      fc.constantFrom(...slots),
      podTerm,
      weighted,
      (owner, inj, slot, term, pref) => {
        const added: unknown =
          slot === 'nodeAffinity.preferred'
            ? {
                weight: pref.weight,
                preference: { matchExpressions: [{ key: 'owner', operator: 'Exists' }] },
              }
            : slot.endsWith('preferred')
              ? { ...pref, podAffinityTerm: { ...pref.podAffinityTerm, topologyKey: 'owner-key' } }
              : { ...term, topologyKey: 'owner-key' }; // unlike anything generated
        const edit = (a: Affinity | undefined): Affinity => {
          const copy = structuredClone(a ?? {}) as Obj;
          const [group, field] = SLOTS[slot];
          const container = (copy[group] ??= {}) as Obj;
          ((container[field] ??= []) as unknown[]).push(added);
          return copy;
        };
        const { affinity, record } = inject(owner, inj);
        const reverted = revertInjected(edit(affinity), record);
        assert.ok(listAt(reverted, slot).some((x) => JSON.stringify(x) === JSON.stringify(added)));
        // Everything else is the owner's, as written.
        for (const other of slots) {
          const expected = listAt(other === slot ? edit(owner) : owner, other);
          assert.equal(JSON.stringify(listAt(reverted, other)), JSON.stringify(expected), other);
        }
      },
    ),
    RUNS,
  );
});

void test('a term the owner already has is not injected twice, and stays when reverted', () => {
  fc.assert(
    fc.property(podTerm, podTerm, (own, other) => {
      const owner: Affinity = { podAntiAffinity: { [REQUIRED]: [own] } };
      const inj: Injection = {
        policies: { 'PlacementPolicy/shop/p': 1 },
        slots: { 'podAntiAffinity.required': [own, other] as JsonValue[] },
        node: { matchExpressions: [], matchFields: [] },
      };
      const { affinity, record } = inject(owner, inj);
      const terms = listAt(affinity, 'podAntiAffinity.required').map((t) => JSON.stringify(t));
      assert.equal(terms.filter((t) => t === JSON.stringify(own)).length, 1);
      assert.equal(bytes(revertInjected(affinity, record)), bytes(owner));
    }),
    RUNS,
  );
});

void test('a policy edited to ask nothing leaves an affinity the owner never had absent', () => {
  const first: Injection = {
    policies: { 'PlacementPolicy/shop/p': 1 },
    slots: { 'podAntiAffinity.required': [{ topologyKey: 'kubernetes.io/hostname' }] },
    node: { matchExpressions: [], matchFields: [] },
  };
  const applied = inject(undefined, first);
  const emptied = { ...first, policies: { 'PlacementPolicy/shop/p': 2 }, slots: {} };
  const edited = desiredAffinity(applied.affinity, applied.record, emptied);
  assert.equal(edited.affinity, undefined);
  assert.equal(edited.record, null, 'and the record goes');
});

/** How many times `value` occurs in `list`, by JSON text. */
const count = (list: readonly unknown[], value: unknown): number =>
  list.filter((x) => JSON.stringify(x) === JSON.stringify(value)).length;

/** The owner's nodeSelectorTerms, each holding some of `wanted` among requirements of its own. */
const termsHolding = (wanted: readonly JsonValue[]) =>
  list(
    fc.record({
      own: fc.array(nodeRequirement, { maxLength: 2 }),
      some: fc.subarray([...wanted]),
      order: fc.boolean(),
    }),
  ).map((terms) =>
    terms.map(({ own, some, order }) => {
      const all = order ? [...own, ...some] : [...some, ...own];
      return all.length === 0 ? {} : { matchExpressions: all }; // as the API server stores it
    }),
  );

void test('a node requirement a term already holds is not added to it again, and stays when reverted', () => {
  fc.assert(
    fc.property(
      injection.chain((inj) =>
        termsHolding(inj.node.matchExpressions).map((terms) => ({ inj, terms })),
      ),
      ({ inj, terms }) => {
        const owner = {
          nodeAffinity: { [REQUIRED]: { nodeSelectorTerms: terms } },
        } as unknown as Affinity;
        const { affinity, record } = inject(owner, inj);
        const after = (affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? []) as Obj[];
        after.forEach((term, i) => {
          const before =
            (terms[i] as { matchExpressions?: unknown[] } | undefined)?.matchExpressions ?? [];
          const now = (term.matchExpressions as unknown[] | undefined) ?? [];
          for (const e of inj.node.matchExpressions) {
            assert.equal(
              count(now, e),
              Math.max(1, count(before, e)),
              `term ${i}: ${JSON.stringify(e)}`,
            );
          }
        });
        assert.equal(
          bytes(revertInjected(affinity, record)),
          bytes(owner),
          'the owner’s copies stay',
        );
        const parsed = parseRecord(serializeRecord(record));
        if (parsed.kind !== 'ok')
          assert.fail(`the record does not parse: ${JSON.stringify(parsed)}`);
        assert.equal(bytes(revertInjected(affinity, parsed.record)), bytes(owner));
      },
    ),
    RUNS,
  );
});

void test('with its record lost, a workload that carries the terms gets nothing added twice', () => {
  fc.assert(
    fc.property(ownerAffinity, injection, (owner, inj) => {
      const { affinity } = inject(owner, inj);
      const again = desiredAffinity(affinity, null, inj);
      assert.equal(bytes(again.affinity), bytes(affinity), 'no term and no requirement repeated');
    }),
    RUNS,
  );
});

void test("an owner's node requirement identical to the policy's: once in the template, and the owner's after the revert", () => {
  const kwok = { key: 'type', operator: 'In', values: ['kwok'] };
  const arch = { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] };
  const owner: Affinity = {
    nodeAffinity: {
      [REQUIRED]: {
        nodeSelectorTerms: [{ matchExpressions: [kwok] }, { matchExpressions: [arch] }],
      },
    },
  };
  const inj: Injection = {
    policies: { 'PlacementPolicy/shop/p': 1 },
    slots: {},
    node: { matchExpressions: [kwok], matchFields: [] },
  };
  const { affinity, record } = inject(owner, inj);
  assert.deepEqual(affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms, [
    { matchExpressions: [kwok] },
    { matchExpressions: [arch, kwok] },
  ]);
  assert.deepEqual(record.node?.alreadyThere, [{ term: 0, matchExpressions: [kwok] }]);
  assert.equal(bytes(revertInjected(affinity, record)), bytes(owner));
  // Every term already holds it: nothing to add, nothing to record, no rollout.
  const only: Affinity = {
    nodeAffinity: { [REQUIRED]: { nodeSelectorTerms: [{ matchExpressions: [kwok] }] } },
  };
  const none = inject(only, inj);
  assert.equal(bytes(none.affinity), bytes(only));
  assert.equal(none.record.node, undefined);
});
