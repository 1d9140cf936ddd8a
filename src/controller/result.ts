import type { Logger } from '../util/logger.ts';
/** What one reconcile asks of the queue (controller-runtime's Result, as a union). */
export type ReconcileResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'requeue' }
  | { readonly kind: 'requeueAfter'; readonly ms: number }
  | { readonly kind: 'error'; readonly error: Error };

export const DONE: ReconcileResult = { kind: 'done' };
export const requeueAfter = (ms: number): ReconcileResult => ({ kind: 'requeueAfter', ms });

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
