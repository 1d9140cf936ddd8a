/**
 * From API objects to the rollout simulation: the cluster as the scheduler model holds it
 * (bound pods with their own required anti-affinity, filed under their workload), and the
 * rules a workload's new pods would carry after a template write, each term named by the
 * policy field that asked for it.
 */
import { workloadKey, type RolloutStrategy } from '../api/cluster.ts';
import type {
  Affinity,
  Labels,
  Node,
  Pod,
  PodAffinityTerm,
  TopologySpreadConstraint,
} from '../api/core.ts';
import { asServerStores } from './canonical.ts';
import { jsonEqual } from '../util/json.ts';
import { nodeFacts, type PodConstraints } from './node-eligibility.ts';
import { isPlaced, podKey } from './pod-placement.ts';
import {
  policySpreadConstraintsFor,
  policyTermsFor,
  resolvePolicyTerms,
  type CompiledPolicy,
  type WorkloadRef,
} from './policy.ts';
import { simulateRollout, type RolloutOutcome } from './rollout-sim.ts';
import {
  SimCluster,
  type NamedSpread,
  type NamedTerm,
  type PodRules,
  type SimPod,
} from './scheduling-sim.ts';
import { compileSpreadRules } from './spread-index.ts';
import { FieldError } from './errors.ts';
import { compileSelector, selectorAnchor, selectorMatches } from './selector.ts';
import { AnchorIndex } from './anchor-index.ts';
import { REQUIRED_TERMS, resolveTerm } from './term.ts';

/**
 * Which workload a pod belongs to, by the workloads' pod selectors in its namespace: the
 * first of `owners` whose selector matches. Only the workloads whose selectors may match the
 * pod's labels (by the label each needs) are asked.
 */
export function ownerFinder(
  owners: readonly WorkloadRef[],
): (namespace: string, labels: Labels) => string | undefined {
  const byNamespace = new Map<string, AnchorIndex<number>>();
  const compiled = owners.map((w, i) => {
    const selector = compileSelector(w.podSelector, 'podSelector');
    const index = byNamespace.get(w.namespace) ?? new AnchorIndex<number>();
    index.add(i, selectorAnchor(selector));
    byNamespace.set(w.namespace, index);
    return { key: workloadKey(w), selector };
  });
  return (namespace, labels) => {
    let first: number | undefined;
    byNamespace.get(namespace)?.forEachCandidate(labels, (i) => {
      if (first !== undefined && first <= i) return;
      const o = compiled[i];
      if (o !== undefined && selectorMatches(o.selector, labels)) first = i;
    });
    return first === undefined ? undefined : compiled[first]?.key;
  };
}

/** Files each pod under its workload among `owners` (see ownerFinder), as the scheduler model holds it. */
export function ownedBy(owners: readonly WorkloadRef[]): (pod: Omit<SimPod, 'owner'>) => SimPod {
  const ownerOf = ownerFinder(owners);
  return (pod) => {
    const owner = ownerOf(pod.namespace, pod.labels);
    return owner === undefined ? pod : { ...pod, owner };
  };
}

/** A pod's own required anti-affinity terms; a term that cannot be read is left out. */
function ownAntiAffinity(pod: Pod): NamedTerm[] {
  const terms = pod.spec.affinity?.podAntiAffinity?.[REQUIRED_TERMS] ?? [];
  const owner = { namespace: pod.metadata.namespace, labels: pod.metadata.labels ?? {} };
  return terms.flatMap((raw, i): NamedTerm[] => {
    const field = `podAntiAffinity[${String(i)}]`;
    try {
      return [{ term: resolveTerm(raw, owner, field), source: 'pod', field }];
    } catch {
      return [];
    }
  });
}

/** Bound pods on nodes, as the scheduler model holds them. */
export function clusterOf(
  nodes: readonly Node[],
  pods: readonly Pod[],
  owners: readonly WorkloadRef[],
  namespaceLabels: (ns: string) => Labels,
): SimCluster {
  const owned = ownedBy(owners);
  const sim = pods.filter(isPlaced).map((p) =>
    owned({
      key: podKey(p),
      namespace: p.metadata.namespace,
      labels: p.metadata.labels ?? {},
      nodeName: p.spec.nodeName ?? '',
      antiAffinity: ownAntiAffinity(p),
    }),
  );
  return new SimCluster(nodes.map(nodeFacts), sim, namespaceLabels);
}

/**
 * The required pod terms of a template with `affinity`, each named by the policy that
 * injected it (the first of `enforced` that asks for it) or as the owner's own.
 */
export function templateRules(
  workload: WorkloadRef,
  affinity: Affinity | undefined,
  constraints: PodConstraints,
  enforced: readonly CompiledPolicy[],
): PodRules {
  const owner = { namespace: workload.namespace, labels: workload.templateLabels };
  const name = (kind: 'podAffinity' | 'podAntiAffinity', list: readonly PodAffinityTerm[]) =>
    list.map((raw, i): NamedTerm => {
      for (const p of enforced) {
        const asked = policyTermsFor(p, workload)[kind];
        const k = asked.findIndex((t) => jsonEqual(asServerStores(t), raw));
        if (k < 0) continue;
        const sourced = resolvePolicyTerms(p, workload, owner)[
          kind === 'podAffinity' ? 'affinity' : 'antiAffinity'
        ][k];
        if (sourced !== undefined) return sourced;
      }
      const field = `${kind}[${String(i)}]`;
      return { term: resolveTerm(raw, owner, field), source: 'pod', field };
    });
  return {
    namespace: workload.namespace,
    labels: workload.templateLabels,
    constraints: {
      ...constraints,
      ...(affinity?.nodeAffinity === undefined ? {} : { nodeAffinity: affinity.nodeAffinity }),
    },
    affinity: name('podAffinity', affinity?.podAffinity?.[REQUIRED_TERMS] ?? []),
    antiAffinity: name('podAntiAffinity', affinity?.podAntiAffinity?.[REQUIRED_TERMS] ?? []),
  };
}

/**
 * A template's topologySpreadConstraints compiled as its pods would carry them, each named
 * by the policy `spreadAcross` entry that injected it (the first of `enforced` that asks for
 * it) or as the owner's own. `undefined` when there are none, or they cannot be read (the
 * API server would have refused them).
 */
export function templateSpread(
  workload: WorkloadRef,
  affinity: Affinity | undefined,
  constraints: PodConstraints,
  list: readonly TopologySpreadConstraint[] | undefined,
  enforced: readonly CompiledPolicy[],
): NamedSpread | undefined {
  if (list === undefined || list.length === 0) return undefined;
  let rules;
  try {
    rules = compileSpreadRules({
      namespace: workload.namespace,
      labels: workload.templateLabels,
      ...(constraints.nodeSelector === undefined ? {} : { nodeSelector: constraints.nodeSelector }),
      ...(affinity?.nodeAffinity === undefined ? {} : { nodeAffinity: affinity.nodeAffinity }),
      ...(constraints.tolerations === undefined ? {} : { tolerations: constraints.tolerations }),
      topologySpreadConstraints: list,
    });
  } catch (err) {
    if (err instanceof FieldError) return undefined;
    throw err;
  }
  const sources = list.map((c, i) => {
    for (const p of enforced) {
      const fields = p.spread.flatMap((s, j) =>
        s.constraint === 'TopologySpread' ? [`spec.spreadAcross[${String(j)}]`] : [],
      );
      const k = policySpreadConstraintsFor(p, workload).findIndex((x) =>
        jsonEqual(asServerStores(x), asServerStores(c)),
      );
      const field = fields[k];
      if (field !== undefined) return { source: p.ref, field };
    }
    return { source: 'pod' as const, field: `topologySpreadConstraints[${String(i)}]` };
  });
  return { rules, sources };
}

/** A workload about to get a new template affinity. */
export interface TemplateChange {
  readonly workload: WorkloadRef;
  readonly replicas: number;
  readonly strategy: RolloutStrategy | undefined;
  /** The template's nodeSelector and tolerations (node affinity comes from `affinity`). */
  readonly constraints: PodConstraints;
  readonly affinity: Affinity | undefined;
  /** The template's topologySpreadConstraints after the write. */
  readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[] | undefined;
  readonly enforced: readonly CompiledPolicy[];
}

/** The rollout `change` would start on `cluster` (left as it was). */
export function predictRollout(cluster: SimCluster, change: TemplateChange): RolloutOutcome {
  return simulateRollout(cluster, {
    key: workloadKey(change.workload),
    kind: change.workload.kind,
    replicas: change.replicas,
    strategy: change.strategy,
    rules: withSpread(
      templateRules(change.workload, change.affinity, change.constraints, change.enforced),
      templateSpread(
        change.workload,
        change.affinity,
        change.constraints,
        change.topologySpreadConstraints,
        change.enforced,
      ),
    ),
  });
}

const withSpread = (rules: PodRules, spread: NamedSpread | undefined): PodRules =>
  spread === undefined ? rules : { ...rules, spread };
