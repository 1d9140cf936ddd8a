// What one workload needs, decided from the cache (plan.ts), in the cases issue 16 and 15
// raised: a record of the wrong shape, a record removed by hand, node requirements the
// owner already has, contradicting policies, a policy no workload could take; and what the
// policies say of it (policy-status.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Affinity } from '../../../src/api/core.ts';
import type { Workload } from '../../../src/api/cluster.ts';
import type { PlacementPolicy } from '../../../src/api/policy.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import { LostRecords } from '../../../src/controller/lost-records.ts';
import { planWorkload, type WorkloadPlan } from '../../../src/controller/plan.ts';
import { deletionStatus, policyStatus } from '../../../src/controller/policy-status.ts';
import { parseRecord } from '../../../src/engine/index.ts';
import { cachedDeployment, HOSTNAME, labelsIn, term, ZONE } from '../builders.ts';
import { APPLIED_ANNOTATION } from '../../../src/api/cluster.ts';
import { catalogOf, webPolicy } from './scenes.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

const web = (extra: Partial<Workload> = {}): Workload =>
  cachedDeployment('shop', 'web', { app: 'web' }, { replicas: 2, ...extra });
const policy = webPolicy;

const noLabels = () => ({});

/** The workload after `plan` was written, as the next cached version would show it. */
function written(w: Workload, plan: WorkloadPlan): Workload {
  if (plan.kind !== 'change') assert.fail(`expected a change, got ${plan.kind}`);
  const annotations = { ...w.annotations };
  if (plan.annotation === undefined) Reflect.deleteProperty(annotations, APPLIED_ANNOTATION);
  else annotations[APPLIED_ANNOTATION] = plan.annotation;
  return { ...w, annotations, affinity: plan.affinity, resourceVersion: `${w.resourceVersion}1` };
}

const spread = policy('spread', {
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  affinity: {
    nodeAffinity: {
      [REQUIRED]: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
        ],
      },
    },
  },
});

// ------------------------------------------------------------- the record

void test('a record of the wrong shape blocks the workload, naming the field, without throwing', () => {
  const w = web({
    annotations: { [APPLIED_ANNOTATION]: '{"policies":{},"slots":{},"created":[1],"node":"x"}' },
  });
  const catalog = catalogOf(spread);
  const plan = planWorkload(w, catalog, noLabels);
  assert.ok(plan.kind === 'blocked', plan.kind);
  assert.equal(
    plan.message,
    `annotation ${APPLIED_ANNOTATION} is not a valid record: node: "x" is not an object; created[0]: 1 is not a string`,
  );
  // The policy's status says so too, from the same plan.
  const s = statusOf(spread, catalog, [w]);
  const degraded = s.conditions.find((c) => c.type === 'Degraded');
  assert.equal(degraded?.reason, 'WorkloadBlocked');
  assert.match(
    degraded.message,
    /Deployment shop\/web: annotation .* created\[0\]: 1 is not a string/,
  );
});

// ------------------------------------------------------------- a lost record

void test('a record removed by hand is written back, the template untouched, and later reverts cleanly', () => {
  const catalog = catalogOf(spread);
  const original = web();
  const applied = written(original, planWorkload(original, catalog, noLabels));
  const text = applied.annotations[APPLIED_ANNOTATION];
  assert.ok(text !== undefined);

  const lost = new LostRecords();
  const stripped: Workload = { ...applied, annotations: {}, resourceVersion: '9' };
  lost.observe(applied, stripped);
  const restore = planWorkload(stripped, catalog, noLabels, lost.recall(stripped));
  assert.ok(restore.kind === 'change');
  assert.equal(restore.templateChanged, false, 'no rollout: the terms are there');
  assert.equal(restore.restored, true);
  assert.equal(restore.annotation, text, 'the same record, written back');

  // The policy goes: the terms come out, the workload is as its owner wrote it.
  const back = written(stripped, restore);
  const reverted = planWorkload(back, catalogOf(), noLabels);
  assert.ok(reverted.kind === 'change');
  assert.equal(reverted.affinity, undefined);
  assert.equal(reverted.annotation, undefined);
});

void test('a record removed while no replica watched: nothing added twice, the terms now the owner’s', () => {
  const catalog = catalogOf(spread);
  const applied = written(web(), planWorkload(web(), catalog, noLabels));
  const stripped: Workload = { ...applied, annotations: {} };
  const plan = planWorkload(stripped, catalog, noLabels);
  assert.ok(plan.kind === 'change');
  assert.equal(plan.templateChanged, false, 'neither the spread nor the node requirement again');
  const record = parseRecord(plan.annotation);
  assert.ok(record.kind === 'ok');
  assert.deepEqual(record.record.slots, {});
  assert.equal(record.record.node, undefined);
});

void test('LostRecords: what counts as a record lost', () => {
  const catalog = catalogOf(spread);
  const applied = written(web(), planWorkload(web(), catalog, noLabels));
  const cases: { name: string; after: Workload; lost: boolean }[] = [
    {
      name: 'the annotation removed, the affinity unchanged',
      after: { ...applied, annotations: {} },
      lost: true,
    },
    {
      name: 'the annotation removed with the terms (a revert)',
      after: { ...applied, annotations: {}, affinity: undefined },
      lost: false,
    },
    { name: 'the annotation still there', after: applied, lost: false },
    {
      name: 'another workload of the same name',
      after: { ...applied, annotations: {}, uid: 'uid-other' },
      lost: false,
    },
  ];
  for (const c of cases) {
    const lost = new LostRecords();
    lost.observe(applied, c.after);
    assert.equal(lost.recall(c.after) !== undefined, c.lost, c.name);
  }
  const lost = new LostRecords();
  const stripped = { ...applied, annotations: {} };
  lost.observe(applied, stripped);
  const edited: Workload = { ...stripped, affinity: { podAffinity: {} } };
  assert.equal(lost.recall(edited), undefined, 'the owner edited the affinity since: forgotten');
  assert.equal(lost.size, 0);
});

// --------------------------------------------------------- node requirements

void test("an owner's node requirement identical to the policy's is not added again: no rollout", () => {
  const owner: Affinity = {
    nodeAffinity: {
      [REQUIRED]: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
        ],
      },
    },
  };
  const pinOnly = policy('pin', { affinity: spread.spec.affinity ?? {} });
  const plan = planWorkload(web({ affinity: owner }), catalogOf(pinOnly), noLabels);
  assert.ok(plan.kind === 'change');
  assert.equal(plan.templateChanged, false);
  assert.deepEqual(plan.affinity, owner);
});

// ----------------------------------------------------------- contradictions

const nearX = policy('near-x', {
  affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), HOSTNAME)] } },
});
const farFromX = policy('far-from-x', {
  affinity: { podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'x' }), ZONE)] } },
});

function statusOf(
  p: PlacementPolicy,
  catalog: PolicyCatalog,
  workloads: readonly Workload[],
  refusal: (w: Workload) => string | undefined = () => undefined,
) {
  return policyStatus(p, {
    entry: catalog.set(p),
    workloads,
    catalog,
    namespaceLabels: noLabels,
    isWaiting: () => false,
    isRolling: () => false,
    refusal,
    audit: undefined,
    now: '2026-12-01T00:00:00Z',
  });
}

void test('contradicting policies: no write, and each policy names the other and the workload', () => {
  const catalog = catalogOf(nearX, farFromX);
  const plan = planWorkload(web(), catalog, noLabels);
  assert.equal(plan.kind, 'contradiction');
  for (const [mine, other] of [
    [nearX, 'far-from-x'],
    [farFromX, 'near-x'],
  ] as const) {
    const s = statusOf(mine, catalog, [web()]);
    const ready = s.conditions.find((c) => c.type === 'Ready');
    const degraded = s.conditions.find((c) => c.type === 'Degraded');
    assert.equal(ready?.status, 'False');
    assert.equal(ready.reason, 'Contradiction');
    assert.equal(degraded?.reason, 'Contradiction');
    assert.match(degraded.message, /Deployment shop\/web: its required/);
    assert.match(degraded.message, new RegExp(`PlacementPolicy/shop/${other}'s required`));
    assert.match(degraded.message, /what they carry stays as it is/);
    assert.equal(s.pending, 1);
  }
});

void test('a contradiction appearing on a workload that carries terms leaves them as they are', () => {
  const first = planWorkload(web(), catalogOf(nearX), noLabels);
  const carrying = written(web(), first);
  const plan = planWorkload(carrying, catalogOf(nearX, farFromX), noLabels);
  assert.equal(plan.kind, 'contradiction');
  // Deleting one of them: the other's terms are written.
  const after = planWorkload(carrying, catalogOf(farFromX), noLabels);
  assert.ok(after.kind === 'change');
  assert.deepEqual(after.reverted, ['PlacementPolicy/shop/near-x']);
});

// ---------------------------------------------------------- a write refused

void test('a policy whose record can never fit is refused up front, saying why', () => {
  const values = Array.from(
    { length: 64 },
    (_, i) => `${'v'.repeat(58)}-${String(i).padStart(4, '0')}`,
  );
  const big = term(
    {
      matchExpressions: Array.from({ length: 32 }, (_, i) => ({
        key: `example.com/key-${i}`,
        operator: 'In',
        values,
      })),
    },
    HOSTNAME,
  );
  const huge = policy('huge', {
    affinity: { podAntiAffinity: { [REQUIRED]: [big, { ...big, topologyKey: ZONE }] } },
  });
  const catalog = new PolicyCatalog();
  const entry = catalog.set(huge);
  assert.ok(entry.kind === 'invalid', entry.kind);
  assert.match(
    entry.errors[0]?.message ?? '',
    /^PlacementPolicy shop\/huge: spec.affinity: its terms take \d+ bytes in the placement.dev\/applied annotation .* more than the 262144 bytes Kubernetes allows/,
  );
  assert.equal(planWorkload(web(), catalog, noLabels).kind, 'inSync', 'nothing written for it');
  // In Audit mode it is never written, so it is fine.
  const audit = policy('huge', { ...huge.spec, mode: 'Audit' }, 2);
  assert.equal(catalog.set(audit).kind, 'valid');
});

void test('a refused write has its own Ready reason', () => {
  const catalog = catalogOf(spread);
  const why = 'patch Deployment shop/web: HTTP 422: metadata.annotations: Too long';
  const s = statusOf(spread, catalog, [web()], () => why);
  const ready = s.conditions.find((c) => c.type === 'Ready');
  assert.equal(ready?.reason, 'WriteRefused');
  assert.equal(ready.status, 'False');
});

// --------------------------------------------------- a deletion held back

void test('a deleted policy held by a workload says which, and keeps its other conditions', () => {
  const withStatus = {
    ...spread,
    metadata: { ...spread.metadata, deletionTimestamp: '2026-12-01T00:00:00Z' },
    status: {
      matched: 1,
      enforced: 1,
      conditions: [
        {
          type: 'Unsatisfiable',
          status: 'False',
          reason: 'Satisfiable',
          message: '',
          observedGeneration: 1,
          lastTransitionTime: '2026-11-01T00:00:00Z',
        },
      ],
    },
  } as PlacementPolicy;
  const s = deletionStatus(
    withStatus,
    ['Deployment shop/web: annotation placement.dev/applied is not valid JSON'],
    '2026-12-01T00:00:01Z',
  );
  assert.deepEqual(
    s.conditions.map((c) => [c.type, c.status, c.reason]),
    [
      ['Ready', 'False', 'Deleting'],
      ['Degraded', 'True', 'DeletionBlocked'],
      ['Unsatisfiable', 'False', 'Satisfiable'],
    ],
  );
  assert.match(
    s.conditions[1]?.message ?? '',
    /Deployment shop\/web: annotation .* is not valid JSON/,
  );
  assert.equal(s.matched, 1);
});

// ------------------------------------------------------------- the plan's kind, as a table

/** A policy of `mode` in `shop` that asks `web` pods to share a zone with `db` pods. */
const nearDb = (name: string, mode: 'Enforce' | 'Audit' = 'Enforce'): PlacementPolicy =>
  policy(name, {
    mode,
    affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'db' }), ZONE)] } },
  });

const PLAN_CASES: readonly {
  readonly name: string;
  readonly workload: Workload;
  readonly policies: readonly PlacementPolicy[];
  readonly kind: WorkloadPlan['kind'];
  /** The Enforce policies the plan names, where it names them. */
  readonly enforced?: readonly string[];
}[] = [
  {
    name: "a Deployment's ReplicaSet is skipped",
    workload: web({
      kind: 'ReplicaSet',
      name: 'web-6d5f',
      ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }],
    }),
    policies: [nearDb('near-db')],
    kind: 'skip',
  },
  {
    name: 'no policy targets it, nothing carried: in sync',
    workload: web(),
    policies: [],
    kind: 'inSync',
    enforced: [],
  },
  {
    name: 'an Enforce policy targets it: a change',
    workload: web(),
    policies: [nearDb('near-db')],
    kind: 'change',
    enforced: ['PlacementPolicy/shop/near-db'],
  },
  {
    name: 'an Audit policy only: in sync, nothing written',
    workload: web(),
    policies: [nearDb('near-db', 'Audit')],
    kind: 'inSync',
    enforced: [],
  },
  {
    name: 'a record of the wrong shape: blocked',
    workload: web({ annotations: { [APPLIED_ANNOTATION]: '{"policies": 3}' } }),
    policies: [nearDb('near-db')],
    kind: 'blocked',
  },
];

for (const c of PLAN_CASES) {
  void test(`planWorkload: ${c.name}`, () => {
    const plan = planWorkload(c.workload, catalogOf(...c.policies), noLabels);
    assert.equal(plan.kind, c.kind);
    if (c.enforced !== undefined && 'enforced' in plan)
      assert.deepEqual(
        plan.enforced.map((p) => p.ref),
        c.enforced,
      );
  });
}

void test('planWorkload: the written change is in sync on the next look', () => {
  const catalog = catalogOf(nearDb('near-db'));
  const first = planWorkload(web(), catalog, noLabels);
  assert.equal(planWorkload(written(web(), first), catalog, noLabels).kind, 'inSync');
});
