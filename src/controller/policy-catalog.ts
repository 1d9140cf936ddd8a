import type { Labels } from '../api/core.ts';
import { policyRef, type PlacementPolicy } from '../api/policy.ts';
import {
  comparePolicies,
  compilePolicy,
  oversizedRecord,
  policyName,
  policyTargets,
  type CompiledPolicy,
  type InvalidObjectError,
  type PolicyCompilation,
  type WorkloadRef,
} from '../engine/index.ts';

export type CatalogEntry =
  | { readonly kind: 'valid'; readonly policy: CompiledPolicy; readonly deleting: boolean }
  | {
      readonly kind: 'invalid';
      readonly source: PlacementPolicy;
      readonly errors: readonly InvalidObjectError[];
    };

/**
 * compilePolicy, and for an Enforce policy one more check: that a workload could take its
 * terms at all. Otherwise every write would be refused by the API server (an Audit policy is
 * never written, so it is not refused).
 */
function compileWritable(policy: PlacementPolicy): PolicyCompilation {
  const compiled = compilePolicy(policy);
  if (compiled.kind !== 'ok' || compiled.policy.mode !== 'Enforce') return compiled;
  const tooLarge = oversizedRecord(compiled.policy);
  return tooLarge === undefined
    ? compiled
    : { kind: 'invalid', errors: [tooLarge.forObject(policyName(policy))] };
}

/**
 * Every policy the operator knows, compiled once per generation. Workloads ask it which
 * policies target them; a policy being deleted targets nothing, so its terms come out.
 */
export class PolicyCatalog {
  private readonly entries = new Map<string, CatalogEntry>();
  private sorted: CompiledPolicy[] | null = null;

  /** Adds or replaces a policy; returns its entry. */
  set(policy: PlacementPolicy): CatalogEntry {
    const ref = policyRef(policy);
    const previous = this.entries.get(ref);
    const deleting = policy.metadata.deletionTimestamp !== undefined;
    const sameGeneration =
      previous !== undefined &&
      (previous.kind === 'valid' ? previous.policy.source : previous.source).metadata.generation ===
        policy.metadata.generation &&
      (previous.kind !== 'valid' || previous.deleting === deleting);
    if (sameGeneration) return previous;
    const compiled = compileWritable(policy);
    const entry: CatalogEntry =
      compiled.kind === 'ok'
        ? { kind: 'valid', policy: compiled.policy, deleting }
        : { kind: 'invalid', source: policy, errors: compiled.errors };
    this.entries.set(ref, entry);
    this.sorted = null;
    return entry;
  }

  delete(ref: string): void {
    if (this.entries.delete(ref)) this.sorted = null;
  }

  get(ref: string): CatalogEntry | undefined {
    return this.entries.get(ref);
  }

  all(): IterableIterator<CatalogEntry> {
    return this.entries.values();
  }

  /** Valid policies not being deleted, highest priority first. */
  active(): readonly CompiledPolicy[] {
    this.sorted ??= [...this.entries.values()]
      .flatMap((e) => (e.kind === 'valid' && !e.deleting ? [e.policy] : []))
      .sort(comparePolicies);
    return this.sorted;
  }

  /** The active policies that target a workload, highest priority first. */
  targeting(workload: WorkloadRef, namespaceLabels: Labels): CompiledPolicy[] {
    return this.active().filter((p) => policyTargets(p, workload, namespaceLabels));
  }

  /** Whether the policy exists but cannot be read: workloads it touched are left alone. */
  isInvalid(ref: string): boolean {
    return this.entries.get(ref)?.kind === 'invalid';
  }
}
