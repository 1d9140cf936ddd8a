/**
 * A list-watch informer with a trimmed cache, after client-node's `cache.ts`: list in pages,
 * watch from the list's resourceVersion with bookmarks, relist on 410, reconnect with backoff.
 * Unlike it, objects are trimmed before they are cached, and a relist tells consumers what
 * changed while the watch was gone.
 */
import type { KubeConfig } from '@kubernetes/client-node';

import { apiProblem, type ApiHealthReporter } from './api-health.ts';
import { Backoff } from './backoff.ts';
import { realSleep, type Sleep } from '../util/clock.ts';
import { StoppableLoop } from './stoppable-loop.ts';
import { record, text } from './json.ts';
import {
  kubeListWatch,
  type ListWatchSource,
  type RawEventType,
  type Selectors,
} from './list-watch.ts';
import { jsonEqual } from '../util/json.ts';
import { collectionPath, type Resource } from './resources.ts';
import { silentLogger, type Logger } from '../util/logger.ts';
import { errorMessage } from '../util/errors.ts';
import type { Store, WatchEvent } from '../api/cluster.ts';

export interface InformerOptions<T> {
  /** Called for each change after the cache holds it; exceptions are logged, not propagated. */
  readonly onEvent?: (event: WatchEvent<T>) => void;
  /** Page size of a list. Default 500. */
  readonly pageSize?: number;
  /**
   * How long the server keeps one watch open. Default 25 s: under client-node's 30 s
   * inactivity timer, so a quiet watch ends cleanly on the server's side; 2 s before it
   * does, the server sends a bookmark if its cache has moved past our resourceVersion.
   */
  readonly watchTimeoutSeconds?: number;
  /** Delay between retries; injected by tests. */
  readonly sleep?: Sleep;
  /** Monotonic milliseconds, to tell a watch that ran its course from one that closed at once. */
  readonly now?: () => number;
  readonly backoff?: Backoff;
  readonly logger?: Logger;
  /**
   * Told of every failed and every successful list or watch. With one, a retry logs at
   * debug only and the reporter says once what is wrong; without, every retry warns.
   */
  readonly health?: ApiHealthReporter;
}

/** Counters tests and metrics read. */
export interface InformerStats {
  lists: number;
  watches: number;
  expired: number;
  failures: number;
}

/** A watch that closes sooner than this without a single event counts as a failure. */
const MIN_HEALTHY_WATCH_MS = 1_000;

/** Versions differ on every write; two trimmed objects differing only there are the same to us. */
const VERSION_KEYS: ReadonlySet<string> = new Set(['resourceVersion']);

/** Same content, resourceVersion aside: such an update changes nothing a consumer reads. */
export const sameContent = (a: unknown, b: unknown): boolean => jsonEqual(a, b, VERSION_KEYS);

/**
 * The events that take a consumer from `old` to `fresh` (a relist after the watch was
 * lost): deleted for keys gone, added for new keys, updated for changed content.
 */
export function diffSnapshot<T>(
  old: ReadonlyMap<string, T>,
  fresh: ReadonlyMap<string, T>,
): WatchEvent<T>[] {
  const events: WatchEvent<T>[] = [];
  for (const [key, object] of old) {
    if (!fresh.has(key)) events.push({ type: 'deleted', object });
  }
  for (const [key, object] of fresh) {
    const before = old.get(key);
    if (before === undefined) events.push({ type: 'added', object });
    else if (!sameContent(before, object)) events.push({ type: 'updated', object, old: before });
  }
  return events;
}

export class Informer<T> implements Store<T> {
  readonly #resource: Resource<T>;
  readonly #source: ListWatchSource;
  readonly #handlers = new Set<(event: WatchEvent<T>) => void>();
  readonly #pageSize: number;
  readonly #watchTimeoutSeconds: number;
  readonly #sleep: Sleep;
  readonly #backoff: Backoff;
  readonly #logger: Logger;
  readonly #health: ApiHealthReporter | undefined;
  readonly #now: () => number;
  readonly #loop = new StoppableLoop();
  #cache = new Map<string, T>();
  #resourceVersion = '';
  #synced = false;
  #onSynced: (() => void) | undefined;
  readonly stats: InformerStats = { lists: 0, watches: 0, expired: 0, failures: 0 };

  constructor(resource: Resource<T>, source: ListWatchSource, options: InformerOptions<T> = {}) {
    this.#resource = resource;
    this.#source = source;
    this.#pageSize = options.pageSize ?? 500;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? 25;
    this.#sleep = options.sleep ?? realSleep;
    this.#backoff = options.backoff ?? new Backoff();
    this.#logger = options.logger ?? silentLogger;
    this.#health = options.health;
    this.#now = options.now ?? (() => performance.now());
    if (options.onEvent !== undefined) this.#handlers.add(options.onEvent);
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** The resourceVersion the next watch resumes from; empty before a list or after a 410. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  list(): readonly T[] {
    return [...this.#cache.values()];
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Adds a handler; returns the function that removes it. */
  addHandler(handler: (event: WatchEvent<T>) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Starts listing and watching; resolves once the first list is cached, rejects if stopped first. */
  start(): Promise<void> {
    const alreadyStarted = `informer for ${this.#resource.plural} already started`;
    if (this.#loop.started) throw new Error(alreadyStarted);
    const synced = new Promise<void>((resolve, reject) => {
      this.#onSynced = resolve;
      this.#loop.signal.addEventListener('abort', () => {
        if (!this.#synced)
          reject(new Error(`informer for ${this.#resource.plural} stopped before it synced`));
      });
    });
    this.#loop.start(alreadyStarted, (signal, stopped) => this.#run(signal, stopped));
    return synced;
  }

  /** Closes the watch and ends the loop; the cache stays readable. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(signal: AbortSignal, stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      const relisting = this.#resourceVersion === '';
      if (relisting) {
        try {
          await this.#relist(signal);
        } catch (error) {
          if (stopped()) break;
          this.stats.failures++;
          await this.#retryLater('list failed', error);
          continue;
        }
      }
      if (stopped()) break;
      const progress = { delivered: false };
      const openedAt = this.#now();
      this.stats.watches++;
      const end = await this.#source.watch(
        { resourceVersion: this.#resourceVersion, timeoutSeconds: this.#watchTimeoutSeconds },
        (type, object) => {
          progress.delivered = true;
          this.#apply(type, object);
        },
        signal,
        () => this.#health?.ok(this.#resource.plural),
      );
      if (stopped()) break;
      const { delivered } = progress;
      const healthy = delivered || this.#now() - openedAt >= MIN_HEALTHY_WATCH_MS;
      // The server answered (a watch that closes or expires was opened first).
      if (end.kind !== 'failed') this.#health?.ok(this.#resource.plural);
      if (healthy) this.#backoff.reset();
      switch (end.kind) {
        case 'closed':
          // A quiet watch that ran until its timeout resumes at once; one that closes
          // immediately, with nothing delivered, would otherwise reconnect in a tight loop.
          if (!healthy) await this.#retryLater('watch closed at once', undefined);
          break;
        case 'expired':
          this.stats.expired++;
          this.#logger.info('watch expired, relisting', {
            resource: this.#resource.plural,
            message: end.message,
          });
          this.#resourceVersion = '';
          // Expired straight after a fresh list: the server is not serving watches yet.
          if (relisting && !healthy)
            await this.#retryLater('watch expired after a list', undefined, end.message);
          break;
        case 'failed':
          this.stats.failures++;
          await this.#retryLater('watch failed', end.error ?? end.message);
          break;
      }
    }
  }

  /**
   * Waits the backoff's next delay. A failure (`error` set) is named by its cause and the
   * collection's URL; with a health reporter the line is debug (the reporter logs the
   * problem once), without one it is a warning on every retry.
   */
  async #retryLater(what: string, error: unknown, detail?: string): Promise<void> {
    const delayMs = this.#backoff.next();
    if (error === undefined) {
      this.#logger.warn(`${what}; retrying`, {
        resource: this.#resource.plural,
        delayMs,
        ...(detail === undefined ? {} : { detail }),
      });
    } else {
      const resource = this.#resource.plural;
      const cause = (this.#health?.failed(resource, error) ?? apiProblem(error)).cause;
      const meta = { resource, url: this.#source.url, delayMs, cause };
      if (this.#health === undefined) this.#logger.warn(`${what}; retrying`, meta);
      else this.#logger.debug(`${what}; retrying`, meta);
    }
    await this.#sleep(delayMs, this.#loop.signal);
  }

  /** Lists every page into a fresh map, swaps it in, and emits the difference from the old. */
  async #relist(signal: AbortSignal): Promise<void> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let next: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#source.list(
        next === undefined ? { limit: this.#pageSize } : { limit: this.#pageSize, continue: next },
        signal,
      );
      resourceVersion = page.resourceVersion;
      for (const raw of page.items) {
        const object = this.#resource.transform(raw);
        if (object !== undefined) fresh.set(this.#resource.key(object), object);
      }
      next = page.continue;
    } while (next !== undefined);

    const events = diffSnapshot(this.#cache, fresh);
    this.#cache = fresh;
    this.#resourceVersion = resourceVersion;
    this.#backoff.reset();
    this.#health?.ok(this.#resource.plural);
    if (!this.#synced) {
      this.#synced = true;
      this.#onSynced?.();
    }
    this.#logger.debug('listed', {
      resource: this.#resource.plural,
      objects: fresh.size,
      changes: events.length,
      resourceVersion,
    });
    for (const event of events) this.#emit(event);
  }

  #apply(type: RawEventType, raw: unknown): void {
    const version = text(record(record(raw)['metadata'])['resourceVersion']);
    if (type !== 'BOOKMARK') {
      const object = this.#resource.transform(raw);
      if (object !== undefined) {
        const key = this.#resource.key(object);
        const old = this.#cache.get(key);
        if (type === 'DELETED') {
          this.#cache.delete(key);
          if (old !== undefined) this.#emit({ type: 'deleted', object });
        } else {
          this.#cache.set(key, object);
          if (old === undefined) this.#emit({ type: 'added', object });
          else if (!sameContent(old, object)) this.#emit({ type: 'updated', object, old });
        }
      }
    }
    if (version !== undefined && version !== '') this.#resourceVersion = version;
  }

  #emit(event: WatchEvent<T>): void {
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (error) {
        this.#logger.error('informer handler threw', {
          resource: this.#resource.plural,
          error: errorMessage(error),
        });
      }
    }
  }
}

export interface KubeInformerOptions<T> extends InformerOptions<T>, Selectors {
  /** Watch one namespace only (namespaced resources). */
  readonly namespace?: string;
}

/** An informer for `resource` over client-node. */
export function createInformer<T>(
  kc: KubeConfig,
  resource: Resource<T>,
  options: KubeInformerOptions<T> = {},
): Informer<T> {
  const selectors: Selectors = {
    ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
    ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector }),
  };
  const source = kubeListWatch(kc, collectionPath(resource, options.namespace), selectors);
  return new Informer(resource, source, options);
}
