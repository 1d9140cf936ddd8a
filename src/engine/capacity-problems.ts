/**
 * Feasibility of each workload's required rules taken together: its running pods are
 * placed anew, with every other pod where it runs, and a workload that fits fewer pods
 * than its replicas is reported "at most N of M pods can run", naming the rules that
 * refuse the next pod.
 */
import type { Labels, PodAffinityTerm } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import {
  capacityMessage,
  placingTogether,
  type Capacity,
  type CapacityTarget,
} from './capacity.ts';
import type { FeasibilityReads, FeasibilityTarget } from './feasibility.ts';
import type { NodeFacts } from './node-eligibility.ts';
import { resolvePolicyTerms, type WorkloadRef } from './policy.ts';
import {
  NO_TERMS,
  SimCluster,
  type NamedTerm,
  type PodRules,
  type SimPod,
} from './scheduling-sim.ts';
import { ownerFinder, templateSpread } from './rollout-prediction.ts';
import { withPolicySpread } from './merge.ts';
import { resolveTerm, termMatches, type ResolvedTerm } from './term.ts';
import { AnchorIndex } from './anchor-index.ts';
import { selectorAnchor } from './selector.ts';
import type { TopologyIndex } from './topology-index.ts';
import { workloadKey } from '../api/cluster.ts';
import { runAll, type Steps } from '../util/steps.ts';

/** Kinds whose pods the scheduler may put on any node (a DaemonSet's are pinned per node). */
const PLACEABLE = new Set(['Deployment', 'StatefulSet', 'ReplicaSet']);

/** The required pod terms a workload's new pods carry: its own, then its policies'. */
export function podRulesOf(t: FeasibilityTarget): PodRules {
  const owner = { namespace: t.workload.namespace, labels: t.workload.templateLabels };
  const own = (list: readonly PodAffinityTerm[], field: string): NamedTerm[] =>
    list.map((raw, i) => ({
      term: resolveTerm(raw, owner, `${field}[${String(i)}]`),
      source: 'pod',
      field: `${field}[${String(i)}]`,
    }));
  const fromPolicies = t.policies.map((p) => resolvePolicyTerms(p, t.workload, owner));
  const nodeAffinity = t.constraints?.nodeAffinity;
  const spread = templateSpread(
    t.workload,
    nodeAffinity === undefined ? undefined : { nodeAffinity },
    t.constraints ?? {},
    withPolicySpread(t.ownSpreadConstraints, t.policies, t.workload),
    t.policies,
  );
  return {
    ...(spread === undefined ? {} : { spread }),
    namespace: t.workload.namespace,
    labels: t.workload.templateLabels,
    constraints: t.constraints ?? {},
    affinity: [...own(t.ownAffinity, 'podAffinity'), ...fromPolicies.flatMap((p) => p.affinity)],
    antiAffinity: [
      ...own(t.ownAntiAffinity ?? [], 'podAntiAffinity'),
      ...fromPolicies.flatMap((p) => p.antiAffinity),
    ],
  };
}

/**
 * The index's pods as the scheduler model holds them, each filed under its workload. The
 * running pods of a workload in `placedAnew` are its ghosts from the start (see
 * `placingTogether`), and only those some term of `affinity` (the terms of the pods placed)
 * selects: a ghost provides for affinity and for nothing else. At 150,000 pods, a copy of
 * every pod made a ghost afterwards was most of the model.
 */
export function simulatedCluster(
  index: TopologyIndex,
  nodes: readonly NodeFacts[],
  owners: readonly WorkloadRef[],
  namespaceLabels: (ns: string) => Labels,
  placedAnew: ReadonlySet<string> = new Set(),
  affinity: readonly ResolvedTerm[] = [],
): SimCluster {
  const ownerOf = ownerFinder(owners);
  const followers = new AnchorIndex<ResolvedTerm>();
  for (const term of affinity) followers.add(term, selectorAnchor(term.selector));
  const followed = (namespace: string, labels: Labels): boolean => {
    let found = false;
    const nsLabels = namespaceLabels(namespace);
    followers.forEachCandidate(labels, (term) => {
      found ||= termMatches(term, namespace, labels, nsLabels);
    });
    return found;
  };
  function* pods(): Generator<SimPod> {
    for (const { pod } of index.allPods()) {
      const owner = ownerOf(pod.namespace, pod.labels);
      const ghost = owner !== undefined && placedAnew.has(owner);
      if (ghost && !followed(pod.namespace, pod.labels)) continue;
      yield {
        key: pod.key,
        namespace: pod.namespace,
        labels: pod.labels,
        nodeName: pod.nodeName,
        antiAffinity: ghost ? NO_TERMS : pod.antiAffinity,
        ...(owner === undefined ? {} : { owner }),
        ...(ghost ? { ghost } : {}),
      };
    }
  }
  return new SimCluster(nodes, pods(), namespaceLabels);
}

/** The workloads' pods as placeTogether takes them, and whether a policy asks terms of any. */
function capacityTargets(
  targets: readonly FeasibilityTarget[],
  skip: (w: WorkloadRef) => boolean,
): { chosen: { input: FeasibilityTarget; target: CapacityTarget }[]; asked: boolean } {
  const chosen: { input: FeasibilityTarget; target: CapacityTarget }[] = [];
  let asked = false;
  for (const t of targets) {
    if (!PLACEABLE.has(t.workload.kind) || t.replicas === 0 || skip(t.workload)) continue;
    const rules = podRulesOf(t);
    // Workloads no policy asks pod terms of keep their pods; their missing pods may start
    // first and so provide what another workload's affinity waits for.
    const ours =
      rules.affinity.concat(rules.antiAffinity).some((n) => n.source !== 'pod') ||
      (rules.spread?.rules.hard ?? []).some(
        (c) => rules.spread?.sources[c.index]?.source !== 'pod',
      );
    asked ||= ours;
    chosen.push({
      input: t,
      target: {
        key: workloadKey(t.workload),
        replicas: t.replicas,
        rules,
        ...(ours ? {} : { keepRunning: true }),
      },
    });
  }
  return { chosen, asked };
}

function placingChosen(
  chosen: readonly { input: FeasibilityTarget; target: CapacityTarget }[],
  index: TopologyIndex,
  nodes: readonly NodeFacts[],
  namespaceLabels: (ns: string) => Labels,
): Steps<Capacity[]> {
  const cluster = simulatedCluster(
    index,
    nodes,
    chosen.map((c) => c.input.workload),
    namespaceLabels,
    new Set(chosen.flatMap((c) => (c.target.keepRunning === true ? [] : [c.target.key]))),
    chosen.flatMap((c) => c.target.rules.affinity.map((n) => n.term)),
  );
  return placingTogether(
    cluster,
    chosen.map((c) => c.target),
  );
}

/**
 * How many pods of each workload can run, as `capacityProblems` counts them (whether or
 * not a policy asks terms of it): one entry per Deployment, StatefulSet or ReplicaSet
 * with replicas, in the order given.
 */
export function workloadCapacities(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodes: readonly NodeFacts[],
  namespaceLabels: (ns: string) => Labels,
): Capacity[] {
  return runAll(
    placingChosen(capacityTargets(targets, () => false).chosen, index, nodes, namespaceLabels),
  );
}

/**
 * Workloads whose policies ask required pod terms, placed together: reports, to each policy
 * whose terms refuse a pod, how many of the workload's pods can run. Yields after each pod
 * it places; the index and `nodes` are read before the first yield.
 */
export function* capacityProblems(
  targets: readonly FeasibilityTarget[],
  index: TopologyIndex,
  nodes: readonly NodeFacts[],
  namespaceLabels: (ns: string) => Labels,
  skip: (w: WorkloadRef) => boolean,
  report: (ref: PolicyRef, message: string) => void,
  reads: FeasibilityReads,
): Steps<void> {
  const { chosen, asked } = capacityTargets(targets, skip);
  for (const { input, target } of chosen) {
    // A workload placed anew has ghosts of its old pods: affinity finds them, nothing else.
    for (const n of target.rules.affinity) {
      reads.lookedUp([n.term]);
      reads.domainKeys.add(n.term.topologyKey);
    }
    for (const n of target.rules.antiAffinity) {
      reads.lookedUp([n.term], false);
      reads.domainKeys.add(n.term.topologyKey);
    }
    // A spread constraint counts the pods its selector finds in the workload's namespace,
    // as an affinity term with that selector would find them.
    const owner = { namespace: input.workload.namespace, labels: input.workload.templateLabels };
    for (const c of withPolicySpread(input.ownSpreadConstraints, input.policies, input.workload)) {
      if (c.whenUnsatisfiable !== 'DoNotSchedule') continue;
      const probe = { labelSelector: c.labelSelector ?? null, topologyKey: c.topologyKey };
      try {
        reads.lookedUp([resolveTerm(probe, owner, 'topologySpreadConstraints')], false);
      } catch {
        // a selector that cannot be read compiled to no spread rule above: nothing to watch
      }
      reads.domainKeys.add(c.topologyKey);
    }
  }
  if (!asked) return;
  // Other pods' anti-affinity and any node detail may change a count.
  reads.nodeDetails = true;
  reads.antiAffinityPods = true;
  reads.owners(
    chosen.map((c) => ({
      workload: c.input.workload,
      moved: c.target.keepRunning !== true,
      antiAffinity: c.target.rules.antiAffinity.length > 0,
    })),
  );
  const results = yield* placingChosen(chosen, index, nodes, namespaceLabels);
  results.forEach((r, i) => {
    const input = chosen[i]?.input;
    if (input === undefined || r.placed >= r.replicas) return;
    const blamed = new Set<PolicyRef>();
    for (const m of r.misfits.values()) {
      if (m.kind === 'node' || m.kind === 'symmetricAntiAffinity') continue;
      const source = m.kind === 'topologySpread' ? m.source : m.term.source;
      if (source !== 'pod') blamed.add(source);
    }
    const w = input.workload;
    for (const ref of blamed)
      report(ref, `${w.kind} ${w.namespace}/${w.name}: ${capacityMessage(r)}`);
  });
}
