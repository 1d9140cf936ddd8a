/**
 * Kubernetes Events (events.k8s.io/v1) for what the operator did and found. A reconcile loop
 * repeats itself, so identical events (same object, type, reason and message) are written
 * once per window; recording never throws and never blocks the caller.
 */
import { V1MicroTime, type EventsV1Event } from '@kubernetes/client-node';

import { requestOptions, type KubeClients } from './client.ts';
import { apiFailure } from './failure.ts';
import type { Plain } from './json.ts';
import { silentLogger, type Logger } from '../util/logger.ts';
import type { EventTarget } from '../api/cluster.ts';

export const REPORTING_CONTROLLER = 'placement-operator';
const DEDUP_WINDOW_MS = 10 * 60_000;
/** Bound on remembered events, so a flood of distinct messages cannot grow memory. */
const MAX_REMEMBERED = 10_000;
/** The API's limits on these fields (events.k8s.io/v1 validation). */
const NOTE_MAX_BYTES = 1024;
const SHORT_FIELD_MAX = 128;

export type EventType = 'Normal' | 'Warning';

export interface RecordOptions {
  /** False when the caller already writes an event only on a change of state (default true). */
  readonly deduplicate?: boolean;
}

export interface EventRecorderOptions {
  /** This replica (pod name): events.k8s.io requires it. */
  readonly reportingInstance: string;
  /** The event's `action` (what the operator was doing); ports.ts's record() has no such argument. */
  readonly actionFor?: (target: EventTarget, reason: string) => string;
  readonly dedupWindowMs?: number;
  readonly now?: () => number;
  readonly logger?: Logger;
}

/** Cuts `value` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(value: string, maxBytes: number): string {
  if (Buffer.byteLength(value, 'utf8') <= maxBytes) return value;
  let out = '';
  let bytes = 0;
  for (const char of value) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes - 3) break;
    out += char;
    bytes += size;
  }
  return `${out}...`;
}

/**
 * Remembers when each identical event was last written, and says whether a new one should
 * be. Pure bookkeeping: no clock, no I/O.
 */
export class EventDeduplicator {
  readonly #windowMs: number;
  readonly #limit: number;
  readonly #lastWritten = new Map<string, number>();

  constructor(windowMs: number = DEDUP_WINDOW_MS, limit: number = MAX_REMEMBERED) {
    this.#windowMs = windowMs;
    this.#limit = limit;
  }

  /** True (and remembered) when no identical event was written within the window before `now`. */
  admit(key: string, now: number): boolean {
    const last = this.#lastWritten.get(key);
    if (last !== undefined && now - last < this.#windowMs) return false;
    this.#lastWritten.delete(key); // re-insert: the map's order is the order of last writes
    this.#lastWritten.set(key, now);
    this.#evict(now);
    return true;
  }

  /** Forgets `key`, so that an event whose write failed is tried again next time. */
  forget(key: string): void {
    this.#lastWritten.delete(key);
  }

  get size(): number {
    return this.#lastWritten.size;
  }

  #evict(now: number): void {
    for (const [key, at] of this.#lastWritten) {
      if (now - at < this.#windowMs && this.#lastWritten.size <= this.#limit) break;
      this.#lastWritten.delete(key);
    }
  }
}

export const eventKey = (
  target: EventTarget,
  type: EventType,
  reason: string,
  message: string,
): string =>
  JSON.stringify([
    target.kind,
    target.namespace ?? '',
    target.name,
    target.uid ?? '',
    type,
    reason,
    message,
  ]);

/** Implements ports.ts's EventRecorder. */
/** `<object>.<hex>`: unique per event, at most 253 characters, a valid DNS subdomain. */
export function eventName(object: string, now: number): string {
  const suffix = `${now.toString(16)}${Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, '0')}`;
  return `${object.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

export class KubeEventRecorder {
  readonly #clients: Pick<KubeClients, 'events'>;
  readonly #instance: string;
  readonly #actionFor: (target: EventTarget, reason: string) => string;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #dedup: EventDeduplicator;
  readonly #pending = new Set<Promise<void>>();

  constructor(clients: Pick<KubeClients, 'events'>, options: EventRecorderOptions) {
    this.#clients = clients;
    this.#instance = truncateUtf8(options.reportingInstance, SHORT_FIELD_MAX);
    this.#actionFor = options.actionFor ?? (() => 'Reconcile');
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger ?? silentLogger;
    this.#dedup = new EventDeduplicator(options.dedupWindowMs);
  }

  record(
    target: EventTarget,
    type: EventType,
    reason: string,
    message: string,
    options: RecordOptions = {},
  ): void {
    const key = eventKey(target, type, reason, message);
    const now = this.#now();
    const deduplicate = options.deduplicate ?? true;
    if (deduplicate && !this.#dedup.admit(key, now)) return;
    const write = this.#create(target, type, reason, message, now).catch((error: unknown) => {
      if (deduplicate) this.#dedup.forget(key);
      this.#logger.warn('could not record event', {
        kind: target.kind,
        namespace: target.namespace,
        name: target.name,
        reason,
        error: apiFailure(error).message,
      });
    });
    this.#pending.add(write);
    void write.finally(() => this.#pending.delete(write));
  }

  /** Waits for the writes in flight (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  async #create(
    target: EventTarget,
    type: EventType,
    reason: string,
    message: string,
    now: number,
  ): Promise<void> {
    // Events of cluster-scoped objects live in `default`, as core controllers put them.
    const namespace = target.namespace ?? 'default';
    const body: Plain<EventsV1Event> = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // Named as kubectl and client-go name events: <object>.<unique suffix>. A generateName
      // ending in '.' is refused, since a generated name must end alphanumeric.
      metadata: { name: eventName(target.name, now), namespace },
      eventTime: new V1MicroTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance,
      action: truncateUtf8(this.#actionFor(target, reason), SHORT_FIELD_MAX),
      reason: truncateUtf8(reason, SHORT_FIELD_MAX),
      note: truncateUtf8(message, NOTE_MAX_BYTES),
      type,
      regarding: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.name,
        ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
        ...(target.uid === undefined ? {} : { uid: target.uid }),
      },
    };
    await this.#clients.events.createNamespacedEvent({ namespace, body }, requestOptions());
  }
}
