/**
 * The per-node bookkeeping of `kubectl-placement why`: for a pod not yet bound, every rule
 * that rules out one node (inter-pod affinity, node rules, taints, topology spread), with the
 * pods that close a domain named; for a bound pod, its violations with the other pods
 * involved. The judges are the audit's own; explain.ts puts the answers together.
 *
 * Long because every rule kind has its own per-node check and its own way of naming the
 * pods and the policy involved, all read from one pod's context; split by rule they would
 * each carry that context again.
 */
import type { Pod } from '../api/core.ts';
import { taintText } from './explain-changes.ts';
import { type Block, type InvolvedPod } from './explain-types.ts';
import { type ClusterSnapshot } from './judge-cluster.ts';
import {
  judgePodNodeRules,
  spreadAttribution,
  spreadOrigins,
  type PodPolicies,
  type SpreadOrigin,
} from './judge-node-spread.ts';
import { labelOf } from './labels.ts';
import { judgeNodeRules, nodeRulesOfPod, type NodeRuleViolation } from './node-affinity.ts';
import { tolerates, UNSCHEDULABLE_TAINT, type NodeFacts } from './node-eligibility.ts';
import type { PodPlacement, SourcedTerm, Violation } from './placement.ts';
import { isPlaced } from './pod-placement.ts';
import {
  SpreadIndex,
  SpreadRulesCache,
  spreadPodOf,
  spreadSubjectOf,
  type SpreadConstraint,
  type SpreadPod,
} from './spread-index.ts';
import { selectorText } from './rollout-sim.ts';
import { REQUIRED_TERMS } from './term.ts';
import type { TopologyIndex } from './topology-index.ts';
import { SpreadJudge, spreadFilter } from './topology-spread.ts';
import { Reason, judgePod } from './verdict.ts';
import { compareText } from '../util/compare.ts';

/** A conflicting pod filed by the domain it runs in. */
type ByDomain = Map<string, InvolvedPod[]>;

const file = (map: ByDomain, p: InvolvedPod): void => {
  const value = p.domain.slice(p.domain.indexOf('=') + 1);
  const list = map.get(value) ?? [];
  list.push(p);
  map.set(value, list);
};

/** What the per-node checks read, computed once for the pod. */
export class PodChecks {
  readonly spread: SpreadIndex;
  private readonly spreadPods: SpreadPod[];
  private readonly target: PodPlacement;
  private readonly pod: Pod;
  private readonly index: TopologyIndex;
  private readonly nodes: readonly NodeFacts[];
  private readonly hard: readonly SpreadConstraint[];
  /** Per anti-affinity term (by position): the pods it selects, by domain value. */
  private readonly anti: ByDomain[];
  /** Per other pod's anti-affinity term that selects this pod: the carriers, by domain value. */
  private readonly symmetric: { term: SourcedTerm; carriers: ByDomain }[];
  /** Per affinity term: the domain values where a pod meeting all of them runs. */
  private readonly provided: Set<string>[];
  private readonly firstOfGroup: boolean;
  private readonly membersByDomain = new Map<string, InvolvedPod[]>();
  private readonly reached: PodPolicies;
  /** The pod's spread constraints that a policy's spreadAcross wrote, by position. */
  private readonly spreadFrom: ReadonlyMap<number, SpreadOrigin>;

  constructor(
    snapshot: ClusterSnapshot,
    index: TopologyIndex,
    target: PodPlacement,
    pod: Pod,
    nodes: readonly NodeFacts[],
    reached: PodPolicies,
  ) {
    this.reached = reached;
    this.spreadFrom = spreadOrigins(pod, reached);
    this.index = index;
    this.target = target;
    this.pod = pod;
    this.nodes = nodes;
    const cache = new SpreadRulesCache();
    this.spreadPods = snapshot.pods.filter(isPlaced).map((p) => spreadPodOf(p, cache));
    this.spread = new SpreadIndex(nodes, this.spreadPods);
    this.hard = cache.rulesOf(spreadSubjectOf(pod)).hard;
    const others = [...index.allPods()].filter((e) => e.pod.key !== target.key);
    const involved = (e: (typeof others)[number], key: string): InvolvedPod | undefined => {
      const value = labelOf(e.nodeLabels, key);
      return value === undefined
        ? undefined
        : { pod: e.pod.key, node: e.pod.nodeName, domain: `${key}=${value}` };
    };
    this.anti = target.antiAffinity.map((s) => {
      const map: ByDomain = new Map();
      for (const e of others) {
        const p = involved(e, s.term.topologyKey);
        if (p !== undefined && index.selects(s.term, e.pod)) file(map, p);
      }
      return map;
    });
    const exempt = new Set<string>(target.exemptFrom ?? []);
    const symmetric = new Map<string, { term: SourcedTerm; carriers: ByDomain }>();
    for (const e of others)
      for (const s of e.pod.antiAffinity) {
        if (exempt.has(s.source) || !index.selects(s.term, target)) continue;
        const p = involved(e, s.term.topologyKey);
        if (p === undefined) continue;
        const id = `${s.source}\0${s.field}\0${s.term.id}`;
        const entry = symmetric.get(id) ?? { term: s, carriers: new Map<string, InvolvedPod[]>() };
        file(entry.carriers, p);
        symmetric.set(id, entry);
      }
    this.symmetric = [...symmetric.values()];
    this.provided = target.affinity.map(() => new Set<string>());
    let anyProvider = false;
    for (const e of others) {
      if (!target.affinity.every((s) => index.selects(s.term, e.pod))) continue;
      const values = target.affinity.map((s) => labelOf(e.nodeLabels, s.term.topologyKey));
      // The scheduler counts a pod only where its node has every term's topology key.
      if (values.some((v) => v === undefined)) continue;
      anyProvider = true;
      values.forEach((v, i) => this.provided[i]?.add(v ?? ''));
    }
    // The scheduler's exception for the first pod of a group that matches its own terms.
    this.firstOfGroup = !anyProvider && target.affinity.every((s) => index.selects(s.term, target));
  }

  /** Every rule that refuses `node` for the (unbound) pod, in filter order. */
  blocks(node: NodeFacts, spread: SpreadIndex): Block[] {
    const out: Block[] = [];
    const tolerations = this.pod.spec.tolerations ?? [];
    const cordoned =
      node.unschedulable && !tolerations.some((t) => tolerates(t, UNSCHEDULABLE_TAINT));
    if (cordoned)
      out.push({
        rule: 'nodeUnschedulable',
        source: 'node',
        field: 'spec.unschedulable',
        pods: [],
        message: `node ${node.name} is cordoned (spec.unschedulable)`,
      });
    for (const taint of node.taints) {
      if (taint.effect === 'PreferNoSchedule' || tolerations.some((t) => tolerates(t, taint)))
        continue;
      if (cordoned && taint.key === UNSCHEDULABLE_TAINT.key) continue;
      out.push({
        rule: 'taint',
        source: 'node',
        field: 'spec.taints',
        domain: `${taint.key}: ${taint.value ?? ''}`,
        pods: [],
        message: `node ${node.name} has taint ${taintText(taint)}, which the pod does not tolerate`,
      });
    }
    const nodeRules = judgeNodeRules(nodeRulesOfPod(this.pod), node);
    if (nodeRules.kind === 'violated')
      for (const v of nodeRules.violations) out.push(nodeRuleBlock(v));
    for (const c of this.hard) {
      const verdict = spreadFilter(
        spread,
        { labels: this.target.labels, rules: { hard: [c], soft: [] } },
        node,
      );
      if (verdict.kind === 'ok') continue;
      const m = verdict.miss;
      const domain = m.reason === 'overMaxSkew' ? m.domain : undefined;
      const pods = domain === undefined ? [] : this.members(spread, c, domain);
      const origin = this.spreadFrom.get(c.index);
      out.push({
        rule: 'topologySpread',
        source: origin?.source ?? 'pod',
        field: spreadField(c.index, origin),
        topologyKey: c.topologyKey,
        ...(m.reason === 'overMaxSkew'
          ? {
              domain: `${c.topologyKey}=${m.domain}`,
              excess: m.count + m.self - m.min - m.maxSkew,
            }
          : {}),
        pods,
        message: verdict.message,
      });
    }
    this.target.affinity.forEach((s, i) => {
      const key = s.term.topologyKey;
      const value = labelOf(node.labels, key);
      if (value === undefined)
        out.push(
          termBlock('podAffinity', s, undefined, [], Reason.missingTopologyKey(node.name, key)),
        );
      else if (!this.firstOfGroup && this.provided[i]?.has(value) !== true)
        out.push(
          termBlock('podAffinity', s, `${key}=${value}`, [], Reason.noMatchingPod(key, value)),
        );
    });
    this.target.antiAffinity.forEach((s, i) => {
      const key = s.term.topologyKey;
      const value = labelOf(node.labels, key);
      const pods = value === undefined ? [] : (this.anti[i]?.get(value) ?? []);
      if (value !== undefined && pods.length > 0)
        out.push(
          termBlock(
            'podAntiAffinity',
            s,
            `${key}=${value}`,
            pods,
            Reason.antiAffinityMatch(pods.length, key, value),
          ),
        );
    });
    for (const { term: s, carriers } of this.symmetric) {
      const key = s.term.topologyKey;
      const value = labelOf(node.labels, key);
      const pods = value === undefined ? [] : (carriers.get(value) ?? []);
      const firstPod = pods.map((p) => p.pod).sort(compareText)[0];
      if (value !== undefined && firstPod !== undefined)
        out.push(
          termBlock(
            'symmetricAntiAffinity',
            s,
            `${key}=${value}`,
            pods,
            Reason.symmetricAntiAffinity(firstPod, pods.length, key, value),
          ),
        );
    }
    return out;
  }

  /** The rules a bound pod breaks where it runs, with the pods involved. */
  violations(): Block[] {
    const entry = this.index.get(this.target.key);
    const nodeName = this.target.nodeName;
    const node = this.nodes.find((n) => n.name === nodeName);
    if (entry === undefined || node === undefined) return [];
    // Node rules and spread as the audit attributes them: a policy's are the policy's.
    const out: Block[] = judgePodNodeRules(this.pod, node, this.reached).violations.map(
      attributedNodeBlock,
    );
    const self = this.spreadPods.find((p) => p.key === this.target.key);
    const spread = self === undefined ? undefined : new SpreadJudge(this.spread).judge(self);
    if (spread?.kind === 'violated')
      for (const v of spread.violations) {
        const origin = this.spreadFrom.get(v.constraint);
        const { source, message } = spreadAttribution(v, origin);
        out.push({
          rule: 'topologySpread',
          source,
          field: spreadField(v.constraint, origin),
          topologyKey: v.topologyKey,
          ...(v.domain === undefined ? {} : { domain: `${v.topologyKey}=${v.domain}` }),
          pods: (v.over?.excess ?? []).map((p) => ({
            pod: p.key,
            node: p.nodeName,
            domain: `${v.topologyKey}=${v.domain ?? ''}`,
          })),
          message,
        });
      }
    const verdict = judgePod(this.index, entry);
    if (verdict.kind === 'violated')
      for (const v of verdict.violations) {
        const terms = v.rule === 'podAffinity' ? this.target.affinity : this.target.antiAffinity;
        const s =
          v.rule === 'symmetricAntiAffinity'
            ? this.symmetric.find((x) => x.term.source === v.source && x.term.index === v.term)
                ?.term
            : terms.find((t) => t.source === v.source && t.index === v.term);
        const key = s?.term.topologyKey;
        const value = key === undefined ? undefined : labelOf(node.labels, key);
        const domain = key === undefined || value === undefined ? undefined : `${key}=${value}`;
        let pods: InvolvedPod[] = [];
        if (v.rule === 'podAntiAffinity' && s !== undefined && value !== undefined)
          pods = this.anti[this.target.antiAffinity.indexOf(s)]?.get(value) ?? [];
        if (v.rule === 'symmetricAntiAffinity' && value !== undefined)
          pods = this.symmetric
            .filter((x) => x.term.source === v.source && x.term.index === v.term)
            .flatMap((x) => x.carriers.get(value) ?? []);
        out.push({
          rule: v.rule,
          source: v.source,
          field: s?.field ?? `term ${v.term}`,
          ...(key === undefined ? {} : { topologyKey: key }),
          ...(domain === undefined ? {} : { domain }),
          pods,
          message: v.message,
        });
      }
    return out;
  }

  /** The blocks of a node that is not in the cluster, counted as a domain for topology spread. */
  blocksOfNew(node: NodeFacts): Block[] {
    // Only the pod's own spread constraints count domains; without any, the index serves.
    if (this.hard.length === 0) return this.blocks(node, this.spread);
    return this.blocks(node, new SpreadIndex([...this.nodes, node], this.spreadPods));
  }

  /** The pods a constraint counts in one domain, listed once per domain and index. */
  private members(spread: SpreadIndex, c: SpreadConstraint, domain: string): InvolvedPod[] {
    const key = `${c.groupKey}\0${domain}`;
    const known = spread === this.spread ? this.membersByDomain.get(key) : undefined;
    if (known !== undefined) return known;
    const found = (spread.membersIn(c, new Set([domain])).get(domain) ?? []).map((p) => ({
      pod: p.key,
      node: p.nodeName,
      domain: `${c.topologyKey}=${domain}`,
    }));
    if (spread === this.spread) this.membersByDomain.set(key, found);
    return found;
  }
}

function termBlock(
  rule: 'podAffinity' | 'podAntiAffinity' | 'symmetricAntiAffinity',
  s: SourcedTerm,
  domain: string | undefined,
  pods: readonly InvolvedPod[],
  reason: string,
): Block {
  return {
    rule,
    source: s.source,
    field: s.field,
    topologyKey: s.term.topologyKey,
    selects: selectorText(s.term.selector),
    ...(domain === undefined ? {} : { domain }),
    pods,
    message: `${s.field}: ${reason}`,
  };
}

/** Where a spread constraint of the pod is written: a policy's spreadAcross entry, or the pod. */
const spreadField = (constraint: number, origin: SpreadOrigin | undefined): string =>
  origin === undefined
    ? `spec.topologySpreadConstraints[${constraint}]`
    : `spec.spreadAcross[${origin.index}]`;

const REQUIRED_NODE_FIELD = `spec.affinity.nodeAffinity.${REQUIRED_TERMS}`;

/** A node-rule violation of a bound pod as the audit reports it: the pod's, or a policy's. */
function attributedNodeBlock(v: Violation): Block {
  return {
    rule: v.rule === 'nodeSelector' ? 'nodeSelector' : 'nodeAffinity',
    source: v.source,
    field:
      v.rule === 'nodeSelector'
        ? 'spec.nodeSelector'
        : v.source === 'pod'
          ? REQUIRED_NODE_FIELD
          : `${REQUIRED_NODE_FIELD}.nodeSelectorTerms[${v.term}]`,
    pods: [],
    message: v.message,
  };
}

function nodeRuleBlock(v: NodeRuleViolation): Block {
  return {
    rule: v.rule,
    source: 'pod',
    field: v.rule === 'nodeSelector' ? 'spec.nodeSelector' : REQUIRED_NODE_FIELD,
    pods: [],
    message: v.message,
  };
}
