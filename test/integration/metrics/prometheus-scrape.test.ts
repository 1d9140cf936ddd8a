// The chart's dashboard and alerts against a real Prometheus that scrapes the operator during
// a drift: a node is relabelled so that a running pod breaks its policy's required
// podAffinity, then relabelled back. Prometheus (the pinned build) scrapes the operator's
// /metrics every second and evaluates the chart's rules, rendered by helm with
// PlacementViolations' `for` shortened through metrics.prometheusRule.violationsFor.
//
// Checked: every dashboard query and every alert expression, through the HTTP API, returns
// series where this run must have data (the few that must not say why); PlacementViolations
// fires once its `for` has passed and resolves when the drift is undone.
//
// With PLACEMENT_METRICS_RUN=FILE the test writes placement_violations and the reconcile rate
// over the run (query_range) to FILE; hack/plot-metrics.ts draws docs/metrics-run.png from it.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/metrics/prometheus-scrape.test.ts
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';

import { only, render } from '../../chart/helm.ts';
import { readDashboard, rulesOf, substitute, targetsOf } from '../../tools/observability.ts';
import {
  affinityPolicy,
  barePod,
  label,
  secondsSince,
  waitRunning,
  waitStatus,
} from '../audit/support.ts';
import { clusterTest, list, makePool, runOperator, waitFor, ZONE } from '../operator/support.ts';
import { startPrometheus, type Prometheus, type Sample } from './prometheus.ts';

const JOB = 'placement-operator';
const INTERVAL_S = 1;
/** PlacementViolations' `for` in this run (the chart's default is 15m). */
const VIOLATIONS_FOR_S = 5;
/** From a change in the cluster to the audit's report, on a busy two-core machine. */
const REPORT_MS = 30_000;
/** Grafana's interval variables as a dashboard would see them at this scrape interval. */
const GRAFANA_INTERVALS = {
  __rate_interval: '10s',
  __interval: '1s',
  __range: '5m',
  __range_s: '300',
};

/**
 * What each alert's expression returns in this run: `drift` (series while the drift lasts,
 * none once undone) or `quiet` (none at all, and why), with a part of the expression that must
 * have data all the same, so that "no series" cannot come from a misspelt metric.
 */
const ALERTS: Readonly<
  Record<string, { kind: 'drift' } | { kind: 'quiet'; why: string; data: string }>
> = {
  PlacementViolations: { kind: 'drift' },
  PlacementReconcileErrors: {
    kind: 'quiet',
    why: 'no controller fails 0.1 reconciles per second here',
    data: 'sum by (controller) (rate(controller_runtime_reconcile_errors_total[5m]))',
  },
  PlacementAuditStalled: {
    kind: 'quiet',
    why: 'an audit pass succeeded seconds ago (--audit-interval 5s)',
    data: 'max by (namespace, job) (placement_audit_last_success_timestamp_seconds) > 0',
  },
  PlacementOperatorDown: {
    kind: 'quiet',
    why: 'the one target is up',
    data: 'up{job=~".*placement-operator.*"} == 1',
  },
};

/** The chart's alerting rules with PlacementViolations' `for` set through its values. */
function chartRules(): unknown {
  const rule = only(
    render({
      set: [
        'metrics.prometheusRule.enabled=true',
        `metrics.prometheusRule.violationsFor=${String(VIOLATIONS_FOR_S)}s`,
      ],
    }),
    'PrometheusRule',
  );
  return rule['spec'];
}

clusterTest(
  'Prometheus scrapes the operator: dashboard queries have data, PlacementViolations fires and resolves',
  { timeout: 600_000, namespace: 'prom' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a']);
    const [n0, n1] = pool.nodes as [string, string];
    const policy = 'follow-db';
    const ref = `PlacementPolicy/${ns}/${policy}`;

    // web (on n1) must share a zone with db (on n0); moving n1 to zone-b breaks it.
    await c.apply(
      list(
        barePod(ns, 'db', { app: 'db' }, pool, n0),
        barePod(ns, 'web', { app: 'web' }, pool, n1),
      ),
    );
    await waitRunning(c, ns, 'db', 1);
    await waitRunning(c, ns, 'web', 1);

    const rules = chartRules();
    const alertRules = rulesOf(rules).filter((r) => r.name in ALERTS);
    assert.deepEqual(
      rulesOf(rules)
        .map((r) => r.name)
        .sort(),
      Object.keys(ALERTS).sort(),
      'every alert of the chart has its expectation here',
    );
    assert.equal(
      alertRules.find((r) => r.name === 'PlacementViolations')?.for,
      `${String(VIOLATIONS_FOR_S)}s`,
    );

    // Leader election on (the chart's Lease), so the Leader panels have a leader to show.
    const op = await runOperator(c, s, ['--audit-interval', '5s']);
    const runStart = Date.now();
    const prometheus: Prometheus = await startPrometheus({
      job: JOB,
      targets: [`127.0.0.1:${String(await op.process.port())}`],
      // What the chart's ServiceMonitor adds; the dashboard's legends and filters use them.
      labels: { namespace: ns, pod: op.identity },
      interval: `${String(INTERVAL_S)}s`,
      rules,
    });
    s.defer(() => prometheus.stop());
    const timings: Record<string, number> = { 'Prometheus ready': prometheus.startMs / 1000 };

    const series = (expr: string): Promise<Sample[]> => prometheus.query(expr);
    const waitSeries = (what: string, expr: string, timeoutMs = REPORT_MS): Promise<Sample[]> =>
      waitFor(
        `Prometheus: ${what} (${expr})`,
        async () => {
          const found = await series(expr);
          return found.length > 0 ? found : undefined;
        },
        timeoutMs,
      );
    const violationsAlert = async () =>
      (await prometheus.alerts()).find(
        (a) => a.labels['alertname'] === 'PlacementViolations' && a.labels['policy'] === ref,
      );

    // Prometheus hands new targets to its scrapers every 5 s: the first scrape takes that long.
    await waitSeries('the operator scraped', `up{job="${JOB}"} == 1`, 60_000);
    timings['first scrape'] = secondsSince(runStart);
    const scraped = Date.now();

    const created = Date.now();
    await c.apply(
      list(
        affinityPolicy(
          ns,
          policy,
          { kinds: ['Pod'], selector: { matchLabels: { app: 'web' } } },
          {
            labelSelector: { matchLabels: { app: 'db' } },
            topologyKey: ZONE,
          },
        ),
      ),
    );
    await waitStatus(
      c,
      ns,
      policy,
      'audited, no violation',
      (st) => st.violations === 0,
      REPORT_MS,
    );
    await waitSeries('the policy at 0 violations', `placement_violations{policy="${ref}"} == 0`);
    await waitSeries(
      'a successful audit pass',
      'placement_audit_last_success_timestamp_seconds > 0',
    );
    const violations = alertRules.find((r) => r.name === 'PlacementViolations');
    assert.ok(violations);
    assert.deepEqual(
      (await series(violations.expr)).filter((x) => x.metric['policy'] === ref),
      [],
      'PlacementViolations is quiet before the drift',
    );

    // ------------------------------------------------------------------ drift
    const drifted = Date.now();
    await label(c, 'node', n1, { [ZONE]: 'zone-b' });
    await waitSeries('the violation', `placement_violations{policy="${ref}"} == 1`);
    const seen = Date.now();
    timings['drift to violation scraped'] = secondsSince(drifted);
    const firing = await waitFor(
      'PlacementViolations firing',
      async () => {
        const alert = await violationsAlert();
        return alert?.state === 'firing' ? alert : undefined;
      },
      VIOLATIONS_FOR_S * 1000 + REPORT_MS,
    );
    const fired = Date.now();
    timings['violation scraped to firing'] = secondsSince(seen);
    timings['drift to firing'] = secondsSince(drifted);
    // The `for` holds it back: it cannot fire before the violation has lasted that long
    // (less one evaluation interval: our poll may see the violation before the rule does).
    // Then it fires at the next evaluations, not minutes later (as at the default 15m).
    const firedAfterS = (fired - seen) / 1000;
    assert.ok(
      firedAfterS >= VIOLATIONS_FOR_S - INTERVAL_S && firedAfterS <= VIOLATIONS_FOR_S + 10,
      `fired ${String(firedAfterS)} s after the violation; its for is ${String(VIOLATIONS_FOR_S)} s`,
    );
    assert.equal(firing.labels['severity'], 'warning');

    // --------------------------------------------- every query while it fires
    const { dashboard, variables } = readDashboard();
    const targets = targetsOf(dashboard);
    assert.ok(targets.length > 0, 'the dashboard has queries');
    const empty: string[] = [];
    for (const target of targets) {
      const expr = substitute(target.expr, variables, GRAFANA_INTERVALS);
      // Every panel has data in this run: a leader, an audited namespaced policy (its
      // cross-namespace series at 0), every counter and histogram created at start.
      if ((await series(expr)).length === 0) empty.push(`${target.panel} ${target.refId}: ${expr}`);
    }
    assert.deepEqual(empty, [], 'dashboard queries without data');
    for (const rule of alertRules) {
      const expected = ALERTS[rule.name];
      assert.ok(expected);
      const found = await series(rule.expr);
      if (expected.kind === 'drift') {
        assert.deepEqual(
          found.filter((x) => x.metric['policy'] === ref).map((x) => x.value),
          [1],
          `${rule.name} during the drift`,
        );
      } else {
        assert.deepEqual(found, [], `${rule.name} is quiet: ${expected.why}`);
        assert.notDeepEqual(await series(expected.data), [], `${rule.name}: ${expected.data}`);
      }
    }

    // ------------------------------------------------------------------ undo
    const undone = Date.now();
    await label(c, 'node', n1, { [ZONE]: 'zone-a' });
    await waitFor(
      'PlacementViolations resolved',
      async () => ((await violationsAlert()) === undefined ? true : undefined),
      REPORT_MS,
    );
    timings['undo to resolved'] = secondsSince(undone);
    assert.deepEqual(
      (await series(violations.expr)).filter((x) => x.metric['policy'] === ref),
      [],
      'PlacementViolations is quiet once the drift is undone',
    );

    // -------------------------------------------------------- the run, plotted
    const startS = Math.floor(scraped / 1000);
    const endS = Math.ceil(Date.now() / 1000);
    const violationsQuery = `sum(placement_violations{policy="${ref}"})`;
    const reconcileQuery = `sum(rate(controller_runtime_reconcile_total[${GRAFANA_INTERVALS.__rate_interval}]))`;
    const violationsRange = await prometheus.queryRange(violationsQuery, startS, endS, INTERVAL_S);
    const reconcileRange = await prometheus.queryRange(reconcileQuery, startS, endS, INTERVAL_S);
    const peak = (r: typeof violationsRange): number =>
      Math.max(...r.flatMap((x) => x.values.map(([, v]) => v)));
    assert.equal(peak(violationsRange), 1, 'placement_violations over the run peaks at 1');
    assert.ok(peak(reconcileRange) > 0, 'the operator reconciled during the run');
    const out = process.env['PLACEMENT_METRICS_RUN'];
    if (out !== undefined && out !== '') {
      await writeFile(
        out,
        `${JSON.stringify(
          {
            start: startS,
            end: endS,
            step: INTERVAL_S,
            events: {
              'policy created': created / 1000,
              'node relabelled': drifted / 1000,
              'PlacementViolations firing': fired / 1000,
              'node relabelled back': undone / 1000,
            },
            series: [
              {
                name: 'placement_violations',
                query: violationsQuery,
                unit: 'violating pods',
                values: violationsRange[0]?.values ?? [],
              },
              {
                name: 'reconciles per second',
                query: reconcileQuery,
                unit: 'reconciles / s',
                values: reconcileRange[0]?.values ?? [],
              },
            ],
          },
          null,
          1,
        )}\n`,
      );
    }
    t.diagnostic(`seconds: ${JSON.stringify(timings)}`);
  },
);
