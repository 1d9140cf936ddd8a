/**
 * Engine benchmark: builds the topology index of a synthetic cluster (5,000 nodes,
 * 150,000 pods by default), audits it, times incremental updates, and checks the engine
 * against a naive all-pairs judge on a smaller cluster.
 *
 *   npm run bench                                   # full size
 *   npm run bench -- --nodes 500 --pods 15000       # quick (CI)
 *
 * Prints one line per figure, then one JSON line with every figure. Exits 1 when the
 * engine and the reference judge disagree, or when the index after the incremental
 * updates (all undone) no longer gives the audit it gave before them; 2 on bad flags.
 */
import { intFlag, loadAverage, optionsOrExit, stringFlags } from './flags.ts';
import type { Labels, Node, Pod } from '../src/api/core.ts';
import {
  auditIndex,
  buildIndex,
  IncrementalNodeSpread,
  judgeNodeAndSpread,
  sameNodeSpread,
  judgeNodeRules,
  nodePolicyReach,
  SpreadPodCache,
  workloadOfPod,
  nodeFacts,
  nodeRulesOfPod,
  SpreadIndex,
  SpreadJudge,
  SpreadRulesCache,
  spreadPodOf,
  type SpreadPod,
  compileAuditPolicies,
  judgePod,
  PlacementCache,
  placementOf,
  TopologyIndex,
  WorkloadLookup,
  type AuditReport,
  type ClusterSnapshot,
  type CompiledPolicy,
  type IndexedPod,
  type PodPlacement,
  type PreferredScore,
  type ResolvedTerm,
  type Selector,
  type SourcedTerm,
  type WeightedTerm,
} from '../src/engine/index.ts';
import type { Rule } from '../src/api/rules.ts';
import { at, generateCluster, Rng, ZONE, type ClusterStats } from './generate.ts';

// ---------------------------------------------------------------- flags

const USAGE = `usage: npm run bench -- [--nodes N] [--pods N] [--runs N] [--samples N]
  [--namespace-samples N] [--ref-nodes N] [--ref-pods N] [--seed N]`;

interface Options {
  readonly nodes: number;
  readonly pods: number;
  readonly runs: number;
  readonly samples: number;
  readonly namespaceSamples: number;
  readonly refNodes: number;
  readonly refPods: number;
  readonly seed: number;
}

function options(argv: readonly string[]): Options {
  const values = stringFlags(
    argv,
    ['nodes', 'pods', 'runs', 'samples', 'namespace-samples', 'ref-nodes', 'ref-pods', 'seed'],
    USAGE,
  );
  const nodes = intFlag('nodes', values.nodes, 5000, 10);
  const pods = intFlag('pods', values.pods, 150_000, 100);
  return {
    nodes,
    pods,
    runs: intFlag('runs', values.runs, 5, 1),
    samples: intFlag('samples', values.samples, 10_000, 1),
    namespaceSamples: intFlag('namespace-samples', values['namespace-samples'], 200, 1),
    refNodes: intFlag('ref-nodes', values['ref-nodes'], Math.min(200, nodes), 10),
    refPods: intFlag('ref-pods', values['ref-pods'], Math.min(4000, pods), 100),
    seed: intFlag('seed', values.seed, 20261125, 0),
  };
}

// ---------------------------------------------------------------- measuring

const figures: Record<string, unknown> = {};

const nowNs = (): bigint => process.hrtime.bigint();
const ms = (ns: number): number => ns / 1e6;
const us = (ns: number): number => ns / 1e3;
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return at(s, lo) + (at(s, hi) - at(s, lo)) * (pos - lo);
}

interface Run<T> {
  readonly value: T;
  readonly wallNs: number;
  readonly cpuUs: number;
}

/** Wall and CPU time (user + system, all threads of the process: GC helpers too). */
function timed<T>(f: () => T): Run<T> {
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  const value = f();
  const wallNs = Number(nowNs() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { value, wallNs, cpuUs: cpu.user + cpu.system };
}

function gc(): boolean {
  if (globalThis.gc === undefined) return false;
  globalThis.gc();
  globalThis.gc();
  return true;
}

const heapMB = (): number => process.memoryUsage().heapUsed / 2 ** 20;

function print(label: string, text: string): void {
  console.log(`${label.padEnd(50)} ${text}`);
}

interface Latency {
  readonly samples: number;
  /** Wall time: what a caller waits, preemption and GC pauses included. */
  readonly medianUs: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /**
   * Main-thread CPU time per operation, averaged. Linux updates the per-thread CPU clock
   * that getrusage reads at scheduler ticks and switches, so a single short operation
   * reads as 0 or a whole tick; the sum over many operations is still right.
   */
  readonly cpuMeanUs: number;
}

/** Times single operations: wall clock, and the main thread's CPU time. */
class Sampler {
  readonly wallNs: number[] = [];
  private cpuUs = 0;

  time<T>(f: () => T): T {
    const c0 = process.threadCpuUsage();
    const t0 = nowNs();
    const value = f();
    const t1 = nowNs();
    const c = process.threadCpuUsage(c0);
    this.wallNs.push(Number(t1 - t0));
    this.cpuUs += c.user + c.system;
    return value;
  }

  latency(): Latency {
    const n = this.wallNs.length;
    return {
      samples: n,
      medianUs: round(us(median(this.wallNs)), 2),
      p99Us: round(us(quantile(this.wallNs, 0.99)), 2),
      maxUs: round(us(Math.max(...this.wallNs)), 1),
      cpuMeanUs: round(this.cpuUs / n, 1),
    };
  }
}

const showLatency = (l: Latency, what: string): string =>
  `median ${fmtUs(l.medianUs)}, p99 ${fmtUs(l.p99Us)}, max ${fmtUs(l.maxUs)}; ` +
  `mean thread CPU ${fmtUs(l.cpuMeanUs)} (${l.samples} ${what})`;

const fmtUs = (x: number): string => (x >= 1000 ? `${round(x / 1000, 2)} ms` : `${round(x, 1)} µs`);

// ---------------------------------------------------------------- helpers

const isPlacedPod = (pod: Pod): boolean =>
  (pod.spec.nodeName ?? '') !== '' &&
  pod.status?.phase !== 'Succeeded' &&
  pod.status?.phase !== 'Failed' &&
  pod.metadata.deletionTimestamp === undefined;

const keyOf = (pod: Pod): string => `${pod.metadata.namespace}/${pod.metadata.name}`;

const violationKey = (v: { pod: string; rule: Rule; source: string; term: number }): string =>
  `${v.pod}|${v.rule}|${v.source}|${v.term}`;

function violationSet(report: AuditReport): Set<string> {
  return new Set(report.violations.map(violationKey));
}

function describeStats(s: ClusterStats): string {
  return (
    `${s.nodes} nodes (${s.nodesWithoutZone} without a zone label), ${s.namespaces} namespaces, ` +
    `${s.workloads} workloads (${s.constrainedWorkloads} with terms, ${s.workloadsWithRequiredTerms} required, ` +
    `${s.misplacedWorkloads} with a misplaced replica), ${s.placedPods} placed pods ` +
    `(${s.podsWithTerms} with own terms) + ${s.unplacedPods} unplaced, ${s.policies} policies`
  );
}

// ---------------------------------------------------------------- the full-size benchmark

function benchmark(opts: Options): void {
  const gen = timed(() => generateCluster({ nodes: opts.nodes, pods: opts.pods, seed: opts.seed }));
  const { snapshot, stats } = gen.value;
  print('cluster', describeStats(stats));
  print('generation (not counted)', `${round(ms(gen.wallNs), 0)} ms`);
  figures['cluster'] = stats;
  figures['generationMs'] = round(ms(gen.wallNs), 0);

  const compiled = compileAuditPolicies(snapshot.policies);
  if (compiled.errors.length > 0) throw new Error(compiled.errors.map((e) => e.message).join('\n'));
  const policies = compiled.ok;

  const haveGc = gc();
  if (!haveGc)
    console.warn('global.gc is not exposed (run with --expose-gc): heap figures are rough');
  const heapBefore = heapMB();

  // Index build: a few runs, keeping the last index.
  const buildRuns = Math.max(1, Math.min(3, opts.runs));
  const builds: Run<null>[] = [];
  let index = new TopologyIndex();
  for (let i = 0; i < buildRuns; i++) {
    index = new TopologyIndex(); // let the previous one go before building the next
    gc();
    const r = timed(() => buildIndex(snapshot, policies));
    index = r.value;
    builds.push({ value: null, wallNs: r.wallNs, cpuUs: r.cpuUs });
  }
  const build = {
    medianMs: round(ms(median(builds.map((b) => b.wallNs))), 1),
    cpuMs: round(median(builds.map((b) => b.cpuUs)) / 1000, 1),
    minMs: round(ms(Math.min(...builds.map((b) => b.wallNs))), 1),
    runs: buildRuns,
  };
  print(
    'index build (buildIndex)',
    `median ${build.medianMs} ms wall, ${build.cpuMs} ms CPU (${buildRuns} runs, min ${build.minMs} ms)`,
  );
  figures['build'] = build;
  print(
    'index size',
    `${index.size.pods} pods, ${index.size.nodes} nodes, ${index.size.namespaces} namespaces, ${index.size.groups} match groups`,
  );
  figures['indexSize'] = index.size;

  gc();
  const heapAfter = heapMB();
  const heap = {
    totalMB: round(heapAfter, 1),
    indexMB: round(heapAfter - heapBefore, 1),
    snapshotAndRuntimeMB: round(heapBefore, 1),
    exact: haveGc,
  };
  print(
    'heap used after build (after gc)',
    `${heap.totalMB} MB, of which ${heap.indexMB} MB index (${heap.snapshotAndRuntimeMB} MB snapshot objects + runtime before)`,
  );
  figures['heap'] = heap;

  // The part of the build that resolves terms (per pod, before the index sees it), with
  // one PlacementCache per run as buildIndex has.
  const lookup = new WorkloadLookup(snapshot.workloads);
  const placedPods = snapshot.pods.filter(isPlacedPod);
  const resolves: Run<null>[] = [];
  for (let i = 0; i < buildRuns; i++) {
    resolves.push(
      timed(() => {
        const cache = new PlacementCache();
        for (const pod of placedPods) placementOf(pod, policies, lookup, index, cache);
        return null;
      }),
    );
  }
  const resolve = {
    medianMs: round(ms(median(resolves.map((r) => r.wallNs))), 1),
    cpuMs: round(median(resolves.map((r) => r.cpuUs)) / 1000, 1),
  };
  print(
    '  of which: placementOf for every pod',
    `median ${resolve.medianMs} ms wall, ${resolve.cpuMs} ms CPU (${buildRuns} runs)`,
  );
  figures['buildTermResolution'] = resolve;

  // Full audit.
  const audits: Run<AuditReport>[] = [];
  for (let i = 0; i < opts.runs; i++) audits.push(timed(() => auditIndex(index)));
  const report = at(audits, audits.length - 1).value;
  const audit = {
    medianMs: round(ms(median(audits.map((a) => a.wallNs))), 1),
    cpuMs: round(median(audits.map((a) => a.cpuUs)) / 1000, 1),
    minMs: round(ms(Math.min(...audits.map((a) => a.wallNs))), 1),
    runs: opts.runs,
  };
  print(
    'full audit (auditIndex)',
    `median ${audit.medianMs} ms wall, ${audit.cpuMs} ms CPU (${opts.runs} runs, min ${audit.minMs} ms)`,
  );
  figures['audit'] = audit;
  figures['buildPlusAuditCpuMs'] = round(build.cpuMs + audit.cpuMs, 1);
  print('build + audit, CPU', `${round(build.cpuMs + audit.cpuMs, 1)} ms`);

  const byRule: Record<string, number> = {};
  for (const v of report.violations) byRule[v.rule] = (byRule[v.rule] ?? 0) + 1;
  const violating = new Set(report.violations.map((v) => v.pod)).size;
  print(
    'violations',
    `${report.violations.length} in ${violating} pods (${Object.entries(byRule)
      .map(([r, n]) => `${r} ${n}`)
      .join(', ')}); ${report.preferred.size} pods with preferred scores`,
  );
  figures['violations'] = {
    total: report.violations.length,
    pods: violating,
    byRule,
    podsWithPreferred: report.preferred.size,
  };

  nodeAndSpreadJudges(opts, snapshot, audit.cpuMs);
  nodeAndSpreadPass(opts, snapshot, policies, index, audit.cpuMs);
  nodeAndSpreadKept(opts, snapshot, policies, index);
  incremental(opts, snapshot, policies, index, report);
}

/**
 * The node-rule and topology-spread judges over every bound pod: the spread index build
 * (rules compiled once per template, pods filed by namespace), then judging each pod (the
 * counts of each distinct constraint computed on first use), and the node rules against
 * each pod's node. Each run builds a fresh index, so no run reuses another's counts.
 */
function nodeAndSpreadJudges(opts: Options, snapshot: ClusterSnapshot, auditCpuMs: number): void {
  const bound = snapshot.pods.filter(
    (p) =>
      (p.spec.nodeName ?? '') !== '' &&
      p.status?.phase !== 'Succeeded' &&
      p.status?.phase !== 'Failed',
  );
  const facts = snapshot.nodes.map(nodeFacts);
  const byName = new Map(facts.map((f) => [f.name, f]));

  const nodeRuns: Run<number>[] = [];
  for (let i = 0; i < opts.runs; i++) {
    nodeRuns.push(
      timed(() => {
        let violated = 0;
        for (const pod of bound) {
          if (pod.metadata.deletionTimestamp !== undefined) continue;
          const node = byName.get(pod.spec.nodeName ?? '');
          if (node === undefined) continue;
          if (judgeNodeRules(nodeRulesOfPod(pod), node).kind === 'violated') violated++;
        }
        return violated;
      }),
    );
  }
  const builds: Run<null>[] = [];
  const judges: Run<{ violated: number; constraints: number }>[] = [];
  for (let i = 0; i < opts.runs; i++) {
    gc();
    let pods: SpreadPod[] = [];
    let index: SpreadIndex | undefined;
    builds.push(
      timed(() => {
        const cache = new SpreadRulesCache();
        pods = bound.map((p) => spreadPodOf(p, cache));
        index = new SpreadIndex(facts, pods);
        return null;
      }),
    );
    const judge = new SpreadJudge(index ?? new SpreadIndex([], []));
    judges.push(
      timed(() => {
        let violated = 0;
        let constraints = 0;
        for (const p of pods) {
          if (p.terminating === true) continue;
          constraints += p.rules.hard.length + p.rules.soft.length;
          if (judge.judge(p).kind === 'violated') violated++;
        }
        return { violated, constraints };
      }),
    );
  }
  const cpu = (rs: readonly Run<unknown>[]): number =>
    round(median(rs.map((r) => r.cpuUs)) / 1000, 1);
  const wall = (rs: readonly Run<unknown>[]): number =>
    round(ms(median(rs.map((r) => r.wallNs))), 1);
  const last = at(judges, judges.length - 1).value;
  const figuresHere = {
    nodeRules: {
      medianMs: wall(nodeRuns),
      cpuMs: cpu(nodeRuns),
      violatingPods: at(nodeRuns, 0).value,
    },
    spreadBuild: { medianMs: wall(builds), cpuMs: cpu(builds) },
    spreadJudge: {
      medianMs: wall(judges),
      cpuMs: cpu(judges),
      violatingPods: last.violated,
      constraints: last.constraints,
    },
  };
  print(
    'node rules, every bound pod (judgeNodeRules)',
    `median ${figuresHere.nodeRules.medianMs} ms wall, ${figuresHere.nodeRules.cpuMs} ms CPU; ${figuresHere.nodeRules.violatingPods} violating pods`,
  );
  print(
    'spread index build (SpreadIndex)',
    `median ${figuresHere.spreadBuild.medianMs} ms wall, ${figuresHere.spreadBuild.cpuMs} ms CPU`,
  );
  print(
    'spread judge, every bound pod (SpreadJudge)',
    `median ${figuresHere.spreadJudge.medianMs} ms wall, ${figuresHere.spreadJudge.cpuMs} ms CPU; ` +
      `${last.constraints} constraints, ${last.violated} violating pods`,
  );
  const total = round(auditCpuMs + figuresHere.nodeRules.cpuMs + figuresHere.spreadJudge.cpuMs, 1);
  print(
    'full audit incl. node rules and spread, CPU',
    `${total} ms (+ ${figuresHere.spreadBuild.cpuMs} ms spread build)`,
  );
  figures['nodeAndSpread'] = { ...figuresHere, fullAuditCpuMs: total };
}

/**
 * The node and spread rules as an audit pass judges them (judgeNodeAndSpread): the spread
 * index built afresh, each pod's policies found, node rules (policy requirements attributed)
 * and spread judged for every bound pod; added to the inter-pod audit for the full pass.
 */
function nodeAndSpreadPass(
  opts: Options,
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  index: TopologyIndex,
  auditCpuMs: number,
): void {
  const lookup = new WorkloadLookup(snapshot.workloads);
  // Cold: the first pass compiles every pod's spread rules; warm: the operator's later passes
  // keep them (SpreadPodCache) for the Pod objects that did not change.
  const measure = (warm: boolean) => {
    const kept = new SpreadPodCache();
    const pass = (compiled: SpreadPodCache): number =>
      judgeNodeAndSpread({
        nodes: snapshot.nodes,
        pods: snapshot.pods,
        policiesOf: nodePolicyReach(policies, (pod) => workloadOfPod(pod, lookup), index),
        compiled,
      }).violations.length;
    if (warm) pass(kept);
    const runs: Run<number>[] = [];
    for (let i = 0; i < opts.runs; i++) {
      gc();
      runs.push(timed(() => pass(warm ? kept : new SpreadPodCache())));
    }
    return {
      medianMs: round(ms(median(runs.map((r) => r.wallNs))), 1),
      cpuMs: round(median(runs.map((r) => r.cpuUs)) / 1000, 1),
      minMs: round(ms(Math.min(...runs.map((r) => r.wallNs))), 1),
      violations: at(runs, 0).value,
    };
  };
  const cold = measure(false);
  const warm = measure(true);
  for (const [what, m] of [
    ['first pass', cold],
    ['later passes', warm],
  ] as const) {
    print(
      `node and spread rules, ${what} (judgeNodeAndSpread)`,
      `median ${m.medianMs} ms wall, ${m.cpuMs} ms CPU (${opts.runs} runs, min ${m.minMs} ms); ${m.violations} violations`,
    );
  }
  const total = round(auditCpuMs + warm.cpuMs, 1);
  print('full audit pass: auditIndex + judgeNodeAndSpread (later passes), CPU', `${total} ms`);
  figures['nodeAndSpreadPass'] = { cold, warm, fullAuditCpuMs: total };
}

/**
 * The node and spread rules kept between passes (IncrementalNodeSpread): the CPU of a pass
 * after one change, each change made and undone `runs` times (no forced GC before a timed
 * pass: the concurrent sweep it starts would be counted). Each kind of change is also
 * judged from scratch once (untimed); the bench exits 1 if the two disagree.
 */
function nodeAndSpreadKept(
  opts: Options,
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  index: TopologyIndex,
): void {
  const lookup = new WorkloadLookup(snapshot.workloads);
  const rng = new Rng(opts.seed ^ 0x5bead);
  const nodes = [...snapshot.nodes];
  let pods = [...snapshot.pods];
  const compiled = new SpreadPodCache();
  const kept = new IncrementalNodeSpread(compiled);
  const input = () => ({
    nodes,
    pods,
    policiesOf: nodePolicyReach(policies, (pod) => workloadOfPod(pod, lookup), index),
    compiled,
  });
  const first = timed(() => kept.pass(input()));
  print(
    'node and spread rules kept, first pass',
    `${round(ms(first.wallNs), 1)} ms wall, ${round(first.cpuUs / 1000, 1)} ms CPU`,
  );
  const spreading = pods.filter(
    (p) => isPlacedPod(p) && (p.spec.topologySpreadConstraints ?? []).length > 0,
  );
  const zones = [...new Set(nodes.map((n) => n.metadata.labels?.[ZONE] ?? ''))].sort();
  // Each change: what it does, and what undoes it.
  const changes: Record<string, () => [() => void, () => void]> = {
    nothing: () => [() => undefined, () => undefined],
    'one pod relabelled': () => {
      const i = pods.indexOf(rng.pick(spreading));
      const pod = at(pods, i);
      const labels = { ...pod.metadata.labels, 'bench/rev': String(rng.int(1e9)) };
      const changed = { ...pod, metadata: { ...pod.metadata, labels } };
      return [() => void (pods[i] = changed), () => void (pods[i] = pod)];
    },
    'one pod deleted': () => {
      const i = pods.indexOf(rng.pick(spreading));
      const before = pods;
      return [() => void (pods = pods.filter((_, j) => j !== i)), () => void (pods = before)];
    },
    'one node moved to another zone': () => {
      const i = rng.int(nodes.length);
      const node = at(nodes, i);
      const zone = rng.pick(zones.filter((z) => z !== node.metadata.labels?.[ZONE]));
      const labels = { ...node.metadata.labels, [ZONE]: zone };
      const moved = { ...node, metadata: { ...node.metadata, labels } };
      return [() => void (nodes[i] = moved), () => void (nodes[i] = node)];
    },
  };
  const out: Record<string, unknown> = { firstPassCpuMs: round(first.cpuUs / 1000, 1) };
  for (const [what, make] of Object.entries(changes)) {
    const runs: Run<number>[] = [];
    for (let r = 0; r < opts.runs; r++) {
      const [apply, undo] = make();
      apply();
      runs.push(timed(() => kept.pass(input()).violations.length));
      const judged = kept.lastJudged;
      if (r === 0) {
        const differs = sameNodeSpread(kept.pass(input()), judgeNodeAndSpread(input()));
        if (differs !== null) {
          console.error(`node and spread rules kept: ${what}: differs from scratch at ${differs}`);
          process.exitCode = 1;
        }
      }
      undo();
      kept.pass(input());
      runs[runs.length - 1] = { ...at(runs, runs.length - 1), value: judged };
    }
    const m = {
      cpuMs: round(median(runs.map((r) => r.cpuUs)) / 1000, 1),
      medianMs: round(ms(median(runs.map((r) => r.wallNs))), 1),
      podsJudged: median(runs.map((r) => r.value)),
    };
    print(
      `node and spread rules kept, after ${what}`,
      `median ${m.medianMs} ms wall, ${m.cpuMs} ms CPU (${opts.runs} runs), ${m.podsJudged} pods judged`,
    );
    out[what] = m;
  }
  figures['nodeAndSpreadKept'] = out;
}

/** Per-change timings; every change is undone (untimed) so the cluster stays the same. */
function incremental(
  opts: Options,
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
  index: TopologyIndex,
  before: AuditReport,
): void {
  const rng = new Rng(opts.seed ^ 0x5eed);
  const lookup = new WorkloadLookup(snapshot.workloads);
  const placed = snapshot.pods.filter(isPlacedPod);
  const tiers = ['frontend', 'backend', 'cache', 'batch', 'worker'];

  // A pod relabelled: its tier changes (terms and policies select on tier).
  const resolve = new Sampler();
  const upsert = new Sampler();
  for (let i = 0; i < opts.samples; i++) {
    const pod = rng.pick(placed);
    const original = entryOf(index, keyOf(pod));
    const labels = pod.metadata.labels ?? {};
    const tier = rng.pick(tiers.filter((t) => t !== labels['tier']));
    const relabelled: Pod = {
      ...pod,
      metadata: { ...pod.metadata, labels: { ...labels, tier, 'bench/rev': String(i) } },
    };
    const p = resolve.time(() => placementOf(relabelled, policies, lookup, index));
    upsert.time(() => {
      index.upsertPod(p);
    });
    index.upsertPod(original.pod);
  }
  report('upsertPod, relabelled pod', 'upsertRelabelled', upsert, 'pods');
  report('  placementOf for it (resolving terms)', 'placementOfRelabelled', resolve, 'pods');

  // The worst case found so far: a pod that alone holds a group whose selector no label
  // narrows (NotIn only). upsertPod releases the group, which drops it, then builds it
  // again by matching every pod of the cluster.
  const lonely = [...index.allPods()].filter((e) =>
    [...e.termGroups.values()].some((g) => g.anchor.kind === 'none' && g.refs === 1),
  );
  const worst = new Sampler();
  for (const entry of lonely.slice(0, 20)) {
    worst.time(() => {
      index.upsertPod({ ...entry.pod, labels: { ...entry.pod.labels, 'bench/rev': 'x' } });
    });
    index.upsertPod(entry.pod);
  }
  if (worst.wallNs.length > 0) {
    report(
      '  worst case: sole holder of an unanchored group',
      'upsertSoleUnanchoredHolder',
      worst,
      'pods',
    );
  }

  // A pod deleted and its replacement bound to another node.
  const replace = new Sampler();
  for (let i = 0; i < opts.samples; i++) {
    const pod = rng.pick(placed);
    const original = entryOf(index, keyOf(pod));
    const node = rng.pick(snapshot.nodes).metadata.name;
    const replacement = placementOf(
      {
        ...pod,
        metadata: { ...pod.metadata, name: `${pod.metadata.name}-r${i}` },
        spec: { ...pod.spec, nodeName: node },
      },
      policies,
      lookup,
      index,
    );
    replace.time(() => {
      index.removePod(original.pod.key);
      index.upsertPod(replacement);
    });
    index.removePod(replacement.key);
    index.upsertPod(original.pod);
  }
  report('removePod + upsertPod (replaced elsewhere)', 'removeThenUpsert', replace, 'pods');

  // Judging one pod, which is what follows an update for the pods it affects.
  const judge = new Sampler();
  for (let i = 0; i < opts.samples; i++) {
    const entry = entryOf(index, keyOf(rng.pick(placed)));
    judge.time(() => judgePod(index, entry));
  }
  report('judgePod, one pod', 'judgePod', judge, 'pods');

  // A node relabelled (a label no term uses: the index still moves every pod on it).
  const podsPerNode = Math.round(index.size.pods / index.size.nodes);
  const nodeSampler = new Sampler();
  for (let i = 0; i < opts.samples; i++) {
    const node: Node = rng.pick(snapshot.nodes);
    const labels: Labels = node.metadata.labels ?? {};
    nodeSampler.time(() => {
      index.setNode(node.metadata.name, { ...labels, 'bench/rev': String(i) });
    });
    index.setNode(node.metadata.name, labels);
  }
  report(`setNode, node relabel (~${podsPerNode} pods)`, 'setNodeRelabel', nodeSampler, 'nodes');

  // A namespace relabelled: every pod in it is taken out and put back.
  const podsPerNs = Math.round(index.size.pods / index.size.namespaces);
  const nsSampler = new Sampler();
  for (let i = 0; i < opts.namespaceSamples; i++) {
    const ns = rng.pick(snapshot.namespaces);
    const labels: Labels = ns.metadata.labels ?? {};
    nsSampler.time(() => {
      index.setNamespace(ns.metadata.name, { ...labels, 'bench/rev': String(i) });
    });
    index.setNamespace(ns.metadata.name, labels);
  }
  report(
    `setNamespace, namespace relabel (~${podsPerNs} pods)`,
    'setNamespaceRelabel',
    nsSampler,
    'namespaces',
  );

  // Everything was undone: the audit must be what it was.
  const after = violationSet(auditIndex(index));
  const expected = violationSet(before);
  const same = after.size === expected.size && [...after].every((k) => expected.has(k));
  print(
    'index after the updates, all undone',
    same
      ? 'same audit as before (ok)'
      : `DIFFERENT audit: ${after.size} vs ${expected.size} violations`,
  );
  figures['incrementalConsistent'] = same;
  if (!same) process.exitCode = 1;
}

function entryOf(index: TopologyIndex, key: string): IndexedPod {
  const entry = index.get(key);
  if (entry === undefined) throw new Error(`pod ${key} is not in the index`);
  return entry;
}

function report(label: string, name: string, sampler: Sampler, what: string): void {
  const l = sampler.latency();
  print(label, showLatency(l, what));
  const inc = (figures['incremental'] ??= {}) as Record<string, Latency>;
  inc[name] = l;
}

// ---------------------------------------------------------------- the reference judge

/*
 * A naive, all-pairs rendering of kube-scheduler's InterPodAffinity filter and score,
 * sharing nothing with the engine's index or verdict code. It takes each pod's terms
 * as placementOf resolves them (namespaces, namespaceSelector, matchLabelKeys, policy
 * terms merged in): the resolution is per pod and tested on its own; what is checked
 * here is the counting: which pods match, in which domains, the first-pod exception,
 * the symmetric rule, self-exclusion, nodes without the topology label.
 */

interface RefPod {
  readonly p: PodPlacement;
  readonly node: Labels;
  readonly nsLabels: Labels;
}

function refSelectorMatches(selector: Selector, labels: Labels): boolean {
  if (selector.kind === 'nothing') return false; // a null labelSelector selects no pod
  for (const r of selector.requirements) {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    const ok =
      r.operator === 'In'
        ? has && r.values.some((v) => v === value)
        : r.operator === 'NotIn'
          ? !has || !r.values.some((v) => v === value)
          : r.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

/** Whether a term (resolved against its owner) selects pod `b`. */
function refSelects(t: ResolvedTerm, b: RefPod): boolean {
  const inScope =
    t.namespaces.has(b.p.namespace) ||
    (t.namespaceSelector !== null && refSelectorMatches(t.namespaceSelector, b.nsLabels));
  return inScope && refSelectorMatches(t.selector, b.p.labels);
}

interface ReferenceResult {
  readonly violations: Set<string>;
  readonly preferred: Map<string, PreferredScore>;
}

function referenceAudit(
  snapshot: ClusterSnapshot,
  policies: readonly CompiledPolicy[],
): ReferenceResult {
  const nodeLabels = new Map(snapshot.nodes.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
  const nsLabels = new Map(
    snapshot.namespaces.map((n) => [n.metadata.name, n.metadata.labels ?? {}]),
  );
  // placementOf reads namespace labels from an index: give it one with namespaces only.
  const nsOnly = new TopologyIndex();
  for (const [name, labels] of nsLabels) nsOnly.setNamespace(name, labels);
  const lookup = new WorkloadLookup(snapshot.workloads);
  const pods: RefPod[] = snapshot.pods.filter(isPlacedPod).map((pod) => ({
    p: placementOf(pod, policies, lookup, nsOnly),
    node: nodeLabels.get(pod.spec.nodeName ?? '') ?? {},
    nsLabels: nsLabels.get(pod.metadata.namespace) ?? {},
  }));

  const violations = new Set<string>();
  const add = (a: RefPod, rule: Rule, s: SourcedTerm) =>
    violations.add(violationKey({ pod: a.p.key, rule, source: s.source, term: s.index }));
  const preferred = new Map<string, PreferredScore>();

  for (const a of pods) {
    // 1. Required podAffinity: count the other pods that match all the terms, per
    //    (topologyKey, value) of their node; every term needs a match in a's domain.
    if (a.p.affinity.length > 0) {
      const terms = a.p.affinity.map((s) => s.term);
      const counts = new Map<string, number>();
      for (const b of pods) {
        if (b === a || !terms.every((t) => refSelects(t, b))) continue;
        for (const t of terms) {
          const v = b.node[t.topologyKey];
          if (v === undefined) continue;
          const pair = `${t.topologyKey}\u0000${v}`;
          counts.set(pair, (counts.get(pair) ?? 0) + 1);
        }
      }
      const missing = a.p.affinity.filter((s) => a.node[s.term.topologyKey] === undefined);
      const unmet = a.p.affinity.filter((s) => {
        const v = a.node[s.term.topologyKey];
        return v !== undefined && (counts.get(`${s.term.topologyKey}\u0000${v}`) ?? 0) <= 0;
      });
      // The scheduler lets the first pod of a self-selecting group start anywhere with
      // the keys, when no other pod matches all the terms.
      const firstPod =
        missing.length === 0 && counts.size === 0 && terms.every((t) => refSelects(t, a));
      for (const s of missing) add(a, 'podAffinity', s);
      if (!firstPod) for (const s of unmet) add(a, 'podAffinity', s);
    }
    // 2. Required podAntiAffinity: no other pod in a's domain may match the term.
    for (const s of a.p.antiAffinity) {
      const v = a.node[s.term.topologyKey];
      if (v === undefined) continue;
      if (pods.some((b) => b !== a && b.node[s.term.topologyKey] === v && refSelects(s.term, b)))
        add(a, 'podAntiAffinity', s);
    }
    // 3. Symmetry: another pod's required anti-affinity term that selects a, in a shared domain.
    for (const b of pods) {
      if (b === a) continue;
      for (const s of b.p.antiAffinity) {
        const v = b.node[s.term.topologyKey];
        if (v !== undefined && a.node[s.term.topologyKey] === v && refSelects(s.term, a))
          add(a, 'symmetricAntiAffinity', s);
      }
    }
    // 4. Preferred terms: weight × matching other pods in a's domain.
    let score = 0;
    let satisfiedWeight = 0;
    let totalWeight = 0;
    const tally = (s: WeightedTerm, sign: 1 | -1) => {
      totalWeight += s.weight;
      const v = a.node[s.term.topologyKey];
      let others = 0;
      if (v !== undefined) {
        for (const b of pods) {
          if (b !== a && b.node[s.term.topologyKey] === v && refSelects(s.term, b)) others++;
        }
      }
      score += sign * s.weight * others;
      if (sign > 0 ? others > 0 : others === 0) satisfiedWeight += s.weight;
    };
    for (const s of a.p.preferredAffinity) tally(s, 1);
    for (const s of a.p.preferredAntiAffinity) tally(s, -1);
    if (totalWeight > 0) preferred.set(a.p.key, { score, satisfiedWeight, totalWeight });
  }
  return { violations, preferred };
}

function referenceCheck(opts: Options): void {
  const { snapshot, stats } = generateCluster({
    nodes: opts.refNodes,
    pods: opts.refPods,
    seed: opts.seed + 1,
    // More misplaced replicas than the big cluster: more violations to compare.
    violationRate: 0.25,
  });
  print('reference cluster', describeStats(stats));
  const compiled = compileAuditPolicies(snapshot.policies);
  if (compiled.errors.length > 0) throw new Error(compiled.errors.map((e) => e.message).join('\n'));

  const ref = timed(() => referenceAudit(snapshot, compiled.ok));
  const engineRuns: Run<AuditReport>[] = [];
  for (let i = 0; i < Math.max(3, opts.runs); i++) {
    engineRuns.push(timed(() => auditIndex(buildIndex(snapshot, compiled.ok))));
  }
  const engineMs = ms(median(engineRuns.map((r) => r.wallNs)));
  const engineCpuMs = median(engineRuns.map((r) => r.cpuUs)) / 1000;
  const engineReport = at(engineRuns, 0).value;
  const engineSet = violationSet(engineReport);

  const onlyRef = [...ref.value.violations].filter((k) => !engineSet.has(k)).sort();
  const onlyEngine = [...engineSet].filter((k) => !ref.value.violations.has(k)).sort();
  const scoreDiffs: string[] = [];
  for (const [key, r] of ref.value.preferred) {
    const e = engineReport.preferred.get(key);
    if (
      e?.score !== r.score ||
      e.satisfiedWeight !== r.satisfiedWeight ||
      e.totalWeight !== r.totalWeight
    ) {
      scoreDiffs.push(`${key}: reference ${JSON.stringify(r)}, engine ${JSON.stringify(e)}`);
    }
  }
  for (const key of engineReport.preferred.keys()) {
    if (!ref.value.preferred.has(key)) scoreDiffs.push(`${key}: engine only`);
  }
  const same = onlyRef.length === 0 && onlyEngine.length === 0 && scoreDiffs.length === 0;
  const check = {
    nodes: opts.refNodes,
    pods: stats.placedPods,
    referenceMs: round(ms(ref.wallNs), 1),
    referenceCpuMs: round(ref.cpuUs / 1000, 1),
    engineBuildPlusAuditMs: round(engineMs, 2),
    engineBuildPlusAuditCpuMs: round(engineCpuMs, 2),
    ratioWall: round(ms(ref.wallNs) / engineMs, 0),
    ratioCpu: round(ref.cpuUs / 1000 / engineCpuMs, 0),
    violations: { reference: ref.value.violations.size, engine: engineSet.size },
    preferredScores: { reference: ref.value.preferred.size, engine: engineReport.preferred.size },
    identical: same,
  };
  print(
    `naive all-pairs judge (${opts.refNodes} nodes)`,
    `${check.referenceMs} ms wall, ${check.referenceCpuMs} ms CPU`,
  );
  print(
    'engine, same cluster (build + audit)',
    `median ${check.engineBuildPlusAuditMs} ms wall, ${check.engineBuildPlusAuditCpuMs} ms CPU; ` +
      `reference / engine = ${check.ratioCpu}× in CPU, ${check.ratioWall}× in wall time`,
  );
  print(
    'same verdicts',
    same
      ? `yes: ${check.violations.engine} violations, ${check.preferredScores.engine} preferred scores identical`
      : `NO: ${onlyRef.length} only in the reference, ${onlyEngine.length} only in the engine, ${scoreDiffs.length} score differences`,
  );
  if (!same) {
    for (const k of onlyRef.slice(0, 10)) console.error(`  reference only: ${k}`);
    for (const k of onlyEngine.slice(0, 10)) console.error(`  engine only:    ${k}`);
    for (const d of scoreDiffs.slice(0, 10)) console.error(`  score: ${d}`);
    process.exitCode = 1;
  }
  figures['reference'] = check;
}

// ---------------------------------------------------------------- main

function main(): void {
  const opts = optionsOrExit(options, USAGE);
  print('node', `${process.version}, ${process.arch}; load average ${loadAverage()}`);
  figures['node'] = process.version;
  figures['options'] = opts;
  benchmark(opts);
  referenceCheck(opts);
  figures['loadAverageAtEnd'] = loadAverage();
  console.log(JSON.stringify(figures));
}

main();
