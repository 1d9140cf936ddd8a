/**
 * judgeNodeAndSpread kept current: the node-rule and spread findings of every pod from the
 * last pass, and after a change only the pods whose findings it can alter judged again.
 *
 * - Node rules (required node affinity, nodeSelector, preferred node affinity): a pod's
 *   findings read only the pod, the policies that reach it and its node. Judged again: a
 *   changed pod, the pods of a changed (added, relabelled, tainted, removed) node, and a pod
 *   whose reaching policies are other objects than last time.
 * - Topology spread: a pod's DoNotSchedule findings and its ScheduleAnyway score read its
 *   node's labels and, for each of its constraints, the group of pods the constraint counts
 *   (namespace, selector, topology key, eligible nodes: SpreadConstraint.groupKey): its
 *   domain's count and the minimum over the domains. A changed pod moves the counts of the
 *   groups of its namespace that select it (before or after); a changed node those groups
 *   it enters, leaves or changes domain in. Every pod carrying a moved group, of either kind,
 *   is judged and scored again.
 *
 * A pass told what changed (NodeSpreadChanges) looks at those pods and nodes only, and asks
 * the policies of the pods of the namespaces named; one not told walks the pod and node lists
 * to find the changed objects (an informer cache replaces an object when it changes, so
 * identity says what changed) and asks every judged pod's policies. Either way judging is
 * limited to the affected pods, and each pod's findings are kept by pod (ViolationsByPod).
 *
 * Long because it is one class: which findings a change invalidates follows from what the
 * findings read, so the per-pod findings, the per-node and per-group bookkeeping and the
 * re-judging that reads them change together.
 */
import type { Node, Pod } from '../api/core.ts';
import type { InvalidObjectError } from './errors.ts';
import {
  acceptsOf,
  excessNamer,
  judgePodNodeRules,
  judgePodSpread,
  placedSpreadPod,
  SpreadPodCache,
  withSpreadScore,
  type NodeSpreadAudit,
  type NodeSpreadInput,
  type PodPolicies,
} from './judge-node-spread.ts';
import { nodeFacts, type NodeFacts } from './node-eligibility.ts';
import type { PreferredScore, SpreadScore, Violation } from './placement.ts';
import { isJudged, isPlaced } from './pod-placement.ts';
import { selectorMatches } from './selector.ts';
import {
  domainOfNode,
  SpreadIndex,
  type SpreadConstraint,
  type SpreadPod,
} from './spread-index.ts';
import { compareViolations } from './judge-cluster.ts';
import { SpreadJudge } from './topology-spread.ts';
import { ViolationsByPod, type ChangedPods } from './violations-by-pod.ts';
import { sameJson, sameLabels } from '../util/json.ts';
import { runAll, UNITS_PER_STEP, type Steps } from '../util/steps.ts';

interface KeptNode {
  readonly node: Node;
  readonly facts: NodeFacts;
}

interface KeptPod {
  readonly pod: Pod;
  readonly spread: SpreadPod;
  readonly problem: InvalidObjectError | undefined;
  /** The pass that last saw this Pod object in the list. */
  seen: number;
  reached: PodPolicies | undefined;
  nodeRules: readonly Violation[];
  spreadFound: readonly Violation[];
  /** Its preferred node-affinity score and ScheduleAnyway score, as last judged. */
  nodeScore: PreferredScore | undefined;
  spreadScore: SpreadScore | undefined;
}

/** The pods one spread constraint counts, and the pods that carry it. */
interface Group {
  /** One of the equal constraints: what the group counts. */
  readonly constraint: SpreadConstraint;
  /** Keys of the placed pods carrying a constraint of this group (either kind). */
  readonly carriers: Set<string>;
}

const NONE: readonly Violation[] = Object.freeze([]);

/**
 * What may have changed since the last pass, for a pass that looks at nothing else: every
 * pod and node added, replaced or deleted (by key and name, with their objects now), and
 * the namespaces whose pods may be reached by other policies (a namespace relabelled, a
 * workload added, removed or given other template labels or owners; 'all': the policies
 * changed).
 */
export interface NodeSpreadChanges {
  readonly pods: ReadonlySet<string>;
  /** The pod of that key now; undefined when it is gone. */
  readonly pod: (key: string) => Pod | undefined;
  readonly nodes: ReadonlySet<string>;
  readonly node: (name: string) => Node | undefined;
  readonly namespaces: ReadonlySet<string> | 'all';
}

/** A node as it was kept (undefined: new) and as it is (undefined: gone). */
interface NodeChange {
  readonly name: string;
  readonly before: NodeFacts | undefined;
  readonly node: Node | undefined;
}

/** What a pass judges again: pods by key for each kind of rule, and the groups whose counts moved. */
interface Dirty {
  readonly nodeRules: Set<string>;
  readonly spread: Set<string>;
  readonly moved: Set<Group>;
  problemsMoved: boolean;
}

/**
 * The constraints whose groups a pod is filed under: DoNotSchedule ones (its findings read
 * their counts) and ScheduleAnyway ones (so does its score).
 */
const carried = ({ rules }: SpreadPod): readonly SpreadConstraint[] =>
  rules.soft.length === 0 ? rules.hard : [...rules.hard, ...rules.soft];

export class IncrementalNodeSpread {
  private readonly compiled: SpreadPodCache;
  private nodes = new Map<string, KeptNode>();
  private readonly pods = new Map<string, KeptPod>();
  /** The same, by Pod object: an unchanged pod is found without making its key. */
  private readonly byObject = new Map<Pod, KeptPod>();
  /** Every placed pod and node, kept current: counts are recounted for moved groups only. */
  private index = new SpreadIndex([], []);
  /** Node name → keys of the placed pods bound to it. */
  private readonly onNode = new Map<string, Set<string>>();
  private readonly groups = new Map<string, Group>();
  /** Namespace → the groups counting its pods. */
  private readonly groupsIn = new Map<string, Set<Group>>();
  /** Namespace → keys of its placed pods. */
  private readonly inNamespace = new Map<string, Set<string>>();
  private readonly preferred = new Map<string, PreferredScore>();
  private stamp = 0;
  /** The next pass compares every pod and node of its input, whatever changes it is told of. */
  private walkAll = true;
  /** The pass judges every pod: which groups a pod moves need not be found. */
  private fresh = true;
  /** Each pod's node-rule and spread findings together. */
  private readonly found = new ViolationsByPod();
  /** Pods judged since the last takeChanged; null: any pod (a reset). */
  private judgedSince: Set<string> | null = null;
  private problems: readonly InvalidObjectError[] = [];
  /** Pods the last pass judged again. */
  lastJudged = 0;

  constructor(compiled: SpreadPodCache = new SpreadPodCache()) {
    this.compiled = compiled;
  }

  /** Forgets every finding: the next pass judges every pod. */
  reset(): void {
    this.nodes = new Map();
    this.pods.clear();
    this.byObject.clear();
    this.index = new SpreadIndex([], []);
    this.onNode.clear();
    this.groups.clear();
    this.groupsIn.clear();
    this.inNamespace.clear();
    this.preferred.clear();
    this.walkAll = true;
    this.found.clear();
    this.judgedSince = null;
    this.problems = [];
  }

  /**
   * What judgeNodeAndSpread(input) would find now (violations in compareViolations order).
   * Its `preferred` is this object's own map, as of the latest pass.
   *
   * With `changes` (every pod and node that may differ from the last pass), only those are
   * looked at, and `input.pods` and `input.nodes` are not read: a pass then costs what
   * changed. Without, or on the first pass after a reset, every pod and node of the input is
   * compared with what was kept.
   */
  pass(input: NodeSpreadInput, changes?: NodeSpreadChanges): NodeSpreadAudit {
    return runAll(this.passSteps(input, changes));
  }

  /** pass(input, changes), yielding every UNITS_PER_STEP pods it walks or judges. */
  *passSteps(input: NodeSpreadInput, changes?: NodeSpreadChanges): Steps<NodeSpreadAudit> {
    const stamp = ++this.stamp;
    const walk = changes === undefined || this.walkAll;
    // Until this pass is done: one that fails midway leaves kept state the next must redo.
    this.walkAll = true;
    this.fresh = this.pods.size === 0;
    // Nothing kept: what the pass finds may differ anywhere from what was taken before.
    if (this.fresh) this.judgedSince = null;
    const dirty: Dirty = {
      nodeRules: new Set(),
      spread: new Set(),
      moved: new Set(),
      problemsMoved: false,
    };
    if (walk) {
      this.nodesChanged(this.nodeListChanges(input.nodes), dirty);
      let present = 0;
      let walked = 0;
      for (const pod of input.pods) {
        if (++walked % UNITS_PER_STEP === 0) yield;
        if (!isPlaced(pod)) continue;
        present++;
        this.see(pod, input.policiesOf, dirty).seen = stamp;
      }
      // Pod keys are unique in the list: as many present as kept, none was taken out.
      for (const [key, kept] of present === this.pods.size ? [] : this.pods)
        if (kept.seen !== stamp) this.forget(key, kept, dirty);
    } else {
      const nodes: NodeChange[] = [];
      for (const name of changes.nodes) {
        const node = changes.node(name);
        const had = this.nodes.get(name);
        if (had?.node !== node) nodes.push({ name, before: had?.facts, node });
      }
      this.nodesChanged(nodes, dirty);
      for (const key of changes.pods) {
        const pod = changes.pod(key);
        const kept = this.pods.get(key);
        if (pod !== undefined && isPlaced(pod)) this.see(pod, input.policiesOf, dirty);
        else if (kept !== undefined) this.forget(key, kept, dirty);
      }
      // Pods whose policies may be others: every pod of a namespace (or of all) asked again.
      const asked: Iterable<string>[] = changes.namespaces === 'all' ? [this.pods.keys()] : [];
      if (changes.namespaces !== 'all')
        for (const ns of changes.namespaces) asked.push(this.inNamespace.get(ns)?.keys() ?? []);
      for (const keys of asked)
        for (const key of keys) {
          const kept = this.pods.get(key);
          if (kept !== undefined) this.reach(kept, input.policiesOf, dirty);
        }
    }
    const { nodeRules, spread } = dirty;
    for (const g of dirty.moved) for (const key of g.carriers) spread.add(key);
    yield* this.judge(nodeRules, spread);
    if (dirty.problemsMoved) this.problems = this.allProblems();
    this.walkAll = false;
    const index = this.index;
    const accepts = acceptsOf(
      (key) => this.pods.get(key),
      () => index,
      input.policiesOf,
    );
    const found = this.found;
    return {
      // Listed when read (see ViolationsByPod.report).
      get violations() {
        return found.all();
      },
      problems: this.problems,
      preferred: this.preferred,
      accepts,
    };
  }

  /** The pods judged since the last call, with their violations now; null: any may differ. */
  takeChanged(): ChangedPods | null {
    const pods = this.judgedSince;
    this.judgedSince = new Set();
    return pods === null ? null : { pods, violationsOf: (pod) => this.found.get(pod) };
  }

  /** Takes a placed pod as it is now: filed anew when it is another object than kept. */
  private see(pod: Pod, policiesOf: (pod: Pod) => PodPolicies, dirty: Dirty): KeptPod {
    let kept = this.byObject.get(pod);
    if (kept === undefined) {
      const { spread: sp, problem } = placedSpreadPod(pod, this.compiled);
      // The spread record's key string, kept once for every map and set keyed by pod.
      const key = sp.key;
      kept = this.pods.get(key);
      if (kept !== undefined) this.unfile(kept, dirty.moved);
      dirty.problemsMoved ||= problem !== undefined || kept?.problem !== undefined;
      kept = {
        pod,
        spread: sp,
        problem,
        seen: 0,
        reached: undefined,
        nodeRules: kept?.nodeRules ?? NONE,
        spreadFound: kept?.spreadFound ?? NONE,
        nodeScore: kept?.nodeScore,
        spreadScore: kept?.spreadScore,
      };
      this.pods.set(key, kept);
      this.byObject.set(pod, kept);
      this.file(kept, dirty.moved);
      dirty.nodeRules.add(key);
      dirty.spread.add(key);
    }
    this.reach(kept, policiesOf, dirty);
    return kept;
  }

  /** Asks which policies reach a judged pod; judged again when they are other objects. */
  private reach(kept: KeptPod, policiesOf: (pod: Pod) => PodPolicies, dirty: Dirty): void {
    if (!isJudged(kept.pod)) return;
    const reached = policiesOf(kept.pod);
    if (!samePolicies(reached, kept.reached)) {
      // Node rules are the policies'; so is a spread constraint one of them wrote.
      dirty.nodeRules.add(kept.spread.key);
      if (kept.spread.rules.hard.length > 0) dirty.spread.add(kept.spread.key);
    }
    kept.reached = reached;
  }

  /** Takes out a pod that is gone (or no longer placed). */
  private forget(key: string, kept: KeptPod, dirty: Dirty): void {
    this.unfile(kept, dirty.moved);
    this.pods.delete(key);
    dirty.problemsMoved ||= kept.problem !== undefined;
    dirty.nodeRules.add(key);
    dirty.spread.add(key);
  }

  /** The nodes of a full list that differ from those kept (other objects, new, or gone). */
  private nodeListChanges(list: readonly Node[]): NodeChange[] {
    const changed: NodeChange[] = [];
    const listed = new Set<string>();
    for (const node of list) {
      const name = node.metadata.name;
      listed.add(name);
      const had = this.nodes.get(name);
      if (had?.node !== node) changed.push({ name, before: had?.facts, node });
    }
    for (const [name, had] of this.nodes)
      if (!listed.has(name)) changed.push({ name, before: had.facts, node: undefined });
    return changed;
  }

  /** Takes the changed nodes; names the pods on them and the groups they move in `dirty`. */
  private nodesChanged(nodes: readonly NodeChange[], dirty: Dirty): void {
    const changed: { name: string; before: NodeFacts | undefined; after: NodeFacts | undefined }[] =
      [];
    for (const { name, before, node } of nodes) {
      if (node === undefined) {
        this.nodes.delete(name);
        changed.push({ name, before, after: undefined });
        continue;
      }
      const facts = nodeFacts(node);
      this.nodes.set(name, { node, facts });
      changed.push({ name, before, after: facts });
    }
    const moved = dirty.moved;
    for (const { name, after } of changed) this.index.setNode(name, after);
    const perDomain = new Map<string, Map<string, number>>();
    for (const { name, before, after } of changed) {
      // Their node rules, and their spread where the node lost or gained a topology key.
      const here = [...(this.onNode.get(name) ?? [])];
      for (const key of here) {
        dirty.nodeRules.add(key);
        dirty.spread.add(key);
      }
      for (const g of this.groups.values()) {
        const c = g.constraint;
        const was = before === undefined ? undefined : domainOfNode(c, before);
        const is = after === undefined ? undefined : domainOfNode(c, after);
        if (was === is) continue;
        // One node changed: the counts move if the group counts a pod on it, and the
        // domains if one is left without nodes or one is new. Several: taken as moved.
        if (changed.length > 1 || this.countsOn(c, here) || this.domainsMove(c, was, is, perDomain))
          moved.add(g);
      }
    }
  }

  /** Whether the constraint counts one of the pods `keys` (wherever they run). */
  private countsOn(c: SpreadConstraint, keys: readonly string[]): boolean {
    return keys.some((key) => {
      const p = this.pods.get(key)?.spread;
      return (
        p !== undefined &&
        p.terminating !== true &&
        p.namespace === c.namespace &&
        selectorMatches(c.selector, p.labels)
      );
    });
  }

  /**
   * Whether one node going from domain `was` to `is` (undefined: none) changed the set of
   * domains of the constraint: `was` has no node left, or the node is the only one of `is`.
   */
  private domainsMove(
    c: SpreadConstraint,
    was: string | undefined,
    is: string | undefined,
    perDomain: Map<string, Map<string, number>>,
  ): boolean {
    const key = `${c.eligibility.key}\0${c.topologyKey}`;
    let nodes = perDomain.get(key);
    if (nodes === undefined) {
      nodes = new Map();
      for (const d of this.index.domainsOf(c).byNode.values())
        nodes.set(d, (nodes.get(d) ?? 0) + 1);
      perDomain.set(key, nodes);
    }
    return (
      (was !== undefined && (nodes.get(was) ?? 0) === 0) ||
      (is !== undefined && (nodes.get(is) ?? 0) === 1)
    );
  }

  /** Judges again the pods named, and keeps what each of them now finds and scores. */
  private *judge(nodeRules: ReadonlySet<string>, spread: ReadonlySet<string>): Steps<void> {
    let judged = 0;
    for (const key of nodeRules) {
      if (++judged % UNITS_PER_STEP === 0) yield;
      const kept = this.pods.get(key);
      const node = kept === undefined ? undefined : this.judgedOn(kept);
      if (kept === undefined || node === undefined || kept.reached === undefined) {
        if (kept !== undefined) {
          kept.nodeRules = NONE;
          kept.nodeScore = undefined;
        }
        continue;
      }
      const found = judgePodNodeRules(kept.pod, node, kept.reached);
      kept.nodeRules = found.violations.length === 0 ? NONE : found.violations;
      kept.nodeScore = found.preferred;
    }
    let judge: SpreadJudge | undefined;
    const excessKeys = excessNamer();
    for (const key of spread) {
      if (++judged % UNITS_PER_STEP === 0) yield;
      const kept = this.pods.get(key);
      if (kept === undefined) continue;
      const node = this.judgedOn(kept);
      kept.spreadFound =
        node === undefined || kept.spread.rules.hard.length === 0
          ? NONE
          : judgePodSpread(
              (judge ??= new SpreadJudge(this.index)),
              kept.spread,
              kept.pod,
              node.name,
              kept.reached,
              excessKeys,
            );
      if (kept.spreadFound.length === 0) kept.spreadFound = NONE;
      kept.spreadScore =
        node === undefined || kept.spread.rules.soft.length === 0
          ? undefined
          : (judge ??= new SpreadJudge(this.index)).score(kept.spread);
    }
    this.lastJudged = 0;
    for (const key of new Set([...nodeRules, ...spread])) {
      if (++judged % UNITS_PER_STEP === 0) yield;
      this.lastJudged++;
      const kept = this.pods.get(key);
      const score =
        kept === undefined ? undefined : withSpreadScore(kept.nodeScore, kept.spreadScore);
      if (score === undefined) this.preferred.delete(key);
      else this.preferred.set(key, score);
      this.found.set(key, kept === undefined ? NONE : [...kept.nodeRules, ...kept.spreadFound]);
      this.judgedSince?.add(key);
    }
  }

  /** The node a judged pod runs on, undefined when the pod is not judged. */
  private judgedOn(kept: KeptPod): NodeFacts | undefined {
    if (!isJudged(kept.pod)) return undefined;
    return this.nodes.get(kept.pod.spec.nodeName ?? '')?.facts;
  }

  /** Files a pod under its node and the groups it carries; the groups selecting it moved. */
  private file(kept: KeptPod, moved: Set<Group>): void {
    const { spread } = kept;
    let keys = this.onNode.get(spread.nodeName);
    if (keys === undefined) this.onNode.set(spread.nodeName, (keys = new Set()));
    keys.add(spread.key);
    let inNs = this.inNamespace.get(spread.namespace);
    if (inNs === undefined) this.inNamespace.set(spread.namespace, (inNs = new Set()));
    inNs.add(spread.key);
    this.index.addPod(spread);
    for (const c of carried(spread)) {
      let g = this.groups.get(c.groupKey);
      if (g === undefined) {
        g = { constraint: c, carriers: new Set() };
        this.groups.set(c.groupKey, g);
        let inNs = this.groupsIn.get(c.namespace);
        if (inNs === undefined) this.groupsIn.set(c.namespace, (inNs = new Set()));
        inNs.add(g);
      }
      g.carriers.add(spread.key);
      moved.add(g);
    }
    this.selecting(spread, moved);
  }

  /** Takes a pod out of what `file` put it in; the groups selecting it moved. */
  private unfile(kept: KeptPod, moved: Set<Group>): void {
    const { spread } = kept;
    const keys = this.onNode.get(spread.nodeName);
    keys?.delete(spread.key);
    if (keys?.size === 0) this.onNode.delete(spread.nodeName);
    const inNs = this.inNamespace.get(spread.namespace);
    inNs?.delete(spread.key);
    if (inNs?.size === 0) this.inNamespace.delete(spread.namespace);
    this.index.removePod(spread);
    this.byObject.delete(kept.pod);
    this.selecting(spread, moved);
    for (const c of carried(spread)) {
      const g = this.groups.get(c.groupKey);
      if (g === undefined) continue;
      g.carriers.delete(spread.key);
      if (g.carriers.size > 0) continue;
      this.groups.delete(c.groupKey);
      const inNs = this.groupsIn.get(c.namespace);
      inNs?.delete(g);
      if (inNs?.size === 0) this.groupsIn.delete(c.namespace);
    }
    this.preferred.delete(spread.key);
  }

  /** Adds the groups of the pod's namespace whose selector matches it. */
  private selecting(spread: SpreadPod, moved: Set<Group>): void {
    if (this.fresh) return;
    for (const g of this.groupsIn.get(spread.namespace) ?? [])
      if (selectorMatches(g.constraint.selector, spread.labels)) moved.add(g);
  }

  private allProblems(): InvalidObjectError[] {
    const all: InvalidObjectError[] = [];
    for (const kept of this.pods.values()) if (kept.problem !== undefined) all.push(kept.problem);
    return all;
  }
}

/** Whether two answers of `policiesOf` name the same policy objects. */
function samePolicies(a: PodPolicies, b: PodPolicies | undefined): boolean {
  if (a === b) return true;
  if (b === undefined) return false;
  return (
    sameList(a.targeting, b.targeting) &&
    sameList(a.exempt, b.exempt) &&
    a.workload?.kind === b.workload?.kind &&
    a.workload?.namespace === b.workload?.namespace &&
    a.workload?.name === b.workload?.name &&
    sameLabels(a.workload?.templateLabels ?? {}, b.workload?.templateLabels ?? {})
  );
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Null when two findings of the node and spread rules agree (violations, preferred scores,
 * problems), else the first pod they differ on.
 */
export function sameNodeSpread(a: NodeSpreadAudit, b: NodeSpreadAudit): string | null {
  const x = [...a.violations].sort(compareViolations);
  const y = [...b.violations].sort(compareViolations);
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if (!sameJson(x[i], y[i])) return x[i]?.pod ?? y[i]?.pod ?? '';
  for (const key of new Set([...a.preferred.keys(), ...b.preferred.keys()]))
    if (!sameJson(a.preferred.get(key), b.preferred.get(key))) return key;
  const p = a.problems.map((e) => e.message).sort();
  const q = b.problems.map((e) => e.message).sort();
  return sameJson(p, q) ? null : '(unreadable pods)';
}
