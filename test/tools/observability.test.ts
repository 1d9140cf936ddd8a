/**
 * The chart's Grafana dashboard and alerting rules against the metrics the operator exports:
 * every PromQL expression parses (promtool), names only metrics and labels that exist, the
 * rules behave as documented (`promtool test rules`), and a real scrape passes
 * `promtool check metrics`. promtool is the pinned build of hack/tools/build-prometheus.sh;
 * PROMTOOL overrides its path.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parse, stringify } from 'yaml';

import {
  createMetrics,
  reconcileObserver,
  workQueueListener,
  type Metrics,
} from '../../src/metrics/index.ts';
import {
  ALERTS,
  allPanels,
  isRecord,
  panelName,
  readDashboard,
  records,
  rulesOf,
  substitute,
  targetsOf,
  text,
  type Rule,
  type Target,
} from './observability.ts';
import { promtoolBinary } from './pinned.ts';
import { RULES } from '../../src/api/rules.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const METRICS_DOC = join(ROOT, 'docs/metrics.md');
const PROMTOOL = promtoolBinary();

/** Series Prometheus itself adds, allowed in queries beside the operator's own. */
const PROMETHEUS_SERIES = ['up'];
/** Labels Prometheus adds to every scraped series (ServiceMonitor target labels included). */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'endpoint', 'container'];

// ---------------------------------------------------------------------------------- helpers

interface Run {
  readonly code: number;
  readonly output: string;
}

/** Runs promtool; never rejects on a non-zero exit. */
async function promtool(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(PROMTOOL, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error === null) resolve({ code: 0, output });
      else if ('code' in error && error.code === 'ENOENT')
        reject(new Error(`${PROMTOOL} not found`, { cause: error }));
      else resolve({ code: typeof error.code === 'number' ? error.code : -1, output });
    });
    child.stdin?.end(stdin ?? '');
  });
}

// ---------------------------------------------------------------------- what we export

interface Exported {
  /** Series names a query may use: histograms expanded to _bucket, _sum and _count. */
  readonly series: ReadonlySet<string>;
  /** Metric family names, as registered. */
  readonly families: readonly string[];
  /** Every label name on any exported series, plus `le` and the target labels. */
  readonly labels: ReadonlySet<string>;
}

/** A registry as the operator creates it, with one value behind every labelled series. */
function populatedMetrics(): Metrics {
  const metrics = createMetrics({
    controllers: ['placement-workload', 'placement-policy'],
    leases: ['placement-operator'],
  });
  const { placement } = metrics;
  placement.setPolicyWorkloads('PlacementPolicy/shop/spread-web', {
    matched: 3,
    enforced: 2,
    pending: 1,
    exempted: 1,
  });
  placement.setPolicyWorkloads('ClusterPlacementPolicy/zones', {
    matched: 10,
    enforced: 10,
    pending: 0,
    exempted: 0,
  });
  placement.setViolations('PlacementPolicy/shop/spread-web', { podAntiAffinity: 2 });
  placement.setViolations('pod', { podAffinity: 1 });
  placement.auditFinished(0.42, new Date());
  placement.workloadWritten('written');
  placement.workloadReverted('conflict');
  placement.evicted('blocked');
  placement.setRolloutBudget(2, 5);
  metrics.leaderElectionMasterStatus.set({ name: 'placement-operator' }, 1);
  const observer = reconcileObserver(metrics, 'placement-workload');
  observer.workers(4);
  observer.reconciled('error', 0.012, false);
  const queue = workQueueListener(metrics, 'placement-workload');
  queue.added(1);
  queue.started(0, 3);
  queue.finished(12);
  queue.retried();
  return metrics;
}

async function exported(metrics: Metrics): Promise<Exported> {
  const series = new Set(PROMETHEUS_SERIES);
  const labels = new Set([...TARGET_LABELS, 'le']);
  const families: string[] = [];
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    families.push(metric.name);
    series.add(metric.name);
    // prom-client's typings say an enum; at run time `type` is the text format's word.
    if (String(metric.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) series.add(metric.name + suffix);
    }
    for (const value of metric.values)
      for (const label of Object.keys(value.labels)) labels.add(label);
  }
  return { series, families, labels };
}

// ----------------------------------------------------------------------- PromQL names

const LABEL_LIST_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
]);
const KEYWORDS = new Set([...LABEL_LIST_KEYWORDS, 'and', 'or', 'unless', 'bool', 'offset']);
const NUMBER_WORDS = new Set(['inf', 'nan']);

interface PromqlNames {
  readonly metrics: readonly string[];
  /** Label names in matchers and in by / without / on / ignoring / group_* lists. */
  readonly labels: readonly string[];
}

/**
 * The metric and label names an expression refers to. promtool has already said it parses;
 * this only has to tell a metric name from a function, a keyword, a label or a literal.
 */
function promqlNames(expr: string): PromqlNames {
  const metrics: string[] = [];
  const labels: string[] = [];
  const identAt = (i: number): string => /^[A-Za-z_:][\w:]*/.exec(expr.slice(i))?.[0] ?? '';
  const skipString = (i: number): number => {
    const quote = expr[i];
    let j = i + 1;
    while (j < expr.length && expr[j] !== quote) j += expr[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  /** Label names up to the closing bracket (`}` of a selector or `)` of a label list). */
  const labelList = (i: number, close: string): number => {
    let j = i;
    while (j < expr.length && expr[j] !== close) {
      const c = expr[j] ?? '';
      if (c === '"' || c === "'" || c === '`') j = skipString(j);
      else if (/[A-Za-z_]/.test(c)) {
        const name = identAt(j);
        labels.push(name);
        j += name.length;
      } else j += 1;
    }
    return j + 1;
  };
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] ?? '';
    if (c === '"' || c === "'" || c === '`') i = skipString(i);
    else if (c === '#') i = expr.indexOf('\n', i) === -1 ? expr.length : expr.indexOf('\n', i);
    else if (c === '{') i = labelList(i + 1, '}');
    else if (c === '[') i = expr.indexOf(']', i) + 1;
    else if (/[0-9.]/.test(c)) i += /^[\w.]+/.exec(expr.slice(i))?.[0].length ?? 1;
    else if (/[A-Za-z_:]/.test(c)) {
      const word = identAt(i);
      i += word.length;
      const rest = expr.slice(i).trimStart();
      // An aggregation may put its grouping first: `sum by (x) (...)`.
      const calls = rest.startsWith('(') || /^(by|without)\s*\(/.test(rest);
      if (LABEL_LIST_KEYWORDS.has(word) && calls) i = labelList(expr.indexOf('(', i) + 1, ')');
      else if (!calls && !KEYWORDS.has(word) && !NUMBER_WORDS.has(word.toLowerCase()))
        metrics.push(word);
    } else i += 1;
  }
  return { metrics, labels };
}

// --------------------------------------------------------------------------- dashboard

interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

function gridPos(panel: Record<string, unknown>): GridPos {
  const pos = panel['gridPos'];
  assert.ok(isRecord(pos), `${panelName(panel)} has no gridPos`);
  const [x, y, w, h] = ['x', 'y', 'w', 'h'].map((k) => pos[k]);
  assert.ok(
    typeof x === 'number' &&
      typeof y === 'number' &&
      typeof w === 'number' &&
      typeof h === 'number',
    `${panelName(panel)}: gridPos needs numbers x, y, w, h`,
  );
  return { x, y, w, h };
}

// ---------------------------------------------------------------------------- rules

// ------------------------------------------------------------------------------- tests

let dir = '';
let metrics: Metrics;
let exports: Exported;
let dashboard: Record<string, unknown>;
let variables: Set<string>;
let targets: Target[];
let rules: Rule[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'placement-observability-'));
  metrics = populatedMetrics();
  exports = await exported(metrics);
  ({ dashboard, variables } = readDashboard());
  targets = targetsOf(dashboard);
  rules = rulesOf(parse(await readFile(ALERTS, 'utf8')));
});

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

void describe('promqlNames', () => {
  const cases: { name: string; expr: string; metrics: string[]; labels: string[] }[] = [
    {
      name: 'aggregation, function, matchers and range',
      expr: 'sum by (policy, rule) (rate(foo_total{job=~"a.*", state!="x{y}"}[5m]))',
      metrics: ['foo_total'],
      labels: ['policy', 'rule', 'job', 'state'],
    },
    {
      name: 'binary operators, keywords, numbers and trailing by',
      expr: 'time() - max(a_seconds) by (job) > 9e2 and on (instance) b == 1 or vector(0)',
      metrics: ['a_seconds', 'b'],
      labels: ['job', 'instance'],
    },
    {
      name: 'grouping before the aggregated expression',
      expr: 'count(count without (rule) (d)) / sum by(policy)(e)',
      metrics: ['d', 'e'],
      labels: ['rule', 'policy'],
    },
    {
      name: 'strings are not names',
      expr: 'label_replace(up, "state", "violating pods", "", "") unless absent(c:rate5m)',
      metrics: ['up', 'c:rate5m'],
      labels: [],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.deepEqual(promqlNames(c.expr), { metrics: c.metrics, labels: c.labels });
    });
  }
});

void describe('alerts.yaml', () => {
  void test('passes promtool check rules', async () => {
    const run = await promtool(['check', 'rules', ALERTS]);
    assert.equal(run.code, 0, run.output);
  });

  const expected: { alert: string; severity: string; for: string }[] = [
    { alert: 'PlacementViolations', severity: 'warning', for: '15m' },
    { alert: 'PlacementReconcileErrors', severity: 'warning', for: '10m' },
    { alert: 'PlacementAuditStalled', severity: 'critical', for: '5m' },
    { alert: 'PlacementOperatorDown', severity: 'critical', for: '5m' },
  ];
  void test('holds the four alerts, each with severity, summary, description and runbook', () => {
    assert.deepEqual(rules.map((r) => r.name).sort(), expected.map((e) => e.alert).sort());
    for (const e of expected) {
      const rule = rules.find((r) => r.name === e.alert);
      assert.ok(rule);
      assert.equal(rule.for, e.for, `${e.alert}: for`);
      assert.equal(rule.labels['severity'], e.severity, `${e.alert}: severity`);
      for (const key of ['summary', 'description'])
        assert.ok(text(rule.annotations[key])?.trim(), `${e.alert}: annotation ${key}`);
      assert.equal(
        rule.annotations['runbook_url'],
        `docs/operations.md#${e.alert.toLowerCase()}`,
        `${e.alert}: runbook_url`,
      );
    }
  });

  void test('uses only metrics and labels the operator exports', () => {
    for (const rule of rules) {
      const names = promqlNames(rule.expr);
      for (const name of names.metrics)
        assert.ok(exports.series.has(name), `${rule.name}: ${name} is not exported`);
      for (const label of names.labels)
        assert.ok(exports.labels.has(label), `${rule.name}: no exported series has label ${label}`);
    }
  });

  void test('fire, and stay quiet, as documented (promtool test rules)', async () => {
    const tests = stringify({
      rule_files: [ALERTS],
      evaluation_interval: '1m',
      tests: alertTests,
    });
    const file = join(dir, 'alerts.test.yaml');
    await writeFile(file, tests);
    const run = await promtool(['test', 'rules', file]);
    assert.equal(run.code, 0, run.output);
  });
});

const OPERATOR = { job: 'placement-operator', namespace: 'placement-system' };
const LEADER = { ...OPERATOR, instance: '10.0.0.1:8080', pod: 'placement-operator-a' };
const STANDBY = { ...OPERATOR, instance: '10.0.0.2:8080', pod: 'placement-operator-b' };

function series(metric: string, labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return `${metric}{${pairs.join(', ')}}`;
}

/** `promtool test rules` cases (the file format's own shape); the clock starts at 0. */
const alertTests = [
  {
    name: 'PlacementViolations waits 15 minutes, then names the policy; 0 stays quiet',
    interval: '1m',
    input_series: [
      {
        series: series('placement_violations', {
          ...LEADER,
          policy: 'PlacementPolicy/shop/spread-web',
          rule: 'podAntiAffinity',
        }),
        values: '2x30',
      },
      {
        series: series('placement_violations', {
          ...LEADER,
          policy: 'PlacementPolicy/shop/spread-web',
          rule: 'podAffinity',
        }),
        values: '1x30',
      },
      {
        series: series('placement_violations', {
          ...LEADER,
          policy: 'ClusterPlacementPolicy/zones',
          rule: 'podAffinity',
        }),
        values: '0x30',
      },
    ],
    alert_rule_test: [
      { eval_time: '14m', alertname: 'PlacementViolations', exp_alerts: [] },
      {
        eval_time: '16m',
        alertname: 'PlacementViolations',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', policy: 'PlacementPolicy/shop/spread-web' },
            exp_annotations: {
              summary: 'Pods break the required placement rules of PlacementPolicy/shop/spread-web',
              description:
                '3 running pod(s) have broken a required placement rule (podAffinity, ' +
                'podAntiAffinity, symmetricAntiAffinity, nodeAffinity, nodeSelector, ' +
                'topologySpread) ' +
                "of PlacementPolicy/shop/spread-web for the alert's whole `for` (the chart's " +
                'metrics.prometheusRule.violationsFor, 15m by default). These rules are ' +
                'IgnoredDuringExecution: a label change on a pod, node or namespace, or pods ' +
                'added to a domain, moved them out of compliance after scheduling. See which ' +
                'pods with `kubectl get ' +
                'nodes,pods,namespaces,placementpolicies,clusterplacementpolicies,deployments,' +
                'replicasets,statefulsets,daemonsets,jobs,cronjobs -A -o json | ' +
                'kubectl-placement audit -f -` or the ' +
                "policy's status.",
              runbook_url: 'docs/operations.md#placementviolations',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'PlacementReconcileErrors fires above 0.1/s for 10 minutes, not at 0.05/s',
    interval: '1m',
    input_series: [
      {
        // 12 errors a minute: 0.2/s.
        series: series('controller_runtime_reconcile_errors_total', {
          ...LEADER,
          controller: 'placement-workload',
        }),
        values: '0+12x30',
      },
      {
        // 3 errors a minute: 0.05/s.
        series: series('controller_runtime_reconcile_errors_total', {
          ...LEADER,
          controller: 'placement-policy',
        }),
        values: '0+3x30',
      },
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'PlacementReconcileErrors', exp_alerts: [] },
      {
        eval_time: '20m',
        alertname: 'PlacementReconcileErrors',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', controller: 'placement-workload' },
            exp_annotations: {
              summary: 'Controller placement-workload fails 0.20 reconciles per second',
              description:
                'Reconciles of the placement-workload controller have failed at more than ' +
                '0.1/s for 10 minutes (0.20/s now). Failed keys are retried with backoff, so ' +
                "policies and workloads fall behind: check the operator's error logs (field " +
                '`reconcileID`) and the Events of the policies concerned.',
              runbook_url: 'docs/operations.md#placementreconcileerrors',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'PlacementAuditStalled: a standby at 0 beside an auditing leader stays quiet',
    interval: '1m',
    input_series: [
      // The leader's passes succeed every minute (the test clock starts at Unix time 0).
      {
        series: series('placement_audit_last_success_timestamp_seconds', LEADER),
        values: '0+60x30',
      },
      { series: series('placement_audit_last_success_timestamp_seconds', STANDBY), values: '0x30' },
    ],
    alert_rule_test: [{ eval_time: '20m', alertname: 'PlacementAuditStalled', exp_alerts: [] }],
  },
  {
    name: 'PlacementAuditStalled fires when the last success is over 15 minutes old',
    interval: '1m',
    input_series: [
      {
        series: series('placement_audit_last_success_timestamp_seconds', LEADER),
        values: '60x40',
      },
    ],
    alert_rule_test: [
      { eval_time: '20m', alertname: 'PlacementAuditStalled', exp_alerts: [] },
      {
        eval_time: '22m',
        alertname: 'PlacementAuditStalled',
        exp_alerts: [
          {
            exp_labels: { severity: 'critical', ...OPERATOR },
            exp_annotations: {
              summary: 'The placement audit has not succeeded for 21m 0s',
              description:
                'The last successful full audit pass of placement-operator finished 21m 0s ' +
                'ago (it should run every --audit-interval, 5m by default). ' +
                'placement_violations and policy status are stale: affinity drift goes ' +
                'unreported and remediation does not run.',
              runbook_url: 'docs/operations.md#placementauditstalled',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'PlacementAuditStalled fires when no audit ever succeeded',
    interval: '1m',
    input_series: [
      { series: series('placement_audit_last_success_timestamp_seconds', LEADER), values: '0x10' },
    ],
    alert_rule_test: [
      { eval_time: '4m', alertname: 'PlacementAuditStalled', exp_alerts: [] },
      {
        eval_time: '6m',
        alertname: 'PlacementAuditStalled',
        exp_alerts: [
          {
            exp_labels: { severity: 'critical', ...OPERATOR },
            exp_annotations: {
              summary: 'The placement audit has never succeeded',
              description:
                'No full audit pass of placement-operator has succeeded since it started ' +
                '(it should run every --audit-interval, 5m by default). ' +
                'placement_violations and policy status are stale: affinity drift goes ' +
                'unreported and remediation does not run.',
              runbook_url: 'docs/operations.md#placementauditstalled',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'PlacementOperatorDown: one replica down names it; both up stays quiet',
    interval: '1m',
    input_series: [
      { series: series('up', LEADER), values: '1x20' },
      { series: series('up', STANDBY), values: '1 1 1 1 0x16' },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'PlacementOperatorDown', exp_alerts: [] },
      {
        eval_time: '10m',
        alertname: 'PlacementOperatorDown',
        exp_alerts: [
          {
            exp_labels: { severity: 'critical', ...STANDBY },
            exp_annotations: {
              summary: 'placement-operator target 10.0.0.2:8080 is down',
              description:
                'Prometheus has failed to scrape 10.0.0.2:8080 of job placement-operator for ' +
                '5 minutes. Without a running leader no policy is applied to new or changed ' +
                'workloads and no drift is audited.',
              runbook_url: 'docs/operations.md#placementoperatordown',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'PlacementOperatorDown fires when no target is scraped at all',
    interval: '1m',
    input_series: [
      { series: series('up', { job: 'something-else', instance: 'x:1' }), values: '1x10' },
    ],
    alert_rule_test: [
      {
        eval_time: '6m',
        alertname: 'PlacementOperatorDown',
        exp_alerts: [
          {
            exp_labels: { severity: 'critical' },
            exp_annotations: {
              summary: 'placement-operator is down',
              description:
                'No placement-operator target has been up for 5 minutes, or none is scraped ' +
                '(check the ServiceMonitor). Without a running leader no policy is applied to ' +
                'new or changed workloads and no drift is audited.',
              runbook_url: 'docs/operations.md#placementoperatordown',
            },
          },
        ],
      },
    ],
  },
];

void describe('dashboard.json', () => {
  void test('is the placement-operator dashboard on a ${datasource} Prometheus variable', () => {
    assert.equal(dashboard['uid'], 'placement-operator');
    assert.equal(dashboard['schemaVersion'], 39);
    const templating = dashboard['templating'];
    const list = records(isRecord(templating) ? templating['list'] : undefined);
    const datasource = list.find((v) => v['name'] === 'datasource');
    assert.ok(datasource, 'a datasource variable');
    assert.equal(datasource['type'], 'datasource');
    assert.equal(datasource['query'], 'prometheus');
    for (const v of list.filter((v) => v['type'] === 'query')) {
      const ds = v['datasource'];
      assert.ok(isRecord(ds) && ds['uid'] === '${datasource}', `variable ${String(v['name'])}`);
    }
  });

  void test('every panel and target queries ${datasource}', () => {
    assert.ok(targets.length > 0, 'the dashboard has queries');
    for (const panel of allPanels(dashboard).filter((p) => p['type'] !== 'row')) {
      const ds = panel['datasource'];
      assert.ok(isRecord(ds) && ds['uid'] === '${datasource}', panelName(panel));
      assert.ok(records(panel['targets']).length > 0, `${panelName(panel)} has no query`);
    }
    for (const t of targets)
      assert.equal(t.datasourceUid, '${datasource}', `${t.panel} target ${t.refId}`);
  });

  void test('panels have unique ids and do not overlap on the 24-column grid', () => {
    const panels = allPanels(dashboard);
    const ids = panels.map((p) => p['id']);
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids in ${ids.join(', ')}`);
    const boxes = panels.map((p) => ({ name: panelName(p), ...gridPos(p) }));
    for (const [i, a] of boxes.entries()) {
      assert.ok(a.x >= 0 && a.w > 0 && a.h > 0 && a.x + a.w <= 24, `${a.name} is off the grid`);
      for (const b of boxes.slice(i + 1)) {
        const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
        assert.ok(apart, `${a.name} overlaps ${b.name}`);
      }
    }
  });

  void test('every query parses (promtool check rules on them as recording rules)', async () => {
    const file = join(dir, 'dashboard-queries.yaml');
    const rulesFile = {
      groups: [
        {
          name: 'dashboard',
          rules: targets.map((t) => ({
            record: `dashboard:panel_${t.panelId}_${t.refId}`,
            expr: substitute(t.expr, variables),
            labels: { panel: t.panel, ref_id: t.refId },
          })),
        },
      ],
    };
    await writeFile(file, stringify(rulesFile));
    const run = await promtool(['check', 'rules', file]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, new RegExp(`SUCCESS: ${targets.length} rules found`));
  });

  void test('uses only metrics and labels the operator exports', () => {
    for (const t of targets) {
      const names = promqlNames(substitute(t.expr, variables));
      assert.ok(names.metrics.length > 0, `${t.panel} ${t.refId}: no metric in ${t.expr}`);
      for (const name of names.metrics)
        assert.ok(exports.series.has(name), `${t.panel} ${t.refId}: ${name} is not exported`);
      const legendLabels = [...t.legendFormat.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].flatMap(
        (m) => m[1] ?? [],
      );
      for (const label of [...names.labels, ...legendLabels])
        assert.ok(
          exports.labels.has(label),
          `${t.panel} ${t.refId}: no exported series has label ${label}`,
        );
    }
  });

  void test("graphs every one of the operator's own metrics", () => {
    const used = new Set(
      targets.flatMap((t) =>
        promqlNames(substitute(t.expr, variables)).metrics.map((n) =>
          n.replace(/_(bucket|sum|count)$/, ''),
        ),
      ),
    );
    const own = exports.families.filter((n) => !/^(process|nodejs)_/.test(n));
    assert.deepEqual(
      own.filter((n) => !used.has(n)),
      [],
    );
  });
});

void describe('metrics exposition', () => {
  void test('a scrape of the registry passes promtool check metrics', async () => {
    const scrape = await metrics.registry.metrics();
    const run = await promtool(['check', 'metrics'], scrape);
    assert.equal(run.code, 0, run.output);
    assert.equal(run.output.trim(), '', run.output);
  });

  void test('panels and docs on placement_violations name every rule it counts', async () => {
    const doc = await readFile(METRICS_DOC, 'utf8');
    const onViolations = allPanels(dashboard).filter((p) =>
      records(p['targets']).some((t) => /\bplacement_violations\b/.test(text(t['expr']) ?? '')),
    );
    assert.ok(onViolations.length >= 3, 'the panels on placement_violations');
    const missing: string[] = [];
    for (const p of onViolations) {
      const title = text(p['title']) ?? '';
      const row = doc.split('\n').find((l) => l.startsWith(`| ${title} `)) ?? '';
      for (const r of RULES) {
        if (!(text(p['description']) ?? '').includes(r))
          missing.push(`${title}: description: ${r}`);
        if (!row.includes(r)) missing.push(`${title}: docs/metrics.md: ${r}`);
      }
    }
    const alert = rules.find((r) => r.name === 'PlacementViolations');
    for (const r of RULES)
      if (!JSON.stringify(alert ?? {}).includes(r)) missing.push(`PlacementViolations alert: ${r}`);
    assert.deepEqual(missing, []);
  });

  void test('docs/metrics.md names every metric of ours, every alert and every panel', async () => {
    const doc = await readFile(METRICS_DOC, 'utf8');
    const own = exports.families.filter((n) => !/^(process|nodejs)_/.test(n));
    const titles = allPanels(dashboard).flatMap((p) => text(p['title']) ?? []);
    const missing = [
      ...own.filter((n) => !doc.includes(`\`${n}\``)),
      ...rules.map((r) => r.name).filter((n) => !doc.includes(n)),
      ...titles.filter((t) => !doc.includes(t)),
    ];
    assert.deepEqual(missing, []);
  });
});
