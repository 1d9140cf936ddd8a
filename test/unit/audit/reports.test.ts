// The audit's findings as OpenReports objects: which reports a pass calls for, what each holds,
// and what counts as a change worth a write.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { PolicyRef } from '../../../src/api/policy.ts';
import {
  desiredReports,
  reportContent,
  reportName,
  type ReportFinding,
  type ReportObject,
  type ReportPolicy,
} from '../../../src/audit/reports.ts';
import { POLICY_REPORTS, type ReportKind } from '../../../src/api/reports.ts';
import { jsonEqual } from '../../../src/util/json.ts';
import { audit, labelsIn, namespace, nodeInZone, pod, term, ZONE } from '../builders.ts';

const BOTH: ReadonlySet<ReportKind> = new Set(['Report', 'ClusterReport']);
const policy = (ref: PolicyRef, uid = `uid-${ref}`): ReportPolicy => ({
  ref,
  source: { metadata: { uid } },
});
const POLICIES = [
  policy('PlacementPolicy/shop/web-near-db'),
  policy('ClusterPlacementPolicy/spread-all'),
];

function finding(
  pod: string,
  source: string,
  o: Partial<{
    rule: string;
    reach: ReportFinding['reach'];
    term: number;
    properties: Record<string, string>;
  }> = {},
): ReportFinding {
  return {
    violation: {
      pod,
      node: 'n1',
      rule: o.rule ?? 'podAffinity',
      source,
      term: o.term ?? 0,
      message: `${pod} breaks it`,
      ...(o.properties === undefined ? {} : { properties: o.properties }),
    },
    reach: o.reach ?? 'act',
  };
}

const build = (findings: ReportFinding[], kinds = BOTH): Map<string, ReportObject> =>
  desiredReports({
    findings,
    policies: POLICIES,
    podUid: (pod) => `uid-${pod}`,
    kinds,
  });

void describe('desiredReports', () => {
  const cases: readonly {
    name: string;
    findings: ReportFinding[];
    kinds?: ReadonlySet<ReportKind>;
    /** reportKey → fail count */
    want: Record<string, number>;
  }[] = [
    { name: 'no finding, no report', findings: [], want: {} },
    {
      name: 'one report per namespace and policy',
      findings: [
        finding('shop/web-1', 'PlacementPolicy/shop/web-near-db'),
        finding('shop/web-2', 'PlacementPolicy/shop/web-near-db'),
        finding('shop/web-1', 'ClusterPlacementPolicy/spread-all', { rule: 'podAntiAffinity' }),
        finding('blog/db-0', 'ClusterPlacementPolicy/spread-all', { rule: 'podAntiAffinity' }),
      ],
      want: {
        'Report/shop/placement-pp-web-near-db': 2,
        'Report/shop/placement-cpp-spread-all': 1,
        'Report/blog/placement-cpp-spread-all': 1,
      },
    },
    {
      name: "pods' own rules go to one report per namespace",
      findings: [
        finding('shop/a', 'pod', { reach: 'show' }),
        finding('shop/b', 'pod', { reach: 'show' }),
      ],
      want: { 'Report/shop/placement-pod-rules': 2 },
    },
    {
      name: "a namespaced policy's findings elsewhere go to a ClusterReport, not to that namespace",
      findings: [
        finding('blog/db-0', 'PlacementPolicy/shop/web-near-db', {
          rule: 'symmetricAntiAffinity',
          reach: 'platform',
        }),
      ],
      want: { 'ClusterReport/placement-pp-shop.web-near-db': 1 },
    },
    {
      name: 'kinds the API server lacks get nothing',
      findings: [
        finding('blog/db-0', 'PlacementPolicy/shop/web-near-db', { reach: 'platform' }),
        finding('shop/web-1', 'PlacementPolicy/shop/web-near-db'),
      ],
      kinds: new Set(['Report']),
      want: { 'Report/shop/placement-pp-web-near-db': 1 },
    },
    {
      name: 'a finding of a policy that is gone has no report',
      findings: [finding('shop/web-1', 'PlacementPolicy/shop/deleted')],
      want: {},
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const got = build(c.findings, c.kinds);
      assert.deepEqual(Object.fromEntries([...got].map(([k, r]) => [k, r.summary.fail])), c.want);
      for (const r of got.values()) {
        assert.equal(r.results.length, r.summary.fail);
        assert.deepEqual(
          [r.summary.pass, r.summary.warn, r.summary.error, r.summary.skip],
          [0, 0, 0, 0],
        );
      }
    });
  }

  void test('a report names its results, its owner and its manager', () => {
    const [report] = build([
      finding('shop/web-1', 'PlacementPolicy/shop/web-near-db', {
        term: 2,
        properties: { domain: 'topology.kubernetes.io/zone=zone-b', conflictingPod: 'shop/db-0' },
      }),
    ]).values();
    assert.ok(report);
    assert.equal(report.apiVersion, 'openreports.io/v1alpha1');
    assert.equal(report.kind, 'Report');
    assert.deepEqual(report.metadata, {
      name: 'placement-pp-web-near-db',
      namespace: 'shop',
      labels: {
        'app.kubernetes.io/managed-by': 'placement-operator',
        'placement.dev/policy': 'shop.web-near-db',
      },
      ownerReferences: [
        {
          apiVersion: 'placement.dev/v1alpha1',
          kind: 'PlacementPolicy',
          name: 'web-near-db',
          uid: 'uid-PlacementPolicy/shop/web-near-db',
        },
      ],
    });
    assert.deepEqual(report.results, [
      {
        source: 'placement-operator',
        policy: 'PlacementPolicy/shop/web-near-db',
        rule: 'podAffinity',
        result: 'fail',
        severity: 'high',
        scored: true,
        message: 'shop/web-1 breaks it',
        resources: [
          {
            apiVersion: 'v1',
            kind: 'Pod',
            namespace: 'shop',
            name: 'web-1',
            uid: 'uid-shop/web-1',
          },
        ],
        properties: {
          node: 'n1',
          term: '2',
          domain: 'topology.kubernetes.io/zone=zone-b',
          conflictingPod: 'shop/db-0',
        },
      },
    ]);
  });

  void test('a ClusterReport has no owner (a namespaced policy cannot own it); a cluster policy owns its Reports', () => {
    const got = build([
      finding('blog/db-0', 'PlacementPolicy/shop/web-near-db', { reach: 'platform' }),
      finding('blog/db-0', 'ClusterPlacementPolicy/spread-all'),
    ]);
    assert.equal(
      got.get('ClusterReport/placement-pp-shop.web-near-db')?.metadata.ownerReferences,
      undefined,
    );
    assert.deepEqual(
      got.get('Report/blog/placement-cpp-spread-all')?.metadata.ownerReferences?.map((o) => o.kind),
      ['ClusterPlacementPolicy'],
    );
  });

  void test("a pod's own rules are shown (medium), a policy's targets are acted on (high)", () => {
    const got = build([
      finding('shop/a', 'pod', { reach: 'show' }),
      finding('shop/b', 'PlacementPolicy/shop/web-near-db', { reach: 'show' }),
      finding('shop/c', 'PlacementPolicy/shop/web-near-db', { reach: 'act' }),
    ]);
    assert.deepEqual(
      [...got.values()].flatMap((r) =>
        r.results.map((x) => `${x.resources[0]?.name ?? ''}:${x.severity}`),
      ),
      ['a:medium', 'b:medium', 'c:high'],
    );
  });

  void test('as wgpolicyk8s.io PolicyReports: their kinds, no report-level source, the same results', () => {
    const fs = [
      finding('shop/web-1', 'PlacementPolicy/shop/web-near-db'),
      finding('blog/db-0', 'PlacementPolicy/shop/web-near-db', { reach: 'platform' }),
    ];
    const open = build(fs);
    const old = desiredReports({
      findings: fs,
      policies: POLICIES,
      podUid: (pod) => `uid-${pod}`,
      kinds: BOTH,
      api: POLICY_REPORTS,
    });
    assert.deepEqual([...old.keys()], [...open.keys()]);
    for (const [key, r] of old) {
      const o = open.get(key);
      assert.ok(o);
      assert.equal(r.apiVersion, 'wgpolicyk8s.io/v1alpha2');
      assert.equal(r.kind, o.kind === 'Report' ? 'PolicyReport' : 'ClusterPolicyReport');
      assert.equal(r.source, undefined);
      assert.equal(o.source, 'placement-operator');
      assert.deepEqual([r.metadata, r.summary, r.results], [o.metadata, o.summary, o.results]);
    }
  });

  void test('the same findings in another order give the same report', () => {
    const fs = [
      finding('shop/web-2', 'PlacementPolicy/shop/web-near-db'),
      finding('shop/web-1', 'PlacementPolicy/shop/web-near-db', { rule: 'podAntiAffinity' }),
      finding('shop/web-1', 'PlacementPolicy/shop/web-near-db'),
    ];
    assert.deepEqual([...build(fs)], [...build([...fs].reverse())]);
  });
});

void describe("results' properties: where the finding stands and whom it conflicts with", () => {
  const nodes = [nodeInZone('a0', 'a'), nodeInZone('a1', 'a'), nodeInZone('b0', 'b')];
  const spread = {
    maxSkew: 1,
    topologyKey: ZONE,
    whenUnsatisfiable: 'DoNotSchedule' as const,
    labelSelector: labelsIn({ app: 'web' }),
  };
  const web = (name: string, node: string) => {
    const p = pod(name, { ns: 'shop', node, labels: { app: 'web' } });
    return { ...p, spec: { ...p.spec, topologySpreadConstraints: [spread] } };
  };
  const cluster = {
    nodes,
    namespaces: [namespace('shop')],
    pods: [
      // zone a holds 4 web pods, b 0: 3 over, three of them the excess.
      ...['a0', 'a0', 'a1', 'a1'].map((n, i) => web(`web-${i}`, n)),
      pod('db-0', { ns: 'shop', node: 'b0', labels: { app: 'db' } }),
      pod('lone', {
        ns: 'shop',
        node: 'b0',
        labels: { app: 'cache' },
        anti: [term(labelsIn({ app: 'db' }), ZONE)],
      }),
    ],
  };
  const results = () => {
    const findings = audit(cluster).violations.map((violation): ReportFinding => ({
      violation,
      reach: 'show',
    }));
    const [report] = build(findings).values();
    assert.ok(report);
    return report.results;
  };
  const byPod = new Map(
    results().map((r) => [`${r.resources[0]?.name ?? ''}|${r.rule}`, r.properties]),
  );

  void test('topologySpread: the over domain, by how much, the other excess pods', () => {
    const excess = [...byPod.keys()].filter((k) => k.endsWith('|topologySpread'));
    assert.equal(excess.length, 3);
    const props = byPod.get(excess[0] ?? '');
    assert.ok(props);
    assert.equal(props['domain'], `${ZONE}=a`);
    assert.equal(props['over'], '3');
    assert.match(props['node'] ?? '', /^a[01]$/);
    const others = (props['conflictingPods'] ?? '').split(',');
    assert.equal(others.length, 2);
    assert.ok(!others.includes(`shop/${excess[0]?.split('|')[0] ?? ''}`), 'not the pod itself');
  });

  void test('podAntiAffinity names its domain; symmetric anti-affinity the pod whose term it is', () => {
    assert.deepEqual(byPod.get('lone|podAntiAffinity'), {
      node: 'b0',
      term: '0',
      domain: `${ZONE}=b`,
    });
    assert.deepEqual(byPod.get('db-0|symmetricAntiAffinity'), {
      node: 'b0',
      term: '0',
      domain: `${ZONE}=b`,
      conflictingPod: 'shop/lone',
    });
  });

  void test('the same cluster gives the same results, pass after pass', () => {
    assert.ok(jsonEqual(results(), results()));
  });

  void test('a long excess list names the first ten and counts the rest', () => {
    const [r] = build([
      {
        violation: {
          pod: 'shop/w-00',
          node: 'n1',
          rule: 'topologySpread',
          source: 'pod',
          term: 0,
          message: 'over',
          domain: `${ZONE}=a`,
          over: 15,
          excess: Array.from({ length: 15 }, (_, i) => `shop/w-${String(i).padStart(2, '0')}`),
        },
        reach: 'show',
      },
    ]).values();
    const props = r?.results[0]?.properties ?? {};
    assert.equal(
      props['conflictingPods'],
      `${Array.from({ length: 10 }, (_, i) => `shop/w-${String(i + 1).padStart(2, '0')}`).join(',')} and 4 more`,
    );
    assert.equal(props['over'], '15');
  });
});

void describe('reportContent', () => {
  const [report] = build([finding('shop/web-1', 'PlacementPolicy/shop/web-near-db')]).values();
  assert.ok(report);
  const stored = {
    ...report,
    metadata: {
      ...report.metadata,
      resourceVersion: '42',
      uid: 'x',
      managedFields: [{ manager: 'placement-operator' }],
      labels: { ...report.metadata.labels, 'team.example/owner': 'shop' },
      ownerReferences: report.metadata.ownerReferences?.map((o) => ({
        ...o,
        blockOwnerDeletion: false,
      })),
    },
  };
  void test("the server's fields and others' labels are no change", () => {
    assert.ok(jsonEqual(reportContent(stored), reportContent(report)));
  });
  const changes: readonly { name: string; edit: (r: typeof stored) => unknown }[] = [
    { name: 'a result', edit: (r) => ({ ...r, results: [] }) },
    { name: 'the summary', edit: (r) => ({ ...r, summary: { ...r.summary, fail: 9 } }) },
    {
      name: 'its own label',
      edit: (r) => ({
        ...r,
        metadata: { ...r.metadata, labels: { 'team.example/owner': 'shop' } },
      }),
    },
    {
      name: 'its owner',
      edit: (r) => ({ ...r, metadata: { ...r.metadata, ownerReferences: [] } }),
    },
  ];
  for (const c of changes) {
    void test(`${c.name} edited is a change`, () => {
      assert.ok(!jsonEqual(reportContent(c.edit(stored)), reportContent(report)));
    });
  }
});

void describe('reportName', () => {
  void test('fits a name, whatever the policy name', () => {
    const long = 'x'.repeat(250);
    const name = reportName(`ClusterPlacementPolicy/${long}`, 'Report');
    assert.equal(name.length, 253);
    assert.notEqual(name, reportName(`ClusterPlacementPolicy/${long}y`, 'Report'));
  });
});
