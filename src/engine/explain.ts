/**
 * Why one pod is where it is, or nowhere: `kubectl-placement why`. The judges are the
 * audit's own (verdict.ts for inter-pod affinity, node-affinity.ts, node-eligibility.ts,
 * topology-spread.ts); what this file adds is the bookkeeping a person needs around them:
 * for a pod not yet bound, every rule that rules out each node (not only the first, as the
 * scheduler stops at), the pods that close a domain by name, and the smallest change that
 * would let it schedule; for a bound pod, its violations with the other pods involved; and
 * for every pod, the rules it is under and who put them there.
 */
import { workloadKey } from '../api/cluster.ts';
import { FieldError, InvalidObjectError } from './errors.ts';
import { smallestChanges } from './explain-changes.ts';
import {
  SCHEDULER_REASON,
  WHY_RULES,
  type Block,
  type InvolvedPod,
  type NodeVerdict,
  type RuleOutcome,
  type WhyResult,
  type WhyRule,
} from './explain-types.ts';
import { ruleOrigins } from './explain-origin.ts';
import {
  buildIndex,
  compileAuditPolicies,
  nodePolicyReach,
  placementOf,
  type ClusterSnapshot,
} from './judge-cluster.ts';
import { nodeFacts } from './node-eligibility.ts';
import type { PodPlacement } from './placement.ts';
import { isPlaced, podKey } from './pod-placement.ts';
import type { TopologyIndex } from './topology-index.ts';
import { resolveWorkload, workloadOfPod, WorkloadLookup } from './workload.ts';
import { compareText } from '../util/compare.ts';
import { PodChecks } from './explain-checks.ts';

export * from './explain-types.ts';

/** Explains the pod `namespace/name` of the snapshot. */
export function explainPod(snapshot: ClusterSnapshot, namespace: string, name: string): WhyResult {
  const pod = snapshot.pods.find(
    (p) => p.metadata.namespace === namespace && p.metadata.name === name,
  );
  if (pod === undefined) return { kind: 'notFound', message: `pod ${namespace}/${name} not found` };
  const policies = compileAuditPolicies(snapshot.policies, snapshot.exceptions);
  const first = policies.errors[0];
  if (first !== undefined) return { kind: 'invalid', message: first.message };
  const lookup = new WorkloadLookup(snapshot.workloads);
  let index: TopologyIndex;
  let target: PodPlacement;
  try {
    index = buildIndex(snapshot, policies.ok, lookup);
    target = index.get(podKey(pod))?.pod ?? placementOf(pod, policies.ok, lookup, index);
  } catch (err) {
    if (err instanceof FieldError)
      return { kind: 'invalid', message: `Pod ${podKey(pod)}: ${err.message}` };
    if (err instanceof InvalidObjectError) return { kind: 'invalid', message: err.message };
    throw err;
  }
  const nodes = snapshot.nodes.map(nodeFacts);
  const resolution = resolveWorkload(pod, lookup);
  const workload = resolution.workload.kind === 'Pod' ? null : workloadKey(resolution.workload);
  const object =
    workload === null
      ? undefined
      : lookup.get(resolution.workload.kind, namespace, resolution.workload.name);
  // The policies whose node requirements and spread constraints reach the pod, as the audit
  // finds them: their rules are theirs, in the pod's rules and in its violations.
  const reached = nodePolicyReach(policies.ok, (p) => workloadOfPod(p, lookup), index)(pod);
  const rules = ruleOrigins(pod, target, workload, object, reached);
  const ctx = new PodChecks(snapshot, index, target, pod, nodes, reached);
  const base = {
    pod: podKey(pod),
    phase: pod.status?.phase ?? 'Pending',
    workload,
    rules,
  };
  if (isPlaced(pod)) {
    const bound = pod.spec.nodeName ?? '';
    // Its node's labels are unknown: any verdict on it would be a guess.
    if (!nodes.some((n) => n.name === bound))
      return {
        kind: 'invalid',
        message: `Pod ${podKey(pod)}: spec.nodeName: node ${bound} is not in the input`,
      };
    const violations = ctx.violations();
    return {
      kind: 'ok',
      explanation: {
        ...base,
        node: pod.spec.nodeName ?? null,
        status: violations.length > 0 ? 'violating' : 'fine',
        nodes: [],
        ruledOut: [],
        schedulerReasons: [],
        changes: [],
        violations,
      },
    };
  }
  const verdicts = nodes.map((n) => ({ node: n.name, blocks: ctx.blocks(n, ctx.spread) }));
  const fits = verdicts.some((v) => v.blocks.length === 0);
  return {
    kind: 'ok',
    explanation: {
      ...base,
      node: null,
      status: fits ? 'schedulable' : 'unschedulable',
      nodes: verdicts,
      ruledOut: ruledOut(verdicts),
      schedulerReasons: schedulerReasons(verdicts),
      changes: fits ? [] : smallestChanges(pod, nodes, verdicts, (n) => ctx.blocksOfNew(n)),
      violations: [],
    },
  };
}

/** The scheduler's count: each node under the reason of the first filter that refuses it. */
function schedulerReasons(verdicts: readonly NodeVerdict[]): { reason: string; nodes: number }[] {
  const counts = new Map<string, number>();
  for (const v of verdicts) {
    const b = v.blocks[0];
    if (b === undefined) continue;
    const reason = schedulerReason(b);
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return [...counts]
    .map(([reason, nodes]) => ({ reason, nodes }))
    .sort((a, b) => b.nodes - a.nodes || compareText(a.reason, b.reason));
}

function schedulerReason(b: Block): string {
  if (b.rule === 'taint') return `${SCHEDULER_REASON.taint} {${b.domain ?? ''}}`;
  return SCHEDULER_REASON[b.rule];
}

function ruledOut(verdicts: readonly NodeVerdict[]): RuleOutcome[] {
  const out = new Map<
    string,
    { o: RuleOutcome; nodes: string[]; pods: Map<string, InvolvedPod> }
  >();
  for (const v of verdicts)
    for (const b of v.blocks) {
      const id = `${b.rule}\0${b.source}\0${b.field}`;
      let entry = out.get(id);
      if (entry === undefined) {
        const o = {
          rule: b.rule,
          source: b.source,
          field: b.field,
          nodes: [],
          pods: [],
          message: b.message,
        };
        entry = { o, nodes: [], pods: new Map() };
        out.set(id, entry);
      }
      entry.nodes.push(v.node);
      for (const p of b.pods) entry.pods.set(`${p.pod}\0${p.domain}`, p);
    }
  const order = (r: WhyRule): number => WHY_RULES.indexOf(r);
  return [...out.values()]
    .map(({ o, nodes, pods }) => ({
      ...o,
      nodes,
      pods: [...pods.values()].sort((a, b) => compareText(a.pod, b.pod)),
    }))
    .sort((a, b) => order(a.rule) - order(b.rule) || compareText(a.field, b.field));
}
