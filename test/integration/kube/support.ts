// What the src/kube integration tests share: a cluster (KUBECONFIG_TEST's, or a local
// control plane of their own), typed clients on it, a namespace per test file, the CRDs,
// and polling helpers. Setup goes through client-node too, never kubectl.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

import {
  ApiextensionsV1Api,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1Namespace,
  type V1Pod,
} from '@kubernetes/client-node';
import { parse } from 'yaml';

import { loadKubeConfig, makeKubeClients, type KubeClients } from '../../../src/kube/client.ts';
import type { Plain } from '../../../src/kube/json.ts';
import { REPO_ROOT } from '../../cluster/paths.ts';
import { selectTestCluster } from '../../cluster/select.ts';

export interface KubeTestEnv {
  readonly kc: KubeConfig;
  readonly clients: KubeClients;
  /** A namespace made for this test file, deleted afterwards. */
  readonly namespace: string;
  /** Names of the cluster's nodes. */
  readonly nodeNames: readonly string[];
}

/** Starts (or reuses) a cluster for one test file; everything it made is removed in `t.after`. */
export async function kubeTestEnv(t: TestContext, name: string): Promise<KubeTestEnv> {
  const cluster = await selectTestCluster({ nodes: 2, name });
  const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfigPath });
  const clients = makeKubeClients(kc);
  const namespace = `kube-${name}-${process.pid}`;
  const body: Plain<V1Namespace> = { metadata: { name: namespace } };
  await clients.core.createNamespace({ body });
  t.after(async () => {
    await clients.core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await cluster.stop();
  });
  await eventually('the default ServiceAccount', async () => {
    try {
      await clients.core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    } catch {
      return false;
    }
  });
  const nodes = await clients.core.listNode();
  return {
    kc,
    clients,
    namespace,
    nodeNames: nodes.items.map((node) => node.metadata?.name ?? ''),
  };
}

/** Polls until `check` holds, or fails the test after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const CRD_FILES = [
  'placement.dev_placementpolicies.yaml',
  'placement.dev_clusterplacementpolicies.yaml',
];

/** Installs crds/ unless present, and waits until both kinds are served. */
export async function installCrds(env: KubeTestEnv): Promise<void> {
  const api = env.kc.makeApiClient(ApiextensionsV1Api);
  for (const file of CRD_FILES) {
    // The YAML is the API server's own input; client-node sends it on as it is.
    const body = parse(
      readFileSync(join(REPO_ROOT, 'crds', file), 'utf8'),
    ) as V1CustomResourceDefinition;
    try {
      await api.createCustomResourceDefinition({ body });
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
  await eventually(
    'the placement.dev CRDs to be served',
    async () => {
      try {
        await env.clients.customObjects.listClusterCustomObject({
          group: 'placement.dev',
          version: 'v1alpha1',
          plural: 'clusterplacementpolicies',
        });
        await env.clients.customObjects.listNamespacedCustomObject({
          group: 'placement.dev',
          version: 'v1alpha1',
          namespace: env.namespace,
          plural: 'placementpolicies',
        });
        return true;
      } catch {
        return false;
      }
    },
    60_000,
  );
}

/** A bare pod, bound to `nodeName` when given (kwok runs it), with a tiny container. */
export function podManifest(
  name: string,
  labels: Record<string, string>,
  nodeName?: string,
): V1Pod {
  const pod: Plain<V1Pod> = {
    metadata: { name, labels },
    spec: {
      ...(nodeName === undefined ? {} : { nodeName }),
      containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
      terminationGracePeriodSeconds: 0,
    },
  };
  return pod;
}
