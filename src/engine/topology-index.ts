/**
 * The index of every placed pod the inter-pod affinity judges read: for every group of terms
 * some pod uses, the matching pods per topology domain, and which pods carry each
 * anti-affinity term, kept current as pods, nodes and namespaces come and go.
 *
 * Long because it is one class whose maps (pods by node, namespace and label; match groups;
 * anchors) are kept consistent with each other by every update; the judges that read it are
 * verdict.ts, and the group and anchor structures are match-group.ts and anchor-index.ts.
 */
import type { Labels } from '../api/core.ts';
import { AnchorIndex, editSet } from './anchor-index.ts';
import { MatchGroup } from './match-group.ts';
import type { PodPlacement, SourcedTerm } from './placement.ts';
import { selectorAnchor, type SelectorAnchor } from './selector.ts';
import { termMatches, type ResolvedTerm } from './term.ts';
import { labelOf } from './labels.ts';

const NO_LABELS: Labels = Object.freeze({});
const NO_GROUPS: ReadonlyMap<string, MatchGroup<IndexedPod>> = new Map();
const NO_ANTI_TERMS: ReadonlyMap<string, SourcedTerm> = new Map();

/** A pod held by the index, with the groups it uses. */
export interface IndexedPod {
  readonly pod: PodPlacement;
  /** The labels of its node (a node change takes its pods out and puts them back). */
  readonly nodeLabels: Labels;
  /** The group of all its required podAffinity terms, if it has any. */
  readonly affinityGroup: MatchGroup<IndexedPod> | null;
  /** Single-term groups for its anti-affinity and preferred terms, by term id. */
  readonly termGroups: ReadonlyMap<string, MatchGroup<IndexedPod>>;
  /** Its required anti-affinity terms by term id: what it asks of its neighbours. */
  readonly antiById: ReadonlyMap<string, SourcedTerm>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * One change the index made, told to its observer right after it is made (a replaced pod is
 * taken out, then put back; a relabelled node or namespace takes its pods out and back).
 */
export type IndexChange =
  | { readonly kind: 'pod'; readonly entry: IndexedPod; readonly delta: 1 | -1 }
  | {
      readonly kind: 'node' | 'namespace';
      readonly name: string;
      readonly before: Labels | undefined;
      readonly after: Labels | undefined;
    }
  /** A group's count moved by `delta` in every domain of a node with `nodeLabels`. */
  | {
      readonly kind: 'counted';
      readonly group: MatchGroup<IndexedPod>;
      readonly nodeLabels: Labels;
      readonly delta: 1 | -1;
    }
  /** A pod carrying `group`'s term as required anti-affinity entered or left domain `value`. */
  | {
      readonly kind: 'carried';
      readonly group: MatchGroup<IndexedPod>;
      readonly value: string;
      readonly carrier: IndexedPod;
      readonly delta: 1 | -1;
    };

export type IndexObserver = (change: IndexChange) => void;

/**
 * The cluster as the InterPodAffinity filter sees it, kept up to date one change at a
 * time: for every term some pod uses, how many pods match it in each topology domain,
 * and which pods carry each anti-affinity term in each domain. Judging a pod is then a
 * few map look-ups (see verdict.ts).
 */
export class TopologyIndex {
  private readonly nodes = new Map<string, Labels>();
  private readonly namespaces = new Map<string, Labels>();
  private readonly pods = new Map<string, IndexedPod>();
  /**
   * node → pods and namespace → pods: the pods a relabel moves. Listed from the first relabel
   * of a node or namespace that has pods on (null until then), not during a build: a build
   * adds every pod and relabels nothing, and at 150,000 pods these two listings were a quarter
   * of its time.
   */
  private podsByNode: Map<string, Set<IndexedPod>> | null = null;
  private podsByNamespace: Map<string, Set<IndexedPod>> | null = null;
  /**
   * label key → value → pods: finds the pods a new group can select. Only the keys some
   * group has been anchored on are listed (from the first such group on), not every label
   * of every pod.
   */
  private readonly podsByLabel = new Map<string, Map<string | undefined, Set<IndexedPod>>>();
  private readonly groups = new Map<string, MatchGroup<IndexedPod>>();
  /** Every group, filed by anchor: finds the groups a pod can match. */
  private readonly anchors = new AnchorIndex<MatchGroup<IndexedPod>>();
  /** The groups some pod carries as required anti-affinity: the symmetric check needs only these. */
  private readonly antiAnchors = new AnchorIndex<MatchGroup<IndexedPod>>();
  private observer: IndexObserver | null = null;

  /** Tells `observer` of every change from now on (one observer; null: none). */
  observe(observer: IndexObserver | null): void {
    this.observer = observer;
  }

  // ---- reads ----

  nodeLabels(name: string): Labels {
    return this.nodes.get(name) ?? NO_LABELS;
  }

  namespaceLabels(name: string): Labels {
    return this.namespaces.get(name) ?? NO_LABELS;
  }

  get(podKey: string): IndexedPod | undefined {
    return this.pods.get(podKey);
  }

  allPods(): IterableIterator<IndexedPod> {
    return this.pods.values();
  }

  get size(): { pods: number; nodes: number; namespaces: number; groups: number } {
    return {
      pods: this.pods.size,
      nodes: this.nodes.size,
      namespaces: this.namespaces.size,
      groups: this.groups.size,
    };
  }

  /** Whether `term` selects the pod, with the pod's namespace labels as the index knows them. */
  selects(term: ResolvedTerm, pod: PodPlacement): boolean {
    return termMatches(term, pod.namespace, pod.labels, this.namespaceLabels(pod.namespace));
  }

  groupSelects(group: MatchGroup<IndexedPod>, pod: PodPlacement): boolean {
    if (group.selectsNothing) return false;
    return group.terms.every((t) => this.selects(t, pod));
  }

  /** Calls `f` with each group whose selectors could select a pod with these labels (a superset, never missing one). */
  eachCandidateGroup(labels: Labels, f: (group: MatchGroup<IndexedPod>) => void): void {
    this.anchors.forEachCandidate(labels, f);
  }

  /** Like eachCandidateGroup, among the groups that are some pod's required anti-affinity. */
  eachCandidateAntiGroup(labels: Labels, f: (group: MatchGroup<IndexedPod>) => void): void {
    this.antiAnchors.forEachCandidate(labels, f);
  }

  // ---- writes ----

  /** Adds or replaces a node; pods on it move to its new domains. */
  setNode(name: string, labels: Labels): void {
    this.relabel('node', this.nodes, name, labels, this.podsOn('node', name));
  }

  removeNode(name: string): void {
    this.relabel('node', this.nodes, name, undefined, this.podsOn('node', name));
  }

  /** Adds or replaces a namespace; its pods are matched again against namespace selectors. */
  setNamespace(name: string, labels: Labels): void {
    this.relabel('namespace', this.namespaces, name, labels, this.podsOn('namespace', name));
  }

  removeNamespace(name: string): void {
    this.relabel('namespace', this.namespaces, name, undefined, this.podsOn('namespace', name));
  }

  /** Adds a bound pod, or replaces the pod with the same key. */
  upsertPod(pod: PodPlacement): void {
    const existing = this.pods.get(pod.key);
    if (existing === undefined) {
      this.add(pod); // a new pod (every pod of a build): nothing to take out first
      return;
    }
    this.keepingGroups([existing], () => {
      this.removePod(pod.key);
      this.add(pod);
    });
  }

  removePod(key: string): void {
    const entry = this.pods.get(key);
    if (entry === undefined) return;
    // Told first: the observer still finds the pod's groups and domains as they were.
    this.observer?.({ kind: 'pod', entry, delta: -1 });
    this.releaseGroups(entry);
    this.unlist(entry);
    this.countIn(entry, -1);
  }

  // ---- internals ----

  /** Sets (or, with undefined, removes) a node's or namespace's labels, re-indexing its pods. */
  private relabel(
    kind: 'node' | 'namespace',
    map: Map<string, Labels>,
    name: string,
    after: Labels | undefined,
    affected: Set<IndexedPod> | undefined,
  ): void {
    const before = map.get(name);
    this.reindex(affected, () => {
      if (after === undefined) map.delete(name);
      else map.set(name, after);
    });
    this.observer?.({ kind, name, before, after });
  }

  /** Takes pods out with the old labels and puts them back with the new ones. */
  private reindex(affected: Set<IndexedPod> | undefined, change: () => void): void {
    const entries = affected ? [...affected] : [];
    this.keepingGroups(entries, () => {
      for (const e of entries) this.removePod(e.pod.key);
      change();
      for (const e of entries) this.add(e.pod);
    });
  }

  /**
   * Runs `f` with the groups these pods use held, so taking a pod out and back does not
   * drop a group it alone uses and then rebuild it by scanning every pod.
   */
  private keepingGroups(entries: readonly IndexedPod[], f: () => void): void {
    const held = new Set<MatchGroup<IndexedPod>>();
    for (const e of entries) {
      if (e.affinityGroup) held.add(e.affinityGroup);
      for (const g of e.termGroups.values()) held.add(g);
    }
    for (const g of held) g.refs++;
    try {
      f();
    } finally {
      for (const g of held) this.release(g);
    }
  }

  private add(pod: PodPlacement): void {
    const singles = [pod.antiAffinity, pod.preferredAffinity, pod.preferredAntiAffinity];
    const nodeLabels = this.nodeLabels(pod.nodeName);
    const entry: Mutable<IndexedPod> = {
      pod,
      nodeLabels,
      affinityGroup: null,
      // Most pods have no such terms: they share one empty map, which nothing fills.
      termGroups: singles.some((list) => list.length > 0) ? new Map() : NO_GROUPS,
      antiById:
        pod.antiAffinity.length > 0
          ? new Map(pod.antiAffinity.map((s) => [s.term.id, s]))
          : NO_ANTI_TERMS,
    };
    // Count the pod in the groups that exist already, then list it, then create its own
    // groups: a new group counts every listed pod, this one included, exactly once.
    this.countIn(entry, 1);
    this.list(entry);
    if (pod.affinity.length > 0)
      entry.affinityGroup = this.acquire(pod.affinity.map((s) => s.term));
    const groups = entry.termGroups as Map<string, MatchGroup<IndexedPod>>;
    for (const list of singles) {
      for (const s of list) {
        if (!groups.has(s.term.id)) groups.set(s.term.id, this.acquire([s.term]));
      }
    }
    for (const s of entry.antiById.values()) {
      const group = groups.get(s.term.id);
      if (group === undefined) continue;
      if (group.antiRefs++ === 0 && !group.selectsNothing)
        this.antiAnchors.add(group, group.anchor);
      const value = labelOf(nodeLabels, s.term.topologyKey);
      if (value === undefined) continue;
      group.addCarrier(value, entry);
      this.observer?.({ kind: 'carried', group, value, carrier: entry, delta: 1 });
    }
    this.observer?.({ kind: 'pod', entry, delta: 1 });
  }

  private countIn(entry: IndexedPod, delta: 1 | -1): void {
    this.eachCandidateGroup(entry.pod.labels, (group) => {
      if (this.groupSelects(group, entry.pod)) this.bump(group, entry.nodeLabels, delta);
    });
  }

  private bump(group: MatchGroup<IndexedPod>, nodeLabels: Labels, delta: 1 | -1): void {
    group.bump(nodeLabels, delta);
    this.observer?.({ kind: 'counted', group, nodeLabels, delta });
  }

  private releaseGroups(entry: IndexedPod): void {
    for (const s of entry.antiById.values()) {
      const group = entry.termGroups.get(s.term.id);
      if (group === undefined) continue;
      const value = labelOf(entry.nodeLabels, s.term.topologyKey);
      if (value !== undefined) {
        group.removeCarrier(value, entry);
        this.observer?.({ kind: 'carried', group, value, carrier: entry, delta: -1 });
      }
      if (--group.antiRefs === 0 && !group.selectsNothing)
        this.antiAnchors.remove(group, group.anchor);
    }
    if (entry.affinityGroup) this.release(entry.affinityGroup);
    for (const group of entry.termGroups.values()) this.release(group);
  }

  private acquire(terms: readonly ResolvedTerm[]): MatchGroup<IndexedPod> {
    const id = MatchGroup.idOf(terms);
    const existing = this.groups.get(id);
    if (existing) {
      existing.refs++;
      return existing;
    }
    const group = new MatchGroup<IndexedPod>(id, terms);
    group.refs = 1;
    this.groups.set(id, group);
    if (!group.selectsNothing) {
      this.anchors.add(group, group.anchor);
      for (const entry of this.candidatePods(group)) {
        if (this.groupSelects(group, entry.pod)) this.bump(group, entry.nodeLabels, 1);
      }
    }
    return group;
  }

  private release(group: MatchGroup<IndexedPod>): void {
    group.refs--;
    if (group.refs > 0) return;
    this.groups.delete(group.id);
    if (!group.selectsNothing) this.anchors.remove(group, group.anchor);
  }

  /** Placed pods that `term` selects. */
  *podsSelectedBy(term: ResolvedTerm): Generator<PodPlacement> {
    for (const entry of this.entriesSelectedBy(term)) yield entry.pod;
  }

  /** The indexed pods that `term` selects. */
  *entriesSelectedBy(term: ResolvedTerm): Generator<IndexedPod> {
    if (term.selector.kind === 'nothing') return;
    for (const entry of this.podsWithAnchor(selectorAnchor(term.selector))) {
      if (this.selects(term, entry.pod)) yield entry;
    }
  }

  private candidatePods(group: MatchGroup<IndexedPod>): Generator<IndexedPod> {
    return this.podsWithAnchor(group.anchor);
  }

  /** Pods that carry the anchor's label (all pods for no anchor). */
  private *podsWithAnchor(a: SelectorAnchor): Generator<IndexedPod> {
    if (a.kind === 'none') {
      yield* this.pods.values();
      return;
    }
    const byValue = this.podsByLabel.get(a.key) ?? this.listKey(a.key);
    if (a.kind === 'key') {
      for (const set of byValue.values()) yield* set;
      return;
    }
    for (const v of a.values) {
      const set = byValue.get(v);
      if (set) yield* set;
    }
  }

  /**
   * The pods on node or in namespace `name`. The first call lists every pod by node and by
   * namespace, in the order of `pods` (the order list() would have kept); from then on list()
   * and unlist() keep both listings.
   */
  private podsOn(kind: 'node' | 'namespace', name: string): Set<IndexedPod> | undefined {
    if (this.podsByNode === null || this.podsByNamespace === null) {
      if (this.pods.size === 0) return undefined;
      this.podsByNode = new Map();
      this.podsByNamespace = new Map();
      for (const entry of this.pods.values()) {
        editSet(this.podsByNode, entry.pod.nodeName, entry, 1);
        editSet(this.podsByNamespace, entry.pod.namespace, entry, 1);
      }
    }
    return (kind === 'node' ? this.podsByNode : this.podsByNamespace).get(name);
  }

  private list(entry: IndexedPod): void {
    const { pod } = entry;
    this.pods.set(pod.key, entry);
    if (this.podsByNode !== null && this.podsByNamespace !== null) {
      editSet(this.podsByNode, pod.nodeName, entry, 1);
      editSet(this.podsByNamespace, pod.namespace, entry, 1);
    }
    for (const key of Object.keys(pod.labels)) {
      const byValue = this.podsByLabel.get(key);
      if (byValue !== undefined) editSet(byValue, labelOf(pod.labels, key), entry, 1);
    }
  }

  private unlist(entry: IndexedPod): void {
    const { pod } = entry;
    this.pods.delete(pod.key);
    if (this.podsByNode !== null && this.podsByNamespace !== null) {
      editSet(this.podsByNode, pod.nodeName, entry, -1);
      editSet(this.podsByNamespace, pod.namespace, entry, -1);
    }
    for (const key of Object.keys(pod.labels)) {
      const byValue = this.podsByLabel.get(key);
      if (byValue !== undefined) editSet(byValue, labelOf(pod.labels, key), entry, -1);
    }
  }

  /** Starts listing pods by the value of `key`, with the pods there are now. */
  private listKey(key: string): Map<string | undefined, Set<IndexedPod>> {
    const byValue = new Map<string | undefined, Set<IndexedPod>>();
    this.podsByLabel.set(key, byValue);
    for (const entry of this.pods.values()) {
      // What list() would have listed: own enumerable labels, as Object.keys gives them.
      if (Object.prototype.propertyIsEnumerable.call(entry.pod.labels, key))
        editSet(byValue, labelOf(entry.pod.labels, key), entry, 1);
    }
    return byValue;
  }

  /**
   * A canonical description of every count, for comparing two indexes of the same cluster
   * (the incremental one and one rebuilt from scratch).
   */
  describe(): string {
    const lines: string[] = [];
    for (const group of [...this.groups.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const counts = [...group.counts]
        .map(
          ([k, m]) =>
            `${k}{${[...m]
              .sort()
              .map(([v, n]) => `${v}:${n}`)
              .join(',')}}`,
        )
        .sort();
      const carriers = [...group.carriers]
        .map(
          ([v, s]) =>
            `${v}:${[...s]
              .map((e) => e.pod.key)
              .sort()
              .join('+')}`,
        )
        .sort();
      lines.push(
        `${group.id} refs=${group.refs} counts=${counts.join(';')} carriers=${carriers.join(';')}`,
      );
    }
    return lines.join('\n');
  }
}
