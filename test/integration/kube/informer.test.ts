// Not a clusterTest: src/kube against the API server itself (kube/support.ts), no operator.
// The informer against a real API server: paginated list, watch, trimmed cache, and a
// real 410 (a watch from a resourceVersion older than the server's watch cache) that ends
// in a relist telling consumers exactly what changed while the watch was gone.
//
//   hack/node --test 'test/integration/kube/*.test.ts'
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PatchStrategy } from '@kubernetes/client-node';

import type { Node, Pod } from '../../../src/api/core.ts';
import { API_VERSION, GROUP, VERSION } from '../../../src/api/policy.ts';
import { requestOptions } from '../../../src/kube/client.ts';
import { createInformer, Informer } from '../../../src/kube/informer.ts';
import { kubeListWatch, type ListWatchSource } from '../../../src/kube/list-watch.ts';
import { collectionPath, NODES, PODS, policies } from '../../../src/kube/resources.ts';
import type { CachedPolicy } from '../../../src/kube/types.ts';
import { eventually, installCrds, kubeTestEnv, podManifest } from './support.ts';
import type { WatchEvent } from '../../../src/api/cluster.ts';

const ALLOWED = {
  pod: ['metadata', 'spec', 'status'],
  podMetadata: [
    'name',
    'namespace',
    'uid',
    'labels',
    'annotations',
    'ownerReferences',
    'deletionTimestamp',
    'resourceVersion',
  ],
  podSpec: ['nodeName', 'affinity', 'nodeSelector', 'tolerations', 'topologySpreadConstraints'],
  podStatus: ['phase'],
  node: ['metadata'],
  nodeMetadata: ['name', 'labels', 'resourceVersion'],
};

function assertOnly(object: object, allowed: readonly string[], what: string): void {
  const extra = Object.keys(object).filter((key) => !allowed.includes(key));
  assert.deepEqual(extra, [], `${what} keeps only ${allowed.join(', ')}`);
}

const names = (pods: readonly Pod[]): string[] => pods.map((p) => p.metadata.name).sort();
const describe = (e: WatchEvent<Pod>): string => `${e.type} ${e.object.metadata.name}`;

void test('informer on a real API server', { timeout: 300_000 }, async (t) => {
  const env = await kubeTestEnv(t, 'informer');
  const { core } = env.clients;
  const { namespace } = env;
  const node = env.nodeNames[0] ?? assert.fail('no node');

  await t.test('lists in pages, then watches; the cache holds trimmed pods only', async (t) => {
    for (let i = 0; i < 5; i++) {
      await core.createNamespacedPod({
        namespace,
        body: podManifest(`listed-${i}`, { app: 'listed' }, node),
      });
    }
    const events: WatchEvent<Pod>[] = [];
    // A page size of 2 makes the five pods come in three pages with continue tokens.
    const informer = createInformer(env.kc, PODS, {
      namespace,
      pageSize: 2,
      onEvent: (e) => events.push(e),
    });
    t.after(() => informer.stop());
    await informer.start();

    assert.deepEqual(names(informer.list()), [
      'listed-0',
      'listed-1',
      'listed-2',
      'listed-3',
      'listed-4',
    ]);
    for (const pod of informer.list()) {
      assertOnly(pod, ALLOWED.pod, 'pod');
      assertOnly(pod.metadata, ALLOWED.podMetadata, 'pod.metadata');
      assertOnly(pod.spec, ALLOWED.podSpec, 'pod.spec');
      assertOnly(pod.status ?? {}, ALLOWED.podStatus, 'pod.status');
      assert.equal(pod.spec.nodeName, node);
      assert.equal(pod.metadata.labels?.['app'], 'listed');
    }
    assert.equal(events.filter((e) => e.type === 'added').length, 5);

    events.length = 0;
    await core.createNamespacedPod({
      namespace,
      body: podManifest('watched', { app: 'watched' }, node),
    });
    await eventually('the new pod', () => informer.get(`${namespace}/watched`) !== undefined);
    await core.patchNamespacedPod({
      namespace,
      name: 'watched',
      body: [{ op: 'add', path: '/metadata/labels/tier', value: 'front' }],
    });
    await eventually(
      'the label change',
      () => informer.get(`${namespace}/watched`)?.metadata.labels?.['tier'] === 'front',
    );
    await core.deleteNamespacedPod({ namespace, name: 'watched', gracePeriodSeconds: 0 });
    await eventually('the deletion', () => informer.get(`${namespace}/watched`) === undefined);
    // KWOK marks the listed pods Running meanwhile: those updates are real, but not this pod's.
    const watched = events.filter((e) => e.object.metadata.name === 'watched');
    const seen = watched.map(describe);
    assert.equal(seen[0], 'added watched');
    assert.ok(seen.includes('updated watched'));
    assert.equal(seen.at(-1), 'deleted watched');
    const updated = watched.find(
      (e) => e.type === 'updated' && e.object.metadata.labels?.['tier'] === 'front',
    );
    assert.ok(
      updated?.type === 'updated' && updated.old?.metadata.labels?.['tier'] === undefined,
      'update carries the old object',
    );
    assert.equal(informer.stats.lists, 1, 'no relist');
  });

  await t.test('nodes: name and labels only, label changes arrive', async (t) => {
    const informer = createInformer(env.kc, NODES);
    t.after(() => informer.stop());
    const changes: WatchEvent<Node>[] = [];
    informer.addHandler((e) => changes.push(e));
    await informer.start();
    for (const name of env.nodeNames) {
      const cached = informer.get(name) ?? assert.fail(`node ${name} not cached`);
      assertOnly(cached, ALLOWED.node, 'node');
      assertOnly(cached.metadata, ALLOWED.nodeMetadata, 'node.metadata');
      assert.ok(cached.metadata.labels?.['topology.kubernetes.io/zone'], 'zone label kept');
    }
    const label = `informer-test-${process.pid}`;
    await env.clients.core.patchNode({
      name: node,
      body: [{ op: 'add', path: `/metadata/labels/${label}`, value: 'yes' }],
    });
    t.after(() =>
      env.clients.core.patchNode({
        name: node,
        body: [{ op: 'remove', path: `/metadata/labels/${label}` }],
      }),
    );
    await eventually(
      'the node label',
      () => informer.get(node)?.metadata.labels?.[label] === 'yes',
    );
    assert.ok(changes.some((e) => e.type === 'updated' && e.object.metadata.name === node));
  });

  await t.test('a quiet watch ends at its timeout and resumes at once', async (t) => {
    const delays: number[] = [];
    // Watching a label nothing has: no event arrives, and no bookmark either unless some
    // other pod changed (the server only bookmarks past our resourceVersion).
    const informer = createInformer(env.kc, PODS, {
      namespace,
      labelSelector: 'app=nothing',
      watchTimeoutSeconds: 3,
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    t.after(() => informer.stop());
    await informer.start();
    await eventually('three watches', () => informer.stats.watches >= 3, 20_000);
    assert.deepEqual(delays, [], 'no backoff between watches');
    assert.equal(informer.stats.failures, 0);
    assert.equal(informer.stats.lists, 1);
    await core.createNamespacedPod({
      namespace,
      body: podManifest('quiet', { app: 'nothing' }, node),
    });
    await eventually(
      'a pod after the quiet spell',
      () => informer.get(`${namespace}/quiet`) !== undefined,
    );
  });

  await t.test('410 Gone: relists and emits what changed while disconnected', async (t) => {
    // A custom resource's watch cache starts when its CRD is installed, so resourceVersion
    // 1 is older than anything it holds and the server answers 410 Expired. (The pod watch
    // cache starts with the API server, at a resourceVersion that small, and accepts it.)
    await installCrds(env);
    const { customObjects } = env.clients;
    const coordinates = { group: GROUP, version: VERSION, namespace, plural: 'placementpolicies' };
    const createPolicy = (name: string) =>
      customObjects.createNamespacedCustomObject({
        ...coordinates,
        body: {
          apiVersion: API_VERSION,
          kind: 'PlacementPolicy',
          metadata: { name },
          spec: { mode: 'Audit' },
        },
      });
    for (const name of ['keep', 'change', 'remove']) await createPolicy(name);

    // The real list/watch, except that the test can drop the connection, hold the
    // informer in its backoff while it changes the cluster, then make the next watch
    // start from resourceVersion 1, which the server has never had: a real 410.
    const resource = policies('PlacementPolicy');
    const real = kubeListWatch(env.kc, collectionPath(resource, namespace));
    let dropConnection: (() => void) | undefined;
    let staleNext = false;
    const source: ListWatchSource = {
      list: (query, signal) => real.list(query, signal),
      async watch(query, onEvent, signal) {
        const connection = new AbortController();
        const onAbort = (): void => {
          connection.abort();
        };
        signal.addEventListener('abort', onAbort);
        dropConnection = () => {
          connection.abort();
        };
        const resourceVersion = staleNext ? '1' : query.resourceVersion;
        staleNext = false;
        const end = await real.watch({ ...query, resourceVersion }, onEvent, connection.signal);
        signal.removeEventListener('abort', onAbort);
        return connection.signal.aborted && !signal.aborted
          ? { kind: 'failed', message: 'dropped by the test' }
          : end;
      },
    };
    let releaseBackoff: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      releaseBackoff = resolve;
    });
    let enteredBackoff: (() => void) | undefined;
    const inBackoff = new Promise<void>((resolve) => {
      enteredBackoff = resolve;
    });
    const events: WatchEvent<CachedPolicy>[] = [];
    const informer = new Informer(resource, source, {
      onEvent: (e) => events.push(e),
      sleep: () => {
        enteredBackoff?.();
        return held;
      },
    });
    t.after(() => informer.stop());
    await informer.start();
    const policyNames = (): string[] =>
      informer
        .list()
        .map((p) => p.metadata.name)
        .sort();
    assert.deepEqual(policyNames(), ['change', 'keep', 'remove']);
    await eventually('the watch to be open', () => dropConnection !== undefined);

    events.length = 0;
    staleNext = true;
    dropConnection?.();
    await inBackoff;
    await customObjects.deleteNamespacedCustomObject({ ...coordinates, name: 'remove' });
    await customObjects.patchNamespacedCustomObject(
      { ...coordinates, name: 'change', body: { spec: { priority: 5 } } },
      requestOptions({ patch: PatchStrategy.MergePatch }),
    );
    await createPolicy('new');
    releaseBackoff?.();

    await eventually('the relist', () => informer.stats.lists === 2);
    assert.equal(informer.stats.expired, 1, 'the server answered 410');
    await eventually('the relist events', () => events.length === 3);
    assert.deepEqual(events.map((e) => `${e.type} ${e.object.metadata.name}`).sort(), [
      'added new',
      'deleted remove',
      'updated change',
    ]);
    assert.deepEqual(policyNames(), ['change', 'keep', 'new']);
    assert.equal(informer.get(`${namespace}/change`)?.spec.priority, 5);

    // And the watch resumed from the relist: a change after it still arrives.
    await customObjects.deleteNamespacedCustomObject({ ...coordinates, name: 'keep' });
    await eventually(
      'a deletion after the relist',
      () => informer.get(`${namespace}/keep`) === undefined,
    );
    assert.equal(informer.stats.expired, 1);
  });
});
