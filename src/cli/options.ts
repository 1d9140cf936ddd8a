/** Flags the commands share, spelled once: each command spreads the ones it takes into its parseArgs options. */

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
