import type { PlacementException } from '../api/exception.ts';
import type { PlacementPolicy } from '../api/policy.ts';

/**
 * A policy as the informer caches it: src/api's PlacementPolicy plus what writes need,
 * the resourceVersion (the precondition of every write) and the current status (a status
 * write is the merge-patch difference from it).
 */
export interface CachedPolicy extends PlacementPolicy {
  readonly metadata: PlacementPolicy['metadata'] & { readonly resourceVersion: string };
  readonly status?: Readonly<Record<string, unknown>>;
}

/** A PlacementException as the informer caches it: with its resourceVersion and status, as a policy. */
export interface CachedException extends PlacementException {
  readonly metadata: PlacementException['metadata'] & { readonly resourceVersion: string };
  readonly status?: Readonly<Record<string, unknown>>;
}
