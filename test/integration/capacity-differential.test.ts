// Not a clusterTest: worlds made and removed through the API by run id.
// The scheduler as the oracle of the engine's capacity count: how many pods of a workload
// can run under all its required rules together (workloadCapacities, the count behind
// "at most N of M pods can run"). For each seeded random world (differential/capacity-worlds.ts):
//   1. its nodes are created (zones, labels, taints, cordons), then its provider workloads'
//      pods, unbound; the scheduler binds what it can. The engine's count for the providers,
//      from the nodes alone, must equal the pods bound.
//   2. The engine's count for the workload under test is taken from the world as the API
//      server now serves it (nodes, namespaces, every pod where it landed or Pending), with
//      the providers' missing pods placed as the engine places them. Then the workload's pods
//      are created, unbound, all at once, and the pods bound are counted.
// A pod is decided when it is bound or has PodScheduled=False, reason Unschedulable: the
// scheduler tried it and no node passed its filters. Every pod is waited on (with a deadline)
// until decided. The count is final then: nothing in a world is deleted, and a pod that
// failed can only fit after a change that lets it fit, which here is only another pod
// binding; the pods of one workload are identical, so once one fails on a state every one
// later tried on it fails, and providers select neither one another nor, by affinity, the
// workload under test (no bind of a later pod can let them start).
//
// Exact equality, except where the scheduler's pick among nodes decides the count. The
// engine places one pod at a time on the best node by its own tie-break (fewest pods of the
// workload, then name); the scheduler picks among the nodes that pass by scores the engine does
// not model. The first pod of a group with self-affinity that no pod meets yet may go on any
// node, and where it lands decides how many follow (affinity by hostname, anti-affinity by zone:
// on a node without a zone label every replica follows, on a zoned one none does). There the
// engine's count is the most that can run ("at most N" is an upper bound) and its `fewest` the
// least; the scheduler's count must lie between them, or between the engine's counts with the
// nodes taken in every order where those differ. Such worlds are listed.
//
// Feasibility, the policy's Unsatisfiable condition, is checked on the same worlds with the
// workload's terms asked by a PlacementPolicy (as the operator would write them into its
// template): Unsatisfiable only if the scheduler bound fewer than all, with "at most N" the
// engine's count; satisfiable while the engine counts fewer only if no term of the policy
// refuses the next pod (a nodeSelector, taints, cordons or other pods' anti-affinity are not
// the policy's doing).
//
// Every disagreement fails the test and is printed as a fixture: the engine's whole input
// (nodes, namespaces, pods as served, the workloads' templates) with both counts and
// feasibility's messages, which `enginePrediction` and `engineUnsatisfiable` replay without a
// cluster.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/capacity-differential.test.ts
//
// CAPACITY_SEED=<n> replays a run; CAPACITY_WORLDS=<n> sets how many worlds (default 50);
// CAPACITY_PARALLEL=<n> how many are built at once (default 5). Worlds are isolated from one
// another and from other tests: own nodes (tainted, labelled with the world's id, and every
// pod of the world selects that label), own zone values and namespaces, and pod labels under
// a key no other test uses; the terms never reach beyond the world's namespaces.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import type { Namespace, Node, Pod } from '../../src/api/core.ts';
import { fakeNodeManifest } from '../cluster/fake-node.ts';
import { readVersions } from '../cluster/paths.ts';
import {
  capacityWorld,
  engineCapacities,
  enginePrediction,
  engineUnsatisfiable,
  podSpec,
  predictionsOverNodeOrders,
  ROLE,
  WORLD_MARK,
  type CapacityWorld,
  type EngineInput,
  type WorkloadDraft,
} from './differential/capacity-worlds.ts';
import { HttpMethod, KubeApi, until as waitUntil } from './differential/kube.ts';
import { roundSeed } from './differential/worlds.ts';
import { cluster } from './harness.ts';

const WORLDS = Number(process.env['CAPACITY_WORLDS'] ?? 50);
const PARALLEL = Number(process.env['CAPACITY_PARALLEL'] ?? 5);
const SEED = Number(process.env['CAPACITY_SEED'] ?? randomBytes(4).readUInt32BE(0));
/** Marks everything a run creates, for the cleanup. */
const RUN_MARK = 'placement.dev/capacity-run';
const POLL_MS = 100;
const DEADLINE_MS = 90_000;

const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  waitUntil(what, probe, DEADLINE_MS, POLL_MS);

interface PodJson extends Pod {
  spec: Pod['spec'] & Record<string, unknown>;
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}
interface NodeJson extends Node {
  status?: { conditions?: { type: string; status: string }[] };
}

const podsPath = (ns: string): string => `/api/v1/namespaces/${ns}/pods`;
const roleSelector = (w: WorkloadDraft): string =>
  `labelSelector=${encodeURIComponent(`${ROLE}=${w.labels[ROLE] ?? ''}`)}`;

// ------------------------------------------------------------------ building a world

async function createNodes(api: KubeApi, world: CapacityWorld, run: string): Promise<void> {
  await Promise.all(
    world.nodes.map((n) => {
      const manifest = fakeNodeManifest({
        name: n.name,
        labels: { ...n.labels, [RUN_MARK]: run },
        taints: n.taints,
        capacity: { cpu: '16', memory: '64Gi', pods: '110' },
        kubeletVersion: readVersions().kubernetes,
      });
      const spec = { ...manifest.spec, ...(n.cordoned ? { unschedulable: true } : {}) };
      return api.ok(HttpMethod.POST, '/api/v1/nodes', { ...manifest, spec });
    }),
  );
  await until(`${world.id}: nodes Ready, without the not-ready taint`, async () => {
    const nodes = await Promise.all(
      world.nodes.map((n) => api.get<NodeJson>(`/api/v1/nodes/${n.name}`)),
    );
    const ready = nodes.every(
      (n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
        !(n.spec?.taints ?? []).some((t) =>
          /^node\.kubernetes\.io\/(not-ready|unreachable)$/.test(t.key),
        ),
    );
    return ready ? true : undefined;
  });
}

async function createNamespaces(api: KubeApi, world: CapacityWorld, run: string): Promise<void> {
  await Promise.all(
    world.namespaces.map((name) =>
      api.ok(HttpMethod.POST, '/api/v1/namespaces', {
        metadata: { name, labels: { [WORLD_MARK]: world.id, [RUN_MARK]: run } },
      }),
    ),
  );
  // Pods are refused until the namespace's default ServiceAccount exists.
  await Promise.all(
    world.namespaces.map((ns) =>
      until(`ServiceAccount ${ns}/default`, async () =>
        (await api.request(HttpMethod.GET, `/api/v1/namespaces/${ns}/serviceaccounts/default`))
          .status === 200
          ? true
          : undefined,
      ),
    ),
  );
}

/** Creates the workload's pods, unbound, and waits until the scheduler decided each. */
async function schedule(api: KubeApi, w: WorkloadDraft): Promise<number> {
  await Promise.all(
    Array.from({ length: w.replicas }, (_, i) =>
      api.ok(HttpMethod.POST, podsPath(w.namespace), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${w.name}-${i}`, namespace: w.namespace, labels: w.labels },
        spec: podSpec(w),
      }),
    ),
  );
  return until(`${w.namespace}/${w.name}: every pod bound or Unschedulable`, async () => {
    const { items } = await api.get<{ items: PodJson[] }>(
      `${podsPath(w.namespace)}?${roleSelector(w)}`,
    );
    let bound = 0;
    for (const p of items) {
      if ((p.spec.nodeName ?? '') !== '') {
        bound++;
        continue;
      }
      const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
      if (c?.status !== 'False') return undefined;
      if (c.reason !== 'Unschedulable')
        throw new Error(
          `${w.namespace}/${p.metadata.name}: PodScheduled=False (${c.reason ?? ''}): ${c.message ?? ''}`,
        );
    }
    return items.length === w.replicas ? bound : undefined;
  });
}

/** The world's objects as the API server serves them, cut to what the engine reads. */
async function engineInput(
  api: KubeApi,
  world: CapacityWorld,
  workloads: readonly WorkloadDraft[],
): Promise<EngineInput> {
  const selector = `labelSelector=${encodeURIComponent(`${WORLD_MARK}=${world.id}`)}`;
  const [nodes, namespaces, ...pods] = await Promise.all([
    api.get<{ items: Node[] }>(`/api/v1/nodes?${selector}`),
    api.get<{ items: Namespace[] }>(`/api/v1/namespaces?${selector}`),
    ...world.namespaces.map((ns) => api.get<{ items: PodJson[] }>(podsPath(ns))),
  ]);
  const meta = (m: Node['metadata']) => ({
    name: m.name,
    ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
    ...(m.labels === undefined ? {} : { labels: m.labels }),
  });
  return {
    nodes: nodes.items
      .map((n) => ({
        metadata: meta(n.metadata),
        spec: {
          ...(n.spec?.taints === undefined ? {} : { taints: n.spec.taints }),
          ...(n.spec?.unschedulable === true ? { unschedulable: true } : {}),
        },
      }))
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)),
    namespaces: namespaces.items.map((n) => ({ metadata: meta(n.metadata) })),
    pods: pods
      .flatMap((l) => l.items)
      .map((p) => ({
        metadata: { ...meta(p.metadata), namespace: p.metadata.namespace },
        spec: {
          ...(p.spec.nodeName === undefined ? {} : { nodeName: p.spec.nodeName }),
          ...(p.spec.affinity === undefined ? {} : { affinity: p.spec.affinity }),
        },
        status: { ...(p.status?.phase === undefined ? {} : { phase: p.status.phase }) },
      })),
    workloads,
  };
}

async function removeWorld(api: KubeApi, world: CapacityWorld): Promise<void> {
  await Promise.all(
    world.namespaces.map(async (ns) => {
      await api.request(HttpMethod.DELETE, `${podsPath(ns)}?gracePeriodSeconds=0`);
      await api.request(HttpMethod.DELETE, `/api/v1/namespaces/${ns}`);
    }),
  );
  await Promise.all(
    world.nodes.map((n) => api.request(HttpMethod.DELETE, `/api/v1/nodes/${n.name}`)),
  );
}

// ------------------------------------------------------------------ comparing

interface Comparison {
  readonly what: string;
  readonly input: EngineInput;
  /** The engine's count: the most of its pods that can run. */
  readonly engine: number;
  /**
   * The counts the scheduler's pick among nodes may give, when they are not all `engine`: from
   * the engine's `fewest` (the first pod of a self-affine group on the worst node) and its
   * counts with the nodes taken in every order.
   */
  readonly range: readonly [number, number] | null;
  readonly scheduler: number;
  /** The workload under test: what feasibility says when a policy asks its terms. */
  readonly feasibility?: { readonly messages: string[]; readonly problem: string | null };
}

const countAgrees = (c: Comparison): boolean =>
  c.range === null
    ? c.engine === c.scheduler
    : c.range[0] <= c.scheduler && c.scheduler <= c.range[1];

const agrees = (c: Comparison): boolean =>
  countAgrees(c) && (c.feasibility?.problem ?? null) === null;

/** The engine's count for each workload, and the range its scheduler's picks may give. */
function predict(input: EngineInput): Pick<Comparison, 'engine' | 'range'>[] {
  const capacities = engineCapacities(input);
  const perOrder = predictionsOverNodeOrders(input);
  return capacities.map((c, at) => {
    const over = perOrder.map((o) => o[at] ?? 0);
    const lo = Math.min(c.fewest, ...over);
    const hi = Math.max(c.placed, ...over);
    return { engine: c.placed, range: lo === hi ? null : [lo, hi] };
  });
}

/**
 * Feasibility's claim against the pods bound: Unsatisfiable ("cannot all run") only when
 * fewer than all were bound, with "at most N" the engine's count; when satisfiable, either
 * all could run or nothing the policy asks refuses the next pod (nodes its nodeSelector,
 * taints or cordons rule out, or other pods' anti-affinity, are not the policy's doing).
 */
function feasibilityProblem(
  input: EngineInput,
  messages: readonly string[],
  engine: number,
  scheduler: number,
): string | null {
  const replicas = input.workloads.at(-1)?.replicas ?? 0;
  if (messages.length > 0) {
    if (scheduler >= replicas)
      return `Unsatisfiable, but the scheduler bound all ${replicas}: ${messages.join('; ')}`;
    for (const m of messages) {
      const n = /at most (\d+) of \d+ pods can run/.exec(m)?.[1];
      if (n !== undefined && Number(n) !== engine)
        return `"at most ${n}" while the engine counts ${engine}: ${m}`;
    }
    return null;
  }
  const capacity = engineCapacities(input).at(-1);
  const blamed = [...(capacity?.misfits.values() ?? [])].some(
    (m) => m.kind === 'podAffinity' || m.kind === 'podAntiAffinity',
  );
  if (engine < replicas && blamed)
    return `satisfiable, but the engine counts ${engine} of ${replicas}, refused by the terms the policy asks`;
  return null;
}

async function judgeWorld(api: KubeApi, world: CapacityWorld, run: string): Promise<Comparison[]> {
  const out: Comparison[] = [];
  await createNamespaces(api, world, run);
  await createNodes(api, world, run);
  const before = await engineInput(api, world, world.providers);
  const providers = predict(before);
  for (const [i, p] of world.providers.entries()) {
    const scheduler = await schedule(api, p);
    const predicted = providers[i] ?? { engine: 0, range: null };
    out.push({ what: `provider ${p.namespace}/${p.name}`, input: before, ...predicted, scheduler });
  }
  const workloads = [...world.providers, world.target];
  const input = await engineInput(api, world, workloads);
  const predicted = predict(input).at(-1) ?? { engine: 0, range: null };
  const messages = engineUnsatisfiable(input);
  const scheduler = await schedule(api, world.target);
  out.push({
    what: `${world.target.namespace}/${world.target.name}`,
    input,
    ...predicted,
    scheduler,
    feasibility: {
      messages,
      problem: feasibilityProblem(input, messages, predicted.engine, scheduler),
    },
  });
  return out;
}

/** A disagreement as a fixture: the engine's whole input and both counts, as JSON. */
function fixture(world: CapacityWorld, c: Comparison): string {
  return JSON.stringify(
    {
      seed: SEED,
      world: world.id,
      worldSeed: world.seed,
      workload: c.what,
      replicas: c.input.workloads.at(-1)?.replicas,
      engine: c.engine,
      engineRange: c.range,
      scheduler: c.scheduler,
      ...(c.feasibility === undefined ? {} : { unsatisfiable: c.feasibility.messages }),
      input: c.input,
    },
    null,
    2,
  );
}

// ------------------------------------------------------------------ the test

void test(
  'capacity counts agree with the pods kube-scheduler binds (issue #10)',
  { timeout: 15 * 60_000 },
  async (t) => {
    const c = await cluster();
    const api = new KubeApi(c.kubeconfigPath);
    const run = `cap-${randomBytes(2).toString('hex')}`;
    t.diagnostic(
      `seed ${SEED} (CAPACITY_SEED=${SEED}), run ${run}, ${WORLDS} worlds, ${PARALLEL} at a time`,
    );
    const worlds = Array.from({ length: WORLDS }, (_, i) =>
      capacityWorld(roundSeed(SEED, i), `${run}-w${i}`),
    );
    t.after(async () => {
      const selector = `labelSelector=${encodeURIComponent(`${RUN_MARK}=${run}`)}`;
      const left = await api.get<{ items: Node[] }>(`/api/v1/nodes?${selector}`);
      await Promise.all(
        left.items.map((n) => api.request(HttpMethod.DELETE, `/api/v1/nodes/${n.metadata.name}`)),
      );
      const ns = await api.get<{ items: Namespace[] }>(`/api/v1/namespaces?${selector}`);
      await Promise.all(
        ns.items.map((n) =>
          api.request(HttpMethod.DELETE, `/api/v1/namespaces/${n.metadata.name}`),
        ),
      );
    });

    const started = performance.now();
    const results: { world: CapacityWorld; comparisons: Comparison[] }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let w = worlds[next++]; w !== undefined; w = worlds[next++]) {
        try {
          results.push({ world: w, comparisons: await judgeWorld(api, w, run) });
        } finally {
          await removeWorld(api, w);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);

    const all = results.flatMap((r) => r.comparisons.map((cmp) => ({ world: r.world, cmp })));
    const targets = all.filter(({ cmp }) => !cmp.what.startsWith('provider'));
    const ranged = all.filter(({ cmp }) => cmp.range !== null);
    const replicasOf = (cmp: Comparison): number => cmp.input.workloads.at(-1)?.replicas ?? 0;
    const none = targets.filter(({ cmp }) => cmp.scheduler === 0);
    const short = targets.filter(({ cmp }) => cmp.scheduler < replicasOf(cmp));
    for (const { world, cmp } of ranged)
      t.diagnostic(
        `${world.id} ${cmp.what}: the count depends on the scheduler's pick among nodes: ${cmp.range?.join('..') ?? ''} (the engine's count ${cmp.engine}), scheduler ${cmp.scheduler}`,
      );
    const disagreements = all.filter(({ cmp }) => !agrees(cmp));
    const unsatisfiable = targets.filter(({ cmp }) => (cmp.feasibility?.messages.length ?? 0) > 0);
    const line = ({ world, cmp }: (typeof all)[number]): string =>
      `${world.id} ${cmp.what}: engine ${cmp.engine}` +
      `${cmp.range === null ? '' : ` (${cmp.range.join('..')} by the scheduler's pick)`}, ` +
      `scheduler ${cmp.scheduler}${cmp.feasibility?.problem == null ? '' : `; feasibility: ${cmp.feasibility.problem}`}`;
    for (const d of disagreements) {
      const { world, cmp } = d;
      t.diagnostic(line(d));
      t.diagnostic(fixture(world, cmp));
      const at = cmp.input.workloads.findIndex((w) => cmp.what.endsWith(`/${w.name}`));
      assert.equal(enginePrediction(cmp.input)[at], cmp.engine, 'the fixture replays the engine');
    }
    t.diagnostic(
      `${results.length} worlds in ${seconds} s: ${all.length - disagreements.length}/${all.length} counts agree ` +
        `(${targets.length} workloads under test: ${none.length} with no pod bound, ` +
        `${short.length - none.length} with some, ${targets.length - short.length} with all; ` +
        `${all.length - targets.length} providers; ${ranged.length} counts depend on the scheduler's pick; ` +
        `${unsatisfiable.length} reported Unsatisfiable)`,
    );
    assert.equal(results.length, WORLDS, 'every world was judged');
    if (WORLDS >= 20)
      assert.ok(
        short.length > none.length,
        'some world binds some but not all pods of its workload under test',
      );
    assert.deepEqual(disagreements.map(line), [], 'engine and scheduler disagree (fixtures above)');
  },
);
