/**
 * Which preferred node-affinity terms a pod is scored by, and whose each one is: the audit's
 * score (judge-node-spread.ts) and `why`'s origins (explain-origin.ts) read the same list, so
 * they cannot disagree on which terms count or who wrote them.
 */
import type { NodeAffinity } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { canonicalJson } from './canonical.ts';
import type { CompiledPolicy } from './policy.ts';
import { PREFERRED_TERMS } from './term.ts';

/** One entry of a `preferredDuringSchedulingIgnoredDuringExecution` list. */
export type PreferredNodeTerm = NonNullable<NodeAffinity[typeof PREFERRED_TERMS]>[number];

/** A preferred node-affinity term a pod is scored by. */
export interface ScoredNodeTerm {
  readonly term: PreferredNodeTerm;
  /** Its position in the pod's own list; undefined for a policy's term the pod does not carry. */
  readonly own: number | undefined;
  /** The first reaching policy with an equal term (by canonical JSON), and its position there. */
  readonly from: { readonly ref: PolicyRef; readonly index: number } | undefined;
  /** Equal to an earlier term of the pod's own list: listed, but scored once. */
  readonly repeat: boolean;
}

/** A policy's preferred node-affinity terms. */
export const policyPreferredNodeTerms = (p: CompiledPolicy): readonly PreferredNodeTerm[] =>
  p.affinity.nodeAffinity?.[PREFERRED_TERMS] ?? [];

/**
 * The pod's own preferred terms in order, each one equal to a reaching policy's being that
 * policy's, then the terms of `policies` (those that reach the pod and do not exempt it, in
 * priority order) that the pod does not carry, each once.
 */
export function scoredNodeTerms(
  own: readonly PreferredNodeTerm[],
  policies: readonly CompiledPolicy[],
): ScoredNodeTerm[] {
  const fromPolicy = new Map<string, { ref: PolicyRef; index: number; term: PreferredNodeTerm }>();
  for (const p of policies) {
    policyPreferredNodeTerms(p).forEach((term, index) => {
      const key = canonicalJson(term);
      if (!fromPolicy.has(key)) fromPolicy.set(key, { ref: p.ref, index, term });
    });
  }
  const out: ScoredNodeTerm[] = [];
  const carried = new Set<string>();
  own.forEach((term, i) => {
    const key = canonicalJson(term);
    const found = fromPolicy.get(key);
    const from = found === undefined ? undefined : { ref: found.ref, index: found.index };
    out.push({ term, own: i, from, repeat: carried.has(key) });
    carried.add(key);
  });
  for (const [key, { ref, index, term }] of fromPolicy) {
    if (!carried.has(key)) out.push({ term, own: undefined, from: { ref, index }, repeat: false });
  }
  return out;
}
