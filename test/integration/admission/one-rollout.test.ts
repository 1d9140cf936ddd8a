// One rollout per workload created after its policy, measured with the operator running:
// it finds MutatingAdmissionPolicy served (mode log line, metric, policy condition), keeps
// its admission policy in step with the PlacementPolicies, and then has nothing left to
// write, so the Deployment keeps generation 1 and one ReplicaSet. Once for a policy with
// plain terms, once for the demo's prod-spread-across-zones (spreadAcross), once for a
// spreadAcross that writes a topologySpreadConstraint.
//
//   KUBECONFIG_TEST=... hack/node --test test/integration/admission/one-rollout.test.ts
import assert from 'node:assert/strict';

import {
  APPLIED,
  clusterTest,
  condition,
  deferAdmissionPolicy,
  deferClusterPolicy,
  deployment,
  example,
  HOSTNAME,
  list,
  policy,
  policyStatus,
  PREF,
  replicaSetCount,
  runOperator,
  templateOf,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
  type Obj,
} from '../operator/support.ts';

interface Case {
  readonly name: string;
  /** The policy for namespace `ns`, and its namespace (undefined: cluster-scoped). */
  readonly policy: (ns: string) => { object: JsonObject; ns: string | undefined; name: string };
  readonly namespaceLabels: Record<string, string>;
  /** The topologySpreadConstraints the Deployment and its ReplicaSet carry (default: none). */
  readonly spread?: readonly JsonObject[];
}

const CASES: readonly Case[] = [
  {
    name: 'a policy with plain terms',
    namespaceLabels: {},
    policy: (ns) => ({
      object: policy(ns, 'web-spread', {
        targets: { selector: { matchLabels: { app: 'web' } } },
        affinity: {
          podAntiAffinity: {
            [PREF]: [
              {
                weight: 10,
                podAffinityTerm: {
                  labelSelector: { matchLabels: { app: 'web' } },
                  topologyKey: HOSTNAME,
                },
              },
            ],
          },
        },
      }),
      ns,
      name: 'web-spread',
    }),
  },
  {
    name: "the demo's prod-spread-across-zones (spreadAcross)",
    namespaceLabels: { env: 'prod' },
    policy: () => {
      const [object] = example('policies/prod-spread-across-zones.yaml');
      assert.ok(object);
      return { object, ns: undefined, name: 'prod-spread-across-zones' };
    },
  },
  {
    name: 'a policy whose spreadAcross writes a topologySpreadConstraint',
    namespaceLabels: {},
    policy: (ns) => ({
      object: policy(ns, 'zones', {
        targets: { selector: { matchLabels: { app: 'web' } } },
        spreadAcross: [
          { topologyKey: ZONE, mode: 'Required', constraint: 'TopologySpread', maxSkew: 1 },
        ],
      }),
      ns,
      name: 'zones',
    }),
    spread: [
      {
        labelSelector: { matchLabels: { app: 'web' } },
        maxSkew: 1,
        topologyKey: ZONE,
        whenUnsatisfiable: 'DoNotSchedule',
      },
    ],
  },
];

const spreadOf = (o: Obj): unknown => templateOf(o).spec['topologySpreadConstraints'] ?? null;

/** Waits until a dry-run create of `manifest` comes back with the policy's terms recorded. */
async function waitAdmitted(c: Cluster, manifest: JsonObject, ref: string): Promise<void> {
  await waitFor(
    `the admission policy injecting ${ref}`,
    async () => {
      const out = await c.apply(
        JSON.stringify(manifest),
        '--server-side',
        '--dry-run=server',
        '-o',
        'json',
      );
      const o = JSON.parse(out) as Obj;
      return o.metadata.annotations?.[APPLIED]?.includes(`"${ref}":`) === true ? true : undefined;
    },
    120_000,
  );
}

for (const k of CASES) {
  clusterTest(
    `a Deployment created after ${k.name} exists rolls out once`,
    { namespace: 'adm-once', labels: k.namespaceLabels },
    async ({ t, c, s, ns }) => {
      const op = await runOperator(c, s);
      deferAdmissionPolicy(c, s);
      // Mode discovery: the API server serves MutatingAdmissionPolicy.
      assert.equal(op.logged('injection mode')[0]?.['mode'], 'admission');
      assert.equal(await op.metric('placement_injection_mode', { mode: 'admission' }), 1);
      assert.equal(await op.metric('placement_injection_mode', { mode: 'reconciler' }), 0);

      const p = k.policy(ns);
      if (p.ns === undefined) deferClusterPolicy(c, s, p.name);
      await c.apply(list(p.object));
      const ref =
        p.ns === undefined
          ? `ClusterPlacementPolicy/${p.name}`
          : `PlacementPolicy/${p.ns}/${p.name}`;
      const manifest = deployment(ns, 'web', { labels: { app: 'web' } });
      await waitAdmitted(c, manifest, ref);

      const writesBefore = await op.writes();
      await c.apply(JSON.stringify(manifest), '--server-side', '--field-manager=argocd-controller');
      const d = await waitFor('the Deployment observed by its controller', async () => {
        const dep = await c.json<Obj & { status?: { observedGeneration?: number } }>(
          'get',
          'deployment',
          'web',
          '-n',
          ns,
        );
        return dep.status?.observedGeneration === 1 ? dep : undefined;
      });
      assert.ok(d.metadata.annotations?.[APPLIED]?.includes(`"${ref}":`));
      // The reconciler has seen the Deployment in line with the policy, and wrote nothing: the
      // terms came at admission. The status says where they come from.
      const status = await waitFor('the policy to count the Deployment enforced', async () => {
        const { status: now, generation } = await policyStatus(c, p.ns, p.name);
        return now.observedGeneration === generation && (now.enforced ?? 0) >= 1 ? now : undefined;
      });
      const injected = condition(status, 'InjectedAtAdmission');
      assert.equal(injected?.status, 'True', JSON.stringify(status.conditions));
      assert.equal((await op.writes()) - writesBefore, 0);
      assert.equal(d.metadata.generation, 1);
      assert.equal(await replicaSetCount(c, ns, 'web'), 1);
      // The constraints came with the creation: the one ReplicaSet's pods carry them.
      const [rs] = (await c.json<{ items: Obj[] }>('get', 'replicasets', '-n', ns, '-l', 'app=web'))
        .items;
      assert.ok(rs);
      assert.deepEqual(spreadOf(d), k.spread ?? null);
      assert.deepEqual(spreadOf(rs), k.spread ?? null);
      t.diagnostic(`${k.name}: generation ${String(d.metadata.generation)}, 1 ReplicaSet`);
    },
  );
}
