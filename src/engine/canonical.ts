/** JSON values as Kubernetes objects hold them. */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * A text for a JSON value with object keys sorted: equal for values the API server
 * would store alike, whatever order a client wrote the keys in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys whose empty map the API server drops (Go `omitempty` on a map, not on a pointer). */
const OMITTED_WHEN_EMPTY_MAP = new Set(['matchLabels']);

/**
 * A core-API value as the API server will store it: nulls and empty lists dropped (Go
 * `omitempty`), empty `matchLabels` dropped, while `labelSelector: {}` and
 * `namespaceSelector: {}` stay (they mean "everything"). Terms recorded in this form
 * match exactly what is read back.
 */
export function asServerStores(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asServerStores);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    const inner = asServerStores(v);
    if (OMITTED_WHEN_EMPTY_MAP.has(k) && isPlainObject(inner) && Object.keys(inner).length === 0)
      continue;
    out[k] = inner;
  }
  return out;
}
