/**
 * The scheduler's node and spread rules judged on bound pods: required node affinity and
 * `nodeSelector` against the node's labels now (the NodeAffinity filter again; the rules are
 * IgnoredDuringExecution, so a relabelled node keeps pods that no longer meet them), and
 * DoNotSchedule topology spread constraints as PodTopologySpread counts them. A policy's
 * node requirements are judged as the policy's (the operator ANDs them into every term);
 * the pod's own node affinity, those requirements taken out, as the pod's.
 */
import type { Node, NodeAffinity, NodeSelectorTerm, Pod } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { canonicalJson } from './canonical.ts';
import { FieldError, type InvalidObjectError } from './errors.ts';
import {
  judgeNodeRules,
  nodeRulesHold,
  nodeRulesOfPod,
  nodeTermMatches,
  termMiss,
  termMissText,
  type NodeIdentity,
  type NodeRules,
} from './node-affinity.ts';
import { nodeFacts, type NodeFacts } from './node-eligibility.ts';
import type { PreferredScore, Violation } from './placement.ts';
import { isJudged, isPlaced, podKey } from './pod-placement.ts';
import type { CompiledPolicy } from './policy.ts';
import { SpreadIndex, SpreadRulesCache, spreadPodOf, type SpreadPod } from './spread-index.ts';
import {
  SpreadJudge,
  spreadFilter,
  type OverDomain,
  type SpreadViolation,
} from './topology-spread.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';

/** The policies that target a pod's workload (priority order), and those it is exempt from. */
export interface PodPolicies {
  readonly targeting: readonly CompiledPolicy[];
  readonly exempt: readonly PolicyRef[];
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
  readonly pods = new WeakMap<Pod, SpreadPod>();
  readonly rules = new SpreadRulesCache();
}

/** What judging the node and spread rules of every pod found. */
export interface NodeSpreadAudit {
  readonly violations: readonly Violation[];
  /** Preferred node-affinity terms met where each pod runs, for pods that have some. */
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
interface Attributed {
  readonly own: NodeRules;
  readonly policies: readonly CompiledPolicy[];
}

/**
 * The pod's own node rules with its policies' requirements taken out of each required term:
 * a term left with none held only injected requirements, so the pod's own part always holds.
 */
export function ownNodeRules(pod: Pod, policies: readonly CompiledPolicy[]): NodeRules {
  const rules = nodeRulesOfPod(pod);
  const terms = rules.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms;
  if (terms === undefined || policies.length === 0) return rules;
  const injected = new Set<string>();
  for (const p of policies) {
    for (const t of policyNodeTerms(p)) {
      for (const e of t.matchExpressions ?? []) injected.add(`e${canonicalJson(e)}`);
      for (const f of t.matchFields ?? []) injected.add(`f${canonicalJson(f)}`);
    }
  }
  if (injected.size === 0) return rules;
  const stripped: NodeSelectorTerm[] = [];
  for (const t of terms) {
    const expressions = (t.matchExpressions ?? []).filter(
      (e) => !injected.has(`e${canonicalJson(e)}`),
    );
    const fields = (t.matchFields ?? []).filter((f) => !injected.has(`f${canonicalJson(f)}`));
    const had = (t.matchExpressions ?? []).length + (t.matchFields ?? []).length;
    if (had > 0 && expressions.length === 0 && fields.length === 0) {
      const { nodeAffinity, ...rest } = rules;
      const { [REQUIRED]: _, ...affinity } = nodeAffinity ?? {};
      return Object.keys(affinity).length === 0 ? rest : { ...rest, nodeAffinity: affinity };
    }
    stripped.push({
      ...(expressions.length > 0 ? { matchExpressions: expressions } : {}),
      ...(fields.length > 0 ? { matchFields: fields } : {}),
    });
  }
  const nodeAffinity: NodeAffinity = {
    ...rules.nodeAffinity,
    [REQUIRED]: { nodeSelectorTerms: stripped },
  };
  return { ...rules, nodeAffinity };
}

/** The violations of a pod's node rules where it runs, its policies' requirements included. */
function nodeRuleViolations(pod: Pod, node: NodeIdentity, rules: Attributed): Violation[] {
  const base = { pod: podKey(pod), node: node.name };
  const out: Violation[] = [];
  const verdict = judgeNodeRules(rules.own, node);
  if (verdict.kind === 'violated') {
    for (const v of verdict.violations) {
      // `spec.nodeSelector pool=gpu: node ...`, `spec.affinity.nodeAffinity.required...: ...`
      const message =
        v.rule === 'nodeSelector' ? `spec.${v.message}` : `${REQUIRED_FIELD}: ${v.message}`;
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

/** Preferred node-affinity terms (the pod's own and its policies', each once) met on `node`. */
function preferredNodeScore(
  pod: Pod,
  policies: readonly CompiledPolicy[],
  node: NodeIdentity,
): PreferredScore | undefined {
  const own = pod.spec.affinity?.nodeAffinity?.[PREFERRED];
  if (own === undefined && policies.length === 0) return undefined;
  const seen = new Set<string>();
  let totalWeight = 0;
  let satisfiedWeight = 0;
  const all = [
    ...(own ?? []),
    ...policies.flatMap((p) => p.affinity.nodeAffinity?.[PREFERRED] ?? []),
  ];
  for (const t of all) {
    const key = canonicalJson(t);
    if (seen.has(key) || t.weight === 0) continue;
    seen.add(key);
    totalWeight += t.weight;
    if (nodeTermMatches(t.preference, node)) satisfiedWeight += t.weight;
  }
  // As the NodeAffinity score: the sum of the weights of the terms the node matches.
  return totalWeight === 0 ? undefined : { score: satisfiedWeight, satisfiedWeight, totalWeight };
}

/** A pod's spread violations as the audit reports them. */
function spreadViolations(
  spread: SpreadPod,
  node: string,
  found: readonly SpreadViolation[],
  excessKeys: (over: OverDomain) => readonly string[],
): Violation[] {
  return found.map((v) => ({
    pod: spread.key,
    node,
    rule: 'topologySpread',
    source: 'pod',
    term: v.constraint,
    message: `spec.${v.message}`,
    ...(v.domain === undefined ? {} : { domain: `${v.topologyKey}=${v.domain}` }),
    ...(v.over === undefined ? {} : { over: v.over.over, excess: excessKeys(v.over) }),
  }));
}

/** Whether a policy has node affinity, the part of it these rules judge. */
export const hasNodeAffinity = (p: CompiledPolicy): boolean =>
  policyNodeTerms(p).length > 0 || (p.affinity.nodeAffinity?.[PREFERRED] ?? []).length > 0;

/** The pod's own node rules and the policies whose node requirements it is judged by. */
function attributed(pod: Pod, { targeting, exempt }: PodPolicies): Attributed {
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
  const known = compiled.pods.get(pod);
  if (known !== undefined) return { spread: known };
  try {
    const spread = spreadPodOf(pod, compiled.rules);
    compiled.pods.set(pod, spread);
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
export function judgePodNodeRules(
  pod: Pod,
  node: NodeFacts,
  reached: PodPolicies,
): { violations: Violation[]; preferred: PreferredScore | undefined } {
  const violations = nodeRuleViolations(pod, node, attributed(pod, reached));
  const preferred = preferredNodeScore(
    pod,
    reached.targeting.filter((p) => !reached.exempt.includes(p.ref)),
    node,
  );
  return { violations, preferred };
}

/** A pod's DoNotSchedule spread violations; `excessKeys` names each over domain's excess once. */
export function judgePodSpread(
  spreadJudge: SpreadJudge,
  spread: SpreadPod,
  node: string,
  excessKeys: (over: OverDomain) => readonly string[],
): Violation[] {
  const verdict = spreadJudge.judge(spread);
  return verdict.kind === 'violated'
    ? spreadViolations(spread, node, verdict.violations, excessKeys)
    : [];
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
    if (!nodeRulesHold(rules.own, node)) return false;
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

/** Judges every judged pod against its node rules and DoNotSchedule spread constraints. */
export function judgeNodeAndSpread(input: NodeSpreadInput): NodeSpreadAudit {
  const nodes = new Map<string, NodeFacts>();
  for (const n of input.nodes) nodes.set(n.metadata.name, nodeFacts(n));
  const problems: InvalidObjectError[] = [];
  const compiled = input.compiled ?? new SpreadPodCache();
  const placed: { pod: Pod; spread: SpreadPod }[] = [];
  for (const pod of input.pods) {
    if (!isPlaced(pod)) continue;
    const { spread, problem } = placedSpreadPod(pod, compiled);
    if (problem !== undefined) problems.push(problem);
    placed.push({ pod, spread });
  }
  const index = new SpreadIndex(
    nodes.values(),
    placed.map((p) => p.spread),
  );
  const spreadJudge = new SpreadJudge(index);
  const violations: Violation[] = [];
  const preferred = new Map<string, PreferredScore>();
  const excessKeys = excessNamer();
  for (const { pod, spread } of placed) {
    if (!isJudged(pod)) continue;
    const node = nodes.get(pod.spec.nodeName ?? '');
    if (node === undefined) continue;
    const rules = judgePodNodeRules(pod, node, input.policiesOf(pod));
    violations.push(...rules.violations);
    if (rules.preferred !== undefined) preferred.set(spread.key, rules.preferred);
    violations.push(...judgePodSpread(spreadJudge, spread, node.name, excessKeys));
  }
  // Remediation asks where a few pods could go: found by key when first asked.
  let byKey: Map<string, { pod: Pod; spread: SpreadPod }> | undefined;
  const accepts = acceptsOf(
    (key) => (byKey ??= new Map(placed.map((p) => [p.spread.key, p]))).get(key),
    () => index,
    input.policiesOf,
  );
  return { violations, preferred, problems, accepts };
}
