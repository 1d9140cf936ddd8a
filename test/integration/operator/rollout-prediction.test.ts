// Before a template write, the operator simulates the rollout the write would start, and
// does not make a write whose rollout cannot finish. On a pool of two nodes and a required
// one-per-node spread:
// - a Deployment of 2 with the default strategy (maxUnavailable 25% of 2 rounds down to 0,
//   the surge pod has no free node) is held back, naming "maxUnavailable ≥ 1"; its template
//   stays as it was and its rollout never starts; the same Deployment with maxUnavailable 1
//   is written and rolls out to one pod per node;
// - a StatefulSet of 3 (at most 2 can run) is held back; one of 2 is written and rolls out;
// - the policy is Degraded and not Ready with reason RolloutHeldBack, a Warning Event
//   RolloutHeldBack lands on each held-back workload, and placement_rollouts_held_back
//   counts them.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/rollout-prediction.test.ts
import assert from 'node:assert/strict';

import {
  appliedPolicies,
  clusterTest,
  condition,
  get,
  HOSTNAME,
  list,
  makePool,
  podsOf,
  policy,
  policyStatus,
  replicaSetCount,
  runOperator,
  waitFor,
  workload,
  type Cluster,
} from './support.ts';

const ROLL_MS = 120_000;

/** Whether the workload's pods all run, one per node, on the current template. */
async function spreadOnePerNode(c: Cluster, ns: string, app: string, n: number): Promise<boolean> {
  const pods = await podsOf(c, ns, app);
  const running = pods.filter(
    (p) => p.status.phase === 'Running' && p.metadata.deletionTimestamp === undefined,
  );
  const carry = running.filter((p) => JSON.stringify(p.spec.affinity ?? {}).includes(HOSTNAME));
  const nodes = new Set(carry.map((p) => p.spec.nodeName));
  return pods.length === n && carry.length === n && nodes.size === n;
}

clusterTest(
  'a write whose rollout cannot finish is held back; one that can goes ahead and finishes',
  { timeout: 300_000, namespace: 'predict' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-b']);
    const on = { podSpec: pool.podSpec };
    await c.apply(
      list(
        workload('Deployment', ns, 'web-default', {
          ...on,
          replicas: 2,
          labels: { app: 'web-default', tier: 'spread' },
        }),
        workload('Deployment', ns, 'web-mu1', {
          ...on,
          replicas: 2,
          labels: { app: 'web-mu1', tier: 'spread' },
          spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } } },
        }),
        workload('StatefulSet', ns, 'db3', {
          ...on,
          replicas: 3,
          labels: { app: 'db3', tier: 'spread' },
        }),
        workload('StatefulSet', ns, 'db2', {
          ...on,
          replicas: 2,
          labels: { app: 'db2', tier: 'spread' },
        }),
      ),
    );
    await waitFor(
      'all 9 pods Running',
      async () => {
        const pods = await c.json<{ items: { status?: { phase?: string } }[] }>(
          'get',
          'pods',
          '-n',
          ns,
        );
        return pods.items.length === 9 && pods.items.every((p) => p.status?.phase === 'Running')
          ? true
          : undefined;
      },
      ROLL_MS,
    );
    const op = await runOperator(c, s, ['--resync-interval', '5s']);
    await c.apply(
      list(
        policy(ns, 'one-per-node', {
          targets: {
            kinds: ['Deployment', 'StatefulSet'],
            selector: { matchLabels: { tier: 'spread' } },
          },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
        }),
      ),
    );

    const degraded = await waitFor(
      'the policy Degraded with reason RolloutHeldBack naming web-default and db3',
      async () => {
        const { status } = await policyStatus(c, ns, 'one-per-node');
        const d = condition(status, 'Degraded');
        return d?.reason === 'RolloutHeldBack' &&
          d.message.includes(`Deployment ${ns}/web-default`) &&
          d.message.includes(`StatefulSet ${ns}/db3`)
          ? { d, status }
          : undefined;
      },
      ROLL_MS,
    );
    t.diagnostic(`Degraded: ${degraded.d.message}`);
    assert.equal(degraded.d.status, 'True');
    assert.match(
      degraded.d.message,
      new RegExp(
        `Deployment ${ns}/web-default: it would stop with 0 of 2 new pods running.*would unblock: maxUnavailable ≥ 1`,
      ),
    );
    assert.match(
      degraded.d.message,
      new RegExp(
        `StatefulSet ${ns}/db3: at most 2 of 3 pods can run.*would unblock: one more node its rules admit, or replicas ≤ 2`,
      ),
    );
    const ready = condition(degraded.status, 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready.reason, 'RolloutHeldBack');

    // The held-back ones: template as written, no rollout, a Warning Event each.
    for (const [kind, name] of [
      ['Deployment', 'web-default'],
      ['StatefulSet', 'db3'],
    ] as const) {
      const w = await get(c, kind.toLowerCase(), ns, name);
      assert.equal(appliedPolicies(w), undefined, `${name} not written`);
      assert.equal(w.metadata.generation, 1, `${name} generation 1: no rollout`);
      const events = await waitFor(`a RolloutHeldBack Event on ${kind} ${name}`, async () => {
        const found = await c.json<{ items: { type: string }[] }>(
          'get',
          'events',
          '-n',
          ns,
          '--field-selector',
          `involvedObject.kind=${kind},involvedObject.name=${name},reason=RolloutHeldBack`,
        );
        return found.items.length > 0 ? found.items : undefined;
      });
      assert.equal(events[0]?.type, 'Warning');
    }
    assert.equal(
      await replicaSetCount(c, ns, 'web-default'),
      1,
      'web-default keeps its one ReplicaSet',
    );

    // The ones that can finish are written and roll out to one pod per node.
    for (const [kind, name] of [
      ['deployment', 'web-mu1'],
      ['statefulset', 'db2'],
    ] as const) {
      const w = await get(c, kind, ns, name);
      assert.ok(appliedPolicies(w), `${name} written`);
      await waitFor(
        `${name}: 2 pods Running, one per node, on the new template`,
        async () => ((await spreadOnePerNode(c, ns, name, 2)) ? true : undefined),
        ROLL_MS,
      );
    }
    assert.equal(await op.metric('placement_rollouts_held_back'), 2);
    const pending = await c.json<{ items: unknown[] }>(
      'get',
      'pods',
      '-n',
      ns,
      '--field-selector',
      'status.phase=Pending',
    );
    assert.equal(pending.items.length, 0, 'no pod left Pending');
  },
);
