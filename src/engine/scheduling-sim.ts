/**
 * A small model of kube-scheduler's filters for pods that do not exist yet: where could
 * one more pod of a workload go, given the pods that run now. It mirrors the
 * InterPodAffinity filter (filtering.go: the incoming pod's anti-affinity, existing pods'
 * anti-affinity against it, and its affinity with the first-pod exception) on top of the
 * node filters of node-eligibility.ts. Feasibility and the rollout simulation both place
 * pods through it, one at a time, as the scheduler does.
 *
 * Long because placing a pod, undoing it and explaining why none fits all walk the same
 * per-node state; the node filters themselves are node-eligibility.ts.
 */
import type { Labels } from '../api/core.ts';
import { labelOf } from './labels.ts';
import type { NodeFacts, PodConstraints } from './node-eligibility.ts';
import type { TermSource } from './placement.ts';
import { selectorAnchor } from './selector.ts';
import { AnchorIndex } from './anchor-index.ts';
import { NO_SPREAD, SpreadIndex, type SpreadPod, type SpreadRules } from './spread-index.ts';
import { termMatches, type ResolvedTerm } from './term.ts';
import type { SpreadMiss } from './topology-spread.ts';
import { PreparedPod, type ClosureRank } from './prepared-pod.ts';
import { Tracked, TrackedRules } from './tracked-rules.ts';

/** A required term and where it is written, as messages name it. */
export interface NamedTerm {
  readonly term: ResolvedTerm;
  readonly source: TermSource;
  /** e.g. `spec.spreadAcross[0]` or `podAntiAffinity[1]`. */
  readonly field: string;
}

/** A pod in the simulated cluster. */
export interface SimPod {
  readonly key: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly nodeName: string;
  /** Its required anti-affinity: the scheduler holds incoming pods to it (symmetry). */
  readonly antiAffinity: readonly NamedTerm[];
  /** The workload it belongs to (`Kind/ns/name`), if any. */
  readonly owner?: string;
  /**
   * A running pod whose workload is being placed anew: it still meets other pods' affinity
   * (it runs until its replacement does), but closes no domain and counts for no spreading,
   * its owner's included. Its anti-affinity is gone with it (`NO_TERMS`).
   */
  readonly ghost?: boolean;
}

/** No terms: what a ghost carries, one frozen value for the thousands of them. */
export const NO_TERMS: readonly NamedTerm[] = Object.freeze([]);

/** What a new pod of a workload carries: where it may go and its required pod terms. */
export interface PodRules {
  readonly affinity: readonly NamedTerm[];
  readonly antiAffinity: readonly NamedTerm[];
  readonly namespace: string;
  readonly labels: Labels;
  readonly constraints: PodConstraints;
  /** Its topologySpreadConstraints; the DoNotSchedule ones are a filter. */
  readonly spread?: NamedSpread;
}

/** Spread constraints compiled against the template, and where each is written. */
export interface NamedSpread {
  readonly rules: SpreadRules;
  /**
   * By position in the template's list: the policy and `spec.spreadAcross[i]` that asked
   * for it, or `pod` and `topologySpreadConstraints[i]`.
   */
  readonly sources: readonly { readonly source: TermSource; readonly field: string }[];
}

/** Why a node cannot take the pod: the first filter that fails, as the scheduler reports it. */
export type Misfit =
  | { readonly kind: 'node' }
  | { readonly kind: 'podAffinity'; readonly term: NamedTerm }
  | { readonly kind: 'podAntiAffinity'; readonly term: NamedTerm }
  | { readonly kind: 'symmetricAntiAffinity'; readonly term: NamedTerm; readonly pod: string }
  | {
      readonly kind: 'topologySpread';
      readonly miss: SpreadMiss;
      readonly source: TermSource;
      readonly field: string;
    };

export type Placement =
  | { readonly kind: 'placed'; readonly node: string }
  /** Why each node refused, in node order (thousands of nodes: a list, not a map by name). */
  | { readonly kind: 'unschedulable'; readonly misfits: readonly Misfit[] };

/** Pods on nodes, indexed by label and by their anti-affinity terms' anchors. */
export class SimCluster {
  readonly nodes: readonly NodeFacts[];
  private readonly nodeByName: ReadonlyMap<string, NodeFacts>;
  private readonly pods = new Map<string, SimPod>();
  /** Pods by the labels they carry: ghosts apart, as only affinity finds them. */
  private readonly byLabel = new LabelIndex(() => this.pods.values(), false);
  private readonly ghostsByLabel = new LabelIndex(() => this.pods.values(), true);
  /** Pods with anti-affinity, filed under the label their terms need. */
  private readonly antiByAnchor = new AnchorIndex<SimPod>();
  /** Owner → node → how many of its pods run there (the spreading score reads it). */
  private readonly byOwner = new Map<string, Map<string, number>>();
  readonly namespaceLabels: (ns: string) => Labels;
  /** Node positions by topology key and value (see `nodesByDomain`). */
  private readonly domainNodes = new Map<string, ReadonlyMap<string, readonly number[]>>();
  /** The pods spread constraints count, once one asks (see `spreadIndexFor`). */
  private spread: SpreadIndex | null = null;
  private readonly spreadPods = new Map<SimPod, SpreadPod>();
  /** Rules kept prepared as pods come and go (see `track`). */
  private readonly tracked = new TrackedRules();
  /** Changes made inside `trying`, to be undone. */
  private journal: (readonly ['added' | 'removed', SimPod])[] | null = null;

  constructor(
    nodes: readonly NodeFacts[],
    pods: Iterable<SimPod>,
    namespaceLabels: (ns: string) => Labels,
  ) {
    this.nodes = [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.nodeByName = new Map(this.nodes.map((n) => [n.name, n]));
    this.namespaceLabels = namespaceLabels;
    for (const p of pods) this.add(p);
  }

  get(key: string): SimPod | undefined {
    return this.pods.get(key);
  }

  node(name: string): NodeFacts | undefined {
    return this.nodeByName.get(name);
  }

  /** Every pod, in no particular order. */
  all(): IterableIterator<SimPod> {
    return this.pods.values();
  }

  /**
   * Runs `f` and then puts every pod back as it was: simulations try things without a copy
   * of the cluster.
   */
  trying<T>(f: () => T): T {
    const outer = this.journal;
    const journal: (readonly ['added' | 'removed', SimPod])[] = [];
    this.journal = journal;
    try {
      return f();
    } finally {
      this.journal = null;
      for (const [op, pod] of journal.reverse()) {
        if (op === 'added') this.remove(pod.key);
        else this.add(pod);
      }
      this.journal = outer;
    }
  }

  add(pod: SimPod): void {
    this.remove(pod.key);
    this.journal?.push(['added', pod]);
    this.pods.set(pod.key, pod);
    this.tracked.podChanged(pod, 'added');
    this.countSpread(pod, 1);
    if (pod.owner !== undefined && pod.ghost !== true) this.countOwner(pod.owner, pod.nodeName, 1);
    (pod.ghost === true ? this.ghostsByLabel : this.byLabel).edit(pod, 1);
    for (const a of pod.antiAffinity) this.antiByAnchor.add(pod, selectorAnchor(a.term.selector));
  }

  /** Takes the pod out; returns it, or undefined when there was none. */
  remove(key: string): SimPod | undefined {
    const pod = this.pods.get(key);
    if (pod === undefined) return undefined;
    this.journal?.push(['removed', pod]);
    this.pods.delete(key);
    this.tracked.podChanged(pod, 'removed');
    this.countSpread(pod, -1);
    if (pod.owner !== undefined && pod.ghost !== true) this.countOwner(pod.owner, pod.nodeName, -1);
    (pod.ghost === true ? this.ghostsByLabel : this.byLabel).edit(pod, -1);
    for (const a of pod.antiAffinity)
      this.antiByAnchor.remove(pod, selectorAnchor(a.term.selector));
    return pod;
  }

  /** The pods filed under a label `term` needs (each once): all it may select, and more. */
  private *filedFor(term: ResolvedTerm, ghosts: boolean): Generator<SimPod> {
    const anchor = selectorAnchor(term.selector);
    const indexes = ghosts ? [this.byLabel, this.ghostsByLabel] : [this.byLabel];
    const pools =
      anchor.kind !== 'values'
        ? [this.pods.values()]
        : indexes.flatMap((index) =>
            anchor.values.map((v) => index.get(anchor.key, v)?.values() ?? [].values()),
          );
    // A pod is in one index, under each of its labels: one value finds it once.
    const seen = anchor.kind === 'values' && anchor.values.length > 1 ? new Set<SimPod>() : null;
    for (const pool of pools)
      for (const p of pool) {
        if (!ghosts && p.ghost === true) continue;
        if (seen !== null) {
          if (seen.has(p)) continue;
          seen.add(p);
        }
        yield p;
      }
  }

  /**
   * What the filters know for one more pod with `rules`, given the pods now: the domains its
   * anti-affinity and others' anti-affinity close, and where its affinity finds a pod that
   * meets all its affinity terms (the scheduler counts only such pods).
   */
  prepare(rules: PodRules): PreparedPod {
    const nsLabels = this.namespaceLabels(rules.namespace);
    const prepared = new PreparedPod(
      rules,
      rules.affinity.every((r) => termMatches(r.term, rules.namespace, rules.labels, nsLabels)),
      this.spreadIndexFor(rules),
    );
    const first = rules.affinity[0];
    const read = new Set<SimPod>();
    for (const a of rules.antiAffinity) for (const p of this.filedFor(a.term, false)) read.add(p);
    if (first !== undefined) for (const p of this.filedFor(first.term, true)) read.add(p);
    // Pods whose anti-affinity may select it (symmetry).
    this.antiByAnchor.forEachCandidate(rules.labels, (p) => read.add(p));
    for (const p of read) this.offer(prepared, p);
    return prepared;
  }

  /**
   * Keeps `prepare(rules)` current as pods come and go: `prepared(tracked)` gives what it
   * would, from the last result and the pods added since, while no pod it may read is
   * removed. `moved` turns true on each change that reaches the rules. `untrack` when done.
   */
  track(rules: PodRules): Tracked {
    const t = new Tracked(rules);
    this.tracked.add(t);
    return t;
  }

  untrack(t: Tracked): void {
    this.tracked.delete(t);
  }

  /** `prepare(t.rules)`; the result is updated in place by the next call. */
  prepared(t: Tracked): PreparedPod {
    if (t.prepared === null) t.prepared = this.prepare(t.rules);
    else for (const p of t.added) this.offer(t.prepared, p);
    t.added = [];
    return t.prepared;
  }

  /**
   * What `pod` closes to or provides for the pod `prepared` is for, as the scheduler's
   * filter counts it: the pod's own anti-affinity against it (ghosts close nothing), its
   * anti-affinity against the pod (symmetry), and whether it meets all the pod's affinity
   * terms, on a node with every term's key.
   */
  private offer(prepared: PreparedPod, pod: SimPod): void {
    const node = this.nodeByName.get(pod.nodeName);
    if (node === undefined) return;
    const { rules } = prepared;
    const nsLabels = this.namespaceLabels(pod.namespace);
    // The pod's own anti-affinity against the placed pod (ghosts close nothing)...
    if (pod.ghost !== true)
      closeWhereSelected(
        prepared,
        node,
        rules.antiAffinity,
        [pod.namespace, pod.labels, nsLabels],
        (a, term) => [
          { kind: 'podAntiAffinity', term: a },
          { own: true, term },
        ],
      );
    // ...and the placed pod's against it (symmetry).
    if (pod.antiAffinity.length > 0)
      closeWhereSelected(
        prepared,
        node,
        pod.antiAffinity,
        [rules.namespace, rules.labels, this.namespaceLabels(rules.namespace)],
        (a, term) => [
          { kind: 'symmetricAntiAffinity', term: a, pod: pod.key },
          { own: false, pod: pod.key, term },
        ],
      );
    if (
      rules.affinity.length > 0 &&
      rules.affinity.every((r) => termMatches(r.term, pod.namespace, pod.labels, nsLabels))
    ) {
      const values = rules.affinity.flatMap((r) => labelOf(node.labels, r.term.topologyKey) ?? []);
      // The scheduler counts a pod only where its node has every term's topology key.
      if (values.length === rules.affinity.length) prepared.provide(values);
    }
  }

  /**
   * The pods as the PodTopologySpread filter counts them, when the pod has a DoNotSchedule
   * constraint: every pod but the ghosts (a workload placed anew no longer counts its old
   * pods). Built when a constraint first asks, then kept as pods come and go: a prepared pod
   * reads the counts as they are when it is asked.
   */
  private spreadIndexFor(rules: PodRules): SpreadIndex | null {
    if ((rules.spread?.rules.hard.length ?? 0) === 0) return null;
    if (this.spread === null) {
      this.spread = new SpreadIndex(this.nodes, []);
      for (const p of this.pods.values()) this.countSpread(p, 1);
    }
    return this.spread;
  }

  private countSpread(pod: SimPod, delta: 1 | -1): void {
    if (this.spread === null || pod.ghost === true) return;
    if (delta > 0) {
      const counted: SpreadPod = {
        key: pod.key,
        namespace: pod.namespace,
        labels: pod.labels,
        nodeName: pod.nodeName,
        rules: NO_SPREAD,
      };
      this.spreadPods.set(pod, counted);
      this.spread.addPod(counted);
    } else {
      const counted = this.spreadPods.get(pod);
      if (counted === undefined) return;
      this.spreadPods.delete(pod);
      this.spread.removePod(counted);
    }
  }

  /**
   * Places one more pod with `rules` the way the scheduler would settle: on a node that
   * passes every filter, preferring the one with the fewest pods of the same owner (the
   * default spreading score), then by name; or on `onto` alone, when given.
   */
  place(
    rules: PodRules,
    owner: string | undefined,
    key: string,
    prepared: PreparedPod = this.prepare(rules),
    onto?: string,
  ): Placement {
    const counts: ReadonlyMap<string, number> =
      owner === undefined ? new Map<string, number>() : this.ownerCounts(owner);
    // The nodes that refused and why, in the order asked: read only when none passes (most
    // pods find a node after a few refusals, and a map of them would be garbage).
    const refusedNodes: string[] = [];
    const refusals: Misfit[] = [];
    const fits = (node: NodeFacts): boolean => {
      const misfit = prepared.misfit(node);
      if (misfit !== null) {
        refusedNodes.push(node.name);
        refusals.push(misfit);
      }
      return misfit === null;
    };
    let best: NodeFacts | undefined;
    /** Where the refusals of the second walk over the nodes start. */
    let firstRun = 0;
    const only = onto === undefined ? undefined : this.nodeByName.get(onto);
    if (onto !== undefined) {
      if (only !== undefined && fits(only)) best = only;
    } else {
      // The first node by name without a pod of the owner wins outright; nodes with some are
      // asked only when none of those passes (the owner runs on few nodes). Only nodes where
      // its affinity finds a pod can pass.
      const asked = this.nodesToAsk(prepared);
      for (const node of asked)
        if (!counts.has(node.name) && fits(node)) {
          best = node;
          break;
        }
      firstRun = refusedNodes.length;
      if (best === undefined) {
        let bestCount = Infinity;
        for (const node of asked) {
          const n = counts.get(node.name);
          if (n !== undefined && n < bestCount && fits(node)) {
            best = node;
            bestCount = n;
          }
        }
      }
    }
    if (best === undefined) {
      // When none passes, every node says why, in node order (`onto` alone when given). Each
      // walk above asked its nodes in that order, so its refusals are a run of it: the two
      // runs are merged as the nodes are listed, and a node neither asked is asked now.
      const misfits: Misfit[] = [];
      let first = 0;
      let second = firstRun;
      for (const node of onto === undefined ? this.nodes : only === undefined ? [] : [only]) {
        let m: Misfit | null | undefined;
        if (first < firstRun && refusedNodes[first] === node.name) m = refusals[first++];
        else if (refusedNodes[second] === node.name) m = refusals[second++];
        m ??= prepared.misfit(node);
        if (m !== null) misfits.push(m);
      }
      return { kind: 'unschedulable', misfits };
    }
    this.add({
      key,
      namespace: rules.namespace,
      labels: rules.labels,
      nodeName: best.name,
      antiAffinity: rules.antiAffinity,
      ...(owner === undefined ? {} : { owner }),
    });
    return { kind: 'placed', node: best.name };
  }

  /**
   * The nodes, in name order, that may pass `prepared`: those in a domain where its first
   * affinity term finds a pod, when that narrows them much; otherwise all.
   */
  private nodesToAsk(prepared: PreparedPod): readonly NodeFacts[] {
    const domains = prepared.affinityDomains();
    if (domains === null) return this.nodes;
    const byValue = this.nodesByDomain(domains.key);
    const at: number[] = [];
    for (const v of domains.values) {
      const list = byValue.get(v) ?? [];
      // Sorting more than a few nodes costs more than asking every node.
      if (at.length + list.length > this.nodes.length / 8) return this.nodes;
      at.push(...list);
    }
    return at.sort((a, b) => a - b).flatMap((i) => this.nodes[i] ?? []);
  }

  /** Positions of the nodes (in name order) by their value of `key`. */
  private nodesByDomain(key: string): ReadonlyMap<string, readonly number[]> {
    let byValue = this.domainNodes.get(key);
    if (byValue === undefined) {
      const built = new Map<string, number[]>();
      this.nodes.forEach((n, i) => {
        const v = labelOf(n.labels, key);
        if (v === undefined) return;
        const list = built.get(v) ?? [];
        list.push(i);
        built.set(v, list);
      });
      byValue = built;
      this.domainNodes.set(key, byValue);
    }
    return byValue;
  }

  /** Pods of `owner` per node. */
  ownerCounts(owner: string): ReadonlyMap<string, number> {
    return this.byOwner.get(owner) ?? new Map<string, number>();
  }

  private countOwner(owner: string, node: string, delta: 1 | -1): void {
    const counts = this.byOwner.get(owner) ?? new Map<string, number>();
    const n = (counts.get(node) ?? 0) + delta;
    if (n > 0) counts.set(node, n);
    else counts.delete(node);
    if (counts.size > 0) this.byOwner.set(owner, counts);
    else this.byOwner.delete(owner);
  }
}

/**
 * Pods (ghosts or the others) by the labels they carry, key then value; a key is indexed from
 * the first time it is asked for: few keys are ever asked, and pods come and go by thousands.
 */
class LabelIndex {
  private readonly byKey = new Map<string, Map<string, Set<SimPod>>>();
  private readonly all: () => Iterable<SimPod>;
  private readonly ghosts: boolean;

  constructor(all: () => Iterable<SimPod>, ghosts: boolean) {
    this.all = all;
    this.ghosts = ghosts;
  }

  get(key: string, value: string): ReadonlySet<SimPod> | undefined {
    let byValue = this.byKey.get(key);
    if (byValue === undefined) {
      byValue = new Map();
      this.byKey.set(key, byValue);
      for (const p of this.all()) {
        const v = p.labels[key];
        if (v !== undefined && (p.ghost === true) === this.ghosts) file(byValue, v, p, 1);
      }
    }
    return byValue.get(value);
  }

  edit(pod: SimPod, op: 1 | -1): void {
    for (const [key, byValue] of this.byKey) {
      const value = pod.labels[key];
      if (value !== undefined) file(byValue, value, pod, op);
    }
  }
}

function file<K>(map: Map<K, Set<SimPod>>, key: K, pod: SimPod, op: 1 | -1): void {
  const set = map.get(key);
  if (op === 1) {
    if (set === undefined) map.set(key, new Set([pod]));
    else set.add(pod);
  } else if (set !== undefined) {
    set.delete(pod);
    if (set.size === 0) map.delete(key);
  }
}

/** `PlacementPolicy shop/x spec.spreadAcross[0]` or `its own podAntiAffinity[1]`. */
export const termName = (t: Pick<NamedTerm, 'source' | 'field'>): string =>
  t.source === 'pod' ? `its own ${t.field}` : `${t.source} ${t.field}`;

/** One line per distinct reason, with how many nodes gave it, most first. */
export function describeMisfits(misfits: readonly Misfit[]): string {
  const counts = new Map<string, number>();
  // Thousands of nodes give a few reasons: a node rule's or a term's text is written once.
  const written = new Map<Misfit['kind'], Map<NamedTerm | null, string>>();
  const textOf = (m: Misfit, by: NamedTerm | null): string => {
    const memo = written.get(m.kind) ?? new Map<NamedTerm | null, string>();
    written.set(m.kind, memo);
    let text = memo.get(by);
    if (text === undefined) {
      text = misfitText(m);
      memo.set(by, text);
    }
    return text;
  };
  for (const m of misfits.values()) {
    const text =
      m.kind === 'node'
        ? textOf(m, null)
        : m.kind === 'podAffinity' || m.kind === 'podAntiAffinity'
          ? textOf(m, m.term)
          : misfitText(m);
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  if (counts.size === 0) return 'no node is eligible';
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([text, n]) => `${n} node(s) ${text}`)
    .join('; ');
}

function misfitText(m: Misfit): string {
  switch (m.kind) {
    case 'node':
      return 'are ruled out by its nodeSelector, node affinity, taints or a cordon';
    case 'podAffinity':
      return `have no pod that required podAffinity ${termName(m.term)} selects in their ${m.term.term.topologyKey} domain`;
    case 'podAntiAffinity':
      return `already run a pod that required podAntiAffinity ${termName(m.term)} forbids in the same ${m.term.term.topologyKey} domain`;
    case 'symmetricAntiAffinity':
      return `share a ${m.term.term.topologyKey} domain with a pod whose required podAntiAffinity forbids it (${m.pod})`;
    case 'topologySpread':
      return m.miss.reason === 'missingTopologyLabel'
        ? `have no label ${m.miss.topologyKey}, which topologySpreadConstraint ${termName(m)} requires`
        : `would break topologySpreadConstraint ${termName(m)}: its ${m.miss.topologyKey} domain would hold ${m.miss.count + m.miss.self} of the pods it counts, the least-loaded ${m.miss.min}: skew ${m.miss.count + m.miss.self - m.miss.min} > maxSkew ${m.miss.maxSkew}`;
  }
}

/**
 * Closes, on `node`, the domain of each anti-affinity term that selects a pod of
 * `namespace` with `labels` (`nsLabels` its namespace's labels), with the misfit and rank
 * `why` gives for the term and its position.
 */
function closeWhereSelected(
  prepared: PreparedPod,
  node: { readonly labels: Labels },
  terms: readonly NamedTerm[],
  [namespace, labels, nsLabels]: readonly [string, Labels, Labels],
  why: (term: NamedTerm, position: number) => readonly [Misfit, ClosureRank],
): void {
  terms.forEach((a, position) => {
    const value = labelOf(node.labels, a.term.topologyKey);
    if (value !== undefined && termMatches(a.term, namespace, labels, nsLabels))
      prepared.close(a.term.topologyKey, value, ...why(a, position));
  });
}
