/**
 * What changed between two audit passes, as the informers told it: the pods and nodes
 * added, replaced or deleted, and the namespaces whose pods may be reached by other
 * policies. A pass that is told this looks at those objects only (NodeSpreadChanges), not
 * at every pod of the caches.
 */
import type { Namespace, Node, Pod } from '../api/core.ts';
import type { Source, WatchEvent, Workload } from '../api/cluster.ts';
import { podKey, type CompiledPolicy, type NodeSpreadChanges } from '../engine/index.ts';
import { jsonEqual, sameLabels } from '../util/json.ts';

export class ChangedObjects {
  private pods = new Set<string>();
  private nodes = new Set<string>();
  private namespaces = new Set<string>();
  /** The policies of the last pass; another array means every pod's reach may differ. */
  private policies: readonly CompiledPolicy[] | null = null;
  /** Whether every change is heard: until then, a pass is told nothing (it compares all). */
  private listening = false;

  /** Hears the changes of each source from now on; returns how to stop. */
  listen(sources: {
    readonly pods: Source<Pod>;
    readonly nodes: Source<Node>;
    readonly namespaces: Source<Namespace>;
    readonly workloads: readonly Source<Workload>[];
  }): (() => void)[] {
    this.listening = true;
    return [
      sources.pods.addHandler((e) => this.pods.add(podKey(e.object))),
      sources.nodes.addHandler((e) => this.nodes.add(e.object.metadata.name)),
      sources.namespaces.addHandler((e) => this.namespaces.add(e.object.metadata.name)),
      ...sources.workloads.map((s) =>
        s.addHandler((e) => {
          if (!sameOwnership(e)) this.namespaces.add(e.object.namespace);
        }),
      ),
    ];
  }

  /**
   * What changed since the last call, for a pass judged by `policies`; undefined when not
   * every change was heard. The sets start empty again.
   */
  take(
    policies: readonly CompiledPolicy[],
    now: { readonly pods: Source<Pod>; readonly nodes: Source<Node> },
  ): NodeSpreadChanges | undefined {
    const { pods, nodes, namespaces } = this;
    const samePolicies = this.policies === policies;
    this.pods = new Set();
    this.nodes = new Set();
    this.namespaces = new Set();
    this.policies = policies;
    if (!this.listening) return undefined;
    return {
      pods,
      pod: (key) => now.pods.get(key),
      nodes,
      node: (name) => now.nodes.get(name),
      namespaces: samePolicies ? namespaces : 'all',
    };
  }
}

/**
 * Whether a workload change leaves the workload its pods resolve to, as policies see it,
 * what it was: an update of the same owners, template labels and selector (a status write,
 * a scale).
 */
function sameOwnership(e: WatchEvent<Workload>): boolean {
  if (e.type !== 'updated' || e.old === undefined) return false;
  const [a, b] = [e.old, e.object];
  return (
    sameLabels(a.templateLabels, b.templateLabels) &&
    jsonEqual(a.ownerReferences, b.ownerReferences) &&
    jsonEqual(a.selector, b.selector)
  );
}
