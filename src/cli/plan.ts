/**
 * `kubectl-placement plan -f POLICY.yaml`: what applying the policies would do to the cluster,
 * decided by the operator's own code (src/controller/cluster-plan.ts), written nowhere.
 */
import { KUBECONFIG_FLAGS, OUTPUT_AND_HELP, parseCommandLine, refuser } from './options.ts';

import type { PlacementPolicy } from '../api/policy.ts';
import type { Workload } from '../api/cluster.ts';
import { planBlocks, planCluster } from '../controller/cluster-plan.ts';
import { policyName, type ClusterSnapshot, type WorkloadObject } from '../engine/index.ts';
import { WORKLOAD_API } from '../kube/resources.ts';
import { workloadTransform } from '../kube/transforms.ts';
import { parsePolicies } from './input.ts';
import { clusterSnapshot, inputLabel, inputProblem, readInput } from './snapshot-source.ts';
import { planJson, planTable } from './plan-report.ts';
import { PLAN_USAGE } from './usage.ts';

export const PLAN_EXIT = { ok: 0, blocked: 1, badInput: 2 } as const;

export interface PlanIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The file's bytes (or text); `/dev/stdin` is standard input. */
  readonly readFile: (path: string) => string | Uint8Array;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The snapshot's workloads as the operator's informers trim them. */
export function cachedWorkloads(objects: readonly WorkloadObject[]): Workload[] {
  return objects.flatMap((o) => {
    if (!Object.hasOwn(WORKLOAD_API, o.kind)) return [];
    const w = workloadTransform(o.kind as Workload['kind'])(o);
    return w === undefined ? [] : [w];
  });
}

/** Runs `plan` with `args` (after the command word); returns the exit status. */
export async function runPlan(args: readonly string[], io: PlanIo): Promise<number> {
  const fail = refuser(io.stderr, 'kubectl-placement plan', PLAN_EXIT.badInput);
  const parsed = parseCommandLine(
    args,
    {
      filename: { type: 'string', short: 'f', multiple: true },
      'cluster-state': { type: 'string' },
      ...OUTPUT_AND_HELP,
      ...KUBECONFIG_FLAGS,
    },
    false,
  );
  if (typeof parsed === 'string') return fail(`${parsed}\n${PLAN_USAGE}`);
  const { values } = parsed;
  if (values.help === true) {
    io.stdout(PLAN_USAGE);
    return PLAN_EXIT.ok;
  }
  const files = values.filename ?? [];
  if (files.length === 0) return fail('plan needs -f POLICY.yaml (or -f - for standard input)');
  if (values.output !== 'table' && values.output !== 'json')
    return fail(`-o ${values.output}: output must be table or json`);
  const stateFile = values['cluster-state'];
  if (files.includes('-') && stateFile === '-')
    return fail('-f - and --cluster-state - cannot both read standard input');

  const applied: PlacementPolicy[] = [];
  const sourceFile = new Map<PlacementPolicy, string>();
  let snapshot: ClusterSnapshot;
  try {
    for (const file of files) {
      const policyText = readInput(io.readFile, file);
      const text = typeof policyText === 'string' ? policyText : Buffer.from(policyText).toString();
      for (const p of parsePolicies(text, inputLabel(file))) {
        applied.push(p);
        sourceFile.set(p, inputLabel(file));
      }
    }
    snapshot = await clusterSnapshot(stateFile, values, io);
  } catch (err) {
    return fail(inputProblem(err));
  }
  const result = planCluster(snapshot, cachedWorkloads(snapshot.workloads), applied);
  if (result.kind === 'invalid') {
    const fileOf = (message: string): string => {
      const found = applied.find((p) => message.startsWith(policyName(p)));
      return found === undefined ? '' : `${sourceFile.get(found) ?? ''}: `;
    };
    return fail(result.errors.map((e) => `${fileOf(e.message)}${e.message}`).join('\n'));
  }
  io.stdout(values.output === 'json' ? planJson(result.plan) : planTable(result.plan));
  return planBlocks(result.plan) ? PLAN_EXIT.blocked : PLAN_EXIT.ok;
}
