import {
  inListText,
  labelSelectorText,
  lit,
  OBJ,
  ownSelectorTyped,
  present,
  selectorCel,
  termText,
  TYPE,
  typedValue,
} from './admission-cel.ts';
import {
  nodeCreatedCel,
  nodeInjectVariables,
  nodePatches,
  nodeRevertVariables,
  nodeTables,
} from './admission-node.ts';
import {
  spreadCreatedCel,
  spreadPatches,
  spreadRecordCel,
  spreadTables,
  spreadVariables,
  spreadWantedCel,
} from './admission-spread.ts';
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import { TOPOLOGY_LEVEL } from './contradiction.ts';
import { policyTermsFor, type CompiledPolicy, type NamespaceScope } from './policy.ts';
import { SLOTS, SPREAD_PATH, type Slot } from './record.ts';
import { APPLIED_ANNOTATION, FIELD_MANAGER } from '../api/cluster.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';

/**
 * Compiles the Enforce policies into the CEL of one MutatingAdmissionPolicy that computes,
 * inside the API server, what merge.ts computes for a workload:
 * `desiredPlacement(current, its placement.dev/applied record, injectionFor(targeting
 * policies))`, `spreadAcross` (anti-affinity and topologySpreadConstraints) and required
 * node affinity included. One policy for all,
 * because the API server runs several MutatingAdmissionPolicies in no defined order, and
 * priority order is part of the result (docs/adr/0002).
 *
 * Long because the variables of that one CEL program refer to each other by name, so
 * the code that writes them stays together; what stands alone is in admission-cel.ts (CEL
 * text of selectors and terms), admission-node.ts (node affinity) and admission-spread.ts
 * (topologySpreadConstraints).
 */

/** The kinds admission covers; a CronJob's template sits elsewhere and stays with the reconciler. */
export const ADMISSION_KINDS = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  ReplicaSet: 'replicasets',
} as const;

/** Why a policy's terms are left to the reconciler instead of admission: past the limit. */
export type AdmissionFallback = 'tooManyPolicies';

export interface AdmissionPlan {
  /** The MutatingAdmissionPolicy spec; `null` when no Enforce policy is admitted. */
  readonly spec: JsonValue | null;
  /** Policy refs whose terms are injected at admission. */
  readonly admitted: readonly string[];
  /** Policy refs left to the reconciler, and why. */
  readonly fallback: Readonly<Record<string, AdmissionFallback>>;
}

/** The slots in the order merge.ts's `inject` walks them (it notes created containers in that order). */
const SLOT_ORDER = Object.keys(SLOTS) as Slot[];

const slotVar = (slot: Slot): string => slot.replace('.', '_');

/** CEL for whether the object's namespace is in `scope` (policy.ts's inScope). */
function inScopeCel(scope: NamespaceScope): string {
  return scope.kind === 'own'
    ? `request.namespace == ${lit(scope.namespace)}`
    : `(request.namespace in [${[...scope.names].map(lit).join(', ')}]${
        scope.selector === null ? '' : ` || ${selectorCel(scope.selector, 'variables.nsLabels')}`
      })`;
}

/**
 * CEL for whether an accepted PlacementException exempts the object from `p` (policy.ts's
 * policyReach): the exception selects it (exceptionSelects) and the policy accepts
 * exceptions from its namespace, which is the object's own.
 */
function exemptedCel(p: CompiledPolicy): string {
  if (p.exceptionScope === null) return 'false';
  const allowed = inScopeCel(p.exceptionScope);
  const selects = p.exemptions.map((e) =>
    [
      `request.namespace == ${lit(e.namespace)}`,
      `request.kind.kind in [${[...e.kinds].map(lit).join(', ')}]`,
      ...(e.names === null
        ? []
        : [`object.metadata.name in [${[...e.names].map(lit).join(', ')}]`]),
      ...(e.selector === null ? [] : [`(${selectorCel(e.selector, 'variables.labels')})`]),
    ].join(' && '),
  );
  return selects.length === 0
    ? 'false'
    : `(${allowed} && (${selects.map((x) => `(${x})`).join(' || ')}))`;
}

/** CEL for policyTargets(policy, the object under admission, its namespace's labels). */
function targetsCel(p: CompiledPolicy): string {
  const kinds = [...p.kinds].filter((k) => k in ADMISSION_KINDS);
  if (kinds.length === 0) return 'false';
  const exempted = exemptedCel(p);
  return `request.kind.kind in [${kinds.map(lit).join(', ')}] && ${inScopeCel(p.scope)} && ${selectorCel(p.selector, 'variables.labels')}${exempted === 'false' ? '' : ` && !${exempted}`}`;
}

/** The most policies one MutatingAdmissionPolicy holds (CEL cost and size, measured in ADR 0002). */
export const MAX_ADMITTED_POLICIES = 40;

const GROUPS = ['podAffinity', 'podAntiAffinity', 'nodeAffinity'] as const;
type Group = (typeof GROUPS)[number];
const slotsOf = (g: Group): Slot[] => SLOT_ORDER.filter((s) => SLOTS[s][0] === g);

/** A `spreadAcross` rule as a term of its slot: anti-affinity on the workload's own selector. */
interface SpreadTerm {
  readonly topologyKey: string;
  /** Preferred terms only. */
  readonly weight?: number;
}

/**
 * Each slot's candidate terms: first the policies' own terms (the same for every object,
 * written out), then their `spreadAcross` terms (built from the object's selector in CEL).
 * A term is an index into that list; each policy has its indices, in its order.
 */
interface SlotTable {
  readonly texts: string[];
  readonly values: JsonValue[];
  readonly spread: SpreadTerm[];
}

const NO_WORKLOAD = {
  kind: 'Deployment',
  namespace: '',
  name: '',
  templateLabels: {},
  podSelector: {},
} as const;

const spreadSlot = (mode: 'Required' | 'Preferred'): Slot =>
  mode === 'Required' ? 'podAntiAffinity.required' : 'podAntiAffinity.preferred';

function slotTables(admitted: readonly CompiledPolicy[]): {
  tables: ReadonlyMap<Slot, SlotTable>;
  perPolicy: Record<Slot, number[]>[];
} {
  const tables = new Map<Slot, SlotTable>(
    SLOT_ORDER.map((s) => [s, { texts: [], values: [], spread: [] }]),
  );
  const table = (slot: Slot): SlotTable =>
    tables.get(slot) ?? { texts: [], values: [], spread: [] };
  const own = admitted.map((p) => {
    const t = policyTermsFor({ ...p, spread: [] }, NO_WORKLOAD);
    const lists: Record<Slot, readonly unknown[]> = {
      'podAffinity.required': t.podAffinity,
      'podAffinity.preferred': t.preferredPodAffinity,
      'podAntiAffinity.required': t.podAntiAffinity,
      'podAntiAffinity.preferred': t.preferredPodAntiAffinity,
      'nodeAffinity.preferred': p.affinity.nodeAffinity?.[PREFERRED] ?? [],
    };
    const indices = {} as Record<Slot, number[]>;
    for (const slot of SLOT_ORDER) {
      const { texts, values } = table(slot);
      indices[slot] = lists[slot].map((raw) => {
        const value = asServerStores(raw) as JsonValue;
        const text = canonicalJson(value);
        let i = texts.indexOf(text);
        if (i < 0) {
          i = texts.push(text) - 1;
          values.push(value);
        }
        return i;
      });
    }
    return indices;
  });
  // policyTermsFor puts a policy's spread terms after its own, Required ones in the required
  // slot and Preferred ones (with their weight) in the preferred slot; TopologySpread
  // entries are constraints (admission-spread.ts), not terms.
  admitted.forEach((p, n) => {
    for (const s of p.spread.filter((x) => x.constraint === 'PodAntiAffinity')) {
      const slot = spreadSlot(s.mode);
      const { texts, spread } = table(slot);
      const term: SpreadTerm =
        s.mode === 'Required'
          ? { topologyKey: s.topologyKey }
          : { topologyKey: s.topologyKey, weight: s.weight };
      let i = spread.findIndex(
        (x) => x.topologyKey === term.topologyKey && x.weight === term.weight,
      );
      if (i < 0) i = spread.push(term) - 1;
      own[n]?.[slot].push(texts.length + i);
    }
  });
  return { tables, perPolicy: own };
}

/** CEL text of a spread term's canonical JSON for the object under admission. */
function spreadText(slot: Slot, t: SpreadTerm): string {
  const term = `'{"labelSelector":' + variables.selText + ${lit(`,"topologyKey":${JSON.stringify(t.topologyKey)}}`)}`;
  return slot === 'podAntiAffinity.required'
    ? term
    : `'{"podAffinityTerm":' + ${term} + ${lit(`,"weight":${String(t.weight ?? 0)}}`)}`;
}

/** A typed spread term for the object under admission. */
function spreadTyped(slot: Slot, t: SpreadTerm): string {
  const [group, field] = SLOTS[slot];
  const type = `${TYPE}.${group}.${field}`;
  if (slot === 'podAntiAffinity.required')
    return `${type}{labelSelector: ${ownSelectorTyped(`${type}.labelSelector`)}, topologyKey: ${lit(t.topologyKey)}}`;
  return `${type}{weight: ${String(t.weight ?? 0)}, podAffinityTerm: ${type}.podAffinityTerm{labelSelector: ${ownSelectorTyped(`${type}.podAffinityTerm.labelSelector`)}, topologyKey: ${lit(t.topologyKey)}}}`;
}

/** The topology key and selector labels of a required pod term, as the clash check reads them. */
interface TermShape {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly exprs: boolean;
  /** Keys its matchExpressions require present (In, Exists). */
  readonly required: readonly string[];
  /** Its `namespaces` (empty: the workload's own) and whether it has a namespaceSelector. */
  readonly namespaces: readonly string[];
  readonly namespaceSelector: boolean;
}

function termShape(value: JsonValue): TermShape {
  const t = value as {
    topologyKey?: string;
    namespaces?: string[];
    namespaceSelector?: unknown;
    labelSelector?: {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string }[];
    };
  };
  const exprs = t.labelSelector?.matchExpressions ?? [];
  return {
    key: t.topologyKey ?? '',
    labels: t.labelSelector?.matchLabels ?? {},
    exprs: exprs.length > 0,
    required: exprs.filter((r) => REQUIRE_KEY.includes(r.operator)).map((r) => r.key),
    namespaces: t.namespaces ?? [],
    namespaceSelector: t.namespaceSelector !== undefined,
  };
}

const NO_STRINGS = "[''].filter(x, x != '')";

/** Selector operators that a label set lacking the key never meets. */
const REQUIRE_KEY = ['In', 'Exists'];

const v = (name: string, expression: string) => ({ name, expression });

/** The template affinity of the stored object an update replaces. */
const OLD_OBJ = `oldObject${OBJ.slice('object'.length)}`;

/**
 * The variables of the clash check: whether a required podAffinity term and a required
 * podAntiAffinity term of the result, one of them a policy's, might not both hold. It is
 * contradiction.ts's termsContradict made wider so CEL can say it: the anti-affinity's
 * topology domain holds the affinity's (domainInside), and no matchLabels key shows that the
 * affinity may pick pods the anti-affinity does not (a key with another value, or one the
 * affinity's selector leaves free). Such objects are left to the reconciler, which judges
 * them exactly and writes nothing that cannot hold.
 */
function podClashVariables(tables: ReadonlyMap<Slot, SlotTable>) {
  const a = `${OBJ}.podAffinity.${REQUIRED}`;
  const b = `${OBJ}.podAntiAffinity.${REQUIRED}`;
  const aStatic = (tables.get('podAffinity.required')?.values ?? []).map(termShape);
  const bStatic = (tables.get('podAntiAffinity.required')?.values ?? []).map(termShape);
  const bSpread = tables.get('podAntiAffinity.required')?.spread ?? [];
  const list = (xs: readonly string[]): string => `[${xs.join(', ')}]`;
  // A list of strings; an empty one typed as such (CEL types a bare [] apart from list(string)).
  const strings = (xs: readonly string[]): string =>
    xs.length === 0 ? NO_STRINGS : list(xs.map(lit));
  // matchLabels as lists of `key=value` (a label key holds no `=`): CEL types literal maps
  // and the object's maps apart.
  const pairs = (labels: Readonly<Record<string, string>>): string =>
    strings(Object.entries(labels).map(([k, x]) => `${k}=${x}`));
  const pairsOf = (selector: string): string =>
    `(has(${selector}) && has(${selector}.matchLabels) ? ${selector}.matchLabels.map(k, k + '=' + ${selector}.matchLabels[k]) : ${NO_STRINGS})`;
  const level = `{${Object.entries(TOPOLOGY_LEVEL)
    .map(([k, n]) => `${lit(k)}: ${String(n)}`)
    .join(', ')}}`;
  const ownA = 'variables.keptIx_podAffinity_required';
  const ownB = 'variables.keptIx_podAntiAffinity_required';
  const injA = 'variables.inj_podAffinity_required';
  const injB = 'variables.inj_podAntiAffinity_required';
  const bKeys = strings([...bStatic.map((x) => x.key), ...bSpread.map((x) => x.topologyKey)]);
  // Lists of string lists and of booleans, empty ones typed (as `strings`).
  const lists = (xs: readonly string[]): string =>
    xs.length === 0 ? `[${NO_STRINGS}].filter(x, false)` : list(xs);
  const bools = (xs: readonly boolean[]): string =>
    xs.length === 0 ? '[false].filter(x, x)' : list(xs.map(String));
  const bLabels = lists([
    ...bStatic.map((x) => pairs(x.labels)),
    ...bSpread.map(() => pairsOf('object.spec.selector')),
  ]);
  const requiredKeys = (selector: string): string =>
    `(has(${selector}) && has(${selector}.matchExpressions) ? ${selector}.matchExpressions.filter(r, r.operator in ${strings(REQUIRE_KEY)}).map(r, string(r.key)) : ${NO_STRINGS})`;
  const bRequired = lists([
    ...bStatic.map((x) => strings(x.required)),
    ...bSpread.map(() => requiredKeys('object.spec.selector')),
  ]);
  // The namespaces a term reaches without a namespaceSelector: its list, or the object's own.
  const ownNs = (term: string): string =>
    `(has(${term}.namespaces) && size(${term}.namespaces) > 0 ? ${term}.namespaces.map(n, string(n)) : [request.namespace])`;
  const staticNs = (x: TermShape): string =>
    x.namespaces.length > 0 ? strings(x.namespaces) : '[request.namespace]';
  const nsSel = (term: string): string => `has(${term}.namespaceSelector)`;
  const inside = (x: string, y: string): string =>
    `(${x} == ${y} || (${x} in ${level} && ${y} in ${level} && ${level}[${x}] < ${level}[${y}]))`;
  const key = (e: string): string => `${e}.split('=')[0]`;
  return [
    v(
      'aK',
      `${ownA}.map(i, ${a}[i].topologyKey) + ${injA}.map(i, ${strings(aStatic.map((x) => x.key))}[i])`,
    ),
    v(
      'aML',
      `${ownA}.map(i, ${pairsOf(`${a}[i].labelSelector`)}) + ${injA}.map(i, ${lists(aStatic.map((x) => pairs(x.labels)))}[i])`,
    ),
    v(
      'aEX',
      `${ownA}.map(i, has(${a}[i].labelSelector) && ${present(`${a}[i].labelSelector.matchExpressions`)}) + ${injA}.map(i, ${bools(aStatic.map((x) => x.exprs))}[i])`,
    ),
    v('aInj', `${ownA}.map(i, false) + ${injA}.map(i, true)`),
    v('bK', `${ownB}.map(i, ${b}[i].topologyKey) + ${injB}.map(i, ${bKeys}[i])`),
    v('bML', `${ownB}.map(i, ${pairsOf(`${b}[i].labelSelector`)}) + ${injB}.map(i, ${bLabels}[i])`),
    v(
      'bRK',
      `${ownB}.map(i, ${requiredKeys(`${b}[i].labelSelector`)}) + ${injB}.map(i, ${bRequired}[i])`,
    ),
    v('bInj', `${ownB}.map(i, false) + ${injB}.map(i, true)`),
    v(
      'aNs',
      `${ownA}.map(i, ${ownNs(`${a}[i]`)}) + ${injA}.map(i, ${lists(aStatic.map(staticNs))}[i])`,
    ),
    v(
      'aNsSel',
      `${ownA}.map(i, ${nsSel(`${a}[i]`)}) + ${injA}.map(i, ${bools(aStatic.map((x) => x.namespaceSelector))}[i])`,
    ),
    v(
      'bNs',
      `${ownB}.map(i, ${ownNs(`${b}[i]`)}) + ${injB}.map(i, ${lists([...bStatic.map(staticNs), ...bSpread.map(() => '[request.namespace]')])}[i])`,
    ),
    v(
      'bNsSel',
      `${ownB}.map(i, ${nsSel(`${b}[i]`)}) + ${injB}.map(i, ${bools([...bStatic.map((x) => x.namespaceSelector), ...bSpread.map(() => false)])}[i])`,
    ),
    v('aKeys', `variables.aML.map(l, l.map(e, e.split('=')[0]))`),
    // Nothing shows the affinity may pick pods the anti-affinity does not: each label the
    // anti-affinity asks for, the affinity's selector asks for too, and each key it needs
    // present (In, Exists) the affinity's selector constrains (where the affinity has
    // matchExpressions, not weighed here, an unconstrained key proves nothing); and,
    // neither with a namespaceSelector, each namespace of the affinity's is one of the
    // anti-affinity's.
    v(
      'podClash',
      `lists.range(size(variables.aK)).exists(x, lists.range(size(variables.bK)).exists(y, (variables.aInj[x] || variables.bInj[y]) && ${inside('variables.aK[x]', 'variables.bK[y]')} && variables.bML[y].all(e, e in variables.aML[x] || (!(${key('e')} in variables.aKeys[x]) && variables.aEX[x])) && variables.bRK[y].all(k, k in variables.aKeys[x] || variables.aEX[x]) && !(!variables.aNsSel[x] && !variables.bNsSel[y] && variables.aNs[x].exists(n, !(n in variables.bNs[y])))))`,
    ),
  ];
}

/** What the operator knows beside its Enforce policies. */
export interface AdmissionContext {
  /** Workloads, `Kind/ns/name`, whose template write the reconciler holds back. */
  readonly heldBack?: readonly string[];
  /** Refs of the other policies it knows (Audit mode, being deleted): theirs is a revert. */
  readonly known?: readonly string[];
}

/**
 * The MutatingAdmissionPolicy spec for the Enforce policies `policies` (priority order).
 * Objects whose result admission cannot vouch for (a possible contradiction, an unreadable
 * record, a policy past the limit targeting them, a workload whose template write the
 * reconciler holds back because its rollout could not finish, a record that names a policy
 * this spec does not know or a later generation of one: the spec is older than the policy,
 * and would take its terms out) are left alone at admission, so that the reconciler decides
 * them as before.
 */
export function admissionPlan(
  policies: readonly CompiledPolicy[],
  invalid: readonly string[] = [],
  { heldBack = [], known = [] }: AdmissionContext = {},
): AdmissionPlan {
  const enforced = policies.filter((p) => p.mode === 'Enforce');
  const fallback: Record<string, AdmissionFallback> = {};
  const admitted = enforced.slice(0, MAX_ADMITTED_POLICIES);
  const left = enforced.slice(MAX_ADMITTED_POLICIES);
  for (const p of left) fallback[p.ref] = 'tooManyPolicies';
  if (admitted.length === 0) return { spec: null, admitted: [], fallback };

  const { tables, perPolicy } = slotTables(admitted);
  const node = nodeTables(admitted);
  const spread = spreadTables(admitted);
  const any = (slots: readonly Slot[], list: string): string =>
    slots.map((s) => `size(variables.${list}_${slotVar(s)}) > 0`).join(' || ');
  const inCreated = (path: string): string => `variables.createdText.contains(${lit(`"${path}"`)})`;
  const all = (parts: readonly string[]): string =>
    parts.length === 0 ? 'true' : parts.join(' && ');
  const laterKeys = (slot: Slot): string[] => [...SLOT_ORDER].sort().filter((k) => k > slot);
  // A slot's own part of the record: terms of one type, so a term's text found there between
  // `[`/`,` and `,`/`]` is one of its entries (no term of a type nests one of the same type).
  const sectionCel = (slot: Slot): string =>
    `variables.slotsText.contains(${lit(`"${slot}":[`)}) ? '[' + variables.slotsText.split(${lit(`"${slot}":[`)})[1]${laterKeys(
      slot,
    )
      .map((k) => `.split(${lit(`],"${k}":[`)})[0]`)
      .join('')} + ']' : ''`;
  const needNode = (g: Group): string => (g === 'nodeAffinity' ? ' || variables.needNode' : '');
  const quoted = (ref: string): string => lit(`"${ref}"`);
  const knownCel = `[${[...policies.map((p) => p.ref), ...known, ...invalid].map(quoted).join(', ')}]`;
  const generationsCel = `{${admitted
    .map((p) => `${quoted(p.ref)}: ${String(p.source.metadata.generation ?? 0)}`)
    .join(', ')}}`;

  const variables = [
    v('labels', 'object.spec.template.?metadata.?labels.orValue({})'),
    v('nsLabels', 'namespaceObject.?metadata.?labels.orValue({})'),
    ...admitted.map((p, i) => v(`p${i}`, targetsCel(p))),
    v('ownRecord', `object.metadata.?annotations[?${lit(APPLIED_ANNOTATION)}].orValue('')`),
    // lost-records.ts: an update that removes the record while the affinity stays as it was
    // (`kubectl annotate ... placement.dev/applied-`) leaves the terms it describes ours; the
    // stored object's record stands in for it, and is written back.
    v(
      'record',
      `variables.ownRecord == '' && request.operation == 'UPDATE' && oldObject != null && has(${OBJ}) == has(${OLD_OBJ}) && (!has(${OBJ}) || ${OBJ} == ${OLD_OBJ}) ? oldObject.metadata.?annotations[?${lit(APPLIED_ANNOTATION)}].orValue('') : variables.ownRecord`,
    ),
    v('hasRecord', `variables.record != ''`),
    // The record's `"Kind/ns/name":generation` entries (refs hold no `,`, `:` or `}`).
    v(
      'recordPolicies',
      `variables.record.contains('"policies":{') ? variables.record.split('"policies":{')[1].split('}')[0].split(',').filter(e, e != '') : ${NO_STRINGS}`,
    ),
    v(
      'createdText',
      `variables.hasRecord ? variables.record.split('"created":[')[1].split(']')[0] : ''`,
    ),
    // Up to the spread part, which follows the slots (keys in sorted order).
    v(
      'slotsText',
      `variables.hasRecord ? variables.record.split('"slots":{')[1].split(${lit(`},"${SPREAD_PATH}":[`)})[0] : ''`,
    ),
    v(
      'selText',
      `has(object.spec.selector) ? ${labelSelectorText('object.spec.selector', 5)} : '{}'`,
    ),
    v('hasAff', `has(${OBJ})`),
    ...GROUPS.map((g) => v(`has_${g}`, `variables.hasAff && has(${OBJ}.${g})`)),
    ...SLOT_ORDER.flatMap((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      const table = tables.get(slot) ?? { texts: [], values: [], spread: [] };
      const candidates = `[${[...table.texts.map(lit), ...table.spread.map((t) => spreadText(slot, t))].join(', ')}]`;
      const picks = admitted
        .map((_, i) => ({ i, idx: perPolicy[i]?.[slot] ?? [] }))
        .filter((x) => x.idx.length > 0)
        .map((x) => `(variables.p${x.i} ? [${x.idx.join(', ')}] : [])`);
      const picked =
        picks.length === 0 ? '[0].filter(x, false)' : `(${picks.join(' + ')}).distinct()`;
      return [
        v(`hasF_${s}`, `variables.has_${group} && has(${OBJ}.${group}.${field})`),
        v(`sec_${s}`, sectionCel(slot)),
        v(`cand_${s}`, candidates),
        v(
          `cur_${s}`,
          `variables.hasF_${s} ? ${OBJ}.${group}.${field}.map(t, ${termText(slot, 't')}) : []`,
        ),
        // merge.ts's revert: each recorded term's last occurrence comes out.
        v(
          `rm_${s}`,
          `lists.range(size(variables.cur_${s})).filter(i, ${inListText(`variables.sec_${s}`, `variables.cur_${s}[i]`)} && !(variables.cur_${s}[i] in variables.cur_${s}.slice(i + 1, size(variables.cur_${s}))))`,
        ),
        v(
          `keptIx_${s}`,
          `lists.range(size(variables.cur_${s})).filter(i, !(i in variables.rm_${s}))`,
        ),
        v(`kept_${s}`, `variables.keptIx_${s}.map(i, variables.cur_${s}[i])`),
        // injectionFor: the policies' terms in priority order, identical ones once (a spread
        // term can equal a policy's own term, so by text where the slot has spread terms).
        v(`pick_${s}`, picked),
        v(
          `inj_${s}`,
          table.spread.length === 0
            ? `variables.pick_${s}`
            : `lists.range(size(variables.pick_${s})).filter(j, !(variables.cand_${s}[variables.pick_${s}[j]] in variables.pick_${s}.slice(0, j).map(k, variables.cand_${s}[k]))).map(j, variables.pick_${s}[j])`,
        ),
        v(
          `add_${s}`,
          `variables.inj_${s}.filter(i, !(variables.cand_${s}[i] in variables.kept_${s}))`,
        ),
        v(`text_${s}`, `variables.add_${s}.map(i, variables.cand_${s}[i]).join(',')`),
        // Absent once the revert has pruned what the record says it created.
        v(
          `goneF_${s}`,
          `!variables.hasF_${s} || (${inCreated(`affinity.${group}.${field}`)} && size(variables.kept_${s}) == 0)`,
        ),
      ];
    }),
    ...nodeRevertVariables(node),
    ...GROUPS.map((g) =>
      v(
        `goneG_${g}`,
        `!variables.has_${g} || (${inCreated(`affinity.${g}`)} && ${all([
          ...slotsOf(g).map((s) => `variables.goneF_${slotVar(s)}`),
          ...(g === 'nodeAffinity' ? ['variables.reqGone'] : []),
        ])})`,
      ),
    ),
    v(
      'goneAff',
      `!variables.hasAff || (${inCreated('affinity')} && ${all(GROUPS.map((g) => `variables.goneG_${g}`))})`,
    ),
    ...nodeInjectVariables(node),
    ...podClashVariables(tables),
    v(
      'blocked',
      [
        'variables.podClash',
        ...node.clashes.map(([i, j]) => `(variables.p${i} && variables.p${j})`),
        `(variables.hasRecord && !(variables.record.startsWith('{"created":[') && variables.record.contains('"slots":{')))`,
        ...invalid.map((ref) => `variables.record.contains(${lit(`"${ref}":`)})`),
        ...left.map((p) => `(${targetsCel(p)})`),
        `variables.recordPolicies.exists(e, !(e.split(':')[0] in ${knownCel}) || (e.split(':')[0] in ${generationsCel} && int(e.split(':')[1]) > ${generationsCel}[e.split(':')[0]]))`,
        ...(heldBack.length === 0
          ? []
          : [
              `(request.kind.kind + '/' + request.namespace + '/' + object.metadata.name) in [${heldBack.map(lit).join(', ')}]`,
            ]),
      ].join(' || '),
    ),
    // Whether the policies ask anything of the affinity (merge.ts's injectsAffinity), and
    // anything at all (the record is written then, even when all of it was there already).
    v(
      'injectingAff',
      [
        ...SLOT_ORDER.map((s) => `size(variables.inj_${slotVar(s)}) > 0`),
        'variables.needNode',
      ].join(' || '),
    ),
    ...spreadVariables(spread),
    v('injecting', `variables.injectingAff || ${spreadWantedCel}`),
    v('active', `!variables.blocked && (variables.injecting || variables.hasRecord)`),
    v('created', createdCel()),
    v(
      'policies',
      `(${[...admitted.keys()]
        .sort((a, b) => ((admitted[a]?.ref ?? '') < (admitted[b]?.ref ?? '') ? -1 : 1))
        .map(
          (i) =>
            `(variables.p${i} ? [${lit(`"${admitted[i]?.ref ?? ''}":${String(admitted[i]?.source.metadata.generation ?? 0)}`)}] : [])`,
        )
        .join(' + ')}).join(',')`,
    ),
    v(
      'newRecord',
      `'{"created":[' + variables.created.join(',') + '],' + variables.nodeText + '"policies":{' + variables.policies + '},"slots":{' + (${[
        ...SLOT_ORDER,
      ]
        .sort()
        .map(
          (s) =>
            `(size(variables.add_${slotVar(s)}) > 0 ? [${lit(`"${s}":[`)} + variables.text_${slotVar(s)} + ']'] : [])`,
        )
        .join(' + ')}).join(',') + '}' + ${spreadRecordCel} + '}'`,
    ),
  ];

  const op = (kind: 'add' | 'remove', path: string, value?: string): string =>
    `JSONPatch{op: '${kind}', path: ${lit(path)}${value === undefined ? '' : `, value: ${value}`}}`;
  const base = '/spec/template/spec/affinity';
  const annotation = `/metadata/annotations/${APPLIED_ANNOTATION.replace('/', '~1')}`;
  const nodeOps = nodePatches(node, base);
  const patches = [
    // The revert: recorded terms out (highest index first), then what it created and left empty.
    ...SLOT_ORDER.map((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      return (
        `variables.rm_${s}.reverse().map(i, JSONPatch{op: 'remove', path: ${lit(`${base}/${group}/${field}/`)} + string(i)}) + ` +
        `(variables.hasF_${s} && variables.goneF_${s} && size(variables.inj_${s}) == 0 ? [${op('remove', `${base}/${group}/${field}`)}] : [])`
      );
    }),
    nodeOps.remove,
    ...GROUPS.map(
      (g) =>
        `(variables.has_${g} && variables.goneG_${g} && !(${any(slotsOf(g), 'inj')}${needNode(g)}) ? [${op('remove', `${base}/${g}`)}] : [])`,
    ),
    `(variables.hasAff && variables.goneAff && !variables.injectingAff ? [${op('remove', base)}] : [])`,
    // The injection: containers it needs, then its terms after the owner's.
    `(variables.hasAff || !variables.injectingAff ? [] : [${op('add', base, `${TYPE}{}`)}])`,
    ...GROUPS.map(
      (g) =>
        `(!variables.has_${g} && (${any(slotsOf(g), 'add')}${needNode(g)}) ? [${op('add', `${base}/${g}`, `${TYPE}.${g}{}`)}] : [])`,
    ),
    ...SLOT_ORDER.map((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      const path = `${base}/${group}/${field}`;
      const table = tables.get(slot) ?? { texts: [], values: [], spread: [] };
      const typed = `[${[
        ...table.values.map((x) => typedValue(`${TYPE}.${group}.${field}`, x)),
        ...table.spread.map((t) => spreadTyped(slot, t)),
      ].join(', ')}]`;
      return (
        `(size(variables.add_${s}) > 0 && !variables.hasF_${s} ? [${op('add', path, '[]')}] : []) + ` +
        `variables.add_${s}.map(i, ${op('add', `${path}/-`, `${typed}[i]`)})`
      );
    }),
    nodeOps.set,
    spreadPatches(spread),
    `(!variables.injecting ? (variables.ownRecord != '' ? [${op('remove', annotation)}] : []) : has(object.metadata.annotations) ? [${op('add', annotation, 'variables.newRecord')}] : [${op('add', '/metadata/annotations', `{${lit(APPLIED_ANNOTATION)}: variables.newRecord}`)}])`,
  ];

  const spec = {
    failurePolicy: 'Ignore',
    reinvocationPolicy: 'IfNeeded',
    matchConstraints: {
      resourceRules: [
        {
          apiGroups: ['apps'],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: Object.values(ADMISSION_KINDS),
        },
      ],
    },
    matchConditions: [
      {
        name: 'not-the-operator',
        expression: `request.?options.?fieldManager.orValue('') != ${lit(FIELD_MANAGER)}`,
      },
      {
        name: 'not-a-deployments-replicaset',
        expression:
          "request.kind.kind != 'ReplicaSet' || !has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(r, r.kind == 'Deployment' && has(r.controller) && r.controller)",
      },
    ],
    variables,
    mutations: [
      {
        patchType: 'JSONPatch',
        jsonPatch: { expression: `variables.active ? ${patches.join(' + ')} : []` },
      },
    ],
  };
  return { spec, admitted: admitted.map((p) => p.ref), fallback };
}

/** The containers merge.ts's `inject` notes as created, in the order it notes them. */
function createdCel(): string {
  const parts = [`(variables.injectingAff && variables.goneAff ? ['"affinity"'] : [])`];
  for (const g of GROUPS) {
    const slots = slotsOf(g);
    const any = slots.map((s) => `size(variables.inj_${slotVar(s)}) > 0`).join(' || ');
    const node = g === 'nodeAffinity' ? ' || variables.needNode' : '';
    parts.push(`(variables.goneG_${g} && (${any}${node}) ? [${lit(`"affinity.${g}"`)}] : [])`);
    for (const s of slots) {
      parts.push(
        `(size(variables.inj_${slotVar(s)}) > 0 && variables.goneF_${slotVar(s)} ? [${lit(`"affinity.${g}.${SLOTS[s][1]}"`)}] : [])`,
      );
    }
  }
  parts.push(nodeCreatedCel(), spreadCreatedCel);
  return parts.join(' + ');
}

/** The name of the operator's MutatingAdmissionPolicy and of its binding. */
export const ADMISSION_POLICY_NAME = 'placement.dev-injection';

/** The MutatingAdmissionPolicy and its binding for `spec`, named `name`. */
export function admissionObjects(
  spec: JsonValue,
  name = ADMISSION_POLICY_NAME,
): readonly [JsonValue, JsonValue] {
  const apiVersion = 'admissionregistration.k8s.io/v1';
  const labels = { 'app.kubernetes.io/managed-by': FIELD_MANAGER };
  return [
    { apiVersion, kind: 'MutatingAdmissionPolicy', metadata: { name, labels }, spec },
    {
      apiVersion,
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name, labels },
      spec: { policyName: name },
    },
  ];
}
