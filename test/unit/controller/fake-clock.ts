import type { Clock, TimerHandle } from '../../../src/util/clock.ts';

/** A clock that moves only when told to; timers due at the same time fire in the order set. */
export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<
    number,
    { readonly at: number; readonly callback: () => void }
  >();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** Moves time forward by `ms`, firing each timer due on the way at its own time. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at <= target && (due === undefined || entry[1].at < due[1].at)) due = entry;
      }
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].callback();
    }
    this.time = target;
  }

  /** Timers not yet fired. */
  pending(): number {
    return this.timers.size;
  }
}

/** Lets every queued promise callback run (a macrotask boundary). */
export const flush = (): Promise<void> =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

/** The value a promise has settled with by now, or 'pending'. */
export function peek<T>(promise: Promise<T>): Promise<{ readonly value: T } | 'pending'> {
  return Promise.race([
    promise.then((value) => ({ value })),
    flush().then(() => 'pending' as const),
  ]);
}
