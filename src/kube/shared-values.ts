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

  get size(): number {
    return this.#table.size;
  }
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
