import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

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

/**
 * A comma-separated flag: the fallback when absent; each item through `parse`, which returns
 * undefined (or throws) for a bad one.
 */
export function listFlag<T>(
  flag: string,
  value: string | undefined,
  fallback: readonly T[],
  parse: (item: string) => T | undefined,
): T[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((item) => item.trim());
  return items.map((item) => {
    const parsed = item === '' ? undefined : parse(item);
    if (parsed === undefined) throw new Error(`--${flag}: "${item}" is not allowed in "${value}"`);
    return parsed;
  });
}

/**
 * The string flags of a bench script by name. `--help` prints the usage and exits 0; an
 * unknown flag throws.
 */
export function stringFlags<K extends string>(
  argv: readonly string[],
  names: readonly K[],
  usage: string,
): Partial<Record<K, string>> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  return values as Partial<Record<K, string>>;
}

/** A bench script's options from its arguments; a bad flag prints the problem and the usage and exits 2. */
export function optionsOrExit<T>(parse: (argv: readonly string[]) => T, usage: string): T {
  try {
    return parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
    process.exit(2);
  }
}

/** What uptime shows: 1, 5 and 15 minute load averages. */
export const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
