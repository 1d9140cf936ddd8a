import type { LabelSelector } from '../api/core.ts';
import type { ClusterPlan, PlannedWorkload, WorkloadAction } from '../controller/cluster-plan.ts';
import { compileSelector, selectorText } from '../engine/index.ts';
import { table, violationRows } from './report.ts';

/** The `-o json` document of `plan` (docs/api.md, "kubectl-placement plan"). */
export function planJson(plan: ClusterPlan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

const ACTION_TEXT: Readonly<Record<WorkloadAction, string>> = {
  rollout: 'rollout',
  heldBack: 'held back',
  record: 'record only',
  contradiction: 'contradiction',
  blocked: 'blocked',
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const field = (v: Json | undefined, key: string): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? v[key] : undefined;

/** One injected term as a person reads it: `app=checkout per kubernetes.io/hostname (weight 50)`. */
function termText(raw: Json): string {
  const weight = field(raw, 'weight');
  const term = field(raw, 'podAffinityTerm') ?? raw;
  const key = field(term, 'topologyKey');
  const suffix = typeof weight === 'number' ? ` (weight ${weight})` : '';
  if (typeof key !== 'string') return `a node preference${suffix}`;
  let pods: string;
  try {
    pods = selectorText(
      compileSelector(field(term, 'labelSelector') as LabelSelector | null, 'labelSelector'),
    );
  } catch {
    pods = 'an unreadable selector';
  }
  return `${pods} per ${key}${suffix}`;
}

/** One injected spread constraint: `app=web per topology.kubernetes.io/zone (maxSkew 1, DoNotSchedule)`. */
function spreadText(raw: Json): string {
  const shown = (key: string): string => JSON.stringify(field(raw, key) ?? null);
  const minDomains = field(raw, 'minDomains');
  const details = [
    `maxSkew ${shown('maxSkew')}`,
    field(raw, 'whenUnsatisfiable') === 'DoNotSchedule' ? 'DoNotSchedule' : 'ScheduleAnyway',
    ...(typeof minDomains === 'number' ? [`minDomains ${String(minDomains)}`] : []),
  ];
  const term = {
    labelSelector: field(raw, 'labelSelector') ?? null,
    topologyKey: field(raw, 'topologyKey') ?? null,
  };
  return `${termText(term)} (${details.join(', ')})`;
}

/** The injected terms of a workload, one `slot: term` a part. */
function injectedText(w: PlannedWorkload): string {
  const parts: string[] = [];
  for (const [slot, terms] of Object.entries(w.injected ?? {}))
    for (const t of terms) parts.push(`${slot}: ${termText(t as Json)}`);
  for (const c of w.injectedSpread ?? []) parts.push(`topologySpread: ${spreadText(c as Json)}`);
  if (w.reverted.length > 0) parts.push(`takes out the terms of ${w.reverted.join(', ')}`);
  return parts.join('; ');
}

/**
 * The plan for people: the workloads to rewrite (with their terms), why any is held back,
 * the Unsatisfiable policies, the running pods that would break the new rules, a summary.
 */
export function planTable(plan: ClusterPlan): string {
  const sections: string[] = [];
  if (plan.workloads.length > 0) {
    sections.push(
      table([
        ['WORKLOAD', 'ACTION', 'POLICIES', 'TERMS'],
        ...plan.workloads.map((w) => [
          w.workload,
          ACTION_TEXT[w.action],
          w.policies.join(', '),
          injectedText(w),
        ]),
      ]),
    );
  }
  const stopped = plan.workloads.filter((w) => w.message !== undefined);
  if (stopped.length > 0) {
    sections.push(
      table([['NOT WRITTEN', 'WHY'], ...stopped.map((w) => [w.workload, w.message ?? ''])]),
    );
  }
  if (plan.unsatisfiable.length > 0) {
    sections.push(
      table([
        ['UNSATISFIABLE POLICY', 'MESSAGE'],
        ...plan.unsatisfiable.map((u) => [u.policy, u.message]),
      ]),
    );
  }
  if (plan.violations.length > 0) sections.push(table(violationRows(plan.violations)));
  const s = plan.summary;
  const summary =
    `${s.workloads} workload(s) to change: ${s.rollouts} rollout(s) would start, ` +
    `${s.heldBack} held back; ${s.unsatisfiable} unsatisfiable; ` +
    `${s.violations} running pod violation(s) of the new rules\n`;
  return sections.length === 0 ? summary : `${sections.join('\n\n')}\n\n${summary}`;
}
