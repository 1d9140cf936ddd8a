/** `kubectl-placement why` output: a table for people and the `-o json` document (README). */
import type { Block, Explanation, InvolvedPod } from '../engine/explain.ts';
import { table } from './report.ts';

/** The `-o json` document: the explanation as the engine gives it. */
export const whyJson = (e: Explanation): string => `${JSON.stringify(e, null, 2)}\n`;

const involved = (pods: readonly InvolvedPod[]): string =>
  pods.length === 0 ? '-' : pods.map((p) => `${p.pod} (${p.domain})`).join(', ');

const HEADLINE: Readonly<Record<Explanation['status'], string>> = {
  unschedulable: 'no node passes its placement rules',
  schedulable: 'its placement rules admit a node; what keeps it Pending is outside them',
  violating: 'it breaks a placement rule where it runs',
  fine: 'it meets every placement rule where it runs',
};

/** The scheduler's FailedScheduling summary as these rules give it. */
export function schedulerSummary(e: Explanation): string {
  const reasons = e.schedulerReasons.map((r) => `${r.nodes} ${r.reason}`).join(', ');
  return `0/${e.nodes.length} nodes are available${reasons === '' ? '' : `: ${reasons}`}.`;
}

const blockRows = (blocks: readonly Block[]): string[][] => [
  ['RULE', 'SOURCE', 'FIELD', 'DOMAIN', 'PODS INVOLVED', 'MESSAGE'],
  ...blocks.map((b) => [b.rule, b.source, b.field, b.domain ?? '-', involved(b.pods), b.message]),
];

/** Sections for people: the verdict, the rules and their origin, then what the verdict rests on. */
export function whyTable(e: Explanation): string {
  const where = e.node === null ? 'not bound to a node' : `on node ${e.node}`;
  const owner = e.workload === null ? 'no owner' : e.workload;
  const sections = [`Pod ${e.pod} (${owner}): ${e.phase}, ${where}: ${HEADLINE[e.status]}.`];
  sections.push(
    e.rules.length === 0
      ? 'It is under no placement rule.'
      : table([
          ['RULE', 'REQUIRED', 'FIELD', 'WHAT', 'PUT THERE BY'],
          ...e.rules.map((r) => [r.rule, r.required ? 'yes' : 'no', r.field, r.text, r.putBy]),
        ]),
  );
  if (e.violations.length > 0) sections.push(table(blockRows(e.violations)));
  if (e.node === null) {
    if (e.ruledOut.length > 0)
      sections.push(
        table([
          ['RULED OUT BY', 'SOURCE', 'FIELD', 'NODES', 'CONFLICTING PODS (DOMAIN)'],
          ...e.ruledOut.map((r) => [
            r.rule,
            r.source,
            r.field,
            r.nodes.join(', '),
            involved(r.pods),
          ]),
        ]),
      );
    const open = e.nodes.filter((n) => n.blocks.length === 0).map((n) => n.node);
    sections.push(
      open.length > 0
        ? `Nodes its placement rules admit: ${open.join(', ')}.`
        : `As the scheduler would report it: ${schedulerSummary(e)}`,
    );
    if (e.changes.length > 0)
      sections.push(
        table([
          ['SMALLEST CHANGE', 'OPENS', 'SIZE'],
          ...e.changes.map((c) => [c.change, c.node, String(c.cost)]),
        ]),
      );
  }
  return `${sections.join('\n\n')}\n`;
}
