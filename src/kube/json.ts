/**
 * Reading untrusted JSON from the API server: each helper returns the value when it has the
 * expected type and a neutral value otherwise, so transforms never throw on odd objects.
 */

export type JsonRecord = Readonly<Record<string, unknown>>;

const EMPTY: JsonRecord = Object.freeze({});

export const isRecord = (value: unknown): value is JsonRecord =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The object at `value`, or an empty one. */
export const record = (value: unknown): JsonRecord => (isRecord(value) ? value : EMPTY);

export const text = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined;

export const int = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

/** A string map (labels, annotations), keeping only string values; undefined when absent or empty. */
export function stringMap(value: unknown): Readonly<Record<string, string>> | undefined {
  if (!isRecord(value)) return undefined;
  let out: Record<string, string> | undefined;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') continue;
    out ??= {};
    out[key] = v;
  }
  return out;
}

/**
 * A client-node model class as a plain object type. Those classes have no instance methods
 * (serialisation is driven by static type maps), so a literal of this type is what the
 * generated code expects; the lint rule against literals for class instances cannot see that.
 */
export type Plain<T> = T extends Date
  ? T
  : T extends readonly (infer U)[]
    ? Plain<U>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;
