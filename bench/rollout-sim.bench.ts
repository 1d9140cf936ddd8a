/**
 * Rollout simulation benchmark: a synthetic cluster (200 nodes over 4 zones, 1,000
 * Deployments of 10 pods = 10,000 bound pods by default); every Deployment gets a
 * one-per-node spread, and every other one also a required affinity to the previous
 * Deployment's pods on zone. Times building the scheduler model of the cluster, simulating
 * the rollout of every Deployment's template change, and placing all 1,000 workloads
 * together (feasibility of their rules taken together). Then the same rules as policies (a
 * ClusterPlacementPolicy spreading every Deployment one per node, a PlacementPolicy per
 * follower for its affinity) through `kubectl-placement plan --cluster-state` in-process:
 * reading the files, the operator's decision for each workload, the rollout simulation of
 * each write, feasibility, and the audit; and the plan alone, without reading or printing.
 *
 *   hack/node bench/rollout-sim.bench.ts [--nodes 200] [--workloads 1000] [--replicas 10]
 *
 * Prints one line per figure, then one JSON line with every figure.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { intFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import type { Node, Pod } from '../src/api/core.ts';
import type { PlacementPolicy } from '../src/api/policy.ts';
import { parseList } from '../src/cli/input.ts';
import { main } from '../src/cli/kubectl-placement.ts';
import { cachedWorkloads } from '../src/cli/plan.ts';
import { planCluster } from '../src/controller/cluster-plan.ts';
import {
  clusterOf,
  placeTogether,
  predictRollout,
  templateRules,
  type WorkloadRef,
} from '../src/engine/index.ts';

const HOSTNAME = 'kubernetes.io/hostname';
const ZONE = 'topology.kubernetes.io/zone';
const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

const USAGE = 'usage: rollout-sim.bench.ts [--nodes 200] [--workloads 1000] [--replicas 10]';
const { nodeCount, workloadCount, replicas } = optionsOrExit((argv) => {
  const values = stringFlags(argv, ['nodes', 'workloads', 'replicas'], USAGE);
  return {
    nodeCount: intFlag('nodes', values.nodes, 200, 1),
    workloadCount: intFlag('workloads', values.workloads, 1000, 2),
    replicas: intFlag('replicas', values.replicas, 10, 1),
  };
}, USAGE);

const nodes: Node[] = Array.from({ length: nodeCount }, (_, i) => ({
  metadata: {
    name: `node-${String(i)}`,
    labels: { [HOSTNAME]: `node-${String(i)}`, [ZONE]: `zone-${String(i % 4)}` },
  },
}));
// Each pair (the follower and the Deployment it follows) shares a namespace.
const ns = (w: number): string => `ns-${String(Math.floor(w / 2) % 20)}`;
const refs: WorkloadRef[] = Array.from({ length: workloadCount }, (_, w) => ({
  kind: 'Deployment',
  namespace: ns(w),
  name: `app-${String(w)}`,
  templateLabels: { app: `app-${String(w)}` },
  podSelector: { matchLabels: { app: `app-${String(w)}` } },
}));
let seed = 7;
const random = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const pods: Pod[] = refs.flatMap((w) =>
  Array.from({ length: replicas }, (_, i) => ({
    metadata: { name: `${w.name}-${String(i)}`, namespace: w.namespace, labels: w.templateLabels },
    spec: { nodeName: `node-${String(random(nodeCount))}` },
    status: { phase: 'Running' },
  })),
);
const affinityOf = (w: number) => ({
  podAntiAffinity: {
    [REQUIRED]: [
      { labelSelector: { matchLabels: { app: `app-${String(w)}` } }, topologyKey: HOSTNAME },
    ],
  },
  ...(w % 2 === 1
    ? {
        podAffinity: {
          [REQUIRED]: [
            {
              labelSelector: { matchLabels: { app: `app-${String(w - 1)}` } },
              topologyKey: ZONE,
            },
          ],
        },
      }
    : {}),
});

const figures: Record<string, number> = {};
const time = (name: string, f: () => void): void => {
  const started = performance.now();
  f();
  figures[name] = Math.round((performance.now() - started) * 10) / 10;
  console.log(`${name}: ${String(figures[name])} ms`);
};

let cluster = clusterOf(nodes, pods, refs, () => ({}));
time('build the scheduler model', () => {
  cluster = clusterOf(nodes, pods, refs, () => ({}));
});
let blocked = 0;
time(`simulate ${String(workloadCount)} rollouts`, () => {
  refs.forEach((w, i) => {
    const outcome = predictRollout(cluster, {
      workload: w,
      replicas,
      strategy: undefined,
      constraints: {},
      affinity: affinityOf(i),
      enforced: [],
    });
    if (outcome.kind === 'blocked') blocked++;
  });
});
figures['blocked'] = blocked;
console.log(`blocked: ${String(blocked)} of ${String(workloadCount)}`);
let short = 0;
time(`place ${String(workloadCount)} workloads together`, () => {
  const results = placeTogether(
    cluster,
    refs.map((w, i) => ({
      key: `Deployment/${w.namespace}/${w.name}`,
      replicas,
      rules: templateRules(w, affinityOf(i), {}, []),
    })),
  );
  short = results.filter((r) => r.placed < r.replicas).length;
});
figures['short'] = short;
console.log(`short of room: ${String(short)} of ${String(workloadCount)}`);

// The plan: the same world as API objects, the same rules as policies.
const deployments = refs.map((w) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: w.name, namespace: w.namespace, generation: 1 },
  spec: {
    replicas,
    selector: w.podSelector,
    template: { metadata: { labels: w.templateLabels }, spec: { containers: [] } },
  },
}));
const namespaces = [...new Set(refs.map((w) => w.namespace))].map((name) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
}));
const state = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    ...nodes.map((n) => ({ apiVersion: 'v1', kind: 'Node', ...n })),
    ...namespaces,
    ...pods.map((p) => ({ apiVersion: 'v1', kind: 'Pod', ...p })),
    ...deployments,
  ],
};
const apiVersion = 'placement.dev/v1alpha1';
const applied: PlacementPolicy[] = [
  {
    apiVersion,
    kind: 'ClusterPlacementPolicy',
    metadata: { name: 'one-per-node' },
    spec: {
      targets: { namespaceSelector: {} },
      spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
    },
  },
  ...refs.flatMap((w, i): PlacementPolicy[] =>
    i % 2 === 1
      ? [
          {
            apiVersion,
            kind: 'PlacementPolicy',
            metadata: { name: `follow-${w.name}`, namespace: w.namespace },
            spec: {
              targets: { selector: { matchLabels: w.templateLabels } },
              affinity: {
                podAffinity: {
                  [REQUIRED]: [
                    {
                      labelSelector: { matchLabels: { app: `app-${String(i - 1)}` } },
                      topologyKey: ZONE,
                    },
                  ],
                },
              },
            },
          },
        ]
      : [],
  ),
];
const dir = mkdtempSync(join(tmpdir(), 'plan-bench-'));
const stateFile = join(dir, 'cluster.json');
const policyFile = join(dir, 'policies.json');
writeFileSync(stateFile, JSON.stringify(state));
writeFileSync(policyFile, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: applied }));
let exit = -1;
let printed = 0;
const started = performance.now();
exit = await main(['plan', '-f', policyFile, '--cluster-state', stateFile, '-o', 'json'], {
  stdout: (t) => (printed += t.length),
  stderr: (t) => process.stderr.write(t),
  readFile: (p) => readFileSync(p, 'utf8'),
  env: {},
});
figures['kubectl-placement plan'] = Math.round((performance.now() - started) * 10) / 10;
console.log(
  `kubectl-placement plan (read, decide, print ${String(printed)} bytes): ${String(figures['kubectl-placement plan'])} ms, exit ${String(exit)}`,
);
rmSync(dir, { recursive: true });
const snapshot = parseList(JSON.stringify(state), 'cluster');
const workloads = cachedWorkloads(snapshot.workloads);
let heldBack = 0;
time(`plan ${String(workloadCount)} workloads`, () => {
  const result = planCluster(snapshot, workloads, applied);
  if (result.kind === 'ok') heldBack = result.plan.summary.heldBack;
});
figures['plan held back'] = heldBack;
console.log(`plan held back: ${String(heldBack)} of ${String(workloadCount)}`);
figures['rss MiB'] = Math.round(process.memoryUsage().rss / 2 ** 20);
console.log(`rss: ${String(figures['rss MiB'])} MiB`);
console.log(`load average: ${loadAverage()}`);
console.log(
  JSON.stringify({ nodes: nodeCount, workloads: workloadCount, pods: pods.length, ...figures }),
);
