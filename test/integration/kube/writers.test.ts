// Not a clusterTest: src/kube against the API server itself (kube/support.ts), no operator.
// Writes on a real API server: the affinity merge patch for each workload kind (owner's
// terms kept, field manager recorded, stale resourceVersion refused, revert restoring the
// template exactly), policy status and finalizers, eviction through PodDisruptionBudgets,
// and events.
//
//   hack/node --test 'test/integration/kube/*.test.ts'
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PatchStrategy, PolicyV1Api, type V1PodDisruptionBudget } from '@kubernetes/client-node';

import type { Affinity } from '../../../src/api/core.ts';
import { API_VERSION, GROUP, VERSION, type WorkloadKind } from '../../../src/api/policy.ts';
import { getJson, requestOptions } from '../../../src/kube/client.ts';
import { KubeEventRecorder } from '../../../src/kube/events.ts';
import { createInformer } from '../../../src/kube/informer.ts';
import { record, type Plain } from '../../../src/kube/json.ts';
import { policies, WORKLOAD_API, workloads } from '../../../src/kube/resources.ts';
import { podTemplateOf, workloadTransform } from '../../../src/kube/transforms.ts';
import type { CachedPolicy } from '../../../src/kube/types.ts';
import {
  KubeEvictor,
  KubePolicyStatusWriter,
  KubeWorkloadWriter,
} from '../../../src/kube/writers.ts';
import { eventually, installCrds, kubeTestEnv, podManifest, type KubeTestEnv } from './support.ts';
import { POLICY_FINALIZER, type Workload, type WriteResult } from '../../../src/api/cluster.ts';

const OWNER: Affinity = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
      ],
    },
  },
};
const INJECTED: Affinity = {
  podAntiAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      {
        weight: 50,
        podAffinityTerm: {
          labelSelector: { matchLabels: { app: 'web' } },
          topologyKey: 'kubernetes.io/hostname',
        },
      },
    ],
  },
};
const APPLIED = 'placement.dev/applied';

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: {
    affinity: OWNER,
    containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
  },
});

/** A manifest of each kind, its pod template carrying the owner's affinity. */
function manifest(kind: WorkloadKind, name: string): Record<string, unknown> {
  const selector = { matchLabels: { app: name } };
  const apiVersion = kind === 'CronJob' ? 'batch/v1' : 'apps/v1';
  const spec =
    kind === 'CronJob'
      ? {
          schedule: '0 0 1 1 *',
          suspend: true,
          jobTemplate: {
            spec: {
              template: {
                ...template(name),
                spec: { ...template(name).spec, restartPolicy: 'Never' },
              },
            },
          },
        }
      : kind === 'DaemonSet'
        ? { selector, template: template(name) }
        : kind === 'StatefulSet'
          ? { replicas: 1, serviceName: name, selector, template: template(name) }
          : { replicas: 1, selector, template: template(name) };
  return { apiVersion, kind, metadata: { name }, spec };
}

function pathOf(kind: WorkloadKind, namespace: string, name = ''): string {
  const api = WORKLOAD_API[kind];
  return `${api.groupVersion}/namespaces/${namespace}/${api.plural}${name === '' ? '' : `/${name}`}`;
}

/** Creates any workload kind through the generic custom-objects client (it only builds the path). */
async function createWorkload(env: KubeTestEnv, kind: WorkloadKind, name: string): Promise<void> {
  const [group = '', version = ''] = WORKLOAD_API[kind].groupVersion
    .replace('/apis/', '')
    .split('/');
  await env.clients.customObjects.createNamespacedCustomObject({
    group,
    version,
    namespace: env.namespace,
    plural: WORKLOAD_API[kind].plural,
    body: manifest(kind, name),
  });
}

const read = (env: KubeTestEnv, path: string): Promise<Record<string, unknown>> =>
  getJson(env.kc, path, {}, AbortSignal.timeout(10_000)).then((body) => ({ ...record(body) }));

const templateOf = (kind: WorkloadKind, object: Record<string, unknown>) =>
  podTemplateOf(kind, record(object['spec']));
const metadataOf = (object: Record<string, unknown>) => record(object['metadata']);

void test('writers on a real API server', { timeout: 300_000 }, async (t) => {
  const env = await kubeTestEnv(t, 'writers');
  const { namespace } = env;
  const writer = new KubeWorkloadWriter(env.clients);

  const KINDS: readonly WorkloadKind[] = [
    'Deployment',
    'StatefulSet',
    'ReplicaSet',
    'DaemonSet',
    'CronJob',
  ];
  /**
   * Reads the workload and writes, again after a conflict, as a reconciler would: the
   * workload controllers write status all the while, each time with a new resourceVersion.
   */
  async function writeFresh(
    kind: WorkloadKind,
    name: string,
    affinity: Affinity | undefined,
    annotation?: string,
  ) {
    // A controller updating the status (a DaemonSet's, right after its template changed)
    // can win several times in a row on a loaded machine: back off as a reconcile would.
    for (let attempt = 0; ; attempt++) {
      const workload = workloadTransform(kind)(await read(env, pathOf(kind, namespace, name)));
      const result = await writer.writeAffinity({
        workload: workload ?? assert.fail('transform'),
        affinity,
        appliedAnnotation: annotation,
      });
      if (result.kind !== 'conflict' || attempt === 20) return result;
      await new Promise((resolve) => setTimeout(resolve, 50 * Math.min(attempt + 1, 10)));
    }
  }

  for (const kind of KINDS) {
    await t.test(
      `${kind}: adds terms beside the owner's, reverts to the owner's template exactly`,
      async () => {
        const name = `w-${kind.toLowerCase()}`;
        await createWorkload(env, kind, name);
        const original = await read(env, pathOf(kind, namespace, name));
        const stale = workloadTransform(kind)(original) ?? assert.fail('transform');

        const applied = await writeFresh(
          kind,
          name,
          { ...OWNER, ...INJECTED },
          '{"policies":["shop/spread"]}',
        );
        assert.equal(applied.kind, 'written', JSON.stringify(applied));
        const after = await read(env, pathOf(kind, namespace, name));
        assert.deepEqual(record(templateOf(kind, after)['spec'])['affinity'], {
          ...OWNER,
          ...INJECTED,
        });
        assert.equal(
          record(metadataOf(after)['annotations'])[APPLIED],
          '{"policies":["shop/spread"]}',
        );
        const managers = (
          metadataOf(after)['managedFields'] as { manager: string; operation: string }[]
        ).map((m) => `${m.manager}/${m.operation}`);
        assert.ok(managers.includes('placement-operator/Update'), managers.join(', '));

        // Read before the write: its resourceVersion is stale.
        const refused = await writer.writeAffinity({
          workload: stale,
          affinity: INJECTED,
          appliedAnnotation: 'x',
        });
        assert.deepEqual(refused, { kind: 'conflict' });

        const current = workloadTransform(kind)(after) ?? assert.fail('transform');
        const unchanged = await writer.writeAffinity({
          workload: current,
          affinity: { ...INJECTED, ...OWNER },
          appliedAnnotation: '{"policies":["shop/spread"]}',
        });
        assert.deepEqual(
          unchanged,
          { kind: 'written', resourceVersion: current.resourceVersion },
          'no request',
        );

        const reverted = await writeFresh(kind, name, OWNER, undefined);
        assert.equal(reverted.kind, 'written', JSON.stringify(reverted));
        const back = await read(env, pathOf(kind, namespace, name));
        assert.deepEqual(
          templateOf(kind, back),
          templateOf(kind, original),
          'template as the owner wrote it',
        );
        assert.equal(record(metadataOf(back)['annotations'])[APPLIED], undefined);
      },
    );
  }

  await t.test(
    'the informer cache feeds the writer: written resourceVersion arrives',
    async (t) => {
      const informer = createInformer(env.kc, workloads('Deployment'), { namespace });
      t.after(() => informer.stop());
      await informer.start();
      const key = `Deployment/${namespace}/w-deployment`;
      let result: WriteResult = { kind: 'conflict' };
      // On a conflict the cache catches up with the controller's status write; try again.
      for (let attempt = 0; attempt < 5 && result.kind === 'conflict'; attempt++) {
        const cached = informer.get(key) ?? assert.fail('not cached');
        result = await writer.writeAffinity({
          workload: cached,
          affinity: INJECTED,
          appliedAnnotation: 'a',
        });
        if (result.kind === 'conflict')
          await eventually(
            `the cache past resourceVersion ${cached.resourceVersion}`,
            () => informer.get(key)?.resourceVersion !== cached.resourceVersion,
            10_000,
          );
      }
      assert.equal(result.kind, 'written', JSON.stringify(result));
      await eventually(
        'the write in the cache',
        () => informer.get(key)?.annotations[APPLIED] === 'a',
      );
      assert.deepEqual(informer.get(key)?.affinity, INJECTED);
    },
  );

  await t.test('a workload that is gone, and a write the API refuses', async () => {
    const ghost: Workload = {
      kind: 'Deployment',
      namespace,
      name: 'does-not-exist',
      uid: '',
      resourceVersion: '1',
      generation: 1,
      annotations: {},
      ownerReferences: [],
      selector: undefined,
      templateLabels: {},
      affinity: undefined,
      rolledOut: true,
      replicas: 1,
    };
    assert.deepEqual(
      await writer.writeAffinity({ workload: ghost, affinity: INJECTED, appliedAnnotation: 'a' }),
      {
        kind: 'gone',
      },
    );

    const current = workloadTransform('StatefulSet')(
      await read(env, pathOf('StatefulSet', namespace, 'w-statefulset')),
    );
    const invalid = await writer.writeAffinity({
      workload: current ?? assert.fail('transform'),
      affinity: {
        podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: '' }] },
      },
      appliedAnnotation: 'a',
    });
    if (invalid.kind !== 'failed') assert.fail(JSON.stringify(invalid));
    assert.equal(invalid.retryable, false);
    assert.match(invalid.message, /StatefulSet .*w-statefulset: HTTP 422: .*topologyKey/);
  });

  await t.test('policy finalizers and status, namespaced and cluster-scoped', async (t) => {
    await installCrds(env);
    const statusWriter = new KubePolicyStatusWriter(env.clients);
    const { customObjects } = env.clients;
    const ppCoordinates = {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'placementpolicies',
    };
    const cppCoordinates = { group: GROUP, version: VERSION, plural: 'clusterplacementpolicies' };
    const cppName = `writers-${process.pid}`;
    const body = (kind: string, name: string) => ({
      apiVersion: API_VERSION,
      kind,
      metadata: { name },
      spec: { mode: 'Audit' },
    });
    await customObjects.createNamespacedCustomObject({
      ...ppCoordinates,
      body: body('PlacementPolicy', 'status'),
    });
    await customObjects.createClusterCustomObject({
      ...cppCoordinates,
      body: body('ClusterPlacementPolicy', cppName),
    });
    const removeCluster = async (): Promise<void> => {
      const merge = requestOptions({ patch: PatchStrategy.MergePatch });
      await customObjects
        .patchClusterCustomObject(
          { ...cppCoordinates, name: cppName, body: { metadata: { finalizers: null } } },
          merge,
        )
        .catch(() => undefined);
      await customObjects
        .deleteClusterCustomObject({ ...cppCoordinates, name: cppName })
        .catch(() => undefined);
    };
    t.after(removeCluster);

    const namespaced = createInformer(env.kc, policies('PlacementPolicy'), { namespace });
    const cluster = createInformer(env.kc, policies('ClusterPlacementPolicy'));
    t.after(() => Promise.all([namespaced.stop(), cluster.stop()]));
    await Promise.all([namespaced.start(), cluster.start()]);

    const status1 = {
      observedGeneration: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          reason: 'Reconciled',
          message: 'all targets carry the terms',
        },
      ],
      matched: 2,
      enforced: 1,
      pending: 1,
      violations: 3,
    };
    const { violations: _dropped, ...status2 } = { ...status1, enforced: 2, pending: 0 };

    for (const [informer, key] of [
      [namespaced, `${namespace}/status`],
      [cluster, cppName],
    ] as const) {
      const current = (): CachedPolicy => informer.get(key) ?? assert.fail(`${key} not cached`);
      const settle = async (result: { kind: string; resourceVersion?: string }) => {
        assert.equal(result.kind, 'written', JSON.stringify(result));
        await eventually(
          `${key} at ${result.resourceVersion ?? ''}`,
          () => current().metadata.resourceVersion === result.resourceVersion,
        );
      };

      const before = current();
      await settle(await statusWriter.setFinalizer(before, true));
      assert.deepEqual(current().metadata.finalizers, [POLICY_FINALIZER]);
      const again = await statusWriter.setFinalizer(current(), true);
      assert.deepEqual(
        again,
        { kind: 'written', resourceVersion: current().metadata.resourceVersion },
        'no request',
      );

      assert.deepEqual(
        await statusWriter.writeStatus(before, status1),
        { kind: 'conflict' },
        'stale status write',
      );
      await settle(await statusWriter.writeStatus(current(), status1));
      assert.deepEqual(current().status, status1);
      // The new status leaves out `violations`: the diff removes it.
      await settle(await statusWriter.writeStatus(current(), status2));
      assert.deepEqual(current().status, status2);
      assert.equal(current().spec.mode, 'Audit', 'a status write leaves spec alone');

      assert.deepEqual(
        await statusWriter.setFinalizer(before, true),
        { kind: 'conflict' },
        'stale finalizer write',
      );
    }

    // Deleting waits for the finalizer; removing it lets the policy go.
    await customObjects.deleteNamespacedCustomObject({ ...ppCoordinates, name: 'status' });
    await eventually(
      'deletionTimestamp',
      () => namespaced.get(`${namespace}/status`)?.metadata.deletionTimestamp !== undefined,
    );
    const deleting = namespaced.get(`${namespace}/status`) ?? assert.fail('gone too early');
    const removed = await statusWriter.setFinalizer(deleting, false);
    assert.equal(removed.kind, 'written');
    await eventually('the policy to go', () => namespaced.get(`${namespace}/status`) === undefined);
    // Its finalizer still in the (old) copy: the write is attempted, and finds nothing.
    assert.deepEqual(await statusWriter.setFinalizer(deleting, false), { kind: 'gone' });
  });

  await t.test('eviction: dry run, blocked by a PodDisruptionBudget, evicted, gone', async () => {
    const { core } = env.clients;
    const evictor = new KubeEvictor(env.clients);
    const node = env.nodeNames[0] ?? assert.fail('no node');
    const pod = await core.createNamespacedPod({
      namespace,
      body: podManifest('evict-me', { app: 'evict' }, node),
    });
    const uid = pod.metadata?.uid ?? assert.fail('no uid');
    await eventually('the pod to be Ready', async () => {
      const current = await core.readNamespacedPod({ namespace, name: 'evict-me' });
      return (
        current.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
      );
    });

    assert.deepEqual(await evictor.evict(namespace, 'evict-me', true), { kind: 'evicted' });
    const still = await core.readNamespacedPod({ namespace, name: 'evict-me' });
    assert.equal(still.metadata?.deletionTimestamp, undefined, 'a dry run deletes nothing');

    const policyApi = env.kc.makeApiClient(PolicyV1Api);
    const budget: Plain<V1PodDisruptionBudget> = {
      metadata: { name: 'evict' },
      spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'evict' } } },
    };
    await policyApi.createNamespacedPodDisruptionBudget({ namespace, body: budget });
    await eventually('the budget to count the pod', async () => {
      const pdb = await read(
        env,
        `/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/evict`,
      );
      const status = record(pdb['status']);
      return (
        status['currentHealthy'] === 1 &&
        status['observedGeneration'] === metadataOf(pdb)['generation']
      );
    });
    const blocked = await evictor.evict(namespace, 'evict-me', false, uid);
    if (blocked.kind !== 'blocked') assert.fail(JSON.stringify(blocked));
    assert.match(blocked.message, /disruption budget/);

    await policyApi.deleteNamespacedPodDisruptionBudget({ namespace, name: 'evict' });
    assert.deepEqual(
      await evictor.evict(namespace, 'evict-me', false, 'some-other-uid'),
      { kind: 'gone' },
      'uid precondition',
    );
    assert.deepEqual(await evictor.evict(namespace, 'evict-me', false, uid), { kind: 'evicted' });
    await eventually('the pod to go', async () => {
      const pods = await core.listNamespacedPod({
        namespace,
        fieldSelector: 'metadata.name=evict-me',
      });
      return pods.items.length === 0;
    });
    assert.deepEqual(await evictor.evict(namespace, 'evict-me', false), { kind: 'gone' });
  });

  await t.test(
    'events: written once per identical event unless asked otherwise, cluster-scoped ones in default',
    async () => {
      const recorder = new KubeEventRecorder(env.clients, { reportingInstance: 'writers-test' });
      const target = { kind: 'Deployment', apiVersion: 'apps/v1', namespace, name: 'w-deployment' };
      recorder.record(target, 'Warning', 'PlacementViolated', 'pod w-1 shares a node with w-2');
      recorder.record(target, 'Warning', 'PlacementViolated', 'pod w-1 shares a node with w-2');
      recorder.record(target, 'Normal', 'AffinityApplied', 'added 1 term');
      // A caller that records only changes of state asks for every one to be written.
      const again = { deduplicate: false };
      recorder.record(target, 'Warning', 'PlacementViolation', 'w-1 breaks a rule', again);
      recorder.record(target, 'Warning', 'PlacementViolation', 'w-1 breaks a rule', again);
      const clusterTarget = {
        kind: 'ClusterPlacementPolicy',
        apiVersion: API_VERSION,
        name: `events-${process.pid}`,
      };
      recorder.record(clusterTarget, 'Normal', 'Reconciled', 'ok');
      // A namespace that does not exist: logged, never thrown.
      recorder.record({ ...target, namespace: 'no-such-namespace' }, 'Normal', 'X', 'y');
      await recorder.flush();

      const listed = await read(env, `/apis/events.k8s.io/v1/namespaces/${namespace}/events`);
      const ours = (listed['items'] as Record<string, unknown>[]).filter(
        (e) => e['reportingController'] === 'placement-operator',
      );
      assert.deepEqual(
        ours.map((e) => `${String(e['type'])} ${String(e['reason'])}: ${String(e['note'])}`).sort(),
        [
          'Normal AffinityApplied: added 1 term',
          'Warning PlacementViolated: pod w-1 shares a node with w-2',
          'Warning PlacementViolation: w-1 breaks a rule',
          'Warning PlacementViolation: w-1 breaks a rule',
        ],
      );
      for (const event of ours) {
        assert.equal(event['reportingInstance'], 'writers-test');
        assert.equal(event['action'], 'Reconcile');
        assert.deepEqual(record(event['regarding'])['name'], 'w-deployment');
      }
      const inDefault = await read(env, '/apis/events.k8s.io/v1/namespaces/default/events');
      assert.ok(
        (inDefault['items'] as Record<string, unknown>[]).some(
          (e) => record(e['regarding'])['name'] === clusterTarget.name,
        ),
      );
    },
  );
});
