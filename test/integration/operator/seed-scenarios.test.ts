// The seed scenarios (examples/workloads, examples/policies) end to end on a real control
// plane: the workloads run, the operator is started, the policy is applied; the operator
// rewrites the pod templates, the pods roll, and the real kube-scheduler places them as
// the rule demands; a write whose rollout could not finish (checkout-redis: at most 2 of its
// 3 pods can run) is held back instead. Everything runs on two fake nodes of this file's own (one per zone),
// so "one per node" means exactly two.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/seed-scenarios.test.ts
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

import {
  appliedPolicies,
  affinityOf,
  clusterTest,
  deferClusterPolicy,
  condition,
  example,
  failedScheduling,
  get,
  HOSTNAME,
  list,
  makeNamespace,
  makePool,
  nodeZones,
  podsOf,
  policyRef,
  policyStatus,
  PREF,
  REQ,
  replicaSetCount,
  runOperator,
  Scope,
  seedPolicies,
  seedWorkloads,
  slot,
  uniqueName,
  waitEnforced,
  waitFor,
  waitRolledOut,
  ZONE,
  type Cluster,
  type Json,
  type JsonObject,
  type Pod,
} from './support.ts';

const ROLL_TIMEOUT_MS = 90_000;

const term = (app: string, topologyKey: string): JsonObject => ({
  labelSelector: { matchLabels: { app } },
  topologyKey,
});

/** Pods of `app` that carry the workload's current template affinity (the rolled ones). */
async function rolledPods(
  c: Cluster,
  ns: string,
  app: string,
): Promise<{ all: Pod[]; rolled: Pod[] }> {
  const w = await get(c, 'deployment', ns, app);
  const want = affinityOf(w);
  const all = await podsOf(c, ns, app);
  return {
    all,
    rolled: all.filter((p) => JSON.stringify(p.spec.affinity) === JSON.stringify(want)),
  };
}

const running = (pods: Pod[]): Pod[] =>
  pods.filter((p) => p.status.phase === 'Running' && p.spec.nodeName !== undefined);

async function assertReady(
  c: Cluster,
  ns: string | undefined,
  name: string,
  matched: number,
): Promise<void> {
  const { status, generation } = await policyStatus(c, ns, name);
  const ready = condition(status, 'Ready');
  assert.equal(ready?.status, 'True', `${name}: Ready ${JSON.stringify(ready)}`);
  assert.equal(ready.reason, 'Enforced');
  assert.equal(status.observedGeneration, generation);
  assert.deepEqual(
    { matched: status.matched, enforced: status.enforced, pending: status.pending },
    { matched, enforced: matched, pending: 0 },
  );
  assert.equal(condition(status, 'Degraded')?.status, 'False');
}

async function subtest(
  t: TestContext,
  name: string,
  fn: (t: TestContext, s: Scope) => Promise<void>,
): Promise<void> {
  await t.test(name, async (t) => {
    await fn(t, new Scope(t));
  });
}

clusterTest('seed scenarios on a real control plane', { timeout: 180_000 }, async ({ t, c, s }) => {
  const pool = await makePool(c, s, ['zone-a', 'zone-b']);

  await subtest(
    t,
    'checkout one per node; checkout-redis next to checkout, one per node',
    async (_t, s) => {
      const ns = await makeNamespace(c, s, 'shop', { env: 'prod' });
      await c.apply(
        list(...seedWorkloads('workloads/checkout.yaml', ns, pool, { type: 'Recreate' })),
      );
      await waitRolledOut(c, ns);
      // A resync looks again at a held-back write: its reason follows the cluster.
      const op = await runOperator(c, s, ['--resync-interval', '5s']);

      await c.apply(
        list(
          ...seedPolicies('policies/checkout-one-per-node.yaml', ns),
          ...seedPolicies('policies/checkout-redis-with-checkout.yaml', ns),
        ),
      );
      await waitEnforced(c, ns, 'checkout-one-per-node', 1);

      // checkout carries its rule, and the record names the policy that put it there.
      const checkout = await get(c, 'deployment', ns, 'checkout');
      assert.deepEqual(slot(affinityOf(checkout), 'podAntiAffinity', REQ), [
        term('checkout', HOSTNAME),
      ]);
      assert.deepEqual(appliedPolicies(checkout), { [policyRef(ns, 'checkout-one-per-node')]: 1 });

      // checkout-redis: next to checkout (2 nodes) and one per node holds 2 of its 3 pods,
      // so the write that would start a rollout that cannot finish is not made.
      const held = await waitFor(
        'checkout-redis-with-checkout Unsatisfiable and its write held back, "at most 2 of 3"',
        async () => {
          const { status } = await policyStatus(c, ns, 'checkout-redis-with-checkout');
          const u = condition(status, 'Unsatisfiable');
          const d = condition(status, 'Degraded');
          // On this file's two nodes the one-per-node cap alone already says so.
          return u?.status === 'True' &&
            /checkout-redis(: at most 2 of 3 pods can run| wants 3 replicas.*only 2 node)/.test(
              u.message,
            ) &&
            d?.reason === 'RolloutHeldBack' &&
            /at most 2 of 3 pods can run/.test(d.message)
            ? status
            : undefined;
        },
        ROLL_TIMEOUT_MS,
      );
      const degraded = condition(held, 'Degraded');
      assert.match(
        degraded?.message ?? '',
        /would unblock: one more kubernetes\.io\/hostname domain with a app=checkout pod, or replicas ≤ 2/,
      );
      const ready = condition(held, 'Ready');
      assert.equal(ready?.status, 'False');
      assert.equal(ready.reason, 'RolloutHeldBack');
      const redis = await get(c, 'deployment', ns, 'checkout-redis');
      assert.equal(affinityOf(redis), undefined, 'checkout-redis template as its owner wrote it');
      assert.equal(appliedPolicies(redis), undefined);
      assert.equal(redis.metadata.generation, 1, 'its rollout never started');
      assert.equal(await replicaSetCount(c, ns, 'checkout-redis'), 1, 'one ReplicaSet');

      // checkout rolled to one pod per node; nothing waits in Pending.
      await waitFor(
        'checkout 2 Running on distinct nodes; checkout-redis 3 Running; no pod Pending',
        async () => {
          const co = running((await rolledPods(c, ns, 'checkout')).rolled);
          const re = running(await podsOf(c, ns, 'checkout-redis'));
          const all = await podsOf(c, ns, 'checkout-redis');
          return co.length === 2 &&
            new Set(co.map((p) => p.spec.nodeName)).size === 2 &&
            re.length === 3 &&
            all.length === 3
            ? true
            : undefined;
        },
        ROLL_TIMEOUT_MS,
      );
      assert.equal(await op.writes(), 1, 'one template write: checkout only');
      assert.equal(await op.metric('placement_rollouts_held_back'), 1);
    },
  );

  await subtest(t, 'web-store runs on the node of store', async (_t, s) => {
    const ns = await makeNamespace(c, s, 'store', { env: 'prod' });
    await c.apply(list(...seedWorkloads('workloads/web-store.yaml', ns, pool)));
    await waitRolledOut(c, ns);
    await runOperator(c, s);
    await c.apply(list(...seedPolicies('policies/web-store-with-store.yaml', ns)));
    await waitEnforced(c, ns, 'web-store-with-store', 1);
    const web = await get(c, 'deployment', ns, 'web-store');
    assert.deepEqual(slot(affinityOf(web), 'podAffinity', REQ), [term('store', HOSTNAME)]);
    assert.deepEqual(appliedPolicies(web), { [policyRef(ns, 'web-store-with-store')]: 1 });
    // The store's template is not targeted and stays as it was.
    const store = await get(c, 'deployment', ns, 'store');
    assert.equal(affinityOf(store), undefined);
    assert.equal(appliedPolicies(store), undefined);

    await waitFor(
      'both web-store pods Running on the store node',
      async () => {
        const st = running(await podsOf(c, ns, 'store'));
        const ws = await rolledPods(c, ns, 'web-store');
        const node = st[0]?.spec.nodeName;
        return st.length === 1 &&
          ws.all.length === 2 &&
          running(ws.rolled).length === 2 &&
          ws.rolled.every((p) => p.spec.nodeName === node)
          ? true
          : undefined;
      },
      ROLL_TIMEOUT_MS,
    );
    await assertReady(c, ns, 'web-store-with-store', 1);
  });

  await subtest(
    t,
    'frontend and backend each require the other: no first pod can start',
    async (t, s) => {
      const ns = await makeNamespace(c, s, 'apps', { env: 'prod' });
      // Neither runs yet: the Deployments start scaled to zero and are scaled up once rewritten.
      const workloads = seedWorkloads('workloads/frontend-backend.yaml', ns, pool).map((d) => ({
        ...d,
        spec: { ...(d['spec'] as JsonObject), replicas: 0 },
      }));
      await c.apply(list(...workloads));
      await runOperator(c, s);
      await c.apply(list(...seedPolicies('policies/frontend-backend-together.yaml', ns)));
      // Both templates carry the rules, but the pods cannot run under them: not Ready.
      for (const name of ['frontend-with-backend', 'backend-with-frontend'])
        await waitFor(`${name}: 1 workload enforced, not Ready (Unsatisfiable)`, async () => {
          const { status } = await policyStatus(c, ns, name);
          const ready = condition(status, 'Ready');
          return status.enforced === 1 &&
            status.pending === 0 &&
            ready?.status === 'False' &&
            ready.reason === 'Unsatisfiable'
            ? true
            : undefined;
        });
      const frontend = await get(c, 'deployment', ns, 'frontend');
      assert.deepEqual(slot(affinityOf(frontend), 'podAffinity', REQ), [term('backend', ZONE)]);
      const backend = await get(c, 'deployment', ns, 'backend');
      assert.deepEqual(slot(affinityOf(backend), 'podAffinity', REQ), [term('frontend', ZONE)]);

      await c.kubectl('scale', 'deployment', 'frontend', 'backend', '--replicas=2', '-n', ns);
      await waitFor(
        'all four pods Pending with FailedScheduling',
        async () => {
          const pods = [...(await podsOf(c, ns, 'frontend')), ...(await podsOf(c, ns, 'backend'))];
          if (pods.length !== 4 || pods.some((p) => p.spec.nodeName !== undefined))
            return undefined;
          for (const p of pods) {
            if ((await failedScheduling(c, ns, p.metadata.name)).length === 0) return undefined;
          }
          return true;
        },
        ROLL_TIMEOUT_MS,
      );
      const stillUnbound = [
        ...(await podsOf(c, ns, 'frontend')),
        ...(await podsOf(c, ns, 'backend')),
      ];
      assert.ok(
        stillUnbound.every((p) => p.spec.nodeName === undefined),
        'no pod of the cycle is ever placed',
      );

      // The operator's audit sees what the scheduler sees, and says why in status.
      const unsatisfiable = await waitFor('frontend-with-backend Unsatisfiable', async () => {
        const { status } = await policyStatus(c, ns, 'frontend-with-backend');
        const u = condition(status, 'Unsatisfiable');
        return u?.status === 'True' ? u : undefined;
      });
      assert.notEqual(unsatisfiable.message, '');
      t.diagnostic(`Unsatisfiable: ${unsatisfiable.message}`);
    },
  );

  await subtest(
    t,
    'prod-spread-across-zones: every prod Deployment prefers to spread over zones',
    async (_t, s) => {
      // The example selects env=prod namespaces; a run label keeps it to this test's own.
      const run = uniqueName('run');
      const ns = await makeNamespace(c, s, 'catalog', {
        env: 'prod',
        'placement.dev/test-run': run,
      });
      const other = await makeNamespace(c, s, 'staging', {
        env: 'staging',
        'placement.dev/test-run': run,
      });
      const catalog = (namespace: string): JsonObject => ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'catalog', namespace },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'catalog' } },
          template: {
            metadata: { labels: { app: 'catalog' } },
            spec: {
              containers: [{ name: 'catalog', image: 'registry.example/catalog:1.0' }],
              ...pool.podSpec,
            },
          },
        },
      });
      await c.apply(list(catalog(ns), catalog(other)));
      await waitRolledOut(c, ns);
      await runOperator(c, s);

      const [cpp] = example('policies/prod-spread-across-zones.yaml');
      assert.ok(cpp !== undefined);
      const name = uniqueName('prod-spread-across-zones');
      const spec = cpp['spec'] as {
        targets: { namespaceSelector: { matchLabels: Record<string, Json> } };
      };
      spec.targets.namespaceSelector.matchLabels['placement.dev/test-run'] = run;
      deferClusterPolicy(c, s, name);
      await c.apply(JSON.stringify({ ...cpp, metadata: { name } }));
      await waitEnforced(c, undefined, name, 1);

      const spread = await get(c, 'deployment', ns, 'catalog');
      assert.deepEqual(slot(affinityOf(spread), 'podAntiAffinity', PREF), [
        { weight: 100, podAffinityTerm: term('catalog', ZONE) },
      ]);
      assert.deepEqual(appliedPolicies(spread), { [`ClusterPlacementPolicy/${name}`]: 1 });
      const untouched = await get(c, 'deployment', other, 'catalog');
      assert.equal(
        affinityOf(untouched),
        undefined,
        'a namespace without env=prod is not targeted',
      );
      assert.equal(appliedPolicies(untouched), undefined);

      const zones = await nodeZones(c);
      await waitFor(
        'catalog pods Running in both zones',
        async () => {
          const pods = await rolledPods(c, ns, 'catalog');
          const run = running(pods.rolled);
          if (pods.all.length !== 2 || run.length !== 2) return undefined;
          return new Set(run.map((p) => zones.get(p.spec.nodeName ?? ''))).size === 2
            ? true
            : undefined;
        },
        ROLL_TIMEOUT_MS,
      );
      await assertReady(c, undefined, name, 1);
    },
  );
});
