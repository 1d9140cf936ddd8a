/**
 * Rewriting a workload's pod template: what the policies that target it ask to inject
 * (`injectionFor`), taking out exactly what its `placement.dev/applied` record says was
 * injected (`revertInjected`), and putting in what is asked now (`inject`), for pod
 * (anti-)affinity, required node affinity and topology spread constraints.
 *
 * Long because reverting and injecting are inverse halves of one rewrite and must stay exact
 * inverses of each other, term by term and for the containers an injection creates; keeping
 * both halves side by side is what lets a reader check that.
 */
import type { Affinity, TopologySpreadConstraint } from '../api/core.ts';
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import { jsonEqual } from '../util/json.ts';
import { FieldError } from './errors.ts';
import {
  policySpreadConstraintsFor,
  policyTermsFor,
  type CompiledPolicy,
  type WorkloadRef,
} from './policy.ts';
import {
  ANNOTATIONS_MAX_BYTES,
  recordBytes,
  serializeRecord,
  SLOT_NAMES,
  SLOTS,
  SPREAD_PATH,
  type AppliedRecord,
  type NodeRecord,
  type NodeRequirements,
  type Slot,
  type TermAlreadyHad,
} from './record.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';
import { APPLIED_ANNOTATION } from '../api/cluster.ts';

/** What the policies targeting one workload ask to inject. */
export interface Injection {
  /** Policy ref → the generation whose terms these are. */
  readonly policies: Readonly<Record<string, number>>;
  readonly slots: Readonly<Partial<Record<Slot, readonly JsonValue[]>>>;
  readonly node: NodeRequirements;
  /** topologySpreadConstraints to append to the pod spec's; absent: none. */
  readonly spread?: readonly JsonValue[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The terms that `policies` (priority order) ask of `workload`, identical terms once. */
export function injectionFor(
  policies: readonly CompiledPolicy[],
  workload: WorkloadRef,
): Injection {
  const slots: Partial<Record<Slot, JsonValue[]>> = {};
  const add = (slot: Slot, terms: readonly unknown[]): void => {
    const list = (slots[slot] ??= []);
    for (const raw of terms) {
      const t = asServerStores(raw) as JsonValue;
      if (!list.some((x) => jsonEqual(x, t))) list.push(t);
    }
  };
  const matchExpressions: JsonValue[] = [];
  const matchFields: JsonValue[] = [];
  const spread: JsonValue[] = [];
  const record: Record<string, number> = {};
  for (const p of policies) {
    record[p.ref] = p.source.metadata.generation ?? 0;
    // The API server keys the list by (topologyKey, whenUnsatisfiable): the first policy's wins.
    for (const c of policySpreadConstraintsFor(p, workload)) {
      const value = asServerStores(c) as JsonValue;
      if (!spread.some((x) => sameSpreadKey(x, value))) spread.push(value);
    }
    const t = policyTermsFor(p, workload);
    add('podAffinity.required', t.podAffinity);
    add('podAffinity.preferred', t.preferredPodAffinity);
    add('podAntiAffinity.required', t.podAntiAffinity);
    add('podAntiAffinity.preferred', t.preferredPodAntiAffinity);
    const node = p.affinity.nodeAffinity;
    add('nodeAffinity.preferred', node?.[PREFERRED] ?? []);
    for (const term of node?.[REQUIRED]?.nodeSelectorTerms ?? []) {
      for (const e of term.matchExpressions ?? []) pushOnce(matchExpressions, e);
      for (const f of term.matchFields ?? []) pushOnce(matchFields, f);
    }
  }
  for (const s of SLOT_NAMES) if (slots[s]?.length === 0) Reflect.deleteProperty(slots, s);
  return {
    policies: record,
    slots,
    node: { matchExpressions, matchFields },
    ...(spread.length > 0 ? { spread } : {}),
  };
}

/**
 * Whether two spread constraints share the key the API server merges and validates
 * `topologySpreadConstraints` by: a pod spec may hold one constraint per pair.
 */
function sameSpreadKey(a: unknown, b: unknown): boolean {
  return (
    isObj(a) &&
    isObj(b) &&
    a.topologyKey === b.topologyKey &&
    a.whenUnsatisfiable === b.whenUnsatisfiable
  );
}

function pushOnce(list: JsonValue[], raw: unknown): void {
  const value = asServerStores(raw) as JsonValue;
  if (!list.some((x) => jsonEqual(x, value))) list.push(value);
}

const injectsAffinity = (i: Injection): boolean =>
  SLOT_NAMES.some((s) => (i.slots[s]?.length ?? 0) > 0) ||
  i.node.matchExpressions.length > 0 ||
  i.node.matchFields.length > 0;

const isEmptyInjection = (i: Injection): boolean =>
  !injectsAffinity(i) && (i.spread?.length ?? 0) === 0;

/** Takes one occurrence of `value` out of `list`, the last one, by exact (key-order-free) match. */
function removeOne(list: unknown[], value: unknown): boolean {
  const key = canonicalJson(value);
  for (let i = list.length - 1; i >= 0; i--) {
    if (canonicalJson(list[i]) === key) {
      list.splice(i, 1);
      return true;
    }
  }
  return false;
}

/**
 * Takes out exactly what `record` says was injected; everything else, the owner's terms
 * included, stays where and as it is. A term the owner edited no longer matches and stays.
 */
export function revertInjected(
  affinity: Affinity | undefined,
  record: AppliedRecord,
): Affinity | undefined {
  if (affinity === undefined) return undefined;
  const a = structuredClone(affinity) as Obj;
  for (const slot of SLOT_NAMES) {
    const [group, field] = SLOTS[slot];
    const container = a[group];
    const list = isObj(container) ? container[field] : undefined;
    if (!Array.isArray(list)) continue;
    for (const t of record.slots[slot] ?? []) removeOne(list, t);
  }
  if (record.node) revertNode(a, record.node);
  for (const path of [...record.created].sort((x, y) => y.length - x.length)) pruneIfEmpty(a, path);
  return record.created.includes('affinity') && Object.keys(a).length === 0 ? undefined : a;
}

function nodeTerms(a: Obj): unknown[] | undefined {
  const node = a.nodeAffinity;
  const required = isObj(node) ? node[REQUIRED] : undefined;
  const terms = isObj(required) ? required.nodeSelectorTerms : undefined;
  return Array.isArray(terms) ? terms : undefined;
}

const NODE_LISTS = ['matchExpressions', 'matchFields'] as const;

/**
 * Takes the injected requirements out of every nodeSelectorTerm, except, in a term that
 * already held some of them, those copies: they are its owner's.
 */
function revertNode(a: Obj, node: NodeRecord): void {
  const terms = nodeTerms(a);
  if (terms === undefined) return;
  terms.forEach((term, i) => {
    if (!isObj(term)) return;
    const had = node.alreadyThere?.find((h) => h.term === i);
    for (const key of NODE_LISTS) {
      const list = term[key];
      if (!Array.isArray(list)) continue;
      const owners = had?.[key] ?? [];
      const injected = node[key].filter((v) => !owners.some((o) => jsonEqual(o, v)));
      const removed = injected.filter((v) => removeOne(list, v)).length;
      if (removed > 0 && list.length === 0) Reflect.deleteProperty(term, key);
    }
  });
  if (node.createdTerm) {
    const i = terms.findIndex((t) => isObj(t) && Object.keys(t).length === 0);
    if (i >= 0) terms.splice(i, 1);
  }
}

/** Removes the container at a dotted path (under the affinity) when it holds nothing. */
function pruneIfEmpty(a: Obj, path: string): void {
  const parts = path.split('.').slice(1); // paths start at 'affinity'
  const last = parts.pop();
  if (last === undefined) return;
  let parent: unknown = a;
  for (const p of parts) parent = isObj(parent) ? parent[p] : undefined;
  if (!isObj(parent)) return;
  const value = parent[last];
  const empty = Array.isArray(value)
    ? value.length === 0
    : isObj(value) && Object.keys(value).length === 0;
  if (empty) Reflect.deleteProperty(parent, last);
}

/** Makes sure `parent[key]` exists, noting it in `created` when it did not. */
function ensure<T>(parent: Obj, key: string, make: () => T, path: string, created: string[]): T {
  if (parent[key] === undefined || parent[key] === null) {
    parent[key] = make();
    created.push(path);
  }
  return parent[key] as T;
}

/**
 * Appends the injection to the owner's affinity: pod terms after the owner's own, node
 * requirements into every required nodeSelectorTerm; a term or requirement the owner
 * already has is not repeated. Returns the new affinity and the record of what was added.
 */
export function inject(
  owner: Affinity | undefined,
  injection: Injection,
): { affinity: Affinity; record: AppliedRecord } {
  const created: string[] = [];
  const root: Obj = { affinity: owner === undefined ? undefined : structuredClone(owner) };
  const a = ensure<Obj>(root, 'affinity', () => ({}), 'affinity', created);
  const slots: Partial<Record<Slot, JsonValue[]>> = {};
  for (const slot of SLOT_NAMES) {
    const terms = injection.slots[slot] ?? [];
    if (terms.length === 0) continue;
    const [group, field] = SLOTS[slot];
    const container = ensure<Obj>(a, group, () => ({}), `affinity.${group}`, created);
    const list = ensure<unknown[]>(
      container,
      field,
      () => [],
      `affinity.${group}.${field}`,
      created,
    );
    const added = terms.filter((t) => !list.some((x) => jsonEqual(x, t)));
    list.push(...added.map((t) => structuredClone(t)));
    if (added.length > 0) slots[slot] = added;
  }
  const node = injectNode(a, injection.node, created);
  const record: AppliedRecord = {
    policies: injection.policies,
    slots,
    ...(node ? { node } : {}),
    created,
  };
  return { affinity: a, record };
}

/**
 * Adds the node requirements to every required nodeSelectorTerm (creating one when there is
 * none), each only where the term does not hold it already. `undefined` when none was added.
 */
function injectNode(a: Obj, wanted: NodeRequirements, created: string[]): NodeRecord | undefined {
  if (wanted.matchExpressions.length === 0 && wanted.matchFields.length === 0) return undefined;
  const na = ensure<Obj>(a, 'nodeAffinity', () => ({}), 'affinity.nodeAffinity', created);
  const req = ensure<Obj>(na, REQUIRED, () => ({}), `affinity.nodeAffinity.${REQUIRED}`, created);
  const terms = ensure<unknown[]>(
    req,
    'nodeSelectorTerms',
    () => [],
    `affinity.nodeAffinity.${REQUIRED}.nodeSelectorTerms`,
    created,
  );
  const createdTerm = terms.length === 0;
  if (createdTerm) terms.push({});
  let added = false;
  const alreadyThere: TermAlreadyHad[] = [];
  for (const [i, term] of terms.entries()) {
    if (!isObj(term)) continue;
    const had: { matchExpressions?: JsonValue[]; matchFields?: JsonValue[] } = {};
    for (const key of NODE_LISTS) {
      const existing = Array.isArray(term[key]) ? (term[key] as unknown[]) : [];
      const present = wanted[key].filter((v) => existing.some((x) => jsonEqual(x, v)));
      const missing = wanted[key].filter((v) => !present.includes(v));
      if (present.length > 0) had[key] = present;
      if (missing.length > 0) {
        ((term[key] ??= []) as unknown[]).push(...structuredClone(missing));
        added = true;
      }
    }
    if (had.matchExpressions !== undefined || had.matchFields !== undefined)
      alreadyThere.push({ term: i, ...had });
  }
  if (!added) return undefined;
  return {
    matchExpressions: wanted.matchExpressions,
    matchFields: wanted.matchFields,
    createdTerm,
    ...(alreadyThere.length > 0 ? { alreadyThere } : {}),
  };
}

export interface DesiredAffinity {
  readonly affinity: Affinity | undefined;
  /** `null` when nothing is injected: the annotation is removed. */
  readonly record: AppliedRecord | null;
}

/**
 * The affinity a workload should carry: the owner's (what is there less what was injected
 * before) plus what the policies ask now. With no policy, exactly the owner's. Affinity
 * only: an injection with spread constraints goes through desiredPlacement.
 */
export function desiredAffinity(
  current: Affinity | undefined,
  previous: AppliedRecord | null,
  injection: Injection | null,
): DesiredAffinity {
  const owner = previous === null ? current : revertInjected(current, previous);
  if (injection === null || isEmptyInjection(injection)) return { affinity: owner, record: null };
  return inject(owner, injection);
}

/** What a pod template holds that policies write into: its affinity and spread constraints. */
export interface TemplatePlacement {
  readonly affinity: Affinity | undefined;
  readonly topologySpreadConstraints: readonly TopologySpreadConstraint[] | undefined;
}

/**
 * Takes out exactly the spread constraints `record` says were injected; the owner's stay
 * where and as they are, and so does one the owner edited (it no longer matches).
 */
export function revertSpread(
  constraints: readonly TopologySpreadConstraint[] | undefined,
  record: AppliedRecord,
): TopologySpreadConstraint[] | undefined {
  if (constraints === undefined) return undefined;
  const list = structuredClone(constraints) as TopologySpreadConstraint[];
  for (const c of record.topologySpreadConstraints ?? []) removeOne(list, c);
  return list.length === 0 && record.created.includes(SPREAD_PATH) ? undefined : list;
}

/**
 * The owner's spread constraints with those the policies (priority order) ask added, as
 * injectPlacement adds them: one per (topologyKey, whenUnsatisfiable), the owner's first.
 */
export function withPolicySpread(
  own: readonly TopologySpreadConstraint[] | undefined,
  policies: readonly CompiledPolicy[],
  workload: WorkloadRef,
): TopologySpreadConstraint[] {
  const out = [...(own ?? [])];
  for (const p of policies)
    for (const c of policySpreadConstraintsFor(p, workload))
      if (!out.some((x) => sameSpreadKey(x, c))) out.push(c);
  return out;
}

/** What the policies' terms and constraints added to the owner's placement, and the record. */
export function injectPlacement(
  owner: TemplatePlacement,
  injection: Injection,
): { placement: TemplatePlacement; record: AppliedRecord } {
  const base = injectsAffinity(injection)
    ? inject(owner.affinity, injection)
    : {
        affinity: owner.affinity,
        record: { policies: injection.policies, slots: {}, created: [] } as AppliedRecord,
      };
  const created = [...base.record.created];
  const list =
    owner.topologySpreadConstraints === undefined
      ? undefined
      : (structuredClone(owner.topologySpreadConstraints) as TopologySpreadConstraint[]);
  // One constraint per (topologyKey, whenUnsatisfiable): where the owner has one, theirs stays.
  const added = (injection.spread ?? []).filter(
    (c) => !(list ?? []).some((x) => sameSpreadKey(x, c)),
  );
  if (added.length === 0) {
    return {
      placement: { affinity: base.affinity, topologySpreadConstraints: list },
      record: base.record,
    };
  }
  if (list === undefined) created.push(SPREAD_PATH);
  const constraints = [
    ...(list ?? []),
    ...(structuredClone(added) as unknown as TopologySpreadConstraint[]),
  ];
  return {
    placement: { affinity: base.affinity, topologySpreadConstraints: constraints },
    record: { ...base.record, topologySpreadConstraints: added, created },
  };
}

export interface DesiredPlacement {
  readonly placement: TemplatePlacement;
  /** `null` when nothing is injected: the annotation is removed. */
  readonly record: AppliedRecord | null;
}

/**
 * The affinity and spread constraints a workload should carry: the owner's (what is there
 * less what was injected before) plus what the policies ask now. With no policy, exactly
 * the owner's.
 */
export function desiredPlacement(
  current: TemplatePlacement,
  previous: AppliedRecord | null,
  injection: Injection | null,
): DesiredPlacement {
  const owner: TemplatePlacement =
    previous === null
      ? current
      : {
          affinity: revertInjected(current.affinity, previous),
          topologySpreadConstraints: revertSpread(current.topologySpreadConstraints, previous),
        };
  if (injection === null || isEmptyInjection(injection)) return { placement: owner, record: null };
  return injectPlacement(owner, injection);
}

/**
 * Why no workload could ever take this policy's terms, if none could: the record of them
 * alone (on a workload with no affinity and the smallest selector) is over what Kubernetes
 * allows for all of a workload's annotations, so every write would be refused with 422.
 */
export function oversizedRecord(policy: CompiledPolicy): FieldError | undefined {
  const probe: WorkloadRef = {
    kind: 'Deployment',
    namespace: policy.scope.kind === 'own' ? policy.scope.namespace : 'default',
    name: 'probe',
    templateLabels: {},
    podSelector: {},
  };
  const { record } = inject(undefined, injectionFor([policy], probe));
  const bytes = recordBytes(serializeRecord(record));
  if (bytes <= ANNOTATIONS_MAX_BYTES) return undefined;
  return new FieldError(
    'spec.affinity',
    `its terms take ${bytes} bytes in the ${APPLIED_ANNOTATION} annotation that records them on ` +
      `each workload, more than the ${ANNOTATIONS_MAX_BYTES} bytes Kubernetes allows for all of ` +
      `a workload's annotations together: no workload could take them`,
  );
}
