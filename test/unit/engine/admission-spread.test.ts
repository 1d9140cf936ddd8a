// The CEL text admission.ts and admission-spread.ts generate for `spreadAcross` entries that
// write topologySpreadConstraints. The CEL itself runs in the API server and is compared
// with merge.ts there (test/integration/admission/injection.test.ts); these cases pin what
// the text is built from: the record text of each constraint equals merge.ts's, the
// policies' constraints are picked in plan order keyed by (topologyKey, whenUnsatisfiable),
// the typed values a JSON Patch adds, and that such policies are admitted, not left to the
// reconciler.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { LabelSelector } from '../../../src/api/core.ts';
import type { SpreadAcross } from '../../../src/api/policy.ts';
import {
  admissionPlan,
  MAX_ADMITTED_POLICIES,
  type AdmissionPlan,
} from '../../../src/engine/admission.ts';
import { spreadPatches, spreadTables } from '../../../src/engine/admission-spread.ts';
import { asServerStores, canonicalJson } from '../../../src/engine/canonical.ts';
import { injectionFor, injectPlacement } from '../../../src/engine/merge.ts';
import { type CompiledPolicy, type WorkloadRef } from '../../../src/engine/policy.ts';
import { compilePolicy } from '../../../src/engine/policy-compile.ts';
import { HOSTNAME, namespacedPolicy, ZONE } from '../builders.ts';

function compiled(name: string, spreadAcross: SpreadAcross[], priority = 0): CompiledPolicy {
  const r = compilePolicy({
    ...namespacedPolicy('shop', name, {
      priority,
      targets: { kinds: ['Deployment'] },
      spreadAcross,
    }),
    metadata: { namespace: 'shop', name, generation: 3 },
  });
  assert.ok(r.kind === 'ok', r.kind === 'invalid' ? r.errors.map(String).join('; ') : '');
  return r.policy;
}

const workload = (podSelector: LabelSelector): WorkloadRef => ({
  kind: 'Deployment',
  namespace: 'shop',
  name: 'web',
  templateLabels: { app: 'web' },
  podSelector,
});

const variable = (plan: AdmissionPlan, name: string): string => {
  const spec = plan.spec as { variables: { name: string; expression: string }[] } | null;
  const found = spec?.variables.find((v) => v.name === name);
  assert.ok(found, `variable ${name}`);
  return found.expression;
};
const patchExpression = (plan: AdmissionPlan): string =>
  (plan.spec as { mutations: { jsonPatch: { expression: string } }[] }).mutations[0]?.jsonPatch
    .expression ?? '';

const tsc = (
  topologyKey: string,
  mode: 'Required' | 'Preferred',
  more: Partial<SpreadAcross> = {},
) => ({ topologyKey, mode, constraint: 'TopologySpread', ...more }) as SpreadAcross;

interface TextCase {
  readonly name: string;
  readonly spread: SpreadAcross[];
  readonly selector: LabelSelector;
}

const TEXT_CASES: readonly TextCase[] = [
  {
    name: 'Required: DoNotSchedule, maxSkew 1 by default',
    spread: [tsc(ZONE, 'Required')],
    selector: { matchLabels: { app: 'web' } },
  },
  {
    name: 'Preferred: ScheduleAnyway with its maxSkew',
    spread: [tsc(HOSTNAME, 'Preferred', { maxSkew: 3 })],
    selector: { matchLabels: { tier: 'a', app: 'web' } },
  },
  {
    name: 'minDomains sorts between maxSkew and topologyKey',
    spread: [tsc(ZONE, 'Required', { maxSkew: 2, minDomains: 3 })],
    selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
  },
  {
    name: 'an anti-affinity entry beside it writes no constraint',
    spread: [{ topologyKey: HOSTNAME, mode: 'Required' }, tsc(ZONE, 'Preferred')],
    selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] },
  },
];

for (const k of TEXT_CASES) {
  void test(`the record text admission builds for a constraint is merge.ts's: ${k.name}`, () => {
    const p = compiled('zones', k.spread);
    const w = workload(k.selector);
    const merged = injectPlacement(
      { affinity: undefined, topologySpreadConstraints: undefined },
      injectionFor([p], w),
    ).record.topologySpreadConstraints;
    // The CEL writes '{"labelSelector":' + the selector's canonical text + the shape's rest.
    const selText = canonicalJson(asServerStores(k.selector));
    const tables = spreadTables([p]);
    const built = (tables.perPolicy[0] ?? []).map((i) => {
      const shape = tables.shapes[i];
      assert.ok(shape);
      return `{"labelSelector":${selText},${shape.rest.slice(1)}`;
    });
    assert.deepEqual(built, (merged ?? []).map(canonicalJson));
    assert.ok(built.length > 0);
  });
}

void test('constraints are picked in plan order and keyed by topologyKey and whenUnsatisfiable', () => {
  const high = compiled('high', [tsc(ZONE, 'Preferred', { maxSkew: 3 })], 5);
  const low = compiled(
    'low',
    [tsc(ZONE, 'Required', { minDomains: 2 }), tsc(ZONE, 'Preferred', { maxSkew: 3 })],
    1,
  );
  const tables = spreadTables([high, low]);
  // low's Preferred zone entry is high's shape: one shape, named by both policies.
  assert.equal(tables.shapes.length, 2);
  assert.deepEqual(tables.perPolicy, [[0], [1, 0]]);
  assert.deepEqual(
    tables.shapes.map((s) => s.key),
    [`${ZONE} ScheduleAnyway`, `${ZONE} DoNotSchedule`],
  );
  const plan = admissionPlan([high, low]);
  assert.equal(
    variable(plan, 'tsc_pick'),
    '(variables.p0 ? [0] : []) + (variables.p1 ? [1, 0] : [])',
  );
  // The first of each pair wins, and none is added where the owner's list has the pair.
  assert.match(variable(plan, 'tsc_want'), /variables\.tsc_pick\.slice\(0, j\)/);
  assert.match(variable(plan, 'tsc_add'), /in variables\.tsc_keptKeys/);
  assert.match(variable(plan, 'tsc_keptKeys'), /\.topologyKey \+ ' ' \+ .*\.whenUnsatisfiable/);
});

void test('the JSON Patch adds typed constraints on the object’s own selector, after the owner’s', () => {
  const p = compiled('zones', [tsc(ZONE, 'Required', { maxSkew: 2, minDomains: 2 })]);
  const patches = spreadPatches(spreadTables([p]));
  const type = 'Object.spec.template.spec.topologySpreadConstraints';
  assert.ok(
    patches.includes(
      `${type}{labelSelector: ${type}.labelSelector{?matchLabels: object.spec.?selector.?matchLabels, `,
    ),
    patches,
  );
  for (const field of [
    'maxSkew: 2',
    'minDomains: 2',
    `topologyKey: "${ZONE}"`,
    'whenUnsatisfiable: "DoNotSchedule"',
  ])
    assert.ok(patches.includes(field), field);
  // Removals (highest index first) come before the list is made and appended to.
  const order = [
    "variables.tsc_rm.reverse().map(i, JSONPatch{op: 'remove'",
    'JSONPatch{op: \'remove\', path: "/spec/template/spec/topologySpreadConstraints"}',
    'JSONPatch{op: \'add\', path: "/spec/template/spec/topologySpreadConstraints", value: []}',
    'JSONPatch{op: \'add\', path: "/spec/template/spec/topologySpreadConstraints/-"',
  ].map((s) => patches.indexOf(s));
  assert.ok(
    order.every((x, i) => x >= 0 && (i === 0 || x > (order[i - 1] ?? 0))),
    String(order),
  );
});

void test('the record: the spread part follows the slots, and its container is noted last in created', () => {
  const plan = admissionPlan([compiled('zones', [tsc(ZONE, 'Required')])]);
  assert.match(
    variable(plan, 'newRecord'),
    /\.join\(','\) \+ '\}' \+ \(size\(variables\.tsc_add\) > 0 \? ",\\"topologySpreadConstraints\\":\[" \+ variables\.tsc_text \+ '\]' : ''\) \+ '\}'$/,
  );
  assert.match(
    variable(plan, 'created'),
    /\(size\(variables\.tsc_add\) > 0 && variables\.tsc_gone \? \["\\"topologySpreadConstraints\\""\] : \[\]\)$/,
  );
  // The slots' part of the record stops where the spread part begins.
  assert.match(
    variable(plan, 'slotsText'),
    /\.split\("\},\\"topologySpreadConstraints\\":\["\)\[0\]/,
  );
  // A spread-only policy asks nothing of the affinity: no empty affinity is added for it.
  assert.match(patchExpression(plan), /variables\.hasAff \|\| !variables\.injectingAff \? \[\]/);
  assert.equal(
    variable(plan, 'injecting'),
    'variables.injectingAff || size(variables.tsc_want) > 0',
  );
});

void test('a policy that writes topologySpreadConstraints is admitted; only those past the limit are left to the reconciler', () => {
  const spreading = compiled('zones', [tsc(ZONE, 'Required')], 10);
  const plan = admissionPlan([spreading]);
  assert.deepEqual(plan.admitted, ['PlacementPolicy/shop/zones']);
  assert.deepEqual(plan.fallback, {});
  // A record holding constraints is reverted by admission, not left alone.
  assert.doesNotMatch(variable(plan, 'blocked'), /topologySpreadConstraints/);

  const many = Array.from({ length: MAX_ADMITTED_POLICIES + 1 }, (_, i) =>
    compiled(`p${String(i).padStart(2, '0')}`, [tsc(ZONE, 'Required')]),
  );
  const full = admissionPlan(many);
  assert.equal(full.admitted.length, MAX_ADMITTED_POLICIES);
  assert.deepEqual(full.fallback, {
    [`PlacementPolicy/shop/p${String(MAX_ADMITTED_POLICIES)}`]: 'tooManyPolicies',
  });
});

void test('without TopologySpread entries the spread variables pick nothing', () => {
  const plan = admissionPlan([compiled('hosts', [{ topologyKey: HOSTNAME, mode: 'Required' }])]);
  assert.equal(variable(plan, 'tsc_pick'), '[0].filter(x, false)');
  assert.equal(spreadTables([]).shapes.length, 0);
});
