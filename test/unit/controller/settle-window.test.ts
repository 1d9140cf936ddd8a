import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SettleWindow } from '../../../src/controller/settle-window.ts';
import { FakeClock } from './fake-clock.ts';

function window(windowMs: number, maxWaitMs?: number) {
  const clock = new FakeClock();
  const released: string[][] = [];
  const w = new SettleWindow({
    windowMs,
    ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
    clock,
    release: (keys) => released.push([...keys].sort()),
  });
  return { clock, released, w };
}

interface Case {
  readonly name: string;
  readonly windowMs: number;
  readonly maxWaitMs?: number;
  /** At each time (ms from the start), the keys a policy change reaches. */
  readonly changes: readonly (readonly [number, readonly string[]])[];
  /** When each batch of keys is released. */
  readonly want: readonly (readonly [number, readonly string[]])[];
}

const CASES: readonly Case[] = [
  {
    name: 'one change: released one window later',
    windowMs: 3000,
    changes: [[0, ['a', 'b']]],
    want: [[3000, ['a', 'b']]],
  },
  {
    name: 'five policies of one apply, 20 ms apart: one release for the whole batch',
    windowMs: 3000,
    changes: [0, 20, 40, 60, 80].map((t) => [t, ['a', 'b', 'c']] as const),
    want: [[3080, ['a', 'b', 'c']]],
  },
  {
    name: 'a later change that reaches only some workloads holds only those',
    windowMs: 3000,
    changes: [
      [0, ['a', 'b']],
      [2000, ['b']],
    ],
    want: [
      [3000, ['a']],
      [5000, ['b']],
    ],
  },
  {
    name: 'changes that never stop: released after the longest hold anyway',
    windowMs: 1000,
    maxWaitMs: 4000,
    changes: Array.from({ length: 20 }, (_, i) => [i * 500, ['a']] as const),
    want: [
      [4000, ['a']], // the change at 4000 starts the next batch
      [8000, ['a']],
      [10500, ['a']], // one window after the last change (9500)
    ],
  },
  {
    name: 'a window of 0 releases at once',
    windowMs: 0,
    changes: [[0, ['a']]],
    want: [[0, ['a']]],
  },
];

for (const c of CASES) {
  void test(`settle window: ${c.name}`, () => {
    const { clock, released, w } = window(c.windowMs, c.maxWaitMs);
    const at: [number, string[]][] = [];
    let seen = 0;
    const note = (): void => {
      for (; seen < released.length; seen++) at.push([clock.now(), released[seen] ?? []]);
    };
    let now = 0;
    for (const [time, keys] of c.changes) {
      while (now < time) {
        clock.advance(1);
        now++;
        note();
      }
      w.hold(keys);
      note();
    }
    for (let i = 0; i < 60_000 && w.size > 0; i++) {
      clock.advance(1);
      note();
    }
    assert.deepEqual(at, c.want);
    assert.equal(clock.pending(), 0, 'no timer left once nothing is held');
  });
}

void test('settle window: a held workload says so until released; forget drops it', () => {
  const { clock, released, w } = window(1000);
  w.hold(['a', 'b']);
  assert.ok(w.isHeld('a'));
  assert.equal(w.size, 2);
  w.forget('b'); // deleted meanwhile
  clock.advance(1000);
  assert.deepEqual(released, [['a']]);
  assert.equal(w.isHeld('a'), false);
  assert.equal(w.size, 0);
});

void test('settle window: stop drops holds and the timer', () => {
  const { clock, released, w } = window(1000);
  w.hold(['a']);
  w.stop();
  clock.advance(5000);
  assert.deepEqual(released, []);
  assert.equal(clock.pending(), 0);
});

void test('settle window: a window longer than the longest hold is refused', () => {
  assert.throws(
    () => new SettleWindow({ windowMs: 5000, maxWaitMs: 1000, release: () => undefined }),
    /windowMs <= maxWaitMs/,
  );
});
