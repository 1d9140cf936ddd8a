import { labelOf } from './labels.ts';
import type { MatchGroup } from './match-group.ts';
import type { IndexChange, IndexedPod, TopologyIndex } from './topology-index.ts';

/**
 * What one kind of rule says about which pods a change to the index can give another
 * verdict. The incremental audit (incremental-audit.ts) judges again only the pods some
 * kind names, and every pod the index took out or put back.
 *
 * Node affinity, nodeSelector and topology spread are judged on Pod and Node objects rather
 * than on this index, and are kept between passes beside it (incremental-node-spread.ts).
 */
export interface AffectedPods {
  /** Forgets what it learnt and learns `index` anew (a full pass follows). */
  reset(index: TopologyIndex): void;
  /**
   * Told of each change right after the index made it; calls `affect` with the key of
   * every pod whose verdict of this kind the change can alter.
   */
  changed(change: IndexChange, index: TopologyIndex, affect: (podKey: string) => void): void;
}

type ByDomain = Map<string, Map<string, Set<IndexedPod>>>;

/**
 * Required and preferred pod affinity and anti-affinity (verdict.ts). A pod's verdict reads
 * only the counts of its groups in its own domains, whether its affinity group counts any
 * other pod at all (the first pod of a group), and the anti-affinity carriers in its own
 * domains whose term selects it. So:
 * - a count that moved in a domain affects the group's users in that domain, and every user
 *   while the group counts two pods or fewer (the first-pod rule may flip);
 * - a carrier entering or leaving a domain affects the pods of that domain its term selects.
 */
export class InterPodAffected implements AffectedPods {
  /** group → topology key → domain value → the pods that use the group there. */
  private users = new Map<MatchGroup<IndexedPod>, ByDomain>();

  reset(index: TopologyIndex): void {
    this.users = new Map();
    for (const entry of index.allPods()) this.list(entry, 1);
  }

  changed(change: IndexChange, index: TopologyIndex, affect: (podKey: string) => void): void {
    switch (change.kind) {
      case 'pod':
        this.list(change.entry, change.delta);
        return;
      case 'counted':
        this.counted(change.group, change.nodeLabels, affect);
        return;
      case 'carried':
        this.carried(change.group, change.value, index, affect);
        return;
      case 'node':
      case 'namespace':
        return; // their pods were taken out and put back: each is judged again
    }
  }

  private counted(
    group: MatchGroup<IndexedPod>,
    nodeLabels: Readonly<Record<string, string>>,
    affect: (podKey: string) => void,
  ): void {
    const users = this.users.get(group);
    if (users === undefined) return;
    let everyone = false;
    for (const key of group.keys) {
      const value = labelOf(nodeLabels, key);
      if (value === undefined) continue;
      const here = users.get(key)?.get(value);
      if (here !== undefined) for (const e of here) affect(e.pod.key);
      everyone ||= fewCounted(group, key);
    }
    if (!everyone) return;
    for (const byValue of users.values())
      for (const set of byValue.values()) for (const e of set) affect(e.pod.key);
  }

  private carried(
    group: MatchGroup<IndexedPod>,
    value: string,
    index: TopologyIndex,
    affect: (podKey: string) => void,
  ): void {
    const term = group.terms[0];
    if (term === undefined || group.count(term.topologyKey, value) === 0) return;
    for (const e of index.entriesSelectedBy(term))
      if (labelOf(e.nodeLabels, term.topologyKey) === value) affect(e.pod.key);
  }

  /** Files (delta 1) or unfiles (-1) a pod under each group it uses, by its domains. */
  private list(entry: IndexedPod, delta: 1 | -1): void {
    if (entry.affinityGroup !== null) this.file(entry.affinityGroup, entry, delta);
    for (const group of entry.termGroups.values()) this.file(group, entry, delta);
  }

  private file(group: MatchGroup<IndexedPod>, entry: IndexedPod, delta: 1 | -1): void {
    let users = this.users.get(group);
    if (users === undefined) {
      if (delta < 0) return;
      users = new Map();
      this.users.set(group, users);
    }
    for (const key of group.keys) {
      const value = labelOf(entry.nodeLabels, key);
      if (value === undefined) continue; // no domain there: its verdict reads no count of it
      let byValue = users.get(key);
      if (byValue === undefined) {
        if (delta < 0) continue;
        byValue = new Map();
        users.set(key, byValue);
      }
      let set = byValue.get(value);
      if (delta > 0) {
        if (set === undefined) byValue.set(value, (set = new Set()));
        set.add(entry);
      } else if (set !== undefined) {
        set.delete(entry);
        if (set.size === 0) byValue.delete(value);
        if (byValue.size === 0) users.delete(key);
      }
    }
    if (users.size === 0) this.users.delete(group);
  }
}

/**
 * Whether the group counts two pods or fewer on `key`: whether "some other pod matches"
 * (MatchGroup.countedElsewhere) can have changed for a pod of any domain.
 */
function fewCounted(group: MatchGroup<IndexedPod>, key: string): boolean {
  const perValue = group.counts.get(key);
  if (perValue === undefined) return true;
  if (perValue.size > 2) return false;
  let total = 0;
  for (const n of perValue.values()) total += n;
  return total <= 2;
}
