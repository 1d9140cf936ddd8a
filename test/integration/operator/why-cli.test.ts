// `kubectl-placement why` against the live cluster, through a kubeconfig, on the seed
// scenario (examples/workloads/checkout.yaml on three fake nodes of this file's own):
// - checkout-redis, one per node by its own anti-affinity, fills the pool; one more
//   checkout-redis pod that follows checkout (the terms the seed policies inject) is really
//   Pending, and `why` gives the same reasons, node for node, as the scheduler's
//   FailedScheduling event, names the checkout-redis pods in the way, and offers moving one;
// - a running checkout-redis pod is fine, under its owner's rule;
// - a pod that topology spread keeps out of one zone, with the other zone's node cordoned,
//   gets the scheduler's reasons too, and a node in a new zone as the smallest change;
// - nothing is written: every object of the namespace keeps its resourceVersion.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/why-cli.test.ts
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { main } from '../../../src/cli/kubectl-placement.ts';
import { WHY_EXIT } from '../../../src/cli/why.ts';
import type { Explanation } from '../../../src/engine/explain.ts';
import {
  clusterTest,
  failedScheduling,
  HOSTNAME,
  listOf,
  makePool,
  podsOf,
  REQ,
  seedWorkloads,
  waitFor,
  waitRolledOut,
  ZONE,
  type Cluster,
  type JsonObject,
} from './support.ts';

/** Runs `kubectl-placement why ARGS` in-process; the kubeconfig comes from `env` or a flag. */
async function why(args: readonly string[], env: Readonly<Record<string, string>>) {
  let stdout = '';
  let stderr = '';
  const code = await main(['why', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (p) => readFileSync(p, 'utf8'),
    env,
  });
  return { code, stdout, stderr };
}

/** `kind/name` → resourceVersion of everything in the namespace. */
async function versions(c: Cluster, ns: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const kind of ['deployments', 'replicasets', 'pods', 'events'])
    for (const o of await listOf(c, kind, ns))
      out.set(`${kind}/${o.metadata.name}`, o.metadata.resourceVersion ?? '');
  return out;
}

/** The reasons of a FailedScheduling message, with their node counts: `{reason → nodes}`. */
function reasonsOf(message: string): Map<string, number> {
  // "0/7 nodes are available: 1 node(s) didn't ..., 4 node(s) didn't .... no new claims ..., preemption: ..."
  const listed = /nodes are available: (.*?)\.(?: |$)/.exec(message)?.[1] ?? '';
  const out = new Map<string, number>();
  for (const part of listed.split(', ')) {
    const m = /^(\d+) (.*)$/.exec(part);
    if (m !== null) out.set(m[2] ?? '', Number(m[1]));
  }
  return out;
}

const term = (app: string): JsonObject => ({
  labelSelector: { matchLabels: { app } },
  topologyKey: HOSTNAME,
});

/** A bare checkout-redis pod with `spec` (its node rules and placement terms). */
const probe = (ns: string, name: string, spec: JsonObject): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: 'checkout-redis' } },
    spec: {
      ...spec,
      containers: [{ name: 'redis', image: 'registry.example/checkout-redis:1.0' }],
    },
  });

clusterTest(
  'why on a really Pending pod agrees with the scheduler, through the kubeconfig, writing nothing',
  { timeout: 240_000, namespace: 'shop', labels: { env: 'prod' } },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-b', 'zone-a']);
    // checkout-redis one per node (its owner's rule), so it takes all three nodes.
    const workloads = seedWorkloads('workloads/checkout.yaml', ns, pool).map((d) => {
      const meta = d['metadata'] as JsonObject;
      if (meta['name'] !== 'checkout-redis') return d;
      const spec = d['spec'] as JsonObject;
      const template = spec['template'] as JsonObject;
      const podSpec = template['spec'] as JsonObject;
      return {
        ...d,
        spec: {
          ...spec,
          template: {
            ...template,
            spec: {
              ...podSpec,
              affinity: { podAntiAffinity: { [REQ]: [term('checkout-redis')] } },
            },
          },
        },
      };
    });
    await c.apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: workloads }));
    await waitRolledOut(c, ns, 120_000);

    // One more checkout-redis pod with the terms the seed policies inject: next to checkout,
    // one per node. No node of the pool takes it.
    const extra = 'checkout-redis-extra';
    await c.apply(
      probe(ns, extra, {
        ...pool.podSpec,
        affinity: {
          podAffinity: { [REQ]: [term('checkout')] },
          podAntiAffinity: { [REQ]: [term('checkout-redis')] },
        },
      }),
    );
    const message = await waitFor(
      `a FailedScheduling event about ${ns}/${extra}`,
      async () => (await failedScheduling(c, ns, extra))[0],
      90_000,
    );
    t.diagnostic(`scheduler: ${message}`);
    const before = await versions(c, ns);

    const json = await why([`${ns}/${extra}`, '-o', 'json'], { KUBECONFIG: c.kubeconfigPath });
    assert.equal(json.stderr, '');
    assert.equal(json.code, WHY_EXIT.blocked, json.stdout);
    const e = JSON.parse(json.stdout) as Explanation;
    assert.equal(e.status, 'unschedulable');
    // The scheduler's reasons, node for node, are this explanation's first rule per node.
    assert.deepEqual(
      new Map(e.schedulerReasons.map((r) => [r.reason, r.nodes])),
      reasonsOf(message),
    );
    // On the pool: the node without checkout fails its affinity, the others its anti-affinity.
    const redis = (await podsOf(c, ns, 'checkout-redis')).filter((p) => p.metadata.name !== extra);
    const checkout = await podsOf(c, ns, 'checkout');
    const withCheckout = new Set(checkout.map((p) => p.spec.nodeName));
    const anti = e.ruledOut.find((r) => r.rule === 'podAntiAffinity');
    assert.deepEqual(
      anti?.pods.map((p) => p.pod),
      redis.map((p) => `${ns}/${p.metadata.name}`).sort(),
    );
    const affinity = e.ruledOut.find((r) => r.rule === 'podAffinity');
    assert.deepEqual(
      affinity?.nodes.filter((n) => pool.nodes.includes(n)),
      pool.nodes.filter((n) => !withCheckout.has(n)),
    );
    // The smallest change: one checkout-redis pod out of a node that runs checkout.
    const first = e.changes[0];
    assert.equal(first?.cost, 1);
    assert.ok(withCheckout.has(first.node), JSON.stringify(e.changes));
    assert.match(
      first.change,
      new RegExp(`^move pod ${ns}/checkout-redis-\\S+ out of ${HOSTNAME}=${first.node}$`),
    );

    // The table, with --kubeconfig; a running checkout-redis pod is fine, under its owner's rule.
    const running = redis[0]?.metadata.name ?? '';
    const fine = await why(['-n', ns, running, '--kubeconfig', c.kubeconfigPath], {});
    assert.equal(fine.code, WHY_EXIT.ok, fine.stderr);
    assert.match(fine.stdout, /it meets every placement rule where it runs/);
    assert.match(
      fine.stdout,
      new RegExp(
        `podAntiAffinity +yes +\\S+ +app=checkout-redis per ${HOSTNAME} +its owner Deployment/${ns}/checkout-redis`,
      ),
    );
    const missing = await why([`${ns}/nope`], { KUBECONFIG: c.kubeconfigPath });
    assert.equal(missing.code, WHY_EXIT.badInput);
    assert.equal(
      missing.stderr,
      `kubectl-placement why: pod ${ns}/nope not found in the cluster\n`,
    );

    // Nothing written: the pod is still Pending, and every object keeps its resourceVersion.
    assert.deepEqual(await versions(c, ns), before);
    const still = await c.json<{ spec: { nodeName?: string } }>('get', 'pod', extra, '-n', ns);
    assert.equal(still.spec.nodeName, undefined);

    // Topology spread and a cordon: zone-a holds two checkout-redis pods and zone-b one, so
    // one more (maxSkew 1 by zone) may only go to zone-b, whose node is cordoned.
    await c.kubectl('cordon', pool.nodes[1] ?? '');
    const spread = 'checkout-redis-spread';
    await c.apply(
      probe(ns, spread, {
        ...pool.podSpec,
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: ZONE,
            whenUnsatisfiable: 'DoNotSchedule',
            labelSelector: { matchLabels: { app: 'checkout-redis' } },
          },
        ],
      }),
    );
    const spreadMessage = await waitFor(
      `a FailedScheduling event about ${ns}/${spread}`,
      async () => (await failedScheduling(c, ns, spread))[0],
      90_000,
    );
    t.diagnostic(`scheduler: ${spreadMessage}`);
    const spreadWhy = await why([`${ns}/${spread}`, '-o', 'json'], {
      KUBECONFIG: c.kubeconfigPath,
    });
    assert.equal(spreadWhy.code, WHY_EXIT.blocked, spreadWhy.stderr);
    const se = JSON.parse(spreadWhy.stdout) as Explanation;
    assert.deepEqual(
      new Map(se.schedulerReasons.map((r) => [r.reason, r.nodes])),
      reasonsOf(spreadMessage),
    );
    assert.deepEqual(se.ruledOut.find((r) => r.rule === 'nodeUnschedulable')?.nodes, [
      pool.nodes[1],
    ]);
    // Every node of the pool also runs a checkout-redis pod whose anti-affinity refuses it:
    // the smallest change is a node in a zone of its own, where both rules hold.
    const cordoned = se.nodes.find((n) => n.node === pool.nodes[1]);
    assert.deepEqual(
      cordoned?.blocks.map((b) => b.rule),
      ['nodeUnschedulable', 'symmetricAntiAffinity'],
    );
    assert.match(
      se.changes[0]?.change ?? '',
      new RegExp(`^add a node like ${pool.id}-node-\\d in a ${ZONE} other than zone-a, zone-b$`),
      JSON.stringify(se.changes),
    );
  },
);
