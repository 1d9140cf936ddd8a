/**
 * The filters for one more pod, ready to ask node by node (kube-scheduler's PreFilter state):
 * the domains its anti-affinity and other pods' anti-affinity close, and where its affinity
 * finds a pod that meets all its terms. Built from the pods that run, then kept current as
 * pods are added (the scheduler's AddPod), in any order, with the same result.
 */
import { labelOf } from './labels.ts';
import { nodeAdmits, type NodeFacts } from './node-eligibility.ts';
import type { Misfit, PodRules } from './scheduling-sim.ts';
import type { SpreadIndex } from './spread-index.ts';
import { spreadFilter } from './topology-spread.ts';

/**
 * Which closure a node hears first: the pod's own anti-affinity terms in order (`term`),
 * then other pods' anti-affinity by pod key and term (`pod`, `term`), as the scheduler's
 * filter walks them.
 */
export type ClosureRank =
  | { readonly own: true; readonly term: number }
  | { readonly own: false; readonly pod: string; readonly term: number };

const earlier = (a: ClosureRank, b: ClosureRank): boolean => {
  if (a.own !== b.own) return a.own;
  if (!a.own && !b.own && a.pod !== b.pod) return a.pod < b.pod;
  return a.term < b.term;
};

/**
 * A node rule refuses: one value for every pod and node (a refusal holds no more than its kind,
 * and a pod that fits no node is refused by every node, thousands of times in a pass).
 */
const NODE_MISFIT: Misfit = Object.freeze({ kind: 'node' });

interface Closed {
  readonly key: string;
  /** The earliest closure on this key: keys are asked in this order. */
  rank: ClosureRank;
  readonly byValue: Map<string, { misfit: Misfit; rank: ClosureRank }>;
}

export class PreparedPod {
  readonly rules: PodRules;
  /** By topology key, in the order `misfit` asks them. */
  private readonly closed: Closed[] = [];
  private readonly provided: Set<string>[];
  /** By affinity term: the refusal of a node where the term finds no pod (one value per term). */
  private readonly affinityMisfits: readonly Misfit[];
  private anyProvider = false;
  /** The pod meets all its own affinity terms. */
  private readonly selfMatch: boolean;
  private readonly spreadIndex: SpreadIndex | null;

  constructor(rules: PodRules, selfMatch: boolean, spreadIndex: SpreadIndex | null = null) {
    this.rules = rules;
    this.provided = rules.affinity.map(() => new Set<string>());
    this.affinityMisfits = rules.affinity.map((term) =>
      Object.freeze({ kind: 'podAffinity', term }),
    );
    this.selfMatch = selfMatch;
    this.spreadIndex = spreadIndex;
  }

  /** No pod anywhere meets its affinity and it meets its own: the first pod may go anywhere. */
  get firstOfGroup(): boolean {
    return !this.anyProvider && this.selfMatch;
  }

  /**
   * Closes the domain `value` of `key` with `misfit`, unless a closure that ranks earlier
   * already did: the result does not depend on the order closures come in.
   */
  close(key: string, value: string, misfit: Misfit, rank: ClosureRank): void {
    let c = this.closed.find((x) => x.key === key);
    if (c === undefined) {
      c = { key, rank, byValue: new Map() };
      this.closed.push(c);
      this.closed.sort((x, y) => (earlier(x.rank, y.rank) ? -1 : 1));
    } else if (earlier(rank, c.rank)) {
      c.rank = rank;
      this.closed.sort((x, y) => (earlier(x.rank, y.rank) ? -1 : 1));
    }
    const known = c.byValue.get(value);
    if (known === undefined || earlier(rank, known.rank)) c.byValue.set(value, { misfit, rank });
  }

  /** A pod meets all its affinity terms, in these domains (one per term). */
  provide(values: readonly string[]): void {
    this.anyProvider = true;
    values.forEach((v, i) => this.provided[i]?.add(v));
  }

  /**
   * Why `node` cannot take the pod, or null when it can. The filters in kube-scheduler's
   * order: node rules, PodTopologySpread, then InterPodAffinity.
   */
  misfit(node: NodeFacts): Misfit | null {
    if (!nodeAdmits(node, this.rules.constraints)) return NODE_MISFIT;
    const spread = this.rules.spread;
    if (this.spreadIndex !== null && spread !== undefined) {
      const verdict = spreadFilter(
        this.spreadIndex,
        { labels: this.rules.labels, rules: spread.rules },
        node,
      );
      if (verdict.kind === 'refused') {
        const at = spread.sources[verdict.miss.constraint];
        return {
          kind: 'topologySpread',
          miss: verdict.miss,
          source: at?.source ?? 'pod',
          field: at?.field ?? `topologySpreadConstraints[${String(verdict.miss.constraint)}]`,
        };
      }
    }
    for (const { key, byValue } of this.closed) {
      const value = labelOf(node.labels, key);
      const m = value === undefined ? undefined : byValue.get(value)?.misfit;
      if (m !== undefined) return m;
    }
    return this.affinityMisfit(node);
  }

  /** Why `node` fails the pod's required affinity alone, or null when it meets it. */
  affinityMisfit(node: NodeFacts): Misfit | null {
    for (const [i, a] of this.rules.affinity.entries()) {
      const value = labelOf(node.labels, a.term.topologyKey);
      // A node without the key is in no domain: the scheduler rejects it outright.
      if (value === undefined || (this.provided[i]?.has(value) !== true && !this.firstOfGroup))
        return this.affinityMisfits[i] ?? { kind: 'podAffinity', term: a };
    }
    return null;
  }

  /**
   * The domains of its first affinity term's key where it may go, or null when it may go
   * anywhere its affinity allows (no affinity, or the first pod of a group).
   */
  affinityDomains(): { readonly key: string; readonly values: ReadonlySet<string> } | null {
    const first = this.rules.affinity[0];
    const values = this.provided[0];
    if (first === undefined || values === undefined || this.firstOfGroup) return null;
    return { key: first.term.topologyKey, values };
  }
}
