// A rollout that the operator's write started and that cannot finish (a required one-per-node
// spread for 3 replicas on a pool of 2 nodes, written because the policy says
// allowBlockedRollouts; the Deployment's progress deadline is 5 s):
// the Deployment reports ProgressDeadlineExceeded, the policy turns Degraded with reason
// RolloutStalled naming it, a Warning Event RolloutStalled lands on the Deployment, and the
// slot stays taken, so with --rollout-budget 1 the next workload a policy change reaches
// waits rather than roll out into the same trap. Once a person scales the stuck one down to
// what fits, its rollout completes, the slot frees, the next workload is written and the
// policy recovers. The budget limits the operator's rewrites of existing workloads: a
// Deployment created meanwhile gets the terms at admission (its one rollout, generation 1).
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/rollout-stalled.test.ts
import assert from 'node:assert/strict';

import {
  appliedPolicies,
  clusterTest,
  condition,
  deployment,
  eventsAbout,
  get,
  HOSTNAME,
  list,
  makePool,
  policy,
  policyStatus,
  runOperator,
  waitFor,
  waitLoggedAgain,
  waitRolledOut,
} from './support.ts';

const STALL_MS = 120_000;

clusterTest(
  'a rollout that stalls after our write: Degraded, an Event, and the budget holds the next one back',
  { timeout: 300_000, namespace: 'stall' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-b']);
    /** A Deployment of `app` on the pool, its template labelled `tier`. */
    const onPool = (app: string, tier: string, replicas: number, spec = {}) =>
      c.apply(
        list(
          deployment(ns, app, {
            podSpec: pool.podSpec,
            replicas,
            labels: { app, tier },
            selector: { app },
            spec,
          }),
        ),
      );
    await onPool('stuck', 'spread', 3, { progressDeadlineSeconds: 5 });
    await waitRolledOut(c, ns);
    // Debug logs: each time the operator finds `next` waiting for the budget, it says so.
    const op = await runOperator(c, s, ['--rollout-budget', '1', '--log-level', 'debug']);
    await c.apply(
      list(
        policy(ns, 'one-per-node', {
          targets: { kinds: ['Deployment'], selector: { matchLabels: { tier: 'spread' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          // The owner writes anyway: without this the write is held back (its rollout
          // cannot finish), and nothing stalls.
          allowBlockedRollouts: true,
        }),
      ),
    );

    const degraded = await waitFor(
      'the policy Degraded with reason RolloutStalled',
      async () => {
        const { status } = await policyStatus(c, ns, 'one-per-node');
        const d = condition(status, 'Degraded');
        return d?.status === 'True' && d.reason === 'RolloutStalled' ? d : undefined;
      },
      STALL_MS,
    );
    t.diagnostic(`Degraded: ${degraded.message}`);
    assert.match(degraded.message, new RegExp(`Deployment ${ns}/stuck: `));
    assert.ok(appliedPolicies(await get(c, 'deployment', ns, 'stuck')), 'stuck was written');
    const events = await waitFor('a RolloutStalled Event on the Deployment', async () => {
      const found = await eventsAbout(c, ns, 'stuck', 'RolloutStalled');
      return found.length > 0 ? found : undefined;
    });
    const [event] = events;
    assert.ok(event);
    assert.equal(event.type, 'Warning');
    assert.match(event.message, /is not progressing \(ReplicaSet "stuck-\w+" has timed out/);
    assert.equal(await op.metric('placement_rollout_budget_in_use'), 1);

    // Created while the slot is taken: the terms come at admission, with its one rollout.
    await onPool('fresh', 'spread', 1);
    const fresh = await get(c, 'deployment', ns, 'fresh');
    assert.ok(appliedPolicies(fresh), 'fresh got the terms at admission');
    assert.equal(fresh.metadata.generation, 1);

    // The brake: an existing workload that a policy change reaches is not rolled out while
    // the first is stuck.
    await onPool('next', 'later', 1);
    await c.apply(
      list(
        policy(ns, 'later', {
          targets: { kinds: ['Deployment'], selector: { matchLabels: { tier: 'later' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
        }),
      ),
    );
    await waitFor('the policy to show next waiting for the budget', async () => {
      const { status } = await policyStatus(c, ns, 'later');
      const ready = condition(status, 'Ready');
      return ready?.message.includes('1 waiting for the rollout budget') === true
        ? true
        : undefined;
    });
    // It looks again (the budget is retried every 30 s) and still waits: no write to `next`.
    await waitLoggedAgain(op, 'waiting for the rollout budget', `Deployment/${ns}/next`);
    assert.equal(appliedPolicies(await get(c, 'deployment', ns, 'next')), undefined);

    // A person makes the spread possible: one replica fits the two nodes with a surge pod.
    await c.kubectl('scale', 'deployment/stuck', '-n', ns, '--replicas=1');
    await waitFor(
      'next written once the stuck rollout completes',
      async () =>
        appliedPolicies(await get(c, 'deployment', ns, 'next')) === undefined ? undefined : true,
      STALL_MS,
    );
    await waitRolledOut(c, ns, STALL_MS);
    // Ready only once the pods run under the rules: after the rollouts finish.
    const recovered = await waitFor('the policy no longer Degraded, and Ready', async () => {
      const { status } = await policyStatus(c, ns, 'one-per-node');
      const d = condition(status, 'Degraded');
      return d?.status === 'False' && condition(status, 'Ready')?.status === 'True'
        ? status
        : undefined;
    });
    assert.equal(condition(recovered, 'Ready')?.reason, 'Enforced');
  },
);
