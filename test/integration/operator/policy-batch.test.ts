// Policies applied together reach a workload as one write: five policies in one
// `kubectl apply` over twenty Deployments roll each Deployment exactly once (its generation
// rises by one and it has two ReplicaSets, the first and the rewritten template's).
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/policy-batch.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  deployment,
  HOSTNAME,
  list,
  listOf,
  policy,
  runOperator,
  waitEnforced,
  waitRolledOut,
  ZONE,
  type Obj,
} from './support.ts';

const WORKLOADS = 20;
const POLICIES = 5;

clusterTest(
  'five policies applied at once roll each of twenty Deployments once',
  { timeout: 240_000, namespace: 'policy-batch' },
  async ({ c, s, ns }) => {
    await c.apply(
      list(
        ...Array.from({ length: WORKLOADS }, (_, i) =>
          deployment(ns, `svc-${i}`, {
            labels: { app: `svc-${i}`, tier: 'batch' },
            selector: { app: `svc-${i}` },
          }),
        ),
      ),
    );
    await waitRolledOut(c, ns);
    const generations = new Map(
      (await listOf(c, 'deployments', ns)).map((d) => [d.metadata.name, d.metadata.generation]),
    );
    await runOperator(c, s, ['--rollout-budget', String(WORKLOADS)]);

    // Five policies, each asking for a different preferred term, in one apply.
    const policies = Array.from({ length: POLICIES }, (_, i) =>
      policy(ns, `batch-${i}`, {
        targets: { selector: { matchLabels: { tier: 'batch' } } },
        spreadAcross: [{ topologyKey: i % 2 === 0 ? HOSTNAME : ZONE, weight: 10 + i }],
      }),
    );
    await c.apply(list(...policies));
    for (let i = 0; i < POLICIES; i++) await waitEnforced(c, ns, `batch-${i}`, WORKLOADS);
    await waitRolledOut(c, ns);

    const deployments = await listOf(c, 'deployments', ns);
    const replicaSets = await listOf(c, 'replicasets', ns);
    const rsOf = (d: Obj) =>
      replicaSets.filter((rs) =>
        (rs.metadata as { ownerReferences?: { uid: string }[] }).ownerReferences?.some(
          (o) => o.uid === d.metadata.uid,
        ),
      );
    const rolls = deployments.map((d) => ({
      name: d.metadata.name,
      generationRise: (d.metadata.generation ?? 0) - (generations.get(d.metadata.name) ?? 0),
      replicaSets: rsOf(d).length,
    }));
    assert.deepEqual(
      rolls.filter((r) => r.generationRise !== 1 || r.replicaSets !== 2),
      [],
      'every Deployment rolled exactly once',
    );
    assert.equal(rolls.length, WORKLOADS);
  },
);
