import type { Workload } from '../api/cluster.ts';

/**
 * How many workloads may be rolling out at once because the operator changed their pod
 * template. A new policy over a thousand workloads thus restarts them a few at a time.
 *
 * A slot is taken before a template write and held until the workload reports its rollout
 * complete for a generation at least the one the write produced.
 *
 * Workloads refused a slot wait in line. A freed slot wakes the first of them only, and is
 * kept for it until it takes the slot or says it does not need one (`declined`): waking the
 * whole line for each freed slot would reconcile a thousand waiting workloads per rollout.
 */
export class RolloutBudget {
  private readonly limit: number;
  /** workload key → the generation our write produced (at least). */
  private readonly rolling = new Map<string, number>();
  /** Keys that asked for a slot and were refused, in the order they asked. */
  private readonly waiting = new Set<string>();
  /** Keys woken for a freed slot that have not taken it yet: the slot is kept for them. */
  private readonly woken = new Set<string>();
  private readonly onFreed: (keys: readonly string[]) => void;

  constructor(limit: number, onFreed: (keys: readonly string[]) => void) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`rollout budget must be a positive integer, got ${String(limit)}`);
    this.limit = limit;
    this.onFreed = onFreed;
  }

  get inUse(): number {
    return this.rolling.size;
  }

  get max(): number {
    return this.limit;
  }

  isWaiting(key: string): boolean {
    return this.waiting.has(key) || this.woken.has(key);
  }

  /** Whether `key` holds a slot for a template write that went through. */
  isRolling(key: string): boolean {
    return (this.rolling.get(key) ?? 0) > 0;
  }

  /** Takes a slot for `key` (a key already holding one keeps it); false when none is free. */
  tryAcquire(key: string): boolean {
    if (this.rolling.has(key)) return true;
    const wasWoken = this.woken.delete(key);
    // Slots kept for other woken keys are not free, unless this key is one of them.
    if (this.rolling.size + this.woken.size >= this.limit) {
      if (!this.waiting.has(key)) this.waiting.add(key);
      if (wasWoken) this.wake();
      return false;
    }
    this.waiting.delete(key);
    this.rolling.set(key, 0);
    return true;
  }

  /** The key looked again and needs no slot now: a slot kept for it goes to the next in line. */
  declined(key: string): void {
    this.waiting.delete(key);
    if (this.woken.delete(key)) this.wake();
  }

  /** Records the generation a successful template write produced. */
  wrote(key: string, generationBefore: number): void {
    if (this.rolling.has(key)) this.rolling.set(key, generationBefore + 1);
  }

  /** Gives the slot back without a write (the write failed or was not needed). */
  cancel(key: string): void {
    if (this.rolling.get(key) === 0) this.release(key);
  }

  /** Looks at a workload's latest state; frees its slot once its rollout is done. */
  observe(workload: Workload, key: string): void {
    const target = this.rolling.get(key);
    if (target === undefined || target === 0) return;
    if (workload.generation >= target && workload.rolledOut) this.release(key);
  }

  /** The workload is gone: its slot and its place in line go with it. */
  forget(key: string): void {
    this.waiting.delete(key);
    const hadTurn = this.woken.delete(key);
    if (this.rolling.has(key)) this.release(key);
    else if (hadTurn) this.wake();
  }

  private release(key: string): void {
    this.rolling.delete(key);
    this.wake();
  }

  /** Wakes as many waiting keys, first in line first, as there are slots nobody holds. */
  private wake(): void {
    const free = this.limit - this.rolling.size - this.woken.size;
    const next: string[] = [];
    for (const key of this.waiting) {
      if (next.length >= free) break;
      next.push(key);
    }
    for (const key of next) {
      this.waiting.delete(key);
      this.woken.add(key);
    }
    // Told even when nobody is woken: the owner also reports how many slots are in use.
    this.onFreed(next);
  }
}
