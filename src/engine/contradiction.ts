/**
 * Rules that cannot both hold for one workload's pods, found before anything is written:
 * required podAffinity whose every possible partner is forbidden by a required
 * podAntiAffinity of the same pod, and required node requirements that no node value meets.
 * Two policies that target one workload (or a policy and the workload's own terms) can ask
 * for such a pair; written together, the workload's new pods would stay Pending.
 */
import type { Affinity, Labels, NodeSelectorRequirement, PodAffinityTerm } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { requirementHolds } from './node-affinity.ts';
import { resolvePolicyTerms, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { requirementsText, selectorMatches, type Requirement, type Selector } from './selector.ts';
import { REQUIRED_TERMS as REQUIRED, resolveTerm, type ResolvedTerm } from './term.ts';

/** Where a rule comes from: a policy, or (null) the workload's own template. */
export interface RuleSource {
  readonly policy: PolicyRef | null;
  /** The field that holds it, in the policy or in the workload. */
  readonly field: string;
}

export type Contradiction =
  | {
      readonly kind: 'pod';
      readonly affinity: RuleSource & { readonly term: ResolvedTerm };
      readonly antiAffinity: RuleSource & { readonly term: ResolvedTerm };
    }
  | {
      readonly kind: 'node';
      readonly first: RuleSource & { readonly requirement: NodeSelectorRequirement };
      readonly second: RuleSource & { readonly requirement: NodeSelectorRequirement };
    };

/**
 * Topology keys whose domains nest: a node's hostname domain lies inside its zone, its zone
 * inside its region. (A node without the wider label breaks the nesting; every cloud node
 * carries these labels, and an anti-affinity on a key no node carries means nothing anyway.)
 */
export const TOPOLOGY_LEVEL: Readonly<Record<string, number>> = {
  'kubernetes.io/hostname': 0,
  'topology.kubernetes.io/zone': 1,
  'failure-domain.beta.kubernetes.io/zone': 1,
  'topology.kubernetes.io/region': 2,
  'failure-domain.beta.kubernetes.io/region': 2,
};

/** Whether every domain of `inner` lies within one domain of `outer`. */
export function domainInside(inner: string, outer: string): boolean {
  if (inner === outer) return true;
  const a = TOPOLOGY_LEVEL[inner];
  const b = TOPOLOGY_LEVEL[outer];
  return a !== undefined && b !== undefined && a < b;
}

/** What the requirements on one key allow of its value. */
interface KeyRange {
  absent: boolean;
  present: boolean;
  /** null: any value not excluded. */
  allowed: Set<string> | null;
  excluded: Set<string>;
}

function rangeOf(requirements: readonly Requirement[], key: string): KeyRange {
  const range: KeyRange = { absent: true, present: true, allowed: null, excluded: new Set() };
  for (const r of requirements) {
    if (r.key !== key) continue;
    switch (r.operator) {
      case 'In': {
        range.absent = false;
        const previous = range.allowed;
        range.allowed = new Set(
          previous === null ? r.values : r.values.filter((v) => previous.has(v)),
        );
        break;
      }
      case 'NotIn':
        for (const v of r.values) range.excluded.add(v);
        break;
      case 'Exists':
        range.absent = false;
        break;
      case 'DoesNotExist':
        range.present = false;
        break;
    }
  }
  return range;
}

/** Whether every value `range` allows (absent included) meets `r`. */
function rangeMeets(range: KeyRange, r: Requirement): boolean {
  const values =
    range.allowed === null ? null : [...range.allowed].filter((v) => !range.excluded.has(v));
  const present = range.present && (values === null || values.length > 0);
  switch (r.operator) {
    case 'In':
      return (
        !range.absent &&
        (!present || (values !== null && values.every((v) => r.values.includes(v))))
      );
    case 'NotIn':
      if (!present) return true;
      return values === null
        ? r.values.every((v) => range.excluded.has(v))
        : values.every((v) => !r.values.includes(v));
    case 'Exists':
      return !range.absent;
    case 'DoesNotExist':
      return !present;
  }
}

/** Whether every label set `a` selects is also selected by `b`. */
export function selectorImplies(a: Selector, b: Selector): boolean {
  if (a.kind === 'nothing' || b.kind === 'nothing') return false;
  return b.requirements.every((r) => rangeMeets(rangeOf(a.requirements, r.key), r));
}

/** Whether every namespace `inner` reaches is one `outer` reaches too. */
function namespacesInside(
  inner: ResolvedTerm,
  outer: ResolvedTerm,
  namespaceLabels: (ns: string) => Labels,
): boolean {
  if (inner.namespaceSelector !== null) {
    // An open selector may match namespaces made later: only a selector can cover it.
    if (outer.namespaceSelector === null) return false;
    if (!selectorImplies(inner.namespaceSelector, outer.namespaceSelector)) return false;
  }
  for (const ns of inner.namespaces) {
    const covered =
      outer.namespaces.has(ns) ||
      (outer.namespaceSelector !== null &&
        selectorMatches(outer.namespaceSelector, namespaceLabels(ns)));
    if (!covered) return false;
  }
  return true;
}

/**
 * Whether a pod's required podAffinity term and its required podAntiAffinity term cannot
 * both hold: every pod the affinity may be satisfied by (its selector, in its namespaces)
 * is one the anti-affinity forbids, and any pod in the affinity key's domain of the new pod
 * is also in its anti-affinity key's domain. The scheduler's exception for the first pod of
 * a group that matches its own affinity lets one pod in; the next one waits for ever.
 */
export function termsContradict(
  affinity: ResolvedTerm,
  antiAffinity: ResolvedTerm,
  namespaceLabels: (ns: string) => Labels,
): boolean {
  return (
    domainInside(affinity.topologyKey, antiAffinity.topologyKey) &&
    selectorImplies(affinity.selector, antiAffinity.selector) &&
    namespacesInside(affinity, antiAffinity, namespaceLabels)
  );
}

/** Values worth trying for a label that two requirements both constrain. */
function candidates(
  a: NodeSelectorRequirement,
  b: NodeSelectorRequirement,
): (string | undefined)[] {
  const listed = [...(a.values ?? []), ...(b.values ?? [])];
  const around = listed.flatMap((v) => {
    if (!/^-?\d+$/.test(v)) return [];
    const n = Number(v);
    return Array.from({ length: listed.length + 2 }, (_, k) => [n + k + 1, n - k - 1]).flat();
  });
  return [undefined, ...listed, ...around.map(String), '\u0000not-listed'];
}

/** Whether no node value (nor its absence) meets both requirements on one key. */
export function requirementsContradict(
  a: NodeSelectorRequirement,
  b: NodeSelectorRequirement,
): boolean {
  if (a.key !== b.key) return false;
  return !candidates(a, b).some((v) => requirementHolds(a, v) && requirementHolds(b, v));
}

interface SourcedTerm extends RuleSource {
  readonly term: ResolvedTerm;
}

interface SourcedRequirement extends RuleSource {
  readonly requirement: NodeSelectorRequirement;
  readonly list: 'matchExpressions' | 'matchFields';
}

/** The workload's own required pod terms, resolved; a term the scheduler would refuse is left out. */
function ownTerms(
  workload: WorkloadRef,
  own: Affinity | undefined,
  kind: 'podAffinity' | 'podAntiAffinity',
): SourcedTerm[] {
  const owner = { namespace: workload.namespace, labels: workload.templateLabels };
  const list: readonly PodAffinityTerm[] = own?.[kind]?.[REQUIRED] ?? [];
  return list.flatMap((t, i) => {
    const field = `spec.template.spec.affinity.${kind}.${REQUIRED}[${i}]`;
    try {
      return [{ policy: null, field, term: resolveTerm(t, owner, field) }];
    } catch {
      return [];
    }
  });
}

/**
 * The pairs of required rules that cannot both hold for `workload`'s pods, among the terms
 * `policies` ask of it and the workload's own (`own`: its affinity without what policies
 * injected). Each pair involves at least one policy; the workload's own terms against each
 * other are its owner's business. Node requirements are compared among the policies, since
 * each is added to every one of the workload's nodeSelectorTerms.
 */
export function contradictions(
  workload: WorkloadRef,
  policies: readonly CompiledPolicy[],
  own: Affinity | undefined,
  namespaceLabels: (ns: string) => Labels,
): Contradiction[] {
  const owner = { namespace: workload.namespace, labels: workload.templateLabels };
  const affinity: SourcedTerm[] = ownTerms(workload, own, 'podAffinity');
  const anti: SourcedTerm[] = ownTerms(workload, own, 'podAntiAffinity');
  const node: SourcedRequirement[] = [];
  for (const p of policies) {
    const terms = resolvePolicyTerms(p, workload, owner);
    for (const t of terms.affinity) affinity.push({ policy: p.ref, field: t.field, term: t.term });
    for (const t of terms.antiAffinity) anti.push({ policy: p.ref, field: t.field, term: t.term });
    const nodeTerms = p.affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? [];
    nodeTerms.forEach((term, i) => {
      for (const list of ['matchExpressions', 'matchFields'] as const) {
        (term[list] ?? []).forEach((requirement, k) => {
          const field = `spec.affinity.nodeAffinity.${REQUIRED}.nodeSelectorTerms[${i}].${list}[${k}]`;
          node.push({ policy: p.ref, field, requirement, list });
        });
      }
    });
  }
  const out: Contradiction[] = [];
  for (const a of affinity) {
    for (const b of anti) {
      if (a.policy === null && b.policy === null) continue;
      if (termsContradict(a.term, b.term, namespaceLabels))
        out.push({ kind: 'pod', affinity: a, antiAffinity: b });
    }
  }
  node.forEach((a, i) => {
    for (const b of node.slice(i + 1)) {
      if (a.list === b.list && requirementsContradict(a.requirement, b.requirement)) {
        out.push({
          kind: 'node',
          first: { policy: a.policy, field: a.field, requirement: a.requirement },
          second: { policy: b.policy, field: b.field, requirement: b.requirement },
        });
      }
    }
  });
  return out;
}

/** `app=x` / `app in (x,y)` / `!tier`: a selector as a person reads it. */
export function describeSelector(selector: Selector): string {
  if (selector.kind === 'nothing') return '(no pods)';
  if (selector.requirements.length === 0) return '(every pod)';
  return requirementsText(selector.requirements);
}

const whose = (s: RuleSource): string =>
  s.policy === null ? "the workload's own" : `${s.policy}'s`;

const describeNode = (r: NodeSelectorRequirement): string =>
  `${r.key} ${r.operator}${r.values === undefined || r.values.length === 0 ? '' : ` (${r.values.join(',')})`}`;

/** Both sides of a contradiction, each with its source and what it asks. */
function sides(c: Contradiction): [RuleSource & { what: string }, RuleSource & { what: string }] {
  if (c.kind === 'pod') {
    const term = (t: ResolvedTerm): string => `${describeSelector(t.selector)} on ${t.topologyKey}`;
    return [
      { ...c.affinity, what: `required podAffinity (${term(c.affinity.term)})` },
      { ...c.antiAffinity, what: `required podAntiAffinity (${term(c.antiAffinity.term)})` },
    ];
  }
  return [
    { ...c.first, what: `required node requirement (${describeNode(c.first.requirement)})` },
    { ...c.second, what: `required node requirement (${describeNode(c.second.requirement)})` },
  ];
}

/** The contradiction as a whole: for the workload's Event and the log. */
export function describeContradiction(c: Contradiction): string {
  const [a, b] = sides(c);
  return `${whose(a)} ${a.what} and ${whose(b)} ${b.what} cannot both hold`;
}

/**
 * The contradiction from one policy's side: what of it clashes with what of the other
 * (another policy, itself, or the workload's own terms). `undefined` when it is not involved.
 */
export function describeContradictionFor(c: Contradiction, ref: PolicyRef): string | undefined {
  const [a, b] = sides(c);
  const [mine, other] = a.policy === ref ? [a, b] : b.policy === ref ? [b, a] : [undefined, a];
  if (mine === undefined) return undefined;
  const theirs = other.policy === ref ? 'its own' : whose(other);
  return `its ${mine.what} cannot hold together with ${theirs} ${other.what}`;
}

/** The policies a contradiction involves. */
export const contradictionPolicies = (c: Contradiction): PolicyRef[] =>
  sides(c).flatMap((s) => (s.policy === null ? [] : [s.policy]));
