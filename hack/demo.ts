// `npm run demo`: the operator's main job on an embedded default. Starts the local control
// plane (or uses $KUBECONFIG with --use-kubeconfig), installs the CRDs, applies the seed
// workloads, shows where their pods land, runs the operator, applies the seed policies, and
// shows the workloads' affinity, the placement and the audit after. `--once` exits at the
// end; otherwise the operator keeps running until Ctrl-C.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import winston from 'winston';

import { auditSnapshot, parseRecord } from '../src/engine/index.ts';
import { parseList } from '../src/cli/input.ts';
import { main as cliMain } from '../src/cli/kubectl-placement.ts';
import { reportTable } from '../src/cli/report.ts';
import { readConfig, runOperator } from '../src/main.ts';
import { selectTestCluster, type TestCluster } from '../test/cluster/select.ts';
import { defaultBinDir } from '../test/cluster/paths.ts';
import { APPLIED_ANNOTATION } from '../src/api/cluster.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..');
const SEED_NAMESPACES = ['shop', 'store', 'apps'];

interface PodJson {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: { type: string; status: string; reason?: string }[] };
}
interface NodeJson {
  metadata: { name: string; labels?: Record<string, string> };
}
interface DeploymentJson {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    annotations?: Record<string, string>;
  };
  spec: { replicas?: number; template: { spec: { affinity?: Record<string, unknown> } } };
  status: { replicas?: number; updatedReplicas?: number; readyReplicas?: number };
}
interface List<T> {
  items: T[];
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const heading = (text: string): void => {
  say(`\n== ${text}`);
};

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      once: { type: 'boolean', default: false },
      'use-kubeconfig': { type: 'boolean', default: false },
      nodes: { type: 'string', default: '3' },
    },
  });
  const started = Date.now();
  let cluster: TestCluster | undefined;
  let kubeconfig = process.env['KUBECONFIG'];
  if (!values['use-kubeconfig'] || kubeconfig === undefined || kubeconfig === '') {
    heading('starting the local control plane (first run builds it: 10-25 min)');
    cluster = await selectTestCluster({
      nodes: Number(values.nodes),
      name: 'demo',
      log: () => undefined,
    });
    kubeconfig = cluster.kubeconfigPath;
    say(`up in ${((Date.now() - started) / 1000).toFixed(1)} s; KUBECONFIG=${kubeconfig}`);
  }
  const kubectlPath = join(process.env['PLACEMENT_TEST_BIN_DIR'] || defaultBinDir(), 'kubectl');
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  const kubectl = async (...args: string[]): Promise<string> =>
    (await run(kubectlPath, args, { env, maxBuffer: 64 << 20 })).stdout;
  const json = async <T>(...args: string[]): Promise<T> =>
    JSON.parse(await kubectl(...args, '-o', 'json')) as T;

  const stops: (() => Promise<void>)[] = [];
  const shutdown = async (code: number): Promise<never> => {
    for (const stop of stops) await stop();
    await cluster?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  heading('installing the CRDs and the seed workloads (examples/workloads)');
  await kubectl('apply', '--server-side', '-f', join(REPO, 'crds'));
  await crdsEstablished(json);
  say((await kubectl('apply', '-f', join(REPO, 'examples', 'workloads'))).trim());
  await settle(json);
  heading('before: where the pods run, with no policy');
  say(await placementTable(json));

  heading('starting the operator and applying the seed policies (examples/policies)');
  const config = readConfig(
    [
      '--leader-elect=false',
      '--metrics-port=0',
      '--metrics-host=127.0.0.1',
      '--log-level=warn',
      '--resync-interval=1m',
    ],
    { KUBECONFIG: kubeconfig },
  );
  if (config === 'help') throw new Error('unreachable');
  const log = winston.createLogger({
    level: 'warn',
    format: winston.format.json(),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
  });
  stops.push(await runOperator(config, log));
  const policyFiles = readdirSync(join(REPO, 'examples', 'policies'))
    .sort()
    .map((f) => join(REPO, 'examples', 'policies', f));
  for (const f of policyFiles) {
    say(`  ${f.slice(REPO.length + 1)}: ${readFileSync(f, 'utf8').match(/^# (.*)$/m)?.[1] ?? ''}`);
  }
  heading('the plan: what applying them would do (kubectl-placement plan, writes nothing)');
  const planned = await planOf(kubeconfig, policyFiles);
  say(planned.text.trim());
  say(
    `(exit status ${String(planned.code)}: ${planned.code === 0 ? 'nothing held back' : 'something would be held back or unsatisfiable'})`,
  );
  heading('applying the seed policies');
  say((await kubectl('apply', '-f', join(REPO, 'examples', 'policies'))).trim());
  await waitPolicies(json);
  await settle(json);
  await rolledOutOrHeld(json, planned.held);

  heading(
    'after: what the operator injected into each workload, and its rollouts (generation 2 and 2 ReplicaSets: rolled once)',
  );
  const rolls = await injectedTable(json);
  say(rolls.text);
  assertRolledOnce(rolls, planned.held);
  heading('after: where the pods run');
  say(await placementTable(json));
  await assertNothingPending(json);
  say('no seed pod is Pending');
  await createdAfterItsPolicy(kubectl, json);
  heading('policies, and what their conditions say');
  say((await kubectl('get', 'placementpolicies,clusterplacementpolicies', '-A')).trim());
  say('');
  say(await conditionsTable(json, planned.held));
  heading('audit of the running pods (the engine, as kube-scheduler would judge them)');
  const snapshot = await kubectl(
    'get',
    'nodes,namespaces,pods,deployments,replicasets,placementpolicies,clusterplacementpolicies',
    '-A',
    '-o',
    'json',
  );
  const result = auditSnapshot(parseList(snapshot, 'cluster'));
  if (result.kind === 'invalid') say(result.errors.map((e) => e.message).join('\n'));
  else
    say(
      reportTable({
        ...result.report,
        violations: result.report.violations.filter((v) =>
          SEED_NAMESPACES.some((ns) => v.pod.startsWith(`${ns}/`)),
        ),
      }).trim(),
    );
  say(`\ndemo took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (values.once) await shutdown(0);
  say(
    '\nThe operator keeps running: edit a policy or a workload (KUBECONFIG above) and watch. Ctrl-C stops everything.',
  );
}

/** Waits until every seed pod is either running or judged unschedulable by the scheduler. */
async function settle(json: <T>(...args: string[]) => Promise<T>): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const pods = await json<List<PodJson>>('get', 'pods', '-A', '-l', 'app');
    const deployments = await json<List<DeploymentJson>>('get', 'deployments', '-A');
    const podsDone = pods.items.every(
      (p) =>
        p.status.phase === 'Running' ||
        p.status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False'),
    );
    const rolled = deployments.items
      .filter((d) => SEED_NAMESPACES.includes(d.metadata.namespace))
      .every((d) => (d.status.updatedReplicas ?? 0) > 0 || (d.status.replicas ?? 0) === 0);
    if ((podsDone && rolled) || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Waits until every CRD is Established (`kubectl wait` fails outright on a CRD created a
 * moment ago whose status has no conditions yet).
 */
async function crdsEstablished(json: <T>(...args: string[]) => Promise<T>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const crds = await json<List<{ status?: { conditions?: { type: string; status: string }[] } }>>(
      'get',
      'crd',
    );
    const established = (c: (typeof crds.items)[number]): boolean =>
      c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') === true;
    if (crds.items.every(established)) return;
    if (Date.now() > deadline) throw new Error('CRDs not Established after 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Waits until every policy's status is about its current generation and none still has
 * workloads to write (Ready reason RolloutPending): the operator waits out its settle
 * window before it writes, so the policies' first status comes before the writes.
 */
async function waitPolicies(json: <T>(...args: string[]) => Promise<T>): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const policies = await json<
      List<{
        metadata: { generation?: number };
        status?: {
          observedGeneration?: number;
          conditions?: { type: string; reason?: string }[];
        };
      }>
    >('get', 'placementpolicies,clusterplacementpolicies', '-A');
    const settled = policies.items.every(
      (p) =>
        p.status?.observedGeneration === p.metadata.generation &&
        !(p.status?.conditions ?? []).some(
          (c) => c.type === 'Ready' && c.reason === 'RolloutPending',
        ),
    );
    if (policies.items.length > 0 && settled) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function placementTable(json: <T>(...args: string[]) => Promise<T>): Promise<string> {
  const nodes = await json<List<NodeJson>>('get', 'nodes');
  const zoneOf = new Map(
    nodes.items.map((n) => [
      n.metadata.name,
      n.metadata.labels?.['topology.kubernetes.io/zone'] ?? '-',
    ]),
  );
  const pods = (await json<List<PodJson>>('get', 'pods', '-A')).items.filter((p) =>
    SEED_NAMESPACES.includes(p.metadata.namespace),
  );
  pods.sort((a, b) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
      `${b.metadata.namespace}/${b.metadata.name}`,
    ),
  );
  return table([
    ['POD', 'APP', 'NODE', 'ZONE', 'PHASE'],
    ...pods.map((p) => {
      const node = p.spec.nodeName ?? '';
      return [
        `${p.metadata.namespace}/${p.metadata.name}`,
        p.metadata.labels?.['app'] ?? '',
        node || '(none)',
        zoneOf.get(node) ?? '-',
        p.status.phase ?? '',
      ];
    }),
  ]);
}

/**
 * What the operator injected into each seed Deployment, and how often the Deployment rolled
 * out: its generation and its ReplicaSets (one per pod template it has had). One rollout per
 * workload is generation 2 with 2 ReplicaSets: the owner's template and the rewritten one.
 */
async function injectedTable(
  json: <T>(...args: string[]) => Promise<T>,
): Promise<{ text: string; rows: Roll[] }> {
  const deployments = (await json<List<DeploymentJson>>('get', 'deployments', '-A')).items.filter(
    (d) => SEED_NAMESPACES.includes(d.metadata.namespace),
  );
  const replicaSets = await json<List<{ metadata: { ownerReferences?: { uid: string }[] } }>>(
    'get',
    'replicasets',
    '-A',
  );
  const replicaSetsOf = (d: DeploymentJson): number =>
    replicaSets.items.filter((rs) =>
      rs.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid),
    ).length;
  const rows = deployments.map((d) => ({
    workload: `Deployment/${d.metadata.namespace}/${d.metadata.name}`,
    generation: d.metadata.generation ?? 0,
    replicaSets: replicaSetsOf(d),
  }));
  const text = table([
    ['WORKLOAD', 'GENERATION', 'REPLICASETS', 'POLICIES', 'INJECTED TERMS'],
    ...deployments.map((d) => {
      const parsed = parseRecord(d.metadata.annotations?.[APPLIED_ANNOTATION]);
      const policies = parsed.kind === 'ok' ? Object.keys(parsed.record.policies).join(', ') : '-';
      const terms =
        parsed.kind === 'ok'
          ? Object.entries(parsed.record.slots)
              .map(([slot, list]) => `${slot}×${String(list.length)}`)
              .join(' ')
          : '-';
      return [
        `Deployment ${d.metadata.namespace}/${d.metadata.name}`,
        String(d.metadata.generation ?? 0),
        String(replicaSetsOf(d)),
        policies,
        terms,
      ];
    }),
  ]);
  return { text, rows };
}

interface Roll {
  readonly workload: string;
  readonly generation: number;
  readonly replicaSets: number;
}

/** The plan of `files` over the cluster, as `kubectl-placement plan` prints it, and what it holds back. */
async function planOf(
  kubeconfig: string,
  files: readonly string[],
): Promise<{ text: string; code: number; held: Map<string, string> }> {
  let text = '';
  let errors = '';
  const io = {
    stdout: (t: string) => (text += t),
    stderr: (t: string) => (errors += t),
    readFile: (p: string) => readFileSync(p, 'utf8'),
    env: {},
  };
  const args = ['plan', ...files.flatMap((f) => ['-f', f]), '--kubeconfig', kubeconfig];
  const code = await cliMain(args, io);
  if (code === 2) throw new Error(`plan failed: ${errors.trim()}`);
  let doc = '';
  await cliMain([...args, '-o', 'json'], { ...io, stdout: (t: string) => (doc += t) });
  const parsed = JSON.parse(doc) as {
    workloads: { workload: string; action: string; message?: string }[];
  };
  const held = new Map(
    parsed.workloads
      .filter((w) => w.action !== 'rollout' && w.action !== 'record')
      .map((w) => [w.workload, w.message ?? w.action]),
  );
  return { text, code, held };
}

/**
 * Waits until every seed Deployment has rolled out its current template (as `kubectl rollout
 * status` judges it); fails loudly, naming them, when some have not after 3 minutes.
 */
async function rolledOutOrHeld(
  json: <T>(...args: string[]) => Promise<T>,
  held: ReadonlyMap<string, string>,
): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const deployments = (await json<List<DeploymentJson>>('get', 'deployments', '-A')).items;
    const rolling = deployments
      .filter((d) => SEED_NAMESPACES.includes(d.metadata.namespace))
      .filter((d) => {
        const st = d.status as Record<string, number | undefined>;
        const want = d.spec.replicas ?? 1;
        return !(
          (st['observedGeneration'] ?? 0) >= (d.metadata.generation ?? 0) &&
          st['updatedReplicas'] === want &&
          st['availableReplicas'] === want &&
          st['replicas'] === want
        );
      })
      .map((d) => `Deployment/${d.metadata.namespace}/${d.metadata.name}`);
    if (rolling.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `rollouts not finished after 180 s: ${rolling.join(', ')}${rolling.some((r) => held.has(r)) ? ' (held back by the plan, yet rolling)' : ''}`,
      );
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Each seed Deployment the operator wrote rolled once (generation 2, 2 ReplicaSets: the
 * owner's template and the rewritten one); each one the plan held back never rolled
 * (generation 1, 1 ReplicaSet). Throws otherwise.
 */
function assertRolledOnce(
  rolls: { rows: readonly Roll[] },
  held: ReadonlyMap<string, string>,
): void {
  const wrong = rolls.rows.filter((r) =>
    held.has(r.workload)
      ? r.generation !== 1 || r.replicaSets !== 1
      : r.generation > 2 || r.replicaSets !== r.generation,
  );
  if (wrong.length > 0)
    throw new Error(
      `rolled more than once, or held back yet rolled: ${wrong.map((r) => `${r.workload} generation ${String(r.generation)}, ${String(r.replicaSets)} ReplicaSet(s)`).join('; ')}`,
    );
  say(
    `each written workload rolled once, and ${String(held.size)} held back never rolled: ${[...held.keys()].join(', ') || '(none)'}`,
  );
}

/** No seed pod is Pending: the operator started no rollout that leaves one behind. Throws otherwise. */
async function assertNothingPending(json: <T>(...args: string[]) => Promise<T>): Promise<void> {
  const pending = (await json<List<PodJson>>('get', 'pods', '-A')).items.filter(
    (p) => SEED_NAMESPACES.includes(p.metadata.namespace) && p.status.phase === 'Pending',
  );
  if (pending.length > 0)
    throw new Error(
      `Pending pods left behind: ${pending.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')}`,
    );
}

/**
 * Every policy's Ready, Degraded and Unsatisfiable conditions. A policy whose workload the
 * plan held back must not say Ready=True, and must say why; throws otherwise.
 */
async function conditionsTable(
  json: <T>(...args: string[]) => Promise<T>,
  held: ReadonlyMap<string, string>,
): Promise<string> {
  const policies = await json<
    List<{
      kind: string;
      metadata: { name: string; namespace?: string };
      status?: {
        conditions?: { type: string; status: string; reason?: string; message?: string }[];
      };
    }>
  >('get', 'placementpolicies,clusterplacementpolicies', '-A');
  const rows: string[][] = [['POLICY', 'CONDITION', 'STATUS', 'REASON', 'MESSAGE']];
  const told = new Map<string, string[]>();
  for (const p of policies.items) {
    const name = `${p.kind}/${p.metadata.namespace === undefined ? '' : `${p.metadata.namespace}/`}${p.metadata.name}`;
    const conditions = p.status?.conditions ?? [];
    for (const c of conditions)
      if (['Ready', 'Degraded', 'Unsatisfiable'].includes(c.type))
        rows.push([name, c.type, c.status, c.reason ?? '', c.message ?? '']);
    const ready = conditions.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
    for (const w of held.keys()) {
      const [kind, ns, workload] = w.split('/');
      const says = conditions.some(
        (c) =>
          c.status === 'True' &&
          (c.message ?? '').includes(`${kind ?? ''} ${ns ?? ''}/${workload ?? ''}`),
      );
      if (says) told.set(w, [...(told.get(w) ?? []), `${name} Ready=${ready}`]);
    }
  }
  const lies = [...held.keys()].flatMap((w) => {
    const by = told.get(w) ?? [];
    if (by.length === 0) return [`no policy says why ${w} is held back`];
    return by.filter((b) => b.endsWith('Ready=True')).map((b) => `${b} while it holds back ${w}`);
  });
  if (lies.length > 0) throw new Error(`statuses that do not tell the truth: ${lies.join('; ')}`);
  return table(rows);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});

/** A Deployment in the `store` namespace (env=prod), created after the policies exist. */
const LATE = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'catalog', namespace: 'store', labels: { app: 'catalog' } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'catalog' } },
    template: {
      metadata: { labels: { app: 'catalog' } },
      spec: {
        containers: [
          {
            name: 'catalog',
            image: 'registry.example/catalog:1.0',
            resources: { requests: { cpu: '10m', memory: '16Mi' } },
          },
        ],
      },
    },
  },
};

/**
 * Creates LATE once the API server's admission path serves prod-spread-across-zones (a
 * server-side dry run of it comes back with the policy's record), then shows that it got
 * the terms at admission: generation 1, one ReplicaSet, no write by the operator.
 */
async function createdAfterItsPolicy(
  kubectl: (...args: string[]) => Promise<string>,
  json: <T>(...args: string[]) => Promise<T>,
): Promise<void> {
  heading(
    'a Deployment created after its policies exist: the terms come at admission (generation 1, one ReplicaSet)',
  );
  const file = join(mkdtempSync(join(tmpdir(), 'placement-demo-')), 'catalog.json');
  writeFileSync(file, JSON.stringify(LATE));
  const recorded = (d: DeploymentJson): boolean =>
    parseRecord(d.metadata.annotations?.[APPLIED_ANNOTATION]).kind === 'ok';
  const deadline = Date.now() + 60_000;
  while (!recorded(await json<DeploymentJson>('apply', '--dry-run=server', '-f', file))) {
    if (Date.now() > deadline)
      throw new Error('the admission path did not serve the policies within 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  say((await kubectl('apply', '-f', file)).trim());
  await kubectl('rollout', 'status', 'deployment/catalog', '-n', 'store', '--timeout=120s');
  const rolls = await injectedTable(json);
  const late = rolls.rows.find((r) => r.workload === 'Deployment/store/catalog');
  say(
    rolls.text
      .split('\n')
      .filter((l, i) => i === 0 || l.startsWith('Deployment store/catalog '))
      .join('\n'),
  );
  if (late?.generation !== 1 || late.replicaSets !== 1)
    throw new Error(
      `Deployment store/catalog: expected generation 1 and one ReplicaSet, found ${JSON.stringify(late)}`,
    );
  say("rolled out once, with the policy's terms from its first ReplicaSet");
}
