// Issue #5, remediation with --eviction-dry-run: the operator asks the Eviction API with
// dryRun=All, logs 'would evict (dry run)' for the pod, and evicts nothing; the pods keep
// running and placement_evictions_total stays at zero.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/eviction-dry-run.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  list,
  runOperator,
  waitAuditPasses,
  waitFor,
  ZONE,
} from '../operator/support.ts';
import {
  barePod,
  follower,
  label,
  pods,
  running,
  secondsSince,
  waitRunning,
  waitStatus,
  zoneSwapPool,
} from './support.ts';

const EVICTIONS = 'placement_evictions_total';
const WOULD_EVICT = 'would evict (dry run)';

clusterTest(
  '--eviction-dry-run logs what it would evict and evicts nothing',
  { timeout: 240_000, namespace: 'dry-run' },
  async ({ t, c, s, ns }) => {
    const { pool, n0, n1, n2, followerSpec } = await zoneSwapPool(c, s);
    await c.apply(list(barePod(ns, 'db', { app: 'db' }, pool, n0)));
    await waitRunning(c, ns, 'db', 1);
    await c.apply(list(...follower(ns, 'web', 'db', 2, followerSpec)));
    const web = await waitRunning(c, ns, 'web', 2);

    // A full check every 2 s: audit passes go on while nothing changes.
    const op = await runOperator(c, s, [
      '--leader-elect=false',
      '--eviction-dry-run',
      '--audit-interval',
      '2s',
    ]);
    await waitStatus(
      c,
      ns,
      'web-near-db',
      'audited, no violation',
      (x) => x.lastAuditTime !== undefined && x.violations === 0,
    );

    await label(c, 'node', n2, { [ZONE]: 'zone-a' });
    const start = Date.now();
    await label(c, 'node', n1, { [ZONE]: 'zone-b' });
    await waitStatus(c, ns, 'web-near-db', 'two violations', (x) => x.violations === 2);
    const names = new Set(web.map((p) => `${ns}/${p.metadata.name}`));
    const line = await waitFor('a dry-run eviction logged', () =>
      Promise.resolve(op.logged(WOULD_EVICT).find((l) => names.has(String(l['pod'])))),
    );
    t.diagnostic(
      `'${WOULD_EVICT}' ${secondsSince(start)} s after the drift: ${JSON.stringify(line)}`,
    );
    assert.equal(line['policy'], `PlacementPolicy/${ns}/web-near-db`);
    // The API server judged the eviction (dry run) and would have allowed it.
    assert.equal(line['result'], 'evicted');

    await waitAuditPasses(op.process, 2);
    const now = await pods(c, ns, 'web');
    assert.deepEqual(
      now.map((p) => p.metadata.uid).sort(),
      web.map((p) => p.metadata.uid).sort(),
      'the same pods',
    );
    assert.ok(now.every(running), 'still running, none being deleted');
    assert.equal(op.logged('evicted violating pod').length, 0);
    for (const result of ['evicted', 'blocked', 'gone', 'failed'])
      assert.equal(await op.metric(EVICTIONS, { result }), 0, `${EVICTIONS}{result="${result}"}`);
    assert.equal((await waitStatus(c, ns, 'web-near-db', 'still', () => true)).violations, 2);
  },
);
