// Active/standby on a coordination.k8s.io Lease: two operator processes with the same
// --lease-name; only the leader writes, the other stands by. kill -9 of the leader: the
// standby takes over once the lease expires (15 s, plus a 2 s retry) and finishes the work
// (a policy applied after the kill gets enforced), writing each change once. SIGTERM of the
// leader releases the lease, so a standby takes over within a few seconds.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/ha.test.ts
import assert from 'node:assert/strict';

import {
  appliedPolicies,
  clusterTest,
  deployment,
  get,
  HOSTNAME,
  list,
  policy,
  policyRef,
  PREF,
  runOperator,
  tail,
  uniqueName,
  waitEnforced,
  waitFor,
  waitRolledOut,
  ZONE,
  type Cluster,
  type Operator,
} from './support.ts';

const LEASE_DURATION_MS = 15_000;
const RETRY_MS = 2_000;
const APPS = ['svc-0', 'svc-1', 'svc-2'];

const LEADING = 'became leader; reconciling';

/** Waits until the operator leads; returns when (ms since epoch) it logged so. */
async function leads(op: Operator, timeoutMs: number): Promise<number> {
  const line = await waitFor(
    `${op.identity} leading`,
    () => Promise.resolve(op.logged(LEADING)[0]),
    timeoutMs,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${tail(op.process)}`);
  });
  return Date.parse(String(line['timestamp']));
}

async function standsBy(op: Operator, leader: string): Promise<void> {
  await waitFor(`${op.identity} standing by`, () =>
    Promise.resolve(op.logged('standing by').find((l) => l['leader'] === leader)),
  );
  assert.equal(op.logged(LEADING).length, 0, `${op.identity} never led`);
}

const generations = async (c: Cluster, ns: string): Promise<number[]> =>
  Promise.all(APPS.map(async (a) => (await get(c, 'deployment', ns, a)).metadata.generation ?? 0));

clusterTest(
  'HA: one writer, takeover on kill -9 and on SIGTERM',
  { timeout: 180_000, namespace: 'ha' },
  async ({ t, c, s, ns }) => {
    await c.apply(
      list(
        ...APPS.map((a) =>
          deployment(ns, a, { labels: { app: a, tier: 'ha' }, selector: { app: a } }),
        ),
      ),
    );
    await waitRolledOut(c, ns);
    const run = uniqueName('ha');
    const a = await runOperator(c, s, [], { identity: `${run}-a` });
    const b = await runOperator(c, s, [], { identity: `${run}-b`, waitLeading: false });
    const { lease } = a;
    const targets = { selector: { matchLabels: { tier: 'ha' } } };

    await t.test('only the leader writes; the other stands by', async () => {
      await standsBy(b, a.identity);
      await c.apply(
        JSON.stringify(
          policy(ns, 'spread', {
            targets,
            spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
          }),
        ),
      );
      await waitEnforced(c, ns, 'spread', APPS.length);
      assert.equal(await a.writes(), APPS.length, 'the leader wrote each workload once');
      assert.equal(await b.writes(), 0, 'the standby wrote nothing');
      assert.equal(await a.metric('leader_election_master_status', { name: lease }), 1);
      assert.equal(await b.metric('leader_election_master_status', { name: lease }), 0);
      assert.equal(b.logged(LEADING).length, 0);
    });

    await t.test(
      'kill -9 of the leader: the standby takes over within the lease duration and finishes',
      async (t) => {
        const before = await generations(c, ns);
        const leaderWrites = await a.writes();
        const killedAt = Date.now();
        await a.process.kill();
        // Work for whoever leads next: a new policy over the same workloads.
        await c.apply(
          JSON.stringify(
            policy(ns, 'near-cache', {
              targets,
              affinity: {
                podAffinity: {
                  [PREF]: [
                    {
                      weight: 10,
                      podAffinityTerm: {
                        labelSelector: { matchLabels: { app: 'cache' } },
                        topologyKey: ZONE,
                      },
                    },
                  ],
                },
              },
            }),
          ),
        );
        const tookOver = await leads(b, LEASE_DURATION_MS + 4 * RETRY_MS + 10_000);
        t.diagnostic(`standby leads ${((tookOver - killedAt) / 1000).toFixed(1)} s after kill -9`);
        assert.ok(
          tookOver - killedAt <= LEASE_DURATION_MS + 3 * RETRY_MS,
          'within the lease duration and a retry or two',
        );
        await waitEnforced(c, ns, 'near-cache', APPS.length);
        await waitEnforced(c, ns, 'spread', APPS.length);
        for (const app of APPS) {
          assert.deepEqual(appliedPolicies(await get(c, 'deployment', ns, app)), {
            [policyRef(ns, 'spread')]: 1,
            [policyRef(ns, 'near-cache')]: 1,
          });
        }
        // Nothing written twice: one template write per workload for the one change.
        assert.equal(leaderWrites, APPS.length, 'the old leader wrote only the first policy');
        assert.equal(await b.writes(), APPS.length, 'the new leader wrote each workload once');
        assert.deepEqual(
          await generations(c, ns),
          before.map((g) => g + 1),
          'one template change per workload',
        );
      },
    );

    await t.test(
      'SIGTERM: the leader releases the lease and a standby takes over within seconds',
      async (t) => {
        const c3 = await runOperator(c, s, [], { identity: `${run}-c`, waitLeading: false });
        await standsBy(c3, b.identity);
        const stoppingAt = Date.now();
        const code = await b.process.stop();
        assert.equal(code, 0, 'graceful exit');
        const tookOver = await leads(c3, 4 * RETRY_MS + 5_000);
        t.diagnostic(
          `standby leads ${((tookOver - stoppingAt) / 1000).toFixed(1)} s after SIGTERM`,
        );
        assert.ok(tookOver - stoppingAt < 2 * RETRY_MS + 3_000, 'no wait for the lease to expire');
        // And it works: deleting a policy reverts its terms (and only its terms) everywhere.
        await c.kubectl('delete', 'placementpolicy', 'near-cache', '-n', ns, '--timeout=60s');
        for (const app of APPS) {
          assert.deepEqual(appliedPolicies(await get(c, 'deployment', ns, app)), {
            [policyRef(ns, 'spread')]: 1,
          });
        }
        assert.equal(await c3.writes(), APPS.length);
      },
    );
  },
);
