import type { WriteResult } from '../api/cluster.ts';
import type { Logger } from '../util/logger.ts';
/** What one reconcile asks of the queue (controller-runtime's Result, as a union). */
export type ReconcileResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'requeue' }
  | { readonly kind: 'requeueAfter'; readonly ms: number }
  | { readonly kind: 'error'; readonly error: Error }
  /**
   * An error that trying again cannot mend (a write the API server will always refuse):
   * logged and counted as an error, but not retried; a change or a resync brings the key back.
   */
  | { readonly kind: 'terminal'; readonly error: Error };

/** A reconciler of one kind: the object's key, what it reads and writes through, and a log carrying the key. */
export type KeyReconciler<Deps> = (
  key: string,
  deps: Deps,
  log: Logger,
) => Promise<ReconcileResult>;

export const DONE: ReconcileResult = { kind: 'done' };
export const requeueAfter = (ms: number): ReconcileResult => ({ kind: 'requeueAfter', ms });

/**
 * What a write that did not go through asks of the queue: a conflict is tried again at once,
 * a failure with backoff, unless the API server's validation rejected the request, which it
 * will do every time it is sent as it stands (terminal: a change to the object or to its
 * policies, or a resync, brings the key back). `undefined` for a write that was made, or
 * whose object is gone: the caller goes on.
 */
export function afterWrite(result: WriteResult, what?: string): ReconcileResult | undefined {
  switch (result.kind) {
    case 'written':
    case 'gone':
      return undefined;
    case 'conflict':
      return { kind: 'requeue' };
    case 'failed': {
      const error = new Error(what === undefined ? result.message : `${what}: ${result.message}`);
      return result.invalid === undefined ? { kind: 'error', error } : { kind: 'terminal', error };
    }
  }
}

/** A logger that adds `fields` to every line (policy, workload, reconcileID, ...). */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  const merge = (meta?: Record<string, unknown>): Record<string, unknown> => ({
    ...fields,
    ...meta,
  });
  return {
    info: (m, meta) => log.info(m, merge(meta)),
    warn: (m, meta) => log.warn(m, merge(meta)),
    error: (m, meta) => log.error(m, merge(meta)),
    debug: (m, meta) => log.debug(m, merge(meta)),
  };
}
