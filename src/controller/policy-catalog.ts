import type { Labels } from '../api/core.ts';
import { policyRef, type PlacementPolicy } from '../api/policy.ts';
import {
  comparePolicies,
  compilePolicy,
  crossNamespaceTermFields,
  FieldError,
  oversizedRecord,
  policyName,
  policyTargets,
  type CompiledPolicy,
  type InvalidObjectError,
  type PolicyCompilation,
  type WorkloadRef,
} from '../engine/index.ts';

/** Why a policy is invalid: its spec, or this cluster's tenancy setting (see CatalogOptions). */
export type InvalidReason = 'InvalidSpec' | 'CrossNamespaceTermsDenied';

export type CatalogEntry =
  | { readonly kind: 'valid'; readonly policy: CompiledPolicy; readonly deleting: boolean }
  | {
      readonly kind: 'invalid';
      readonly source: PlacementPolicy;
      readonly errors: readonly InvalidObjectError[];
      readonly reason: InvalidReason;
    };

/** `allow` or `deny`: whether a namespaced policy's terms may select pods of other namespaces. */
export type CrossNamespaceTerms = 'allow' | 'deny';
export const CROSS_NAMESPACE_TERMS: readonly CrossNamespaceTerms[] = ['allow', 'deny'];
/** The operator flag that sets it, named in what a denied policy shows. */
export const CROSS_NAMESPACE_TERMS_FLAG = '--namespaced-policy-cross-namespace-terms';

export interface CatalogOptions {
  /**
   * `deny`: a PlacementPolicy whose affinity terms name other namespaces (`namespaces`,
   * `namespaceSelector`) is invalid: it never reaches a workload and is never judged. Default
   * `allow` (docs/adr/0003-tenancy.md).
   */
  readonly crossNamespaceTerms?: CrossNamespaceTerms;
}

/** The policy compiled, and refused when this cluster's tenancy setting forbids its terms. */
function compile(
  policy: PlacementPolicy,
  options: CatalogOptions,
  deleting: boolean,
): CatalogEntry {
  const compiled = compileWritable(policy);
  if (compiled.kind === 'invalid')
    return { kind: 'invalid', source: policy, errors: compiled.errors, reason: 'InvalidSpec' };
  const fields = options.crossNamespaceTerms === 'deny' ? crossNamespaceTermFields(policy) : [];
  if (fields.length === 0) return { kind: 'valid', policy: compiled.policy, deleting };
  const problem =
    `selects pods of other namespaces, which this cluster does not allow in a namespaced ` +
    `PlacementPolicy (${CROSS_NAMESPACE_TERMS_FLAG}=deny); leave it out, or ask the platform ` +
    `team for a ClusterPlacementPolicy`;
  const name = policyName(policy);
  return {
    kind: 'invalid',
    source: policy,
    errors: fields.map((f) => new FieldError(f, problem).forObject(name)),
    reason: 'CrossNamespaceTermsDenied',
  };
}

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
  private readonly options: CatalogOptions;

  constructor(options: CatalogOptions = {}) {
    this.options = options;
  }

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
    const entry = compile(policy, this.options, deleting);
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
