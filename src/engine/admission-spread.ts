/**
 * topologySpreadConstraints at admission: the CEL that does what merge.ts's injectPlacement
 * and revertSpread do for `spreadAcross` entries with `constraint: TopologySpread`. Each
 * policy's constraints (priority order) are built on the object's own `spec.selector`; one
 * per (topologyKey, whenUnsatisfiable), the first policy's, and none where the owner's list
 * (after the revert) already holds that pair, as the API server keys the list by it. The
 * record's `topologySpreadConstraints` part says what was appended, and is read back (as
 * text) to take out, by exact match, what an earlier injection appended.
 */
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import {
  inCreated,
  inListText,
  labelSelectorText,
  lit,
  ownSelectorTyped,
  present,
  strList,
  typedValue,
  v,
} from './admission-cel.ts';
import { policySpreadConstraintsFor, type CompiledPolicy, type WorkloadRef } from './policy.ts';
import { SPREAD_PATH } from './record.ts';

/** The pod spec's list, in CEL and as a JSON Patch path, and its items' typed constructor. */
const LIST = `object.spec.template.spec.${SPREAD_PATH}`;
export const SPREAD_PATCH_PATH = `/spec/template/spec/${SPREAD_PATH}`;
const ITEM_TYPE = `Object.spec.template.spec.${SPREAD_PATH}`;

/** A policy's constraint less its selector, which is the object's own and built in CEL. */
interface Shape {
  /** Its canonical JSON without `labelSelector` (the first key in sorted order). */
  readonly rest: string;
  readonly value: Readonly<Record<string, JsonValue>>;
  /** `topologyKey whenUnsatisfiable`: the pair the API server keys the list by. */
  readonly key: string;
}

/** The distinct constraints over all admitted policies, and each policy's, in its order. */
export interface SpreadTables {
  readonly shapes: readonly Shape[];
  /** Per admitted policy (plan order), the indices of its constraints. */
  readonly perPolicy: readonly (readonly number[])[];
}

const NO_WORKLOAD: WorkloadRef = {
  kind: 'Deployment',
  namespace: '',
  name: '',
  templateLabels: {},
  podSelector: {},
};

/** Whether the policies write any topologySpreadConstraint at all. */
export const writesSpread = (t: SpreadTables): boolean => t.shapes.length > 0;

export function spreadTables(admitted: readonly CompiledPolicy[]): SpreadTables {
  const shapes: Shape[] = [];
  const perPolicy = admitted.map((p) =>
    policySpreadConstraintsFor(p, NO_WORKLOAD).map(({ labelSelector: _, ...c }) => {
      const value = asServerStores(c) as Record<string, JsonValue>;
      const rest = canonicalJson(value);
      let i = shapes.findIndex((s) => s.rest === rest);
      if (i < 0)
        i = shapes.push({ rest, value, key: `${c.topologyKey} ${c.whenUnsatisfiable}` }) - 1;
      return i;
    }),
  );
  return { shapes, perPolicy };
}

/** CEL text of the canonical JSON of the stored constraint `c` (every field it may hold). */
function constraintText(c: string): string {
  const opt = (cond: string, key: string, value: string): string =>
    `(${cond} ? [${lit(`"${key}":`)} + ${value}] : [])`;
  const str = (field: string): string =>
    opt(`has(${c}.${field})`, field, `'"' + ${c}.${field} + '"'`);
  return `'{' + (${[
    opt(`has(${c}.labelSelector)`, 'labelSelector', labelSelectorText(`${c}.labelSelector`, 8)),
    opt(present(`${c}.matchLabelKeys`), 'matchLabelKeys', strList(`${c}.matchLabelKeys`, 's8')),
    `['"maxSkew":' + string(${c}.maxSkew)]`,
    opt(`has(${c}.minDomains)`, 'minDomains', `string(${c}.minDomains)`),
    str('nodeAffinityPolicy'),
    str('nodeTaintsPolicy'),
    `['"topologyKey":"' + ${c}.topologyKey + '"']`,
    `['"whenUnsatisfiable":"' + ${c}.whenUnsatisfiable + '"']`,
  ].join(' + ')}).join(',') + '}'`;
}

const NO_INTS = '[0].filter(x, false)';

/**
 * The variables of the revert (revertSpread) and of the injection (injectPlacement's
 * spread part); they need `variables.record`, `variables.createdText`, `variables.selText`
 * and `variables.p<i>`. `tsc_add` holds the indices appended, in order.
 */
export function spreadVariables(t: SpreadTables): { name: string; expression: string }[] {
  const picks = t.perPolicy
    .map((idx, i) => ({ i, idx }))
    .filter((x) => x.idx.length > 0)
    .map((x) => `(variables.p${x.i} ? [${x.idx.join(', ')}] : [])`);
  const keys = `[${t.shapes.map((s) => lit(s.key)).join(', ')}]`;
  const cur = 'variables.tsc_cur';
  return [
    v('tsc_has', `has(${LIST})`),
    v('tsc_cur', `variables.tsc_has ? ${LIST}.map(c, ${constraintText('c')}) : []`),
    // The record's part: the last key of its text, so everything after the opening bracket.
    v(
      'tsc_sec',
      `variables.record.contains(${lit(`"${SPREAD_PATH}":[`)}) ? '[' + variables.record.split(${lit(`"${SPREAD_PATH}":[`)})[1] : ''`,
    ),
    // revertSpread: each recorded constraint's last occurrence comes out.
    v(
      'tsc_rm',
      `lists.range(size(${cur})).filter(i, ${inListText('variables.tsc_sec', `${cur}[i]`)} && !(${cur}[i] in ${cur}.slice(i + 1, size(${cur}))))`,
    ),
    v('tsc_keptIx', `lists.range(size(${cur})).filter(i, !(i in variables.tsc_rm))`),
    v(
      'tsc_keptKeys',
      `variables.tsc_keptIx.map(i, ${LIST}[i].topologyKey + ' ' + ${LIST}[i].whenUnsatisfiable)`,
    ),
    // Absent once reverted: there was none, or the injection created it and nothing is left.
    v(
      'tsc_gone',
      `!variables.tsc_has || (${inCreated(SPREAD_PATH)} && size(variables.tsc_keptIx) == 0)`,
    ),
    // injectionFor: the policies' constraints in priority order, the first of each pair.
    v('tsc_pick', picks.length === 0 ? NO_INTS : picks.join(' + ')),
    v(
      'tsc_want',
      `lists.range(size(variables.tsc_pick)).filter(j, !(${keys}[variables.tsc_pick[j]] in variables.tsc_pick.slice(0, j).map(k, ${keys}[k]))).map(j, variables.tsc_pick[j])`,
    ),
    v('tsc_add', `variables.tsc_want.filter(i, !(${keys}[i] in variables.tsc_keptKeys))`),
    v(
      'tsc_text',
      `variables.tsc_add.map(i, [${t.shapes.map((s) => `'{"labelSelector":' + variables.selText + ${lit(`,${s.rest.slice(1)}`)}`).join(', ')}][i]).join(',')`,
    ),
  ];
}

/** Whether the policies ask any constraint of the object (the record is written then). */
export const spreadWantedCel = 'size(variables.tsc_want) > 0';

/** The record's spread part, with its leading comma (it follows `slots`); '' when none. */
export const spreadRecordCel = `(size(variables.tsc_add) > 0 ? ${lit(`,"${SPREAD_PATH}":[`)} + variables.tsc_text + ']' : '')`;

/** The container injectPlacement notes as created, after the affinity's. */
export const spreadCreatedCel = `(size(variables.tsc_add) > 0 && variables.tsc_gone ? [${lit(`"${SPREAD_PATH}"`)}] : [])`;

/**
 * JSON Patch operations: the recorded constraints out (highest index first) and the list
 * removed when the revert leaves it gone and nothing is added; then the list made when
 * there is none, and the new constraints appended after the owner's.
 */
export function spreadPatches(t: SpreadTables): string {
  const item = (s: Shape): string =>
    `${ITEM_TYPE}{labelSelector: ${ownSelectorTyped(`${ITEM_TYPE}.labelSelector`)}, ${Object.entries(
      s.value,
    )
      .map(([k, x]) => `${k}: ${typedValue(`${ITEM_TYPE}.${k}`, x)}`)
      .join(', ')}}`;
  const typed = `[${t.shapes.map(item).join(', ')}]`;
  const path = lit(SPREAD_PATCH_PATH);
  return [
    `variables.tsc_rm.reverse().map(i, JSONPatch{op: 'remove', path: ${lit(`${SPREAD_PATCH_PATH}/`)} + string(i)})`,
    `(variables.tsc_has && variables.tsc_gone && size(variables.tsc_add) == 0 ? [JSONPatch{op: 'remove', path: ${path}}] : [])`,
    `(size(variables.tsc_add) > 0 && !variables.tsc_has ? [JSONPatch{op: 'add', path: ${path}, value: []}] : [])`,
    `variables.tsc_add.map(i, JSONPatch{op: 'add', path: ${lit(`${SPREAD_PATCH_PATH}/-`)}, value: ${typed}[i]})`,
  ].join(' + ');
}
