// Issue #5, "a periodic full re-check that must agree with the incremental state": the
// operator runs with --audit-interval 5s while a burst of changes goes through the cluster —
// nodes change zone, namespaces and pods change labels, Deployments scale and roll, pods come
// and go — and its log must never show that the incremental index, the verdicts kept
// between passes, or the node and spread findings kept between passes (every pod has the
// pool's nodeSelector; the bare pods also spread over zones, and prefer to spread over
// hosts, a ScheduleAnyway constraint whose score is kept too) disagreed with a rebuild.
// Once the cluster is quiet, each policy's status must say what a one-shot audit of the same
// cluster (the engine the CLI uses) says.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/full-check.test.ts
import assert from 'node:assert/strict';

import { parseList } from '../../../src/cli/input.ts';
import { auditSnapshot } from '../../../src/engine/index.ts';
import {
  clusterTest,
  deferClusterPolicy,
  deployment,
  HOSTNAME,
  list,
  listOf,
  makeNamespace,
  makePool,
  policy,
  REQ,
  rolledOut,
  runOperator,
  sleep,
  uniqueName,
  waitAdvanced,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
} from '../operator/support.ts';
import { auditStatus, barePod, label } from './support.ts';

const DISAGREED = 'incremental audit index disagreed with a rebuild; using the rebuild';
const VERDICTS_DISAGREED =
  'verdicts kept between passes disagreed with a rebuild; using the rebuild';
const NODE_SPREAD_DISAGREED =
  'node and spread findings kept between passes disagreed with a rebuild; using the rebuild';
const FULL_CHECK_DONE = 'audit full check done';
const INTERVAL_S = 5;
const BURST_ROUNDS = 12;

/** A small deterministic PRNG (mulberry32), so that a failing burst can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A bare pod bound to `node` that also spreads the bare pods over zones (DoNotSchedule) and
 * prefers to spread them over hosts (ScheduleAnyway, scored), so that the node and spread
 * findings and scores kept between passes go through the burst too.
 */
function spreadingPod(
  ns: string,
  name: string,
  labels: Record<string, string>,
  pool: Parameters<typeof barePod>[3],
  node: string,
): JsonObject {
  const pod = barePod(ns, name, labels, pool, node);
  const spec = pod['spec'] as JsonObject;
  const spread = {
    maxSkew: 1,
    topologyKey: ZONE,
    whenUnsatisfiable: 'DoNotSchedule',
    labelSelector: { matchExpressions: [{ key: 'role', operator: 'Exists' }] },
  };
  const preferred = { ...spread, topologyKey: HOSTNAME, whenUnsatisfiable: 'ScheduleAnyway' };
  return { ...pod, spec: { ...spec, topologySpreadConstraints: [spread, preferred] } };
}

clusterTest(
  'the periodic full re-check agrees with the incremental index through a burst',
  { timeout: 300_000 },
  async ({ t, c, s }) => {
    const envKey = `placement.dev/${uniqueName('env')}`;
    const nsA = await makeNamespace(c, s, 'burst-a', { [envKey]: 'prod' });
    const nsB = await makeNamespace(c, s, 'burst-b', { [envKey]: 'dev' });
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b']);
    const nodes = pool.nodes;
    const spreadName = uniqueName('burst-spread');
    deferClusterPolicy(c, s, spreadName);

    const web = { app: 'web', tier: 'web' };
    const bare = ['p0', 'p1', 'p2', 'p3'];
    await c.apply(
      list(
        // Every Deployment and bare pod with tier=web in a prod namespace: one per zone.
        policy(
          undefined,
          spreadName,
          {
            targets: {
              kinds: ['Deployment', 'Pod'],
              namespaceSelector: { matchLabels: { [envKey]: 'prod' } },
              selector: { matchLabels: { tier: 'web' } },
            },
            spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
          },
          'ClusterPlacementPolicy',
        ),
        // Bare tier=web pods in A must share a zone with a role=db pod.
        policy(nsA, 'near-db', {
          targets: { kinds: ['Pod'], selector: { matchLabels: { tier: 'web' } } },
          affinity: {
            podAffinity: {
              [REQ]: [{ labelSelector: { matchLabels: { role: 'db' } }, topologyKey: ZONE }],
            },
          },
        }),
        ...[nsA, nsB].map((ns) =>
          deployment(ns, 'web', {
            replicas: 2,
            labels: web,
            selector: { app: 'web' },
            podSpec: pool.podSpec,
          }),
        ),
        ...[nsA, nsB].flatMap((ns) =>
          bare.map((name, i) =>
            spreadingPod(
              ns,
              name,
              { app: name, role: i === 0 ? 'db' : 'none' },
              pool,
              nodes[i % nodes.length] ?? '',
            ),
          ),
        ),
      ),
    );
    const op = await runOperator(c, s, [
      '--leader-elect=false',
      '--audit-interval',
      `${INTERVAL_S}s`,
      '--log-level',
      'debug',
    ]);

    const given = process.env['BURST_SEED'];
    const seed = given === undefined || given === '' ? Date.now() % 1_000_000 : Number(given);
    t.diagnostic(`burst seed ${seed} (BURST_SEED=${seed} replays it)`);
    const random = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const ops: (() => Promise<unknown>)[] = [
      () => label(c, 'node', pick(nodes), { [ZONE]: pick(['zone-a', 'zone-b', 'zone-c', null]) }),
      () => label(c, 'namespace', pick([nsA, nsB]), { [envKey]: pick(['prod', 'dev']) }),
      () =>
        label(
          c,
          'pod',
          pick(bare),
          { role: pick(['db', 'none', null]), tier: pick(['web', null]) },
          pick([nsA, nsB]),
        ),
      () =>
        c.kubectl(
          'scale',
          'deployment',
          'web',
          '-n',
          pick([nsA, nsB]),
          `--replicas=${pick([0, 1, 2, 3])}`,
        ),
      () =>
        c.kubectl(
          'patch',
          'deployment',
          'web',
          '-n',
          pick([nsA, nsB]),
          '--type=merge',
          '-p',
          JSON.stringify({
            spec: { template: { metadata: { labels: { tier: pick(['web', 'api']) } } } },
          }),
        ),
      async () => {
        const ns = pick([nsA, nsB]);
        const name = pick(bare);
        await c.kubectl('delete', 'pod', name, '-n', ns, '--wait=false', '--ignore-not-found');
        await waitFor(`pod ${ns}/${name} gone`, async () =>
          (
            await c.kubectl('get', 'pod', name, '-n', ns, '--ignore-not-found', '-o', 'name')
          ).trim() === ''
            ? true
            : undefined,
        );
        await c.apply(
          list(
            spreadingPod(ns, name, { app: name, role: pick(['db', 'none']) }, pool, pick(nodes)),
          ),
        );
      },
    ];

    const started = Date.now();
    let changes = 0;
    for (let round = 0; round < BURST_ROUNDS; round++) {
      // A few changes at once, then a short breath: bursts across several full re-checks.
      // Two changes may pick the same pod: one of them failing is no concern here.
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => pick(ops)()));
      changes += results.filter((r) => r.status === 'fulfilled').length;
      await sleep(pick([100, 500, 1_500]));
    }
    const burstSeconds = (Date.now() - started) / 1000;
    // A last, fixed drift, so that the final comparison has violations to compare: A's web
    // pods, spread over zones by the scheduler, end up in one zone; A's bare pods with
    // tier=web want a db pod in their zone, and the only one (p0) stops being one. Three
    // zones first, so that a rolling update of two spread pods has room for its surge pod.
    const [z0, z1, z2] = nodes as [string, string, string];
    await label(c, 'namespace', nsA, { [envKey]: 'prod' });
    await label(c, 'namespace', nsB, { [envKey]: 'dev' });
    await label(c, 'node', z0, { [ZONE]: 'zone-a' });
    await label(c, 'node', z1, { [ZONE]: 'zone-b' });
    await label(c, 'node', z2, { [ZONE]: 'zone-c' });
    await c.kubectl(
      'patch',
      'deployment',
      'web',
      '-n',
      nsA,
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: { replicas: 2, template: { metadata: { labels: { tier: 'web' } } } },
      }),
    );
    for (const [i, name] of bare.entries()) {
      await c
        .apply(list(spreadingPod(nsA, name, { app: name }, pool, nodes[i % nodes.length] ?? '')))
        .catch(() => '');
      await label(c, 'pod', name, { role: name === 'p0' ? 'db' : 'none', tier: 'web' }, nsA).catch(
        () => undefined,
      );
    }
    // Quiet: let rollouts settle.
    await waitFor(
      'rollouts settled',
      async () => ((await settled(c, [nsA, nsB])) ? true : undefined),
      120_000,
    );
    await label(c, 'node', z1, { [ZONE]: 'zone-a' });
    await label(c, 'node', z2, { [ZONE]: 'zone-a' });
    await label(c, 'pod', 'p0', { role: 'retired' }, nsA); // and no db anywhere
    // Two more full re-checks: the second began after the last change, on the final state.
    const fullChecks = (): number => op.logged(FULL_CHECK_DONE).length;
    const checked = await waitAdvanced(
      'full re-checks after the last change',
      fullChecks,
      fullChecks(),
      2,
      4 * INTERVAL_S * 1000 + 30_000,
    );
    const audits = await op.metric('placement_audit_duration_seconds_count');
    t.diagnostic(
      `${changes} changes in ${burstSeconds.toFixed(1)} s; ${audits} audit passes in all, ${checked} of them full re-checks`,
    );

    assert.deepEqual(op.logged(DISAGREED), [], 'the rebuild never disagreed');
    assert.deepEqual(op.logged(VERDICTS_DISAGREED), [], 'no kept verdict disagreed with a rebuild');
    assert.deepEqual(
      op.logged(NODE_SPREAD_DISAGREED),
      [],
      'no kept node or spread finding disagreed with a rebuild',
    );
    assert.deepEqual(op.logged('audit failed'), []);
    assert.deepEqual(op.logged('pod left out of the audit'), []);

    // What the statuses say is what a one-shot audit of the cluster says.
    const everything = await c.kubectl(
      'get',
      'nodes,namespaces,pods,deployments,replicasets,placementpolicies,clusterplacementpolicies',
      '-A',
      '-o',
      'json',
    );
    const result = auditSnapshot(parseList(everything, 'cluster'));
    assert.equal(result.kind, 'ok');
    const expected = (source: string): string[] =>
      result.report.violations
        .filter((v) => v.source === source)
        .map((v) => `${v.pod} ${v.rule}`)
        .sort();
    t.diagnostic(
      `one-shot audit: ${expected(`ClusterPlacementPolicy/${spreadName}`).length} spread and ${expected(`PlacementPolicy/${nsA}/near-db`).length} near-db violation(s)`,
    );
    await waitFor(
      'statuses as the one-shot audit says',
      async () => {
        const spread = await c.json<{
          status?: { violations?: number; violationSample?: { pod: string; rule: string }[] };
        }>('get', 'clusterplacementpolicy', spreadName);
        const near = await auditStatus(c, nsA, 'near-db');
        const got = {
          spread: [spread.status?.violations, sample(spread.status?.violationSample)],
          near: [near.violations, sample(near.violationSample)],
        };
        const want = {
          spread: [
            expected(`ClusterPlacementPolicy/${spreadName}`).length,
            expected(`ClusterPlacementPolicy/${spreadName}`).slice(0, 10),
          ],
          near: [
            expected(`PlacementPolicy/${nsA}/near-db`).length,
            expected(`PlacementPolicy/${nsA}/near-db`).slice(0, 10),
          ],
        };
        return JSON.stringify(got) === JSON.stringify(want) ? true : undefined;
      },
      30_000,
    );
  },
);

const sample = (list: readonly { pod: string; rule: string }[] | undefined): string[] =>
  (list ?? []).map((v) => `${v.pod} ${v.rule}`).sort();

/** Every Deployment in the namespaces has rolled out completely, and no pod is being deleted. */
/**
 * Nothing left moving: no pod being deleted, every pod running or judged unschedulable by
 * the scheduler, and every Deployment rolled out unless one of its namespace's pods is
 * unschedulable (a random burst can leave rules that a rollout cannot meet: it then stays as
 * it is, which is as quiet as a finished one for the comparison).
 */
async function settled(c: Cluster, namespaces: readonly string[]): Promise<boolean> {
  for (const ns of namespaces) {
    const pods = await c.json<{
      items: {
        metadata: { deletionTimestamp?: string };
        status: {
          phase?: string;
          conditions?: { type: string; status: string; reason?: string }[];
        };
      }[];
    }>('get', 'pods', '-n', ns);
    if (pods.items.some((p) => p.metadata.deletionTimestamp !== undefined)) return false;
    const unschedulable = (p: (typeof pods.items)[number]): boolean =>
      p.status.phase === 'Pending' &&
      (p.status.conditions ?? []).some(
        (x) => x.type === 'PodScheduled' && x.status === 'False' && x.reason === 'Unschedulable',
      );
    if (!pods.items.every((p) => p.status.phase === 'Running' || unschedulable(p))) return false;
    const stuck = pods.items.some(unschedulable);
    if (!stuck && !(await listOf(c, 'deployments', ns)).every(rolledOut)) return false;
  }
  return true;
}
