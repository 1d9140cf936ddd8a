// Not a clusterTest: src/kube against the API server itself (kube/support.ts), no operator.
// Leader election on a real Lease: two candidates, one leader; a graceful stop hands the
// lease over within a retry period; a holder that stops renewing loses it after the
// lease duration.
//
//   hack/node --test 'test/integration/kube/*.test.ts'
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';

import type { Plain } from '../../../src/kube/json.ts';
import {
  LeaderElector,
  type LeaseClient,
  type LeaderElectorOptions,
} from '../../../src/kube/leader.ts';
import { eventually, kubeTestEnv } from './support.ts';

const leaseBody = (body: Plain<V1Lease>): V1Lease => body;

/** Short timings so the test takes seconds; the ratios are the defaults' (15 s / 10 s / 2 s). */
const TIMING = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 1_000 };
/** Allowance for API round trips on a loaded test machine. */
const ROUND_TRIPS_MS = 500;

void test('leader election on a real Lease', { timeout: 120_000 }, async (t) => {
  const env = await kubeTestEnv(t, 'leader');
  const { namespace } = env;
  const { coordination } = env.clients;

  /** A candidate's Lease client whose reads and writes are counted as they return. */
  const counting = () => {
    const calls = { reads: 0, writes: 0, client: coordination as LeaseClient };
    const counted = <T>(call: Promise<T>, kind: 'reads' | 'writes'): Promise<T> =>
      call.then((value) => {
        calls[kind]++;
        return value;
      });
    calls.client = {
      readNamespacedLease: (...args: Parameters<LeaseClient['readNamespacedLease']>) =>
        counted(coordination.readNamespacedLease(...args), 'reads'),
      createNamespacedLease: (...args: Parameters<LeaseClient['createNamespacedLease']>) =>
        counted(coordination.createNamespacedLease(...args), 'writes'),
      replaceNamespacedLease: (...args: Parameters<LeaseClient['replaceNamespacedLease']>) =>
        counted(coordination.replaceNamespacedLease(...args), 'writes'),
    };
    return calls;
  };

  const candidate = (
    identity: string,
    lease: string,
    log: string[],
    client: LeaseClient = coordination,
  ) =>
    new LeaderElector({
      coordination: client,
      namespace,
      name: lease,
      identity,
      ...TIMING,
      onStartedLeading: () => log.push(`${identity} started`),
      onStoppedLeading: () => log.push(`${identity} stopped`),
    } satisfies LeaderElectorOptions);

  await t.test(
    'one of two candidates leads; stopping it hands over within a retry period',
    async () => {
      const log: string[] = [];
      const calls = counting();
      const a = candidate('a', 'handover', log, calls.client);
      const b = candidate('b', 'handover', log, calls.client);
      a.start();
      b.start();
      t.after(() => Promise.all([a.stop(), b.stop()]));
      await eventually('a leader', () => a.isLeader || b.isLeader, 10_000);

      // Over two renewals (counted), never both and never neither: sampled, every 100 ms.
      const renewed = calls.writes + 2;
      await eventually(
        'two more renewals',
        () => {
          assert.equal(
            Number(a.isLeader) + Number(b.isLeader),
            1,
            `exactly one leader (${log.join(', ')})`,
          );
          return calls.writes >= renewed;
        },
        10_000,
      );
      const [leader, standby] = a.isLeader ? [a, b] : [b, a];
      assert.equal(standby.leader, leader === a ? 'a' : 'b', 'the standby sees who leads');

      await leader.stop();
      const releasedAt = performance.now();
      assert.equal(leader.isLeader, false);
      const lease = await coordination.readNamespacedLease({ name: 'handover', namespace });
      assert.equal(lease.spec?.holderIdentity ?? '', '', 'released: no holder');

      await eventually('the standby to lead', () => standby.isLeader, 5_000);
      const handoverMs = performance.now() - releasedAt;
      t.diagnostic(`handover ${handoverMs.toFixed(0)} ms after the release`);
      // The standby polls once per retry period; then one read and one write.
      assert.ok(
        handoverMs < TIMING.retryPeriodMs + ROUND_TRIPS_MS,
        `handover took ${handoverMs.toFixed(0)} ms`,
      );
      const taken = await coordination.readNamespacedLease({ name: 'handover', namespace });
      assert.equal(taken.spec?.holderIdentity, standby === a ? 'a' : 'b');
      assert.equal(taken.spec.leaseTransitions, 1);
      await standby.stop();
      const first = leader === a ? 'a' : 'b';
      const second = standby === a ? 'a' : 'b';
      assert.deepEqual(log, [
        `${first} started`,
        `${first} stopped`,
        `${second} started`,
        `${second} stopped`,
      ]);
    },
  );

  await t.test('a holder that stopped renewing loses the lease after its duration', async () => {
    // A holder that crashed: its lease stays, renewed once and never again.
    const now = new V1MicroTime();
    await coordination.createNamespacedLease({
      namespace,
      body: leaseBody({
        metadata: { name: 'crashed', namespace },
        spec: {
          holderIdentity: 'ghost',
          leaseDurationSeconds: TIMING.leaseDurationMs / 1000,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      }),
    });
    const log: string[] = [];
    // Its reads of the lease, counted: each attempt begins with one.
    const calls = counting();
    const c = candidate('c', 'crashed', log, calls.client);
    const started = performance.now();
    c.start();
    t.after(() => c.stop());
    // Two attempts decided, a retry period apart (well within the lease duration), and a
    // third begun: a candidate that took a valid lease would lead by now.
    await eventually('c to read the lease three times', () => calls.reads >= 3, 10_000);
    assert.equal(c.isLeader, false, 'waits while the lease may still be valid');
    assert.equal(c.leader, 'ghost');
    await eventually('c to take the expired lease', () => c.isLeader, 10_000);
    const waitedMs = performance.now() - started;
    assert.ok(waitedMs >= TIMING.leaseDurationMs, `took over after ${waitedMs.toFixed(0)} ms`);
    const lease = await coordination.readNamespacedLease({ name: 'crashed', namespace });
    assert.equal(lease.spec?.holderIdentity, 'c');
    assert.equal(lease.spec.leaseTransitions, 1);
  });

  await t.test('a leader that finds another holder when it renews steps down', async () => {
    const log: string[] = [];
    const d = candidate('d', 'lost', log);
    d.start();
    t.after(() => d.stop());
    await eventually('d to lead', () => d.isLeader, 10_000);
    // Someone else overwrites the lease (as a partition would let another replica do).
    const current = await coordination.readNamespacedLease({ name: 'lost', namespace });
    await coordination.replaceNamespacedLease({
      name: 'lost',
      namespace,
      body: leaseBody({
        metadata: current.metadata ?? { name: 'lost' },
        spec: {
          holderIdentity: 'usurper',
          leaseDurationSeconds: 60,
          acquireTime: new V1MicroTime(),
          renewTime: new V1MicroTime(),
          leaseTransitions: 1,
        },
      }),
    });
    // The next renewal finds another holder.
    await eventually(
      'd to step down',
      () => !d.isLeader && log.includes('d stopped'),
      TIMING.retryPeriodMs + ROUND_TRIPS_MS,
    );
    assert.equal(d.leader, 'usurper');
  });
});
