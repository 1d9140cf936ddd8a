// The chart's Grafana dashboard and alerting rules read as data: the panel queries with
// Grafana's variables filled in, and the rules of files/alerts.yaml. Shared by the static
// checks (observability.test.ts) and the test that runs them against a real Prometheus
// (test/integration/metrics/prometheus-scrape.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CHART_DIR } from '../chart/helm.ts';

export const DASHBOARD = join(CHART_DIR, 'files', 'dashboard.json');
export const ALERTS = join(CHART_DIR, 'files', 'alerts.yaml');

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export interface Target {
  readonly panelId: number;
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
  readonly legendFormat: string;
  readonly datasourceUid: string | undefined;
}

/** Panels at any depth (a collapsed row holds its panels in `panels`). */
export function allPanels(container: Record<string, unknown>): Record<string, unknown>[] {
  return records(container['panels']).flatMap((panel) => [panel, ...allPanels(panel)]);
}

export function panelName(panel: Record<string, unknown>): string {
  return `panel ${String(panel['id'])} "${text(panel['title']) ?? ''}"`;
}

export function targetsOf(dashboard: Record<string, unknown>): Target[] {
  return allPanels(dashboard).flatMap((panel) =>
    records(panel['targets']).map((target) => {
      const datasource = target['datasource'];
      return {
        panelId: typeof panel['id'] === 'number' ? panel['id'] : -1,
        panel: panelName(panel),
        refId: text(target['refId']) ?? '?',
        expr: text(target['expr']) ?? '',
        legendFormat: text(target['legendFormat']) ?? '',
        datasourceUid: isRecord(datasource) ? text(datasource['uid']) : undefined,
      };
    }),
  );
}

/** Grafana's interval variables, as a dashboard would see them at a 30s scrape interval. */
export const BUILTIN_VARIABLES: Readonly<Record<string, string>> = {
  __rate_interval: '2m',
  __interval: '30s',
  __range: '6h',
  __range_s: '21600',
};

/**
 * The expression Prometheus would receive: built-in intervals filled in, the datasource gone,
 * the dashboard's own variables (used in regex matchers) replaced by `.*`. `builtins` gives
 * the interval variables (by default as at a 30s scrape interval).
 */
export function substitute(
  expr: string,
  variables: ReadonlySet<string>,
  builtins: Readonly<Record<string, string>> = BUILTIN_VARIABLES,
): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const name = braced ?? bare ?? '';
    const builtin = builtins[name];
    if (builtin !== undefined) return builtin;
    if (name === 'datasource') return '';
    if (variables.has(name)) return '.*';
    throw new Error(`unknown dashboard variable ${whole} in ${expr}`);
  });
}

/** The dashboard, parsed, and the names of its own variables. */
export function readDashboard(): {
  dashboard: Record<string, unknown>;
  variables: Set<string>;
} {
  const parsed: unknown = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  assert.ok(isRecord(parsed), 'dashboard.json is an object');
  const templating = parsed['templating'];
  const variables = new Set(
    records(isRecord(templating) ? templating['list'] : undefined).flatMap(
      (v) => text(v['name']) ?? [],
    ),
  );
  return { dashboard: parsed, variables };
}

export interface Rule {
  readonly name: string;
  readonly expr: string;
  readonly for: string | undefined;
  readonly labels: Readonly<Record<string, unknown>>;
  readonly annotations: Readonly<Record<string, unknown>>;
}

export function rulesOf(file: unknown): Rule[] {
  assert.ok(isRecord(file), 'alerts.yaml is a mapping');
  return records(file['groups']).flatMap((group) =>
    records(group['rules']).map((rule) => ({
      name: text(rule['alert']) ?? text(rule['record']) ?? '?',
      expr: text(rule['expr']) ?? '',
      for: text(rule['for']),
      labels: isRecord(rule['labels']) ? rule['labels'] : {},
      annotations: isRecord(rule['annotations']) ? rule['annotations'] : {},
    })),
  );
}
