// Not a clusterTest: worlds made and removed through the API by run id (differential/run.ts).
// The scheduler as the oracle for the NodeAffinity and PodTopologySpread filters. For a probe
// pod P and one node N of the run, two verdicts on "may P run on N?":
//   - the engine's: P's node rules (node-affinity.ts) and spreadFilter (topology-spread.ts)
//     on the nodes and the pods of P's namespace as listed right before P is created, and
//     kube-scheduler's TaintToleration and NodePorts filters, per node;
//   - kube-scheduler's: P created unbound; it binds P to N, or reports FailedScheduling with
//     the number of nodes each filter refused.
//
// Pinning P to N may not use node affinity: with nodeAffinityPolicy Honor the pin would
// decide which nodes count as spread domains. So each of the run's nodes holds a blocker pod
// (another namespace, so no spread selector counts it) that takes the host ports of every
// other node's pin; P asks for N's port, and every other node refuses it in NodePorts, a
// filter that does not change spread counting. The scheduler tries the filters in order
// (TaintToleration, NodeAffinity, NodePorts, PodTopologySpread) and stops at the first that
// fails, so its message counts one reason per node. Both sides must give the same counts:
// P's verdict on N exactly, and the NodeAffinity and taint verdicts of every other node of
// the cluster in the totals. Every probe carries `nodeSelector: {MARK: run}`, so nodes of
// other tests refuse it in NodeAffinity (and, with nodeAffinityPolicy Ignore, still count as
// domains: the engine sees them in its list too).
//
// Every disagreement is printed as a fixture (a Kubernetes List of the nodes and the pods of
// P's namespace, P bound to N, both verdicts on top) and left under the OS temp dir
// (placement-differential/). A disagreement is probed once more after a pause first, so that
// a scheduler cache a few milliseconds behind (the previous probe still in it) cannot fail
// the run.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/differential-node-spread.test.ts
//
// DIFFERENTIAL_SEED=<n> replays a run; DIFFERENTIAL_ROUNDS=<n> sets the number of worlds
// (default 10, each 4 probes on each of 5 nodes). Only a default run insists on 200 verdicts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';

import type { Labels, Node, Taint } from '../../src/api/core.ts';
import { nodeRulesHold } from '../../src/engine/node-affinity.ts';
import { nodeFacts, toleratesHardTaints } from '../../src/engine/node-eligibility.ts';
import {
  compileSpreadRules,
  SpreadIndex,
  SpreadRulesCache,
  spreadPodOf,
  spreadSubjectOf,
} from '../../src/engine/spread-index.ts';
import { spreadFilter } from '../../src/engine/topology-spread.ts';
import { HttpMethod, KubeApi } from './differential/kube.ts';
import {
  DEDICATED,
  POOL,
  randomNodeWorld,
  SIZE,
  type NodeWorld,
  type SceneProbe,
} from './differential/node-worlds.ts';
import {
  container,
  containers,
  openRun,
  HOLD,
  MARK,
  podPath,
  removeNamespaces,
  sleep,
  tolerations as runTolerations,
  until,
} from './differential/run.ts';
import { deletePodNow, type PodJson } from './differential/verdicts.ts';
import { HOSTNAME, roundSeed, Rng, ZONE } from './differential/worlds.ts';
import { cluster } from './harness.ts';

const NODES = 5;
const ROUNDS = Number(process.env['DIFFERENTIAL_ROUNDS'] ?? 10);
const PROBES_PER_ROUND = 4;
const MIN_VERDICTS = process.env['DIFFERENTIAL_ROUNDS'] === undefined ? 200 : 0;
const SEED = Number(process.env['DIFFERENTIAL_SEED'] ?? randomBytes(4).readUInt32BE(0));
/** Node i's pin: the host port only node i leaves free. */
const PIN_PORT = 31_000;
const DECISION_TIMEOUT_MS = 30_000;
const POLL_MS = 40;
const RETRY_PAUSE_MS = 1_000;

// ------------------------------------------------------------------ verdicts

/** One node's verdict: the first filter that refuses the probe there, or ok. */
type NodeVerdict = 'ok' | 'taint' | 'nodeAffinity' | 'ports' | 'topologySpread' | 'missingLabel';

/** The scheduler's reasons, as its FailedScheduling message words them. */
const REASONS: readonly (readonly [RegExp, NodeVerdict])[] = [
  [/^node\(s\) had untolerated taint/, 'taint'],
  [/^node\(s\) didn't match Pod's node affinity\/selector$/, 'nodeAffinity'],
  [/^node\(s\) didn't have free ports for the requested pod ports$/, 'ports'],
  [/^node\(s\) didn't match pod topology spread constraints$/, 'topologySpread'],
  [
    /^node\(s\) didn't match pod topology spread constraints \(missing required label\)$/,
    'missingLabel',
  ],
];

type Tally = Partial<Record<NodeVerdict, number>>;

/** Either side's answer for one probe: bound to its node, or refused with counts per reason. */
type Outcome = { readonly kind: 'bound' } | { readonly kind: 'refused'; readonly counts: Tally };

const outcomeText = (o: Outcome): string =>
  o.kind === 'bound'
    ? 'bound'
    : `refused (${Object.entries(o.counts)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`;

const sameOutcome = (a: Outcome, b: Outcome): boolean => outcomeText(a) === outcomeText(b);

/** Reads "0/9 nodes are available: 1 node(s) ..., 8 node(s) .... preemption: ..." into counts. */
function schedulerCounts(message: string): Tally {
  const m = /^0\/\d+ nodes are available: (.*?)\.(?: |$)/.exec(message);
  if (m === null) throw new Error(`unexpected scheduler message: ${message}`);
  const counts: Tally = {};
  for (const item of (m[1] ?? '').split(', ')) {
    const parts = /^(\d+) (.*)$/.exec(item);
    const reason = REASONS.find(([re]) => re.test(parts?.[2] ?? ''))?.[1];
    if (parts === null || reason === undefined) {
      throw new Error(`a reason the test did not set up ("${item}"): ${message}`);
    }
    counts[reason] = (counts[reason] ?? 0) + Number(parts[1]);
  }
  return counts;
}

interface NodeJson {
  metadata: { name: string; labels?: Labels };
  spec?: { taints?: Taint[]; unschedulable?: boolean };
}

interface Snapshot {
  readonly nodes: readonly Node[];
  readonly pods: readonly PodJson[];
}

async function takeSnapshot(api: KubeApi, namespace: string): Promise<Snapshot> {
  const [nodes, pods] = await Promise.all([
    api.get<{ items: NodeJson[] }>('/api/v1/nodes'),
    api.get<{ items: PodJson[] }>(podPath(namespace)),
  ]);
  return {
    nodes: nodes.items.map((n) => ({
      metadata: { name: n.metadata.name, labels: n.metadata.labels ?? {} },
      spec: { taints: n.spec?.taints ?? [], unschedulable: n.spec?.unschedulable === true },
    })),
    // What the scheduler's cache holds: bound pods that have not finished.
    pods: pods.items.filter(
      (p) =>
        (p.spec.nodeName ?? '') !== '' &&
        p.status?.phase !== 'Succeeded' &&
        p.status?.phase !== 'Failed',
    ),
  };
}

/** The engine's verdict on every node of the cluster for the probe pinned to `pinned`. */
function engineOutcome(
  snapshot: Snapshot,
  probe: PodJson,
  pinned: string,
): {
  outcome: Outcome;
  perNode: Map<string, NodeVerdict>;
} {
  const cache = new SpreadRulesCache();
  const spreadPods = snapshot.pods.map((p) =>
    spreadPodOf(
      {
        metadata: {
          name: p.metadata.name,
          namespace: p.metadata.namespace,
          labels: p.metadata.labels ?? {},
          ...(p.metadata.deletionTimestamp
            ? { deletionTimestamp: p.metadata.deletionTimestamp }
            : {}),
        },
        spec: { nodeName: p.spec.nodeName ?? '' },
      },
      cache,
    ),
  );
  const facts = snapshot.nodes.map(nodeFacts);
  const index = new SpreadIndex(facts, spreadPods);
  const subject = spreadSubjectOf({
    metadata: {
      name: probe.metadata.name,
      namespace: probe.metadata.namespace,
      labels: probe.metadata.labels ?? {},
    },
    spec: probe.spec,
  });
  const rules = compileSpreadRules(subject);
  const perNode = new Map<string, NodeVerdict>();
  for (const node of facts) {
    let v: NodeVerdict;
    if (!toleratesHardTaints(node.taints, subject.tolerations ?? [])) v = 'taint';
    else if (!nodeRulesHold(subject, node)) v = 'nodeAffinity';
    else if (node.name !== pinned) v = 'ports';
    else {
      const f = spreadFilter(index, { labels: subject.labels, rules }, node);
      v =
        f.kind === 'ok'
          ? 'ok'
          : f.miss.reason === 'overMaxSkew'
            ? 'topologySpread'
            : 'missingLabel';
    }
    perNode.set(node.name, v);
  }
  if (perNode.get(pinned) === 'ok') return { outcome: { kind: 'bound' }, perNode };
  const counts: Tally = {};
  for (const v of perNode.values()) if (v !== 'ok') counts[v] = (counts[v] ?? 0) + 1;
  return { outcome: { kind: 'refused', counts }, perNode };
}

async function schedulerOutcome(api: KubeApi, pod: PodJson, node: string): Promise<Outcome> {
  const path = podPath(pod.metadata.namespace, pod.metadata.name);
  const deadline = Date.now() + DECISION_TIMEOUT_MS;
  for (;;) {
    const current = await api.get<PodJson>(path);
    const nodeName = current.spec.nodeName ?? '';
    if (nodeName !== '') {
      if (nodeName !== node) throw new Error(`${path} was bound to ${nodeName}, not ${node}`);
      return { kind: 'bound' };
    }
    const scheduled = current.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      return { kind: 'refused', counts: schedulerCounts(scheduled.message ?? '') };
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${path}: no scheduling decision on ${node} within ${DECISION_TIMEOUT_MS} ms`,
      );
    }
    await sleep(POLL_MS);
  }
}

// ------------------------------------------------------------------ the world on the cluster

const pinPort = (i: number): number => PIN_PORT + i;

function probeManifest(
  p: SceneProbe,
  namespace: string,
  name: string,
  run: string,
  pin: number,
): PodJson {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: p.labels },
    spec: {
      nodeSelector: { ...p.nodeSelector, [MARK]: run },
      ...(p.nodeAffinity ? { affinity: { nodeAffinity: p.nodeAffinity } } : {}),
      tolerations: [...runTolerations, ...p.tolerations],
      topologySpreadConstraints: p.constraints,
      containers: [
        { ...container, ports: [{ containerPort: pinPort(pin), hostPort: pinPort(pin) }] },
      ],
      terminationGracePeriodSeconds: 0,
    },
  };
}

/** Labels and taints of the run's nodes as the world has them (null removes a label). */
async function setNodes(api: KubeApi, names: readonly string[], world: NodeWorld, run: string) {
  await Promise.all(
    names.map((name, i) => {
      const n = world.nodes[i];
      if (n === undefined) throw new Error(`no scene for node ${name}`);
      const labels = { [ZONE]: n.zone, [HOSTNAME]: n.hostname, [POOL]: n.pool, [SIZE]: n.size };
      const taints = [
        { key: MARK, value: run, effect: 'NoSchedule' },
        ...(n.dedicated === null ? [] : [{ key: DEDICATED, value: 'x', effect: n.dedicated }]),
      ];
      return api.ok(
        HttpMethod.PATCH,
        `/api/v1/nodes/${name}`,
        { metadata: { labels }, spec: { taints } },
        'application/merge-patch+json',
      );
    }),
  );
}

async function namespaceReady(api: KubeApi, name: string, run: string): Promise<void> {
  await api.ok(HttpMethod.POST, '/api/v1/namespaces', {
    metadata: { name, labels: { [MARK]: run } },
  });
  await until(`ServiceAccount ${name}/default`, async () =>
    (await api.request(HttpMethod.GET, `/api/v1/namespaces/${name}/serviceaccounts/default`))
      .status === 200
      ? true
      : undefined,
  );
}

/** Bound pods (nodeName set: any skew), tolerating every taint so NoExecute keeps none off. */
async function placePods(
  api: KubeApi,
  world: NodeWorld,
  namespace: string,
  nodes: readonly string[],
) {
  const all = [{ operator: 'Exists' }];
  await Promise.all(
    world.pods.map((p) =>
      api.ok(HttpMethod.POST, podPath(namespace), {
        metadata: {
          name: p.name,
          namespace,
          labels: p.labels,
          ...(p.terminating ? { finalizers: [HOLD] } : {}),
        },
        spec: { nodeName: nodes[p.node], tolerations: all, containers },
      }),
    ),
  );
  await until('the world’s pods Running', async () => {
    const pods = await Promise.all(
      world.pods.map((p) => api.get<PodJson>(podPath(namespace, p.name))),
    );
    return pods.every((p) => p.status?.phase === 'Running') ? true : undefined;
  });
  for (const p of world.pods.filter((x) => x.terminating)) {
    await api.ok(HttpMethod.DELETE, podPath(namespace, p.name));
    await until(`${p.name} Terminating`, async () =>
      (await api.get<PodJson>(podPath(namespace, p.name))).metadata.deletionTimestamp
        ? true
        : undefined,
    );
  }
}

/** One blocker per node: it holds every other node's pin port. */
async function placeBlockers(api: KubeApi, namespace: string, nodes: readonly string[]) {
  await Promise.all(
    nodes.map((node, i) =>
      api.ok(HttpMethod.POST, podPath(namespace), {
        metadata: { name: `blocker-${i}`, namespace },
        spec: {
          nodeName: node,
          tolerations: [{ operator: 'Exists' }],
          containers: [
            {
              ...container,
              ports: nodes
                .map((_, j) => j)
                .filter((j) => j !== i)
                .map((j) => ({ containerPort: pinPort(j), hostPort: pinPort(j) })),
            },
          ],
        },
      }),
    ),
  );
  await until('the blockers Running', async () => {
    const pods = await api.get<{ items: PodJson[] }>(podPath(namespace));
    return pods.items.length === nodes.length &&
      pods.items.every((p) => p.status?.phase === 'Running')
      ? true
      : undefined;
  });
}

// ------------------------------------------------------------------ fixtures

interface Disagreement {
  readonly world: string;
  readonly sent: PodJson;
  readonly node: string;
  readonly snapshot: Snapshot;
  readonly engine: Outcome;
  readonly perNode: ReadonlyMap<string, NodeVerdict>;
  readonly scheduler: Outcome;
}

const FIXTURE_DIR = join(tmpdir(), 'placement-differential');

function fixture(d: Disagreement, seedText: string): { file: string; text: string } {
  const bound = {
    ...d.sent,
    spec: { ...d.sent.spec, nodeName: d.node },
    status: { phase: 'Running' },
  };
  const header = [
    'kube-scheduler and the placement engine disagree about one placement (NodeAffinity / PodTopologySpread).',
    `Found by test/integration/differential-node-spread.test.ts, ${seedText}, world "${d.world}".`,
    `Pod in question: ${d.sent.metadata.namespace}/${d.sent.metadata.name} on node ${d.node} (bound to it below).`,
    `Engine:    ${outcomeText(d.engine)}`,
    `  per node: ${[...d.perNode].map(([n, v]) => `${n}=${v}`).join(' ')}`,
    `Scheduler: ${outcomeText(d.scheduler)}`,
  ]
    .map((l) => `# ${l}`)
    .join('\n');
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      ...d.snapshot.nodes.map((n) => ({ apiVersion: 'v1', kind: 'Node', ...n })),
      ...d.snapshot.pods.map((p) => ({ apiVersion: 'v1', kind: 'Pod', ...p })),
      bound,
    ],
  };
  const text = `${header}\n${stringify(list)}`;
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const file = join(FIXTURE_DIR, `${d.sent.metadata.namespace}-${d.sent.metadata.name}.yaml`);
  writeFileSync(file, text);
  return { file, text };
}

// ------------------------------------------------------------------ the test

void test(
  'NodeAffinity and PodTopologySpread verdicts agree with kube-scheduler',
  { timeout: 10 * 60_000 },
  async (t) => {
    const c = await cluster();
    const { api, run, nodes, made } = await openRun(t, c.kubeconfigPath, 'dns', NODES);
    const zones = ['z1', 'z2', 'z3'].map((z) => `${run}-${z}`);
    const seedText = `seed ${SEED} (DIFFERENTIAL_SEED=${SEED})`;
    t.diagnostic(`${seedText}, run ${run}, ${ROUNDS} worlds`);

    const blockers = `${run}-blockers`;
    made.push(blockers);
    await namespaceReady(api, blockers, run);
    await placeBlockers(api, blockers, nodes);

    let verdicts = 0;
    let agreed = 0;
    let retried = 0;
    const byOutcome = new Map<string, number>();
    const reports: string[] = [];
    const started = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      const world = randomNodeWorld(
        new Rng(roundSeed(SEED, round)),
        `random round ${round}`,
        nodes,
        zones,
        PROBES_PER_ROUND,
      );
      const namespace = `${run}-r${round}`;
      made.push(namespace);
      await setNodes(api, nodes, world, run);
      await namespaceReady(api, namespace, run);
      await placePods(api, world, namespace, nodes);
      for (const probe of world.probes) {
        for (const [i, node] of nodes.entries()) {
          const compare = async (suffix: string) => {
            const snapshot = await takeSnapshot(api, namespace);
            const name = `${probe.name}-on${i}${suffix}`;
            // The engine judges the pod as the API server stored it (matchLabelKeys merged in).
            const sent = await api.ok<PodJson>(
              HttpMethod.POST,
              podPath(namespace),
              probeManifest(probe, namespace, name, run, i),
            );
            try {
              const engine = engineOutcome(snapshot, sent, node);
              const scheduler = await schedulerOutcome(api, sent, node);
              return { snapshot, sent, scheduler, ...engine };
            } finally {
              await deletePodNow(api, namespace, name);
            }
          };
          let r = await compare('');
          if (!sameOutcome(r.outcome, r.scheduler)) {
            retried++;
            await sleep(RETRY_PAUSE_MS);
            r = await compare('-again');
          }
          verdicts++;
          const key =
            r.scheduler.kind === 'bound'
              ? 'bound'
              : `refused on its node (${r.perNode.get(node) ?? '?'})`;
          byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
          if (sameOutcome(r.outcome, r.scheduler)) {
            agreed++;
            continue;
          }
          const { file, text } = fixture(
            {
              world: world.title,
              sent: r.sent,
              node,
              snapshot: r.snapshot,
              engine: r.outcome,
              perNode: r.perNode,
              scheduler: r.scheduler,
            },
            seedText,
          );
          const head = `${namespace}/${r.sent.metadata.name} on ${node}: engine ${outcomeText(r.outcome)}, scheduler ${outcomeText(r.scheduler)}; fixture ${file}`;
          t.diagnostic(head);
          t.diagnostic(text);
          reports.push(head);
        }
      }
      await removeNamespaces(api, [namespace]);
    }
    const split = [...byOutcome].map(([k, v]) => `${k} ${v}`).join(', ');
    t.diagnostic(
      `agreement ${agreed}/${verdicts} in ${((performance.now() - started) / 1000).toFixed(1)} s ` +
        `(scheduler: ${split}; re-probed ${retried})`,
    );
    assert.equal(reports.length, 0, `engine and scheduler disagree:\n${reports.join('\n')}`);
    assert.ok(
      verdicts >= MIN_VERDICTS,
      `only ${verdicts} verdicts; at least ${MIN_VERDICTS} expected`,
    );
  },
);
