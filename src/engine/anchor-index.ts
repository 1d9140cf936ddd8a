import type { Labels } from '../api/core.ts';
import type { SelectorAnchor } from './selector.ts';
import { labelOf } from './labels.ts';

/**
 * Groups filed under the label every pod they select must carry, so the groups that can
 * select a pod are found from its labels instead of by trying them all.
 */
export class AnchorIndex<G> {
  private readonly byValue = new Map<string, Map<string, Set<G>>>();
  private readonly byKey = new Map<string, Set<G>>();
  private readonly unanchored = new Set<G>();

  add(group: G, anchor: SelectorAnchor): void {
    this.edit(group, anchor, 1);
  }

  remove(group: G, anchor: SelectorAnchor): void {
    this.edit(group, anchor, -1);
  }

  /**
   * Calls `f` with each group that could select a pod with these labels (a superset, never
   * missing one), in the order of the labels, then the unanchored groups.
   */
  forEachCandidate(labels: Labels, f: (group: G) => void): void {
    if (this.byValue.size + this.byKey.size <= 1) {
      // At most one label key anchors groups (often all policies anchor on `app`): look that
      // one up rather than walk every label of every pod. The order is the same.
      for (const key of this.byValue.keys()) this.forEachAnchoredOn(labels, key, f);
      for (const key of this.byKey.keys()) this.forEachAnchoredOn(labels, key, f);
    } else {
      for (const key of Object.keys(labels)) this.forEachAnchoredOn(labels, key, f);
    }
    for (const g of this.unanchored) f(g);
  }

  /** The groups anchored on label `key` that a pod with these labels could match. */
  private forEachAnchoredOn(labels: Labels, key: string, f: (group: G) => void): void {
    const value = labelOf(labels, key);
    if (value === undefined) return;
    const byValue = this.byValue.get(key)?.get(value);
    if (byValue) for (const g of byValue) f(g);
    const byKey = this.byKey.get(key);
    if (byKey) for (const g of byKey) f(g);
  }

  private edit(group: G, a: SelectorAnchor, op: 1 | -1): void {
    if (a.kind === 'none') {
      if (op > 0) this.unanchored.add(group);
      else this.unanchored.delete(group);
      return;
    }
    if (a.kind === 'key') {
      editSet(this.byKey, a.key, group, op);
      return;
    }
    let byValue = this.byValue.get(a.key);
    if (byValue === undefined) {
      byValue = new Map();
      this.byValue.set(a.key, byValue);
    }
    for (const v of a.values) editSet(byValue, v, group, op);
    if (byValue.size === 0) this.byValue.delete(a.key);
  }
}

/** Adds `value` to or removes it from the set at `key`, dropping empty sets. */
export function editSet<K, V>(map: Map<K, Set<V>>, key: K, value: V, op: 1 | -1): void {
  let set = map.get(key);
  if (op > 0) {
    if (set === undefined) {
      set = new Set();
      map.set(key, set);
    }
    set.add(value);
    return;
  }
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
