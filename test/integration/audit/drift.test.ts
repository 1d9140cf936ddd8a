// Issue #5, drift: affinity is IgnoredDuringExecution, so relabelling a node's zone, a pod
// or a namespace can leave running pods in breach of a rule the scheduler checked once. The
// audit must say so within seconds — in the policy's status (violations, violationSample),
// in placement_violations{policy,rule} and in one Warning Event PlacementViolation on the
// pod, not repeated while it stays — and undoing the change must clear it. The operator runs
// with the default 5-minute full check, so what is seen here comes from the informers.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/drift.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  list,
  makeNamespace,
  makePool,
  runOperator,
  uniqueName,
  waitAdvanced,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
  type Operator,
} from '../operator/support.ts';
import {
  affinityPolicy,
  barePod,
  label,
  secondsSince,
  violationEvents,
  waitRunning,
  waitStatus,
} from './support.ts';

const VIOLATIONS = 'placement_violations';
/** What "within seconds" means here, on a busy two-core machine. */
const REPORT_MS = 20_000;

interface Drift {
  /** Policy and pod (app label) of the scenario. */
  readonly policy: string;
  readonly web: string;
  readonly what: string;
  readonly apply: () => Promise<void>;
  readonly undo: () => Promise<void>;
}

clusterTest(
  'relabelled nodes, pods and namespaces are reported, and cleared when undone',
  { timeout: 300_000, namespace: 'drift' },
  async ({ t, c, s, ns }) => {
    const tier = uniqueName('data');
    const dataNs = await makeNamespace(c, s, 'drift-data', { tier });
    const pool = await makePool(c, s, ['zone-a', 'zone-a']);
    const [n0, n1] = pool.nodes as [string, string];

    // Three pairs: each web pod must share a zone with its db pod (three policies, one each),
    // so that each drift breaks exactly one of them.
    //   node: web-node on n1 follows db-node on n0; n1 moves to zone-b.
    //   pod:  web-pod follows db-pod (both on n0); db-pod is relabelled.
    //   ns:   web-ns follows db-ns in the namespace labelled tier=<tier>; the namespace is relabelled.
    const term = (app: string, extra: JsonObject = {}): JsonObject => ({
      labelSelector: { matchLabels: { app } },
      topologyKey: ZONE,
      ...extra,
    });
    const targets = (app: string): JsonObject => ({
      kinds: ['Pod'],
      selector: { matchLabels: { app } },
    });
    await c.apply(
      list(
        barePod(ns, 'db-node', { app: 'db-node' }, pool, n0),
        barePod(ns, 'web-node', { app: 'web-node' }, pool, n1),
        barePod(ns, 'db-pod', { app: 'db-pod' }, pool, n0),
        barePod(ns, 'web-pod', { app: 'web-pod' }, pool, n0),
        barePod(dataNs, 'db-ns', { app: 'db-ns' }, pool, n0),
        barePod(ns, 'web-ns', { app: 'web-ns' }, pool, n0),
      ),
    );
    for (const app of ['db-node', 'web-node', 'db-pod', 'web-pod', 'web-ns'])
      await waitRunning(c, ns, app, 1);
    await waitRunning(c, dataNs, 'db-ns', 1);

    const op = await runOperator(c, s, ['--leader-elect=false']);
    // Policies arrive while the operator runs, over pods that already run.
    const created = Date.now();
    await c.apply(
      list(
        affinityPolicy(ns, 'follow-node', targets('web-node'), term('db-node')),
        affinityPolicy(ns, 'follow-pod', targets('web-pod'), term('db-pod')),
        affinityPolicy(
          ns,
          'follow-ns',
          targets('web-ns'),
          term('db-ns', { namespaceSelector: { matchLabels: { tier } } }),
        ),
      ),
    );
    for (const name of ['follow-node', 'follow-pod', 'follow-ns']) {
      await waitStatus(
        c,
        ns,
        name,
        'audited, no violation',
        (st) => st.lastAuditTime !== undefined && st.violations === 0,
        REPORT_MS,
      );
    }
    const timings: Record<string, number> = { 'new policies audited': secondsSince(created) };

    const drifts: Drift[] = [
      {
        policy: 'follow-node',
        web: 'web-node',
        what: `node ${n1} relabelled to zone-b`,
        apply: () => label(c, 'node', n1, { [ZONE]: 'zone-b' }),
        undo: () => label(c, 'node', n1, { [ZONE]: 'zone-a' }),
      },
      {
        policy: 'follow-pod',
        web: 'web-pod',
        what: 'db pod relabelled',
        apply: () => label(c, 'pod', 'db-pod', { app: 'db-pod-retired' }, ns),
        undo: () => label(c, 'pod', 'db-pod', { app: 'db-pod' }, ns),
      },
      {
        policy: 'follow-ns',
        web: 'web-ns',
        what: `namespace ${dataNs} relabelled`,
        apply: () => label(c, 'namespace', dataNs, { tier: 'archive' }),
        undo: () => label(c, 'namespace', dataNs, { tier }),
      },
    ];

    for (const d of drifts) {
      const ref = `PlacementPolicy/${ns}/${d.policy}`;
      await t.test(d.what, async () => {
        const start = Date.now();
        await d.apply();
        const st = await waitStatus(
          c,
          ns,
          d.policy,
          'one violation',
          (x) => x.violations === 1,
          REPORT_MS,
        );
        timings[`${d.what}: status`] = secondsSince(start);
        const sample = st.violationSample ?? [];
        assert.deepEqual(
          sample.map((v) => [v.pod, v.rule, v.source]),
          [[`${ns}/${d.web}`, 'podAffinity', ref]],
        );
        assert.match(sample[0]?.message ?? '', /topology\.kubernetes\.io\/zone=zone-/);
        await waitMetric(op, { policy: ref, rule: 'podAffinity' }, 1);
        timings[`${d.what}: metric`] = secondsSince(start);
        const events = await waitEvents(c, ns, d.web, 1);
        timings[`${d.what}: Event`] = secondsSince(start);
        const [event] = events;
        assert.ok(event);
        assert.equal(event.type, 'Warning');
        assert.match(event.message ?? '', new RegExp(`^podAffinity \\(${ref}\\): `));
        // The other policies are untouched by this drift.
        for (const other of drifts.filter((x) => x !== d)) {
          assert.equal(
            await op.metric(VIOLATIONS, { policy: `PlacementPolicy/${ns}/${other.policy}` }),
            0,
          );
        }

        // While it stays: judged again on other changes (a pass after each), told once.
        for (let i = 0; i < 3; i++) {
          const before = await passes(op);
          await label(c, 'pod', d.web, { 'placement.dev/poke': String(i) }, ns);
          await waitAdvanced(
            `an audit pass after poke ${i}`,
            () => passes(op),
            before,
            1,
            REPORT_MS,
          );
        }
        assert.equal(toldOf(op, `${ns}/${d.web}`), 1, 'told once while it stays');
        assert.equal((await violationEvents(c, ns, d.web)).length, 1, 'one Event while it stays');
        assert.equal((await waitStatus(c, ns, d.policy, 'still', () => true)).violations, 1);

        const undone = Date.now();
        await d.undo();
        await waitStatus(c, ns, d.policy, 'no violation', (x) => x.violations === 0, REPORT_MS);
        timings[`${d.what}: cleared`] = secondsSince(undone);
        await waitMetric(op, { policy: ref, rule: 'podAffinity' }, 0);
        assert.equal((await violationEvents(c, ns, d.web)).length, 1, 'no Event for clearing');
      });
    }
    assert.equal(
      op.logged('incremental audit index disagreed with a rebuild; using the rebuild').length,
      0,
    );
    t.diagnostic(`seconds from change to report: ${JSON.stringify(timings)}`);
  },
);

const passes = (op: Operator): Promise<number> =>
  op.metric('placement_audit_duration_seconds_count');

/** How often the audit told of a new violation of the pod (an Event goes with each). */
const toldOf = (op: Operator, pod: string): number =>
  op.logged('pod breaks a placement rule').filter((l) => l['pod'] === pod).length;

async function waitMetric(op: Operator, labels: Record<string, string>, want: number) {
  await waitFor(
    `${VIOLATIONS}${JSON.stringify(labels)} = ${want}`,
    async () => ((await op.metric(VIOLATIONS, labels)) === want ? true : undefined),
    REPORT_MS,
  );
}

async function waitEvents(c: Cluster, ns: string, pod: string, n: number) {
  return waitFor(
    `${n} PlacementViolation Event(s) on ${ns}/${pod}`,
    async () => {
      const events = await violationEvents(c, ns, pod);
      return events.length >= n ? events : undefined;
    },
    REPORT_MS,
  );
}
