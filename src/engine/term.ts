import type { Labels, PodAffinityTerm } from '../api/core.ts';
import { FieldError } from './errors.ts';
import {
  compileSelector,
  selectorKey,
  selectorMatches,
  withRequirements,
  type Requirement,
  type Selector,
} from './selector.ts';
import { labelOf } from './labels.ts';

/** The names of a pod (anti-)affinity's two lists of terms. */
export const REQUIRED_TERMS = 'requiredDuringSchedulingIgnoredDuringExecution';
export const PREFERRED_TERMS = 'preferredDuringSchedulingIgnoredDuringExecution';

/**
 * An affinity term as the scheduler judges it: selector (with matchLabelKeys and
 * mismatchLabelKeys merged in), the namespaces it applies to, and its topology key.
 */
export interface ResolvedTerm {
  /** Equal for terms that select the same pods in the same namespaces on the same key. */
  readonly id: string;
  readonly topologyKey: string;
  readonly selector: Selector;
  readonly namespaces: ReadonlySet<string>;
  /** `null` when the term has no namespaceSelector. */
  readonly namespaceSelector: Selector | null;
}

/** The pod a term belongs to: its namespace and labels decide defaults and merged keys. */
export interface TermOwner {
  readonly namespace: string;
  readonly labels: Labels;
}

/**
 * Resolves a term of `owner` as the API server and scheduler do:
 * - no `namespaces` and no `namespaceSelector` means the owner's namespace;
 * - `namespaceSelector: {}` means every namespace, null means not used;
 * - each `matchLabelKeys` key the owner carries adds `key In (value)`, each
 *   `mismatchLabelKeys` key adds `key NotIn (value)` (nothing when labelSelector is null).
 *
 * The API server merges those keys when it creates a pod, so a pod read back from the
 * API already holds them; a key whose requirement is already present is not merged again,
 * which keeps the value recorded at creation even if the label changed since.
 */
export function resolveTerm(term: PodAffinityTerm, owner: TermOwner, field: string): ResolvedTerm {
  if (term.topologyKey === '') throw new FieldError(`${field}.topologyKey`, 'must not be empty');
  const base = compileSelector(term.labelSelector, `${field}.labelSelector`);
  const selector = withRequirements(base, [
    ...mergedKeys(base, term.matchLabelKeys, 'In', owner.labels, `${field}.matchLabelKeys`),
    ...mergedKeys(
      base,
      term.mismatchLabelKeys,
      'NotIn',
      owner.labels,
      `${field}.mismatchLabelKeys`,
    ),
  ]);
  const namespaceSelector =
    term.namespaceSelector === null || term.namespaceSelector === undefined
      ? null
      : compileSelector(term.namespaceSelector, `${field}.namespaceSelector`);
  const listed = term.namespaces ?? [];
  const namespaces = new Set(
    listed.length === 0 && namespaceSelector === null ? [owner.namespace] : listed,
  );
  const id = [
    term.topologyKey,
    selectorKey(selector),
    [...namespaces].sort().join(','),
    namespaceSelector === null ? '-' : selectorKey(namespaceSelector),
  ].join('|');
  return { id, topologyKey: term.topologyKey, selector, namespaces, namespaceSelector };
}

function mergedKeys(
  base: Selector,
  keys: readonly string[] | undefined,
  operator: 'In' | 'NotIn',
  labels: Labels,
  field: string,
): Requirement[] {
  if (base.kind === 'nothing' || keys === undefined) return [];
  const out: Requirement[] = [];
  keys.forEach((key, i) => {
    if (key === '') throw new FieldError(`${field}[${i}]`, 'must not be empty');
    const value = labelOf(labels, key);
    if (value === undefined) return;
    const present = base.requirements.some(
      (r) => r.key === key && r.operator === operator && r.values.length === 1,
    );
    if (!present) out.push({ key, operator, values: [value] });
  });
  return out;
}

/** Whether `term` selects a pod in `namespace` with `labels`; `namespaceLabels` are that namespace's. */
export function termMatches(
  term: ResolvedTerm,
  namespace: string,
  labels: Labels,
  namespaceLabels: Labels,
): boolean {
  const inScope =
    term.namespaces.has(namespace) ||
    (term.namespaceSelector !== null && selectorMatches(term.namespaceSelector, namespaceLabels));
  return inScope && selectorMatches(term.selector, labels);
}
