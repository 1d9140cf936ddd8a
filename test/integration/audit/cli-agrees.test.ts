// Issue #16 part 5: the CLI agrees with the operator. Random policies over random Deployments
// and StatefulSets, then rounds of churn (scale, relabel nodes and namespaces, delete pods,
// relabel templates). After each round, once the operator's audit has settled, what it counts
// per policy (`placement_violations{policy,rule}` and the policy's `status.violations`) must
// equal what `kubectl-placement audit` counts on a `kubectl get` of the same cluster with the
// README's command. The same input without ReplicaSets must give the same answer (the CLI
// finds a Deployment by its ReplicaSet's name); without any workload (the command the README
// used to give) the CLI must either give the same answer or say on stderr that it cannot.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/cli-agrees.test.ts
//
// CLI_AGREES_SEED=<n> replays a run's choices (workloads, policies, changes; where the
// scheduler puts pods may differ); CLI_AGREES_ROUNDS=<n> sets the rounds (default 4).
//
// Settled means: the cluster as listed (pods, their nodes and labels, nodes' and namespaces'
// labels, workloads, policies) and the operator's per-policy metrics stay the same while the
// operator completes two audit passes (`placement_audit_duration_seconds_count`; with
// --audit-interval 3s a full pass runs at least every 3 s) and 3 s have passed. Every
// disagreement writes the CLI's input as a fixture under the OS temp dir
// (placement-cli-agrees/), with the operator's counts beside it, and prints the path; the
// test fails at the end of that round.
//
// The cluster is shared with other tests: the CLI's input is the README command's output
// less the objects of other namespaces (every node, namespace and cluster policy stays).
// This run's policy terms select pods in their own namespace only, so other namespaces'
// pods take no part in its policies' verdicts. Pods' own terms (`policy="pod"`) are counted
// over the whole cluster, where other tests' pods come and go: they are not compared.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EXIT, run } from '../../../src/cli/kubectl-placement.ts';
import { EXACT_GET } from '../../../src/cli/missing.ts';
import { Rng } from '../differential/worlds.ts';
import { metricValue, scrape } from '../harness.ts';
import {
  clusterTest,
  deferClusterPolicy,
  HOSTNAME,
  list,
  makeNamespace,
  makePool,
  policy,
  policyStatus,
  REQ,
  runOperator,
  sleep,
  uniqueName,
  workload,
  ZONE,
  type Cluster,
  type JsonObject,
  type Operator,
} from '../operator/support.ts';
import { label } from './support.ts';

const AUDIT_INTERVAL_S = 3;
const RULES = ['podAffinity', 'podAntiAffinity', 'symmetricAntiAffinity'] as const;
const TIERS = ['web', 'api', 'db'] as const;
const KINDS = ['Deployment', 'StatefulSet'] as const;
const TEAMS = ['a', 'b'] as const;
const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
const OUT_DIR = join(tmpdir(), 'placement-cli-agrees');

interface Workload {
  readonly kind: (typeof KINDS)[number];
  readonly ns: string;
  readonly name: string;
}

/** Per policy ref, per rule: violating pods. */
type Counts = Record<string, Record<string, number>>;

clusterTest(
  'the CLI on the README command counts what the operator counts, through churn',
  { timeout: 420_000 },
  async ({ t, c, s }) => {
    const given = process.env['CLI_AGREES_SEED'];
    const seed = given === undefined || given === '' ? Date.now() % 1_000_000 : Number(given);
    const rounds = Number(process.env['CLI_AGREES_ROUNDS'] ?? '') || 4;
    t.diagnostic(`seed ${seed} (CLI_AGREES_SEED=${seed} replays it), ${rounds} round(s)`);
    const rng = new Rng(seed);

    const envKey = `placement.dev/${uniqueName('cli')}`;
    const namespaces = [
      await makeNamespace(c, s, 'cli-a', { [envKey]: 'on' }),
      await makeNamespace(c, s, 'cli-b', { [envKey]: 'on' }),
    ];
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b', 'zone-c']);

    // Workloads: their selector is `app` alone, their template labels more, so that the
    // selector a spread uses is the workload's own, not its template labels.
    const workloads: Workload[] = Array.from({ length: rng.int(4, 5) }, (_, i) => ({
      // One of each kind at least.
      kind: rng.pick(i === 0 ? ['Deployment'] : i === 1 ? ['StatefulSet'] : KINDS),
      ns: rng.pick(namespaces),
      name: `w${i}`,
    }));
    const manifests = workloads.map((w) =>
      workload(w.kind, w.ns, w.name, {
        replicas: rng.int(1, 3),
        labels: { app: w.name, tier: rng.pick(TIERS), team: rng.pick(TEAMS) },
        selector: { app: w.name },
        podSpec: pool.podSpec,
        ...(w.kind === 'StatefulSet' ? { spec: { podManagementPolicy: 'Parallel' } } : {}),
      }),
    );
    // An Audit policy (the operator only reads) and an Enforce one (it rewrites templates,
    // and the rollouts are churn too) at least.
    const policies = Array.from({ length: rng.int(3, 4) }, (_, i) =>
      randomPolicy(
        rng,
        `p${i}`,
        namespaces,
        envKey,
        i === 0 ? 'Audit' : i === 1 ? 'Enforce' : null,
      ),
    );
    const refs = policies.map((p) => {
      const ns = (p['metadata'] as { namespace?: string }).namespace;
      const name = (p['metadata'] as { name: string }).name;
      return ns === undefined ? `ClusterPlacementPolicy/${name}` : `PlacementPolicy/${ns}/${name}`;
    });
    const clusterNames = policies
      .filter((p) => p['kind'] === 'ClusterPlacementPolicy')
      .map((p) => (p['metadata'] as { name: string }).name);
    for (const name of clusterNames) deferClusterPolicy(c, s, name);
    t.diagnostic(
      `workloads: ${workloads.map((w) => `${w.kind} ${w.ns}/${w.name}`).join(', ')}; ` +
        `policies: ${policies.map((p) => JSON.stringify(p['spec'])).join(' | ')}`,
    );
    await c.apply(list(...manifests, ...policies));
    const op = await runOperator(c, s, [
      '--leader-elect=false',
      '--audit-interval',
      `${AUDIT_INTERVAL_S}s`,
    ]);

    /** kubectl VERB on one of the workloads, picked at random. */
    const onWorkload = (verb: string, ...args: string[]) => {
      const w = rng.pick(workloads);
      return c.kubectl(verb, w.kind.toLowerCase(), w.name, '-n', w.ns, ...args);
    };
    const churn: (() => Promise<unknown>)[] = [
      () => onWorkload('scale', `--replicas=${rng.int(0, 4)}`),
      () => label(c, 'node', rng.pick(pool.nodes), { [ZONE]: rng.pick([...ZONES, null]) }),
      () => label(c, 'namespace', rng.pick(namespaces), { [envKey]: rng.pick(['on', 'off']) }),
      async () => {
        const ns = rng.pick(namespaces);
        const pods = (await c.kubectl('get', 'pods', '-n', ns, '-o', 'name')).split('\n');
        const names = pods.filter((p) => p !== '');
        if (names.length === 0) return;
        await c.kubectl('delete', rng.pick(names), '-n', ns, '--wait=false');
      },
      () =>
        onWorkload(
          'patch',
          '--type=merge',
          '-p',
          JSON.stringify({
            spec: { template: { metadata: { labels: { tier: rng.pick(TIERS) } } } },
          }),
        ),
    ];

    const mine = new Set(namespaces);
    const failures: string[] = [];
    for (let round = 0; round < rounds; round++) {
      // Round 0 judges the cluster as created; later rounds after a burst of changes.
      if (round > 0) {
        for (let i = rng.int(3, 5); i > 0; i--) await rng.pick(churn)();
      }
      const settledAt = Date.now();
      const state = await settle(c, op, refs, mine);
      const seconds = ((Date.now() - settledAt) / 1000).toFixed(1);
      const agree = await compare(c, state, refs);
      const total = Object.values(state.metrics).reduce(
        (n, byRule) => n + Object.values(byRule).reduce((a, b) => a + b, 0),
        0,
      );
      t.diagnostic(
        `round ${round}: settled in ${seconds} s, ${total} violation(s) by the operator; ` +
          (agree.length === 0 ? 'the CLI agrees' : `${agree.length} disagreement(s)`),
      );
      if (agree.length > 0) {
        const file = join(OUT_DIR, `seed-${seed}-round-${round}.json`);
        mkdirSync(OUT_DIR, { recursive: true });
        writeFileSync(file, state.input);
        writeFileSync(
          `${file}.operator.json`,
          `${JSON.stringify({ seed, round, metrics: state.metrics, problems: agree }, null, 2)}\n`,
        );
        const message =
          `seed ${seed} round ${round}: the CLI and the operator disagree:\n` +
          agree.map((p) => `  - ${p}\n`).join('') +
          `  fixture (the README command's output): ${file}\n` +
          `  replay: hack/node src/cli/kubectl-placement.ts audit -f ${file} -o json\n` +
          `  the operator's counts: ${file}.operator.json`;
        process.stderr.write(`${message}\n`);
        failures.push(message);
      }
      if (failures.length > 0) break;
    }
    assert.deepEqual(failures, [], 'the CLI and the operator disagree');
    assert.deepEqual(op.logged('audit failed'), []);
  },
);

/** A random policy with at least one required term, reaching only `namespaces`. */
function randomPolicy(
  rng: Rng,
  name: string,
  namespaces: readonly string[],
  envKey: string,
  mode: 'Audit' | 'Enforce' | null,
): JsonObject {
  // null: the field is left out (its default).
  const kinds = rng.pick([null, ['Deployment'], ['StatefulSet'], ['Deployment', 'StatefulSet']]);
  const selector = rng.pick([
    null,
    { matchLabels: { tier: rng.pick(TIERS) } },
    { matchExpressions: [{ key: 'team', operator: 'In', values: [rng.pick(TEAMS)] }] },
  ]);
  const topology = (): string => rng.pick([HOSTNAME, ZONE]);
  const tierTerm = (): JsonObject => ({
    labelSelector: { matchLabels: { tier: rng.pick(TIERS) } },
    topologyKey: topology(),
  });
  const spec: JsonObject = {
    mode: mode ?? rng.pick(['Audit', 'Enforce']),
    targets: {
      ...(kinds === null ? {} : { kinds }),
      ...(selector === null ? {} : { selector }),
    },
  };
  const parts = rng.subset(['spread', 'anti', 'affinity'] as const, 1, 2);
  if (parts.includes('spread')) {
    const [required = HOSTNAME, preferred = ZONE] = rng.subset([HOSTNAME, ZONE], 2, 2);
    spec['spreadAcross'] = [
      { topologyKey: required, mode: 'Required' },
      ...(rng.chance(0.3) ? [{ topologyKey: preferred, mode: 'Preferred', weight: 50 }] : []),
    ];
  }
  const affinity: JsonObject = {};
  if (parts.includes('anti')) affinity['podAntiAffinity'] = { [REQ]: [tierTerm()] };
  if (parts.includes('affinity'))
    affinity['podAffinity'] = {
      [REQ]: [{ ...tierTerm(), ...(rng.chance(0.3) ? { matchLabelKeys: ['team'] } : {}) }],
    };
  if (Object.keys(affinity).length > 0) spec['affinity'] = affinity;
  if (rng.chance(0.35)) {
    const targets = spec['targets'] as JsonObject;
    targets['namespaceSelector'] = { matchLabels: { [envKey]: 'on' } };
    return policy(undefined, `${uniqueName('cli')}-${name}`, spec, 'ClusterPlacementPolicy');
  }
  return policy(rng.pick(namespaces), name, spec);
}

interface Settled {
  /** The CLI's input: the README command's output, this test's namespaces only. */
  readonly input: string;
  readonly metrics: Counts;
}

interface Item {
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string };
  spec?: JsonObject;
  status?: JsonObject;
}

/**
 * Waits until the cluster (as the CLI reads it) and the operator's per-policy metrics have
 * stayed the same over two audit passes; returns that input and those metrics.
 */
async function settle(
  c: Cluster,
  op: Operator,
  refs: readonly string[],
  mine: ReadonlySet<string>,
  timeoutMs = 150_000,
): Promise<Settled & { audits: number; fingerprint: string }> {
  const deadline = Date.now() + timeoutMs;
  // The cluster first, then the operator: passes counted after `base` began after its read.
  const observe = async () => {
    const input = await readCluster(c, mine);
    const body = (await scrape(op.process)).body;
    const audits = metricValue(body, 'placement_audit_duration_seconds_count');
    return {
      at: Date.now(),
      audits,
      metrics: countsFrom(body, refs),
      input,
      fingerprint: fingerprint(input),
    };
  };
  let base = await observe();
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(`the operator's audit did not settle in ${timeoutMs / 1000} s`);
    await sleep(1_000);
    const now = await observe();
    if (
      now.fingerprint !== base.fingerprint ||
      JSON.stringify(now.metrics) !== JSON.stringify(base.metrics)
    ) {
      base = now;
      continue;
    }
    // Two passes, and a full one's interval for a watch event late under load.
    if (now.audits >= base.audits + 2 && now.at - base.at >= AUDIT_INTERVAL_S * 1000) return now;
  }
}

/** The README command's output, less the namespaced objects of other namespaces. */
async function readCluster(c: Cluster, mine: ReadonlySet<string>): Promise<string> {
  const args = EXACT_GET.replace(/^kubectl /, '').split(' ');
  const all = JSON.parse(await c.kubectl(...args)) as { items: Item[] };
  const items = all.items.filter((i) => {
    const ns = i.metadata.namespace;
    return ns === undefined || mine.has(ns);
  });
  // Indented as kubectl prints it, so the CLI splits its items between threads (see cli()).
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 4);
}

/** What a verdict reads of the input: no resourceVersions, timestamps or statuses. */
function fingerprint(input: string): string {
  const items = (JSON.parse(input) as { items: Item[] }).items.map((i) => {
    const m = i.metadata;
    return [
      i.kind,
      m.namespace ?? '',
      m.name,
      m['labels'] ?? {},
      m['ownerReferences'] ?? [],
      m['deletionTimestamp'] ?? '',
      m['generation'] ?? 0,
      i.kind === 'Pod' ? [i.spec?.['nodeName'] ?? '', i.status?.['phase'] ?? ''] : 0,
      i.kind === 'Node' || i.kind === 'Namespace' ? 0 : (i.spec ?? {}),
    ];
  });
  return JSON.stringify(items.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)));
}

function countsFrom(body: string, refs: readonly string[]): Counts {
  const out: Counts = {};
  for (const ref of refs) {
    out[ref] = {};
    for (const rule of RULES)
      out[ref][rule] = metricValue(body, 'placement_violations', { policy: ref, rule });
  }
  return out;
}

/** The CLI's counts per policy and rule, its exit status and its stderr. */
function cli(
  input: string,
  refs: readonly string[],
): { counts: Counts; code: number; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = run(['audit', '-f', 'cluster.json', '-o', 'json'], {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    readFile: () => input,
    // Two threads, as the CLI reads a large List (src/cli/parallel-list.ts): kubectl's
    // pretty-printed output is split between this thread and a worker.
    threads: 2,
  });
  const counts: Counts = {};
  for (const ref of refs) counts[ref] = Object.fromEntries(RULES.map((r) => [r, 0]));
  if (stdout !== '') {
    const report = JSON.parse(stdout) as { violations: { source: string; rule: string }[] };
    for (const v of report.violations) {
      const byRule = counts[v.source];
      if (byRule !== undefined) byRule[v.rule] = (byRule[v.rule] ?? 0) + 1;
    }
  }
  return { counts, code, stderr };
}

const without = (input: string, ...kinds: string[]): string => {
  const list = JSON.parse(input) as { items: Item[] };
  return JSON.stringify({ ...list, items: list.items.filter((i) => !kinds.includes(i.kind)) });
};

/** `REF RULE: CLI n, operator m` for every count that differs. */
function differences(got: Counts, want: Counts): string[] {
  const out: string[] = [];
  for (const [ref, byRule] of Object.entries(want)) {
    for (const [rule, n] of Object.entries(byRule)) {
      const mine = got[ref]?.[rule] ?? 0;
      if (mine !== n) out.push(`${ref} ${rule}: CLI ${mine}, operator ${n}`);
    }
  }
  return out;
}

const WORKLOAD_KINDS = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'];

/** Every way the CLI's answers differ from the operator's; empty when they agree. */
async function compare(c: Cluster, state: Settled, refs: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const variants = [
    { name: 'the README command', input: state.input, mustAgree: true },
    // A Deployment is found by its ReplicaSet's name: Deployments alone are exact.
    { name: 'without ReplicaSets', input: without(state.input, 'ReplicaSet'), mustAgree: true },
    // The command the README gave before: another answer only with a line on stderr.
    { name: 'without workloads', input: without(state.input, ...WORKLOAD_KINDS), mustAgree: false },
  ];
  let exact: Counts = {};
  for (const v of variants) {
    const got = cli(v.input, refs);
    if (v.mustAgree) {
      if (v === variants[0]) exact = got.counts;
      if (got.stderr !== '' || (got.code !== EXIT.ok && got.code !== EXIT.violations))
        problems.push(`${v.name}: exit ${got.code}, stderr ${got.stderr.trim()}`);
    } else if (got.stderr !== '') continue;
    for (const d of differences(got.counts, state.metrics))
      problems.push(`${v.name}: ${d} (metric placement_violations)`);
  }
  // The statuses are written after the metrics, at most so often: wait for the last one.
  const totals = Object.fromEntries(
    refs.map((ref) => [ref, RULES.reduce((n, rule) => n + (exact[ref]?.[rule] ?? 0), 0)]),
  );
  let statuses: Record<string, number | undefined> = {};
  const deadline = Date.now() + 20_000;
  for (;;) {
    statuses = {};
    for (const ref of refs) {
      const [kind, first = '', second = ''] = ref.split('/');
      const status =
        kind === 'ClusterPlacementPolicy'
          ? await policyStatus(c, undefined, first)
          : await policyStatus(c, first, second);
      statuses[ref] = status.status.violations;
    }
    if (JSON.stringify(statuses) === JSON.stringify(totals) || Date.now() > deadline) break;
    await sleep(1_000);
  }
  for (const ref of refs) {
    if (statuses[ref] !== totals[ref])
      problems.push(
        `${ref} status.violations: ${String(statuses[ref])}, the CLI ${String(totals[ref])}`,
      );
  }
  return problems;
}
