/**
 * A naive judge written straight from kube-scheduler's InterPodAffinity filter rules
 * (filtering.go), comparing every pair of pods, sharing no code with the engine. Property
 * tests hold the engine to it.
 */
import type {
  Labels,
  LabelSelector,
  LabelSelectorRequirement,
  Namespace,
  Node,
  Pod,
  PodAffinityTerm,
} from '../../src/api/core.ts';
import { sortTuples, type Tuple } from './builders.ts';

/** LabelSelector semantics on the raw object: null selects nothing, `{}` everything. */
export function referenceSelectorMatches(
  selector: LabelSelector | null | undefined,
  labels: Labels,
): boolean {
  if (selector === null || selector === undefined) return false;
  const has = (k: string) => Object.keys(labels).includes(k);
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (!has(k) || labels[k] !== v) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const values = e.values ?? [];
    const ok =
      e.operator === 'In'
        ? has(e.key) && values.some((v) => v === labels[e.key])
        : e.operator === 'NotIn'
          ? !has(e.key) || values.every((v) => v !== labels[e.key])
          : e.operator === 'Exists'
            ? has(e.key)
            : !has(e.key);
    if (!ok) return false;
  }
  return true;
}

/** A term of one pod, resolved the way the API server and scheduler read it. */
interface RefTerm {
  readonly index: number;
  readonly topologyKey: string;
  readonly selector: LabelSelector | null;
  readonly namespaces: ReadonlySet<string>;
  readonly namespaceSelector: LabelSelector | null;
  /**
   * Equal for terms that mean the same thing. A pod's identical anti-affinity terms are one
   * rule to the pods they match; the engine names it by the last of them.
   */
  readonly identity: string;
}

function resolve(t: PodAffinityTerm, index: number, owner: Pod): RefTerm {
  const labels = owner.metadata.labels ?? {};
  const base = t.labelSelector ?? null;
  // The API server appends `key In (value)` / `key NotIn (value)` for each listed key the
  // pod carries, and only when there is a labelSelector.
  const merged = (keys: readonly string[] | undefined, operator: string) =>
    (keys ?? []).flatMap((key): LabelSelectorRequirement[] => {
      const value = labels[key];
      return value === undefined ? [] : [{ key, operator, values: [value] }];
    });
  const selector =
    base === null
      ? null
      : {
          matchLabels: base.matchLabels ?? {},
          matchExpressions: [
            ...(base.matchExpressions ?? []),
            ...merged(t.matchLabelKeys, 'In'),
            ...merged(t.mismatchLabelKeys, 'NotIn'),
          ],
        };
  const namespaceSelector = t.namespaceSelector ?? null;
  const listed = t.namespaces ?? [];
  const namespaces = new Set(
    listed.length === 0 && namespaceSelector === null ? [owner.metadata.namespace] : listed,
  );
  const identity = JSON.stringify([
    t.topologyKey,
    canonical(selector),
    [...namespaces].sort(),
    namespaceSelector === null ? null : canonical(namespaceSelector),
  ]);
  return { index, topologyKey: t.topologyKey, selector, namespaces, namespaceSelector, identity };
}

function canonical(s: LabelSelector | null): string[] | null {
  if (s === null) return null;
  const reqs = [
    ...Object.entries(s.matchLabels ?? {}).map(([k, v]) => JSON.stringify([k, 'In', [v]])),
    ...(s.matchExpressions ?? []).map((e) =>
      JSON.stringify([e.key, e.operator, [...new Set(e.values ?? [])].sort()]),
    ),
  ];
  return [...new Set(reqs)].sort();
}

export interface ReferenceVerdict {
  /** Whether the filter would refuse the pod its own node. */
  readonly violated: boolean;
  /** Unique, sorted. */
  readonly tuples: readonly Tuple[];
  readonly preferred?: { score: number; satisfiedWeight: number; totalWeight: number };
}

export interface ReferenceCluster {
  readonly nodes: readonly Node[];
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
}

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREFERRED = 'preferredDuringSchedulingIgnoredDuringExecution';

/** Bound and not terminal: a neighbour, even while being deleted (as in the scheduler's cache). */
export const referencePlaced = (p: Pod): boolean =>
  (p.spec.nodeName ?? '') !== '' && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

/** Judged: placed and not being deleted. */
export const referenceJudged = (p: Pod): boolean =>
  referencePlaced(p) && p.metadata.deletionTimestamp === undefined;

/** Judges every placed pod against every other placed pod. */
export function referenceAudit(c: ReferenceCluster): Map<string, ReferenceVerdict> {
  const nodeLabels = (name: string): Labels =>
    c.nodes.find((n) => n.metadata.name === name)?.metadata.labels ?? {};
  const nsLabels = (name: string): Labels =>
    c.namespaces.find((n) => n.metadata.name === name)?.metadata.labels ?? {};
  const placed = c.pods.filter(referencePlaced);
  const keyOf = (p: Pod) => `${p.metadata.namespace}/${p.metadata.name}`;
  const terms = (p: Pod, kind: 'podAffinity' | 'podAntiAffinity') =>
    (p.spec.affinity?.[kind]?.[REQUIRED] ?? []).map((t, i) => resolve(t, i, p));
  const weightedTerms = (p: Pod, kind: 'podAffinity' | 'podAntiAffinity') =>
    (p.spec.affinity?.[kind]?.[PREFERRED] ?? []).map((w, i) => ({
      term: resolve(w.podAffinityTerm, i, p),
      weight: w.weight,
    }));
  /** AffinityTerm.Matches: the namespace is listed or picked by the selector, and the labels match. */
  const matches = (t: RefTerm, q: Pod): boolean =>
    (t.namespaces.has(q.metadata.namespace) ||
      (t.namespaceSelector !== null &&
        referenceSelectorMatches(t.namespaceSelector, nsLabels(q.metadata.namespace)))) &&
    referenceSelectorMatches(t.selector, q.metadata.labels ?? {});
  const domainOf = (q: Pod, key: string): string | undefined =>
    nodeLabels(q.spec.nodeName ?? '')[key];

  const out = new Map<string, ReferenceVerdict>();
  for (const p of placed.filter(referenceJudged)) {
    const key = keyOf(p);
    const others = placed.filter((q) => q !== p);
    const here = (k: string) => domainOf(p, k);
    const sameDomain = (q: Pod, k: string) => here(k) !== undefined && domainOf(q, k) === here(k);
    const tuples: Tuple[] = [];

    // podAffinity: every term's key on the node, and in each term's domain another pod that
    // matches ALL terms; or the first pod of a group that matches its own terms, when no other
    // pod matching them all is counted in any domain of their keys.
    const affinity = terms(p, 'podAffinity');
    let affinityOk = true;
    if (affinity.length > 0) {
      const matchesAll = (q: Pod) => affinity.every((t) => matches(t, q));
      const missing = affinity.filter((t) => here(t.topologyKey) === undefined);
      const unmet = affinity.filter(
        (t) =>
          here(t.topologyKey) !== undefined &&
          !others.some((q) => matchesAll(q) && sameDomain(q, t.topologyKey)),
      );
      const counted = others.some(
        (q) => matchesAll(q) && affinity.some((t) => domainOf(q, t.topologyKey) !== undefined),
      );
      const firstPod = missing.length === 0 && matchesAll(p) && !counted;
      affinityOk = missing.length === 0 && (unmet.length === 0 || firstPod);
      for (const t of [...missing, ...(firstPod ? [] : unmet)]) {
        tuples.push({ pod: key, rule: 'podAffinity', source: 'pod', term: t.index });
      }
    }

    // podAntiAffinity: no other pod matching the term in the term's domain.
    let antiOk = true;
    for (const t of terms(p, 'podAntiAffinity')) {
      if (others.some((q) => matches(t, q) && sameDomain(q, t.topologyKey))) {
        antiOk = false;
        tuples.push({ pod: key, rule: 'podAntiAffinity', source: 'pod', term: t.index });
      }
    }

    // Symmetry: no other pod whose anti-affinity term matches this pod, in that term's domain.
    let symmetricOk = true;
    for (const q of others) {
      const distinct = new Map(terms(q, 'podAntiAffinity').map((t) => [t.identity, t]));
      for (const t of distinct.values()) {
        if (matches(t, p) && sameDomain(q, t.topologyKey)) {
          symmetricOk = false;
          tuples.push({ pod: key, rule: 'symmetricAntiAffinity', source: 'pod', term: t.index });
        }
      }
    }

    // Preferred terms: weight × matching pods in the domain, affinity minus anti-affinity.
    const preferred = weightedTerms(p, 'podAffinity');
    const preferredAnti = weightedTerms(p, 'podAntiAffinity');
    let score = 0;
    let satisfiedWeight = 0;
    let totalWeight = 0;
    for (const [list, sign] of [
      [preferred, 1],
      [preferredAnti, -1],
    ] as const) {
      for (const { term: t, weight } of list) {
        const n = others.filter((q) => matches(t, q) && sameDomain(q, t.topologyKey)).length;
        totalWeight += weight;
        score += sign * weight * n;
        if (sign > 0 ? n > 0 : n === 0) satisfiedWeight += weight;
      }
    }

    const unique = [...new Map(tuples.map((t) => [JSON.stringify(t), t])).values()];
    out.set(key, {
      violated: !(affinityOk && antiOk && symmetricOk),
      tuples: sortTuples(unique),
      ...(totalWeight > 0 ? { preferred: { score, satisfiedWeight, totalWeight } } : {}),
    });
  }
  return out;
}
