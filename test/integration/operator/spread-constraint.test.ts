// spreadAcross with constraint TopologySpread on a real API server and scheduler: the
// operator writes a topologySpreadConstraint on the workload's own selector after the
// owner's constraints (which stay, first and unchanged), records it, the scheduler spreads
// the pods by it, and deleting the policy takes out exactly what was written.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/spread-constraint.test.ts
import assert from 'node:assert/strict';

import {
  APPLIED,
  clusterTest,
  condition,
  deployment,
  get,
  HOSTNAME,
  list,
  makePool,
  nodeZones,
  ownerView,
  podsOf,
  policy,
  policyStatus,
  rolledOut,
  runOperator,
  templateOf,
  waitEnforced,
  waitFor,
  waitPolicyGone,
  waitRolledOut,
  ZONE,
  type Json,
  type JsonObject,
  type Obj,
} from './support.ts';

const POLICY = 'zones';

const spreadOf = (w: Obj): Json[] =>
  ((templateOf(w).spec as Record<string, Json>)['topologySpreadConstraints'] as
    Json[] | undefined) ?? [];

interface SpreadRecord {
  topologySpreadConstraints?: Json[];
  created: string[];
}
const recordOf = (w: Obj): SpreadRecord | undefined => {
  const text = w.metadata.annotations?.[APPLIED];
  return text === undefined ? undefined : (JSON.parse(text) as SpreadRecord);
};

clusterTest(
  'spreadAcross TopologySpread: written, scheduled by, reverted exactly',
  { timeout: 300_000, namespace: 'spread' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b', 'zone-b']);
    const ownerConstraint: JsonObject = {
      maxSkew: 2,
      topologyKey: HOSTNAME,
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { app: 'owned' } },
    };
    await c.apply(
      list(
        deployment(ns, 'bare', {
          replicas: 4,
          labels: { app: 'bare', tier: 'web' },
          selector: { app: 'bare' },
          podSpec: pool.podSpec,
        }),
        deployment(ns, 'owned', {
          replicas: 2,
          labels: { app: 'owned', tier: 'web' },
          selector: { app: 'owned' },
          podSpec: { ...pool.podSpec, topologySpreadConstraints: [ownerConstraint] },
        }),
      ),
    );
    await waitRolledOut(c, ns);
    const before = new Map<string, Obj>();
    for (const n of ['bare', 'owned']) before.set(n, await get(c, 'deployment', ns, n));

    await runOperator(c, s);
    const ours = (app: string): JsonObject => ({
      maxSkew: 1,
      topologyKey: ZONE,
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: { matchLabels: { app } },
    });

    await t.test('the constraint goes in after the owner’s, recorded', async () => {
      await c.apply(
        JSON.stringify(
          policy(ns, POLICY, {
            targets: { selector: { matchLabels: { tier: 'web' } } },
            spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }],
          }),
        ),
      );
      await waitEnforced(c, ns, POLICY, 2, 120_000);
      const bare = await get(c, 'deployment', ns, 'bare');
      assert.deepEqual(spreadOf(bare), [ours('bare')]);
      assert.deepEqual(recordOf(bare)?.topologySpreadConstraints, [ours('bare')]);
      assert.ok(recordOf(bare)?.created.includes('topologySpreadConstraints'));
      assert.equal('affinity' in templateOf(bare).spec, false, 'bare: no affinity written');
      const owned = await get(c, 'deployment', ns, 'owned');
      assert.deepEqual(spreadOf(owned), [ownerConstraint, ours('owned')]);
      assert.deepEqual(recordOf(owned)?.topologySpreadConstraints, [ours('owned')]);
    });

    await t.test('the scheduler spreads the pods across zones by it', async () => {
      await waitRolledOut(c, ns, 180_000);
      // During the rollout the old pods count too (same selector), so the new ones may end
      // uneven; placed afresh, with no other pod of the workload, they must be even.
      await c.kubectl('scale', 'deployment', 'bare', '-n', ns, '--replicas=0');
      await waitFor('bare: no pod left', async () =>
        (await c.json<{ items: unknown[] }>('get', 'pods', '-n', ns, '-l', 'app=bare')).items
          .length === 0
          ? true
          : undefined,
      );
      await c.kubectl('scale', 'deployment', 'bare', '-n', ns, '--replicas=4');
      const zones = await nodeZones(c);
      const pods = await waitFor('bare: 4 pods running again', async () => {
        const d = await get(c, 'deployment', ns, 'bare');
        const ps = await podsOf(c, ns, 'bare');
        return rolledOut(d) && ps.length === 4 && ps.every((p) => p.status.phase === 'Running')
          ? ps
          : undefined;
      });
      for (const p of pods) {
        const carried = (p.spec as { topologySpreadConstraints?: Json[] })
          .topologySpreadConstraints;
        assert.deepEqual(carried, [ours('bare')], `${p.metadata.name} carries the constraint`);
      }
      const count = new Map<string, number>();
      for (const p of pods) {
        const zone = zones.get(p.spec.nodeName ?? '') ?? '(none)';
        count.set(zone, (count.get(zone) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(count), { 'zone-a': 2, 'zone-b': 2 });
    });

    await t.test(
      'deleting the policy leaves each Deployment exactly as its owner wrote it',
      async () => {
        await c.kubectl('delete', 'placementpolicy', POLICY, '-n', ns, '--wait=false');
        await waitPolicyGone(c, ns, POLICY, 120_000);
        for (const n of ['bare', 'owned']) {
          const w = await get(c, 'deployment', ns, n);
          const was = before.get(n);
          assert.ok(was);
          assert.equal(w.metadata.annotations?.[APPLIED], undefined, `${n}: no record`);
          assert.deepEqual(ownerView(w), ownerView(was), `${n}: as the owner wrote it`);
        }
        const bare = await get(c, 'deployment', ns, 'bare');
        assert.equal('topologySpreadConstraints' in templateOf(bare).spec, false);
      },
    );
  },
);

clusterTest(
  'a DoNotSchedule spread whose rollout cannot finish is held back, naming the policy entry',
  { timeout: 300_000, namespace: 'spread-held' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b']);
    // zone-b's only node takes none of these pods, yet counts as a domain (nodeTaintsPolicy
    // defaults to Ignore): with maxSkew 1, zone-a could hold one pod only.
    const blocked = pool.nodes[2] ?? '';
    await c.kubectl('taint', 'node', blocked, 'placement.dev/test-blocked=yes:NoSchedule');
    await c.apply(
      list(
        deployment(ns, 'lopsided', {
          replicas: 4,
          labels: { app: 'lopsided', tier: 'web' },
          selector: { app: 'lopsided' },
          podSpec: pool.podSpec,
        }),
      ),
    );
    await waitRolledOut(c, ns);
    await runOperator(c, s);
    await c.apply(
      JSON.stringify(
        policy(ns, POLICY, {
          targets: { selector: { matchLabels: { tier: 'web' } } },
          spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }],
        }),
      ),
    );
    const degraded = await waitFor(
      'the policy Degraded with reason RolloutHeldBack naming lopsided',
      async () => {
        const { status } = await policyStatus(c, ns, POLICY);
        const d = condition(status, 'Degraded');
        return d?.reason === 'RolloutHeldBack' && d.message.includes(`Deployment ${ns}/lopsided`)
          ? d
          : undefined;
      },
      120_000,
    );
    t.diagnostic(`Degraded: ${degraded.message}`);
    assert.match(
      degraded.message,
      new RegExp(
        `topologySpreadConstraint PlacementPolicy/${ns}/${POLICY} spec\\.spreadAcross\\[0\\]`,
      ),
    );
    const w = await get(c, 'deployment', ns, 'lopsided');
    assert.deepEqual(spreadOf(w), [], 'nothing written');
    assert.equal(w.metadata.annotations?.[APPLIED], undefined);
  },
);
