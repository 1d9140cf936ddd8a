import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { PolicyRef } from '../../../src/api/policy.ts';
import { EvictionLimiter } from '../../../src/audit/remediation.ts';

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
