import type { Labels } from '../api/core.ts';

/**
 * The value of label `key`, or undefined when the object does not carry it. Label keys such
 * as `constructor` or `toString` are valid, so a plain `labels[key]` would find the
 * prototype's members on an object without them: those are functions and objects, and a
 * label's value is a string, so one look-up and a type check tell them apart (an own-property
 * check besides costs a second look-up on every call, and this is on every hot path).
 */
export const labelOf = (labels: Labels, key: string): string | undefined => {
  const value: unknown = labels[key];
  return typeof value === 'string' ? value : undefined;
};
