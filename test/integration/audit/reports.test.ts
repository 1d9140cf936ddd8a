// OpenReports: with the upstream CRDs installed (the pinned files of the openreports module,
// hack/tools/fetch-report-crds.sh), the audit's findings become openreports.io/v1alpha1
// Reports, one per namespace and policy, owned by the policy, and a namespaced policy's
// findings in another namespace a ClusterReport, never a Report in that namespace. A drift
// adds a report and its undoing deletes it; a steady cluster causes no report write however
// many passes go by; a deleted policy takes its reports with it; a cluster policy's Reports are
// in each pod's namespace, owned by it. Before the CRDs are there the operator audits and logs
// that reports are off; once installed, the next full check finds them. With --policy-reports
// the same goes to wgpolicyk8s.io PolicyReports (their CRDs from Kyverno's module).
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/reports.test.ts
import assert from 'node:assert/strict';

import { reportCrdFiles } from '../../tools/pinned.ts';
import {
  clusterTest,
  deferClusterPolicy,
  HOSTNAME,
  list,
  makeNamespace,
  makePool,
  runOperator,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
  type Operator,
  type Scope,
} from '../operator/support.ts';
import { affinityPolicy, barePod, label, waitRunning, waitStatus } from './support.ts';

const REPORT_MS = 30_000;

/** One report API as the test reads it: its group and its two resources. */
interface Api {
  readonly group: 'openreports.io' | 'wgpolicyk8s.io';
  readonly report: string;
  readonly clusterReport: string;
}
const OPENREPORTS: Api = {
  group: 'openreports.io',
  report: 'reports',
  clusterReport: 'clusterreports',
};
const POLICY_REPORTS: Api = {
  group: 'wgpolicyk8s.io',
  report: 'policyreports',
  clusterReport: 'clusterpolicyreports',
};
const crds = (api: Api): string[] =>
  [api.report, api.clusterReport].map((r) => `${r}.${api.group}`);

interface ReportResult {
  readonly policy: string;
  readonly rule: string;
  readonly result: string;
  readonly severity: string;
  readonly message: string;
  readonly resources: readonly { kind: string; namespace: string; name: string; uid?: string }[];
  readonly properties: Record<string, string>;
}

interface Report {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly ownerReferences?: readonly { kind: string; name: string; uid: string }[];
  };
  readonly source?: string;
  readonly summary?: Record<string, number>;
  readonly results?: readonly ReportResult[];
}

async function removeReportCrds(c: Cluster, api: Api): Promise<void> {
  await c.kubectl(
    'delete',
    'crd',
    ...crds(api),
    '--ignore-not-found',
    '--wait=true',
    '--timeout=120s',
  );
}

async function installReportCrds(c: Cluster, api: Api): Promise<void> {
  for (const file of reportCrdFiles(api.group))
    await c.kubectl('apply', '--server-side', '-f', file);
  await c.kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...crds(api).map((n) => `crd/${n}`),
  );
}

/** A report, or undefined when there is none of that name. */
async function report(
  c: Cluster,
  resource: string,
  name: string,
  ns?: string,
): Promise<Report | undefined> {
  const found = await c.json<{ items: Report[] }>(
    'get',
    resource,
    ...(ns === undefined ? [] : ['-n', ns]),
    '--field-selector',
    `metadata.name=${name}`,
  );
  return found.items[0];
}

async function waitReport(
  c: Cluster,
  what: string,
  resource: string,
  name: string,
  ns: string | undefined,
  ok: (r: Report | undefined) => boolean,
): Promise<Report | undefined> {
  let last: Report | undefined;
  try {
    await waitFor(
      what,
      async () => {
        last = await report(c, resource, name, ns);
        return ok(last) ? true : undefined;
      },
      REPORT_MS,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last ${JSON.stringify(last)}`);
  }
  return last;
}

const writes = (op: Operator): number =>
  op.logged('report written').length + op.logged('report deleted').length;

const passes = (op: Operator): Promise<number> =>
  op.metric('placement_audit_duration_seconds_count');

const uidOf = async (c: Cluster, kind: string, ns: string, name: string): Promise<string> =>
  (await c.json<{ metadata: { uid: string } }>('get', kind, '-n', ns, name)).metadata.uid;

const podTargets = (app: string): JsonObject => ({
  kinds: ['Pod'],
  selector: { matchLabels: { app } },
});

/** No pod labelled tier=`tier`, of any namespace, on the same node. */
const keepAwayAffinity = (tier: string): JsonObject => ({
  podAntiAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [
      { labelSelector: { matchLabels: { tier } }, namespaceSelector: {}, topologyKey: HOSTNAME },
    ],
  },
});

/**
 * Two policies over pods that already run. follow: web must share a zone with db (fine until
 * n1 leaves zone-a). keep-away: a lonely pod wants no pod labelled tier=<tier> of any
 * namespace on its node; one of another namespace is there, so lonely breaks it (a Report in
 * ns), and by symmetry the other namespace's pod does too (the platform's: a ClusterReport,
 * nothing in `other`).
 */
async function scenario(
  c: Cluster,
  s: Scope,
  ns: string,
): Promise<{ other: string; n0: string; n1: string }> {
  const other = await makeNamespace(c, s, 'reports-other');
  const pool = await makePool(c, s, ['zone-a', 'zone-a']);
  const [n0, n1] = pool.nodes as [string, string];
  const tier = `tier-${ns}`;

  await c.apply(
    list(
      barePod(ns, 'db-0', { app: 'db' }, pool, n0),
      barePod(ns, 'web-0', { app: 'web' }, pool, n1),
      barePod(ns, 'lonely-0', { app: 'lonely' }, pool, n0),
      barePod(other, 'crowd-0', { app: 'crowd', tier }, pool, n0),
    ),
  );
  for (const app of ['db', 'web', 'lonely']) await waitRunning(c, ns, app, 1);
  await waitRunning(c, other, 'crowd', 1);
  const keepAway: JsonObject = {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementPolicy',
    metadata: { name: 'keep-away', namespace: ns },
    spec: {
      mode: 'Audit',
      targets: podTargets('lonely'),
      affinity: keepAwayAffinity(tier),
    },
  };
  await c.apply(
    list(
      affinityPolicy(ns, 'follow', podTargets('web'), {
        labelSelector: { matchLabels: { app: 'db' } },
        topologyKey: ZONE,
      }),
      keepAway,
    ),
  );
  return { other, n0, n1 };
}

clusterTest(
  'findings are Reports per namespace and policy, written only when they change, once the CRDs are there',
  { timeout: 420_000, namespace: 'reports' },
  async ({ t, c, s, ns }) => {
    await removeReportCrds(c, OPENREPORTS);
    const { other, n0, n1 } = await scenario(c, s, ns);
    // A full check every 2 s: each one reads the stored reports again and compares.
    const op = await runOperator(c, s, ['--leader-elect=false', '--audit-interval=2s']);

    await t.test('without the CRDs: audited, and reports are off, logged', async () => {
      const off = op.logged('reports off').find((l) => l['api'] === 'openreports.io/v1alpha1');
      assert.match(String(off?.['detail']), /does not serve openreports\.io\/v1alpha1/);
      await waitStatus(c, ns, 'keep-away', 'one violation', (x) => x.violations === 1, REPORT_MS);
      assert.deepEqual(op.logged('reports on'), []);
    });

    // Other files' operators publish nothing: the CRDs go with this test.
    s.defer(() => removeReportCrds(c, OPENREPORTS));
    await installReportCrds(c, OPENREPORTS);
    await t.test('CRDs installed later are found at the next full check', async () => {
      // One CRD may be served before the other: each change of what is served is logged.
      const both = (l: Record<string, unknown>): boolean =>
        JSON.stringify(l['kinds']) === JSON.stringify(['Report', 'ClusterReport']);
      await waitFor(
        'the log line "reports on" with both kinds',
        () => Promise.resolve(op.logged('reports on').find(both)),
        REPORT_MS,
      );
    });

    await t.test(
      "a violating pod is a result of its policy's Report, owned by the policy",
      async () => {
        const r = await waitReport(
          c,
          'Report placement-pp-keep-away with one failure',
          'reports.openreports.io',
          'placement-pp-keep-away',
          ns,
          (x) => x?.summary?.['fail'] === 1,
        );
        assert.ok(r);
        assert.equal(r.metadata.labels?.['app.kubernetes.io/managed-by'], 'placement-operator');
        assert.deepEqual(
          r.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
          [['PlacementPolicy', 'keep-away', await uidOf(c, 'placementpolicy', ns, 'keep-away')]],
        );
        assert.deepEqual(r.summary, { pass: 0, fail: 1, warn: 0, error: 0, skip: 0 });
        const [result] = r.results ?? [];
        assert.ok(result);
        assert.equal(result.policy, `PlacementPolicy/${ns}/keep-away`);
        assert.equal(result.rule, 'podAntiAffinity');
        assert.equal(result.result, 'fail');
        assert.ok(['high', 'medium'].includes(result.severity), result.severity);
        assert.deepEqual(
          result.resources.map((x) => [x.kind, x.namespace, x.name, x.uid]),
          [['Pod', ns, 'lonely-0', await uidOf(c, 'pod', ns, 'lonely-0')]],
        );
        assert.equal(result.properties['node'], n0);
        assert.equal(result.properties['domain'], `${HOSTNAME}=${n0}`);

        const cr = await waitReport(
          c,
          'the ClusterReport of keep-away',
          'clusterreports.openreports.io',
          `placement-pp-${ns}.keep-away`,
          undefined,
          (x) => x?.summary?.['fail'] === 1,
        );
        assert.deepEqual(
          cr?.results?.map((x) => [x.rule, x.resources[0]?.namespace, x.resources[0]?.name]),
          [['symmetricAntiAffinity', other, 'crowd-0']],
        );
        assert.deepEqual(
          (await c.json<{ items: Report[] }>('get', 'reports.openreports.io', '-n', other)).items,
          [],
          `no Report in ${other}`,
        );
        assert.equal(
          await report(c, 'reports.openreports.io', 'placement-pp-follow', ns),
          undefined,
          'follow holds: no report',
        );
      },
    );

    await t.test('a drift adds a Report; undoing it deletes it', async () => {
      await label(c, 'node', n1, { [ZONE]: 'zone-b' });
      const r = await waitReport(
        c,
        'Report placement-pp-follow with one failure',
        'reports.openreports.io',
        'placement-pp-follow',
        ns,
        (x) => x?.summary?.['fail'] === 1,
      );
      assert.deepEqual(
        r?.results?.map((x) => [x.rule, x.resources[0]?.name, x.properties['node']]),
        [['podAffinity', 'web-0', n1]],
      );
      await label(c, 'node', n1, { [ZONE]: 'zone-a' });
      await waitReport(
        c,
        'Report placement-pp-follow gone',
        'reports.openreports.io',
        'placement-pp-follow',
        ns,
        (x) => x === undefined,
      );
    });

    await t.test('a steady cluster: no report write across several passes', async () => {
      const before = writes(op);
      const from = await passes(op);
      // Full checks every 2 s read the stored reports and compare; five passes of nothing new.
      await waitFor(
        'five more audit passes',
        async () => ((await passes(op)) >= from + 5 ? true : undefined),
        60_000,
      );
      assert.equal(writes(op), before, 'report writes while nothing changed');
      assert.deepEqual(op.logged('report write failed'), []);
    });

    await t.test('a report edited by hand is put back on the next full check', async () => {
      await c.kubectl(
        'patch',
        'reports.openreports.io',
        '-n',
        ns,
        'placement-pp-keep-away',
        '--type=merge',
        '-p',
        '{"summary":{"fail":7}}',
      );
      await waitReport(
        c,
        'Report placement-pp-keep-away put back',
        'reports.openreports.io',
        'placement-pp-keep-away',
        ns,
        (x) => x?.summary?.['fail'] === 1,
      );
    });

    await t.test('a policy that goes takes its reports with it', async () => {
      await c.kubectl(
        'delete',
        'placementpolicy',
        '-n',
        ns,
        'keep-away',
        '--wait=true',
        '--timeout=60s',
      );
      await waitReport(
        c,
        'Report placement-pp-keep-away gone',
        'reports.openreports.io',
        'placement-pp-keep-away',
        ns,
        (x) => x === undefined,
      );
      await waitReport(
        c,
        'the ClusterReport gone',
        'clusterreports.openreports.io',
        `placement-pp-${ns}.keep-away`,
        undefined,
        (x) => x === undefined,
      );
    });

    await t.test(
      "a cluster policy's findings: a Report in each pod's namespace, owned by the policy",
      async () => {
        const name = `reports-${ns}`;
        deferClusterPolicy(c, s, name);
        await c.apply(
          list({
            apiVersion: 'placement.dev/v1alpha1',
            kind: 'ClusterPlacementPolicy',
            metadata: { name },
            spec: {
              mode: 'Audit',
              targets: { ...podTargets('lonely'), namespaces: [ns] },
              affinity: keepAwayAffinity(`tier-${ns}`),
            },
          }),
        );
        const uid = (
          await c.json<{ metadata: { uid: string } }>('get', 'clusterplacementpolicy', name)
        ).metadata.uid;
        // The lonely pod breaks the term; the other namespace's pod breaks it by symmetry,
        // and a cluster policy's findings are shown in the pod's own namespace.
        for (const [where, pod, rule] of [
          [ns, 'lonely-0', 'podAntiAffinity'],
          [other, 'crowd-0', 'symmetricAntiAffinity'],
        ] as const) {
          const r = await waitReport(
            c,
            `Report placement-cpp-${name} in ${where}`,
            'reports.openreports.io',
            `placement-cpp-${name}`,
            where,
            (x) => x?.summary?.['fail'] === 1,
          );
          assert.ok(r);
          assert.deepEqual(
            r.results?.map((x) => [x.rule, x.resources[0]?.name]),
            [[rule, pod]],
          );
          assert.deepEqual(
            r.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
            [['ClusterPlacementPolicy', name, uid]],
          );
        }
        await c.kubectl('delete', 'clusterplacementpolicy', name, '--wait=true', '--timeout=60s');
        for (const where of [ns, other])
          await waitReport(
            c,
            `Report placement-cpp-${name} in ${where} gone`,
            'reports.openreports.io',
            `placement-cpp-${name}`,
            where,
            (x) => x === undefined,
          );
      },
    );
  },
);

clusterTest(
  'with --policy-reports, the same findings are wgpolicyk8s.io PolicyReports, steady too',
  { timeout: 420_000, namespace: 'reports' },
  async ({ t, c, s, ns }) => {
    s.defer(() => removeReportCrds(c, POLICY_REPORTS));
    await installReportCrds(c, POLICY_REPORTS);
    const { other } = await scenario(c, s, ns);
    const op = await runOperator(c, s, [
      '--leader-elect=false',
      '--audit-interval=2s',
      '--policy-reports=true',
    ]);
    assert.deepEqual(
      op.logged('reports on').map((l) => [l['api'], l['kinds']]),
      [['wgpolicyk8s.io/v1alpha2', ['PolicyReport', 'ClusterPolicyReport']]],
    );
    const resource = `policyreports.${POLICY_REPORTS.group}`;
    const clusterResource = `clusterpolicyreports.${POLICY_REPORTS.group}`;

    await t.test(
      'a PolicyReport per namespace and policy, a ClusterPolicyReport for the platform',
      async () => {
        const r = await waitReport(
          c,
          'PolicyReport placement-pp-keep-away with one failure',
          resource,
          'placement-pp-keep-away',
          ns,
          (x) => x?.summary?.['fail'] === 1,
        );
        assert.ok(r);
        // v1alpha2 has no report-level source; each result carries it.
        assert.equal(r.source, undefined);
        assert.deepEqual(
          r.results?.map((x) => [x.policy, x.rule, x.resources[0]?.name]),
          [[`PlacementPolicy/${ns}/keep-away`, 'podAntiAffinity', 'lonely-0']],
        );
        assert.deepEqual(
          r.metadata.ownerReferences?.map((o) => o.kind),
          ['PlacementPolicy'],
        );
        const cr = await waitReport(
          c,
          'the ClusterPolicyReport of keep-away',
          clusterResource,
          `placement-pp-${ns}.keep-away`,
          undefined,
          (x) => x?.summary?.['fail'] === 1,
        );
        assert.deepEqual(
          cr?.results?.map((x) => [x.rule, x.resources[0]?.namespace]),
          [['symmetricAntiAffinity', other]],
        );
      },
    );

    await t.test('a steady cluster: no write across several passes', async () => {
      const before = writes(op);
      const from = await passes(op);
      await waitFor(
        'four more audit passes',
        async () => ((await passes(op)) >= from + 4 ? true : undefined),
        60_000,
      );
      assert.equal(writes(op), before, 'report writes while nothing changed');
    });

    await t.test('a policy that goes takes its reports with it', async () => {
      // The PolicyReport's owner reference lets the garbage collector remove it too; the
      // operator deletes both itself (a report already gone counts as deleted).
      const deleted = (): number =>
        op.logged('report deleted').filter((l) => l['api'] === 'wgpolicyk8s.io/v1alpha2').length;
      const deletedBefore = deleted();
      await c.kubectl('delete', 'placementpolicy', '-n', ns, 'keep-away', '--wait=true');
      await waitFor('the operator to delete both reports of keep-away', () =>
        Promise.resolve(deleted() >= deletedBefore + 2 ? true : undefined),
      );
      await waitReport(
        c,
        'PolicyReport gone',
        resource,
        'placement-pp-keep-away',
        ns,
        (x) => x === undefined,
      );
      await waitReport(
        c,
        'ClusterPolicyReport gone',
        clusterResource,
        `placement-pp-${ns}.keep-away`,
        undefined,
        (x) => x === undefined,
      );
    });
  },
);
