/**
 * The scheduler's node and spread rules judged on bound pods: required node affinity and
 * `nodeSelector` against the node's labels now (the NodeAffinity filter again; the rules are
 * IgnoredDuringExecution, so a relabelled node keeps pods that no longer meet them), and
 * DoNotSchedule topology spread constraints as PodTopologySpread counts them; ScheduleAnyway
 * ones are scored (SpreadJudge.score). A policy's node requirements are judged as the
 * policy's (the operator ANDs them into every term); the pod's own node affinity, those
 * requirements taken out, as the pod's.
 *
 * Long because both kinds of rule are judged in one walk over the bound pods that shares
 * each pod's policies, node facts and spread counts, and a policy's node requirements must be
 * told apart from the pod's own in the same place; the rules themselves are node-affinity.ts
 * and topology-spread.ts.
 */
import type { Labels, Node, NodeAffinity, NodeSelectorTerm, Pod } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { asServerStores, canonicalJson } from './canonical.ts';
import { FieldError, type InvalidObjectError } from './errors.ts';
import {
  judgeNodeRules,
  noTermText,
  nodeRulesHold,
  nodeRulesOfPod,
  nodeSelectorAndAffinityHold,
  nodeTermMatches,
  termMiss,
  termMissText,
  type NodeIdentity,
  type NodeRules,
  type TermMiss,
} from './node-affinity.ts';
import { nodeFacts, type NodeFacts } from './node-eligibility.ts';
import type { PreferredScore, SpreadScore, TermSource, Violation } from './placement.ts';
import { isPlaced, podKey } from './pod-placement.ts';
import { policySpreadEntries, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { SpreadIndex, SpreadRulesCache, spreadPodOf, type SpreadPod } from './spread-index.ts';
import {
  SpreadJudge,
  spreadFilter,
  type OverDomain,
  type SpreadViolation,
} from './topology-spread.ts';
import {
  policyPreferredNodeTerms,
  scoredNodeTerms,
  type PreferredNodeTerm,
} from './preferred-node-terms.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';
import { runAll, UNITS_PER_STEP, type Steps } from '../util/steps.ts';

/** The policies that target a pod's workload (priority order), and those it is exempt from. */
export interface PodPolicies {
  readonly targeting: readonly CompiledPolicy[];
  readonly exempt: readonly PolicyRef[];
  /** The pod's workload: a policy's spread constraints select its pods. */
  readonly workload?: WorkloadRef;
}

export interface NodeSpreadInput {
  readonly nodes: readonly Node[];
  /** Every pod; the placed ones count, the judged ones (placed, not being deleted) are judged. */
  readonly pods: readonly Pod[];
  readonly policiesOf: (pod: Pod) => PodPolicies;
  /**
   * Kept by the caller between passes: each Pod object's compiled spread rules. A Pod object
   * of an informer cache is replaced, never changed, when the pod changes, so a pass compiles
   * the rules of changed pods only.
   */
  readonly compiled?: SpreadPodCache;
}

/** Compiled spread rules by Pod object (see NodeSpreadInput.compiled). */
export class SpreadPodCache {
  /**
   * The `namespace/name` string a record keeps for a Pod: a new one, unless the owner hands
   * out one another structure keeps already (one string per pod, not one per structure).
   */
  readonly keyOf: (pod: Pod) => string;
  readonly records = new WeakMap<Pod, PodRecord>();
  readonly rules = new SpreadRulesCache();
  /**
   * The last pass's pod list and each one's kept record, by position: a pass over the same
   * list compares each Pod with the one at its place before asking `records` (a hash look-up
   * that reads the Pod object). Undefined at a place whose record is not kept.
   */
  last: { readonly pods: readonly Pod[]; readonly records: readonly (PodRecord | undefined)[] } = {
    pods: [],
    records: [],
  };

  constructor(keyOf: (pod: Pod) => string = podKey) {
    this.keyOf = keyOf;
  }
}

/**
 * What a pass reads of a Pod object, kept with it: the walk over every pod reads this one
 * record instead of the Pod's metadata, spec and affinity objects (a cache miss each).
 */
interface PodRecord {
  /** Undefined for a pod that is not placed (isPlaced): nothing counted or judged. */
  readonly spread: SpreadPod | undefined;
  /** The pod's own node rules: `spec.nodeSelector`, `spec.affinity.nodeAffinity`. */
  readonly nodeSelector: Labels | undefined;
  readonly nodeAffinity: NodeAffinity | undefined;
}

const NOT_PLACED: PodRecord = Object.freeze({
  spread: undefined,
  nodeSelector: undefined,
  nodeAffinity: undefined,
});

/** What judging the node and spread rules of every pod found. */
export interface NodeSpreadAudit {
  readonly violations: readonly Violation[];
  /**
   * Preferred node-affinity terms met where each pod runs, and its ScheduleAnyway spread
   * constraints' score (`spread`), for pods that have either.
   */
  readonly preferred: ReadonlyMap<string, PreferredScore>;
  /** Pods whose topologySpreadConstraints cannot be read: judged without them. */
  readonly problems: readonly InvalidObjectError[];
  /**
   * Whether the pod `key` could run on `node` under these rules: its node rules and its
   * policies' node requirements hold there, and its spread constraints admit it (as the
   * PodTopologySpread filter would for a new pod). Remediation asks it of other nodes.
   */
  readonly accepts: (key: string, node: NodeFacts) => boolean;
}

const REQUIRED_FIELD = `spec.affinity.nodeAffinity.${REQUIRED}`;

/** A policy's required nodeSelectorTerms: each one's requirements are ANDed into the pod's terms. */
const policyNodeTerms = (p: CompiledPolicy): readonly NodeSelectorTerm[] =>
  p.affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? [];

/** The node rules a pod's policies add, as one pod sees them. */
export interface Attributed {
  readonly own: OwnNodeRules;
  readonly policies: readonly CompiledPolicy[];
}

/** Where each requirement left in a term stood in the pod's term before its policies' went. */
interface TermPositions {
  readonly matchExpressions: readonly number[];
  readonly matchFields: readonly number[];
}

/** The pod's own node rules, and (when requirements were taken out) where each left one was. */
export interface OwnNodeRules {
  readonly rules: NodeRules;
  /** By required term; absent when nothing was taken out. */
  readonly positions?: readonly TermPositions[];
}

/**
 * The pod's own node rules with its policies' requirements taken out of each required term:
 * a term left with none held only injected requirements, so the pod's own part always holds.
 * Messages name a requirement by its place in the pod's spec: `positions` keeps it.
 */
export function ownNodeRules(pod: Pod, policies: readonly CompiledPolicy[]): OwnNodeRules {
  const rules = nodeRulesOfPod(pod);
  const terms = rules.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms;
  if (terms === undefined || policies.length === 0) return { rules };
  const injected = new Set<string>();
  for (const p of policies) {
    for (const t of policyNodeTerms(p)) {
      for (const e of t.matchExpressions ?? []) injected.add(`e${canonicalJson(e)}`);
      for (const f of t.matchFields ?? []) injected.add(`f${canonicalJson(f)}`);
    }
  }
  if (injected.size === 0) return { rules };
  /** The requirements of a list that are the pod's own, each with its place in the list. */
  const kept = <T>(list: readonly T[] | undefined, tag: string): { item: T; at: number }[] =>
    (list ?? []).flatMap((item, at) =>
      injected.has(`${tag}${canonicalJson(item)}`) ? [] : [{ item, at }],
    );
  const stripped: NodeSelectorTerm[] = [];
  const positions: TermPositions[] = [];
  for (const t of terms) {
    const expressions = kept(t.matchExpressions, 'e');
    const fields = kept(t.matchFields, 'f');
    const had = (t.matchExpressions ?? []).length + (t.matchFields ?? []).length;
    if (had > 0 && expressions.length === 0 && fields.length === 0) {
      const { nodeAffinity, ...rest } = rules;
      const { [REQUIRED]: _, ...affinity } = nodeAffinity ?? {};
      return {
        rules: Object.keys(affinity).length === 0 ? rest : { ...rest, nodeAffinity: affinity },
      };
    }
    stripped.push({
      ...(expressions.length > 0 ? { matchExpressions: expressions.map((e) => e.item) } : {}),
      ...(fields.length > 0 ? { matchFields: fields.map((f) => f.item) } : {}),
    });
    positions.push({
      matchExpressions: expressions.map((e) => e.at),
      matchFields: fields.map((f) => f.at),
    });
  }
  const nodeAffinity: NodeAffinity = {
    ...rules.nodeAffinity,
    [REQUIRED]: { nodeSelectorTerms: stripped },
  };
  return { rules: { ...rules, nodeAffinity }, positions };
}

/** A miss of a stripped term, its requirement named by its place in the pod's own term. */
function asWritten(miss: TermMiss, at: TermPositions | undefined): TermMiss {
  if (miss.kind === 'empty' || at === undefined) return miss;
  return { ...miss, index: at[miss.kind][miss.index] ?? miss.index };
}

/** The violations of a pod's node rules where it runs, its policies' requirements included. */
function nodeRuleViolations(pod: Pod, node: NodeIdentity, rules: Attributed): Violation[] {
  const base = { pod: podKey(pod), node: node.name };
  const out: Violation[] = [];
  const { positions } = rules.own;
  const verdict = judgeNodeRules(rules.own.rules, node);
  if (verdict.kind === 'violated') {
    for (const v of verdict.violations) {
      // `spec.nodeSelector pool=gpu: node ...`, `spec.affinity.nodeAffinity.required...: ...`
      const message =
        v.rule === 'nodeSelector'
          ? `spec.${v.message}`
          : `${REQUIRED_FIELD}: ${
              positions === undefined
                ? v.message
                : noTermText(
                    node.name,
                    v.misses.map((m, i) => asWritten(m, positions[i])),
                  )
            }`;
      out.push({ ...base, rule: v.rule, source: 'pod', term: 0, message });
    }
  }
  for (const p of rules.policies) {
    for (const [i, term] of policyNodeTerms(p).entries()) {
      const miss = termMiss(term, node);
      // An empty term injects nothing.
      if (miss === undefined || miss.kind === 'empty') continue;
      out.push({
        ...base,
        rule: 'nodeAffinity',
        source: p.ref,
        term: i,
        message: `spec.affinity.nodeAffinity.${REQUIRED}: node ${node.name}: ${termMissText(i, miss)}`,
      });
      break;
    }
  }
  return out;
}

/**
 * Preferred node-affinity terms (the pod's own `own` and its policies', each once:
 * scoredNodeTerms) met on `node`.
 */
function preferredNodeScore(
  own: readonly PreferredNodeTerm[] | undefined,
  policies: readonly CompiledPolicy[],
  node: NodeIdentity,
): PreferredScore | undefined {
  if (own === undefined && policies.length === 0) return undefined;
  // The pod's own list of one term and no policy (the usual case) has nothing to repeat: no
  // canonical text, nothing allocated.
  const terms =
    policies.length === 0 && (own === undefined || own.length <= 1)
      ? (own ?? [])
      : scoredNodeTerms(own ?? [], policies).flatMap((s) => (s.repeat ? [] : [s.term]));
  let totalWeight = 0;
  let satisfiedWeight = 0;
  for (let i = 0; i < terms.length; i++) {
    const t = terms[i] as PreferredNodeTerm;
    if (t.weight === 0) continue;
    totalWeight += t.weight;
    if (nodeTermMatches(t.preference, node)) satisfiedWeight += t.weight;
  }
  // As the NodeAffinity score: the sum of the weights of the terms the node matches.
  return totalWeight === 0 ? undefined : { score: satisfiedWeight, satisfiedWeight, totalWeight };
}

/** Who wrote a spread constraint of the pod: a policy's `spreadAcross` entry, or the pod. */
export interface SpreadOrigin {
  readonly source: PolicyRef;
  /** The `spec.spreadAcross` position in the policy. */
  readonly index: number;
}

/**
 * The constraints of a pod that its policies wrote, by position in the pod's list: a
 * constraint equal to one a targeting policy injects into the workload (`spreadAcross` with
 * TopologySpread, recorded in its `placement.dev/applied` record) is the policy's.
 */
export function spreadOrigins(pod: Pod, reached: PodPolicies): ReadonlyMap<number, SpreadOrigin> {
  const own = pod.spec.topologySpreadConstraints ?? [];
  const workload = reached.workload;
  if (own.length === 0 || workload === undefined) return NO_ORIGINS;
  const byText = new Map<string, SpreadOrigin>();
  for (const p of reached.targeting) {
    if (reached.exempt.includes(p.ref)) continue;
    for (const e of policySpreadEntries(p, workload)) {
      const text = canonicalJson(asServerStores(e.constraint));
      if (!byText.has(text)) byText.set(text, { source: p.ref, index: e.index });
    }
  }
  if (byText.size === 0) return NO_ORIGINS;
  const out = new Map<number, SpreadOrigin>();
  own.forEach((c, i) => {
    const origin = byText.get(canonicalJson(asServerStores(c)));
    if (origin !== undefined) out.set(i, origin);
  });
  return out;
}

const NO_ORIGINS: ReadonlyMap<number, SpreadOrigin> = new Map();

/** Who a spread violation is reported under (`term`: the position where it is written), and its text. */
export function spreadAttribution(
  v: SpreadViolation,
  origin: SpreadOrigin | undefined,
): { source: TermSource; term: number; message: string } {
  return origin === undefined
    ? { source: 'pod', term: v.constraint, message: `spec.${v.message}` }
    : {
        source: origin.source,
        term: origin.index,
        message: `spec.spreadAcross[${origin.index}]: the pod's ${v.message}`,
      };
}

/** A pod's spread violations as the audit reports them, each under who wrote the constraint. */
function spreadViolations(
  spread: SpreadPod,
  node: string,
  found: readonly SpreadViolation[],
  origins: ReadonlyMap<number, SpreadOrigin>,
  excessKeys: (over: OverDomain) => readonly string[],
): Violation[] {
  return found.map((v): Violation => {
    const origin = origins.get(v.constraint);
    if (origin === undefined && v.domain !== undefined && v.over !== undefined) {
      // The usual case, written out: one object of one shape, no spread temporaries.
      return {
        pod: spread.key,
        node,
        rule: 'topologySpread',
        source: 'pod',
        term: v.constraint,
        message: `spec.${v.message}`,
        domain: `${v.topologyKey}=${v.domain}`,
        over: v.over.over,
        excess: excessKeys(v.over),
      };
    }
    return {
      pod: spread.key,
      node,
      rule: 'topologySpread',
      ...spreadAttribution(v, origin),
      ...(v.domain === undefined ? {} : { domain: `${v.topologyKey}=${v.domain}` }),
      ...(v.over === undefined ? {} : { over: v.over.over, excess: excessKeys(v.over) }),
    };
  });
}

/** Whether a policy has node affinity or spread constraints, the parts of it these rules judge. */
export const hasNodeOrSpreadRules = (p: CompiledPolicy): boolean =>
  policyNodeTerms(p).length > 0 ||
  policyPreferredNodeTerms(p).length > 0 ||
  p.spread.some((s) => s.constraint === 'TopologySpread');

/** The pod's own node rules and the policies whose node requirements it is judged by. */
export function attributed(pod: Pod, { targeting, exempt }: PodPolicies): Attributed {
  const policies = targeting.filter(
    (p) => !exempt.includes(p.ref) && policyNodeTerms(p).length > 0,
  );
  return { own: ownNodeRules(pod, policies), policies };
}

/**
 * A placed pod as the spread index holds it, compiled once per Pod object. Constraints that
 * cannot be read are left out (the pod still counts as a neighbour) and `problem` says why.
 */
export function placedSpreadPod(
  pod: Pod,
  compiled: SpreadPodCache,
): { spread: SpreadPod; problem?: InvalidObjectError } {
  const known = compiled.records.get(pod)?.spread;
  if (known !== undefined) return { spread: known };
  try {
    const spread = spreadPodOf(pod, compiled.rules, compiled.keyOf(pod));
    compiled.records.set(pod, {
      spread,
      nodeSelector: pod.spec.nodeSelector,
      nodeAffinity: pod.spec.affinity?.nodeAffinity,
    });
    return { spread };
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    const { topologySpreadConstraints: _, ...spec } = pod.spec;
    return {
      spread: spreadPodOf({ ...pod, spec }, compiled.rules),
      problem: err.forObject(`Pod ${podKey(pod)}`),
    };
  }
}

/** A judged pod's node-rule violations where it runs, and its preferred node-affinity score. */
export function judgePodNodeRules(pod: Pod, node: NodeFacts, reached: PodPolicies): NodeFindings {
  return nodeFindings(pod, pod.spec.nodeSelector, pod.spec.affinity?.nodeAffinity, node, reached);
}

interface NodeFindings {
  readonly violations: readonly Violation[];
  readonly preferred: PreferredScore | undefined;
}

/** judgePodNodeRules, the pod's own rules (its spec's two fields) given apart. */
function nodeFindings(
  pod: Pod,
  nodeSelector: Labels | undefined,
  nodeAffinity: NodeAffinity | undefined,
  node: NodeFacts,
  reached: PodPolicies,
): NodeFindings {
  if (reached.targeting.length === 0) {
    // No policy reaches the pod (most pods): its own rules alone, and nothing allocated for a
    // pod without any or whose node meets them.
    if (nodeSelector === undefined && nodeAffinity === undefined) return NO_NODE_FINDINGS;
    const holds = nodeSelectorAndAffinityHold(nodeSelector, nodeAffinity, node);
    const preferred = preferredNodeScore(nodeAffinity?.[PREFERRED], NO_POLICIES, node);
    if (holds && preferred === undefined) return NO_NODE_FINDINGS;
    const violations = holds
      ? NO_VIOLATIONS
      : nodeRuleViolations(pod, node, attributed(pod, reached));
    return { violations, preferred };
  }
  const violations = nodeRuleViolations(pod, node, attributed(pod, reached));
  const preferred = preferredNodeScore(
    nodeAffinity?.[PREFERRED],
    reached.targeting.filter((p) => !reached.exempt.includes(p.ref)),
    node,
  );
  return { violations, preferred };
}

const NO_POLICIES: readonly CompiledPolicy[] = Object.freeze([]);
const NO_VIOLATIONS: readonly Violation[] = Object.freeze([]);
const NO_NODE_FINDINGS: NodeFindings = Object.freeze({
  violations: NO_VIOLATIONS,
  preferred: undefined,
});

/**
 * A pod's DoNotSchedule spread violations, each under who wrote the constraint (`reached`:
 * the policies that reach the pod); `excessKeys` names each over domain's excess once.
 */
export function judgePodSpread(
  spreadJudge: SpreadJudge,
  spread: SpreadPod,
  pod: Pod,
  node: string,
  reached: PodPolicies | undefined,
  excessKeys: (over: OverDomain) => readonly string[],
): Violation[] {
  const verdict = spreadJudge.judge(spread);
  if (verdict.kind !== 'violated') return [];
  const origins = reached === undefined ? NO_ORIGINS : spreadOrigins(pod, reached);
  return spreadViolations(spread, node, verdict.violations, origins, excessKeys);
}

const NO_PREFERRED: PreferredScore = Object.freeze({
  score: 0,
  satisfiedWeight: 0,
  totalWeight: 0,
});

/**
 * A pod's preferred score from these rules: its preferred node-affinity terms' and its
 * ScheduleAnyway spread constraints' (SpreadJudge.score); undefined when it has neither.
 */
export function withSpreadScore(
  node: PreferredScore | undefined,
  spread: SpreadScore,
): PreferredScore;
export function withSpreadScore(
  node: PreferredScore | undefined,
  spread: SpreadScore | undefined,
): PreferredScore | undefined;
export function withSpreadScore(
  node: PreferredScore | undefined,
  spread: SpreadScore | undefined,
): PreferredScore | undefined {
  return spread === undefined ? node : { ...(node ?? NO_PREFERRED), spread };
}

/** Every excess pod of a domain names the same excess: one list per over domain. */
export function excessNamer(): (over: OverDomain) => readonly string[] {
  const lists = new Map<OverDomain, readonly string[]>();
  return (over) => {
    let keys = lists.get(over);
    if (keys === undefined) lists.set(over, (keys = over.excess.map((p) => p.key)));
    return keys;
  };
}

/** NodeSpreadAudit.accepts for the pods `find` knows, their spread counted by `index`. */
export function acceptsOf(
  find: (key: string) => { pod: Pod; spread: SpreadPod } | undefined,
  index: () => SpreadIndex,
  policiesOf: (pod: Pod) => PodPolicies,
): (key: string, node: NodeFacts) => boolean {
  return (key, node) => {
    const found = find(key);
    if (found === undefined) return false;
    const { pod, spread } = found;
    const rules = attributed(pod, policiesOf(pod));
    if (!nodeRulesHold(rules.own.rules, node)) return false;
    for (const p of rules.policies) {
      for (const term of policyNodeTerms(p)) {
        const miss = termMiss(term, node);
        if (miss !== undefined && miss.kind !== 'empty') return false;
      }
    }
    const candidate = { labels: spread.labels, rules: spread.rules };
    return spreadFilter(index(), candidate, node).kind === 'ok';
  };
}

/**
 * Judges every judged pod against its node rules and DoNotSchedule spread constraints, and
 * scores its preferred node affinity and ScheduleAnyway spread constraints.
 *
 * One walk over the Pod objects files each placed pod in the spread index, judges the node
 * rules and keeps, in pod order, only the pods that have more to report: those with a spread
 * constraint (judged or scored once the index holds every placed pod) or a node-rule
 * violation. The pods are the bulk of the heap, so each walk over them costs cache misses on
 * every one.
 */
export function judgeNodeAndSpread(input: NodeSpreadInput): NodeSpreadAudit {
  return runAll(judgeNodeAndSpreadSteps(input));
}

/** judgeNodeAndSpread, yielding every UNITS_PER_STEP pods it walks or judges. */
export function* judgeNodeAndSpreadSteps(input: NodeSpreadInput): Steps<NodeSpreadAudit> {
  const nodes = new Map<string, NodeFacts>();
  for (const n of input.nodes) nodes.set(n.metadata.name, nodeFacts(n));
  const index = new SpreadIndex(nodes.values(), NO_SPREAD_PODS);
  const pass = new NodeRulesWalk(nodes, index, input);
  // Indexed loops, the per-pod work in methods: they stay optimized from pass to pass.
  for (let i = 0; i < input.pods.length; i++) {
    pass.place(input.pods[i] as Pod, i);
    if (i % UNITS_PER_STEP === 0) yield;
  }
  pass.keep();
  const spreadJudge = new SpreadJudge(index);
  const violations: Violation[] = [];
  const excessKeys = excessNamer();
  const { later, laterMore, laterScored, scored } = pass;
  // The preferred scores in the order a map filled as found would hold them: the pods with a
  // node score in pod order, then those with a spread score alone; one entry each.
  const spreadOnly: [string, PreferredScore][] = [];
  for (let i = 0; i < later.length; i++) {
    if (i % UNITS_PER_STEP === 0) yield;
    const spread = later[i] as SpreadPod;
    judgeLater(spread, laterMore[i], spreadJudge, excessKeys, violations);
    const score = spreadJudge.score(spread);
    if (score === undefined) continue;
    const at = laterScored[i] as number;
    const both = at < 0 ? undefined : (scored[at] as [string, PreferredScore]);
    if (both === undefined) spreadOnly.push([spread.key, withSpreadScore(undefined, score)]);
    else both[1] = withSpreadScore(both[1], score);
  }
  const preferred = new Map<string, PreferredScore>(scored);
  for (let i = 0; i < spreadOnly.length; i++) {
    const [key, score] = spreadOnly[i] as [string, PreferredScore];
    preferred.set(key, score);
  }
  // Remediation asks where a few pods could go: found by key when first asked.
  let byKey: Map<string, { pod: Pod; spread: SpreadPod }> | undefined;
  const find = (key: string): { pod: Pod; spread: SpreadPod } | undefined => {
    byKey ??= pass.placedByKey(input.pods);
    return byKey.get(key);
  };
  const accepts = acceptsOf(find, () => index, input.policiesOf);
  return { violations, preferred, problems: pass.problems, accepts };
}

const NO_SPREAD_PODS: readonly SpreadPod[] = Object.freeze([]);

/** What a pod kept for later has to report besides its spread: see NodeRulesWalk.later. */
interface LaterMore {
  readonly pod: Pod;
  readonly reached: PodPolicies;
  readonly nodeRules: readonly Violation[];
}

/** A pod's findings in pod order: its node-rule violations, then its spread violations. */
function judgeLater(
  spread: SpreadPod,
  more: LaterMore | undefined,
  spreadJudge: SpreadJudge,
  excessKeys: (over: OverDomain) => readonly string[],
  out: Violation[],
): void {
  if (more !== undefined) {
    for (let i = 0; i < more.nodeRules.length; i++) out.push(more.nodeRules[i] as Violation);
  }
  if (spread.rules.hard.length === 0) return;
  const verdict = spreadJudge.judge(spread);
  if (verdict.kind !== 'violated') return;
  // Only a pod that policies reach can carry a constraint one of them wrote.
  const origins = more === undefined ? NO_ORIGINS : spreadOrigins(more.pod, more.reached);
  const found = spreadViolations(spread, spread.nodeName, verdict.violations, origins, excessKeys);
  for (let i = 0; i < found.length; i++) out.push(found[i] as Violation);
}

/**
 * The one walk over the Pod objects: each placed pod's record found (compiled once per Pod
 * object) and its spread form filed in the index, a judged pod's node rules judged, and the
 * pods with more to report kept in pod order: a carrier of a spread constraint (judged and
 * scored once the index holds every placed pod) or a pod that breaks a node rule.
 */
class NodeRulesWalk {
  /** The pods kept for later, in pod order; `laterMore` beside each, for a pod with more. */
  readonly later: SpreadPod[] = [];
  /** Undefined (nothing allocated) for a pod that no policy reaches and meets its node rules. */
  readonly laterMore: (LaterMore | undefined)[] = [];
  /** Each pod's node score as found, in pod order; `laterScored`: its place here, or -1. */
  readonly scored: [string, PreferredScore][] = [];
  readonly laterScored: number[] = [];
  readonly problems: InvalidObjectError[] = [];
  /** The placed pods whose constraints cannot be read: their form without them. */
  private readonly unreadable = new Map<Pod, SpreadPod>();
  /** The pod list and the kept records by position, for the next pass (SpreadPodCache.last). */
  private readonly pods: Pod[];
  private readonly records: (PodRecord | undefined)[];
  private readonly last: SpreadPodCache['last'];
  private readonly nodes: ReadonlyMap<string, NodeFacts>;
  private readonly index: SpreadIndex;
  private readonly compiled: SpreadPodCache;
  private readonly policiesOf: (pod: Pod) => PodPolicies;

  constructor(nodes: ReadonlyMap<string, NodeFacts>, index: SpreadIndex, input: NodeSpreadInput) {
    this.nodes = nodes;
    this.index = index;
    this.compiled = input.compiled ?? new SpreadPodCache();
    this.policiesOf = input.policiesOf;
    this.last = this.compiled.last;
    // Sized once: no growing copies of two lists as long as the pods.
    this.pods = new Array<Pod>(input.pods.length);
    this.records = new Array<PodRecord | undefined>(input.pods.length);
  }

  /** Keeps this pass's list and records for the next pass. */
  keep(): void {
    this.compiled.last = { pods: this.pods, records: this.records };
  }

  /** `pod`, at position `at` of the pod list. */
  place(pod: Pod, at: number): void {
    let record = this.last.pods[at] === pod ? this.last.records[at] : undefined;
    if (record === undefined) record = this.compiled.records.get(pod);
    if (record === undefined) {
      record = this.record(pod);
      if (!this.unreadable.has(pod)) this.records[at] = record;
    } else this.records[at] = record;
    this.pods[at] = pod;
    const spread = record.spread;
    if (spread === undefined) return;
    this.index.addPod(spread);
    if (spread.terminating === true) return;
    const node = this.nodes.get(spread.nodeName);
    if (node === undefined) return;
    const reached = this.policiesOf(pod);
    const rules = nodeFindings(pod, record.nodeSelector, record.nodeAffinity, node, reached);
    const scoredAt = rules.preferred === undefined ? -1 : this.scored.length;
    if (rules.preferred !== undefined) this.scored.push([spread.key, rules.preferred]);
    if (
      rules.violations.length > 0 ||
      spread.rules.hard.length > 0 ||
      spread.rules.soft.length > 0
    ) {
      this.later.push(spread);
      this.laterScored.push(scoredAt);
      this.laterMore.push(
        rules.violations.length > 0 || reached.targeting.length > 0
          ? { pod, reached, nodeRules: rules.violations }
          : undefined,
      );
    }
  }

  /** The record of a Pod object seen for the first time; not kept when its constraints cannot be read. */
  private record(pod: Pod): PodRecord {
    if (!isPlaced(pod)) {
      this.compiled.records.set(pod, NOT_PLACED);
      return NOT_PLACED;
    }
    const found = placedSpreadPod(pod, this.compiled);
    if (found.problem === undefined) return this.compiled.records.get(pod) ?? NOT_PLACED;
    // Not kept: the pod's problem is reported on every pass.
    this.problems.push(found.problem);
    this.unreadable.set(pod, found.spread);
    return {
      spread: found.spread,
      nodeSelector: pod.spec.nodeSelector,
      nodeAffinity: pod.spec.affinity?.nodeAffinity,
    };
  }

  /** Every placed pod of `pods` by key (a later pod of one key wins), with its spread form. */
  placedByKey(pods: readonly Pod[]): Map<string, { pod: Pod; spread: SpreadPod }> {
    const out = new Map<string, { pod: Pod; spread: SpreadPod }>();
    for (const pod of pods) {
      const spread = this.compiled.records.get(pod)?.spread ?? this.unreadable.get(pod);
      if (spread !== undefined) out.set(spread.key, { pod, spread });
    }
    return out;
  }
}
