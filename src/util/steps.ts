/**
 * Long computations written as generators that yield between units of work, so that one
 * caller can run them to the end at once and another can share the event loop with them.
 */

/** A computation that yields (nothing) between units of work and returns a T. */
export type Steps<T> = Generator<undefined, T, undefined>;

/**
 * Loops over many small units of work (pods) yield once per this many: a yield costs tens of
 * nanoseconds, a unit a microsecond or more.
 */
export const UNITS_PER_STEP = 64;

/** Runs `steps` to the end, without yielding to anything. */
export function runAll<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * Runs `steps` in slices of about `sliceMs` of the event loop each, letting timers and I/O
 * run between slices (setImmediate), so that no slice holds the loop much longer than one
 * unit of work past `sliceMs`.
 */
export async function runSliced<T>(steps: Steps<T>, sliceMs: number): Promise<T> {
  const done = await runSlicedUnless(steps, sliceMs, () => false);
  if (done === null) throw new Error('a computation that cannot be stopped stopped');
  return done.value;
}

/**
 * runSliced, stopped when `stop()` is true after the event loop ran between two slices:
 * then null, and the rest of `steps` is not run.
 */
export async function runSlicedUnless<T>(
  steps: Steps<T>,
  sliceMs: number,
  stop: () => boolean,
): Promise<{ value: T } | null> {
  for (;;) {
    const until = performance.now() + sliceMs;
    for (;;) {
      const r = steps.next();
      if (r.done === true) return { value: r.value };
      if (performance.now() >= until) break;
    }
    await new Promise<void>((resolve) => {
      setImmediate(resolve);
    });
    if (stop()) return null;
  }
}
