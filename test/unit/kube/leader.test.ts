import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiException, type V1Lease } from '@kubernetes/client-node';

import { ApiHealth } from '../../../src/kube/api-health.ts';
import type { Plain } from '../../../src/kube/json.ts';
import {
  LeaderElector,
  leaseDecision,
  type LeaseClient,
  type LeaseDecision,
} from '../../../src/kube/leader.ts';
import type { WallClock } from '../../../src/util/clock.ts';

const CASES: readonly {
  name: string;
  holder: string;
  observedAtMs: number;
  nowMs: number;
  decision: LeaseDecision;
}[] = [
  { name: 'the holder renews', holder: 'me', observedAtMs: 0, nowMs: 100_000, decision: 'renew' },
  {
    name: 'a free lease is taken at once',
    holder: '',
    observedAtMs: 1_000,
    nowMs: 1_000,
    decision: 'take',
  },
  {
    name: 'another holder seen changing recently: wait',
    holder: 'other',
    observedAtMs: 1_000,
    nowMs: 15_999,
    decision: 'wait',
  },
  {
    name: 'another holder unchanged for a lease duration: take',
    holder: 'other',
    observedAtMs: 1_000,
    nowMs: 16_000,
    decision: 'take',
  },
];

for (const c of CASES) {
  void test(`leaseDecision: ${c.name}`, () => {
    assert.equal(
      leaseDecision({
        identity: 'me',
        holder: c.holder,
        observedAtMs: c.observedAtMs,
        leaseDurationMs: 15_000,
        nowMs: c.nowMs,
      }),
      c.decision,
    );
  });
}

/**
 * A Lease store with the API server's optimistic concurrency (409 on a stale
 * resourceVersion), whose calls can be made to fail like an unreachable server.
 */
class FakeLeases implements LeaseClient {
  lease: V1Lease | undefined;
  version = 0;
  down = false;
  writes = 0;

  #check(): void {
    if (this.down) {
      const cause = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), {
        code: 'ECONNREFUSED',
      });
      throw new TypeError('fetch failed', { cause });
    }
  }

  readNamespacedLease(): Promise<V1Lease> {
    this.#check();
    if (this.lease === undefined)
      return Promise.reject(new ApiException(404, 'NotFound', '{}', {}));
    return Promise.resolve(structuredClone(this.lease));
  }

  createNamespacedLease(param: { body: V1Lease }): Promise<V1Lease> {
    this.#check();
    if (this.lease !== undefined)
      return Promise.reject(new ApiException(409, 'AlreadyExists', '{}', {}));
    return Promise.resolve(this.#store(param.body));
  }

  replaceNamespacedLease(param: { body: V1Lease }): Promise<V1Lease> {
    this.#check();
    if (param.body.metadata?.resourceVersion !== String(this.version)) {
      return Promise.reject(new ApiException(409, 'Conflict', '{}', {}));
    }
    return Promise.resolve(this.#store(param.body));
  }

  /** Another process writes the lease. */
  overwrite(holder: string): void {
    const lease = structuredClone(this.lease ?? assert.fail('no lease'));
    if (lease.spec !== undefined) lease.spec.holderIdentity = holder;
    this.#store(lease);
  }

  #store(body: V1Lease): V1Lease {
    this.version++;
    this.writes++;
    const stored = structuredClone(body);
    (stored.metadata ?? assert.fail('a lease without metadata')).resourceVersion = String(
      this.version,
    );
    this.lease = stored;
    return structuredClone(stored);
  }
}

const leaseOf = (lease: Plain<V1Lease>): V1Lease => lease;

/** Time moves only when the elector sleeps; each sleep also lets the test run (setImmediate). */
function fakeClock(): WallClock & { ms: number } {
  const clock = {
    ms: 1_000_000,
    now: () => clock.ms,
    sleep: async (ms: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      clock.ms += ms;
    },
  };
  return clock;
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never: ${what}`);
}

function elector(leases: FakeLeases, clock: WallClock, identity: string, log: string[]) {
  return new LeaderElector({
    coordination: leases,
    namespace: 'ns',
    name: 'lease',
    identity,
    clock,
    onStartedLeading: () => log.push(`${identity} started @${clock.now()}`),
    onStoppedLeading: () => log.push(`${identity} stopped @${clock.now()}`),
  });
}

void test('LeaderElector: creates the lease, renews every retry period, releases on stop', async () => {
  const leases = new FakeLeases();
  const clock = fakeClock();
  const log: string[] = [];
  const e = elector(leases, clock, 'me', log);
  e.start();
  await until('leading', () => e.isLeader);
  const holder = (): string | undefined => leases.lease?.spec?.holderIdentity;
  assert.equal(holder(), 'me');
  const start = clock.ms;
  await until('five renewals', () => leases.writes >= 6);
  assert.equal(clock.ms - start, 5 * 2_000, 'one renewal per 2 s retry period');
  assert.equal(leases.lease?.spec?.leaseDurationSeconds, 15);
  await e.stop();
  assert.equal(holder(), '', 'released');
  assert.equal(e.isLeader, false);
  assert.deepEqual(log, ['me started @1000000', `me stopped @${clock.ms}`]);
});

void test('LeaderElector: renewals failing for renewDeadline step it down, then it competes again', async () => {
  const leases = new FakeLeases();
  const clock = fakeClock();
  const log: string[] = [];
  const e = elector(leases, clock, 'me', log);
  e.start();
  await until('leading', () => e.isLeader);
  const lastRenew = clock.ms;
  leases.down = true;
  await until('stepped down', () => log.length === 2);
  // Retries at 2, 4, 6, 8 s fail; at 10 s the deadline has passed.
  assert.equal(log[1], `me stopped @${lastRenew + 10_000}`);
  assert.equal(e.isLeader, false);
  leases.down = false;
  await until('leading again', () => e.isLeader);
  assert.equal(log.length, 3);
  await e.stop();
});

void test('LeaderElector: another holder seen on renewal steps it down at once', async () => {
  const leases = new FakeLeases();
  const clock = fakeClock();
  const log: string[] = [];
  const e = elector(leases, clock, 'me', log);
  e.start();
  await until('leading', () => e.isLeader);
  const at = clock.ms;
  leases.overwrite('usurper');
  await until('stepped down', () => log.length === 2);
  assert.equal(log[1], `me stopped @${at + 2_000}`, 'at the next renewal');
  assert.equal(e.leader, 'usurper');
  await e.stop();
  assert.equal(leases.lease?.spec?.holderIdentity, 'usurper', 'not ours to release');
});

void test('LeaderElector: a lease left unrenewed is taken leaseDuration after it was first seen', async () => {
  const leases = new FakeLeases();
  const clock = fakeClock();
  // A holder that crashed long ago: its renewTime says nothing to us (clocks differ).
  await leases.createNamespacedLease({
    body: leaseOf({
      metadata: { name: 'lease' },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 15, leaseTransitions: 3 },
    }),
  });
  const log: string[] = [];
  const e = elector(leases, clock, 'me', log);
  const seenAt = clock.ms;
  e.start();
  await until('leading', () => e.isLeader);
  // Tries every 2 s; the first try at or after seenAt + 15 s takes it.
  assert.deepEqual(log, [`me started @${seenAt + 16_000}`]);
  assert.equal(leases.lease?.spec?.leaseTransitions, 4);
  await e.stop();
});

void test('LeaderElector: an unreachable API server is said once (health), each retry at debug', async () => {
  const leases = new FakeLeases();
  const clock = fakeClock();
  const lines: string[] = [];
  const at =
    (level: string) =>
    (message: string): void => {
      lines.push(`${level} ${message}`);
    };
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  leases.down = true;
  const e = new LeaderElector({
    coordination: leases,
    namespace: 'ns',
    name: 'lease',
    identity: 'me',
    clock,
    logger,
    health: new ApiHealth({ server: 'https://10.0.0.1:6443', user: 'me' }, logger),
  });
  e.start();
  await until('five attempts', () => lines.filter((l) => l.startsWith('debug')).length >= 5);
  leases.down = false;
  await until('leading', () => e.isLeader);
  await e.stop();
  assert.deepEqual(
    lines.filter((l) => !l.startsWith('debug')),
    [
      'warn API server unreachable; retrying',
      'info API server answering again',
      'info became leader',
      'info stopped leading',
    ],
  );
  assert.ok(lines.filter((l) => l === 'debug lease read failed').length >= 5);
});
