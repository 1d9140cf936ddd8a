/**
 * Pieces of CEL text that the admission policy (admission.ts) is built from: its variables
 * and the names they share (slots, groups, patch operations), the canonical
 * JSON of a term computed in CEL (merge.ts's record form, keys sorted as canonicalJson sorts
 * them), typed constructors for values a JSON Patch adds, and label selectors as predicates.
 */
import type { JsonValue } from './canonical.ts';
import type { Selector } from './selector.ts';
import { SLOTS, type Slot } from './record.ts';

/** A CEL string literal. */
export const lit = (s: string): string => JSON.stringify(s);

/** A variable of the admission policy's CEL program. */
export const v = (name: string, expression: string) => ({ name, expression });

/** An empty list of strings, typed as such (CEL types a bare [] apart from list(string)). */
export const NO_STRINGS = "[''].filter(x, x != '')";

/** The slots in the order merge.ts's `inject` walks them (it notes created containers in that order). */
export const SLOT_ORDER = Object.keys(SLOTS) as Slot[];

/** A slot's part of a variable name (`podAffinity_required`). */
export const slotVar = (slot: Slot): string => slot.replace('.', '_');

export const GROUPS = ['podAffinity', 'podAntiAffinity', 'nodeAffinity'] as const;
export type Group = (typeof GROUPS)[number];
export const slotsOf = (g: Group): Slot[] => SLOT_ORDER.filter((s) => SLOTS[s][0] === g);

/** `parts` joined by `&&`; `true` when there are none. */
export const all = (parts: readonly string[]): string =>
  parts.length === 0 ? 'true' : parts.join(' && ');

/** The JSON Patch path of the template's affinity. */
export const AFFINITY_PATH = '/spec/template/spec/affinity';

/** A JSON Patch operation in CEL; `value` is CEL. */
export const op = (kind: 'add' | 'remove', path: string, value?: string): string =>
  `JSONPatch{op: '${kind}', path: ${lit(path)}${value === undefined ? '' : `, value: ${value}`}}`;

/** Whether the record's `created` list names the container at `path`. */
export const inCreated = (path: string): string =>
  `variables.createdText.contains(${lit(`"${path}"`)})`;

/** The object's affinity, and the type name of its typed constructor. */
export const OBJ = 'object.spec.template.spec.affinity';
export const TYPE = 'Object.spec.template.spec.affinity';

export const present = (e: string): string => `has(${e}) && size(${e}) > 0`;

/** CEL text of the canonical JSON of a string list. */
export const strList = (e: string, v: string, escape = false): string =>
  `'[' + ${e}.map(${v}, '"' + ${escape ? `${v}.replace('\\\\', '\\\\\\\\').replace('"', '\\\\"')` : v} + '"').join(',') + ']'`;

/** CEL text of `{"a":..,"b":..}` from optional parts, keys in sorted order. */
const objectOf = (parts: readonly string[]): string =>
  `'{' + (${parts.join(' + ')}).join(',') + '}'`;
const optional = (cond: string, key: string, value: string): string =>
  `(${cond} ? [${lit(`"${key}":`)} + ${value}] : [])`;

/** CEL text of a label or node selector requirement (`{"key":..,"operator":..,"values":[..]}`). */
export function requirementText(r: string, d: number, escape: boolean): string {
  return `'{"key":"' + ${r}.key + '","operator":"' + ${r}.operator + '"' + (${present(`${r}.values`)} ? ',"values":' + ${strList(`${r}.values`, `v${d}`, escape)} : '') + '}'`;
}

/** CEL text of a LabelSelector at `e` (comprehension variables numbered `d`). */
export function labelSelectorText(e: string, d: number): string {
  const k = `k${d}`;
  return objectOf([
    optional(
      present(`${e}.matchExpressions`),
      'matchExpressions',
      `'[' + ${e}.matchExpressions.map(r${d}, ${requirementText(`r${d}`, d, false)}).join(',') + ']'`,
    ),
    optional(
      present(`${e}.matchLabels`),
      'matchLabels',
      `'{' + ${e}.matchLabels.map(${k}, ${k}).sort().map(${k}, '"' + ${k} + '":"' + ${e}.matchLabels[${k}] + '"').join(',') + '}'`,
    ),
  ]);
}

function podAffinityTerm(t: string): string {
  return objectOf([
    optional(
      `has(${t}.labelSelector)`,
      'labelSelector',
      labelSelectorText(`${t}.labelSelector`, 1),
    ),
    optional(
      present(`${t}.matchLabelKeys`),
      'matchLabelKeys',
      strList(`${t}.matchLabelKeys`, 's1'),
    ),
    optional(
      present(`${t}.mismatchLabelKeys`),
      'mismatchLabelKeys',
      strList(`${t}.mismatchLabelKeys`, 's2'),
    ),
    optional(
      `has(${t}.namespaceSelector)`,
      'namespaceSelector',
      labelSelectorText(`${t}.namespaceSelector`, 2),
    ),
    optional(present(`${t}.namespaces`), 'namespaces', strList(`${t}.namespaces`, 's3')),
    `['"topologyKey":"' + ${t}.topologyKey + '"']`,
  ]);
}

function nodePreference(w: string): string {
  const reqs = (field: string, d: number): string =>
    optional(
      present(`${w}.preference.${field}`),
      field,
      `'[' + ${w}.preference.${field}.map(r${d}, ${requirementText(`r${d}`, d, true)}).join(',') + ']'`,
    );
  return `'{"preference":' + ${objectOf([reqs('matchExpressions', 3), reqs('matchFields', 4)])} + ',"weight":' + string(${w}.weight) + '}'`;
}

/** CEL text of the canonical JSON of term `t` as it sits in `slot`. */
export function termText(slot: Slot, t: string): string {
  if (slot === 'nodeAffinity.preferred') return nodePreference(t);
  if (slot.endsWith('.required')) return podAffinityTerm(t);
  return `'{"podAffinityTerm":' + ${podAffinityTerm(`${t}.podAffinityTerm`)} + ',"weight":' + string(${t}.weight) + '}'`;
}

/** Fields whose value is a map of strings, not a struct. */
const STRING_MAPS = new Set(['matchLabels']);

/** A typed CEL constructor for a JSON value at `type` (the API server needs typed values in a JSON Patch). */
export function typedValue(type: string, value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return lit(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    return `[${(value as readonly JsonValue[]).map((v) => typedValue(type, v)).join(', ')}]`;
  }
  const fields = Object.entries(value as Record<string, JsonValue>).map(([k, v]) =>
    STRING_MAPS.has(k)
      ? `${k}: ${stringMap(v as Record<string, string>)}`
      : `${k}: ${typedValue(`${type}.${k}`, v)}`,
  );
  return `${type}{${fields.join(', ')}}`;
}

/** A CEL map literal of strings. */
export const stringMap = (m: Readonly<Record<string, string>>): string =>
  `{${Object.entries(m)
    .map(([k, v]) => `${lit(k)}: ${lit(v)}`)
    .join(', ')}}`;

/** CEL for whether the labels at `labels` (a map expression) match a compiled selector. */
export function selectorCel(selector: Selector, labels: string): string {
  if (selector.kind === 'nothing') return 'false';
  const parts = selector.requirements.map((r) => {
    const has = `${lit(r.key)} in ${labels}`;
    const values = `[${r.values.map(lit).join(', ')}]`;
    switch (r.operator) {
      case 'In':
        return `(${has} && ${labels}[${lit(r.key)}] in ${values})`;
      case 'NotIn':
        return `(!(${has}) || !(${labels}[${lit(r.key)}] in ${values}))`;
      case 'Exists':
        return `(${has})`;
      case 'DoesNotExist':
        return `!(${has})`;
    }
  });
  return parts.length === 0 ? 'true' : parts.join(' && ');
}

/**
 * CEL for whether text `t` is one entry of the JSON list text `list` (`[a,b]`): entries of one
 * type never nest one another, so the text between `[`/`,` and `,`/`]` is a whole entry.
 */
export const inListText = (list: string, t: string): string =>
  `[${['[', ','].flatMap((a) => [',', ']'].map((b) => `${list}.contains('${a}' + ${t} + '${b}')`)).join(', ')}].exists(f, f)`;

/**
 * A typed LabelSelector (type `type`) equal to the workload's own pod selector,
 * `object.spec.selector`: what a `spreadAcross` term selects.
 */
export function ownSelectorTyped(type: string): string {
  const exprs = `object.spec.?selector.?matchExpressions.orValue([])`;
  return (
    `${type}{?matchLabels: object.spec.?selector.?matchLabels, ` +
    `?matchExpressions: size(${exprs}) > 0 ? optional.of(${exprs}.map(r, ${type}.matchExpressions{key: r.key, operator: r.operator, ?values: r.?values})) : optional.none()}`
  );
}

/**
 * Whether the policies ask anything of group `g`: a slot of it with entries in its `list`
 * variables (`inj`: injected, `add`: appended), or, for node affinity, required node terms.
 */
export const groupAsks = (g: Group, list: 'inj' | 'add'): string =>
  [
    ...slotsOf(g).map((s) => `size(variables.${list}_${slotVar(s)}) > 0`),
    ...(g === 'nodeAffinity' ? ['variables.needNode'] : []),
  ].join(' || ');
