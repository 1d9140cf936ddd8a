import { compareText } from './compare.ts';

/**
 * A set of strings kept in code-unit order (compareText's): adding or taking out one costs a
 * binary search and a move of the keys after it, not a sort of them all.
 */
export class SortedKeys {
  private readonly keys: string[] = [];

  /** The keys, in order (the live array: read it, don't keep it across changes). */
  get list(): readonly string[] {
    return this.keys;
  }

  add(key: string): void {
    const at = this.position(key);
    if (this.keys[at] !== key) this.keys.splice(at, 0, key);
  }

  delete(key: string): void {
    const at = this.position(key);
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  /** Takes `keys` (any order, no repeats) as the whole set. */
  reset(keys: Iterable<string>): void {
    this.keys.length = 0;
    for (const k of keys) this.keys.push(k);
    this.keys.sort(compareText);
  }

  /** Where `key` is, or would be inserted. */
  private position(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.keys[mid] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
