import { systemClock, type Clock, type TimerHandle } from '../util/clock.ts';

/**
 * Holds back the workloads that a policy change reaches until the policy changes stop
 * arriving, so that policies applied together (one `kubectl apply -f dir/`, one Argo CD
 * sync) reach each workload as one template write and one rollout, not one per policy.
 *
 * What the window applies to: a workload is held from the moment a policy change (a
 * policy's spec or deletion, or a namespace's labels) reaches it, until `windowMs` have
 * passed without another such change reaching it, and at most `maxWaitMs` from the first
 * change of the batch (policies that never stop changing must not starve a workload).
 * While held, nothing reconciles it: its own events and resyncs wait for the window's end,
 * or a reconcile started by them would write the part of the batch that had arrived. A
 * workload that no policy change reaches is never held: a workload created or edited by
 * its owner is reconciled at once.
 */
export class SettleWindow {
  private readonly windowMs: number;
  private readonly maxWaitMs: number;
  private readonly clock: Clock;
  private readonly release: (keys: readonly string[]) => void;
  /** Held key → when it is due, and when its batch began. */
  private readonly held = new Map<string, { due: number; since: number }>();
  private timer: { readonly handle: TimerHandle; readonly at: number } | undefined;

  constructor(options: {
    readonly windowMs: number;
    /** Longest hold from the first change of a batch; default ten windows. */
    readonly maxWaitMs?: number;
    readonly clock?: Clock;
    /** Called with the keys whose window ended, to be reconciled now. */
    readonly release: (keys: readonly string[]) => void;
  }) {
    const { windowMs, maxWaitMs = windowMs * 10 } = options;
    if (!(windowMs >= 0) || !(maxWaitMs >= windowMs))
      throw new RangeError(
        `settle window: need 0 <= windowMs <= maxWaitMs, got ${windowMs} and ${maxWaitMs}`,
      );
    this.windowMs = windowMs;
    this.maxWaitMs = maxWaitMs;
    this.clock = options.clock ?? systemClock;
    this.release = options.release;
  }

  /** A policy change reached these workloads: hold them (again) for a window. */
  hold(keys: Iterable<string>): void {
    if (this.windowMs === 0) {
      this.release([...keys]);
      return;
    }
    const now = this.clock.now();
    for (const key of keys) {
      const since = this.held.get(key)?.since ?? now;
      this.held.set(key, { due: Math.min(now + this.windowMs, since + this.maxWaitMs), since });
    }
    this.arm();
  }

  /** Whether the workload waits for a batch of policy changes to end. */
  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  /** Workloads held now. */
  get size(): number {
    return this.held.size;
  }

  /** The workload is gone: nothing to release. */
  forget(key: string): void {
    this.held.delete(key);
  }

  /** Drops every hold and the timer (the operator stops). */
  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
    this.held.clear();
  }

  /** One timer, for the earliest due key. */
  private arm(): void {
    let next = Infinity;
    for (const { due } of this.held.values()) next = Math.min(next, due);
    if (next === Infinity) return;
    if (this.timer !== undefined) {
      if (this.timer.at === next) return;
      this.clock.clearTimeout(this.timer.handle);
    }
    const handle = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.fire();
      },
      Math.max(0, next - this.clock.now()),
    );
    this.timer = { handle, at: next };
  }

  private fire(): void {
    const now = this.clock.now();
    const due: string[] = [];
    for (const [key, { due: at }] of this.held) if (at <= now) due.push(key);
    for (const key of due) this.held.delete(key);
    this.arm();
    if (due.length > 0) this.release(due);
  }
}
