/**
 * Topology spread counting, as kube-scheduler's PodTopologySpread PreFilter counts: for a
 * constraint of a pod, which nodes are domains (nodeAffinityPolicy, nodeTaintsPolicy, and
 * every topology key of the pod's constraints present), and how many pods of the pod's
 * namespace that the constraint's selector matches run in each domain. The index counts
 * each distinct constraint once, for every pod that carries it; the drift judge and the
 * filter (topology-spread.ts) read the same counts.
 *
 * Long because the index, its per-constraint counts and the domain rules (which nodes
 * count, for each of nodeAffinityPolicy and nodeTaintsPolicy) answer one question and change
 * together; the filter and the judge that read them live in topology-spread.ts.
 */
import type {
  Labels,
  LabelSelector,
  Pod,
  Toleration,
  TopologySpreadConstraint,
} from '../api/core.ts';
import { FieldError } from './errors.ts';
import { labelOf } from './labels.ts';
import { nodeRulesHold, nodeRulesOfPod, type NodeRules } from './node-affinity.ts';
import { toleratesHardTaints, type NodeFacts } from './node-eligibility.ts';
import {
  compileSelector,
  selectorAnchor,
  selectorKey,
  selectorMatches,
  withRequirements,
  type Requirement,
  type Selector,
} from './selector.ts';

/** Which nodes count as domains of one constraint. Equal keys: equal node sets. */
export interface Eligibility {
  readonly key: string;
  /** Every topology key of the pod's constraints of the same kind: a node lacking one is no domain. */
  readonly topologyKeys: readonly string[];
  /** nodeAffinityPolicy Honor: the pod's nodeSelector and required node affinity. */
  readonly nodeRules: NodeRules | undefined;
  /** nodeTaintsPolicy Honor: the pod's tolerations. */
  readonly tolerations: readonly Toleration[] | undefined;
}

/** One topology spread constraint of a pod, validated and resolved against the pod. */
export interface SpreadConstraint {
  /** Position in `spec.topologySpreadConstraints`. */
  readonly index: number;
  /** The pod's namespace: the only one whose pods count. */
  readonly namespace: string;
  readonly maxSkew: number;
  readonly topologyKey: string;
  /** The labelSelector with matchLabelKeys merged in, as the scheduler uses it. */
  readonly selector: Selector;
  readonly minDomains: number;
  readonly eligibility: Eligibility;
  /** Constraints with equal keys count the same pods in the same domains. */
  readonly groupKey: string;
}

/** A pod's constraints: DoNotSchedule ones (a filter) and ScheduleAnyway ones (a score). */
export interface SpreadRules {
  readonly hard: readonly SpreadConstraint[];
  readonly soft: readonly SpreadConstraint[];
}

export const NO_SPREAD: SpreadRules = Object.freeze({ hard: [], soft: [] });

/** What the spread judges read of a pod. */
export interface SpreadSubject extends NodeRules {
  readonly namespace: string;
  readonly labels: Labels;
  readonly tolerations?: readonly Toleration[];
  readonly topologySpreadConstraints?: readonly TopologySpreadConstraint[];
}

/** A bound pod as the spread index holds it. */
export interface SpreadPod {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly nodeName: string;
  /** Being deleted: the PodTopologySpread filter does not count it (kubernetes#87621). */
  readonly terminating?: boolean;
  readonly rules: SpreadRules;
}

const POLICIES = ['Honor', 'Ignore'] as const;
const ACTIONS = ['DoNotSchedule', 'ScheduleAnyway'] as const;

function policy(value: string | undefined, fallback: 'Honor' | 'Ignore', field: string): boolean {
  const v = value ?? fallback;
  if (!(POLICIES as readonly string[]).includes(v)) {
    throw new FieldError(field, `"${v}" is not one of ${POLICIES.join(', ')}`);
  }
  return v === 'Honor';
}

/** matchLabelKeys as the scheduler merges them: `key In [the pod's value]`, keys the pod lacks skipped. */
function labelKeyRequirements(keys: readonly string[], labels: Labels): Requirement[] {
  const out: Requirement[] = [];
  for (const key of keys) {
    const value = labelOf(labels, key);
    if (value !== undefined) out.push({ key, operator: 'In', values: [value] });
  }
  return out;
}

function compileSelectorOrNothing(selector: LabelSelector | null | undefined, field: string) {
  return compileSelector(selector, `${field}.labelSelector`);
}

/**
 * Validates a pod's topologySpreadConstraints and resolves them against the pod (its
 * namespace, labels, node rules and tolerations). Throws FieldError naming the field.
 */
export function compileSpreadRules(pod: SpreadSubject, field = 'spec'): SpreadRules {
  const list = pod.topologySpreadConstraints ?? [];
  if (list.length === 0) return NO_SPREAD;
  const base = `${field}.topologySpreadConstraints`;
  const parsed = list.map((c, index) => {
    const at = `${base}[${index}]`;
    if (!Number.isInteger(c.maxSkew) || c.maxSkew < 1) {
      throw new FieldError(`${at}.maxSkew`, `${String(c.maxSkew)} is not an integer of at least 1`);
    }
    if (c.topologyKey === '') throw new FieldError(`${at}.topologyKey`, 'must not be empty');
    if (!(ACTIONS as readonly string[]).includes(c.whenUnsatisfiable)) {
      throw new FieldError(
        `${at}.whenUnsatisfiable`,
        `"${c.whenUnsatisfiable}" is not one of ${ACTIONS.join(', ')}`,
      );
    }
    const minDomains = c.minDomains ?? 1;
    if (!Number.isInteger(minDomains) || minDomains < 1) {
      throw new FieldError(
        `${at}.minDomains`,
        `${String(minDomains)} is not an integer of at least 1`,
      );
    }
    const selector = withRequirements(
      compileSelectorOrNothing(c.labelSelector, at),
      labelKeyRequirements(c.matchLabelKeys ?? [], pod.labels),
    );
    return {
      index,
      hard: c.whenUnsatisfiable === 'DoNotSchedule',
      maxSkew: c.maxSkew,
      topologyKey: c.topologyKey,
      selector,
      minDomains,
      honorAffinity: policy(c.nodeAffinityPolicy, 'Honor', `${at}.nodeAffinityPolicy`),
      honorTaints: policy(c.nodeTaintsPolicy, 'Ignore', `${at}.nodeTaintsPolicy`),
    };
  });
  const nodeRules: NodeRules = {
    ...(pod.nodeSelector ? { nodeSelector: pod.nodeSelector } : {}),
    ...(pod.nodeAffinity ? { nodeAffinity: pod.nodeAffinity } : {}),
  };
  // Honoring node rules that restrict nothing counts the same nodes as ignoring them: one
  // eligibility for both, so such constraints share their counts.
  const restricts =
    Object.keys(nodeRules.nodeSelector ?? {}).length > 0 || requiredOf(nodeRules) !== null;
  const resolve = (hard: boolean): SpreadConstraint[] => {
    const mine = parsed.filter((p) => p.hard === hard);
    // The scheduler skips a node that lacks any topology key of the constraints it judges.
    const topologyKeys = [...new Set(mine.map((p) => p.topologyKey))].sort();
    return mine.map((p) => {
      const eligibility: Eligibility = {
        key: JSON.stringify([
          topologyKeys,
          p.honorAffinity && restricts
            ? [nodeRules.nodeSelector ?? null, requiredOf(nodeRules)]
            : null,
          p.honorTaints ? (pod.tolerations ?? []) : null,
        ]),
        topologyKeys,
        nodeRules: p.honorAffinity && restricts ? nodeRules : undefined,
        tolerations: p.honorTaints ? (pod.tolerations ?? []) : undefined,
      };
      return {
        index: p.index,
        namespace: pod.namespace,
        maxSkew: p.maxSkew,
        topologyKey: p.topologyKey,
        selector: p.selector,
        minDomains: p.minDomains,
        eligibility,
        groupKey: [pod.namespace, selectorKey(p.selector), p.topologyKey, eligibility.key].join(
          '\0',
        ),
      };
    });
  };
  return { hard: resolve(true), soft: resolve(false) };
}

const requiredOf = (rules: NodeRules): unknown =>
  rules.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? null;

/**
 * Interns compiled rules: the pods of one template (same namespace, constraints, node rules,
 * tolerations and matchLabelKeys values) share one SpreadRules, compiled once.
 */
export class SpreadRulesCache {
  private readonly cache = new Map<string, SpreadRules>();
  /**
   * What the last call read, and its rules. The replicas of a template come one after another
   * and, read from the API or a file, share their constraints, node rules and tolerations as
   * one object each (kube/transforms.ts): the same objects and label values are the same key,
   * without its JSON text.
   */
  private last: { readonly parts: readonly unknown[]; readonly rules: SpreadRules } | undefined;

  rulesOf(pod: SpreadSubject, field = 'spec'): SpreadRules {
    const list = pod.topologySpreadConstraints;
    if (list === undefined || list.length === 0) return NO_SPREAD;
    const keyValues = list.flatMap((c) =>
      (c.matchLabelKeys ?? []).map((k) => labelOf(pod.labels, k) ?? null),
    );
    const parts = [
      pod.namespace,
      list,
      pod.nodeSelector ?? null,
      requiredOf(pod),
      pod.tolerations ?? null,
      ...keyValues,
    ];
    const last = this.last;
    if (last?.parts.length === parts.length && parts.every((p, i) => p === last.parts[i]))
      return last.rules;
    const key = JSON.stringify([...parts.slice(0, 5), keyValues]);
    let rules = this.cache.get(key);
    if (rules === undefined) {
      rules = compileSpreadRules(pod, field);
      this.cache.set(key, rules);
    }
    this.last = { parts, rules };
    return rules;
  }
}

/** How many matching pods each domain of one constraint holds, and which. */
export interface SpreadCounts {
  /** The eligible domains that hold matching pods, with their number (a domain absent: 0). */
  readonly byDomain: ReadonlyMap<string, number>;
  /** How many eligible domains there are, empty ones included. */
  readonly domains: number;
  /** The smallest count over every eligible domain (0 when one is empty); undefined: no domain. */
  readonly min: number | undefined;
}

/**
 * The global minimum the scheduler compares with: 0 when there are fewer domains than
 * minDomains (no domain at all included), else the smallest count.
 */
export const globalMinimum = (counts: SpreadCounts, minDomains: number): number =>
  counts.domains < minDomains || counts.min === undefined ? 0 : counts.min;

/**
 * The domain `node` is of a constraint (its value for the topology key), undefined when the
 * node counts as no domain of it: it lacks one of the topology keys, or the constraint honours
 * node rules or taints that keep its pods off the node.
 */
export function domainOfNode(c: SpreadConstraint, node: NodeFacts): string | undefined {
  const e = c.eligibility;
  if (!e.topologyKeys.every((k) => labelOf(node.labels, k) !== undefined)) return undefined;
  if (e.nodeRules !== undefined && !nodeRulesHold(e.nodeRules, node)) return undefined;
  if (e.tolerations !== undefined && !toleratesHardTaints(node.taints, e.tolerations))
    return undefined;
  return labelOf(node.labels, c.topologyKey) ?? '';
}

/** Adds `pod` to a list (`delta` 1) or takes it out (-1). */
function fileIn(list: SpreadPod[], pod: SpreadPod, delta: 1 | -1): void {
  if (delta > 0) list.push(pod);
  else {
    const i = list.indexOf(pod);
    if (i >= 0) list.splice(i, 1);
  }
}

/** Candidate pods few enough that no other label's index is built to narrow them. */
const SHORT_ENOUGH = 64;

/** The nodes that count as domains of a constraint. */
export interface EligibleDomains {
  /** Eligible node → its domain (its value for the topology key). */
  readonly byNode: ReadonlyMap<string, string>;
  /** How many distinct domains. */
  readonly count: number;
}

/**
 * The cluster as the PodTopologySpread plugin counts it. Build once from the bound pods and
 * the nodes; counts are computed on first use for each distinct constraint and kept.
 */
export class SpreadIndex {
  private readonly nodes = new Map<string, NodeFacts>();
  /** Counted pods (not terminating, on a known node) by namespace. */
  private readonly byNamespace = new Map<string, SpreadPod[]>();
  /** namespace → label key → value → pods, built for a key on first use. */
  private readonly byLabel = new Map<string, Map<string, Map<string, SpreadPod[]>>>();
  /** eligibility key → topology key → eligible node → its domain, and how many domains. */
  private readonly domains = new Map<string, Map<string, EligibleDomains>>();
  private domainsByObject = new WeakMap<SpreadConstraint, EligibleDomains>();
  private readonly counted = new Map<string, SpreadCounts>();
  /** namespace → group key → the constraint counted: which counts a pod change makes stale. */
  private readonly countedIn = new Map<string, Map<string, SpreadConstraint>>();

  constructor(nodes: Iterable<NodeFacts>, pods: Iterable<SpreadPod>) {
    for (const n of nodes) this.nodes.set(n.name, n);
    if (Array.isArray(pods)) {
      // Indexed: a constructor runs once per pass, unoptimized, and for-of would allocate
      // an iterator result per pod.
      const list = pods as readonly SpreadPod[];
      for (let i = 0; i < list.length; i++) this.file(list[i] as SpreadPod);
    } else for (const p of pods) this.file(p);
  }

  private file(p: SpreadPod): void {
    if (p.terminating === true || !this.nodes.has(p.nodeName)) return;
    let list = this.byNamespace.get(p.namespace);
    if (list === undefined) this.byNamespace.set(p.namespace, (list = []));
    list.push(p);
  }

  node(name: string): NodeFacts | undefined {
    return this.nodes.get(name);
  }

  /** The counts of one constraint (resolved against its pod). */
  counts(c: SpreadConstraint): SpreadCounts {
    let counts = this.counted.get(c.groupKey);
    if (counts === undefined) {
      counts = this.count(c);
      this.counted.set(c.groupKey, counts);
      let inNs = this.countedIn.get(c.namespace);
      if (inNs === undefined)
        this.countedIn.set(c.namespace, (inNs = new Map<string, SpreadConstraint>()));
      inNs.set(c.groupKey, c);
    }
    return counts;
  }

  /**
   * Counts `pod` from now on (it must not be counted yet), forgetting the counts it changes.
   * A pod on a node the index does not hold is filed but counted in no domain.
   */
  addPod(pod: SpreadPod): void {
    this.filePod(pod, 1);
  }

  /** Stops counting `pod` (the object addPod or the constructor was given). */
  removePod(pod: SpreadPod): void {
    this.filePod(pod, -1);
  }

  /** Puts in, replaces or (undefined) takes out a node; every domain and count is recounted. */
  setNode(name: string, node: NodeFacts | undefined): void {
    if (node === undefined) this.nodes.delete(name);
    else this.nodes.set(name, node);
    this.domains.clear();
    this.domainsByObject = new WeakMap();
    this.counted.clear();
    this.countedIn.clear();
  }

  private filePod(pod: SpreadPod, delta: 1 | -1): void {
    if (pod.terminating === true) return;
    // No closure or iterator per call: a pass files every pod through here.
    let list = this.byNamespace.get(pod.namespace);
    if (list === undefined) this.byNamespace.set(pod.namespace, (list = []));
    fileIn(list, pod, delta);
    const indexes = this.byLabel.get(pod.namespace);
    if (indexes !== undefined) {
      for (const [key, index] of indexes) {
        const v = labelOf(pod.labels, key);
        if (v === undefined) continue;
        let withValue = index.get(v);
        if (withValue === undefined) index.set(v, (withValue = []));
        fileIn(withValue, pod, delta);
      }
    }
    const counted = this.countedIn.get(pod.namespace);
    if (counted === undefined) return;
    for (const [groupKey, c] of counted) {
      if (!selectorMatches(c.selector, pod.labels)) continue;
      this.counted.delete(groupKey);
      counted.delete(groupKey);
    }
  }

  /** Eligible nodes of a constraint, each with its domain. */
  domainsOf(c: SpreadConstraint): EligibleDomains {
    // By constraint object first: the pods of one template share theirs, and the text key
    // is long to build and hash.
    const known = this.domainsByObject.get(c);
    if (known !== undefined) return known;
    // Two levels of existing text, not one key joined (a copy of the long eligibility key).
    let byTopologyKey = this.domains.get(c.eligibility.key);
    if (byTopologyKey === undefined)
      this.domains.set(c.eligibility.key, (byTopologyKey = new Map<string, EligibleDomains>()));
    let found = byTopologyKey.get(c.topologyKey);
    if (found === undefined) {
      const map = new Map<string, string>();
      for (const node of this.nodes.values()) {
        const domain = domainOfNode(c, node);
        if (domain !== undefined) map.set(node.name, domain);
      }
      found = { byNode: map, count: new Set(map.values()).size };
      byTopologyKey.set(c.topologyKey, found);
    }
    this.domainsByObject.set(c, found);
    return found;
  }

  private count(c: SpreadConstraint): SpreadCounts {
    const domains = this.domainsOf(c);
    // Only domains that hold a matching pod are listed: a pass costs the matching pods, not
    // the nodes, for each distinct constraint.
    const byDomain = new Map<string, number>();
    const pods = this.countable(c);
    for (let i = 0; i < pods.length; i++) {
      const p = pods[i] as SpreadPod;
      const domain = domains.byNode.get(p.nodeName);
      if (domain !== undefined && selectorMatches(c.selector, p.labels))
        byDomain.set(domain, (byDomain.get(domain) ?? 0) + 1);
    }
    let min: number | undefined = domains.count > byDomain.size ? 0 : undefined;
    for (const n of byDomain.values()) if (min === undefined || n < min) min = n;
    return { byDomain, domains: domains.count, min };
  }

  /** The pods a constraint counts in each of the given domains, in index order. */
  membersIn(c: SpreadConstraint, domains: ReadonlySet<string>): Map<string, SpreadPod[]> {
    const out = new Map<string, SpreadPod[]>();
    const byNode = this.domainsOf(c).byNode;
    for (const p of this.countable(c)) {
      const d = byNode.get(p.nodeName);
      if (d === undefined || !domains.has(d) || !selectorMatches(c.selector, p.labels)) continue;
      let list = out.get(d);
      if (list === undefined) out.set(d, (list = []));
      list.push(p);
    }
    return out;
  }

  /**
   * The pods a constraint may count (each then counted when its node is an eligible domain
   * and the selector matches it), in index order.
   */
  private countable(c: SpreadConstraint): readonly SpreadPod[] {
    // The scheduler counts nothing for a selector that restricts nothing (`{}`) or selects nothing.
    if (c.selector.kind !== 'requirements' || c.selector.requirements.length === 0) return [];
    return this.candidates(c.namespace, c.selector);
  }

  /**
   * The pods of a namespace a selector may match: those with the value of its narrowest In
   * requirement (the fewest pods: an `app` shared by many workloads loses to a
   * `pod-template-hash`), else those with the key of an Exists, else all.
   */
  private candidates(namespace: string, selector: Selector): readonly SpreadPod[] {
    if (selector.kind === 'nothing') return [];
    let best: readonly SpreadPod[] | undefined;
    for (const r of selector.requirements) {
      if (r.operator !== 'In') continue;
      // A short list is good enough: building the index of another key (every pod of the
      // namespace) to find a shorter one costs more than filtering a few pods.
      if (
        best !== undefined &&
        best.length <= SHORT_ENOUGH &&
        !this.hasLabelIndex(namespace, r.key)
      )
        continue;
      const index = this.labelIndex(namespace, r.key);
      const found =
        r.values.length === 1
          ? (index.get(r.values[0] ?? '') ?? [])
          : r.values.flatMap((v) => index.get(v) ?? []);
      if (best === undefined || found.length < best.length) best = found;
    }
    if (best !== undefined) return best;
    const anchor = selectorAnchor(selector);
    if (anchor.kind === 'key') return [...this.labelIndex(namespace, anchor.key).values()].flat();
    return this.byNamespace.get(namespace) ?? [];
  }

  private hasLabelIndex(namespace: string, key: string): boolean {
    return this.byLabel.get(namespace)?.has(key) === true;
  }

  private labelIndex(namespace: string, key: string): Map<string, SpreadPod[]> {
    let perKey = this.byLabel.get(namespace);
    if (perKey === undefined)
      this.byLabel.set(namespace, (perKey = new Map<string, Map<string, SpreadPod[]>>()));
    let index = perKey.get(key);
    if (index === undefined) {
      index = new Map();
      for (const p of this.byNamespace.get(namespace) ?? []) {
        const v = labelOf(p.labels, key);
        if (v === undefined) continue;
        let list = index.get(v);
        if (list === undefined) index.set(v, (list = []));
        list.push(p);
      }
      perKey.set(key, index);
    }
    return index;
  }
}

/** What the spread judges read of a Pod object. */
export const spreadSubjectOf = (pod: Pod): SpreadSubject => ({
  namespace: pod.metadata.namespace,
  labels: pod.metadata.labels ?? {},
  ...nodeRulesOfPod(pod),
  ...(pod.spec.tolerations ? { tolerations: pod.spec.tolerations } : {}),
  ...(pod.spec.topologySpreadConstraints
    ? { topologySpreadConstraints: pod.spec.topologySpreadConstraints }
    : {}),
});

/**
 * A bound Pod as the spread index holds it; its rules compiled through `cache`; `key` its
 * `namespace/name`. Throws FieldError for constraints the API server would have refused.
 */
export function spreadPodOf(
  pod: Pod,
  cache: SpreadRulesCache,
  key = `${pod.metadata.namespace}/${pod.metadata.name}`,
): SpreadPod {
  return {
    key,
    namespace: pod.metadata.namespace,
    labels: pod.metadata.labels ?? {},
    nodeName: pod.spec.nodeName ?? '',
    ...(pod.metadata.deletionTimestamp ? { terminating: true } : {}),
    rules: cache.rulesOf(spreadSubjectOf(pod)),
  };
}
