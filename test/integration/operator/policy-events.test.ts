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
  waitControllersDone,
  waitEnforced,
  waitFor,
  waitReconciledAgain,
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
    // Settled: the rollouts' status updates are in (each controller says it is done), and the
    // operator has heard them all. Watch events of a kind come in order: once the operator has
    // reconciled a Deployment and a ReplicaSet marked after that, it has had every earlier one.
    const done = await waitControllersDone(c, ns, 'deployments,replicasets');
    // The ReplicaSets first: the Deployment's annotations, copied to its new one, change nothing.
    const markers = done
      .filter((w) => w.metadata.name.startsWith('svc-0'))
      .sort((a, b) => (a.kind === 'ReplicaSet' ? 0 : 1) - (b.kind === 'ReplicaSet' ? 0 : 1));
    const keys = markers.map((w) => `${w.kind}/${ns}/${w.metadata.name}`);
    const marked = waitReconciledAgain(op, keys);
    for (const w of markers)
      await c.kubectl('annotate', w.kind, w.metadata.name, '-n', ns, 'placement.dev/test-marker=1');
    await marked;

    // Other namespaces' workloads (an earlier test's, being deleted) may still send events;
    // only this namespace's workloads count.
    const reconciledHere = (): string[] =>
      ['Reconciled', 'Reconciler error', 'Reconciler threw']
        .flatMap((m) => op.logged(m))
        .filter((l) => l['controller'] === 'placement-workload')
        .map((l) => String(l['key']))
        .filter((key) => key.includes(`/${ns}/`));
    const queueIdle = () =>
      waitFor('the workload queue idle', async () =>
        (await op.metric('workqueue_depth', { name: 'placement-workload' })) === 0 &&
        (await op.metric('controller_runtime_active_workers', {
          controller: 'placement-workload',
        })) === 0
          ? true
          : undefined,
      );
    await queueIdle();
    const before = await reconciles();
    const hereBefore = reconciledHere().length;
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
    // The write-back reconciles the policy after both changes: their handlers have run, and
    // queued (at once) or held (for the settle window) any workload they reached.
    assert.equal(await op.metric('placement_workloads_settling'), 0, 'nor hold one back');
    // One more marker, queued after them: once it is reconciled, so is anything queued before
    // it, and its log line comes after theirs.
    await queueIdle();
    const last = markers[0];
    assert.ok(last);
    const lastKey = `${last.kind}/${ns}/${last.metadata.name}`;
    const marked2 = waitReconciledAgain(op, [lastKey]);
    await c.kubectl(
      'annotate',
      last.kind,
      last.metadata.name,
      '-n',
      ns,
      '--overwrite',
      'placement.dev/test-marker=2',
    );
    await marked2;
    assert.deepEqual(
      reconciledHere()
        .slice(hereBefore)
        .filter((key) => key !== lastKey),
      [],
      'status and metadata changes queue or reconcile no workload (only the marker was)',
    );

    await c.apply(list(spread(60)));
    await waitFor(`${WORKLOADS} workloads reconciled after a spec edit`, async () =>
      (await reconciles()) - before >= WORKLOADS ? true : undefined,
    );
    await waitEnforced(c, ns, 'spread', WORKLOADS);
  },
);
