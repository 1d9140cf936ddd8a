import type { LabelSelector } from './core.ts';
import type { PolicyKind } from './policy.ts';

/**
 * PlacementException (namespaced, short name pex): exempts workloads of its own namespace
 * from one policy. Who may create one is decided by RBAC; whether the policy accepts it,
 * by the policy's `spec.exceptions`.
 */
export const EXCEPTION_KIND = 'PlacementException';

export interface ExceptionPolicyRef {
  readonly kind: PolicyKind;
  /** A PlacementPolicy is looked up in the exception's own namespace. */
  readonly name: string;
}

/** Which workloads of the namespace are exempted: of these kinds, and selected by labels, names or both. */
export interface ExceptionWorkloads {
  /** Default: every kind a policy can target. */
  readonly kinds?: readonly string[];
  /** Matched against the pod template labels, as a policy's `targets.selector`. */
  readonly selector?: LabelSelector;
  readonly names?: readonly string[];
}

export interface PlacementExceptionSpec {
  readonly policyRef: ExceptionPolicyRef;
  readonly workloads: ExceptionWorkloads;
  /** Why the workloads cannot follow the policy: for the people who review exceptions. */
  readonly reason: string;
}

export interface PlacementException {
  readonly apiVersion?: string;
  readonly kind: typeof EXCEPTION_KIND;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly generation?: number;
    readonly uid?: string;
    readonly deletionTimestamp?: string;
  };
  readonly spec: PlacementExceptionSpec;
}

/** `PlacementException/NS/NAME`: how reports name an exception. */
export type ExceptionRef = `PlacementException/${string}/${string}`;

export const exceptionRef = (e: Pick<PlacementException, 'metadata'>): ExceptionRef =>
  `PlacementException/${e.metadata.namespace}/${e.metadata.name}`;
