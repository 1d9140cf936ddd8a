/**
 * The smallest change that would let an unbound pod schedule (see explain.ts): for each
 * node, what lifting every rule that refuses it takes (pods moved out of a domain, labels
 * put on the node, a cordon or a taint taken off), and a new node like one that only
 * pod-placement rules refuse, in domains of its own. The cheapest come first.
 */
import type { NodeSelectorRequirement, Pod, Taint } from '../api/core.ts';
import type { Block, Change, InvolvedPod, NodeVerdict, WhyRule } from './explain-types.ts';
import { labelOf } from './labels.ts';
import { requirementHolds } from './node-affinity.ts';
import type { NodeFacts } from './node-eligibility.ts';
import { REQUIRED_TERMS } from './term.ts';
import { compareText } from '../util/compare.ts';

/** How many changes are offered. */
const MAX_CHANGES = 5;
/** How many pods a change names before it says how many more. */
const NAMED = 5;
const HOSTNAME = 'kubernetes.io/hostname';
/** How many nodes a new node is modelled on, at most: each try counts the cluster again. */
const NEW_NODE_TRIES = 8;

const named = (pods: readonly string[]): string =>
  pods.slice(0, NAMED).join(', ') + (pods.length > NAMED ? ` and ${pods.length - NAMED} more` : '');

/** A taint as `kubectl taint` writes it: `key=value:Effect`. */
export const taintText = (t: Taint): string =>
  `${t.key}${t.value === undefined || t.value === '' ? '' : `=${t.value}`}:${t.effect}`;

/**
 * The cheapest changes (at most five) that would open a node to `pod`, given each node's
 * blocks; `tryNew` gives the blocks of a node added to the cluster.
 */
export function smallestChanges(
  pod: Pod,
  nodes: readonly NodeFacts[],
  verdicts: readonly NodeVerdict[],
  tryNew: (node: NodeFacts) => readonly Block[],
): Change[] {
  const found = new Map<string, Change>();
  const add = (c: Change | undefined): void => {
    if (c !== undefined && !found.has(c.change)) found.set(c.change, c);
  };
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const v of verdicts) {
    const node = byName.get(v.node);
    if (node !== undefined) add(openNode(pod, node, v.blocks));
  }
  add(newNode(nodes, verdicts, tryNew));
  return [...found.values()]
    .sort((a, b) => a.cost - b.cost || reach(a) - reach(b) || compareText(a.change, b.change))
    .slice(0, MAX_CHANGES);
}

/**
 * Among changes of one size, those that reach less come first: undoing a cordon or a taint
 * touches no workload; moving pods touches theirs; a new node costs money; a label changes
 * what every other pod may run on the node.
 */
const REACH: readonly (readonly [string, number])[] = [
  ['uncordon ', 0],
  ['remove taint ', 1],
  ['move ', 2],
  ['run a pod ', 3],
  ['add a node ', 4],
];
const reach = (c: Change): number =>
  Math.max(
    ...c.change
      .split(' and ')
      .map((step) => REACH.find(([start]) => step.startsWith(start))?.[1] ?? REACH.length),
  );

/** What lifting every block of one node takes, or undefined when one cannot be lifted. */
function openNode(pod: Pod, node: NodeFacts, blocks: readonly Block[]): Change | undefined {
  if (blocks.length === 0) return undefined;
  const steps: string[] = [];
  const moved = new Map<string, InvolvedPod>();
  let cost = 0;
  const step = (text: string, size = 1): void => {
    steps.push(text);
    cost += size;
  };
  const rules = new Set<WhyRule>(blocks.map((b) => b.rule));
  for (const b of blocks) {
    switch (b.rule) {
      case 'nodeUnschedulable':
        step(`uncordon node ${node.name}`);
        break;
      case 'taint': {
        const t = node.taints.find((x) => `${x.key}: ${x.value ?? ''}` === b.domain);
        step(
          `remove taint ${t === undefined ? '' : taintText(t)} from node ${node.name} (or tolerate it)`,
        );
        break;
      }
      case 'nodeSelector':
      case 'nodeAffinity':
        break; // below: one set of labels for both
      case 'topologySpread':
        if (b.excess === undefined) step(`label node ${node.name} ${b.topologyKey ?? ''}`);
        else
          step(
            `move ${b.excess} matching pod(s) out of ${b.domain ?? ''} (of ${named(b.pods.map((p) => p.pod).sort(compareText))})`,
            b.excess,
          );
        break;
      case 'podAffinity':
        step(
          b.domain === undefined
            ? `label node ${node.name} ${b.topologyKey ?? ''}`
            : `run a pod matching ${b.selects ?? ''} in ${b.domain}`,
        );
        break;
      case 'podAntiAffinity':
      case 'symmetricAntiAffinity':
        for (const p of b.pods) moved.set(p.pod, p);
        break;
    }
  }
  if (rules.has('nodeSelector') || rules.has('nodeAffinity')) {
    const labels = nodeLabelChanges(pod, node);
    if (labels === undefined) return undefined;
    for (const l of labels) step(l);
  }
  const byDomain = new Map<string, string[]>();
  for (const p of moved.values())
    byDomain.set(p.domain, [...(byDomain.get(p.domain) ?? []), p.pod]);
  for (const [domain, pods] of [...byDomain].sort((a, b) => compareText(a[0], b[0]))) {
    pods.sort(compareText);
    step(
      `move ${pods.length === 1 ? 'pod' : `${pods.length} pods`} ${named(pods)} out of ${domain}`,
      pods.length,
    );
  }
  return { change: steps.join(' and '), node: node.name, cost };
}

/** What it takes to make one requirement of a nodeSelectorTerm hold on a node. */
function requirementChange(node: string, r: NodeSelectorRequirement): string | undefined {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return values[0] === undefined ? undefined : `label node ${node} ${r.key}=${values[0]}`;
    case 'Exists':
      return `label node ${node} ${r.key}`;
    case 'NotIn':
    case 'DoesNotExist':
      return `remove label ${r.key} from node ${node}`;
    case 'Gt':
    case 'Lt':
      return `label node ${node} ${r.key} with a number ${r.operator === 'Gt' ? 'above' : 'below'} ${values[0] ?? ''}`;
    default:
      return undefined;
  }
}

/**
 * The label changes that make a node meet the pod's nodeSelector and required node affinity
 * (through its cheapest nodeSelectorTerm), or undefined when no label change can.
 */
function nodeLabelChanges(pod: Pod, node: NodeFacts): string[] | undefined {
  const out = Object.entries(pod.spec.nodeSelector ?? {})
    .filter(([k, want]) => labelOf(node.labels, k) !== want)
    .map(([k, want]) => `label node ${node.name} ${k}=${want}`);
  const required = pod.spec.affinity?.nodeAffinity?.[REQUIRED_TERMS];
  if (required === undefined) return out;
  let best: string[] | undefined;
  for (const term of required.nodeSelectorTerms) {
    const fields = term.matchFields ?? [];
    const expressions = term.matchExpressions ?? [];
    if (expressions.length === 0 && fields.length === 0) continue;
    // A node's name cannot change: a term whose matchFields the node fails cannot be met.
    if (fields.some((r) => r.key !== 'metadata.name' || !requirementHolds(r, node.name))) continue;
    const needed: string[] = [];
    let possible = true;
    for (const r of expressions) {
      if (requirementHolds(r, labelOf(node.labels, r.key))) continue;
      const c = requirementChange(node.name, r);
      if (c === undefined) possible = false;
      else needed.push(c);
    }
    if (possible && (best === undefined || needed.length < best.length)) best = needed;
  }
  return best === undefined ? undefined : [...out, ...best];
}

const NODE_LEVEL: ReadonlySet<WhyRule> = new Set([
  'nodeUnschedulable',
  'taint',
  'nodeSelector',
  'nodeAffinity',
]);

/**
 * A node like one that the pod's node rules and taints admit, with values of its own for the
 * topology keys of the rules that refuse that node: one change, when such a node would take
 * the pod (a new domain has no pod its anti-affinity forbids, but none its affinity needs).
 */
function newNode(
  nodes: readonly NodeFacts[],
  verdicts: readonly NodeVerdict[],
  tryNew: (node: NodeFacts) => readonly Block[],
): Change | undefined {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  let tries = 0;
  for (const v of verdicts) {
    const like = byName.get(v.node);
    if (like === undefined || v.blocks.some((b) => NODE_LEVEL.has(b.rule))) continue;
    if (++tries > NEW_NODE_TRIES) break;
    const keys = new Set([HOSTNAME, ...v.blocks.flatMap((b) => b.topologyKey ?? [])]);
    const labels: Record<string, string> = { ...like.labels };
    const fresh: string[] = [];
    for (const key of keys) {
      const own = labelOf(like.labels, key);
      if (own === undefined) continue;
      const taken = new Set(nodes.flatMap((n) => labelOf(n.labels, key) ?? []));
      let value = `${own}-new`;
      for (let i = 2; taken.has(value); i++) value = `${own}-new-${String(i)}`;
      labels[key] = value;
      if (key !== HOSTNAME)
        fresh.push(`a ${key} other than ${[...taken].sort(compareText).join(', ')}`);
    }
    const node: NodeFacts = { ...like, name: labels[HOSTNAME] ?? `${like.name}-new`, labels };
    if (tryNew(node).length > 0) continue;
    const where = fresh.length === 0 ? '' : ` in ${fresh.join(' and ')}`;
    return { change: `add a node like ${like.name}${where}`, node: 'new', cost: 1 };
  }
  return undefined;
}
