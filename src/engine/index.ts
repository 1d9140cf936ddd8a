/** The placement engine: pure functions and data, no I/O. */
export * from './audit.ts';
export * from './errors.ts';
export * from './placement.ts';
export * from './placement-cache.ts';
export * from './pod-placement.ts';
export * from './policy.ts';
export * from './selector.ts';
export * from './term.ts';
export * from './topology-index.ts';
export * from './verdict.ts';
export * from './workload.ts';
export * from './canonical.ts';
export * from './merge.ts';
export * from './feasibility.ts';
export * from './node-eligibility.ts';
export * from './admission.ts';
