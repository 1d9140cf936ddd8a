// Two policies whose required rules cannot both hold for one workload (issue 15): one asks
// its pods next to app=x (podAffinity, hostname), the other away from app=x (podAntiAffinity,
// zone, which holds every hostname). Written together, its new pods would stay Pending. On
// a real API server and scheduler:
// - both applied: nothing is written to the workload, no pod is Pending, each policy names
//   the other and the workload (Ready=False and Degraded=True, reason Contradiction), and the
//   workload gets a Warning Event;
// - one deleted: the other's terms are written;
// - the contradiction appearing on a workload that already carries terms: they stay as they
//   are until one of the policies goes.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/contradiction.test.ts
import assert from 'node:assert/strict';

import {
  affinityOf,
  APPLIED,
  appliedPolicies,
  clusterTest,
  condition,
  deployment,
  eventsAbout,
  get,
  HOSTNAME,
  list,
  podsOf,
  policy,
  policyRef,
  policyStatus,
  REQ,
  runOperator,
  slot,
  waitEnforced,
  waitFor,
  waitLoggedAgain,
  waitRolledOut,
  ZONE,
  type Cluster,
  type Obj,
  type Operator,
} from './support.ts';

const targets = { kinds: ['Deployment'], selector: { matchLabels: { app: 'web' } } };
const nearX = (ns: string) =>
  policy(ns, 'near-x', {
    targets,
    affinity: {
      podAffinity: {
        [REQ]: [{ labelSelector: { matchLabels: { app: 'x' } }, topologyKey: HOSTNAME }],
      },
    },
  });
const farFromX = (ns: string) =>
  policy(ns, 'far-from-x', {
    targets,
    affinity: {
      podAntiAffinity: {
        [REQ]: [{ labelSelector: { matchLabels: { app: 'x' } }, topologyKey: ZONE }],
      },
    },
  });

const CONTRADICTS = 'workload left unchanged: required rules contradict';

/** What a write would change: the template and the annotations. */
const fingerprint = (d: Obj): string =>
  JSON.stringify([d.metadata.annotations?.[APPLIED] ?? null, d.spec.template]);

/** Waits until both policies report the contradiction, each naming the other and `web`. */
async function waitContradiction(c: Cluster, ns: string): Promise<void> {
  for (const [mine, other] of [
    ['near-x', 'far-from-x'],
    ['far-from-x', 'near-x'],
  ] as const) {
    const status = await waitFor(`policy ${mine} reports the contradiction`, async () => {
      const { status } = await policyStatus(c, ns, mine);
      return condition(status, 'Degraded')?.reason === 'Contradiction' ? status : undefined;
    });
    const degraded = condition(status, 'Degraded');
    assert.equal(degraded?.status, 'True');
    assert.ok(degraded.message.includes(`Deployment ${ns}/web: its required`), degraded.message);
    assert.ok(degraded.message.includes(`${policyRef(ns, other)}'s required`), degraded.message);
    const ready = condition(status, 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready.reason, 'Contradiction');
  }
}

async function assertNonePending(c: Cluster, ns: string): Promise<void> {
  const pods = await podsOf(c, ns, 'web');
  assert.ok(pods.length > 0);
  for (const p of pods) assert.equal(p.status.phase, 'Running', `${p.metadata.name} runs`);
}

clusterTest(
  'contradicting policies',
  { timeout: 240_000, namespace: 'contra' },
  async ({ t, c, s, ns }) => {
    await c.apply(list(deployment(ns, 'x'), deployment(ns, 'web', { replicas: 2 })));
    await waitRolledOut(c, ns);
    const original = await get(c, 'deployment', ns, 'web');
    let op: Operator | undefined;
    /** The operator looked at web again and left it as it is once more (it resyncs every 1 s). */
    const waitLeftAlone = (): Promise<number> => {
      assert.ok(op, 'the operator runs');
      return waitLoggedAgain(op, CONTRADICTS, `Deployment/${ns}/web`);
    };

    await t.test('both applied: no write, both policies and the workload say why', async () => {
      // Applied together, as a GitOps sync would, before the operator looks: had one come
      // first, its terms would be written on their own (the next case).
      await c.apply(list(nearX(ns), farFromX(ns)));
      op = await runOperator(c, s, ['--resync-interval', '1s']);
      await waitContradiction(c, ns);
      const events = await waitFor('a PlacementContradiction Event', async () => {
        const found = await eventsAbout(c, ns, 'web', 'PlacementContradiction');
        return found.length > 0 ? found : undefined;
      });
      assert.equal(events[0]?.type, 'Warning');
      t.diagnostic(`Event: ${events[0].message}`);
      assert.match(events[0].message, /cannot both hold/);
      await waitLeftAlone();
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), fingerprint(original));
      await assertNonePending(c, ns);
    });

    await t.test("one deleted: the other's terms are written", async () => {
      await c.kubectl('delete', 'placementpolicy', 'far-from-x', '-n', ns);
      await waitEnforced(c, ns, 'near-x', 1);
      const web = await get(c, 'deployment', ns, 'web');
      assert.deepEqual(appliedPolicies(web), { [policyRef(ns, 'near-x')]: 1 });
      assert.equal(slot(affinityOf(web), 'podAffinity', REQ).length, 1);
      await waitRolledOut(c, ns);
    });

    await t.test('appearing while the workload carries terms: they stay as they are', async () => {
      const carrying = await get(c, 'deployment', ns, 'web');
      await c.apply(list(farFromX(ns)));
      await waitContradiction(c, ns);
      await waitLeftAlone();
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), fingerprint(carrying));
      await assertNonePending(c, ns);

      // The other one goes: its terms come out, the remaining policy's go in.
      await c.kubectl('delete', 'placementpolicy', 'near-x', '-n', ns);
      await waitEnforced(c, ns, 'far-from-x', 1);
      const web = await get(c, 'deployment', ns, 'web');
      assert.deepEqual(slot(affinityOf(web), 'podAffinity', REQ), []);
      assert.equal(slot(affinityOf(web), 'podAntiAffinity', REQ).length, 1);
      await waitRolledOut(c, ns);
    });
  },
);
