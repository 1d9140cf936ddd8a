#!/usr/bin/env node
/**
 * kubectl-placement: judges pod placements as kube-scheduler's InterPodAffinity filter would
 * (`audit`), and tells what applying policies would do before anyone applies them (`plan`,
 * see plan.ts).
 *
 *   kubectl get nodes,pods,namespaces,placementpolicies,clusterplacementpolicies,\
 *     deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs -A -o json \
 *     | kubectl-placement audit -f -
 *
 * Policies target workloads, not pods: which policies judge a pod, and what a `spreadAcross`
 * term selects, come from the pod's workload object (its template labels and its selector),
 * reached through the pod's owners (ReplicaSet → Deployment, Job → CronJob). The CLI does not
 * guess them from the pod's labels when the owners are missing from its input: those labels
 * are not the template's (the API server adds some, PodTopologyLabels copies the node's zone
 * and region at binding, the template may have changed since), and no pod tells its
 * workload's selector. A guess made the CLI report 4 violations where the operator, which
 * reads the objects, reported 13 (issue #16). Instead, a pod whose workload is missing and
 * that a policy with required terms could target is judged by its own terms only, and one
 * line on stderr says how many pods that was and which resources to add to the `kubectl
 * get`. When no pod at all could be judged against the policies, the answer would say
 * nothing about them: exit 2 rather than an answer that looks complete. Likewise a pod whose
 * node is not in the input is not judged (its node's labels are unknown, so every verdict on
 * it would be a guess): one line on stderr says how many, and a List with such pods but no
 * Node at all exits 2.
 *
 * Exit status: 0 no violation, 1 violations found, 2 input that could not be read (or that
 * lacks the workloads of every pod the policies could judge).
 */
import { OUTPUT_AND_HELP, parseCommandLine, refuser } from './options.ts';
import { auditSnapshot } from '../engine/index.ts';
import { InputError, parseList } from './input.ts';
import { EXACT_GET, missingNodes, missingWorkloads, withoutAbsentNodes } from './missing.ts';
import type { PlanIo } from './plan.ts';
import { openInput, readInputBytes, releaseInput, type ArrivingInput } from './read-bytes.ts';
import { reportJson, reportTable } from './report.ts';
import { PLAN_USAGE, WHY_USAGE } from './usage.ts';
import { errorMessage } from '../util/errors.ts';

const USAGE = `Usage: kubectl-placement audit -f FILE|- [-o table|json]

Reads a Kubernetes List (JSON or YAML) of Nodes, Pods, Namespaces and optionally
PlacementPolicies, ClusterPlacementPolicies, PlacementExceptions and workloads, and
prints every placed pod that breaks a required pod affinity or anti-affinity rule (its
own or a policy's). A workload that an accepted PlacementException exempts from a
policy is not judged by that policy; such workloads, and refused exceptions, are listed.
Policies judge a pod only when its workload is in the input; the exact answer comes from

  ${EXACT_GET} \\
    | kubectl-placement audit -f -

Pods whose node is not in the input are not judged (one line on stderr says so).

Exit status: 0 no violation, 1 violations found, 2 input that could not be read (or
without the workload of any pod the policies could judge, or without any Node).
`;

export const EXIT = { ok: 0, violations: 1, badInput: 2 } as const;

interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The file's bytes (or text); `/dev/stdin` is standard input. */
  readonly readFile: (path: string) => string | Uint8Array;
  /** How many threads read JSON input (see parallel-list.ts); by default one per idle core. */
  readonly threads?: number;
  /**
   * The file (`/dev/stdin` for standard input) to read as it arrives, instead of `readFile`:
   * a List from a pipe is then parsed while its writer still writes (see read-bytes.ts).
   */
  readonly openFile?: (path: string) => ArrivingInput;
}

/** Runs the CLI with `args` (argv without node and script); returns the exit status. */
export function run(args: readonly string[], io: Io): number {
  const parsed = parseCommandLine(
    args,
    { filename: { type: 'string', short: 'f' }, ...OUTPUT_AND_HELP },
    true,
  );
  if (typeof parsed === 'string') {
    io.stderr(`kubectl-placement: ${parsed}\n${USAGE}`);
    return EXIT.badInput;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout(USAGE);
    return EXIT.ok;
  }
  const fail = refuser(io.stderr, 'kubectl-placement', EXIT.badInput);
  if (positionals[0] !== 'audit' || positionals.length !== 1)
    return fail(
      `expected the command "audit", "plan" or "why"\n${USAGE}\n${PLAN_USAGE}\n${WHY_USAGE}`,
    );
  const file = values.filename;
  if (file === undefined) return fail('audit needs -f FILE (or -f - for standard input)');
  if (values.output !== 'table' && values.output !== 'json') {
    return fail(`-o ${values.output}: output must be table or json`);
  }
  const label = file === '-' ? '<stdin>' : file;
  let input: string | Uint8Array | ArrivingInput;
  try {
    const path = file === '-' ? '/dev/stdin' : file;
    input = io.openFile === undefined ? io.readFile(path) : io.openFile(path);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    return fail(`${label}: ${code === 'ENOENT' ? 'no such file' : errorMessage(err)}`);
  }
  let result;
  try {
    const list = parseList(input, label, io.threads === undefined ? {} : { threads: io.threads });
    releaseInput(typeof input === 'string' || input instanceof Uint8Array ? input : input.bytes());
    const { snapshot, absent } = withoutAbsentNodes(list);
    if (absent.length > 0) {
      const noNode = snapshot.nodes.length === 0;
      io.stderr(`kubectl-placement: ${label}: ${missingNodes(absent, noNode)}\n`);
      if (noNode) return EXIT.badInput;
    }
    result = auditSnapshot(snapshot, { workloads: 'exact' });
  } catch (err) {
    if (err instanceof InputError) return fail(err.message);
    throw err;
  }
  if (result.kind === 'invalid')
    return fail(result.errors.map((e) => `${label}: ${e.message}`).join('\n'));
  if (result.unresolved.length > 0) {
    const nothingJudged = result.judgedByPolicies === 0;
    io.stderr(
      `kubectl-placement: ${label}: ${missingWorkloads(result.unresolved, nothingJudged)}\n`,
    );
    if (nothingJudged) return EXIT.badInput;
  }
  const outcome = { exemptions: result.exemptions, exceptions: result.exceptions };
  io.stdout(
    values.output === 'json'
      ? reportJson(result.report, outcome)
      : reportTable(result.report, outcome),
  );
  return result.report.violations.length > 0 ? EXIT.violations : EXIT.ok;
}

export { openInput, readInputBytes };

/**
 * Runs any command: `plan` or `why` (which may read the cluster), or `audit`; returns the exit
 * status. `plan` and `why` are loaded only when asked for: they bring the Kubernetes client,
 * whose loading cost `audit` half a second of CPU at every start.
 */
export async function main(
  args: readonly string[],
  io: PlanIo & Pick<Io, 'openFile'>,
): Promise<number> {
  if (args[0] === 'plan') return (await import('./plan.ts')).runPlan(args.slice(1), io);
  if (args[0] === 'why') return (await import('./why.ts')).runWhy(args.slice(1), io);
  return run(args, io);
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: readInputBytes,
    openFile: openInput,
    env: process.env,
  });
}
