/** An integer flag of a bench script: the fallback when absent, an error naming the flag when bad. */
export function intFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${flag}: "${value}" is not an integer >= ${min}`);
  }
  return n;
}
