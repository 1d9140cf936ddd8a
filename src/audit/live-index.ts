/**
 * The audit's index of every placed pod, kept current from the informers, and the last
 * feasibility result, kept until something it read changes: a workload, a policy, a
 * namespace's labels, a node label whose domains it counted, or what it read of a pod (which
 * of its look-ups for running pods find it, where it runs, its anti-affinity, its workload).
 * Pods and nodes are compared as they were when the result was computed and as they are
 * when it is next asked for, so that a change undone in between costs nothing. Cache upkeep
 * only: judging happens in the pass.
 *
 * Long because every kind of object the feasibility result reads (workloads, policies,
 * namespaces, nodes, pods) has its own rule for when a change makes that result stale, and
 * the rules share one record of what was read.
 */
import type { Labels, Namespace, Node, Pod } from '../api/core.ts';
import {
  buildIndexSteps,
  feasibilitySteps,
  feasibilityTargetOf,
  FeasibilityReads,
  managedByDeployment,
  workloadRef,
  isPlaced,
  nodeFacts,
  placementOf,
  podKey,
  policyTargets,
  workloadOfPod,
  type CompiledPolicy,
  type Feasibility,
  type FeasibilityTarget,
  type NodeFacts,
  type PodPlacement,
  type PodConstraints,
  type TopologyIndex,
  type WorkloadFinder,
  type WorkloadObject,
  type WorkloadRef,
} from '../engine/index.ts';
import {
  workloadKey,
  type Store,
  type WatchEvent,
  type Workload,
  type Source,
} from '../api/cluster.ts';
import { jsonEqual, sameLabels } from '../util/json.ts';
import { audited } from './findings.ts';
import { runAll, runSliced, runSlicedUnless, type Steps } from '../util/steps.ts';
import type { Logger } from '../util/logger.ts';

/** How often the audit did its work; tests and benchmarks read these. */
export interface AuditStats {
  /** Incremental index or kept feasibility and a computation from scratch disagreed (should stay 0). */
  mismatches: number;
  evaluations: number;
  /** Feasibility computations; passes after changes it did not read keep the last result. */
  feasibilityRuns: number;
  /** Of those, the ones stopped before the end: something they read changed meanwhile. */
  feasibilityStopped: number;
}

/** Stats with nothing counted yet. */
export function newAuditStats(): AuditStats {
  return { mismatches: 0, evaluations: 0, feasibilityRuns: 0, feasibilityStopped: 0 };
}

export interface LiveIndexDeps {
  readonly pods: Source<Pod>;
  readonly nodes: Source<Node>;
  readonly namespaces: Source<Namespace>;
  readonly workloads: readonly Source<Workload>[];
  /** The valid policies, highest priority first; a new array whenever they change. */
  readonly policies: () => readonly CompiledPolicy[];
  readonly log: Logger;
}

/** Workloads as ownership needs them, read from the workload informers. */
class WorkloadStores implements WorkloadFinder {
  private readonly stores: readonly Store<Workload>[];

  constructor(stores: readonly Store<Workload>[]) {
    this.stores = stores;
  }

  get(kind: string, namespace: string, name: string): WorkloadObject | undefined {
    const key = workloadKey({ kind, namespace, name });
    for (const s of this.stores) {
      const w = s.get(key);
      if (w !== undefined) return asObject(w);
    }
    return undefined;
  }
}

function asObject(w: Workload): WorkloadObject {
  return {
    kind: w.kind,
    metadata: { name: w.name, namespace: w.namespace, ownerReferences: w.ownerReferences },
    spec: {
      ...(w.selector === undefined ? {} : { selector: w.selector }),
      template: { metadata: { labels: w.templateLabels } },
    },
  };
}

export class LiveIndex {
  private readonly deps: LiveIndexDeps;
  private readonly stats: AuditStats;
  readonly finder: WorkloadFinder;
  private current: TopologyIndex | null = null;
  private placedWith: readonly CompiledPolicy[] | null = null;
  /** The audited ones of `placedWith`: the policies whose terms pods are judged by. */
  private judgedBy: readonly CompiledPolicy[] = [];
  /** The last feasibility result, until something it read changes (then null). */
  private feasible: Feasibility | null = null;
  /**
   * What changed since the state the kept (or running) feasibility computation read: each
   * pod and node as it was then (undefined: absent), and whether anything else it reads
   * (a workload, a namespace's labels, the index itself) changed.
   */
  private since = new Changes();
  /** Changes heard so far: a running computation looks at `since` again only after one. */
  private heard = 0;

  constructor(deps: LiveIndexDeps, stats: AuditStats) {
    this.deps = deps;
    this.stats = stats;
    this.finder = new WorkloadStores(deps.workloads);
  }

  get index(): TopologyIndex | null {
    return this.current;
  }

  /** The policy array the index was placed with. */
  get policies(): readonly CompiledPolicy[] | null {
    return this.placedWith;
  }

  /** The kept feasibility result, if nothing it read has changed since. */
  get kept(): Feasibility | null {
    const kept = this.feasible;
    if (kept !== null && !this.unchangedFor(kept.reads)) this.feasible = null;
    return this.feasible;
  }

  /** The workload of a pod (the pod itself for a bare pod). */
  workloadOf(pod: Pod): WorkloadRef {
    return workloadOfPod(pod, this.finder);
  }

  /** The workload of a pod by key; a pod gone from the cache is judged as a bare pod of its namespace. */
  workloadOfKey(key: string): WorkloadRef {
    const pod = this.deps.pods.get(key);
    if (pod !== undefined) return this.workloadOf(pod);
    const [namespace = '', name = ''] = key.split('/');
    return { kind: 'Pod', namespace, name, templateLabels: {}, podSelector: {} };
  }

  /** An index built from scratch from the caches, for `policies`. */
  build(policies: readonly CompiledPolicy[]): TopologyIndex {
    return runAll(this.buildSteps(policies));
  }

  /**
   * build(policies), yielding between pods. The
   * caches are listed at the start; the workloads are read as they are when each pod is placed.
   */
  buildSteps(policies: readonly CompiledPolicy[]): Steps<TopologyIndex> {
    return buildIndexSteps(this.snapshot(), audited(policies), this.finder);
  }

  /** Takes `index`, built by build(policies), and the feasibility computed on it. */
  install(
    index: TopologyIndex,
    policies: readonly CompiledPolicy[],
    feasible: Feasibility | null,
  ): void {
    this.current = index;
    this.placedWith = policies;
    this.judgedBy = audited(policies);
    this.feasible = feasible;
    this.since = new Changes();
    if (feasible === null) this.since.other = true;
  }

  /** Builds the index anew from the caches for `policies`, in slices of about `sliceMs`. */
  async rebuild(policies: readonly CompiledPolicy[], sliceMs: number): Promise<void> {
    this.install(await runSliced(this.buildSteps(policies), sliceMs), policies, null);
  }

  /**
   * Judges pods by a new set of policies: only the pods of workloads that a policy added,
   * removed or changed targets (before or now) get other terms, so only they are placed again.
   * A policy that stays is the same object, and keeps its place in the priority order.
   */
  adopt(policies: readonly CompiledPolicy[]): void {
    const index = this.current;
    if (index === null) {
      this.install(this.build(policies), policies, null);
      return;
    }
    const judgedBy = audited(policies);
    const before = new Set(this.judgedBy);
    const now = new Set(judgedBy);
    const changed = [
      ...this.judgedBy.filter((p) => !now.has(p)),
      ...judgedBy.filter((p) => !before.has(p)),
    ];
    this.feasible = null;
    this.since.other = true;
    this.placedWith = policies;
    this.judgedBy = judgedBy;
    if (changed.length === 0) return;
    for (const pod of this.deps.pods.list()) {
      if (!isPlaced(pod)) continue;
      const workload = workloadOfPod(pod, this.finder);
      const nsLabels = index.namespaceLabels(pod.metadata.namespace);
      if (changed.some((p) => policyTargets(p, workload, nsLabels))) this.place(pod);
    }
  }

  /**
   * The feasibility result for the index: the kept one, or a new one (always, `fromScratch`),
   * computed in slices of about `sliceMs` between which the event loop runs. Null when there
   * is no index, or when something the new result read changed while it was computed: that
   * result is stale and is not kept (the next pass computes again), and the computation stops
   * at the first slice boundary after the change.
   */
  async feasibility(fromScratch: boolean, sliceMs: number): Promise<Feasibility | null> {
    if (!fromScratch && this.kept !== null) {
      this.since = new Changes();
      return this.feasible;
    }
    const policies = this.placedWith;
    if (this.current === null || policies === null) return null;
    return this.computeFeasibility(policies, sliceMs);
  }

  /**
   * Computes feasibility on the index for `policies` (the ones it was placed with), keeps
   * and returns it; null when it is stale by the time it is done (see `feasibility`).
   */
  async computeFeasibility(
    policies: readonly CompiledPolicy[],
    sliceMs: number,
  ): Promise<Feasibility | null> {
    const index = this.current;
    if (index === null) return null;
    this.stats.feasibilityRuns++;
    this.feasible = null;
    this.since = new Changes();
    const targets: FeasibilityTarget[] = [];
    const nsLabels = (ns: string): Labels => index.namespaceLabels(ns);
    for (const store of this.deps.workloads) {
      for (const w of store.list()) {
        if (managedByDeployment(w)) continue;
        const ref = workloadRef(w);
        // Workloads no policy targets are listed too: their pods may be what another
        // workload's affinity waits for, and they can start first.
        const targeting = policies.filter((p) => policyTargets(p, ref, nsLabels(w.namespace)));
        targets.push(feasibilityTargetOf(w, targeting));
      }
    }
    const nodes = this.deps.nodes.list().map(nodeFacts);
    // Every read is noted before the first slice ends: stale from then on, it stops.
    const reads = new FeasibilityReads();
    const stale = (): boolean =>
      this.current !== index || this.placedWith !== policies || !this.unchangedFor(reads);
    let heard = -1;
    const done = await runSlicedUnless(
      feasibilitySteps(targets, index, nodes, nsLabels, reads),
      sliceMs,
      // Looked at again only after a change, so that long computations cost no more.
      () => heard !== (heard = this.heard) && stale(),
    );
    if (done === null) this.stats.feasibilityStopped++;
    if (done === null || stale()) return null;
    const result = done.value;
    this.feasible = result;
    this.since = new Changes();
    return result;
  }

  /** Whether nothing `reads` names changed since it was noted (or last found unchanged). */
  private unchangedFor(reads: FeasibilityReads): boolean {
    const { since, current: index } = this;
    if (since.other) return false;
    if (index === null) return since.pods.size === 0;
    const pods = [...since.pods].map(([key, before]) => [before, index.get(key)?.pod] as const);
    if (reads.podsChanged(pods, index)) return false;
    for (const [name, before] of since.nodes) {
      const node = this.deps.nodes.get(name);
      if (reads.domainsMoved(before, node && nodeFacts(node))) return false;
    }
    return true;
  }

  // ---- what each change does to the index and the kept result; true: judge again ----

  onPod(e: WatchEvent<Pod>): boolean {
    this.heard++;
    const index = this.current;
    if (e.type !== 'deleted') this.place(e.object);
    else if (index !== null)
      this.changingPod(index, podKey(e.object), () => {
        index.removePod(podKey(e.object));
      });
    return true;
  }

  onNode(e: WatchEvent<Node>): boolean {
    this.heard++;
    const name = e.object.metadata.name;
    const labels = e.object.metadata.labels ?? {};
    const relabelled = e.type !== 'updated' || !sameLabels(e.old?.metadata.labels, labels);
    if (e.type === 'deleted') this.current?.removeNode(name);
    else if (relabelled) this.current?.setNode(name, labels);
    // Feasibility counts domains over the nodes pods may use; an update without the old
    // node may have moved anything.
    const before = e.type === 'added' ? undefined : e.type === 'deleted' ? e.object : e.old;
    const after = e.type === 'deleted' ? undefined : e.object;
    const unknown = e.type === 'updated' && e.old === undefined;
    if (unknown) this.since.other = true;
    else if (!this.since.nodes.has(name)) this.since.nodes.set(name, before && nodeFacts(before));
    const moved =
      unknown ||
      this.feasible?.reads.domainsMoved(before && nodeFacts(before), after && nodeFacts(after)) ===
        true;
    // Taints and cordons change no pod's verdict: only feasibility reads them.
    return relabelled || moved;
  }

  onNamespace(e: WatchEvent<Namespace>): boolean {
    this.heard++;
    const name = e.object.metadata.name;
    if (e.type === 'updated' && sameLabels(e.old?.metadata.labels, e.object.metadata.labels))
      return false;
    if (e.type === 'deleted') this.current?.removeNamespace(name);
    else this.current?.setNamespace(name, e.object.metadata.labels ?? {});
    this.since.other = true; // namespace labels choose targets and providers
    // Cluster policies choose namespaces by label: the pods' policy terms may change too.
    this.replaceNamespace(name);
    return true;
  }

  onWorkload(e: WatchEvent<Workload>): boolean {
    this.heard++;
    const old = e.type === 'updated' ? e.old : undefined;
    if (old !== undefined && sameLabels(old.templateLabels, e.object.templateLabels)) {
      // Replicas, selector, owners and the template's own affinity change no pod's terms,
      // but feasibility; a status-only update changes neither.
      if (sameForFeasibility(old, e.object)) return false;
      this.since.other = true;
      return true;
    }
    this.since.other = true;
    this.replaceNamespace(e.object.namespace);
    return true;
  }

  private snapshot(): Parameters<typeof buildIndexSteps>[0] {
    return {
      nodes: this.deps.nodes.list(),
      namespaces: this.deps.namespaces.list(),
      pods: this.deps.pods.list(),
      policies: [],
      workloads: [],
    };
  }

  private place(pod: Pod): void {
    const index = this.current;
    if (index === null) return;
    this.changingPod(index, podKey(pod), () => {
      if (!isPlaced(pod)) {
        index.removePod(podKey(pod));
        return;
      }
      try {
        index.upsertPod(placementOf(pod, this.judgedBy, this.finder, index));
      } catch (err) {
        index.removePod(podKey(pod));
        this.deps.log.warn('pod left out of the audit', { pod: podKey(pod), error: String(err) });
      }
    });
  }

  /** Runs `change` on the indexed pod `key`, noting how the pod was before the first change. */
  private changingPod(index: TopologyIndex, key: string, change: () => void): void {
    if (!this.since.pods.has(key)) this.since.pods.set(key, index.get(key)?.pod);
    change();
  }

  private replaceNamespace(namespace: string): void {
    for (const pod of this.deps.pods.list())
      if (pod.metadata.namespace === namespace) this.place(pod);
  }
}

/** Pods and nodes as they were before the changes since some moment, and whether more changed. */
class Changes {
  readonly pods = new Map<string, PodPlacement | undefined>();
  readonly nodes = new Map<string, NodeFacts | undefined>();
  other = false;
}

/** Where a workload's pods may go at all, from its pod template. */
export function workloadConstraints(w: Workload): PodConstraints {
  return {
    ...(w.nodeSelector === undefined ? {} : { nodeSelector: w.nodeSelector }),
    ...(w.affinity?.nodeAffinity === undefined ? {} : { nodeAffinity: w.affinity.nodeAffinity }),
    ...(w.tolerations === undefined ? {} : { tolerations: w.tolerations }),
  };
}

/** Whether a workload update leaves everything feasibility reads of it as it was. */
function sameForFeasibility(a: Workload, b: Workload): boolean {
  return (
    a.replicas === b.replicas &&
    sameLabels(a.templateLabels, b.templateLabels) &&
    jsonEqual(a.selector, b.selector) &&
    jsonEqual(a.ownerReferences, b.ownerReferences) &&
    jsonEqual(a.affinity, b.affinity) &&
    jsonEqual(a.nodeSelector, b.nodeSelector) &&
    jsonEqual(a.tolerations, b.tolerations)
  );
}
