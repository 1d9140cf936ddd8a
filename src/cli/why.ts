/**
 * `kubectl-placement why POD`: why a pod is Pending, why it breaks a rule, or which rules it
 * is under and who put them there; decided by the audit's judges (src/engine/explain.ts),
 * on the live cluster (read only) or on a snapshot.
 */
import { KUBECONFIG_FLAGS, OUTPUT_AND_HELP, parseCommandLine, refuser } from './options.ts';

import type { ClusterSnapshot } from '../engine/index.ts';
import { explainPod } from '../engine/explain.ts';
import { clusterSnapshot, inputLabel, inputProblem } from './snapshot-source.ts';
import type { PlanIo } from './plan.ts';
import { whyJson, whyTable } from './why-report.ts';
import { WHY_USAGE } from './usage.ts';

export const WHY_EXIT = { ok: 0, blocked: 1, badInput: 2 } as const;

/** Runs `why` with `args` (after the command word); returns the exit status. */
export async function runWhy(args: readonly string[], io: PlanIo): Promise<number> {
  const fail = refuser(io.stderr, 'kubectl-placement why', WHY_EXIT.badInput);
  const parsed = parseCommandLine(
    args,
    {
      namespace: { type: 'string', short: 'n' },
      filename: { type: 'string', short: 'f' },
      ...OUTPUT_AND_HELP,
      ...KUBECONFIG_FLAGS,
    },
    true,
  );
  if (typeof parsed === 'string') return fail(`${parsed}\n${WHY_USAGE}`);
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout(WHY_USAGE);
    return WHY_EXIT.ok;
  }
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) return fail(`expected one POD\n${WHY_USAGE}`);
  if (values.output !== 'table' && values.output !== 'json')
    return fail(`-o ${values.output}: output must be table or json`);
  const slash = target.indexOf('/');
  const name = slash < 0 ? target : target.slice(slash + 1);
  const fromArg = slash < 0 ? undefined : target.slice(0, slash);
  if (fromArg !== undefined && values.namespace !== undefined && fromArg !== values.namespace)
    return fail(`${target}: namespace ${fromArg} and -n ${values.namespace} differ`);
  const namespace = fromArg ?? values.namespace ?? 'default';
  if (name === '' || namespace === '' || name.includes('/'))
    return fail(`${target}: not a pod name (POD or NAMESPACE/POD)`);

  const file = values.filename;
  const source = file === undefined ? 'the cluster' : inputLabel(file);
  let snapshot: ClusterSnapshot;
  try {
    snapshot = await clusterSnapshot(file, values, io);
  } catch (err) {
    return fail(inputProblem(err));
  }
  const result = explainPod(snapshot, namespace, name);
  if (result.kind === 'notFound') return fail(`${result.message} in ${source}`);
  if (result.kind === 'invalid') return fail(`${source}: ${result.message}`);
  const e = result.explanation;
  io.stdout(values.output === 'json' ? whyJson(e) : whyTable(e));
  return e.status === 'violating' || e.status === 'unschedulable' ? WHY_EXIT.blocked : WHY_EXIT.ok;
}
