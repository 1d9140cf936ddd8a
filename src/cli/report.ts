import type { AuditReport, ExceptionReport, Exemption, Violation } from '../engine/index.ts';

/** What the input's PlacementExceptions did; reported only when the input held some. */
export interface ExceptionOutcome {
  /** Workloads exempted from a policy, whose pods were not judged by it. */
  readonly exemptions: readonly Exemption[];
  /** Every exception, accepted or not (and why not). */
  readonly exceptions: readonly ExceptionReport[];
}

const NONE: ExceptionOutcome = { exemptions: [], exceptions: [] };

/**
 * The `-o json` document (docs/operations.md). With PlacementExceptions in the
 * input it also lists them (`exceptions`), the workloads they exempt (`exempted`), and
 * counts the latter in the summary.
 */
export function reportJson(report: AuditReport, outcome: ExceptionOutcome = NONE): string {
  const withExceptions = outcome.exceptions.length > 0;
  const document = withExceptions
    ? {
        violations: report.violations,
        exempted: outcome.exemptions,
        exceptions: outcome.exceptions,
        summary: { ...report.summary, exempted: outcome.exemptions.length },
      }
    : { violations: report.violations, summary: report.summary };
  return `${JSON.stringify(document, null, 2)}\n`;
}

const COLUMNS: readonly [string, (v: Violation) => string][] = [
  ['POD', (v) => v.pod],
  ['NODE', (v) => v.node],
  ['RULE', (v) => v.rule],
  ['SOURCE', (v) => v.source],
  ['TERM', (v) => String(v.term)],
  ['MESSAGE', (v) => v.message],
];

/** The violations as table rows, under their header. */
export const violationRows = (violations: readonly Violation[]): string[][] => [
  COLUMNS.map(([h]) => h),
  ...violations.map((v) => COLUMNS.map(([, f]) => f(v))),
];

/** Rows under a header, columns padded to their widest cell (the last one is not). */
export function table(rows: readonly (readonly string[])[]): string {
  const width = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: width }, (_, i) =>
    Math.max(...rows.map((r) => (r[i] ?? '').length)),
  );
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * A table for people, one violation a row, then a summary line. With PlacementExceptions in
 * the input, a table of the workloads they exempt and one of the exceptions the policies
 * refuse come before the summary.
 */
export function reportTable(report: AuditReport, outcome: ExceptionOutcome = NONE): string {
  const { pods, nodes, violations } = report.summary;
  const exempted =
    outcome.exceptions.length > 0
      ? `; ${outcome.exemptions.length} workload(s) exempted from a policy`
      : '';
  const summary = `${violations} violation(s) among ${pods} placed pod(s) on ${nodes} node(s)${exempted}\n`;
  const sections: string[] = [];
  if (report.violations.length > 0) sections.push(table(violationRows(report.violations)));
  if (outcome.exemptions.length > 0) {
    sections.push(
      table([
        ['EXEMPTED WORKLOAD', 'FROM POLICY', 'BY'],
        ...outcome.exemptions.map((e) => [e.workload, e.policy, e.exceptions.join(', ')]),
      ]),
    );
  }
  const refused = outcome.exceptions.filter((e) => !e.accepted);
  if (refused.length > 0) {
    sections.push(
      table([
        ['REFUSED EXCEPTION', 'POLICY', 'REASON', 'MESSAGE'],
        ...refused.map((e) => [e.exception, e.policy, e.reason ?? '', e.message]),
      ]),
    );
  }
  return sections.length === 0 ? summary : `${sections.join('\n\n')}\n\n${summary}`;
}
