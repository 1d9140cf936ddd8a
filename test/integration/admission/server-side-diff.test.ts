// Argo CD's Server-Side Diff against workloads that the operator's MutatingAdmissionPolicy
// and its reconciler wrote (docs/gitops.md). Argo CD is not run: what it does is done with
// kubectl the way its application controller does it (field manager argocd-controller, a
// server-side dry-run apply of the Git manifest for the diff, a server-side apply with
// forced conflicts for the sync), and the comparison follows gitops-engine's rules
// (./argocd-diff.ts), in both of its modes: the default, which takes admission mutations out
// of the predicted state, and IncludeMutationWebhook=true, which keeps them.
//
//   KUBECONFIG_TEST=... hack/node --test --test-global-setup=test/global-setup.ts \
//     test/integration/admission/server-side-diff.test.ts
import assert from 'node:assert/strict';

import { canonicalJson } from '../../../src/engine/canonical.ts';
import type { Cluster } from '../harness.ts';
import {
  APPLIED,
  clusterTest,
  condition,
  deferAdmissionPolicy,
  HOSTNAME,
  listOf,
  policy,
  policyRef,
  policyStatus,
  PREF,
  REQ,
  runOperator,
  waitEnforced,
  waitFor,
  workload,
  ZONE,
  type Json,
  type JsonObject,
  type Scope,
} from '../operator/support.ts';
import {
  ARGO_MANAGER,
  fieldsOf,
  ownersOf,
  serverSideDiff,
  type CompareMode,
  type Managed,
} from './argocd-diff.ts';

const MODES: readonly CompareMode[] = ['default', 'IncludeMutationWebhook'];
/** Another applier of the same workloads (a team's own tool, kubectl). */
const OTHER_MANAGER = 'team-tool';
const AFFINITY = ['f:spec', 'f:template', 'f:spec', 'f:affinity'];
const ANTI_PREF = [...AFFINITY, 'f:podAntiAffinity', `f:${PREF}`];
const NODE_PREF = [...AFFINITY, 'f:nodeAffinity', `f:${PREF}`];
const RECORD = ['f:metadata', 'f:annotations', `f:${APPLIED}`];

interface Live extends Managed {
  metadata: JsonObject & {
    generation: number;
    resourceVersion: string;
    uid: string;
    annotations?: Record<string, string>;
    managedFields?: Json;
  };
  spec: JsonObject & { template: { spec: { affinity?: Record<string, Record<string, Json[]>> } } };
}

/** The owner's own term: one pod per node, preferred. */
const ownerTerm = (weight: number): Json => ({
  weight,
  podAffinityTerm: { labelSelector: { matchLabels: { tier: 'web' } }, topologyKey: HOSTNAME },
});
/** The policy's terms: spread over zones (into the owner's list) and a preferred disk type. */
const policyAnti: JsonObject = {
  weight: 40,
  podAffinityTerm: { labelSelector: { matchLabels: { tier: 'web' } }, topologyKey: ZONE },
};
const policyNode: Json = {
  weight: 10,
  preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
};

/** The Git manifest of a Deployment: the owner's affinity only, never the policy's terms. */
const gitManifest = (ns: string, name: string, weight?: number, tier = 'web'): JsonObject =>
  workload('Deployment', ns, name, {
    labels: { app: name, tier },
    selector: { app: name },
    ...(weight === undefined
      ? {}
      : { affinity: { podAntiAffinity: { [PREF]: [ownerTerm(weight)] } } }),
  });

/** Argo CD's sync with ServerSideApply=true. */
const argoSync = (c: Cluster, m: JsonObject): Promise<string> =>
  c.apply(
    JSON.stringify(m),
    '--server-side',
    '--force-conflicts',
    `--field-manager=${ARGO_MANAGER}`,
  );

/** The predicted live state of Argo CD's Server-Side Diff: a dry-run apply of the Git manifest. */
async function dryRun(c: Cluster, m: JsonObject): Promise<Live> {
  const out = await c.apply(
    JSON.stringify(m),
    '--server-side',
    '--dry-run=server',
    '--force-conflicts',
    `--field-manager=${ARGO_MANAGER}`,
    // Argo CD's dry-run applier sends no field validation.
    '--validate=false',
    '--show-managed-fields',
    '-o',
    'json',
  );
  return JSON.parse(out) as Live;
}

/**
 * The API server picks up a regenerated MutatingAdmissionPolicy within seconds: wait until a
 * dry-run create of a Deployment of `tier` comes back with the policy's record entry.
 */
async function admissionInUse(
  c: Cluster,
  ns: string,
  name: string,
  generation: number,
  tier = 'web',
): Promise<string> {
  const ref = `"${policyRef(ns, name)}":${String(generation)}`;
  await waitFor(
    `the MutatingAdmissionPolicy with ${name} generation ${String(generation)} in use`,
    async () => {
      const probe = await dryRun(c, gitManifest(ns, `probe-${tier}`, undefined, tier));
      return probe.metadata.annotations?.[APPLIED]?.includes(ref) === true ? true : undefined;
    },
    120_000,
  );
  return ref;
}

/** The operator with a settle window; its admission policy taken out after the test. */
async function runAdmitting(
  c: Cluster,
  s: Scope,
  settle: string,
): Promise<Awaited<ReturnType<typeof runOperator>>> {
  const op = await runOperator(c, s, ['--policy-settle', settle]);
  deferAdmissionPolicy(c, s);
  return op;
}

const getLive = (c: Cluster, ns: string, name: string, kind = 'deployment'): Promise<Live> =>
  c.json<Live>('get', kind, name, '-n', ns, '--show-managed-fields');

/**
 * The live object and the dry-run answer for the same resourceVersion (controllers write
 * status in between; Argo CD compares with the live object of its cache).
 */
async function compareSnapshot(
  c: Cluster,
  ns: string,
  m: JsonObject,
): Promise<{ live: Live; predicted: Live }> {
  const name = (m['metadata'] as { name: string }).name;
  const kind = (m['kind'] as string).toLowerCase();
  return waitFor(`a quiet moment of ${kind} ${name} for the dry-run`, async () => {
    const live = await getLive(c, ns, name, kind);
    const predicted = await dryRun(c, m);
    const again = await getLive(c, ns, name, kind);
    return again.metadata.resourceVersion === live.metadata.resourceVersion
      ? { live, predicted }
      : undefined;
  });
}

const slotOf = (o: Live, group: string): Json[] =>
  o.spec.template.spec.affinity?.[group]?.[PREF] ?? [];

/** The ReplicaSets of a Deployment, once the Deployment controller has caught up with it. */
async function replicaSets(c: Cluster, ns: string, name: string): Promise<number> {
  return waitFor(`deployment ${name} observed by its controller`, async () => {
    const d = await c.json<{
      metadata: { generation: number };
      status?: { observedGeneration?: number };
    }>('get', 'deployment', name, '-n', ns);
    if (d.status?.observedGeneration !== d.metadata.generation) return undefined;
    const owned = (await listOf(c, 'replicasets', ns)).filter((rs) =>
      (rs.metadata as { ownerReferences?: { name: string }[] }).ownerReferences?.some(
        (o) => o.name === name,
      ),
    );
    return owned.length;
  });
}

clusterTest(
  "Argo CD's Server-Side Diff: Synced without ignoreDifferences, owner's edits sync and keep the policy's terms",
  { namespace: 'ssd' },
  async ({ t, c, s, ns }) => {
    const op = await runAdmitting(c, s, '0s');

    // A workload from Git that exists before the policy: the reconciler will rewrite it.
    const legacy = gitManifest(ns, 'legacy', 100);
    await argoSync(c, legacy);

    // The policy from Git as well (the placement-policies Application).
    const name = 'web-spread';
    const policyManifest = policy(ns, name, {
      targets: { selector: { matchLabels: { tier: 'web' } } },
      affinity: {
        podAntiAffinity: { [PREF]: [policyAnti] },
        nodeAffinity: { [PREF]: [policyNode] },
      },
    });
    await argoSync(c, policyManifest);
    await waitEnforced(c, ns, name, 1);
    const { status, generation } = await policyStatus(c, ns, name);
    assert.equal(condition(status, 'InjectedAtAdmission')?.status, 'True', JSON.stringify(status));
    await admissionInUse(c, ns, name, generation);

    await t.test('a workload created after the policy: Synced in both compare modes', async () => {
      const web = gitManifest(ns, 'web', 100);
      await argoSync(c, web);
      const { live, predicted } = await compareSnapshot(c, ns, web);
      assert.equal(live.metadata.generation, 1);
      assert.deepEqual(slotOf(live, 'podAntiAffinity'), [ownerTerm(100), policyAnti]);
      assert.deepEqual(slotOf(live, 'nodeAffinity'), [policyNode]);

      // How admission's changes show in managedFields: the list the manifest sets is the
      // applier's whole (atomic list); the list and the record admission added are nobody's.
      for (const o of [live, predicted]) {
        assert.deepEqual(ownersOf(o, ANTI_PREF), [ARGO_MANAGER]);
        assert.deepEqual(ownersOf(o, NODE_PREF), []);
        assert.deepEqual(ownersOf(o, RECORD), []);
      }
      for (const mode of MODES) {
        assert.deepEqual(serverSideDiff(predicted, live, mode), [], mode);
      }
      assert.equal(await replicaSets(c, ns, 'web'), 1);
    });

    await t.test(
      "the owner's edit in Git is the only difference, and syncs with the policy's terms kept",
      async () => {
        const edited = gitManifest(ns, 'web', 80);
        const { live, predicted } = await compareSnapshot(c, ns, edited);
        const edit = `/spec/template/spec/affinity/podAntiAffinity/${PREF}/0/weight`;
        assert.deepEqual(serverSideDiff(predicted, live, 'default'), [edit]);
        // With admission's changes kept, the dry-run answer also carries what the API server
        // itself changes on a spec change: the generation.
        assert.deepEqual(serverSideDiff(predicted, live, 'IncludeMutationWebhook'), [
          '/metadata/generation',
          edit,
        ]);
        assert.deepEqual(slotOf(predicted, 'podAntiAffinity'), [ownerTerm(80), policyAnti]);

        await argoSync(c, edited);
        const after = await getLive(c, ns, 'web');
        assert.equal(after.metadata.generation, 2);
        assert.deepEqual(slotOf(after, 'podAntiAffinity'), [ownerTerm(80), policyAnti]);
        assert.deepEqual(slotOf(after, 'nodeAffinity'), [policyNode]);
        assert.equal(await replicaSets(c, ns, 'web'), 2, 'one rollout for the edit');
        const synced = await compareSnapshot(c, ns, edited);
        for (const mode of MODES) {
          assert.deepEqual(serverSideDiff(synced.predicted, synced.live, mode), [], mode);
        }
      },
    );

    await t.test(
      'a workload the reconciler rewrote (created before the policy): Synced, and a sync changes nothing',
      async () => {
        const { live, predicted } = await compareSnapshot(c, ns, legacy);
        assert.equal(live.metadata.generation, 2, 'created, then rewritten once by the reconciler');
        assert.deepEqual(slotOf(live, 'podAntiAffinity'), [ownerTerm(100), policyAnti]);
        // The reconciler's write made placement-operator the owner of the lists it wrote into.
        assert.deepEqual(ownersOf(live, ANTI_PREF), ['placement-operator']);
        assert.deepEqual(ownersOf(live, NODE_PREF), ['placement-operator']);
        // The dry-run takes the owner's list back for argocd-controller (forced), and admission
        // puts the policy's term back into it.
        assert.deepEqual(ownersOf(predicted, ANTI_PREF), [ARGO_MANAGER]);
        assert.ok(Object.keys(fieldsOf(predicted, ARGO_MANAGER)).length > 0);
        assert.deepEqual(slotOf(predicted, 'podAntiAffinity'), [ownerTerm(100), policyAnti]);
        for (const mode of MODES) {
          assert.deepEqual(serverSideDiff(predicted, live, mode), [], mode);
        }
        await argoSync(c, legacy);
        const after = await getLive(c, ns, 'legacy');
        assert.equal(
          after.metadata.generation,
          2,
          'a sync of the unchanged manifest rolls nothing',
        );
        assert.deepEqual(slotOf(after, 'podAntiAffinity'), [ownerTerm(100), policyAnti]);
        assert.equal(await replicaSets(c, ns, 'legacy'), 2);
      },
    );

    await t.test(
      "the policy itself: its status and the operator's finalizer are no difference",
      async () => {
        const { live, predicted } = await compareSnapshot(c, ns, policyManifest);
        assert.ok(live.metadata['finalizers'] !== undefined, 'the operator added its finalizer');
        assert.ok(live['status'] !== undefined, 'the operator wrote the status');
        for (const mode of MODES) {
          assert.deepEqual(serverSideDiff(predicted, live, mode), [], mode);
        }
      },
    );

    /** A spreadAcross policy for the workloads of `tier`, from Git, once admission uses it. */
    const spreadPolicy = async (name: string, tier: string, term: JsonObject): Promise<string> => {
      await argoSync(
        c,
        policy(ns, name, {
          targets: { selector: { matchLabels: { tier } } },
          spreadAcross: [term],
        }),
      );
      return admissionInUse(c, ns, name, 1, tier);
    };

    await t.test(
      'a spreadAcross policy: its term injected at admission, Synced whether the Git manifest sets the same list or none',
      async () => {
        const spread = 'batch-spread';
        const spreadRef = await spreadPolicy(spread, 'batch', {
          topologyKey: ZONE,
          mode: 'Preferred',
          weight: 30,
        });
        await waitFor(`policy ${spread} injected at admission`, async () => {
          const { status: st } = await policyStatus(c, ns, spread);
          return condition(st, 'InjectedAtAdmission')?.status === 'True' ? true : undefined;
        });
        // The term spreads the workload's own pods (its selector) over zones.
        const spreadTerm = (app: string): Json => ({
          weight: 30,
          podAffinityTerm: { labelSelector: { matchLabels: { app } }, topologyKey: ZONE },
        });
        // Same list as the policy's term (the owner's own anti-affinity), and no affinity at all.
        const sharing = gitManifest(ns, 'batch-own', 100, 'batch');
        const bare = gitManifest(ns, 'batch-bare', undefined, 'batch');
        await argoSync(c, sharing);
        await argoSync(c, bare);
        for (const [m, want] of [
          [sharing, [ownerTerm(100), spreadTerm('batch-own')]],
          [bare, [spreadTerm('batch-bare')]],
        ] as const) {
          const { live, predicted } = await compareSnapshot(c, ns, m);
          const at = (m['metadata'] as { name: string }).name;
          assert.equal(live.metadata.generation, 1, `${at}: created with the term`);
          assert.deepEqual(slotOf(live, 'podAntiAffinity'), want, at);
          assert.deepEqual(slotOf(predicted, 'podAntiAffinity'), want, at);
          assert.ok(live.metadata.annotations?.[APPLIED]?.includes(spreadRef), at);
          for (const mode of MODES) {
            assert.deepEqual(serverSideDiff(predicted, live, mode), [], `${at}, ${mode}`);
          }
        }
        assert.equal(await replicaSets(c, ns, 'batch-own'), 1);
        await waitEnforced(c, ns, spread, 2);
      },
    );

    await t.test(
      "a workload admission leaves to the reconciler (its required podAffinity might clash with the policy's required anti-affinity): the diff shows the term where the Git manifest sets the same list",
      async () => {
        const pair = 'queue-one-per-node';
        const pairRef = await spreadPolicy(pair, 'queue', {
          topologyKey: HOSTNAME,
          mode: 'Required',
          weight: 100,
        });
        // The owner's pods want a node with a queue pod (a selector with matchExpressions, which
        // the wider check at admission cannot tell apart from the policy's "none of my own
        // pods on this node"); the reconciler's exact check finds that both can hold.
        const nearQueue: Json = {
          labelSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['queue'] }] },
          topologyKey: HOSTNAME,
        };
        const ownAnti: Json = {
          labelSelector: { matchLabels: { tier: 'cache' } },
          topologyKey: HOSTNAME,
        };
        // Recreate: with one pod per node required and the pods drawn to each other's node, a
        // rolling update's new pod would find no node.
        const queueManifest = (name: string, anti: boolean): JsonObject => {
          const m = workload('Deployment', ns, name, {
            labels: { app: name, tier: 'queue' },
            selector: { app: name },
            affinity: {
              podAffinity: { [REQ]: [nearQueue] },
              ...(anti ? { podAntiAffinity: { [REQ]: [ownAnti] } } : {}),
            },
          });
          return { ...m, spec: { ...(m['spec'] as JsonObject), strategy: { type: 'Recreate' } } };
        };
        const oneEach = (app: string): Json => ({
          labelSelector: { matchLabels: { app } },
          topologyKey: HOSTNAME,
        });
        const reqOf = (o: Live, group: string): Json[] =>
          o.spec.template.spec.affinity?.[group]?.[REQ] ?? [];

        // A workload created now is left alone at admission: no record, no term.
        const sharing = queueManifest('queue-own', true);
        const probe = await dryRun(c, queueManifest('queue-probe', true));
        assert.equal(probe.metadata.annotations?.[APPLIED], undefined, 'not touched at admission');
        assert.deepEqual(reqOf(probe, 'podAntiAffinity'), [ownAnti]);
        // The policy itself is admitted: the condition is about the policy, not this workload.
        const { status: st } = await policyStatus(c, ns, pair);
        assert.equal(condition(st, 'InjectedAtAdmission')?.status, 'True', JSON.stringify(st));

        // Same list as the policy's term (the owner's own required anti-affinity), and only the
        // required podAffinity.
        const other = queueManifest('queue-near', false);
        await argoSync(c, sharing);
        await argoSync(c, other);
        await waitEnforced(c, ns, pair, 2);

        // Until the API server runs the admission policy regenerated for the new policy, the
        // one before it takes the new policy's record entries for those of a deleted policy and
        // reverts them; wait until admission leaves the workloads of the new policy alone.
        await waitFor(
          `admission leaving the workloads of ${pair} alone`,
          async () => {
            const { live, predicted } = await compareSnapshot(c, ns, other);
            return canonicalJson(predicted.metadata.annotations ?? null) ===
              canonicalJson(live.metadata.annotations ?? null) &&
              canonicalJson(predicted.spec) === canonicalJson(live.spec)
              ? true
              : undefined;
          },
          120_000,
        );

        const own = await compareSnapshot(c, ns, sharing);
        assert.equal(own.live.metadata.generation, 2, 'created, then rewritten by the reconciler');
        assert.deepEqual(reqOf(own.live, 'podAntiAffinity'), [ownAnti, oneEach('queue-own')]);
        assert.ok(own.live.metadata.annotations?.[APPLIED]?.includes(pairRef));
        // The dry-run applies the owner's list and nothing puts the policy's term back.
        assert.deepEqual(reqOf(own.predicted, 'podAntiAffinity'), [ownAnti]);
        const removed = `/spec/template/spec/affinity/podAntiAffinity/${REQ}/1`;
        assert.deepEqual(serverSideDiff(own.predicted, own.live, 'default'), [removed]);
        assert.deepEqual(serverSideDiff(own.predicted, own.live, 'IncludeMutationWebhook'), [
          '/metadata/generation',
          removed,
        ]);

        // A list the Git manifest does not set stays the reconciler's: no difference.
        const near = await compareSnapshot(c, ns, other);
        assert.equal(near.live.metadata.generation, 2, 'created, then rewritten by the reconciler');
        assert.deepEqual(reqOf(near.live, 'podAntiAffinity'), [oneEach('queue-near')]);
        for (const mode of MODES) {
          assert.deepEqual(serverSideDiff(near.predicted, near.live, mode), [], mode);
        }
      },
    );

    // The operator wrote the three workloads admission did not give their terms, once each.
    assert.equal(await op.writes(), 3);
  },
);

clusterTest(
  'a policy edit before the reconciler gets to the workload: the diff shows it, a sync rolls it once',
  { namespace: 'ssd-edit' },
  async ({ c, s, ns }) => {
    // A settle window long enough that the reconciler does not write during the checks.
    const op = await runAdmitting(c, s, '45s');
    const name = 'web-spread';
    const spec = (weight: number): JsonObject => ({
      targets: { selector: { matchLabels: { tier: 'web' } } },
      affinity: {
        podAntiAffinity: { [PREF]: [{ ...policyAnti, weight }] },
        nodeAffinity: { [PREF]: [policyNode] },
      },
    });
    const inUse = (generation: number): Promise<string> => admissionInUse(c, ns, name, generation);
    await argoSync(c, policy(ns, name, spec(40)));
    await waitFor('the policy admitted', async () => {
      const { status } = await policyStatus(c, ns, name);
      return condition(status, 'InjectedAtAdmission')?.status === 'True' ? true : undefined;
    });
    await inUse(1);
    const web = gitManifest(ns, 'web', 100);
    await argoSync(c, web);
    // A workload whose anti-affinity list another applier set: its Git manifest sets none, so
    // the list (with the policy's term admission appended) is that applier's alone.
    const shared = gitManifest(ns, 'shared', undefined);
    await c.apply(
      JSON.stringify(gitManifest(ns, 'shared', 100)),
      '--server-side',
      `--field-manager=${OTHER_MANAGER}`,
    );
    await argoSync(c, shared);

    await argoSync(c, policy(ns, name, spec(60)));
    await inUse(2);
    const { live, predicted } = await compareSnapshot(c, ns, web);
    assert.deepEqual(
      slotOf(live, 'podAntiAffinity'),
      [ownerTerm(100), policyAnti],
      'not yet rewritten',
    );
    const changed = `/spec/template/spec/affinity/podAntiAffinity/${PREF}/1/weight`;
    // In the list the manifest sets, admission's new term shows; the record is admission's
    // (owned by nobody) and comes from the live object.
    assert.deepEqual(serverSideDiff(predicted, live, 'default'), [changed]);
    assert.deepEqual(serverSideDiff(predicted, live, 'IncludeMutationWebhook'), [
      `/metadata/annotations/${APPLIED.replace('/', '~1')}`,
      '/metadata/generation',
      changed,
    ]);

    // Admission changes the other applier's list in the dry-run answer, and the list stays
    // that applier's: only argocd-controller's fields are taken from the answer, so the
    // default mode shows nothing, and only the mode that keeps admission's changes shows it.
    const other = await compareSnapshot(c, ns, shared);
    assert.deepEqual(ownersOf(other.predicted, ANTI_PREF), [OTHER_MANAGER]);
    assert.deepEqual(slotOf(other.live, 'podAntiAffinity'), [ownerTerm(100), policyAnti]);
    assert.deepEqual(slotOf(other.predicted, 'podAntiAffinity'), [
      ownerTerm(100),
      { ...policyAnti, weight: 60 },
    ]);
    assert.deepEqual(serverSideDiff(other.predicted, other.live, 'default'), []);
    assert.deepEqual(serverSideDiff(other.predicted, other.live, 'IncludeMutationWebhook'), [
      `/metadata/annotations/${APPLIED.replace('/', '~1')}`,
      '/metadata/generation',
      changed,
    ]);
    // The other applier's next apply in the window takes the policy change at admission.
    await c.apply(
      JSON.stringify(gitManifest(ns, 'shared', 100)),
      '--server-side',
      `--field-manager=${OTHER_MANAGER}`,
    );

    // A sync in that window writes the policy change: one rollout, and nothing left for the
    // reconciler when its settle window ends.
    await argoSync(c, web);
    const after = await getLive(c, ns, 'web');
    assert.equal(after.metadata.generation, 2);
    assert.deepEqual(slotOf(after, 'podAntiAffinity'), [
      ownerTerm(100),
      { ...policyAnti, weight: 60 },
    ]);
    assert.equal(await replicaSets(c, ns, 'web'), 2, 'one rollout for the policy change');
    await waitFor(
      'no workload settling',
      async () => ((await op.metric('placement_workloads_settling')) === 0 ? true : undefined),
      120_000,
    );
    await waitEnforced(c, ns, name, 2);
    assert.equal(await op.writes(), 0, 'the reconciler found both workloads in line');
    assert.equal((await getLive(c, ns, 'web')).metadata.generation, 2);
    assert.equal((await getLive(c, ns, 'shared')).metadata.generation, 2);
  },
);
