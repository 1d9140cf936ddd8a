/**
 * The cluster as the CLI reads it through a kubeconfig (`--kubeconfig`, else `$KUBECONFIG`,
 * else `~/.kube/config`; `--context`): one GET of every collection placement depends on,
 * written nowhere. `plan` and `why` read it so.
 */
import type { ClusterSnapshot } from '../engine/index.ts';
import { apiFailure, loadKubeConfig } from '../kube/client.ts';
import { readClusterItems } from '../kube/cluster-read.ts';
import { InputError, snapshotOf } from './input.ts';

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
