/**
 * Values read from many API objects, held once. The replicas of one template carry equal
 * labels, owners, affinity and tolerations; each JSON.parse makes a fresh copy of every one,
 * and at 150,000 cached pods those copies are most of the cache. A table of the values
 * already read hands back the copy it holds instead.
 *
 * The table is bounded, oldest entry out first: the API server lists a namespace's pods in
 * name order, so the replicas of one workload arrive together, and a few thousand entries
 * find nearly every repeat. Shared values must never be mutated (the cached types are
 * read-only).
 */
export class SharedValues<T> {
  readonly #table = new Map<string, T>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** The key shared last, and its value: the replicas of one workload come one after another. */
  #lastKey: string | undefined;
  #lastValue: T | undefined;

  /** The value held under `key`, or `value`, now held under it. */
  share(key: string, value: T): T {
    // Comparing with the last key is a memcmp; a lookup first hashes the whole new key (an
    // affinity's JSON text is hundreds of characters, and each pod makes a new one).
    if (key === this.#lastKey) return this.#lastValue as T;
    const held = this.#table.get(key);
    this.#lastKey = key;
    if (held !== undefined) {
      this.#lastValue = held;
      return held;
    }
    this.#lastValue = value;
    if (this.#table.size >= this.#max) {
      const oldest = this.#table.keys().next();
      if (oldest.done !== true) this.#table.delete(oldest.value);
    }
    this.#table.set(key, value);
    return value;
  }

  /** The raw value `shareParsed` read last, and what it gave. */
  #lastRaw: unknown;
  #lastParsed: T | undefined;

  /**
   * The value held for `raw`, a value as JSON.parse made it, which `make` turns into the
   * value to hold (or undefined): shared by the JSON text of what `make` gives. When `raw`
   * equals the raw value of the previous call, as the next replica of a workload's does,
   * that call's answer, without making, serialising or hashing anything. Every call on one
   * table passes the same `make`.
   */
  shareParsed(raw: unknown, make: (raw: unknown) => T | undefined): T | undefined {
    if (raw === undefined) return undefined;
    if (this.#lastRaw !== undefined && sameParsed(raw, this.#lastRaw)) return this.#lastParsed;
    const value = make(raw);
    const held = value === undefined ? undefined : this.share(JSON.stringify(value), value);
    this.#lastRaw = raw;
    this.#lastParsed = held;
    return held;
  }

  get size(): number {
    return this.#table.size;
  }
}

/**
 * Whether two values as JSON.parse makes them would serialise alike: the same keys in the same
 * order, equal scalars, arrays item by item.
 */
function sameParsed(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameParsed(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (key !== otherKeys[i]) return false;
    if (!sameParsed((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
      return false;
  }
  return true;
}

/** A string held once: the key is the value. */
export class SharedStrings {
  readonly #values: SharedValues<string>;

  constructor(max: number) {
    this.#values = new SharedValues<string>(max);
  }

  share(value: string): string;
  share(value: string | undefined): string | undefined;
  share(value: string | undefined): string | undefined {
    return value === undefined ? undefined : this.#values.share(value, value);
  }

  get size(): number {
    return this.#values.size;
  }
}
