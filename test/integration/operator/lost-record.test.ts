// The `placement.dev/applied` record lost by hand, and node requirements the owner already
// has, on a real API server (issue 16):
// - deleting the annotation while the injected terms stay: the operator writes the record
//   back (no template change, no rollout, nothing injected twice), every time, and a later
//   policy delete still leaves each workload exactly as its owner wrote it;
// - an owner's nodeSelectorTerm requirement identical to the policy's (`type In [kwok]`) is
//   in the template once, and stays (the owner's) once the policy is gone.
// With injection at admission (the default) the removal never reaches the stored object:
// admission reads the record from the object the update replaces and writes it back in the
// same request (no write at all). With --injection=reconciler the operator writes it back.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/lost-record.test.ts
import assert from 'node:assert/strict';

import {
  affinityOf,
  APPLIED,
  clusterTest,
  deployment,
  eventsAbout,
  get,
  HOSTNAME,
  list,
  ownerView,
  policy,
  PREF,
  REQ,
  runOperator,
  slot,
  waitEnforced,
  waitFor,
  waitPolicyGone,
  waitRolledOut,
  type Json,
  type JsonObject,
  type Obj,
} from './support.ts';

const KWOK = { key: 'type', operator: 'In', values: ['kwok'] };
const ARCH = { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] };

/** The nodeSelectorTerms of a workload's template. */
const nodeTerms = (w: Obj): { matchExpressions?: Json[] }[] => {
  const req = affinityOf(w)?.['nodeAffinity']?.[REQ] as
    { nodeSelectorTerms?: { matchExpressions?: Json[] }[] } | undefined;
  return req?.nodeSelectorTerms ?? [];
};

/** The Deployment's revision: it moves with each new ReplicaSet, i.e. each rollout. */
const revision = (w: Obj | undefined): number =>
  Number(w?.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 'NaN');

const count = (list: readonly Json[] | undefined, value: JsonObject): number =>
  (list ?? []).filter((x) => JSON.stringify(x) === JSON.stringify(value)).length;

for (const injection of ['admission', 'reconciler'] as const) {
  clusterTest(
    `a record removed by hand, and node requirements the owner has (--injection=${injection})`,
    { timeout: 240_000, namespace: 'lost' },
    async ({ t, c, s, ns }) => {
      const web = (name: string, affinity?: JsonObject): JsonObject =>
        deployment(ns, name, {
          labels: { app: name, tier: 'web' },
          selector: { app: name },
          ...(affinity === undefined ? {} : { affinity }),
        });
      // kwok: the owner's one nodeSelectorTerm already asks `type In [kwok]`; bare: no affinity.
      await c.apply(
        list(
          web('kwok', {
            nodeAffinity: { [REQ]: { nodeSelectorTerms: [{ matchExpressions: [KWOK] }] } },
          }),
          web('bare'),
        ),
      );
      await waitRolledOut(c, ns);
      const names = ['kwok', 'bare'];
      const original = new Map<string, Obj>();
      for (const n of names) original.set(n, await get(c, 'deployment', ns, n));

      await runOperator(c, s, [`--injection=${injection}`]);
      await c.apply(
        list(
          policy(ns, 'rules', {
            targets: { selector: { matchLabels: { tier: 'web' } } },
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
            affinity: {
              nodeAffinity: { [REQ]: { nodeSelectorTerms: [{ matchExpressions: [KWOK, ARCH] }] } },
            },
          }),
        ),
      );
      await waitEnforced(c, ns, 'rules', 2);
      await waitRolledOut(c, ns);

      const injected = new Map<string, Obj>();
      for (const n of names) injected.set(n, await get(c, 'deployment', ns, n));

      await t.test("an owner's requirement identical to the policy's is there once", () => {
        const kwok = injected.get('kwok');
        assert.ok(kwok);
        const [term, ...more] = nodeTerms(kwok);
        assert.equal(more.length, 0);
        assert.equal(count(term?.matchExpressions, KWOK), 1, 'type In [kwok] once');
        assert.equal(
          count(term?.matchExpressions, ARCH),
          1,
          'the policy’s other requirement added',
        );
        assert.equal(revision(kwok), revision(original.get('kwok')) + 1, 'one rollout');
        const bare = injected.get('bare');
        assert.ok(bare);
        assert.deepEqual(nodeTerms(bare), [{ matchExpressions: [KWOK, ARCH] }]);
      });

      await t.test(
        'the record removed twice: written back each time, nothing doubled, no rollout',
        async () => {
          for (const round of [1, 2]) {
            await c.kubectl(
              'annotate',
              'deployment/kwok',
              'deployment/bare',
              '-n',
              ns,
              `${APPLIED}-`,
            );
            for (const n of names) {
              const before = injected.get(n);
              assert.ok(before);
              const now = await waitFor(`${n}: record written back (round ${round})`, async () => {
                const w = await get(c, 'deployment', ns, n);
                return w.metadata.annotations?.[APPLIED] !== undefined ? w : undefined;
              });
              assert.equal(
                now.metadata.annotations?.[APPLIED],
                before.metadata.annotations?.[APPLIED],
                `${n}: the same record`,
              );
              assert.deepEqual(
                now.spec.template,
                before.spec.template,
                `${n}: the template untouched`,
              );
              // Annotation writes bump a Deployment's generation (they are copied to its
              // ReplicaSets); a rollout is a new revision.
              assert.equal(revision(now), revision(before), `${n}: no rollout`);
              if (injection === 'admission')
                assert.equal(
                  now.metadata.generation,
                  before.metadata.generation,
                  `${n}: the removal undone at admission, nothing written`,
                );
              assert.equal(
                slot(affinityOf(now), 'podAntiAffinity', PREF).length,
                1,
                `${n}: one spread`,
              );
            }
          }
          const restored = await eventsAbout(c, ns, 'bare', 'AppliedRecordRestored');
          if (injection === 'reconciler')
            assert.ok(restored.length > 0, 'a Normal Event says the record was written back');
          // At admission the operator never saw the record missing: it had nothing to restore.
          else assert.equal(restored.length, 0, 'no AppliedRecordRestored Event');
          await waitEnforced(c, ns, 'rules', 2);
        },
      );

      await t.test('the policy deleted: every workload exactly as its owner wrote it', async () => {
        await c.kubectl('delete', 'placementpolicy', 'rules', '-n', ns, '--wait=false');
        await waitPolicyGone(c, ns, 'rules');
        for (const n of names) {
          const before = original.get(n);
          assert.ok(before);
          const w = await waitFor(`${n} reverted`, async () => {
            const now = await get(c, 'deployment', ns, n);
            return now.metadata.annotations?.[APPLIED] === undefined ? now : undefined;
          });
          assert.deepEqual(ownerView(w), ownerView(before), `${n}: exactly as the owner wrote it`);
        }
      });
    },
  );
}
