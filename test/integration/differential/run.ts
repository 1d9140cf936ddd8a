// The machinery the differential tests share: the run's own tainted kwok nodes, waiting on a
// condition with a deadline, and removing a world's namespaces with their pods at once.
import { fakeNodeManifest } from '../../cluster/fake-node.ts';
import { readVersions } from '../../cluster/paths.ts';
import { randomBytes } from 'node:crypto';

import { HttpMethod, KubeApi, until as waitUntil } from './kube.ts';
import { deletePodNow, type PodJson } from './verdicts.ts';

/** On the run's nodes and namespaces: how cleanup finds them. Pods carry no extra label. */
export const MARK = 'placement.dev/differential';
/** Keeps every other test's pods off the run's nodes. */
export const TAINT = { key: MARK, effect: 'NoSchedule' } as const;
/** Holds a pod in Terminating for the scenario about pods being deleted. */
export const HOLD = 'placement.dev/differential-hold';
export const POLL_MS = 50;
export const SETUP_TIMEOUT_MS = 60_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for a condition of the run's set-up, with the run's deadline and poll interval. */
export const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  waitUntil(what, probe, SETUP_TIMEOUT_MS, POLL_MS);

// ------------------------------------------------------------------ the run's nodes

export function nodeManifest(name: string, run: string): Record<string, unknown> {
  return fakeNodeManifest({
    name,
    labels: { [MARK]: run },
    taints: [{ ...TAINT, value: run }],
    capacity: { cpu: '16', memory: '64Gi', pods: '110' },
    kubeletVersion: readVersions().kubernetes,
  });
}

export interface NodeJson {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { taints?: { key: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

export async function createNodes(
  api: KubeApi,
  names: readonly string[],
  run: string,
): Promise<void> {
  for (const name of names) await api.ok(HttpMethod.POST, '/api/v1/nodes', nodeManifest(name, run));
  await until('the run’s nodes Ready, without the not-ready taint', async () => {
    const nodes = await Promise.all(names.map((n) => api.get<NodeJson>(`/api/v1/nodes/${n}`)));
    const ready = nodes.every(
      (n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
        !(n.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/')),
    );
    return ready ? true : undefined;
  });
}

export const tolerations = [{ key: TAINT.key, operator: 'Exists', effect: TAINT.effect }];
// kwok only pretends to run containers: the image is never pulled.
export const container = { name: 'c', image: 'registry.invalid/differential:1' };
export const containers = [container];

export const podPath = (namespace: string, name = ''): string =>
  `/api/v1/namespaces/${namespace}/pods${name === '' ? '' : `/${name}`}`;

/** Deletes every pod of the given namespaces at once, then the namespaces. */
export async function removeNamespaces(api: KubeApi, namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) {
    const res = await api.request(HttpMethod.GET, podPath(ns));
    if (res.status === 404) continue;
    const pods = (res.body as { items: PodJson[] }).items;
    await Promise.all(
      pods
        .filter((p) => (p.metadata.finalizers ?? []).length > 0)
        .map((p) =>
          api.request(
            HttpMethod.PATCH,
            podPath(ns, p.metadata.name),
            { metadata: { finalizers: null } },
            'application/merge-patch+json',
          ),
        ),
    );
    await Promise.all(pods.map((p) => deletePodNow(api, ns, p.metadata.name)));
    await api.request(HttpMethod.DELETE, `/api/v1/namespaces/${ns}`);
  }
}

/** A differential run: its API client, its own nodes, and the namespaces it made. */
export interface DifferentialRun {
  readonly api: KubeApi;
  /** Unique to the run: the prefix of its nodes and namespaces. */
  readonly run: string;
  readonly nodes: readonly string[];
  /** Namespaces to remove when the test ends: push each one as it is created. */
  readonly made: string[];
}

/**
 * Opens a run on the test cluster: `count` fresh nodes named `<prefix>-<hex>-<i>`, Ready,
 * removed with every namespace in `made` when the test ends.
 */
export async function openRun(
  t: { after: (f: () => Promise<void>) => void },
  kubeconfigPath: string,
  prefix: string,
  count: number,
): Promise<DifferentialRun> {
  const api = new KubeApi(kubeconfigPath);
  const run = `${prefix}-${randomBytes(2).toString('hex')}`;
  const nodes = Array.from({ length: count }, (_, i) => `${run}-${i}`);
  const made: string[] = [];
  t.after(async () => {
    await removeNamespaces(api, made);
    await Promise.all(nodes.map((n) => api.request(HttpMethod.DELETE, `/api/v1/nodes/${n}`)));
  });
  await createNodes(api, nodes, run);
  return { api, run, nodes, made };
}
