import type { Labels } from '../api/core.ts';
import { exceptionRef, type ExceptionRef, type PlacementException } from '../api/exception.ts';
import { POLICY_KINDS, TARGET_KINDS, type PolicyRef } from '../api/policy.ts';
import { checkOneOf, FieldError, InvalidObjectError } from './errors.ts';
import { compileSelector, selectorMatches, type Selector } from './selector.ts';

/** A validated PlacementException with defaults applied. */
export interface CompiledException {
  readonly ref: ExceptionRef;
  readonly namespace: string;
  readonly name: string;
  /** The policy it names: a PlacementPolicy of its own namespace, or a ClusterPlacementPolicy. */
  readonly policy: PolicyRef;
  readonly kinds: ReadonlySet<string>;
  /** Template-label selector; null when only names select. */
  readonly selector: Selector | null;
  /** Workload names; null when only the selector selects. */
  readonly names: ReadonlySet<string> | null;
  readonly reason: string;
  readonly source: PlacementException;
}

export type ExceptionCompilation =
  | { readonly kind: 'ok'; readonly exception: CompiledException }
  | { readonly kind: 'invalid'; readonly errors: readonly InvalidObjectError[] };

/** `PlacementException team-a/legacy-db`: how errors name an exception. */
export const exceptionName = (e: Pick<PlacementException, 'metadata'>): string =>
  `PlacementException ${e.metadata.namespace}/${e.metadata.name}`;

/**
 * Validates an exception and applies its defaults, reporting every problem with its field.
 * The CRD refuses the same things; this is for exceptions read from files (the CLI).
 */
export function compileException(e: PlacementException): ExceptionCompilation {
  const errors: FieldError[] = [];
  // Typed fields still hold what the API server or a file gave.
  const spec = (e.spec as PlacementException['spec'] | undefined) ?? ({} as never);
  const ref = (spec.policyRef as PlacementException['spec']['policyRef'] | undefined) ?? {
    kind: '' as never,
    name: '',
  };
  const policyKind: string = ref.kind;
  checkOneOf(errors, 'spec.policyRef.kind', policyKind, POLICY_KINDS);
  if (typeof ref.name !== 'string' || ref.name === '')
    errors.push(new FieldError('spec.policyRef.name', 'must not be empty'));
  const reason: unknown = spec.reason;
  if (typeof reason !== 'string' || reason.trim() === '')
    errors.push(
      new FieldError('spec.reason', 'must say why the workloads cannot follow the policy'),
    );
  const workloads = (spec.workloads as PlacementException['spec']['workloads'] | undefined) ?? {};
  const kinds = workloads.kinds ?? TARGET_KINDS;
  kinds.forEach((k, i) => {
    checkOneOf(errors, `spec.workloads.kinds[${i}]`, k, TARGET_KINDS);
  });
  let selector: Selector | null = null;
  if (workloads.selector !== undefined) {
    try {
      selector = compileSelector(workloads.selector, 'spec.workloads.selector');
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      errors.push(err);
    }
  }
  const names = workloads.names === undefined ? null : new Set(workloads.names);
  if (workloads.selector === undefined && names === null) {
    errors.push(
      new FieldError('spec.workloads', 'needs a selector or names: which workloads are exempted'),
    );
  }
  if (errors.length > 0) {
    const name = exceptionName(e);
    return { kind: 'invalid', errors: errors.map((x) => x.forObject(name)) };
  }
  const namespace = e.metadata.namespace;
  return {
    kind: 'ok',
    exception: {
      ref: exceptionRef(e),
      namespace,
      name: e.metadata.name,
      policy:
        ref.kind === 'PlacementPolicy'
          ? `PlacementPolicy/${namespace}/${ref.name}`
          : `ClusterPlacementPolicy/${ref.name}`,
      kinds: new Set(kinds),
      selector,
      names,
      reason: reason as string,
      source: e,
    },
  };
}

/** The workload as an exception sees it. */
export interface ExemptCandidate {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly templateLabels: Labels;
}

/** Whether the exception selects the workload (its namespace, kind, and labels and/or name). */
export function exceptionSelects(e: CompiledException, w: ExemptCandidate): boolean {
  return (
    e.namespace === w.namespace &&
    e.kinds.has(w.kind) &&
    (e.names === null || e.names.has(w.name)) &&
    (e.selector === null || selectorMatches(e.selector, w.templateLabels))
  );
}
