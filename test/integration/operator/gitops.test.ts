// "A GitOps tool re-applying the original manifest must not start a write war: the operator
// re-adds its terms once and the system settles" (docs/gitops.md). The owner's manifest lists
// its own required anti-affinity term; the policy injects into that same list (a list the
// API treats as atomic, so a re-apply replaces it whole and drops the injected term) and
// into a list the owner does not write. Two owners re-apply their manifest twice each:
//   (a) kubectl apply (client-side), the Deployment having been created that way;
//   (b) kubectl apply --server-side --field-manager=argocd-controller --force-conflicts,
//       as Argo CD does, the Deployment having been created that way too.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/gitops.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  affinityOf,
  appliedPolicies,
  begin,
  deployment,
  get,
  HOSTNAME,
  makeNamespace,
  policy,
  policyRef,
  PREF,
  REQ,
  runOperator,
  sleep,
  slot,
  waitEnforced,
  waitFor,
  waitRolledOut,
  ZONE,
  type Cluster,
  type JsonObject,
  type Obj,
  type Operator,
} from './support.ts';

const POLICY = 'spread-web';
const STABLE_MS = 15_000;
const REAPPLIES = 2;
const SSA = ['--server-side', '--field-manager=argocd-controller', '--force-conflicts'];

const ownerAnti = { labelSelector: { matchLabels: { role: 'batch' } }, topologyKey: HOSTNAME };
const ownerPreferred = {
  weight: 10,
  podAffinityTerm: { labelSelector: { matchLabels: { role: 'db' } }, topologyKey: ZONE },
};
const spread = (app: string): JsonObject => ({
  labelSelector: { matchLabels: { app } },
  topologyKey: HOSTNAME,
});
const cacheTerm = {
  weight: 50,
  podAffinityTerm: { labelSelector: { matchLabels: { app: 'cache' } }, topologyKey: ZONE },
};

function manifest(ns: string, app: string): string {
  return JSON.stringify(
    deployment(ns, app, {
      replicas: 2,
      labels: { app, tier: 'web' },
      selector: { app },
      affinity: { podAntiAffinity: { [REQ]: [ownerAnti], [PREF]: [ownerPreferred] } },
    }),
  );
}

/** The owner's terms first and intact, the policy's after them (once). */
function assertCarriesBoth(w: Obj, app: string): void {
  const a = affinityOf(w);
  assert.deepEqual(
    slot(a, 'podAntiAffinity', REQ),
    [ownerAnti, spread(app)],
    `${app}: required anti-affinity`,
  );
  assert.deepEqual(
    slot(a, 'podAntiAffinity', PREF),
    [ownerPreferred],
    `${app}: the owner’s preferred term`,
  );
  assert.deepEqual(
    slot(a, 'podAffinity', PREF),
    [cacheTerm],
    `${app}: the injected preferred podAffinity`,
  );
}

/** What a write by anyone would change: generation, annotations, spec. */
const fingerprint = (w: Obj): string =>
  JSON.stringify([w.metadata.generation, w.metadata.annotations, w.spec]);

async function reapplyAndSettle(
  c: Cluster,
  op: Operator,
  ns: string,
  app: string,
  args: readonly string[],
  ref: string,
): Promise<void> {
  for (let i = 1; i <= REAPPLIES; i++) {
    const before = await get(c, 'deployment', ns, app);
    const writes0 = await op.writes();
    await c.apply(manifest(ns, app), ...args);
    const restored = await waitFor(`${app}: terms restored after re-apply ${i}`, async () => {
      const w = await get(c, 'deployment', ns, app);
      // The re-apply dropped the injected term (a template change), the operator put it back.
      return (w.metadata.generation ?? 0) >= (before.metadata.generation ?? 0) + 2 &&
        slot(affinityOf(w), 'podAntiAffinity', REQ).length === 2
        ? w
        : undefined;
    });
    assertCarriesBoth(restored, app);
    assert.deepEqual(appliedPolicies(restored), { [ref]: 1 });
    await waitRolledOut(c, ns);
    const writes = (await op.writes()) - writes0;
    assert.ok(
      writes >= 1 && writes <= 2,
      `${app}: ${writes} operator write(s) after re-apply ${i}`,
    );
  }
  // Settled: nobody writes the workload any more.
  const settled = await get(c, 'deployment', ns, app);
  const writes1 = await op.writes();
  await sleep(STABLE_MS);
  const after = await get(c, 'deployment', ns, app);
  assert.equal(
    fingerprint(after),
    fingerprint(settled),
    `${app}: unchanged for ${STABLE_MS / 1000} s`,
  );
  assert.equal(await op.writes(), writes1, 'no operator write while settled');
  assertCarriesBoth(after, app);
}

void test(
  'GitOps re-apply: the operator restores its terms once and settles',
  { timeout: 170_000 },
  async (t) => {
    const { c, s } = await begin(t);
    const ns = await makeNamespace(c, s, 'gitops');
    await c.apply(manifest(ns, 'client-side'));
    await c.apply(manifest(ns, 'argo'), ...SSA);
    await waitRolledOut(c, ns);
    const op = await runOperator(c, s);
    await c.apply(
      JSON.stringify(
        policy(ns, POLICY, {
          targets: { selector: { matchLabels: { tier: 'web' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          affinity: { podAffinity: { [PREF]: [cacheTerm] } },
        }),
      ),
    );
    await waitEnforced(c, ns, POLICY, 2);
    await waitRolledOut(c, ns);
    const ref = policyRef(ns, POLICY);
    for (const app of ['client-side', 'argo'])
      assertCarriesBoth(await get(c, 'deployment', ns, app), app);

    await t.test('(a) kubectl apply, client-side', () =>
      reapplyAndSettle(c, op, ns, 'client-side', [], ref),
    );
    await t.test('(b) server-side apply as argocd-controller', () =>
      reapplyAndSettle(c, op, ns, 'argo', SSA, ref),
    );
    await waitEnforced(c, ns, POLICY, 2);
  },
);
