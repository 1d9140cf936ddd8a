// Issue #5, remediation: a policy with spec.audit.remediation: Evict has its violating pods
// evicted through the Eviction API, so a PodDisruptionBudget that forbids it evicts nothing
// (placement_evictions_total{result="blocked"} rises); without the budget the pods are evicted
// and replaced, one pod of a workload at a time; and a pod that could be placed nowhere else
// is not evicted at all. The operator runs with the default 5-minute full check.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/eviction.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  list,
  runOperator,
  waitAuditPasses,
  waitFor,
  ZONE,
  type Operator,
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
  type PodInfo,
} from './support.ts';

const EVICTIONS = 'placement_evictions_total';
const UNSCHEDULABLE = 'not evicting: the pod would be unschedulable anyway';

const evicted = async (op: Operator, result: string): Promise<number> =>
  op.metric(EVICTIONS, { result });

clusterTest(
  'eviction honours PodDisruptionBudgets, goes one pod at a time, and only where the pod fits elsewhere',
  { timeout: 420_000, namespace: 'evict' },
  async ({ t, c, s, ns }) => {
    // n0 holds the anchors; web pods may use n1 and n2, but only n1 shares a zone with n0.
    const { pool, n0, n1, n2, followerSpec: webSpec } = await zoneSwapPool(c, s);

    await c.apply(
      list(
        barePod(ns, 'db', { app: 'db' }, pool, n0),
        barePod(ns, 'anchor', { app: 'anchor' }, pool, n0),
        {
          apiVersion: 'policy/v1',
          kind: 'PodDisruptionBudget',
          metadata: { name: 'web', namespace: ns },
          spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'web' } } },
        },
      ),
    );
    await waitRunning(c, ns, 'db', 1);
    await waitRunning(c, ns, 'anchor', 1);
    await c.apply(
      list(...follower(ns, 'web', 'db', 2, webSpec), ...follower(ns, 'solo', 'anchor', 1, webSpec)),
    );
    const web = await waitRunning(c, ns, 'web', 2);
    assert.deepEqual(
      web.map((p) => p.spec.nodeName),
      [n1, n1],
      'the scheduler put both web pods on the one node in the db zone',
    );
    await waitRunning(c, ns, 'solo', 1);
    await waitFor('the PodDisruptionBudget observed', async () => {
      const pdb = await c.json<{
        metadata: { generation: number };
        status?: { observedGeneration?: number; disruptionsAllowed?: number };
      }>('get', 'pdb', 'web', '-n', ns);
      return pdb.status?.observedGeneration === pdb.metadata.generation &&
        pdb.status.disruptionsAllowed === 0
        ? true
        : undefined;
    });

    // A full check every 2 s: audit passes go on while nothing changes.
    const op = await runOperator(c, s, ['--leader-elect=false', '--audit-interval', '2s']);
    for (const name of ['web-near-db', 'solo-near-anchor'])
      await waitStatus(
        c,
        ns,
        name,
        'audited, no violation',
        (x) => x.lastAuditTime !== undefined && x.violations === 0,
      );
    const timings: Record<string, number> = {};

    await t.test('a pod that fits nowhere else is not evicted', async () => {
      // No anchor pod anywhere now: wherever solo went, it would break its rule again.
      const before = await pods(c, ns, 'solo');
      await label(c, 'pod', 'anchor', { app: 'anchor-retired' }, ns);
      await waitStatus(c, ns, 'solo-near-anchor', 'one violation', (x) => x.violations === 1);
      await waitFor('the audit declining to evict', () =>
        Promise.resolve(
          op.logged(UNSCHEDULABLE).some((l) => l['pod'] === `${ns}/${before[0]?.metadata.name}`)
            ? true
            : undefined,
        ),
      );
      await waitAuditPasses(op.process, 2);
      assert.deepEqual(uids(await pods(c, ns, 'solo')), uids(before), 'solo still runs');
      assert.equal(await evicted(op, 'evicted'), 0);
      assert.equal(await evicted(op, 'blocked'), 0);
    });

    await t.test('a PodDisruptionBudget that forbids it: nothing is evicted', async () => {
      // Zones swap: n2 joins the db's zone first, then n1 (with both web pods) leaves it.
      await label(c, 'node', n2, { [ZONE]: 'zone-a' });
      const start = Date.now();
      await label(c, 'node', n1, { [ZONE]: 'zone-b' });
      await waitStatus(c, ns, 'web-near-db', 'two violations', (x) => x.violations === 2);
      timings['violations in status'] = secondsSince(start);
      await waitFor('evictions blocked', async () =>
        (await evicted(op, 'blocked')) > 0 ? true : undefined,
      );
      timings['first blocked eviction'] = secondsSince(start);
      const blocked = op.logged('evicted violating pod').filter((l) => l['result'] === 'blocked');
      assert.ok(blocked.length > 0);
      assert.match(String(blocked[0]?.['reason']), /disruption budget/i);
      await waitAuditPasses(op.process, 2);
      const now = await pods(c, ns, 'web');
      assert.deepEqual(uids(now), uids(web), 'both web pods still run');
      assert.ok(now.every(running));
      assert.equal(await evicted(op, 'evicted'), 0);
    });

    await t.test(
      'without it: evicted and replaced, one pod of the workload at a time',
      async () => {
        const start = Date.now();
        await c.kubectl('delete', 'pdb', 'web', '-n', ns);
        const originals = new Set(uids(web));
        const first = await waitFor(
          'one web pod evicted',
          async () => {
            const current = await pods(c, ns, 'web');
            const left = current.filter((p) => originals.has(p.metadata.uid) && running(p));
            return left.length < 2 ? Date.now() : undefined;
          },
          90_000,
        );
        timings['first eviction after the budget went'] = secondsSince(start);
        assert.equal(await evicted(op, 'evicted'), 1);
        // Its replacement lands in the db's zone now: n2.
        const replaced = await waitFor('the replacement running', async () => {
          const current = await pods(c, ns, 'web');
          const fresh = current.filter((p) => !originals.has(p.metadata.uid) && running(p));
          return fresh.length === 1 ? fresh : undefined;
        });
        assert.equal(replaced[0]?.spec.nodeName, n2);
        await waitStatus(c, ns, 'web-near-db', 'one violation left', (x) => x.violations === 1);
        // The other original pod is left alone while the first eviction is recent: the audit
        // has judged it in breach, and had two more passes to evict it, and has not.
        await waitAuditPasses(op.process, 2);
        const mid = await pods(c, ns, 'web');
        assert.equal(mid.filter((p) => originals.has(p.metadata.uid) && running(p)).length, 1);
        assert.equal(await evicted(op, 'evicted'), 1);

        // After the cooldown the second goes too, and the workload ends up where the rule holds.
        await waitFor(
          'the second web pod evicted',
          async () => {
            const current = await pods(c, ns, 'web');
            return current.some((p) => originals.has(p.metadata.uid) && running(p))
              ? undefined
              : true;
          },
          120_000,
        );
        const gap = secondsSince(first);
        timings['second eviction after the first'] = gap;
        // The workload's cooldown is a minute (seen here up to a poll interval late or early).
        assert.ok(gap >= 55, `not before the cooldown (${gap} s)`);
        await waitStatus(c, ns, 'web-near-db', 'no violation', (x) => x.violations === 0, 60_000);
        const end = await waitRunning(c, ns, 'web', 2);
        assert.deepEqual(
          end.map((p) => p.spec.nodeName),
          [n2, n2],
        );
        assert.equal(await evicted(op, 'evicted'), 2);
      },
    );

    t.diagnostic(`seconds: ${JSON.stringify(timings)}`);
  },
);

const uids = (list: readonly PodInfo[]): string[] => list.map((p) => p.metadata.uid).sort();
