/** Generic helpers for JSON values: equality and merge patches (RFC 7396). */

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Deep equality of JSON values; object key order does not matter, array order does. Keys
 * whose value is undefined count as absent, as they do once serialised; keys in
 * `ignoreKeys` are not compared, at any depth.
 */
export function jsonEqual(a: unknown, b: unknown, ignoreKeys?: ReadonlySet<string>): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i], ignoreKeys));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (ignoreKeys?.has(key) === true) continue;
    if (!jsonEqual(a[key], b[key], ignoreKeys)) return false;
  }
  return true;
}

/**
 * Whether two values serialise to the same JSON text, key order included: for comparing
 * output (reports, findings) whose order is part of what is published.
 */
export const sameJson = (a: unknown, b: unknown): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

/**
 * The merge patch that turns `from` into `to`: changed keys carry their new value, removed
 * keys carry null, arrays and scalars are replaced whole. `undefined` when nothing changes.
 */
export function mergeDiff(from: unknown, to: unknown): unknown {
  if (jsonEqual(from, to)) return undefined;
  if (to === undefined) return null;
  if (!isObject(from) || !isObject(to)) return to;
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    const sub = mergeDiff(from[key], to[key]);
    if (sub !== undefined) patch[key] = sub;
  }
  return patch;
}

/** Whether two label maps hold the same keys and values, in any order; absent is empty. */
export const sameLabels = (
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean => jsonEqual(a ?? {}, b ?? {});
