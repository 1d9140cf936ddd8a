/**
 * Required node affinity at admission: the CEL that does what merge.ts's injectNode and
 * revertNode do. Each policy's node requirements (priority order, each once) go into every
 * required nodeSelectorTerm that lacks them, or into a new term when there is none; the
 * `node` part of the placement.dev/applied record says what was added, which terms already
 * held what, and whether the term was created, and is read back (as text) to take out what
 * an earlier injection added.
 */
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import {
  inCreated,
  inListText,
  lit,
  OBJ,
  requirementText,
  TYPE,
  typedValue,
  v,
} from './admission-cel.ts';
import { requirementsContradict } from './contradiction.ts';
import type { CompiledPolicy } from './policy.ts';
import type { NodeSelectorRequirement } from '../api/core.ts';
import { REQUIRED_TERMS as REQUIRED } from './term.ts';

const LISTS = ['matchExpressions', 'matchFields'] as const;
type List = (typeof LISTS)[number];

const REQ = `${OBJ}.nodeAffinity.${REQUIRED}`;
const TERM_TYPE = `${TYPE}.nodeAffinity.${REQUIRED}.nodeSelectorTerms`;
/** Paths of the containers an injection may create, as the record's `created` names them. */
export const REQUIRED_PATH = `affinity.nodeAffinity.${REQUIRED}`;
export const TERMS_PATH = `${REQUIRED_PATH}.nodeSelectorTerms`;

/** The distinct requirements of each list over all admitted policies, and each policy's. */
export interface NodeTables {
  readonly texts: Readonly<Record<List, readonly string[]>>;
  readonly values: Readonly<Record<List, readonly JsonValue[]>>;
  /** Per admitted policy (plan order), the indices of its requirements, in its order. */
  readonly perPolicy: readonly Readonly<Record<List, readonly number[]>>[];
  /** Pairs of admitted policies (indices) whose requirements no node can meet together. */
  readonly clashes: readonly (readonly [number, number])[];
}

export function nodeTables(admitted: readonly CompiledPolicy[]): NodeTables {
  const texts: Record<List, string[]> = { matchExpressions: [], matchFields: [] };
  const values: Record<List, JsonValue[]> = { matchExpressions: [], matchFields: [] };
  const raw = admitted.map((p) => {
    const out: Record<List, NodeSelectorRequirement[]> = { matchExpressions: [], matchFields: [] };
    for (const term of p.affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? [])
      for (const l of LISTS) out[l].push(...(term[l] ?? []));
    return out;
  });
  const perPolicy = raw.map((lists) => {
    const indices: Record<List, number[]> = { matchExpressions: [], matchFields: [] };
    for (const l of LISTS) {
      for (const r of lists[l]) {
        const value = asServerStores(r) as JsonValue;
        const text = canonicalJson(value);
        let i = texts[l].indexOf(text);
        if (i < 0) {
          i = texts[l].push(text) - 1;
          values[l].push(value);
        }
        if (!indices[l].includes(i)) indices[l].push(i);
      }
    }
    return indices;
  });
  // contradiction.ts compares every node requirement of the targeting policies with every
  // other of the same list: a pair of policies (or one with itself) that clash is left to the
  // reconciler for the objects both target.
  const clashes: [number, number][] = [];
  raw.forEach((a, i) => {
    raw.slice(i).forEach((b, k) => {
      const j = i + k;
      const pairs = LISTS.some((l) =>
        a[l].some((x, xi) =>
          b[l].some((y, yi) => (i !== j || yi > xi) && requirementsContradict(x, y)),
        ),
      );
      if (pairs) clashes.push([i, j]);
    });
  });
  return { texts, values, perPolicy, clashes };
}

/**
 * The variables that read the object's required node terms and the record's `node` part,
 * and revert what it says was added (merge.ts's revertNode); they need `variables.record`,
 * `variables.createdText`, `variables.has_nodeAffinity` and `variables.p<i>`.
 */
export function nodeRevertVariables(tables: NodeTables): { name: string; expression: string }[] {
  const picks = (l: List): string => {
    const parts = tables.perPolicy
      .map((idx, i) => ({ i, idx: idx[l] }))
      .filter((x) => x.idx.length > 0)
      .map((x) => `(variables.p${x.i} ? [${x.idx.join(', ')}] : [])`);
    return parts.length === 0 ? '[0].filter(x, false)' : `(${parts.join(' + ')}).distinct()`;
  };
  const texts = (i: string, k: string): string => `variables.ntx[${i}][${k}]`;
  return [
    v('nw_me', picks('matchExpressions')),
    v('nw_mf', picks('matchFields')),
    v('needNode', 'size(variables.nw_me) + size(variables.nw_mf) > 0'),
    v('hasReq', `variables.has_nodeAffinity && has(${REQ})`),
    v('nst', `variables.hasReq && has(${REQ}.nodeSelectorTerms) ? ${REQ}.nodeSelectorTerms : []`),
    v(
      'ntx',
      `variables.nst.map(t, [t.?matchExpressions.orValue([]).map(r6, ${requirementText('r6', 6, true)}), t.?matchFields.orValue([]).map(r7, ${requirementText('r7', 7, true)})])`,
    ),
    // The record's node part as text: {"alreadyThere":[..],"createdTerm":B,"matchExpressions":[..],"matchFields":[..]}.
    v('hasNodeRec', `variables.record.contains('"node":{')`),
    v(
      'nodeSec',
      `variables.hasNodeRec ? variables.record.split('"node":')[1].split(',"policies":{')[0] : ''`,
    ),
    v('recTail', `variables.hasNodeRec ? variables.nodeSec.split('"createdTerm":')[1] : ''`),
    v('recCreatedTerm', `variables.recTail.startsWith('true')`),
    v('recMf', `variables.hasNodeRec ? variables.recTail.split('],"matchFields":[')[1] : ''`),
    v(
      'recK',
      `variables.hasNodeRec ? ['[' + variables.recTail.split(',"matchExpressions":[')[1].split('],"matchFields":[')[0] + ']', '[' + variables.recMf.substring(0, size(variables.recMf) - 2) + ']'] : ['', '']`,
    ),
    v(
      'atSec',
      `variables.nodeSec.contains('"alreadyThere":[') ? variables.nodeSec.split('"alreadyThere":[')[1].split('],"createdTerm":')[0] : ''`,
    ),
    // Each term's entry of alreadyThere (what it held already: its owner's copies), as text.
    v(
      'nat',
      `lists.range(size(variables.nst)).map(i, variables.atSec.contains('"term":' + string(i) + '}') ? variables.atSec.split('"term":' + string(i) + '}')[0] : '').map(p, p == '' ? '' : p.substring(p.lastIndexOf('{"match')))`,
    ),
    v(
      'nown',
      `variables.nat.map(e, [${LISTS.map((l) => `e.contains(${lit(`"${l}":[`)}) ? '[' + e.split(${lit(`"${l}":[`)})[1].split('],"')[0] + ']' : ''`).join(', ')}])`,
    ),
    // revertNode: in each term, the last copy of each recorded requirement that was not the owner's.
    v(
      'nrm',
      `lists.range(size(variables.nst)).map(i, [0, 1].map(k, lists.range(size(${texts('i', 'k')})).filter(j, ${inListText('variables.recK[k]', `${texts('i', 'k')}[j]`)} && !(${inListText('variables.nown[i][k]', `${texts('i', 'k')}[j]`)}) && !(${texts('i', 'k')}[j] in ${texts('i', 'k')}.slice(j + 1, size(${texts('i', 'k')}))))))`,
    ),
    v(
      'nkeep',
      `lists.range(size(variables.nst)).map(i, [0, 1].map(k, lists.range(size(${texts('i', 'k')})).filter(j, !(j in variables.nrm[i][k]))))`,
    ),
    v(
      'nempty',
      `lists.range(size(variables.nst)).map(i, size(variables.nkeep[i][0]) == 0 && size(variables.nkeep[i][1]) == 0)`,
    ),
    // The term the injection created goes: the first one left empty.
    v(
      'ndrop',
      `variables.recCreatedTerm && variables.nempty.exists(b, b) ? lists.range(size(variables.nst)).filter(i, variables.nempty[i])[0] : -1`,
    ),
    v('nterms', `lists.range(size(variables.nst)).filter(i, i != variables.ndrop)`),
    v(
      'reqGone',
      `!variables.hasReq || (${inCreated(REQUIRED_PATH)} && ${inCreated(TERMS_PATH)} && size(variables.nterms) == 0)`,
    ),
  ];
}

/** The variables of the injection into the owner's terms (after the revert): injectNode. */
export function nodeInjectVariables(tables: NodeTables): { name: string; expression: string }[] {
  const t = (l: List): string => `[${tables.texts[l].map(lit).join(', ')}]`;
  const ownTexts = (k: number): string =>
    `variables.nkeep[variables.nterms[p]][${k}].map(j, variables.ntx[variables.nterms[p]][${k}][j])`;
  const split = (keep: boolean): string =>
    `lists.range(size(variables.nterms)).map(p, [variables.nw_me.filter(w, ${keep ? '' : '!'}(${t('matchExpressions')}[w] in ${ownTexts(0)})), variables.nw_mf.filter(w, ${keep ? '' : '!'}(${t('matchFields')}[w] in ${ownTexts(1)}))])`;
  const listText = (l: List, e: string): string =>
    `${lit(`"${l}":[`)} + ${e}.map(w, ${t(l)}[w]).join(',') + ']'`;
  return [
    v('nnew', `variables.reqGone || size(variables.nterms) == 0`),
    v('npres', split(true)),
    v('nmiss', split(false)),
    v(
      'nadded',
      `variables.needNode && (variables.nnew || variables.nmiss.exists(m, size(m[0]) + size(m[1]) > 0))`,
    ),
    v(
      'nalready',
      `lists.range(size(variables.nterms)).filter(p, size(variables.npres[p][0]) + size(variables.npres[p][1]) > 0).map(p, '{' + ((size(variables.npres[p][0]) > 0 ? [${listText('matchExpressions', 'variables.npres[p][0]')}] : []) + (size(variables.npres[p][1]) > 0 ? [${listText('matchFields', 'variables.npres[p][1]')}] : []) + ['"term":' + string(p)]).join(',') + '}')`,
    ),
    // The record's node part, with its trailing comma (policies follow).
    v(
      'nodeText',
      `variables.nadded ? '"node":{' + (size(variables.nalready) > 0 ? '"alreadyThere":[' + variables.nalready.join(',') + '],' : '') + '"createdTerm":' + (variables.nnew ? 'true' : 'false') + ',' + ${listText('matchExpressions', 'variables.nw_me')} + ',' + ${listText('matchFields', 'variables.nw_mf')} + '},' : ''`,
    ),
  ];
}

/** The containers injectNode notes as created, after those of the slots. */
export const nodeCreatedCel = (): string =>
  `(variables.needNode && variables.reqGone ? [${lit(`"${REQUIRED_PATH}"`)}, ${lit(`"${TERMS_PATH}"`)}] : [])`;

/**
 * JSON Patch operations for the required node terms: `remove` (in the revert part, before
 * the containers are pruned) when nothing is left of them, and `set` (after the containers
 * are added) the whole requiredDuringScheduling... with the owner's terms, reverted, plus the
 * missing requirements.
 */
export function nodePatches(tables: NodeTables, base: string): { remove: string; set: string } {
  const path = `${base}/nodeAffinity/${REQUIRED}`;
  const typed = (l: List): string =>
    `[${tables.values[l].map((x) => typedValue(`${TERM_TYPE}.${l}`, x)).join(', ')}]`;
  const opt = (list: string): string =>
    `size(${list}) > 0 ? optional.of(${list}) : optional.none()`;
  const kept = (k: number, l: List): string =>
    `variables.nkeep[variables.nterms[p]][${k}].map(j, variables.nst[variables.nterms[p]].${l}[j])`;
  const missing = (k: number, l: List): string => `variables.nmiss[p][${k}].map(w, ${typed(l)}[w])`;
  const owners = `lists.range(size(variables.nterms)).map(p, ${TERM_TYPE}{?matchExpressions: ${opt(`(${kept(0, 'matchExpressions')} + ${missing(0, 'matchExpressions')})`)}, ?matchFields: ${opt(`(${kept(1, 'matchFields')} + ${missing(1, 'matchFields')})`)}})`;
  const created = `[${TERM_TYPE}{?matchExpressions: ${opt(`variables.nw_me.map(w, ${typed('matchExpressions')}[w])`)}, ?matchFields: ${opt(`variables.nw_mf.map(w, ${typed('matchFields')}[w])`)}}]`;
  const terms = `(variables.nnew ? (variables.needNode ? ${created} : []) : ${owners})`;
  return {
    remove: `(!variables.needNode && variables.hasNodeRec && variables.hasReq && variables.reqGone ? [JSONPatch{op: 'remove', path: ${lit(path)}}] : [])`,
    set: `(variables.needNode || (variables.hasNodeRec && !variables.reqGone) ? [JSONPatch{op: 'add', path: ${lit(path)}, value: ${TYPE}.nodeAffinity.${REQUIRED}{nodeSelectorTerms: ${terms}}}] : [])`,
  };
}
