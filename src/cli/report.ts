import type { AuditReport, Violation } from '../engine/index.ts';

/** The `-o json` document (DESIGN.md, "Audit semantics"). */
export function reportJson(report: AuditReport): string {
  return `${JSON.stringify({ violations: report.violations, summary: report.summary }, null, 2)}\n`;
}

const COLUMNS: readonly [string, (v: Violation) => string][] = [
  ['POD', (v) => v.pod],
  ['NODE', (v) => v.node],
  ['RULE', (v) => v.rule],
  ['SOURCE', (v) => v.source],
  ['TERM', (v) => String(v.term)],
  ['MESSAGE', (v) => v.message],
];

/** A table for people, one violation a row, then a summary line. */
export function reportTable(report: AuditReport): string {
  const { pods, nodes, violations } = report.summary;
  const summary = `${violations} violation(s) among ${pods} placed pod(s) on ${nodes} node(s)\n`;
  if (report.violations.length === 0) return summary;
  const rows = [
    COLUMNS.map(([h]) => h),
    ...report.violations.map((v) => COLUMNS.map(([, f]) => f(v))),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
  return `${lines.join('\n')}\n\n${summary}`;
}
