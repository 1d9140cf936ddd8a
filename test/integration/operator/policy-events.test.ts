// A policy event reconciles the workloads only when something they read changed: the
// policy's status writes (the operator's own) and its metadata (labels, annotations) bump
// no generation and must not make every workload in reach be looked at again; a spec edit
// must. With a thousand workloads under a cluster policy, each status write would
// otherwise cost a thousand reconciles.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/policy-events.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  deployment,
  HOSTNAME,
  list,
  policy,
  runOperator,
  sleep,
  waitEnforced,
  waitFor,
  waitRolledOut,
} from './support.ts';

const WORKLOADS = 4;

clusterTest(
  'only a spec change of a policy reconciles its workloads again',
  { timeout: 180_000, namespace: 'policy-events' },
  async ({ c, s, ns }) => {
    await c.apply(
      list(
        ...Array.from({ length: WORKLOADS }, (_, i) =>
          deployment(ns, `svc-${i}`, {
            labels: { app: `svc-${i}`, tier: 'events' },
            selector: { app: `svc-${i}` },
          }),
        ),
      ),
    );
    await waitRolledOut(c, ns);
    const op = await runOperator(c, s, ['--log-level', 'debug']);
    const spread = (weight: number) =>
      policy(ns, 'spread', {
        targets: { selector: { matchLabels: { tier: 'events' } } },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred', weight }],
      });
    await c.apply(list(spread(50)));
    await waitEnforced(c, ns, 'spread', WORKLOADS);
    await waitRolledOut(c, ns);
    const reconciles = () =>
      op.metric('controller_runtime_reconcile_total', { controller: 'placement-workload' });
    // Settled: the rollouts' status updates are in.
    await waitFor('workload reconciles to stop for 3 s', async () => {
      const a = await reconciles();
      await sleep(3_000);
      return (await reconciles()) === a ? true : undefined;
    });

    const before = await reconciles();
    // A workload that a policy event reaches is queued, or held for the settle window, in the
    // event's handler, before the policy itself is reconciled.
    const queued = () => op.metric('workqueue_adds_total', { name: 'placement-workload' });
    const queuedBefore = await queued();
    const statusWrites = op.logged('policy status updated').length;
    await c.kubectl('label', 'placementpolicy/spread', '-n', ns, 'team=platform');
    // A status the operator did not write: it puts its own back, a second status-only event.
    await c.kubectl(
      'patch',
      'placementpolicy/spread',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { violations: 99 } }),
    );
    await waitFor('the operator to write its status back', () =>
      Promise.resolve(op.logged('policy status updated').length > statusWrites ? true : undefined),
    );
    // The write-back reconciles the policy after both changes: their handlers have run.
    assert.equal(await queued(), queuedBefore, 'status and metadata changes queue no workload');
    assert.equal(await op.metric('placement_workloads_settling'), 0, 'nor hold one back');
    assert.equal(await reconciles(), before, 'status and metadata changes reconcile no workload');

    await c.apply(list(spread(60)));
    await waitFor(`${WORKLOADS} workloads reconciled after a spec edit`, async () =>
      (await reconciles()) - before >= WORKLOADS ? true : undefined,
    );
    await waitEnforced(c, ns, 'spread', WORKLOADS);
  },
);
