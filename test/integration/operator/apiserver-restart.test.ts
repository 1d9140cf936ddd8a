// Not a clusterTest: it kills an API server, so it starts a private control plane.
// The operator survives its API server going away mid-reconcile. The shared cluster cannot
// lose its API server safely, so this file starts a private one (two nodes), runs the
// operator against it, applies a policy over several workloads and kills kube-apiserver
// (SIGKILL) straight away, while the operator is writing (and, with a rollout budget of 3
// for 8 workloads, while most wait for a slot). A few seconds later the API server comes
// back on the same port and etcd; the operator's informers relist and watch again, and it
// converges: every workload enforced, written once, no term of its owner lost.
//
// Leader election is off here: an outage longer than the renew deadline (10 s) makes a
// leader exit on purpose (a fresh process stands by), which is not what is tested.
//
//   hack/node --test test/integration/operator/apiserver-restart.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startLocalCluster } from '../../cluster/local-cluster.ts';
import { ensureBinaries } from '../../cluster/select.ts';
import { clusterAt, installCrds, waitFor, withOperatorAccount } from '../harness.ts';
import {
  affinityOf,
  appliedPolicies,
  deployment,
  get,
  HOSTNAME,
  list,
  makeNamespace,
  policy,
  policyRef,
  PREF,
  runOperator,
  Scope,
  sleep,
  slot,
  tail,
  waitEnforced,
  waitRolledOut,
  ZONE,
} from './support.ts';

const WORKLOADS = 8;
/** The operator's --workers default: writes that can be in flight at once. */
const DEFAULT_WORKERS = 4;
const DOWN_MS = 3_000;

const ownTerm = (app: string) => ({
  weight: 30,
  podAffinityTerm: { labelSelector: { matchLabels: { app } }, topologyKey: ZONE },
});
const spread = (app: string) => ({
  weight: 100,
  podAffinityTerm: { labelSelector: { matchLabels: { app } }, topologyKey: HOSTNAME },
});

void test(
  'the operator recovers from an API server restart mid-reconcile',
  { timeout: 240_000 },
  async (t) => {
    const s = new Scope(t);
    const local = await startLocalCluster({
      nodes: 2,
      name: 'restart',
      zones: ['zone-a', 'zone-b'],
      binDir: await ensureBinaries(),
      log: (line) => {
        t.diagnostic(line);
      },
    });
    s.defer(() => local.stop()); // the first cleanup registered runs last
    // The chart's ServiceAccount and RBAC on this cluster too: the operator runs as it.
    const c = await withOperatorAccount(clusterAt(local.kubeconfigPath));
    await installCrds(c);
    const ns = await makeNamespace(c, s, 'restart');
    const apps = Array.from({ length: WORKLOADS }, (_, i) => `svc-${i}`);
    await c.apply(
      list(
        ...apps.map((a) =>
          deployment(ns, a, {
            labels: { app: a, tier: 'web' },
            selector: { app: a },
            affinity: { podAntiAffinity: { [PREF]: [ownTerm(a)] } },
          }),
        ),
      ),
    );
    await waitRolledOut(c, ns);
    const op = await runOperator(c, s, ['--leader-elect=false', '--rollout-budget', '3']);

    await c.apply(
      JSON.stringify(
        policy(ns, 'spread', {
          targets: { selector: { matchLabels: { tier: 'web' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
        }),
      ),
    );
    // Kill it as soon as the first workload is written: the others are being written or wait
    // for a budget slot, which only a finished rollout (seen through the API) frees.
    const deadline = Date.now() + 30_000;
    while (op.logged('injected affinity').length === 0) {
      assert.ok(Date.now() < deadline, `no workload written:\n${tail(op.process)}`);
      await sleep(10);
    }
    await local.stopApiserver();
    const writesAtKill = op.logged('injected affinity').length;
    t.diagnostic(`API server killed; ${writesAtKill} of ${WORKLOADS} workload(s) written before`);
    assert.ok(writesAtKill < WORKLOADS, 'killed mid-reconcile');
    await sleep(DOWN_MS);
    const restartAt = Date.now();
    await local.startApiserver();
    t.diagnostic(
      `API server back after ${((Date.now() - restartAt) / 1000).toFixed(1)} s of start-up`,
    );
    assert.equal(
      op.process.child.exitCode,
      null,
      `the operator is still running:\n${tail(op.process)}`,
    );

    await waitEnforced(c, ns, 'spread', WORKLOADS, 150_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${tail(op.process, 30)}`);
    });
    t.diagnostic(
      `converged ${((Date.now() - restartAt) / 1000).toFixed(1)} s after the restart began`,
    );
    // The outage is said once per cause (the retries are debug lines), and so is its end.
    const outage = op.process.logs.filter((l) =>
      /^API server (unreachable|failing); retrying$/.test(String(l['message'])),
    );
    assert.ok(outage.length > 0, `the operator saw the outage:\n${tail(op.process, 30)}`);
    assert.ok(
      outage.every((l) => l['server'] === local.server && typeof l['cause'] === 'string'),
      JSON.stringify(outage),
    );
    // And its end, once the last source in backoff gets through (an informer that met the
    // outage may still be waiting out its retry delay when the workloads have converged).
    await waitFor(
      "the operator's log line 'API server answering again'",
      () => Promise.resolve(op.logged('API server answering again').length > 0 ? true : undefined),
      60_000,
    );

    for (const a of apps) {
      const w = await get(c, 'deployment', ns, a);
      assert.deepEqual(appliedPolicies(w), { [policyRef(ns, 'spread')]: 1 }, `${a}: record`);
      assert.deepEqual(
        slot(affinityOf(w), 'podAntiAffinity', PREF),
        [ownTerm(a), spread(a)],
        `${a}: owner's term, then the policy's`,
      );
      assert.equal(w.metadata.generation, 2, `${a}: one template write`);
    }

    // The watches are live again, not only the lists: a new workload is picked up.
    await c.apply(
      JSON.stringify(
        deployment(ns, 'late', { labels: { app: 'late', tier: 'web' }, selector: { app: 'late' } }),
      ),
    );
    await waitEnforced(c, ns, 'spread', WORKLOADS + 1, 90_000);
    // Created after its policy: the terms came at admission, and the operator, whose status
    // counts it enforced, saw it through its watch and had nothing to write.
    assert.equal((await get(c, 'deployment', ns, 'late')).metadata.generation, 1);
    // A write in flight when the API server died may have landed unseen (counted failed, not
    // written, and found in place afterwards): one per worker at most (the default 4). The
    // generations above show each workload was written exactly once.
    const writes = await op.writes();
    assert.ok(
      writes >= WORKLOADS - DEFAULT_WORKERS && writes <= WORKLOADS,
      `${writes} workload writes counted`,
    );
  },
);
