/** What the audit needs from the API, as interfaces it owns (src/kube implements them). */

export type EvictionOutcome =
  | { readonly kind: 'evicted' }
  | { readonly kind: 'blocked'; readonly message: string }
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly message: string; readonly retryable: boolean };

export interface PodEvictor {
  /** Evicts through the Eviction API, so PodDisruptionBudgets are honoured. */
  evict(namespace: string, name: string, dryRun: boolean, uid?: string): Promise<EvictionOutcome>;
}

/** Something that tells of changes without the audit reading it (the policy informers). */
export interface ChangeSource {
  addHandler(handler: () => void): () => void;
}
