import type { PolicyRef } from '../api/policy.ts';

/**
 * Rate and safety limits on evictions: at most `maxPerMinute` per policy, and never a
 * second pod of a workload while one of its evictions is recent (its replacement may not
 * be up yet).
 */
export class EvictionLimiter {
  private readonly perPolicy = new Map<PolicyRef, number[]>();
  private readonly perWorkload = new Map<string, number>();
  private readonly workloadCooldownMs: number;

  constructor(workloadCooldownMs = 60_000) {
    this.workloadCooldownMs = workloadCooldownMs;
  }

  /** Whether an eviction for `policy` of a pod of `workload` may happen at `now` (ms). */
  allows(policy: PolicyRef, maxPerMinute: number, workload: string, now: number): boolean {
    const recent = (this.perPolicy.get(policy) ?? []).filter((t) => now - t < 60_000);
    this.perPolicy.set(policy, recent);
    if (recent.length >= maxPerMinute) return false;
    const last = this.perWorkload.get(workload);
    return last === undefined || now - last >= this.workloadCooldownMs;
  }

  /** The first time (ms, at least `now`) allows() would say yes; Infinity if never. */
  nextAllowed(policy: PolicyRef, maxPerMinute: number, workload: string, now: number): number {
    if (maxPerMinute < 1) return Infinity;
    const recent = (this.perPolicy.get(policy) ?? []).filter((t) => now - t < 60_000);
    // Below the limit once the eviction that keeps it full leaves the one-minute window.
    const byRate =
      recent.length < maxPerMinute ? now : (recent[recent.length - maxPerMinute] ?? now) + 60_000;
    const last = this.perWorkload.get(workload);
    const byWorkload = last === undefined ? now : last + this.workloadCooldownMs;
    return Math.max(now, byRate, byWorkload);
  }

  record(policy: PolicyRef, workload: string, now: number): void {
    this.perPolicy.set(policy, [...(this.perPolicy.get(policy) ?? []), now]);
    this.perWorkload.set(workload, now);
  }
}
