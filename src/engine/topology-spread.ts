/**
 * Topology spread judged on the counts of spread-index.ts:
 * - `spreadFilter`: would kube-scheduler's PodTopologySpread filter let a new pod onto a
 *   node (matching pods in the node's domain, plus one if the pod matches its own selector,
 *   minus the global minimum, at most maxSkew; a node without the topology key refused);
 * - `judgeSpread`: drift of a running pod. A domain is over when its count exceeds the
 *   global minimum plus maxSkew, by the difference; the excess pods are that many of the
 *   domain's matching pods, chosen by `excessOrder`. A pod breaks the rule (`topologySpread`)
 *   when it is one of the excess of a DoNotSchedule constraint it carries, or runs on a node
 *   without the constraint's topology key;
 * - `SpreadJudge.score`: ScheduleAnyway constraints give a score, how many hold where the pod
 *   runs (see there for what of the scheduler's PodTopologySpread score it mirrors).
 */
import type { Labels } from '../api/core.ts';
import { labelOf } from './labels.ts';
import type { NodeIdentity } from './node-affinity.ts';
import type { SpreadScore } from './placement.ts';
import { selectorMatches } from './selector.ts';
import {
  globalMinimum,
  type SpreadConstraint,
  type SpreadIndex,
  type SpreadPod,
  type SpreadRules,
} from './spread-index.ts';

/** Why the filter refuses a node for one constraint. */
export type SpreadMiss =
  | {
      readonly reason: 'missingTopologyLabel';
      readonly constraint: number;
      readonly topologyKey: string;
    }
  | {
      readonly reason: 'overMaxSkew';
      readonly constraint: number;
      readonly topologyKey: string;
      readonly domain: string;
      /** Matching pods in the domain, not counting the pod judged. */
      readonly count: number;
      /** 1 when the pod matches its own selector. */
      readonly self: number;
      readonly min: number;
      readonly maxSkew: number;
    };

export type SpreadFilterVerdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'refused'; readonly miss: SpreadMiss; readonly message: string };

/** A pod the filter judges: not in the index (a new pod). */
export interface SpreadCandidate {
  readonly labels: Labels;
  readonly rules: SpreadRules;
}

export function spreadMissText(m: SpreadMiss, node: string): string {
  const at = `topologySpreadConstraints[${m.constraint}] (${m.topologyKey})`;
  if (m.reason === 'missingTopologyLabel')
    return `${at}: node ${node} has no label ${m.topologyKey}`;
  return (
    `${at}: domain ${m.domain} would hold ${m.count + m.self} matching pods, ` +
    `the least-loaded domain ${m.min}: skew ${m.count + m.self - m.min} > maxSkew ${m.maxSkew}`
  );
}

/**
 * The PodTopologySpread filter for a new pod on `node`: constraints in order, the first
 * that fails decides, as the scheduler stops at it.
 */
export function spreadFilter(
  index: SpreadIndex,
  pod: SpreadCandidate,
  node: NodeIdentity,
): SpreadFilterVerdict {
  for (const c of pod.rules.hard) {
    const miss = constraintMiss(index, c, pod.labels, node.labels, 0);
    if (miss !== undefined) {
      return { kind: 'refused', miss, message: spreadMissText(miss, node.name) };
    }
  }
  return { kind: 'ok' };
}

/** One constraint for a pod on a node; `counted` is 1 when the index already counts the pod there. */
function constraintMiss(
  index: SpreadIndex,
  c: SpreadConstraint,
  labels: Labels,
  nodeLabels: Labels,
  counted: number,
): SpreadMiss | undefined {
  const domain = labelOf(nodeLabels, c.topologyKey);
  if (domain === undefined) {
    return { reason: 'missingTopologyLabel', constraint: c.index, topologyKey: c.topologyKey };
  }
  const counts = index.counts(c);
  const count = (counts.byDomain.get(domain) ?? 0) - counted;
  const self = selectorMatches(c.selector, labels) ? 1 : 0;
  const min = globalMinimum(counts, c.minDomains);
  if (count + self - min <= c.maxSkew) return undefined;
  const { index: constraint, topologyKey, maxSkew } = c;
  return { reason: 'overMaxSkew', constraint, topologyKey, domain, count, self, min, maxSkew };
}

// ---------------------------------------------------------------- drift

/** A domain holding more matching pods than the global minimum plus maxSkew allows. */
export interface OverDomain {
  readonly domain: string;
  readonly count: number;
  readonly min: number;
  readonly maxSkew: number;
  /** count − (min + maxSkew): how many pods would have to leave. */
  readonly over: number;
  /** The pods that are the excess, `over` of them, in `excessOrder`. */
  readonly excess: readonly SpreadPod[];
  /** The keys of the excess pods. */
  readonly excessKeys: ReadonlySet<string>;
  /** What every excess pod's violation says: written once per domain, not once per pod. */
  readonly message: string;
}

/** How many excess pods a message names before it says how many more there are. */
export const NAMED_EXCESS = 10;

/**
 * Which of a domain's pods are its excess: pods that carry the constraint themselves come
 * first (they are the ones the rule binds), then by key from the last: so the choice is
 * the same on every pass, whatever order the pods were listed in.
 */
export function excessOrder(pods: readonly SpreadPod[], c: SpreadConstraint): SpreadPod[] {
  // Two runs, each sorted (stable) by key from the last: no wrapper object per pod.
  const carriers: SpreadPod[] = [];
  const others: SpreadPod[] = [];
  for (const p of pods) {
    if (p.rules.hard.some((h) => h === c || h.groupKey === c.groupKey)) carriers.push(p);
    else others.push(p);
  }
  const byKeyFromLast = (a: SpreadPod, b: SpreadPod): number =>
    a.key < b.key ? 1 : a.key > b.key ? -1 : 0;
  carriers.sort(byKeyFromLast);
  if (others.length === 0) return carriers;
  others.sort(byKeyFromLast);
  return carriers.concat(others);
}

const NO_OVER: readonly OverDomain[] = Object.freeze([]);

/** Every over domain of one DoNotSchedule constraint. */
export function overDomains(index: SpreadIndex, c: SpreadConstraint): readonly OverDomain[] {
  const counts = index.counts(c);
  const min = globalMinimum(counts, c.minDomains);
  let overIn: Set<string> | undefined;
  for (const [domain, count] of counts.byDomain) {
    if (count - min > c.maxSkew) (overIn ??= new Set()).add(domain);
  }
  // Most constraints have no over domain: nothing allocated for them.
  if (overIn === undefined) return NO_OVER;
  const out: OverDomain[] = [];
  // One pass over the counted pods collects the members of every over domain.
  const membersByDomain = index.membersIn(c, overIn);
  for (const domain of overIn) {
    const count = counts.byDomain.get(domain) ?? 0;
    const over = count - min - c.maxSkew;
    const members = excessOrder(membersByDomain.get(domain) ?? [], c);
    const excess = members.slice(0, over);
    const excessKeys = new Set(excess.map((p) => p.key));
    const named = excess.slice(0, NAMED_EXCESS).map((p) => p.key);
    const more = excess.length > NAMED_EXCESS ? ` and ${excess.length - NAMED_EXCESS} more` : '';
    const message =
      `topologySpreadConstraints[${c.index}] (${c.topologyKey}): domain ${domain} holds ` +
      `${count} matching pods, the least-loaded ${min}, maxSkew ${c.maxSkew}: ` +
      `${over} over; the excess: ${named.join(', ')}${more}`;
    out.push({ domain, count, min, maxSkew: c.maxSkew, over, excess, excessKeys, message });
  }
  return out.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}

export interface SpreadViolation {
  readonly rule: 'topologySpread';
  /** Position of the constraint in `spec.topologySpreadConstraints`. */
  readonly constraint: number;
  readonly topologyKey: string;
  /** The domain of the pod's node; undefined when the node has no such label. */
  readonly domain: string | undefined;
  /** The over domain, when the node has the label. */
  readonly over: OverDomain | undefined;
  readonly message: string;
}

export type SpreadVerdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'violated'; readonly violations: readonly SpreadViolation[] };

const NO_VIOLATION: SpreadVerdict = Object.freeze({ kind: 'ok' });
const NONE_OVER: ReadonlyMap<string, OverDomain> = new Map();

/**
 * Remembers the over domains of each distinct constraint across the pods of one pass, so
 * that judging every pod costs a few look-ups once each constraint is counted.
 */
export class SpreadJudge {
  /** By constraint object: the pods of one template share theirs (SpreadRulesCache). */
  private readonly overByObject = new Map<SpreadConstraint, ReadonlyMap<string, OverDomain>>();
  /** By what decides the result, for constraints that are equal but not shared. */
  private readonly over = new Map<string, Map<string, ReadonlyMap<string, OverDomain>>>();

  readonly index: SpreadIndex;

  constructor(index: SpreadIndex) {
    this.index = index;
  }

  /** Over domains of a constraint, by domain. */
  overByDomain(c: SpreadConstraint): ReadonlyMap<string, OverDomain> {
    const known = this.overByObject.get(c);
    if (known !== undefined) return known;
    // By group, then by the short rest: no copy of the long group key joined to it.
    let inGroup = this.over.get(c.groupKey);
    if (inGroup === undefined)
      this.over.set(c.groupKey, (inGroup = new Map<string, ReadonlyMap<string, OverDomain>>()));
    const skew = `${c.maxSkew}/${c.minDomains}`;
    let map = inGroup.get(skew);
    if (map === undefined) {
      const found = overDomains(this.index, c);
      map = found.length === 0 ? NONE_OVER : new Map(found.map((o) => [o.domain, o]));
      inGroup.set(skew, map);
    }
    this.overByObject.set(c, map);
    return map;
  }

  /** The verdict of a bound pod held by the index on its DoNotSchedule constraints. */
  judge(pod: SpreadPod): SpreadVerdict {
    if (pod.rules.hard.length === 0) return NO_VIOLATION;
    const nodeLabels = this.index.node(pod.nodeName)?.labels ?? {};
    // Most carriers break nothing: the list is made at the first violation.
    let violations: SpreadViolation[] | undefined;
    for (const c of pod.rules.hard) {
      const domain = labelOf(nodeLabels, c.topologyKey);
      if (domain === undefined) {
        (violations ??= []).push({
          rule: 'topologySpread',
          constraint: c.index,
          topologyKey: c.topologyKey,
          domain,
          over: undefined,
          message: spreadMissText(
            { reason: 'missingTopologyLabel', constraint: c.index, topologyKey: c.topologyKey },
            pod.nodeName,
          ),
        });
        continue;
      }
      const over = this.overByDomain(c).get(domain);
      if (over === undefined || !over.excessKeys.has(pod.key)) continue;
      (violations ??= []).push({
        rule: 'topologySpread',
        constraint: c.index,
        topologyKey: c.topologyKey,
        domain,
        over,
        message: over.message,
      });
    }
    return violations === undefined ? NO_VIOLATION : { kind: 'violated', violations };
  }

  /**
   * How well a bound pod's ScheduleAnyway constraints hold where it runs; undefined when it
   * has none. A constraint holds when the pod's domain (the pod counted in it when it
   * matches) is within maxSkew of the global minimum; `excess` sums, over those that do
   * not, how many matching pods the domain holds above the minimum plus maxSkew. A node
   * without the topology key counts as a constraint that does not hold, with no excess.
   *
   * Of kube-scheduler's PodTopologySpread Score this mirrors the counting: the ScheduleAnyway
   * constraints only, the pods of the pod's namespace matching the selector (matchLabelKeys
   * merged), and the domains nodeAffinityPolicy and nodeTaintsPolicy admit on nodes holding
   * every topology key of those constraints. It is not the scheduler's node ranking: the
   * scheduler sums per candidate node `count × log(domains + 2) + maxSkew − 1` and normalises
   * the sums over the candidates, so its score means something only against the other nodes
   * of one scheduling cycle (it also gives pods without constraints the cluster's default
   * ones, not scored here). A running pod has no candidates to rank; what stays meaningful
   * is whether each constraint holds where the pod runs, judged with the filter's skew test
   * and minDomains, and that is what is scored.
   */
  score(pod: SpreadPod): SpreadScore | undefined {
    if (pod.rules.soft.length === 0) return undefined;
    const nodeLabels = this.index.node(pod.nodeName)?.labels ?? {};
    let satisfied = 0;
    let excess = 0;
    for (const c of pod.rules.soft) {
      const domain = labelOf(nodeLabels, c.topologyKey);
      if (domain === undefined) continue;
      const counts = this.index.counts(c);
      const above =
        (counts.byDomain.get(domain) ?? 0) - globalMinimum(counts, c.minDomains) - c.maxSkew;
      if (above <= 0) satisfied++;
      else excess += above;
    }
    return { satisfied, total: pod.rules.soft.length, excess };
  }
}
