/**
 * How the commands read their arguments: the flags they share, spelled once (each command
 * spreads the ones it takes into its options), and one strict parse.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

import { errorMessage } from '../util/errors.ts';

/** `-o table|json` (checked by each command) and `-h`: every command takes them. */
export const OUTPUT_AND_HELP = {
  output: { type: 'string', short: 'o', default: 'table' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `--kubeconfig` and `--context`: the commands that may read the live cluster (snapshot-source.ts). */
export const KUBECONFIG_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const;

/**
 * Parses a command's arguments (strict: an unknown flag is an error); a string is the one-line
 * reason they cannot be parsed.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig, const P extends boolean>(
  args: readonly string[],
  options: O,
  allowPositionals: P,
) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (err) {
    return errorMessage(err);
  }
}

/**
 * How a command refuses its input: one line on stderr that names the command
 * (`kubectl-placement plan: ...`), and the command's bad-input exit status.
 */
export const refuser =
  (stderr: (text: string) => void, command: string, status: number) =>
  (message: string): number => {
    stderr(`${command}: ${message}\n`);
    return status;
  };
