import type { Node, Pod } from '../api/core.ts';
import { EVICT_ANNOTATION, workloadKey, type Store, type Workload } from '../api/cluster.ts';
import type { PolicyRef } from '../api/policy.ts';
import {
  fitsElsewhere,
  nodeFacts,
  PROBE_NODES,
  type NodeFacts,
  type CompiledPolicy,
  type PodConstraints,
  type TopologyIndex,
  type WorkloadRef,
} from '../engine/index.ts';
import type { PlacementMetrics } from '../metrics/index.ts';
import type { Finding } from './findings.ts';
import { workloadConstraints } from './live-index.ts';
import type { PodEvictor } from './ports.ts';
import type { Logger } from '../util/logger.ts';

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

/** How many owners up the chain the opt-out annotation is looked for. */
const OWNER_DEPTH = 5;

/**
 * The object that turns eviction off for the pod (`placement.dev/evict: "false"`): the pod
 * itself, or a workload of its owner chain (a ReplicaSet, its Deployment, ...); undefined
 * when none does.
 */
export function evictionOptedOut(
  pod: Pod,
  workload: WorkloadRef,
  workloads: readonly Store<Workload>[],
): string | undefined {
  const { namespace, name } = pod.metadata;
  if (pod.metadata.annotations?.[EVICT_ANNOTATION] === 'false') return `Pod ${namespace}/${name}`;
  const find = (kind: string, of: string): Workload | undefined =>
    workloads.map((s) => s.get(workloadKey({ kind, namespace, name: of }))).find(Boolean);
  const optedOut = (w: Workload | undefined): string | undefined =>
    w?.annotations[EVICT_ANNOTATION] === 'false' ? `${w.kind} ${namespace}/${w.name}` : undefined;
  let owners = pod.metadata.ownerReferences ?? [];
  for (let depth = 0; depth < OWNER_DEPTH; depth++) {
    const owner = owners.find((o) => o.controller === true) ?? owners[0];
    if (owner === undefined) break;
    const found = find(owner.kind, owner.name);
    if (found === undefined) break;
    const by = optedOut(found);
    if (by !== undefined) return by;
    owners = found.ownerReferences;
  }
  // The workload the pod resolves to, when a link of the chain is not cached (a ReplicaSet).
  return optedOut(find(workload.kind, workload.name));
}

export interface RemediationDeps {
  readonly pods: Store<Pod>;
  readonly nodes: Store<Node>;
  readonly workloads: readonly Store<Workload>[];
  readonly evictor?: PodEvictor;
  readonly evictionDryRun: boolean;
  readonly metrics: PlacementMetrics;
  readonly log: Logger;
  readonly now: () => number;
}

export interface RemediationOptions {
  /** No second eviction of a workload's pods for this long. Default 60 s. */
  readonly evictionCooldownMs?: number;
  /** An eviction a budget blocked (or that failed) is tried again after this. Default 30 s. */
  readonly evictionRetryMs?: number;
}

/**
 * Evicts the violating pods of policies that ask for it, within limits: the rate and
 * cooldown of EvictionLimiter, only pods that would fit on another node, and a pass again
 * (through `retry`) when an eviction is due later or was blocked.
 */
export class Remediation {
  private readonly deps: RemediationDeps;
  private readonly options: RemediationOptions;
  private readonly limiter: EvictionLimiter;
  private readonly retry: () => void;
  /** Evictions not made yet are tried again by then, with or without other changes. */
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = Infinity;
  private stopped = false;

  /** `retry` asks for a pass: the pods still in breach then get their turn. */
  constructor(deps: RemediationDeps, options: RemediationOptions, retry: () => void) {
    this.deps = deps;
    this.options = options;
    this.limiter = new EvictionLimiter(options.evictionCooldownMs);
    this.retry = retry;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  async remediate(
    policies: readonly CompiledPolicy[],
    /** A pass's findings, listed when an Evict policy needs them. */
    findings: () => readonly Finding[],
    index: TopologyIndex,
    workloadOf: (pod: Pod) => WorkloadRef,
    /** Whether the pod could run on the node under its node and spread rules. */
    accepts: (pod: string, node: NodeFacts) => boolean = () => true,
  ): Promise<void> {
    const evictor = this.deps.evictor;
    if (evictor === undefined) return;
    for (const p of policies) {
      const audit = p.source.spec.audit;
      if (audit?.remediation !== 'Evict') continue;
      const max = audit.maxEvictionsPerMinute ?? 1;
      // Only pods the policy may act on (findingReach): those of workloads it targets.
      const pods = [
        ...new Set(
          findings()
            .filter((f) => f.violation.source === p.ref && f.reach === 'act')
            .map((f) => f.violation.pod),
        ),
      ].sort();
      for (const key of pods) {
        const pod = this.deps.pods.get(key);
        if (pod === undefined) continue;
        const w = workloadOf(pod);
        const workload = workloadKey(w);
        const now = this.deps.now;
        if (!this.limiter.allows(p.ref, max, workload, now())) {
          this.retryBy(this.limiter.nextAllowed(p.ref, max, workload, now()));
          continue;
        }
        const optedOut = evictionOptedOut(pod, w, this.deps.workloads);
        if (optedOut !== undefined) {
          this.deps.log.info('not evicting: eviction turned off', {
            pod: key,
            policy: p.ref,
            by: optedOut,
            annotation: `${EVICT_ANNOTATION}=false`,
          });
          continue;
        }
        const nodes = this.deps.nodes.list().map(nodeFacts);
        const elsewhere = (node: NodeFacts) => accepts(key, node);
        if (!fitsElsewhere(index, key, nodes, this.constraintsOf(w), PROBE_NODES, elsewhere)) {
          this.deps.log.info('not evicting: the pod would be unschedulable anyway', {
            pod: key,
            policy: p.ref,
          });
          continue;
        }
        const dryRun = this.deps.evictionDryRun;
        const result = await evictor.evict(
          pod.metadata.namespace,
          pod.metadata.name,
          dryRun,
          pod.metadata.uid,
        );
        // A dry run evicts nothing: placement_evictions_total counts what happened.
        if (!dryRun) this.deps.metrics.evicted(result.kind);
        if (result.kind === 'evicted') this.limiter.record(p.ref, workload, now());
        if (result.kind === 'blocked' || (result.kind === 'failed' && result.retryable))
          this.retryBy(now() + (this.options.evictionRetryMs ?? 30_000));
        this.deps.log.info(dryRun ? 'would evict (dry run)' : 'evicted violating pod', {
          pod: key,
          policy: p.ref,
          result: result.kind,
          ...(result.kind === 'blocked' || result.kind === 'failed'
            ? { reason: result.message }
            : {}),
        });
      }
    }
  }

  /** Asks for a pass at `at` (ms) at the latest. */
  private retryBy(at: number): void {
    if (this.stopped || at >= this.retryAt) return;
    clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.retryAt = Infinity;
        this.retry();
      },
      Math.max(0, at - this.deps.now()),
    );
    this.retryTimer.unref();
  }

  /**
   * Where the workload's pods may go at all (its template's nodeSelector, node affinity and
   * tolerations); a bare pod or a workload not in the caches: anywhere.
   */
  private constraintsOf(w: WorkloadRef): PodConstraints {
    for (const store of this.deps.workloads) {
      const found = store.get(workloadKey(w));
      if (found !== undefined) return workloadConstraints(found);
    }
    return {};
  }
}
