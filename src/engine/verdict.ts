import type { Labels } from '../api/core.ts';
import type { MatchGroup } from './match-group.ts';
import type {
  PodVerdict,
  PreferredScore,
  SourcedTerm,
  Violation,
  WeightedTerm,
} from './placement.ts';
import type { IndexedPod, TopologyIndex } from './topology-index.ts';
import { labelOf } from './labels.ts';

/** Why a pod is in breach, in the scheduler's own words where it has them. */
export const Reason = {
  missingTopologyKey: (node: string, key: string) =>
    `node ${node} has no label ${key}, so no pod can satisfy this podAffinity term there`,
  noMatchingPod: (key: string, value: string) =>
    `no other pod matching all required podAffinity terms runs in ${key}=${value}`,
  antiAffinityMatch: (count: number, key: string, value: string) =>
    `${count} other pod(s) matching this podAntiAffinity term run in ${key}=${value}`,
  symmetricAntiAffinity: (other: string, count: number, key: string, value: string) =>
    `pod ${other}${count > 1 ? ` and ${count - 1} more` : ''} in ${key}=${value} has a required podAntiAffinity term that matches this pod`,
  /** Pods of other namespaces are counted, never named: the message is shown in the pod's namespace. */
  symmetricAntiAffinityElsewhere: (count: number, key: string, value: string) =>
    `${count} pod(s) of other namespaces in ${key}=${value} have a required podAntiAffinity term that matches this pod`,
} as const;

/**
 * Judges one indexed pod where it runs, as kube-scheduler's InterPodAffinity filter would
 * judge it if it were being scheduled onto its node now, with every other pod in place.
 */
export function judgePod(index: TopologyIndex, entry: IndexedPod): PodVerdict {
  const nodeLabels = entry.nodeLabels;
  const exempt = entry.pod.exemptFrom;
  const all = [
    ...podAffinityViolations(index, entry, nodeLabels),
    ...podAntiAffinityViolations(index, entry, nodeLabels),
    ...symmetricAntiAffinityViolations(index, entry, nodeLabels),
  ];
  // An exempted pod carries none of the policy's terms, but other pods' terms of that
  // policy may still select it (symmetric anti-affinity): it is not judged by them either.
  const violations =
    exempt === undefined
      ? all
      : all.filter((v) => !(exempt as readonly string[]).includes(v.source));
  const preferred = preferredScore(index, entry, nodeLabels);
  return violations.length === 0
    ? { kind: 'ok', preferred }
    : { kind: 'violated', violations, preferred };
}

function violation(
  entry: IndexedPod,
  rule: Violation['rule'],
  s: SourcedTerm,
  message: string,
  where?: { readonly domain: string; readonly conflictingPod?: string | undefined },
): Violation {
  return {
    pod: entry.pod.key,
    node: entry.pod.nodeName,
    rule,
    source: s.source,
    term: s.index,
    message: `${s.field}: ${message}`,
    ...(where === undefined ? {} : { domain: where.domain }),
    ...(where?.conflictingPod === undefined ? {} : { conflictingPod: where.conflictingPod }),
  };
}

/** Matching pods in the pod's domain of `key`, the pod itself left out. */
function othersInDomain(
  group: MatchGroup<IndexedPod>,
  key: string,
  value: string,
  selfCounted: boolean,
): number {
  return group.count(key, value) - (selfCounted ? 1 : 0);
}

function podAffinityViolations(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
): Violation[] {
  const group = entry.affinityGroup;
  if (group === null) return [];
  const self = index.groupSelects(group, entry.pod);
  const missing: SourcedTerm[] = [];
  const unmet: SourcedTerm[] = [];
  for (const s of entry.pod.affinity) {
    const value = labelOf(nodeLabels, s.term.topologyKey);
    if (value === undefined) missing.push(s);
    else if (othersInDomain(group, s.term.topologyKey, value, self) <= 0) unmet.push(s);
  }
  // The first pod of a group whose terms select itself may start anywhere that has the
  // topology keys, as long as no other pod in the cluster matches all its terms.
  const firstPod = missing.length === 0 && self && !group.countedElsewhere(nodeLabels);
  return [
    ...missing.map((s) =>
      violation(
        entry,
        'podAffinity',
        s,
        Reason.missingTopologyKey(entry.pod.nodeName, s.term.topologyKey),
      ),
    ),
    ...(firstPod ? [] : unmet).map((s) => {
      const value = labelOf(nodeLabels, s.term.topologyKey) ?? '';
      return violation(entry, 'podAffinity', s, Reason.noMatchingPod(s.term.topologyKey, value), {
        domain: `${s.term.topologyKey}=${value}`,
      });
    }),
  ];
}

function podAntiAffinityViolations(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
): Violation[] {
  const out: Violation[] = [];
  for (const s of entry.pod.antiAffinity) {
    const key = s.term.topologyKey;
    const value = labelOf(nodeLabels, key);
    const group = entry.termGroups.get(s.term.id);
    if (value === undefined || group === undefined) continue;
    const others = othersInDomain(group, key, value, index.selects(s.term, entry.pod));
    if (others > 0)
      out.push(
        violation(entry, 'podAntiAffinity', s, Reason.antiAffinityMatch(others, key, value), {
          domain: `${key}=${value}`,
        }),
      );
  }
  return out;
}

/** Symmetry: another pod's required anti-affinity term that selects this pod, in the same domain. */
function symmetricAntiAffinityViolations(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
): Violation[] {
  const out: Violation[] = [];
  index.eachCandidateAntiGroup(entry.pod.labels, (group) => {
    if (group.carriers.size === 0) return;
    const term = group.terms[0];
    if (term === undefined) return;
    const value = labelOf(nodeLabels, term.topologyKey);
    if (value === undefined) return;
    const carriers = group.carriers.get(value);
    if (carriers === undefined || !index.selects(term, entry.pod)) return;
    // One violation per source of the term, naming the first carrier of the pod's own
    // namespace in key order; carriers of other namespaces are only counted.
    const bySource = new Map<string, { term: SourcedTerm; pods: string[]; count: number }>();
    for (const other of carriers) {
      if (other === entry) continue;
      const s = other.antiById.get(term.id);
      if (s === undefined) continue;
      const id = `${s.source}#${s.index}`;
      const seen = bySource.get(id) ?? { term: s, pods: [], count: 0 };
      seen.count++;
      if (other.pod.namespace === entry.pod.namespace) seen.pods.push(other.pod.key);
      bySource.set(id, seen);
    }
    for (const { term: s, pods, count } of bySource.values()) {
      pods.sort();
      const first = pods[0];
      out.push(
        violation(
          entry,
          'symmetricAntiAffinity',
          s,
          first === undefined
            ? Reason.symmetricAntiAffinityElsewhere(count, term.topologyKey, value)
            : Reason.symmetricAntiAffinity(first, count, term.topologyKey, value),
          { domain: `${term.topologyKey}=${value}`, conflictingPod: first },
        ),
      );
    }
  });
  return out;
}

function preferredScore(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
): PreferredScore {
  let score = 0;
  let satisfiedWeight = 0;
  let totalWeight = 0;
  const tally = (s: WeightedTerm, sign: 1 | -1): void => {
    totalWeight += s.weight;
    const key = s.term.topologyKey;
    const value = labelOf(nodeLabels, key);
    const group = entry.termGroups.get(s.term.id);
    const others =
      value === undefined || group === undefined
        ? 0
        : othersInDomain(group, key, value, index.selects(s.term, entry.pod));
    score += sign * s.weight * others;
    if (sign > 0 ? others > 0 : others === 0) satisfiedWeight += s.weight;
  };
  for (const s of entry.pod.preferredAffinity) tally(s, 1);
  for (const s of entry.pod.preferredAntiAffinity) tally(s, -1);
  return { score, satisfiedWeight, totalWeight };
}
