// Remediation: the limits on evictions, and which violating pods the audit evicts, how
// often, and when an eviction is tried again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { PolicyAudit as AuditSpec, PolicyRef } from '../../../src/api/policy.ts';
import { EvictionLimiter, evictionOptedOut } from '../../../src/audit/remediation.ts';
import { workloadKey, type Workload } from '../../../src/api/cluster.ts';
import type { Pod } from '../../../src/api/core.ts';
import type { WorkloadRef } from '../../../src/engine/index.ts';
import { systemClock } from '../../../src/util/clock.ts';
import { MemorySource } from '../../support/memory-source.ts';
import { ZONE, nodeInZone } from '../builders.ts';
import {
  World,
  placed,
  deployment,
  replicaSet,
  rsOwner,
  webNearDb,
  WEB_NEAR_DB,
  shop,
  summaryOf,
} from './world.ts';

const A: PolicyRef = 'PlacementPolicy/shop/a';
const B: PolicyRef = 'ClusterPlacementPolicy/b';
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/**
 * `ask` is allows(); `next` is nextAllowed() (and allows() must agree at that time and not a
 * millisecond before); `evict` records an eviction (the caller asked first).
 */
type Step =
  | {
      readonly ask: PolicyRef;
      readonly max: number;
      readonly workload: string;
      readonly at: number;
      readonly want: boolean;
    }
  | {
      readonly next: PolicyRef;
      readonly max: number;
      readonly workload: string;
      readonly at: number;
      readonly want: number;
    }
  | { readonly evict: PolicyRef; readonly workload: string; readonly at: number };

interface Case {
  readonly name: string;
  readonly cooldownMs?: number;
  readonly steps: readonly Step[];
}

const cases: readonly Case[] = [
  {
    name: 'nothing recorded: allowed',
    steps: [{ ask: A, max: 1, workload: 'Deployment/shop/web', at: 0, want: true }],
  },
  {
    name: 'asking records nothing',
    steps: [
      { ask: A, max: 1, workload: 'Deployment/shop/web', at: 0, want: true },
      { ask: A, max: 1, workload: 'Deployment/shop/web', at: 0, want: true },
    ],
  },
  {
    name: 'per-policy rate: at most max in any minute',
    steps: [
      { evict: A, workload: 'Deployment/shop/w1', at: 0 },
      { evict: A, workload: 'Deployment/shop/w2', at: 10 * SECOND },
      { ask: A, max: 2, workload: 'Deployment/shop/w3', at: 20 * SECOND, want: false },
      { ask: A, max: 3, workload: 'Deployment/shop/w3', at: 20 * SECOND, want: true },
      // The first eviction leaves the window a minute after it happened, not before.
      { ask: A, max: 2, workload: 'Deployment/shop/w3', at: MINUTE - 1, want: false },
      { ask: A, max: 2, workload: 'Deployment/shop/w3', at: MINUTE, want: true },
    ],
  },
  {
    name: 'the rate is per policy',
    steps: [
      { evict: A, workload: 'Deployment/shop/w1', at: 0 },
      { ask: A, max: 1, workload: 'Deployment/shop/w2', at: SECOND, want: false },
      { ask: B, max: 1, workload: 'Deployment/shop/w2', at: SECOND, want: true },
    ],
  },
  {
    name: 'maxEvictionsPerMinute 0 allows none',
    steps: [{ ask: A, max: 0, workload: 'Deployment/shop/web', at: 0, want: false }],
  },
  {
    name: 'per-workload cooldown: no second pod of a workload while the first is recent',
    steps: [
      { evict: A, workload: 'Deployment/shop/web', at: 0 },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: 59 * SECOND, want: false },
      { ask: A, max: 100, workload: 'StatefulSet/shop/web', at: 59 * SECOND, want: true },
      { ask: A, max: 100, workload: 'Deployment/other/web', at: 59 * SECOND, want: true },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: MINUTE, want: true },
    ],
  },
  {
    name: 'the cooldown holds across policies',
    steps: [
      { evict: A, workload: 'Deployment/shop/web', at: 0 },
      { ask: B, max: 100, workload: 'Deployment/shop/web', at: SECOND, want: false },
    ],
  },
  {
    name: 'a cooldown of its own',
    cooldownMs: 5 * MINUTE,
    steps: [
      { evict: A, workload: 'Deployment/shop/web', at: 0 },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: 4 * MINUTE, want: false },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: 5 * MINUTE, want: true },
    ],
  },
  {
    name: 'the later of two evictions starts the cooldown',
    steps: [
      { evict: A, workload: 'Deployment/shop/web', at: 0 },
      { evict: B, workload: 'Deployment/shop/web', at: 30 * SECOND },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: 70 * SECOND, want: false },
      { ask: A, max: 100, workload: 'Deployment/shop/web', at: 90 * SECOND, want: true },
    ],
  },
  {
    name: 'next allowed: now when nothing holds it back',
    steps: [{ next: A, max: 1, workload: 'Deployment/shop/web', at: 5, want: 5 }],
  },
  {
    name: 'next allowed: when the eviction that fills the rate leaves the minute',
    steps: [
      { evict: A, workload: 'Deployment/shop/w1', at: 0 },
      { evict: A, workload: 'Deployment/shop/w2', at: 10 * SECOND },
      { evict: A, workload: 'Deployment/shop/w3', at: 20 * SECOND },
      { next: A, max: 2, workload: 'Deployment/shop/w4', at: 30 * SECOND, want: 70 * SECOND },
      { next: A, max: 3, workload: 'Deployment/shop/w4', at: 30 * SECOND, want: MINUTE },
      { next: A, max: 4, workload: 'Deployment/shop/w4', at: 30 * SECOND, want: 30 * SECOND },
    ],
  },
  {
    name: 'next allowed: the later of rate and cooldown',
    cooldownMs: 2 * MINUTE,
    steps: [
      { evict: A, workload: 'Deployment/shop/web', at: 0 },
      { next: A, max: 1, workload: 'Deployment/shop/web', at: SECOND, want: 2 * MINUTE },
      { next: A, max: 1, workload: 'Deployment/shop/api', at: SECOND, want: MINUTE },
    ],
  },
  {
    name: 'next allowed: never with maxEvictionsPerMinute 0',
    steps: [{ next: A, max: 0, workload: 'Deployment/shop/web', at: 0, want: Infinity }],
  },
  {
    name: 'both limits must allow',
    steps: [
      { evict: A, workload: 'Deployment/shop/w1', at: 0 },
      { ask: A, max: 1, workload: 'Deployment/shop/w2', at: SECOND, want: false }, // rate
      { ask: A, max: 5, workload: 'Deployment/shop/w1', at: SECOND, want: false }, // cooldown
      { ask: A, max: 5, workload: 'Deployment/shop/w2', at: SECOND, want: true },
    ],
  },
];

void describe('EvictionLimiter', () => {
  for (const c of cases) {
    void test(c.name, () => {
      const limiter = new EvictionLimiter(c.cooldownMs);
      const recorded: [PolicyRef, string, number][] = [];
      /** A limiter with the same evictions, for asking about other times (allows() prunes). */
      const replay = (): EvictionLimiter => {
        const copy = new EvictionLimiter(c.cooldownMs);
        for (const [p, w, at] of recorded) copy.record(p, w, at);
        return copy;
      };
      c.steps.forEach((s, i) => {
        if ('evict' in s) {
          limiter.record(s.evict, s.workload, s.at);
          recorded.push([s.evict, s.workload, s.at]);
          return;
        }
        if ('next' in s) {
          const next = limiter.nextAllowed(s.next, s.max, s.workload, s.at);
          assert.equal(next, s.want, `step ${i}: next for ${s.next} ${s.workload}`);
          if (!Number.isFinite(next)) return;
          assert.equal(replay().allows(s.next, s.max, s.workload, next), true, `step ${i} at next`);
          if (next > s.at)
            assert.equal(
              replay().allows(s.next, s.max, s.workload, next - 1),
              false,
              `step ${i} just before next`,
            );
          return;
        }
        assert.equal(
          limiter.allows(s.ask, s.max, s.workload, s.at),
          s.want,
          `step ${i}: ${s.ask} ${s.workload} at ${s.at / SECOND}s`,
        );
      });
    });
  }
});

// ---------------------------------------------------------------- remediation

void describe('ContinuousAudit remediation', () => {
  /** web Deployment with two pods in zone b, away from the db in zone a. */
  const drifted = (audit: AuditSpec): World => {
    const w = shop();
    w.pods.delete('shop/web-0');
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    w.deployments.set(web);
    w.replicaSets.set(replicaSet(web, 'h1'));
    for (const [name, node] of [
      ['web-h1-a', 'b1'],
      ['web-h1-b', 'b2'],
    ] as const)
      w.pods.set(
        placed(name, {
          ns: 'shop',
          labels: { app: 'web', 'pod-template-hash': 'h1' },
          node,
          owner: rsOwner('web-h1'),
        }),
      );
    w.setPolicies(webNearDb({ audit }));
    return w;
  };

  void test('no remediation unless the policy asks for it', async (t) => {
    const w = drifted({ remediation: 'None' });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 2);
    assert.deepEqual(w.evictor.calls, []);
  });

  void test('one pod of a workload at a time, the next after the cooldown', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: false, uid: 'uid-shop-web-h1-a' },
    ]);
    assert.deepEqual(w.metrics.evictions, ['evicted']);
    w.time += 30_000;
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 1, 'the replacement may not be up yet');
    w.time += 30_000;
    await audit.evaluate();
    assert.deepEqual(
      w.evictor.calls.map((c) => c.pod),
      ['shop/web-h1-a', 'shop/web-h1-b'],
    );
  });

  void test('maxEvictionsPerMinute across workloads', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 1 });
    w.pods.set(placed('web-bare', { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 1);
    w.time += 60_000;
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 2);
  });

  void test('an eviction a PodDisruptionBudget blocks is counted and tried again', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.evictor.outcome = () => ({ kind: 'blocked', message: 'Cannot evict pod: disruption budget' });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions, ['blocked', 'blocked']);
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions, ['blocked', 'blocked', 'blocked', 'blocked']);
    assert.equal(w.logged('evicted violating pod')[0]?.meta['result'], 'blocked');
    assert.match(String(w.logged('evicted violating pod')[0]?.meta['reason']), /disruption budget/);
    // Budget lifted: one pod goes.
    w.evictor.outcome = () => ({ kind: 'evicted' });
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions.slice(4), ['evicted']);
  });

  void test('dry run: evictions are asked with dryRun, logged, and counted as none', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const audit = w.audit(t, { evictor: w.evictor, evictionDryRun: true });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: true, uid: 'uid-shop-web-h1-a' },
    ]);
    assert.equal(w.logged('would evict (dry run)').length, 1);
    assert.equal(w.logged('evicted violating pod').length, 0);
    assert.deepEqual(w.metrics.evictions, [], 'placement_evictions_total counts real evictions');
  });

  void test('evictions held back are tried again without any other change', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.evictor.outcome = () => ({ kind: 'blocked', message: 'Cannot evict pod: disruption budget' });
    w.audit(
      t,
      { evictor: w.evictor, now: Date.now, clock: systemClock },
      { debounceMs: 5, evictionRetryMs: 50, evictionCooldownMs: 150 },
    );
    const waitUntil = async (what: string, ok: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!ok()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await waitUntil('blocked twice per pod', () => w.metrics.evictions.length >= 4);
    // The budget goes away; nothing the audit watches changes.
    w.evictor.outcome = () => ({ kind: 'evicted' });
    await waitUntil('one pod evicted', () => w.metrics.evictions.includes('evicted'));
    const both = ['shop/web-h1-a', 'shop/web-h1-b'];
    await waitUntil('the other one after the cooldown', () =>
      both.every((pod) => w.pods.get(pod) === undefined),
    );
    // When the evictor was called, not when this loop saw it (a loaded machine sees late):
    // each pod's last call evicted it.
    const evictedAt = both.map(
      (pod) => w.evictor.times[w.evictor.calls.map((c) => c.pod).lastIndexOf(pod)] ?? 0,
    );
    const [first = 0, second = 0] = evictedAt.sort((a, b) => a - b);
    assert.ok(
      second - first >= 149,
      `the second eviction ${String(second - first)} ms after the first, not before the 150 ms cooldown`,
    );
    assert.deepEqual(
      w.metrics.evictions.filter((r) => r === 'evicted'),
      ['evicted', 'evicted'],
    );
  });

  void test('no eviction when the pod could not be placed anywhere else either', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.pods.delete('shop/db-0'); // no db anywhere: every node breaks the rule
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 2);
    assert.deepEqual(w.evictor.calls, []);
    assert.deepEqual(
      w.logged('not evicting: the pod would be unschedulable anyway').map((l) => l.meta['pod']),
      ['shop/web-h1-a', 'shop/web-h1-b'],
    );
    // The probe leaves the index as it was.
    await audit.fullCheck();
    assert.equal(audit.stats.mismatches, 0);
  });

  void test('no eviction when the only nodes that would do are ones the pod may not use', async (t) => {
    // Zone a has the db, but the web pods are pinned to zone b by their template.
    const pinned = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const web = pinned.deployments.get('Deployment/shop/web') ?? assert.fail('no web');
    pinned.deployments.set({ ...web, nodeSelector: { [ZONE]: 'b' } });
    const audit = pinned.audit(t, { evictor: pinned.evictor });
    await audit.evaluate();
    assert.deepEqual(pinned.evictor.calls, []);
    assert.equal(pinned.logged('not evicting: the pod would be unschedulable anyway').length, 2);
  });

  void test('no eviction when the nodes that would do are cordoned or tainted', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.nodes.set({ ...nodeInZone('a1', 'a'), spec: { unschedulable: true } });
    w.nodes.set({
      ...nodeInZone('a2', 'a'),
      spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] },
    });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, []);

    // The web pods tolerate the taint: a2 will do.
    const web = w.deployments.get('Deployment/shop/web') ?? assert.fail('no web');
    w.deployments.set({
      ...web,
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
    });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: false, uid: 'uid-shop-web-h1-a' },
    ]);
  });
});

void describe('evictionOptedOut: placement.dev/evict "false" on the pod or its owner chain', () => {
  const web = deployment('shop', 'web', { app: 'web' });
  const rs = replicaSet(web, '5d8f7c6b9');
  const off = { annotations: { 'placement.dev/evict': 'false' } };
  const podOf = (annotations?: Record<string, string>): Pod => {
    const p = placed('web-5d8f7c6b9-a', {
      ns: 'shop',
      labels: { app: 'web' },
      node: 'a1',
      owner: rsOwner(rs.name),
    });
    return annotations === undefined ? p : { ...p, metadata: { ...p.metadata, annotations } };
  };
  const ref: WorkloadRef = {
    kind: 'Deployment',
    namespace: 'shop',
    name: 'web',
    templateLabels: { app: 'web' },
    podSelector: { matchLabels: { app: 'web' } },
  };
  const cases: readonly {
    name: string;
    pod: Pod;
    workloads: readonly Workload[];
    want: string | undefined;
  }[] = [
    {
      name: 'nothing says so: may be evicted',
      pod: podOf(),
      workloads: [web, rs],
      want: undefined,
    },
    {
      name: 'on the pod',
      pod: podOf({ 'placement.dev/evict': 'false' }),
      workloads: [web, rs],
      want: 'Pod shop/web-5d8f7c6b9-a',
    },
    {
      name: 'on the ReplicaSet',
      pod: podOf(),
      workloads: [web, { ...rs, ...off }],
      want: `ReplicaSet shop/${rs.name}`,
    },
    {
      name: 'on the Deployment, through its ReplicaSet',
      pod: podOf(),
      workloads: [{ ...web, ...off }, rs],
      want: 'Deployment shop/web',
    },
    {
      name: 'on the Deployment, its ReplicaSet not cached',
      pod: podOf(),
      workloads: [{ ...web, ...off }],
      want: 'Deployment shop/web',
    },
    {
      name: 'any other value does not opt out',
      pod: podOf({ 'placement.dev/evict': 'true' }),
      workloads: [{ ...web, annotations: { 'placement.dev/evict': 'no' } }, rs],
      want: undefined,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const store = new MemorySource<Workload>(workloadKey, c.workloads);
      assert.equal(evictionOptedOut(c.pod, ref, [store]), c.want);
    });
  }
});
