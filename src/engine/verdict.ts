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
  const violations: Violation[] = [];
  const preferred = judgePodInto(index, entry, violations);
  return violations.length === 0
    ? { kind: 'ok', preferred }
    : { kind: 'violated', violations, preferred };
}

/**
 * judgePod for a whole-cluster pass: the pod's violations are appended to `out` (in
 * judgePod's order) and its preferred score returned, with nothing built for a pod that has
 * neither (most pods).
 */
export function judgePodInto(
  index: TopologyIndex,
  entry: IndexedPod,
  out: Violation[],
): PreferredScore {
  const nodeLabels = entry.nodeLabels;
  const from = out.length;
  podAffinityViolations(index, entry, nodeLabels, out);
  podAntiAffinityViolations(index, entry, nodeLabels, out);
  symmetricAntiAffinityViolations(index, entry, nodeLabels, out);
  // An exempted pod carries none of the policy's terms, but other pods' terms of that
  // policy may still select it (symmetric anti-affinity): it is not judged by them either.
  const exempt = entry.pod.exemptFrom as readonly string[] | undefined;
  if (exempt !== undefined && out.length > from) {
    let kept = from;
    for (let i = from; i < out.length; i++) {
      const v = out[i] as Violation;
      if (!exempt.includes(v.source)) out[kept++] = v;
    }
    out.length = kept;
  }
  return preferredScore(index, entry, nodeLabels);
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
  out: Violation[],
): void {
  const group = entry.affinityGroup;
  if (group === null) return;
  const self = index.groupSelects(group, entry.pod);
  let missing = 0;
  let unmet: SourcedTerm[] | null = null;
  for (const s of entry.pod.affinity) {
    const value = labelOf(nodeLabels, s.term.topologyKey);
    if (value === undefined) {
      missing++;
      out.push(
        violation(
          entry,
          'podAffinity',
          s,
          Reason.missingTopologyKey(entry.pod.nodeName, s.term.topologyKey),
        ),
      );
    } else if (othersInDomain(group, s.term.topologyKey, value, self) <= 0) (unmet ??= []).push(s);
  }
  if (unmet === null) return;
  // The first pod of a group whose terms select itself may start anywhere that has the
  // topology keys, as long as no other pod in the cluster matches all its terms.
  if (missing === 0 && self && !group.countedElsewhere(nodeLabels)) return;
  for (const s of unmet) {
    const value = labelOf(nodeLabels, s.term.topologyKey) ?? '';
    out.push(
      violation(entry, 'podAffinity', s, Reason.noMatchingPod(s.term.topologyKey, value), {
        domain: `${s.term.topologyKey}=${value}`,
      }),
    );
  }
}

function podAntiAffinityViolations(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
  out: Violation[],
): void {
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
}

/** Symmetry: another pod's required anti-affinity term that selects this pod, in the same domain. */
function symmetricAntiAffinityViolations(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
  out: Violation[],
): void {
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
}

/** The score of a pod without preferred terms (most pods): one object for all of them. */
const NO_PREFERRED: PreferredScore = Object.freeze({
  score: 0,
  satisfiedWeight: 0,
  totalWeight: 0,
});

function preferredScore(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
): PreferredScore {
  const { preferredAffinity, preferredAntiAffinity } = entry.pod;
  if (preferredAffinity.length === 0 && preferredAntiAffinity.length === 0) return NO_PREFERRED;
  let score = 0;
  let satisfiedWeight = 0;
  let totalWeight = 0;
  for (const s of preferredAffinity) {
    const others = preferredOthers(index, entry, nodeLabels, s);
    totalWeight += s.weight;
    score += s.weight * others;
    if (others > 0) satisfiedWeight += s.weight;
  }
  for (const s of preferredAntiAffinity) {
    const others = preferredOthers(index, entry, nodeLabels, s);
    totalWeight += s.weight;
    score -= s.weight * others;
    if (others === 0) satisfiedWeight += s.weight;
  }
  return { score, satisfiedWeight, totalWeight };
}

/** Matching pods other than this one in the pod's domain of a preferred term (0 outside any). */
function preferredOthers(
  index: TopologyIndex,
  entry: IndexedPod,
  nodeLabels: Labels,
  s: WeightedTerm,
): number {
  const key = s.term.topologyKey;
  const value = labelOf(nodeLabels, key);
  const group = entry.termGroups.get(s.term.id);
  return value === undefined || group === undefined
    ? 0
    : othersInDomain(group, key, value, index.selects(s.term, entry.pod));
}
