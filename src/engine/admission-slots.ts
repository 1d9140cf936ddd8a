/**
 * The pod-affinity slots at admission (and preferred node affinity, whose terms are kept
 * the same way): each slot's candidate terms, first the policies' own, then their
 * `spreadAcross` terms built on the object's selector; and per slot the CEL that takes out
 * the recorded terms (merge.ts's revert), picks what the targeting policies inject
 * (injectionFor) and appends it after the owner's terms.
 */
import {
  AFFINITY_PATH,
  GROUPS,
  groupAsks,
  inCreated,
  inListText,
  lit,
  OBJ,
  op,
  ownSelectorTyped,
  SLOT_ORDER,
  slotVar,
  termText,
  TYPE,
  typedValue,
  v,
} from './admission-cel.ts';
import { slotSectionCel } from './admission-record.ts';
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import { policyTermsFor, type CompiledPolicy } from './policy.ts';
import { SLOTS, type Slot } from './record.ts';
import { PREFERRED_TERMS as PREFERRED } from './term.ts';

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
export interface SlotTable {
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

/** The table of `slot`; every slot has one. */
const tableOf = (tables: ReadonlyMap<Slot, SlotTable>, slot: Slot): SlotTable =>
  tables.get(slot) ?? { texts: [], values: [], spread: [] };

export function slotTables(admitted: readonly CompiledPolicy[]): {
  tables: ReadonlyMap<Slot, SlotTable>;
  perPolicy: Record<Slot, number[]>[];
} {
  const tables = new Map<Slot, SlotTable>(
    SLOT_ORDER.map((s) => [s, { texts: [], values: [], spread: [] }]),
  );
  const table = (slot: Slot): SlotTable => tableOf(tables, slot);
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

/**
 * Per slot, the variables of the revert and the injection: the owner's terms as text, the
 * recorded ones taken out (each one's last occurrence), the targeting policies' picks in
 * priority order, what is appended, and whether the field is left empty. They need
 * `variables.p<i>` (policy i targets the object), `variables.has_<group>` and the record's.
 */
export function slotVariables(
  tables: ReadonlyMap<Slot, SlotTable>,
  perPolicy: readonly Record<Slot, number[]>[],
): { name: string; expression: string }[] {
  return SLOT_ORDER.flatMap((slot) => {
    const [group, field] = SLOTS[slot];
    const s = slotVar(slot);
    const table = tableOf(tables, slot);
    const candidates = `[${[...table.texts.map(lit), ...table.spread.map((t) => spreadText(slot, t))].join(', ')}]`;
    const picks = perPolicy
      .map((p, i) => ({ i, idx: p[slot] }))
      .filter((x) => x.idx.length > 0)
      .map((x) => `(variables.p${x.i} ? [${x.idx.join(', ')}] : [])`);
    const picked =
      picks.length === 0 ? '[0].filter(x, false)' : `(${picks.join(' + ')}).distinct()`;
    return [
      v(`hasF_${s}`, `variables.has_${group} && has(${OBJ}.${group}.${field})`),
      v(`sec_${s}`, slotSectionCel(slot)),
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
  });
}

/**
 * The injection's JSON Patch for the slots: the containers it needs (the affinity, a group),
 * then each slot's appended terms, typed; `nodeSet` (admission-node.ts) sets required node
 * affinity between them and the rest.
 */
export function injectPatches(tables: ReadonlyMap<Slot, SlotTable>, nodeSet: string): string[] {
  return [
    `(variables.hasAff || !variables.injectingAff ? [] : [${op('add', AFFINITY_PATH, `${TYPE}{}`)}])`,
    ...GROUPS.map(
      (g) =>
        `(!variables.has_${g} && (${groupAsks(g, 'add')}) ? [${op('add', `${AFFINITY_PATH}/${g}`, `${TYPE}.${g}{}`)}] : [])`,
    ),
    ...SLOT_ORDER.map((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      const path = `${AFFINITY_PATH}/${group}/${field}`;
      const table = tableOf(tables, slot);
      const typed = `[${[
        ...table.values.map((x) => typedValue(`${TYPE}.${group}.${field}`, x)),
        ...table.spread.map((t) => spreadTyped(slot, t)),
      ].join(', ')}]`;
      return (
        `(size(variables.add_${s}) > 0 && !variables.hasF_${s} ? [${op('add', path, '[]')}] : []) + ` +
        `variables.add_${s}.map(i, ${op('add', `${path}/-`, `${typed}[i]`)})`
      );
    }),
    nodeSet,
  ];
}
