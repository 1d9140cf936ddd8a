import type { Labels } from '../api/core.ts';
import { exceptionRef, type PlacementException } from '../api/exception.ts';
import { policyRef, type PlacementPolicy } from '../api/policy.ts';
import {
  comparePolicies,
  compileException,
  compilePolicy,
  crossNamespaceTermFields,
  FieldError,
  oversizedRecord,
  policyName,
  policyTargets,
  withExemptions,
  type CompiledException,
  type CompiledPolicy,
  type InvalidObjectError,
  type PolicyCompilation,
  type NamedPolicy,
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
export type ExceptionEntry =
  | { readonly kind: 'valid'; readonly exception: CompiledException }
  | {
      readonly kind: 'invalid';
      readonly source: PlacementException;
      readonly errors: readonly InvalidObjectError[];
    };

const sourceOf = (e: ExceptionEntry): PlacementException =>
  e.kind === 'valid' ? e.exception.source : e.source;

/**
 * Every policy and PlacementException the operator knows, each compiled once per
 * generation. Workloads ask it which policies target them; a policy being deleted targets
 * nothing, so its terms come out, and an accepted exception takes a policy's terms out of
 * the workloads it exempts.
 */
export class PolicyCatalog {
  private readonly entries = new Map<string, CatalogEntry>();
  private readonly exceptions = new Map<string, ExceptionEntry>();
  /** Policy ref → the compiled policy with its exceptions attached (see effective()). */
  private readonly attached = new Map<string, CompiledPolicy>();
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
    this.changed([ref]);
    return entry;
  }

  delete(ref: string): void {
    if (this.entries.delete(ref)) this.changed([ref]);
  }

  get(ref: string): CatalogEntry | undefined {
    return this.entries.get(ref);
  }

  all(): IterableIterator<CatalogEntry> {
    return this.entries.values();
  }

  /** Valid policies not being deleted, exceptions attached, highest priority first. */
  active(): readonly CompiledPolicy[] {
    this.sorted ??= [...this.entries.values()]
      .flatMap((e) => (e.kind === 'valid' && !e.deleting ? [this.effective(e.policy)] : []))
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

  /**
   * The compiled policy with the valid exceptions that name it attached: one object per
   * policy generation and set of exceptions, so identity changes only when they do.
   */
  effective(policy: CompiledPolicy): CompiledPolicy {
    const cached = this.attached.get(policy.ref);
    if (cached !== undefined && (cached === policy || Object.is(cached.source, policy.source)))
      return cached;
    const fresh = withExemptions(policy, this.naming(policy.ref));
    this.attached.set(policy.ref, fresh);
    return fresh;
  }

  /** What an exception naming `ref` finds. */
  named(ref: string): NamedPolicy {
    const entry = this.entries.get(ref);
    if (entry === undefined) return { kind: 'missing' };
    if (entry.kind === 'invalid') return { kind: 'invalid' };
    return { kind: 'valid', policy: this.effective(entry.policy) };
  }

  // ---- exceptions ----

  /**
   * Adds or replaces a PlacementException; returns its entry and whether what workloads
   * read of it changed (a status write of ours changes nothing). One being deleted counts
   * as gone.
   */
  setException(e: PlacementException): { entry: ExceptionEntry | undefined; changed: boolean } {
    const ref = exceptionRef(e);
    if (e.metadata.deletionTimestamp !== undefined) {
      return { entry: undefined, changed: this.deleteException(ref) !== undefined };
    }
    const previous = this.exceptions.get(ref);
    if (
      previous !== undefined &&
      sourceOf(previous).metadata.generation === e.metadata.generation
    ) {
      return { entry: previous, changed: false };
    }
    const compiled = compileException(e);
    const entry: ExceptionEntry =
      compiled.kind === 'ok'
        ? { kind: 'valid', exception: compiled.exception }
        : { kind: 'invalid', source: e, errors: compiled.errors };
    this.exceptions.set(ref, entry);
    this.changed(
      [previous, entry].flatMap((x) => (x?.kind === 'valid' ? [x.exception.policy] : [])),
    );
    return { entry, changed: true };
  }

  /** Forgets an exception; returns what it was. */
  deleteException(ref: string): ExceptionEntry | undefined {
    const previous = this.exceptions.get(ref);
    if (previous === undefined) return undefined;
    this.exceptions.delete(ref);
    if (previous.kind === 'valid') this.changed([previous.exception.policy]);
    return previous;
  }

  exception(ref: string): ExceptionEntry | undefined {
    return this.exceptions.get(ref);
  }

  /** Every exception, valid or not. */
  allExceptions(): IterableIterator<ExceptionEntry> {
    return this.exceptions.values();
  }

  /** The valid exceptions that name a policy, by reference order. */
  naming(policyRef: string): CompiledException[] {
    const found: CompiledException[] = [];
    for (const e of this.exceptions.values())
      if (e.kind === 'valid' && e.exception.policy === policyRef) found.push(e.exception);
    return found.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  /** The exceptions (valid or not) of one namespace. */
  exceptionsIn(namespace: string): ExceptionEntry[] {
    return [...this.exceptions.values()].filter(
      (e) => sourceOf(e).metadata.namespace === namespace,
    );
  }

  /** Drops what was derived from these policies, so it is derived again when next asked. */
  private changed(refs: readonly string[]): void {
    for (const ref of refs) this.attached.delete(ref);
    this.sorted = null;
  }
}
