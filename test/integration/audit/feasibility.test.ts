// Issue #5, feasibility: a policy whose required rules cannot be met is marked
// Unsatisfiable=True with a message, from the workloads and the cluster, before pods wait in
// Pending — here while the workloads still have zero replicas, before any pod exists. When
// they are scaled up the real scheduler is the oracle: their pods do wait in Pending. The
// satisfiable counterparts (self-matching affinity, a provider that can start first, one pod
// that meets every term) say Unsatisfiable=False and their pods run.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/feasibility.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  deployment,
  failedScheduling,
  HOSTNAME,
  list,
  makePool,
  policy,
  policyStatus,
  runOperator,
  waitFor,
  ZONE,
  type JsonObject,
} from '../operator/support.ts';
import {
  barePod,
  conditionOf,
  label,
  pods,
  running,
  secondsSince,
  waitRunning,
  waitStatus,
  type AuditStatus,
} from './support.ts';

const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';

const term = (matchLabels: Record<string, string>, topologyKey = ZONE): JsonObject => ({
  labelSelector: { matchLabels },
  topologyKey,
});

const unsatisfiable = (st: AuditStatus) => conditionOf(st, 'Unsatisfiable');

clusterTest(
  'policies that cannot be met are Unsatisfiable before pods wait in Pending',
  { timeout: 420_000, namespace: 'feasible' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a']);
    // Enough room for every rollout at once: a rollout that cannot finish holds the budget.
    await runOperator(c, s, ['--leader-elect=false', '--rollout-budget', '50']);
    const timings: Record<string, number> = {};

    /** A Deployment with no replicas yet and an Enforce policy for it; waits until rewritten. */
    const prepare = async (app: string, policyName: string, spec: JsonObject): Promise<void> => {
      await c.apply(
        list(
          policy(ns, policyName, { targets: { selector: { matchLabels: { app } } }, ...spec }),
          deployment(ns, app, { replicas: 0, podSpec: pool.podSpec }),
        ),
      );
      // Written, not Ready: Ready waits for pods that run under the rules, and these may
      // never run.
      await waitFor(`${policyName} written into ${app}`, async () => {
        const { status, generation } = await policyStatus(c, ns, policyName);
        return status.observedGeneration === generation &&
          status.enforced === 1 &&
          status.pending === 0
          ? true
          : undefined;
      });
    };
    const scale = (app: string, n: number) =>
      c.kubectl('scale', 'deployment', app, '-n', ns, `--replicas=${n}`);
    const waitCondition = (name: string, status: 'True' | 'False', timeoutMs = 30_000) =>
      waitStatus(
        c,
        ns,
        name,
        `Unsatisfiable=${status}`,
        (st) => unsatisfiable(st)?.status === status,
        timeoutMs,
      );
    /** Waits until a pod of the app is Pending with a FailedScheduling event: the scheduler agrees. */
    const waitPending = (app: string) =>
      waitFor(
        `a pod app=${app} unschedulable`,
        async () => {
          for (const p of await pods(c, ns, app)) {
            if (p.status.phase !== 'Pending') continue;
            const messages = await failedScheduling(c, ns, p.metadata.name);
            if (messages.length > 0) return messages;
          }
          return undefined;
        },
        60_000,
      );
    const noneRunning = async (app: string): Promise<void> => {
      assert.equal((await pods(c, ns, app)).filter(running).length, 0, `no ${app} pod runs`);
    };

    await t.test('required spread on hostname with more replicas than nodes', async () => {
      await prepare('spread', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      });
      assert.equal(
        unsatisfiable(await waitCondition('one-per-node', 'False'))?.reason,
        'Satisfiable',
      );
      // The cluster has more nodes, but the pods may only use the pool's two (their
      // nodeSelector and toleration; the pool's taint keeps everything else off them).
      const start = Date.now();
      await scale('spread', 3);
      const st = await waitCondition('one-per-node', 'True');
      timings['spread: scaled to Unsatisfiable'] = secondsSince(start);
      assert.equal(unsatisfiable(st)?.reason, 'CannotBeMet');
      assert.match(
        unsatisfiable(st)?.message ?? '',
        new RegExp(
          `Deployment ${ns}/spread wants 3 replicas, but required anti-affinity allows one per kubernetes\\.io/hostname and only 2 node domain\\(s\\) carry that label among the nodes its pods may use`,
        ),
      );
      const messages = await waitPending('spread');
      timings['spread: scaled to FailedScheduling'] = secondsSince(start);
      assert.match(messages.join('\n'), /anti-affinity|didn't match/);
      // Back within what the pool can hold: satisfiable again, until a pool node is cordoned.
      await scale('spread', 2);
      await waitCondition('one-per-node', 'False');
      const [n0] = pool.nodes as [string];
      await c.kubectl('cordon', n0);
      try {
        const cordoned = await waitCondition('one-per-node', 'True');
        assert.match(
          unsatisfiable(cordoned)?.message ?? '',
          /wants 2 replicas.* only 1 node domain/,
        );
      } finally {
        await c.kubectl('uncordon', n0);
      }
      await waitCondition('one-per-node', 'False');
      await scale('spread', 1);
    });

    await t.test('required affinity that no pod meets and no first pod can start', async () => {
      await prepare('lonely', 'follow-ghost', {
        affinity: { podAffinity: { [REQ]: [term({ app: 'ghost' })] } },
      });
      // No replica yet, so no pod waits anywhere: the policy says so already.
      const st = await waitCondition('follow-ghost', 'True');
      assert.match(
        unsatisfiable(st)?.message ?? '',
        new RegExp(
          `Deployment ${ns}/lonely: required podAffinity on topology\\.kubernetes\\.io/zone`,
        ),
      );
      assert.equal((await pods(c, ns, 'lonely')).length, 0);
      await scale('lonely', 1);
      await waitPending('lonely');
      await noneRunning('lonely');
      // A workload no policy targets, whose pods meet the term, can start first.
      const start = Date.now();
      await c.apply(list(deployment(ns, 'ghost', { podSpec: pool.podSpec })));
      await waitCondition('follow-ghost', 'False');
      timings['provider created to Satisfiable'] = secondsSince(start);
      await waitRunning(c, ns, 'lonely', 1, 90_000);
    });

    await t.test('self-matching required affinity: the first pod may start', async () => {
      await prepare('flock', 'flock-together', {
        affinity: { podAffinity: { [REQ]: [term({ app: 'flock' })] } },
      });
      await scale('flock', 2);
      await waitRunning(c, ns, 'flock', 2, 90_000);
      assert.equal(unsatisfiable(await waitCondition('flock-together', 'False'))?.status, 'False');
    });

    await t.test('mutual required affinity created fresh, with no pod running', async () => {
      await prepare('frontend', 'frontend-to-backend', {
        affinity: { podAffinity: { [REQ]: [term({ app: 'backend' }, HOSTNAME)] } },
      });
      await prepare('backend', 'backend-to-frontend', {
        affinity: { podAffinity: { [REQ]: [term({ app: 'frontend' }, HOSTNAME)] } },
      });
      for (const [name, app] of [
        ['frontend-to-backend', 'frontend'],
        ['backend-to-frontend', 'backend'],
      ] as const) {
        const st = await waitCondition(name, 'True');
        assert.match(
          unsatisfiable(st)?.message ?? '',
          new RegExp(`Deployment ${ns}/${app}: required podAffinity on kubernetes\\.io/hostname`),
        );
      }
      await scale('frontend', 1);
      await scale('backend', 1);
      await waitPending('frontend');
      await waitPending('backend');
      await noneRunning('frontend');
      await noneRunning('backend');
      assert.equal(
        unsatisfiable(await waitCondition('frontend-to-backend', 'True'))?.status,
        'True',
      );
    });

    await t.test('two required terms need one pod that meets both', async () => {
      // The scheduler counts only pods that match every required term of the incoming pod.
      const [n0] = pool.nodes as [string];
      await c.apply(
        list(
          barePod(ns, 'db-x', { app: 'db-x', role: 'db' }, pool, n0),
          barePod(ns, 'cache-x', { app: 'cache-x', tier: 'cache' }, pool, n0),
        ),
      );
      await waitRunning(c, ns, 'db-x', 1);
      await waitRunning(c, ns, 'cache-x', 1);
      await prepare('picky', 'picky-near-both', {
        affinity: { podAffinity: { [REQ]: [term({ role: 'db' }), term({ tier: 'cache' })] } },
      });
      await waitCondition('picky-near-both', 'True');
      await scale('picky', 1);
      await waitPending('picky');
      await noneRunning('picky');
      // One pod meets both terms now.
      await label(c, 'pod', 'db-x', { tier: 'cache' }, ns);
      await waitCondition('picky-near-both', 'False');
      await waitRunning(c, ns, 'picky', 1, 90_000);
    });

    t.diagnostic(`seconds: ${JSON.stringify(timings)}`);
  },
);
