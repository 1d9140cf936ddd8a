// Never lose a constraint, as properties of the pure merge of topologySpreadConstraints
// (`spreadAcross` with constraint TopologySpread) together with affinity: injecting then
// reverting gives back the owner's affinity and constraints byte for byte; the owner's
// constraints stay first and in order, none is duplicated, and no two share the
// (topologyKey, whenUnsatisfiable) pair the API server keys the list by; a policy edit
// replaces what the old version injected; a second reconcile changes nothing; an owner's
// constraint added after the injection survives the revert; the record survives its
// annotation round trip.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import type { Affinity, TopologySpreadConstraint } from '../../../src/api/core.ts';
import type { JsonValue } from '../../../src/engine/canonical.ts';
import {
  desiredPlacement,
  injectPlacement,
  injectionFor,
  type Injection,
  type TemplatePlacement,
} from '../../../src/engine/merge.ts';
import { type CompiledPolicy } from '../../../src/engine/policy.ts';
import { compilePolicy } from '../../../src/engine/policy-compile.ts';
import { parseRecord, serializeRecord } from '../../../src/engine/record.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const RUNS = { numRuns: 500 };
const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';

// ------------------------------------------------------------------ generators

const selector = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('a', 'b'), {
      minKeys: 1,
      maxKeys: 2,
    }),
  },
  { requiredKeys: [] },
);
const constraint: fc.Arbitrary<TopologySpreadConstraint> = fc.record(
  {
    maxSkew: fc.integer({ min: 1, max: 3 }),
    topologyKey: fc.constantFrom(ZONE, HOST, 'rack'),
    whenUnsatisfiable: fc.constantFrom('DoNotSchedule', 'ScheduleAnyway'),
    labelSelector: selector,
    minDomains: fc.integer({ min: 1, max: 3 }),
  },
  { requiredKeys: ['maxSkew', 'topologyKey', 'whenUnsatisfiable'] },
);
/** An owner's list as the API server stores it: one per (topologyKey, whenUnsatisfiable). */
const ownerConstraints = fc.option(
  fc.uniqueArray(constraint, {
    minLength: 1,
    maxLength: 3,
    selector: (c) => `${c.topologyKey}/${c.whenUnsatisfiable}`,
  }),
  { nil: undefined },
);
const podTerm = fc.record({
  labelSelector: selector,
  topologyKey: fc.constantFrom(ZONE, HOST),
});
const ownerAffinity: fc.Arbitrary<Affinity | undefined> = fc.option(
  fc.record({
    podAntiAffinity: fc.record({ [REQUIRED]: fc.array(podTerm, { minLength: 1, maxLength: 2 }) }),
  }),
  { nil: undefined },
);
const owner: fc.Arbitrary<TemplatePlacement> = fc.record({
  affinity: ownerAffinity,
  topologySpreadConstraints: ownerConstraints,
});

/** What injectionFor asks: constraints one per key pair, maybe an anti-affinity term too. */
const injection: fc.Arbitrary<Injection> = fc
  .record({
    generation: fc.integer({ min: 1, max: 9 }),
    spread: fc.uniqueArray(constraint, {
      maxLength: 3,
      selector: (c) => `${c.topologyKey}/${c.whenUnsatisfiable}`,
    }),
    anti: fc.uniqueArray(podTerm, { maxLength: 1, selector: (t) => JSON.stringify(t) }),
  })
  .map(({ generation, spread, anti }) => ({
    policies: { 'ClusterPlacementPolicy/spread': generation },
    slots: anti.length === 0 ? {} : { 'podAntiAffinity.required': anti },
    node: { matchExpressions: [], matchFields: [] },
    ...(spread.length === 0 ? {} : { spread: spread as unknown as JsonValue[] }),
  }));

// ------------------------------------------------------------------ helpers

/** Byte for byte, key order included: what a merge patch would send. */
const bytes = (p: TemplatePlacement): string =>
  JSON.stringify([p.affinity ?? 'absent', p.topologySpreadConstraints ?? 'absent']);
const text = (v: unknown): string => JSON.stringify(v);
const pairOf = (c: TopologySpreadConstraint): string => `${c.topologyKey}/${c.whenUnsatisfiable}`;

// ------------------------------------------------------------------ properties

void test('inject then revert gives the owner placement back, byte for byte', () => {
  fc.assert(
    fc.property(owner, injection, (o, inj) => {
      const before = bytes(o);
      const { placement, record } = injectPlacement(o, inj);
      assert.equal(bytes(o), before, 'inject leaves its input alone');
      const parsed = parseRecord(serializeRecord(record));
      if (parsed.kind !== 'ok') assert.fail(`the record does not parse: ${JSON.stringify(parsed)}`);
      const reverted = desiredPlacement(placement, parsed.record, null);
      assert.equal(bytes(reverted.placement), before);
      assert.equal(reverted.record, null);
    }),
    RUNS,
  );
});

void test("the owner's constraints come first, untouched; one per key pair; asked ones there unless the owner has the pair", () => {
  fc.assert(
    fc.property(owner, injection, (o, inj) => {
      const { placement, record } = injectPlacement(o, inj);
      const own = o.topologySpreadConstraints ?? [];
      const result = placement.topologySpreadConstraints ?? [];
      assert.equal(text(result.slice(0, own.length)), text(own));
      assert.equal(new Set(result.map(pairOf)).size, result.length, 'no key pair twice');
      for (const c of (inj.spread ?? []) as unknown as TopologySpreadConstraint[]) {
        const ownerHas = own.some((x) => pairOf(x) === pairOf(c));
        const present = result.some((x) => text(x) === text(c));
        assert.equal(present || ownerHas, true, `${pairOf(c)}: asked for, or the owner's pair`);
        const recorded = (record.topologySpreadConstraints ?? []).some((x) => text(x) === text(c));
        assert.equal(recorded, !ownerHas, `${pairOf(c)}: recorded exactly when added`);
      }
    }),
    RUNS,
  );
});

void test('a policy edit replaces what the old version injected', () => {
  fc.assert(
    fc.property(owner, injection, injection, (o, first, second) => {
      const applied = injectPlacement(o, first);
      const edited = desiredPlacement(applied.placement, applied.record, second);
      assert.equal(bytes(edited.placement), bytes(desiredPlacement(o, null, second).placement));
    }),
    RUNS,
  );
});

void test('a second reconcile of the same inputs changes nothing', () => {
  fc.assert(
    fc.property(owner, injection, (o, inj) => {
      const once = desiredPlacement(o, null, inj);
      if (once.record === null) return;
      const twice = desiredPlacement(once.placement, once.record, inj);
      assert.equal(bytes(twice.placement), bytes(once.placement));
      assert.equal(
        twice.record === null ? '' : serializeRecord(twice.record),
        serializeRecord(once.record),
      );
    }),
    RUNS,
  );
});

void test("an owner's constraint added after the injection survives the revert", () => {
  fc.assert(
    fc.property(owner, injection, constraint, (o, inj, added) => {
      const { placement, record } = injectPlacement(o, inj);
      const list = placement.topologySpreadConstraints ?? [];
      fc.pre(!list.some((x) => pairOf(x) === pairOf(added)));
      const edited = { ...placement, topologySpreadConstraints: [...list, added] };
      const reverted = desiredPlacement(edited, record, null).placement;
      assert.ok((reverted.topologySpreadConstraints ?? []).some((x) => text(x) === text(added)));
      assert.equal(
        text(reverted.topologySpreadConstraints),
        text([...(o.topologySpreadConstraints ?? []), added]),
      );
    }),
    RUNS,
  );
});

// ------------------------------------------------------------------ table

const policy = (
  name: string,
  spreadAcross: PlacementPolicy['spec']['spreadAcross'],
  generation = 1,
): CompiledPolicy => {
  const compiled = compilePolicy({
    kind: 'ClusterPlacementPolicy',
    metadata: { name, generation },
    spec: { ...(spreadAcross === undefined ? {} : { spreadAcross }) },
  });
  if (compiled.kind !== 'ok') throw new Error(compiled.errors.map((e) => e.message).join('; '));
  return compiled.policy;
};
const web = {
  kind: 'Deployment',
  namespace: 'shop',
  name: 'web',
  templateLabels: { app: 'web' },
  podSelector: { matchLabels: { app: 'web' } },
};
const zoneSpread = {
  maxSkew: 1,
  topologyKey: ZONE,
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: { matchLabels: { app: 'web' } },
};

void describe('injectionFor and desiredPlacement with spreadAcross TopologySpread', () => {
  const cases: {
    name: string;
    policies: CompiledPolicy[];
    owner: TemplatePlacement;
    want: TemplatePlacement;
    recorded: unknown[] | undefined;
  }[] = [
    {
      name: 'Required writes DoNotSchedule on the workload selector, list created',
      policies: [
        policy('zones', [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: undefined },
      want: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      recorded: [zoneSpread],
    },
    {
      name: 'Preferred writes ScheduleAnyway with maxSkew, after the owner constraint',
      policies: [
        policy('hosts', [{ topologyKey: HOST, constraint: 'TopologySpread', maxSkew: 2 }]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      want: {
        affinity: undefined,
        topologySpreadConstraints: [
          zoneSpread,
          { ...zoneSpread, maxSkew: 2, topologyKey: HOST, whenUnsatisfiable: 'ScheduleAnyway' },
        ],
      },
      recorded: [
        { ...zoneSpread, maxSkew: 2, topologyKey: HOST, whenUnsatisfiable: 'ScheduleAnyway' },
      ],
    },
    {
      name: 'an identical owner constraint is not duplicated, and not recorded',
      policies: [
        policy('zones', [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      want: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      recorded: undefined,
    },
    {
      name: "an owner's constraint on the same key pair wins (the API server allows one)",
      policies: [
        policy('zones', [
          { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required', maxSkew: 3 },
        ]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      want: { affinity: undefined, topologySpreadConstraints: [zoneSpread] },
      recorded: undefined,
    },
    {
      name: 'two policies asking the same key pair: the first in priority order wins',
      policies: [
        policy('a', [
          { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required', maxSkew: 2 },
        ]),
        policy('b', [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: undefined },
      want: { affinity: undefined, topologySpreadConstraints: [{ ...zoneSpread, maxSkew: 2 }] },
      recorded: [{ ...zoneSpread, maxSkew: 2 }],
    },
    {
      name: 'minDomains is written; no affinity is created for a spread-only policy',
      policies: [
        policy('zones', [
          { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required', minDomains: 3 },
        ]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: undefined },
      want: { affinity: undefined, topologySpreadConstraints: [{ ...zoneSpread, minDomains: 3 }] },
      recorded: [{ ...zoneSpread, minDomains: 3 }],
    },
    {
      name: 'anti-affinity and spread entries of one policy each go where they belong',
      policies: [
        policy('both', [
          { topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' },
          { topologyKey: HOST, mode: 'Required' },
        ]),
      ],
      owner: { affinity: undefined, topologySpreadConstraints: undefined },
      want: {
        affinity: {
          podAntiAffinity: {
            [REQUIRED]: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: HOST }],
          },
        },
        topologySpreadConstraints: [zoneSpread],
      },
      recorded: [zoneSpread],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const inj = injectionFor(c.policies, web);
      const desired = desiredPlacement(c.owner, null, inj);
      assert.equal(
        text(desired.placement.topologySpreadConstraints),
        text(c.want.topologySpreadConstraints),
      );
      assert.equal(text(desired.placement.affinity), text(c.want.affinity));
      assert.equal(text(desired.record?.topologySpreadConstraints), text(c.recorded));
      // and taking the policies away leaves the owner's, byte for byte
      const gone = desiredPlacement(desired.placement, desired.record, null);
      assert.equal(bytes(gone.placement), bytes(c.owner));
    });
  }
});
