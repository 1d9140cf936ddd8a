import type { Workload } from './ports.ts';

/**
 * How many workloads may be rolling out at once because the operator changed their pod
 * template. A new policy over a thousand workloads thus restarts them a few at a time.
 *
 * A slot is taken before a template write and held until the workload reports its rollout
 * complete for a generation at least the one the write produced.
 */
export class RolloutBudget {
  private readonly limit: number;
  /** workload key → the generation our write produced (at least). */
  private readonly rolling = new Map<string, number>();
  /** Keys that asked for a slot and were refused, to be woken when one frees. */
  private readonly waiting = new Set<string>();
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
    return this.waiting.has(key);
  }

  /** Whether `key` holds a slot for a template write that went through. */
  isRolling(key: string): boolean {
    return (this.rolling.get(key) ?? 0) > 0;
  }

  /** Takes a slot for `key` (a key already holding one keeps it); false when none is free. */
  tryAcquire(key: string): boolean {
    if (this.rolling.has(key)) return true;
    if (this.rolling.size >= this.limit) {
      this.waiting.add(key);
      return false;
    }
    this.waiting.delete(key);
    this.rolling.set(key, 0);
    return true;
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
    if (this.rolling.has(key)) this.release(key);
  }

  private release(key: string): void {
    this.rolling.delete(key);
    // Told even when nobody waits: the owner also reports how many slots are in use.
    const woken = [...this.waiting];
    this.waiting.clear();
    this.onFreed(woken);
  }
}
