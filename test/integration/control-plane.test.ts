// Not a clusterTest: it starts a control plane of its own, the thing under test.
// Proves the local control plane is a real one: the pinned apiserver answers,
// and the real kube-scheduler enforces required pod anti-affinity on fake
// (kwok) nodes: 3 replicas that refuse to share a host fit on only 2 nodes.
//
//   hack/node --test test/integration/control-plane.test.ts
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { formatMiB, startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';
import { readVersions } from '../cluster/paths.ts';
import { ensureBinaries } from '../cluster/select.ts';

const APP = 'checkout-redis';
const SETTLE_TIMEOUT_MS = 90_000;

interface PodList {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: { phase?: string };
  }[];
}

interface EventList {
  items: { reason: string; message: string }[];
}

void test('local control plane', { timeout: 300_000 }, async (t) => {
  const cluster = await startLocalCluster({ nodes: 2, binDir: await ensureBinaries() });
  t.after(() => cluster.stop());
  t.diagnostic(
    `startup ${(cluster.startupMs / 1000).toFixed(1)} s, RSS ${formatMiB(cluster.rssBytes())}`,
  );

  await t.test('serves the pinned Kubernetes version', async () => {
    const version = JSON.parse(await cluster.kubectl('version', '-o', 'json')) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    const pinned = readVersions().kubernetes;
    assert.equal(version.serverVersion.gitVersion, pinned);
    assert.equal(version.clientVersion.gitVersion, pinned);
  });

  await t.test('required anti-affinity leaves the third replica Pending', async () => {
    const manifest = join(cluster.workDir, `${APP}.json`);
    await writeFile(manifest, JSON.stringify(antiAffinityDeployment(3)));
    await cluster.kubectl('apply', '-f', manifest);

    const { running, pending } = await settle(cluster);
    assert.equal(running.length, 2, 'two replicas Running');
    assert.equal(new Set(running.map((pod) => pod.spec.nodeName)).size, 2, 'on distinct nodes');
    assert.equal(pending.length, 1, 'one replica Pending');
    t.diagnostic(`RSS with the deployment running: ${formatMiB(cluster.rssBytes())}`);
  });
});

/** Waits until the rollout reaches its only possible end state: 2 Running, 1 Pending and reported. */
async function settle(cluster: LocalCluster): Promise<{
  running: PodList['items'];
  pending: PodList['items'];
}> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const pods = JSON.parse(
      await cluster.kubectl('get', 'pods', '-l', `app=${APP}`, '-o', 'json'),
    ) as PodList;
    const running = pods.items.filter((pod) => pod.status.phase === 'Running');
    const pending = pods.items.filter(
      (pod) => pod.status.phase === 'Pending' && pod.spec.nodeName === undefined,
    );
    const reported = pending.length === 1 && (await failedScheduling(cluster, pending));
    last = `${running.length} Running, ${pending.length} Pending, FailedScheduling: ${reported}`;
    if (running.length === 2 && pods.items.length === 3 && reported) return { running, pending };
    if (Date.now() > deadline) assert.fail(`not settled after ${SETTLE_TIMEOUT_MS} ms: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function failedScheduling(
  cluster: LocalCluster,
  pending: PodList['items'],
): Promise<boolean> {
  const name = pending[0]?.metadata.name ?? '';
  const events = JSON.parse(
    await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      `involvedObject.kind=Pod,involvedObject.name=${name},reason=FailedScheduling`,
      '-o',
      'json',
    ),
  ) as EventList;
  return events.items.some((event) => /didn't match pod anti-affinity rules/.test(event.message));
}

function antiAffinityDeployment(replicas: number) {
  const labels = { app: APP };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: APP, namespace: 'default', labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                { labelSelector: { matchLabels: labels }, topologyKey: 'kubernetes.io/hostname' },
              ],
            },
          },
          // Never pulled: kwok only pretends to run containers.
          containers: [{ name: 'redis', image: 'redis:7' }],
        },
      },
    },
  };
}
