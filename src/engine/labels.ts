import type { Labels } from '../api/core.ts';

/**
 * The value of label `key`, or undefined when the object does not carry it. Label keys such
 * as `constructor` or `toString` are valid, so a plain `labels[key]` would find the
 * prototype's members on an object without them.
 */
export const labelOf = (labels: Labels, key: string): string | undefined =>
  Object.hasOwn(labels, key) ? labels[key] : undefined;
