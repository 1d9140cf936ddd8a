import type { Source, WatchEvent } from '../../src/api/cluster.ts';

/**
 * An informer without the API, for the continuous audit's tests and benchmark: a map, and
 * handlers told of every change after it is made.
 */
export class MemorySource<T> implements Source<T> {
  readonly synced = true;
  private readonly items = new Map<string, T>();
  private readonly handlers = new Set<(event: WatchEvent<T>) => void>();
  private readonly keyOf: (object: T) => string;

  constructor(keyOf: (object: T) => string, objects: Iterable<T> = []) {
    this.keyOf = keyOf;
    for (const o of objects) this.items.set(keyOf(o), o);
  }

  list(): readonly T[] {
    return [...this.items.values()];
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  addHandler(handler: (event: WatchEvent<T>) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  get listeners(): number {
    return this.handlers.size;
  }

  set(object: T): void {
    const key = this.keyOf(object);
    const old = this.items.get(key);
    this.items.set(key, object);
    this.emit(old === undefined ? { type: 'added', object } : { type: 'updated', object, old });
  }

  delete(key: string): void {
    const object = this.items.get(key);
    if (object === undefined) return;
    this.items.delete(key);
    this.emit({ type: 'deleted', object });
  }

  private emit(event: WatchEvent<T>): void {
    for (const h of this.handlers) h(event);
  }
}
