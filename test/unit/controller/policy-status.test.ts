import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Workload } from '../../../src/api/cluster.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import { policyStatus } from '../../../src/controller/policy-status.ts';
import { HOSTNAME, labelsIn, namespacedPolicy } from '../builders.ts';

const base = namespacedPolicy('shop', 'spread', {
  targets: { kinds: ['Deployment'], selector: labelsIn({ app: 'web' }) },
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
});
const spread = { ...base, metadata: { ...base.metadata, generation: 1 } };

const web = (name: string, extra: Partial<Workload> = {}): Workload => ({
  kind: 'Deployment',
  namespace: 'shop',
  name,
  uid: `uid-${name}`,
  resourceVersion: '1',
  generation: 2,
  annotations: {},
  ownerReferences: [],
  selector: { matchLabels: { app: 'web' } },
  templateLabels: { app: 'web' },
  affinity: undefined,
  rolledOut: false,
  replicas: 3,
  ...extra,
});

function statusOf(
  workloads: readonly Workload[],
  rolling: ReadonlySet<string>,
  refused: ReadonlyMap<string, string> = new Map(),
) {
  const catalog = new PolicyCatalog();
  const entry = catalog.set(spread);
  return policyStatus(spread, {
    entry,
    workloads,
    catalog,
    namespaceLabels: () => ({}),
    isWaiting: () => false,
    isRolling: (w) => rolling.has(w.name),
    refusal: (w) => refused.get(w.name),
    audit: undefined,
    now: '2026-11-26T00:00:00Z',
  });
}

const degraded = (s: ReturnType<typeof statusOf>) =>
  s.conditions.find((c) => c.type === 'Degraded') ?? assert.fail('no Degraded condition');

void test('a rollout that stalled after our write makes the policy Degraded, naming it', () => {
  const stalled = web('web-a', {
    rolloutStalled: 'ReplicaSet "web-a-1" has timed out progressing.',
  });
  const s = statusOf([stalled, web('web-b')], new Set(['web-a', 'web-b']));
  const d = degraded(s);
  assert.equal(d.status, 'True');
  assert.equal(d.reason, 'RolloutStalled');
  assert.match(d.message, /^1 rollout\(s\) stopped progressing/);
  assert.match(
    d.message,
    /Deployment shop\/web-a: ReplicaSet "web-a-1" has timed out progressing\./,
  );
  assert.doesNotMatch(d.message, /web-b/);
});

void test("a stalled rollout the operator did not cause is not the policy's problem", () => {
  const stalled = web('web-a', { rolloutStalled: 'timed out' });
  const d = degraded(statusOf([stalled], new Set()));
  assert.equal(d.status, 'False');
  assert.equal(d.reason, 'AsExpected');
});

void test('a write the API server refused makes the policy Degraded with its reason', () => {
  const why =
    'patch Deployment shop/web-a: HTTP 422: admission policy no-anti-affinity denied the request';
  const s = statusOf([web('web-a'), web('web-b')], new Set(), new Map([['web-a', why]]));
  const d = degraded(s);
  assert.equal(d.status, 'True');
  assert.equal(d.reason, 'WriteRefused');
  assert.match(
    d.message,
    /^the API server refused 1 workload write\(s\); nothing was changed there: /,
  );
  assert.ok(d.message.endsWith(why));
  const ready = s.conditions.find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'False', 'the refused workload does not carry the rules');
});
