// "A GitOps tool re-applying the original manifest must not start a write war: the operator
// re-adds its terms once and the system settles" (docs/gitops.md). The owner's manifest lists
// its own required anti-affinity term; the policy injects into that same list (a list the
// API treats as atomic, so a re-apply replaces it whole and drops the injected term) and
// into a list the owner does not write. Two owners re-apply their manifest twice each:
//   (a) kubectl apply (client-side), the Deployment having been created that way;
//   (b) kubectl apply --server-side --field-manager=argocd-controller --force-conflicts,
//       as Argo CD does, the Deployment having been created that way too.
// With injection at admission (the default) the re-apply gets the policy's term back in the
// same request, as its record says it was injected: the stored object does not change at all
// (no write, no rollout, no operator write). With --injection=reconciler (API servers without
// MutatingAdmissionPolicy) the re-apply drops the term and the operator writes it back once.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/gitops.test.ts
import assert from 'node:assert/strict';

import {
  affinityOf,
  appliedPolicies,
  clusterTest,
  deployment,
  get,
  HOSTNAME,
  policy,
  policyRef,
  PREF,
  REQ,
  runOperator,
  slot,
  waitEnforced,
  waitReconciledAgain,
  waitFor,
  waitRolledOut,
  ZONE,
  type Cluster,
  type JsonObject,
  type Obj,
  type Operator,
} from './support.ts';

const POLICY = 'spread-web';
/** Reconciles of a settled workload that must write nothing. */
const LOOKS = 4;
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

type Injection = 'admission' | 'reconciler';

/** Waits until a server-side dry run of the manifest comes back carrying the policy's terms. */
async function waitAdmitted(c: Cluster, ns: string, app: string, args: readonly string[]) {
  await waitFor(`${app}: the admission policy injecting the policy's terms`, async () => {
    const out = await c.apply(manifest(ns, app), ...args, '--dry-run=server', '-o', 'json');
    const w = JSON.parse(out) as Obj;
    return slot(affinityOf(w), 'podAntiAffinity', REQ).length === 2 ? true : undefined;
  });
}

async function reapplyAndSettle(
  c: Cluster,
  op: Operator,
  ns: string,
  app: string,
  args: readonly string[],
  ref: string,
  injection: Injection,
): Promise<void> {
  if (injection === 'admission') await waitAdmitted(c, ns, app, args);
  for (let i = 1; i <= REAPPLIES; i++) {
    const before = await get(c, 'deployment', ns, app);
    const writes0 = await op.writes();
    await c.apply(manifest(ns, app), ...args);
    if (injection === 'admission') {
      // The term came back at admission: the request changed nothing that was stored.
      const now = await get(c, 'deployment', ns, app);
      assert.equal(now.metadata.generation, before.metadata.generation, `${app}: not written`);
      assert.deepEqual(now.metadata.annotations, before.metadata.annotations);
      assert.deepEqual(now.spec, before.spec);
      assertCarriesBoth(now, app);
      assert.deepEqual(appliedPolicies(now), { [ref]: 1 });
      assert.equal((await op.writes()) - writes0, 0, `${app}: no operator write`);
      continue;
    }
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
  // Looked at again and again (a resync every 2 s): a fight over the terms would show.
  await waitReconciledAgain(op, [`Deployment/${ns}/${app}`], LOOKS);
  const after = await get(c, 'deployment', ns, app);
  assert.equal(
    fingerprint(after),
    fingerprint(settled),
    `${app}: unchanged over ${String(LOOKS)} more reconciles`,
  );
  assert.equal(await op.writes(), writes1, 'no operator write while settled');
  assertCarriesBoth(after, app);
}

for (const injection of ['admission', 'reconciler'] as const) {
  clusterTest(
    `GitOps re-apply (--injection=${injection}): the terms stay or come back once, and it settles`,
    { timeout: 170_000, namespace: 'gitops' },
    async ({ t, c, s, ns }) => {
      await c.apply(manifest(ns, 'client-side'));
      await c.apply(manifest(ns, 'argo'), ...SSA);
      await waitRolledOut(c, ns);
      const op = await runOperator(c, s, [
        `--injection=${injection}`,
        '--resync-interval',
        '2s',
        '--log-level',
        'debug',
      ]);
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
        reapplyAndSettle(c, op, ns, 'client-side', [], ref, injection),
      );
      await t.test('(b) server-side apply as argocd-controller', () =>
        reapplyAndSettle(c, op, ns, 'argo', SSA, ref, injection),
      );
      await waitEnforced(c, ns, POLICY, 2);
    },
  );
}
