// `kubectl-placement plan` against the live cluster, through a kubeconfig, on the seed
// scenario (examples/workloads/checkout.yaml on three fake nodes of this file's own):
// - as written, checkout-redis (3 replicas, next to checkout's 2 pods, one per node) is
//   reported held back and Unsatisfiable, "at most 2 of 3", and the exit status says so;
// - the variant with 3 checkout replicas and `maxUnavailable: 1` on both Deployments
//   starts both rollouts and exits 0;
// - nothing is written: every object of the namespaces keeps its resourceVersion, and no
//   policy exists afterwards.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/plan-cli.test.ts
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { main } from '../../../src/cli/kubectl-placement.ts';
import { PLAN_EXIT } from '../../../src/cli/plan.ts';
import {
  clusterTest,
  listOf,
  makeNamespace,
  makePool,
  seedPolicies,
  seedWorkloads,
  waitRolledOut,
  type Cluster,
  type JsonObject,
} from './support.ts';

interface PlanJson {
  workloads: { workload: string; action: string; message?: string }[];
  unsatisfiable: { policy: string; message: string }[];
}

/** Runs `kubectl-placement plan ARGS` in-process, reading the cluster through its kubeconfig. */
async function plan(c: Cluster, args: readonly string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(['plan', ...args, '--kubeconfig', c.kubeconfigPath], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (p) => readFileSync(p, 'utf8'),
    env: {},
  });
  return { code, stdout, stderr };
}

/** `Kind/name` → resourceVersion of everything in the namespaces the plan could touch. */
async function versions(c: Cluster, namespaces: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const ns of namespaces)
    for (const kind of ['deployments', 'replicasets', 'pods', 'placementpolicies'])
      for (const o of await listOf(c, kind, ns))
        out.set(`${kind}/${ns}/${o.metadata.name}`, o.metadata.resourceVersion ?? '');
  return out;
}

const withStrategy = (docs: JsonObject[], checkoutReplicas: number): JsonObject[] =>
  docs.map((d) => {
    const meta = d['metadata'] as JsonObject;
    const spec = d['spec'] as JsonObject;
    return {
      ...d,
      spec: {
        ...spec,
        ...(meta['name'] === 'checkout' ? { replicas: checkoutReplicas } : {}),
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } },
      },
    };
  });

clusterTest(
  'plan on the seed through the kubeconfig, writing nothing',
  { timeout: 240_000 },
  async ({ t, c, s }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-b', 'zone-a']);
    const seed = await makeNamespace(c, s, 'shop', { env: 'prod' });
    const variant = await makeNamespace(c, s, 'shop-mu1', { env: 'prod' });
    const manifest = (items: JsonObject[]): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
    await c.apply(manifest(seedWorkloads('workloads/checkout.yaml', seed, pool)));
    await c.apply(
      manifest(withStrategy(seedWorkloads('workloads/checkout.yaml', variant, pool), 3)),
    );
    await waitRolledOut(c, seed, 120_000);
    await waitRolledOut(c, variant, 120_000);
    const before = await versions(c, [seed, variant]);

    const dir = mkdtempSync(join(tmpdir(), 'plan-cli-'));
    const policyFile = (ns: string): string => {
      const file = join(dir, `${ns}.yaml`);
      const docs = [
        ...seedPolicies('policies/checkout-one-per-node.yaml', ns),
        ...seedPolicies('policies/checkout-redis-with-checkout.yaml', ns),
      ];
      writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
      return file;
    };

    // The seed as written: held back and Unsatisfiable.
    const held = await plan(c, ['-f', policyFile(seed), '-o', 'json']);
    t.diagnostic(held.stderr);
    assert.equal(held.stderr, '');
    assert.equal(held.code, PLAN_EXIT.blocked, held.stdout);
    const doc = JSON.parse(held.stdout) as PlanJson;
    const mine = (ns: string) => doc.workloads.filter((w) => w.workload.includes(`/${ns}/`));
    assert.deepEqual(
      mine(seed).map((w) => [w.workload, w.action]),
      [
        [`Deployment/${seed}/checkout`, 'rollout'],
        [`Deployment/${seed}/checkout-redis`, 'heldBack'],
      ],
    );
    assert.match(mine(seed)[1]?.message ?? '', /checkout-redis: at most 2 of 3 pods can run/);
    const unsat = doc.unsatisfiable.filter((u) => u.policy.includes(`/${seed}/`));
    assert.deepEqual(
      unsat.map((u) => u.policy),
      [`PlacementPolicy/${seed}/checkout-redis-with-checkout`],
    );
    assert.match(unsat[0]?.message ?? '', /checkout-redis: at most 2 of 3 pods can run/);

    // The table says the same, and the exit status with it.
    const table = await plan(c, ['-f', policyFile(seed)]);
    assert.equal(table.code, PLAN_EXIT.blocked);
    assert.match(table.stdout, new RegExp(`Deployment/${seed}/checkout-redis +held back`));
    assert.match(table.stdout, /1 held back; 1 unsatisfiable/);

    // maxUnavailable: 1, and a checkout pod for each checkout-redis pod: both rollouts start.
    const proceeds = await plan(c, ['-f', policyFile(variant), '-o', 'json']);
    assert.equal(proceeds.stderr, '');
    const vdoc = JSON.parse(proceeds.stdout) as PlanJson;
    assert.deepEqual(
      vdoc.workloads
        .filter((w) => w.workload.includes(`/${variant}/`))
        .map((w) => [w.workload, w.action]),
      [
        [`Deployment/${variant}/checkout`, 'rollout'],
        [`Deployment/${variant}/checkout-redis`, 'rollout'],
      ],
    );
    assert.deepEqual(
      vdoc.unsatisfiable.filter((u) => u.policy.includes(`/${variant}/`)),
      [],
    );
    assert.equal(proceeds.code, PLAN_EXIT.ok, proceeds.stdout);

    // Nothing written.
    const after = await versions(c, [seed, variant]);
    assert.deepEqual(after, before);
    assert.equal([...after.keys()].filter((k) => k.startsWith('placementpolicies/')).length, 0);
  },
);
