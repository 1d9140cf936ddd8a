/**
 * Clocks and waits, injected so that tests decide when time moves. Two scales: the process
 * clock for durations (work queue backoff, settle windows, reconcile timeouts), and wall time
 * for what other machines read (a Lease's renewTime).
 */

/** Node's timer object, or whatever number a test clock hands out. */
export type TimerHandle = NodeJS.Timeout | number;

/** Milliseconds on a monotonic scale, and timers on that scale. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The process clock: `performance.now()` (not wall time, so NTP steps do not bend durations). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => {
    globalThis.clearTimeout(handle);
  },
};

/** Waits `ms`, or less when `signal` aborts; never rejects. Tests inject their own. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/** Wall time in milliseconds since the epoch, and an abortable wait. */
export interface WallClock {
  now(): number;
  readonly sleep: Sleep;
}

export const realWallClock: WallClock = { now: () => Date.now(), sleep: realSleep };
