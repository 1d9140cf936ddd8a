// What Argo CD's `ignoreDifferences.managedFieldsManagers: [placement-operator]` can rely
// on, on a real API server (docs/gitops.md builds on each of these):
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/gitops-ownership.test.ts
//
// A workload is applied server-side as Argo CD would (field manager argocd-controller),
// then written the way src/kube/writers.ts writes (a JSON merge patch with field manager
// placement-operator). Pod affinity term lists are atomic, so the operator then owns the
// whole list it wrote into, the owner's own terms included. Argo CD re-applying the live
// value (RespectIgnoreDifferences=true) shares that ownership and changes nothing; Argo CD
// applying the Git manifest instead (no RespectIgnoreDifferences) drops the injected terms
// and rolls the pods.
import assert from 'node:assert/strict';

import { FIELD_MANAGER } from '../../src/api/cluster.ts';
import { clusterTest, HOSTNAME, REQ, ZONE, type Json } from './operator/support.ts';

const ARGO = 'argocd-controller';

interface Live {
  metadata: {
    generation: number;
    managedFields: { manager: string; operation: string; fieldsV1?: Record<string, Json> }[];
  };
  spec: { template: { spec: { affinity?: { podAntiAffinity?: Record<string, Json[]> } } } };
}

const term = (topologyKey: string): Json => ({
  labelSelector: { matchLabels: { app: 'web' } },
  topologyKey,
});

const deployment = (namespace: string, terms: Json[]): Json => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        affinity: { podAntiAffinity: { [REQ]: terms } },
        containers: [{ name: 'web', image: 'registry.example/web:1.0' }],
      },
    },
  },
});

/** The managers whose fieldsV1 include the anti-affinity term list. */
function listOwners(live: Live): string[] {
  return live.metadata.managedFields
    .filter((m) => {
      const spec = m.fieldsV1?.['f:spec'] as
        Record<string, Record<string, Record<string, Json>>> | undefined;
      const affinity = spec?.['f:template']?.['f:spec']?.['f:affinity'] as
        Record<string, Record<string, Json>> | undefined;
      return affinity?.['f:podAntiAffinity']?.[`f:${REQ}`] !== undefined;
    })
    .map((m) => m.manager)
    .sort();
}

clusterTest(
  'field ownership of injected affinity terms under Argo CD-style applies',
  { namespace: 'gitops' },
  async ({ t, c, ns: namespace }) => {
    const get = (): Promise<Live> =>
      c.json<Live>('get', 'deployment', 'web', '-n', namespace, '--show-managed-fields');
    const argoApply = (body: Json): Promise<string> =>
      c.apply(
        JSON.stringify(body),
        '--server-side',
        '--force-conflicts',
        `--field-manager=${ARGO}`,
      );
    const git = deployment(namespace, [term(HOSTNAME)]);

    await argoApply(git);
    assert.deepEqual(listOwners(await get()), [ARGO]);

    // As src/kube/writers.ts writes: a merge patch of the whole affinity, plus the record.
    await c.kubectl(
      'patch',
      'deployment',
      'web',
      '-n',
      namespace,
      '--type=merge',
      `--field-manager=${FIELD_MANAGER}`,
      '-p',
      JSON.stringify({
        metadata: { annotations: { 'placement.dev/applied': '{"test":1}' } },
        spec: {
          template: {
            spec: { affinity: { podAntiAffinity: { [REQ]: [term(HOSTNAME), term(ZONE)] } } },
          },
        },
      }),
    );
    const patched = await get();

    await t.test('the operator owns the whole (atomic) term list, the owner term included', () => {
      assert.deepEqual(listOwners(patched), [FIELD_MANAGER]);
      assert.equal(patched.spec.template.spec.affinity?.podAntiAffinity?.[REQ]?.length, 2);
    });

    await t.test(
      're-applying the live list (RespectIgnoreDifferences) shares ownership, no rollout',
      async () => {
        await argoApply(deployment(namespace, [term(HOSTNAME), term(ZONE)]));
        const live = await get();
        assert.deepEqual(listOwners(live), [ARGO, FIELD_MANAGER].sort());
        assert.equal(live.metadata.generation, patched.metadata.generation);
      },
    );

    await t.test(
      'applying the Git manifest instead drops the injected term and rolls the pods',
      async () => {
        await argoApply(git);
        const live = await get();
        assert.deepEqual(listOwners(live), [ARGO]);
        assert.equal(live.spec.template.spec.affinity?.podAntiAffinity?.[REQ]?.length, 1);
        assert.equal(live.metadata.generation, patched.metadata.generation + 1);
      },
    );
  },
);
