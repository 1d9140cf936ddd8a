import {
  SELECTOR_OPERATORS,
  type LabelSelector,
  type Labels,
  type SelectorOperator,
} from '../api/core.ts';
import { FieldError } from './errors.ts';
import { compareText } from '../util/compare.ts';

export interface Requirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted and de-duplicated; empty for Exists and DoesNotExist. */
  readonly values: readonly string[];
}

/**
 * A label selector after validation. `nothing` is what a null selector means in an
 * affinity term; `requirements` with an empty list selects everything (`{}`).
 */
export type Selector =
  | { readonly kind: 'nothing' }
  | { readonly kind: 'requirements'; readonly requirements: readonly Requirement[] };

export const SELECT_NOTHING: Selector = { kind: 'nothing' };
export const SELECT_EVERYTHING: Selector = { kind: 'requirements', requirements: [] };

const isOperator = (op: string): op is SelectorOperator =>
  (SELECTOR_OPERATORS as readonly string[]).includes(op);

function requirement(
  key: string,
  operator: string,
  values: readonly string[] | undefined,
  field: string,
): Requirement {
  if (key === '') throw new FieldError(`${field}.key`, 'must not be empty');
  if (!isOperator(operator)) {
    throw new FieldError(
      `${field}.operator`,
      `"${operator}" is not one of ${SELECTOR_OPERATORS.join(', ')}`,
    );
  }
  const list = values ?? [];
  if ((operator === 'In' || operator === 'NotIn') && list.length === 0) {
    throw new FieldError(`${field}.values`, `must be non-empty when operator is ${operator}`);
  }
  if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) {
    throw new FieldError(`${field}.values`, `must be empty when operator is ${operator}`);
  }
  return { key, operator, values: [...new Set(list)].sort() };
}

/**
 * Validates a LabelSelector the way the API server does and turns it into requirements.
 * `null`/`undefined` become `nothing`: an affinity term without a labelSelector selects no pod.
 * Throws FieldError naming the offending field under `field`.
 */
export function compileSelector(
  selector: LabelSelector | null | undefined,
  field: string,
): Selector {
  if (selector === null || selector === undefined) return SELECT_NOTHING;
  const requirements: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push(requirement(key, 'In', [value], `${field}.matchLabels[${key}]`));
  }
  (selector.matchExpressions ?? []).forEach((expr, i) => {
    requirements.push(
      requirement(expr.key, expr.operator, expr.values, `${field}.matchExpressions[${i}]`),
    );
  });
  return { kind: 'requirements', requirements: sortRequirements(requirements) };
}

/** Adds requirements to a selector; `nothing` stays `nothing`. */
export function withRequirements(selector: Selector, extra: readonly Requirement[]): Selector {
  if (selector.kind === 'nothing' || extra.length === 0) return selector;
  return {
    kind: 'requirements',
    requirements: sortRequirements([...selector.requirements, ...extra]),
  };
}

function sortRequirements(list: Requirement[]): Requirement[] {
  const seen = new Map<string, Requirement>();
  for (const r of list) seen.set(requirementKey(r), r);
  return [...seen.values()].sort((a, b) => compareText(requirementKey(a), requirementKey(b)));
}

const requirementKey = (r: Requirement): string => JSON.stringify([r.key, r.operator, r.values]);
function matchesRequirement(r: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(labels[r.key] ?? '');
    case 'NotIn':
      // A missing key satisfies NotIn, as in Kubernetes.
      return !has || !r.values.includes(labels[r.key] ?? '');
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Whether a label set is selected. */
export function selectorMatches(selector: Selector, labels: Labels): boolean {
  if (selector.kind === 'nothing') return false;
  for (const r of selector.requirements) if (!matchesRequirement(r, labels)) return false;
  return true;
}

/** A stable text for a selector: equal selectors (after normalisation) give equal keys. */
export function selectorKey(selector: Selector): string {
  return selector.kind === 'nothing' ? '!' : selector.requirements.map(requirementKey).join('&');
}

/**
 * The narrowest index entry that every selected label set must carry: a key and the
 * values it may take (from an In requirement), a key alone (Exists), or none.
 */
export type SelectorAnchor =
  | { readonly kind: 'values'; readonly key: string; readonly values: readonly string[] }
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'none' };

export function selectorAnchor(selector: Selector): SelectorAnchor {
  if (selector.kind === 'nothing') return { kind: 'none' };
  let best: SelectorAnchor = { kind: 'none' };
  for (const r of selector.requirements) {
    if (r.operator === 'In' && (best.kind !== 'values' || r.values.length < best.values.length)) {
      best = { kind: 'values', key: r.key, values: r.values };
    } else if (r.operator === 'Exists' && best.kind === 'none') {
      best = { kind: 'key', key: r.key };
    }
  }
  return best;
}

/** A selector's requirements as kubectl writes them: `app=web,tier in (a,b),!legacy`. */
export function requirementsText(requirements: readonly Requirement[]): string {
  return requirements
    .map((r) => {
      switch (r.operator) {
        case 'In':
          return r.values.length === 1
            ? `${r.key}=${r.values[0] ?? ''}`
            : `${r.key} in (${r.values.join(',')})`;
        case 'NotIn':
          return `${r.key} notin (${r.values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
      }
    })
    .join(',');
}
