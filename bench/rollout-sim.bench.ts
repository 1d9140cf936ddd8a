/**
 * Rollout simulation benchmark: a synthetic cluster (200 nodes over 4 zones, 1,000
 * Deployments of 10 pods = 10,000 bound pods by default); every Deployment gets a
 * one-per-node spread, and every other one also a required affinity to the previous
 * Deployment's pods on zone. Times building the scheduler model of the cluster, simulating
 * the rollout of every Deployment's template change, and placing all 1,000 workloads
 * together (feasibility of their rules taken together).
 *
 *   hack/node bench/rollout-sim.bench.ts [--nodes 200] [--workloads 1000] [--replicas 10]
 *
 * Prints one line per figure, then one JSON line with every figure.
 */
import { intFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import type { Node, Pod } from '../src/api/core.ts';
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
console.log(`load average: ${loadAverage()}`);
console.log(
  JSON.stringify({ nodes: nodeCount, workloads: workloadCount, pods: pods.length, ...figures }),
);
