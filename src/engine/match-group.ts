import type { ResolvedTerm } from './term.ts';
import { selectorAnchor, type SelectorAnchor } from './selector.ts';
import { labelOf } from './labels.ts';

/**
 * A set of terms that a pod matches only when it matches all of them, with counts of the
 * matching pods per topology domain. A pod's required podAffinity terms form one group,
 * because the scheduler counts only pods that match every one of them; each anti-affinity
 * and preferred term is a group of one.
 */
export class MatchGroup<Member> {
  readonly id: string;
  readonly terms: readonly ResolvedTerm[];
  /** The distinct topology keys of the terms. */
  readonly keys: readonly string[];
  /** Every pod this group can select carries this label (or no index can narrow it). */
  readonly anchor: SelectorAnchor;
  /** Whether some term has a null labelSelector, so the group selects no pod at all. */
  readonly selectsNothing: boolean;
  /** topologyKey → domain value → number of matching pods there. Zero entries are removed. */
  readonly counts = new Map<string, Map<string, number>>();
  /** Single-term groups: domain value → pods that carry the term as required anti-affinity. */
  readonly carriers = new Map<string, Set<Member>>();
  /** How many pods use the group; it is dropped at zero. */
  refs = 0;
  /** How many pods carry it as a required anti-affinity term. */
  antiRefs = 0;

  constructor(id: string, terms: readonly ResolvedTerm[]) {
    this.id = id;
    this.terms = terms;
    this.keys = [...new Set(terms.map((t) => t.topologyKey))];
    this.selectsNothing = terms.some((t) => t.selector.kind === 'nothing');
    this.anchor = terms.map((t) => selectorAnchor(t.selector)).find((a) => a.kind !== 'none') ?? {
      kind: 'none',
    };
  }

  /** The id a group of these terms gets; the order of the terms does not matter. */
  static idOf(terms: readonly ResolvedTerm[]): string {
    if (terms.length === 1 && terms[0] !== undefined) return terms[0].id;
    return [...new Set(terms.map((t) => t.id))].sort().join(' && ');
  }

  count(key: string, value: string): number {
    return this.counts.get(key)?.get(value) ?? 0;
  }

  /** Adds `delta` matching pods on a node with `nodeLabels`. */
  bump(nodeLabels: Readonly<Record<string, string>>, delta: number): void {
    for (const key of this.keys) {
      const value = labelOf(nodeLabels, key);
      if (value === undefined) continue; // a node without the key is in no domain of it
      let perValue = this.counts.get(key);
      if (perValue === undefined) {
        perValue = new Map();
        this.counts.set(key, perValue);
      }
      const next = (perValue.get(value) ?? 0) + delta;
      if (next === 0) perValue.delete(value);
      else perValue.set(value, next);
      if (perValue.size === 0) this.counts.delete(key);
    }
  }

  /**
   * Whether any pod other than one excluded pod is counted anywhere (the scheduler's
   * "len(affinityCounts) > 0" with the pod being judged left out).
   */
  countedElsewhere(excludedNodeLabels: Readonly<Record<string, string>> | null): boolean {
    for (const [key, perValue] of this.counts) {
      const own = excludedNodeLabels?.[key];
      const ownCount = own === undefined ? 0 : (perValue.get(own) ?? 0);
      if (perValue.size > 1 || (perValue.size === 1 && ownCount !== 1)) return true;
    }
    return false;
  }

  addCarrier(value: string, member: Member): void {
    let set = this.carriers.get(value);
    if (set === undefined) {
      set = new Set();
      this.carriers.set(value, set);
    }
    set.add(member);
  }

  removeCarrier(value: string, member: Member): void {
    const set = this.carriers.get(value);
    if (set === undefined) return;
    set.delete(member);
    if (set.size === 0) this.carriers.delete(value);
  }
}
