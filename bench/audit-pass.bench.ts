/**
 * Continuous-audit benchmark: the CPU of one audit pass (`ContinuousAudit.evaluate`) after a
 * single pod change, a label no rule reads changed on one pod, a burst of 100 pod changes, a
 * node moved to another zone, a namespace relabelled, a workload scaled and a policy changed,
 * on bench/generate.ts's cluster (5,000 nodes, 150,000 pods by default). Two audits listen to
 * the same in-memory informers: one judges every pod and computes feasibility anew on every
 * pass (`fromScratch`, what every pass did before passes reused their work), the other reuses
 * what the changes left valid. Both must report the same after every step.
 *
 *   npm run bench:audit                                   # full size
 *   npm run bench:audit -- --nodes 500 --pods 15000       # quick
 *   hack/node --expose-gc bench/audit-pass.bench.ts --heap yes   # the heap each kept structure holds
 *
 * Prints one line per figure, then one JSON line with every figure. Exits 1 when the two
 * audits report differently, 2 on bad flags.
 */
import assert from 'node:assert/strict';
import type { Namespace, Node, Pod } from '../src/api/core.ts';
import type { PlacementPolicy } from '../src/api/policy.ts';
import { ContinuousAudit, type ContinuousAuditDeps } from '../src/audit/continuous-audit.ts';
import { compilePolicy, comparePolicies, type CompiledPolicy } from '../src/engine/index.ts';
import { MemorySource } from '../test/support/memory-source.ts';
import { intFlag, listFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import { at, generateCluster, Rng, ZONE } from './generate.ts';
import type { Workload } from '../src/api/cluster.ts';

const STEP_IDS = [
  'pod',
  'pod-label',
  'burst',
  'node',
  'namespace',
  'scale',
  'policy',
  'cluster-policy',
] as const;
type StepId = (typeof STEP_IDS)[number];
const USAGE =
  `usage: npm run bench:audit -- [--nodes N] [--pods N] [--runs N] [--seed N] ` +
  `[--steps ${STEP_IDS.join(',')}] [--scratch yes|no] [--heap yes|no]`;
const HOUR = 3_600_000;
const BURST = 100;

interface Options {
  readonly nodes: number;
  readonly pods: number;
  readonly runs: number;
  readonly seed: number;
  readonly steps: readonly StepId[];
  /** Whether the from-scratch audit runs beside the reusing one (and their reports are compared). */
  readonly scratch: boolean;
  /** Whether to report, after the first pass, the heap each kept structure holds (needs --expose-gc). */
  readonly heap: boolean;
}

function options(argv: readonly string[]): Options {
  const values = stringFlags(
    argv,
    ['nodes', 'pods', 'runs', 'seed', 'steps', 'scratch', 'heap'],
    USAGE,
  );
  const yesNo = (flag: string, value: string | undefined, fallback: string): boolean => {
    const v = value ?? fallback;
    if (v !== 'yes' && v !== 'no') throw new Error(`--${flag}: "${v}" is not yes or no`);
    return v === 'yes';
  };
  const scratch = yesNo('scratch', values.scratch, 'yes');
  const heap = yesNo('heap', values.heap, 'no');
  if (heap && typeof globalThis.gc !== 'function')
    throw new Error('--heap: run node with --expose-gc');
  return {
    nodes: intFlag('nodes', values.nodes, 5000, 10),
    pods: intFlag('pods', values.pods, 150_000, 100),
    runs: intFlag('runs', values.runs, 6, 2),
    seed: intFlag('seed', values.seed, 20261125, 0),
    steps: listFlag('steps', values.steps, STEP_IDS, (id) =>
      STEP_IDS.find((known) => known === id),
    ),
    scratch: scratch && !heap,
    heap,
  };
}

// ---------------------------------------------------------------- the informers, in memory

const podKeyOf = (p: Pod): string => `${p.metadata.namespace}/${p.metadata.name}`;
const workloadKeyOf = (w: Workload): string => `${w.kind}/${w.namespace}/${w.name}`;

function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

/** The generated cluster as the operator's informers hold it. */
class World {
  readonly pods: MemorySource<Pod>;
  readonly nodes: MemorySource<Node>;
  readonly namespaces: MemorySource<Namespace>;
  readonly workloads: MemorySource<Workload>;
  readonly sources: readonly PlacementPolicy[];
  policies: readonly CompiledPolicy[];

  constructor(opts: Options) {
    const { snapshot } = generateCluster({ nodes: opts.nodes, pods: opts.pods, seed: opts.seed });
    this.pods = new MemorySource(podKeyOf, snapshot.pods);
    this.nodes = new MemorySource((n) => n.metadata.name, snapshot.nodes);
    this.namespaces = new MemorySource((n) => n.metadata.name, snapshot.namespaces);
    // The generator gives no replica counts or template affinity: take them from the pods.
    const ofReplicaSet = new Map<string, { replicas: number; pod: Pod }>();
    for (const p of snapshot.pods) {
      if (p.status?.phase !== 'Running') continue;
      const key = `${p.metadata.namespace}/${p.metadata.ownerReferences?.[0]?.name ?? ''}`;
      const seen = ofReplicaSet.get(key);
      ofReplicaSet.set(key, { replicas: (seen?.replicas ?? 0) + 1, pod: seen?.pod ?? p });
    }
    const replicaSetOf = new Map<string, string>();
    for (const o of snapshot.workloads) {
      const owner = o.metadata.ownerReferences?.[0]?.name;
      const ns = o.metadata.namespace ?? '';
      if (owner !== undefined) replicaSetOf.set(`${ns}/${owner}`, `${ns}/${o.metadata.name}`);
    }
    this.workloads = new MemorySource(
      workloadKeyOf,
      snapshot.workloads.map((o): Workload => {
        const namespace = o.metadata.namespace ?? '';
        const own = `${namespace}/${o.metadata.name}`;
        const pods = ofReplicaSet.get(
          o.kind === 'ReplicaSet' ? own : (replicaSetOf.get(own) ?? ''),
        );
        return {
          kind: o.kind === 'ReplicaSet' ? 'ReplicaSet' : 'Deployment',
          namespace,
          name: o.metadata.name,
          uid: `uid-${own}`,
          resourceVersion: '1',
          generation: 1,
          annotations: {},
          ownerReferences: o.metadata.ownerReferences ?? [],
          selector: o.spec?.selector,
          templateLabels: o.spec?.template?.metadata?.labels ?? {},
          affinity: pods?.pod.spec.affinity,
          rolledOut: true,
          replicas: pods?.replicas ?? 0,
        };
      }),
    );
    this.sources = snapshot.policies;
    this.policies = snapshot.policies.map(compiled).sort(comparePolicies);
  }

  /** When an audit first set placement_violations since this was 0 (performance.now()). */
  violationsSetAt = 0;

  deps(): ContinuousAuditDeps {
    const quiet = (): undefined => undefined;
    return {
      pods: this.pods,
      nodes: this.nodes,
      namespaces: this.namespaces,
      workloads: [this.workloads],
      policies: () => this.policies,
      events: { record: quiet },
      metrics: {
        setPolicyWorkloads: quiet,
        setViolations: () => {
          if (this.violationsSetAt === 0) this.violationsSetAt = performance.now();
        },
        setCrossNamespaceViolations: quiet,
        forgetPolicy: quiet,
        auditFinished: quiet,
        workloadWritten: quiet,
        workloadReverted: quiet,
        evicted: quiet,
        setRolloutBudget: quiet,
        setSettling: quiet,
        setRolloutsHeldBack: quiet,
        setInjectionMode: quiet,
      },
      log: { info: quiet, warn: quiet, error: quiet, debug: quiet },
      evictionDryRun: false,
      onChange: quiet,
    };
  }
}

// ---------------------------------------------------------------- measuring

const figures: Record<string, unknown> = {};
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = (s.length - 1) / 2;
  return (at(s, Math.floor(mid)) + at(s, Math.ceil(mid))) / 2;
}

/**
 * Main-thread CPU (user + system) of an audit pass, in ms, and how long after its start it
 * set placement_violations (wall ms).
 */
async function passCpuMs(
  audit: ContinuousAudit,
  world: World,
): Promise<{ cpu: number; violationsAfter: number }> {
  const c0 = process.threadCpuUsage();
  const started = performance.now();
  world.violationsSetAt = 0;
  await audit.evaluate();
  const c = process.threadCpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, violationsAfter: world.violationsSetAt - started };
}

function print(label: string, text: string): void {
  console.log(`${label.padEnd(44)} ${text}`);
}

/** What each audit reports: violations, and every policy's summary but the audit time. */
function reported(audit: ContinuousAudit, policies: readonly CompiledPolicy[]): unknown {
  return {
    violations: audit.report?.violations,
    summaries: policies.map((p) => {
      const s = audit.summary(p.ref);
      if (s === undefined) return undefined;
      const { lastAuditTime: _time, ...rest } = s;
      return rest;
    }),
  };
}

const MIB = 1024 * 1024;

/** Heap used after two full collections, in MiB. */
function heapMiB(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / MIB;
}

const mibs = (m: NodeJS.MemoryUsage): Record<string, number> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v / MIB, 1)]));

/** RSS, heap total and used, and external memory (ArrayBuffers included), in MiB. */
const showMemory = (m: NodeJS.MemoryUsage): string =>
  `RSS ${Math.round(m.rss / MIB)} MiB, heap ${Math.round(m.heapUsed / MIB)}/${Math.round(m.heapTotal / MIB)} MiB ` +
  `used/total, external ${Math.round(m.external / MIB)} MiB`;

/**
 * What the audit keeps after its first pass, structure by structure: each is let go in turn
 * (in this order, so what two share counts with the later one) and the heap measured after a
 * full collection. The informers' objects stay; they were measured before the audit started.
 */
async function heapBreakdown(
  audit: ContinuousAudit,
  cachesMiB: number,
  afterPassMiB: number,
  pods: number,
): Promise<void> {
  const live = Reflect.get(audit, 'live') as object;
  const held: [label: string, fields: [owner: object, field: string][]][] = [
    [
      'last report and policy summaries',
      [
        [audit, 'lastReport'],
        [audit, 'summaries'],
      ],
    ],
    ['KeptFindings (classified findings)', [[audit, 'findingsKept']]],
    ['KeptAuditOnly', [[audit, 'auditOnlyKept']]],
    ['KeptReport (violations merged by pod)', [[audit, 'merged']]],
    ['IncrementalAudit (inter-pod verdicts)', [[audit, 'verdicts']]],
    ['IncrementalNodeSpread (node, spread findings)', [[audit, 'nodeSpreadKept']]],
    ['SpreadPodCache (compiled spread rules)', [[audit, 'spreadPods']]],
    ['feasibility result', [[live, 'feasible']]],
    ['TopologyIndex', [[live, 'current']]],
  ];
  const rows: Record<string, number> = {};
  let before = heapMiB();
  const kept = before - cachesMiB;
  const garbage = afterPassMiB - before;
  print('heap: informer caches (before the audit)', `${round(cachesMiB, 1)} MiB`);
  print('heap: garbage the first pass left', `${round(garbage, 1)} MiB (used before a GC)`);
  print(
    'heap: audit kept after the first pass',
    `${round(kept, 1)} MiB (${Math.round((kept * MIB) / pods)} B per pod)`,
  );
  for (const [label, fields] of held) {
    for (const [owner, field] of fields) Reflect.set(owner, field, null);
    const now = heapMiB();
    rows[label] = round(before - now, 1);
    before = now;
  }
  await audit.stop();
  rows['the rest (handlers, remediation, changes)'] = round(before - cachesMiB, 1);
  for (const [name, mib] of Object.entries(rows))
    print(`  ${name}`, `${mib} MiB (${Math.round((mib * MIB) / pods)} B per pod)`);
  figures['heapMiB'] = {
    caches: round(cachesMiB, 1),
    garbageAfterFirstPass: round(garbage, 1),
    kept: round(kept, 1),
    ...rows,
  };
}

interface Step {
  readonly id: StepId;
  readonly name: string;
  /** Makes the change(s); called once per run, alternating between two states. */
  readonly change: (run: number) => void;
}

async function main(): Promise<void> {
  const opts = optionsOrExit(options, USAGE);
  print('node', `${process.version}; load average ${loadAverage()}`);
  figures['node'] = process.version;
  figures['options'] = opts;
  figures['loadAverageAtStart'] = loadAverage();

  const world = new World(opts);
  print(
    'cluster',
    `${world.nodes.list().length} nodes, ${world.pods.list().length} pods, ` +
      `${world.workloads.list().length} workloads, ${world.policies.length} policies`,
  );
  const timers = { debounceMs: HOUR, fullCheckMs: HOUR };
  const scratch = opts.scratch
    ? new ContinuousAudit(world.deps(), { ...timers, fromScratch: true })
    : null;
  const cachesMiB = opts.heap ? heapMiB() : 0;
  const reusing = new ContinuousAudit(world.deps(), timers);
  scratch?.start();
  reusing.start();
  const first = {
    scratch: scratch === null ? null : round((await passCpuMs(scratch, world)).cpu, 1),
    reusing: round((await passCpuMs(reusing, world)).cpu, 1),
  };
  print(
    'first pass (everything new)',
    `${first.scratch ?? '-'} ms CPU from scratch, ${first.reusing} ms reusing (judges every pod)`,
  );
  figures['firstPassCpuMs'] = { fromScratch: first.scratch, reusing: first.reusing };
  if (opts.heap) {
    const afterPass = process.memoryUsage();
    const afterGc = (heapMiB(), process.memoryUsage());
    print('memory after the first pass', showMemory(afterPass));
    print('  after a full GC', showMemory(afterGc));
    print('peak RSS so far', `${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
    figures['memoryAfterFirstPass'] = { before: mibs(afterPass), afterGc: mibs(afterGc) };
    figures['maxRssMiB'] = Math.round(process.resourceUsage().maxRSS / 1024);
    await heapBreakdown(reusing, cachesMiB, afterPass.heapUsed / MIB, world.pods.list().length);
    console.log(JSON.stringify(figures));
    return;
  }

  const rng = new Rng(opts.seed + 7);
  const running = world.pods.list().filter((p) => p.status?.phase === 'Running');
  const sample = (n: number): Pod[] =>
    Array.from({ length: n }, () => at(running, rng.int(running.length)));
  /** Takes the pods out on even runs and puts them back on odd ones. */
  const churn = (n: number) => {
    let pods: Pod[] = [];
    return (run: number) => {
      if (run % 2 === 0) {
        pods = [...new Map(sample(n).map((p) => [podKeyOf(p), p])).values()];
        for (const p of pods) world.pods.delete(podKeyOf(p));
      } else for (const p of pods) world.pods.set(p);
    };
  };
  /** A new generation of one policy; the others stay the objects they were, as in the catalog. */
  const edit = (id: StepId, name: string, label: string): Step => ({
    id,
    name: label,
    change: (run) => {
      const source = world.sources.find((p) => p.metadata.name === name);
      if (source === undefined) throw new Error(`no policy ${name}`);
      const generation = (source.metadata.generation ?? 1) + run + 1;
      const next = compiled({ ...source, metadata: { ...source.metadata, generation } });
      world.policies = world.policies
        .map((p) => (p.ref === next.ref ? next : p))
        .sort(comparePolicies);
    },
  });
  const deployments = world.workloads.list().filter((w) => w.kind === 'Deployment');
  const zoned = world.nodes.list().filter((n) => n.metadata.labels?.[ZONE] !== undefined);
  /** Moves a node (one with pods) to another zone on even runs and back on odd ones. */
  const nodeMove: Step = {
    id: 'node',
    name: 'a node moved to another zone / back',
    change: (run) => {
      const node = at(zoned, Math.floor(run / 2) % zoned.length);
      const labels = node.metadata.labels ?? {};
      const zone = labels[ZONE] ?? '';
      const other = run % 2 === 0 ? `${zone}-moved` : zone;
      world.nodes.set({
        ...node,
        metadata: { ...node.metadata, labels: { ...labels, [ZONE]: other } },
      });
    },
  };
  const teams = world.namespaces.list().filter((n) => n.metadata.name.startsWith('team-'));
  /** A label no rule reads, added to a team namespace on even runs and taken off on odd ones. */
  const namespaceRelabel: Step = {
    id: 'namespace',
    name: 'a namespace relabelled',
    change: (run) => {
      const ns = at(teams, Math.floor(run / 2) % teams.length);
      const labels = {
        ...ns.metadata.labels,
        ...(run % 2 === 0 ? { 'bench/touched': 'yes' } : {}),
      };
      world.namespaces.set({ ...ns, metadata: { ...ns.metadata, labels } });
    },
  };
  /** A label no rule reads, added to a running pod on even runs and taken off on odd ones. */
  const podRelabel: Step = {
    id: 'pod-label',
    name: "a pod's unread label changed / back",
    change: (run) => {
      const pod = at(running, (Math.floor(run / 2) * 7919) % running.length);
      const labels = {
        ...pod.metadata.labels,
        ...(run % 2 === 0 ? { 'bench/touched': 'yes' } : {}),
      };
      world.pods.set({ ...pod, metadata: { ...pod.metadata, labels } });
    },
  };
  const steps: Step[] = [
    { id: 'pod', name: 'one pod deleted / re-created', change: churn(1) },
    podRelabel,
    { id: 'burst', name: `${BURST} pods deleted / re-created`, change: churn(BURST) },
    nodeMove,
    namespaceRelabel,
    {
      id: 'scale',
      name: 'a Deployment scaled up / down',
      change: (run) => {
        const w = at(deployments, Math.floor(run / 2) % deployments.length);
        world.workloads.set({ ...w, replicas: w.replicas + (run % 2 === 0 ? 1 : 0) });
      },
    },
    edit('policy', 'spread-frontends', 'a PlacementPolicy edited (one team)'),
    edit('cluster-policy', 'prefer-zone-spread-prod', 'a ClusterPlacementPolicy edited (prod)'),
  ];

  let agree = true;
  const results: Record<string, unknown> = {};
  for (const step of steps.filter((s) => opts.steps.includes(s.id))) {
    const cpu = { scratch: [] as number[], reusing: [] as number[], change: [] as number[] };
    const shown: number[] = [];
    const computed = reusing.stats.feasibilityRuns;
    const judged: number[] = [];
    for (let run = 0; run < opts.runs; run++) {
      const c0 = process.threadCpuUsage();
      step.change(run);
      const c = process.threadCpuUsage(c0);
      cpu.change.push((c.user + c.system) / 1000);
      if (scratch !== null) cpu.scratch.push((await passCpuMs(scratch, world)).cpu);
      const pass = await passCpuMs(reusing, world);
      cpu.reusing.push(pass.cpu);
      shown.push(pass.violationsAfter);
      judged.push(reusing.judgedLastPass);
      if (scratch !== null)
        try {
          assert.deepEqual(reported(reusing, world.policies), reported(scratch, world.policies));
        } catch {
          agree = false;
          console.error(`  ${step.name}, run ${run}: the two audits report differently`);
        }
    }
    const figure = {
      fromScratchMs: scratch === null ? null : round(median(cpu.scratch), 1),
      reusingMs: round(median(cpu.reusing), 2),
      // Both audits' index updates (and the reusing one's choice of pods to judge again).
      changeMs: round(median(cpu.change), 2),
      runs: opts.runs,
      feasibilityComputed: reusing.stats.feasibilityRuns - computed,
      podsJudged: median(judged),
      // Wall time from the reusing pass's start to placement_violations set.
      violationsShownMs: round(median(shown), 1),
    };
    results[step.name] = figure;
    print(
      step.name,
      `pass CPU median ${figure.fromScratchMs ?? '-'} ms from scratch, ${figure.reusingMs} ms reusing, ` +
        `${figure.changeMs} ms applying the change ` +
        `(${opts.runs} runs; reusing judged ${figure.podsJudged} pods and computed feasibility ` +
        `in ${figure.feasibilityComputed}; violations shown after ${figure.violationsShownMs} ms)`,
    );
  }
  figures['passCpuMs'] = results;
  await scratch?.stop();
  await reusing.stop();
  print(
    'same reports',
    scratch === null ? 'not compared (--scratch no)' : agree ? 'yes, after every step' : 'NO',
  );
  if (!agree) process.exitCode = 1;
  figures['sameReports'] = agree;
  figures['loadAverageAtEnd'] = loadAverage();
  // Peak resident set of the whole run (both audits when --scratch yes), in MiB.
  figures['maxRssMiB'] = Math.round(process.resourceUsage().maxRSS / 1024);
  print('peak RSS', `${String(figures['maxRssMiB'])} MiB`);
  console.log(JSON.stringify(figures));
}

await main();
