/**
 * Where `plan` and `why` take the cluster from: a file (a List as `audit` reads), or the live
 * cluster through a kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`;
 * `--context`): one GET of every collection placement depends on, written nowhere.
 */
import type { ClusterSnapshot } from '../engine/index.ts';
import { loadKubeConfig, StartupError } from '../kube/client.ts';
import { apiFailure } from '../kube/failure.ts';
import { readClusterItems } from '../kube/cluster-read.ts';
import { errorMessage } from '../util/errors.ts';
import { InputError, parseList, snapshotOf } from './input.ts';

export interface KubeconfigFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

/**
 * Reads the cluster the flags and `env` name. Throws StartupError for a kubeconfig that cannot
 * be used, InputError for a cluster that cannot be read or an object the engine cannot take.
 */
export async function readLiveCluster(
  flags: KubeconfigFlags,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ClusterSnapshot> {
  const fromFlag = flags.kubeconfig;
  const fromEnv = env['KUBECONFIG'];
  const kubeconfig = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
  const kc = loadKubeConfig({
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    ...(kubeconfig === undefined
      ? {}
      : { kubeconfigSource: fromFlag === undefined ? '$KUBECONFIG' : '--kubeconfig' }),
    ...(flags.context === undefined ? {} : { context: flags.context }),
  });
  const server = kc.getCurrentCluster()?.server ?? 'the cluster';
  let items: unknown[];
  try {
    items = await readClusterItems(kc, AbortSignal.timeout(120_000));
  } catch (err) {
    throw new InputError(`cannot read the cluster at ${server}: ${apiFailure(err).message}`);
  }
  return snapshotOf(items, server);
}

/** How a file is named in messages: `-` is standard input. */
export const inputLabel = (path: string): string => (path === '-' ? '<stdin>' : path);

/** The bytes (or text) of an input file, `-` for standard input; InputError naming it if unread. */
export function readInput(
  readFile: (path: string) => string | Uint8Array,
  path: string,
): string | Uint8Array {
  try {
    return readFile(path === '-' ? '/dev/stdin' : path);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    throw new InputError(
      `${inputLabel(path)}: ${code === 'ENOENT' ? 'no such file' : errorMessage(err)}`,
    );
  }
}

/**
 * The cluster from `file` when given, else from the live cluster (see readLiveCluster).
 * Throws InputError or StartupError.
 */
export async function clusterSnapshot(
  file: string | undefined,
  flags: KubeconfigFlags,
  io: {
    readonly readFile: (path: string) => string | Uint8Array;
    readonly env: Readonly<Record<string, string | undefined>>;
  },
): Promise<ClusterSnapshot> {
  if (file === undefined) return readLiveCluster(flags, io.env);
  return parseList(readInput(io.readFile, file), inputLabel(file));
}

/**
 * The one line to print for input that cannot be read or a kubeconfig that cannot be used
 * (InputError, StartupError); anything else is not the user's to fix and is thrown again.
 */
export function inputProblem(err: unknown): string {
  if (err instanceof InputError || err instanceof StartupError) return err.message;
  throw err;
}
