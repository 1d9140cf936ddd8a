/**
 * The clash check at admission: whether a required podAffinity term and a required
 * podAntiAffinity term of the result, one of them a policy's, might not both hold. Objects
 * it cannot clear are left to the reconciler, whose contradiction check (contradiction.ts)
 * judges them exactly.
 */
import { lit, NO_STRINGS, OBJ, present, v } from './admission-cel.ts';
import type { SlotTable } from './admission-slots.ts';
import type { JsonValue } from './canonical.ts';
import { TOPOLOGY_LEVEL } from './contradiction.ts';
import type { Slot } from './record.ts';
import { REQUIRED_TERMS as REQUIRED } from './term.ts';

/** Selector operators that a label set lacking the key never meets. */
const REQUIRE_KEY = ['In', 'Exists'];

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

/**
 * The variables of the clash check: whether a required podAffinity term and a required
 * podAntiAffinity term of the result, one of them a policy's, might not both hold. It is
 * contradiction.ts's termsContradict made wider so CEL can say it: the anti-affinity's
 * topology domain holds the affinity's (domainInside), and no matchLabels key shows that the
 * affinity may pick pods the anti-affinity does not (a key with another value, or one the
 * affinity's selector leaves free). Such objects are left to the reconciler, which judges
 * them exactly and writes nothing that cannot hold.
 */
export function podClashVariables(tables: ReadonlyMap<Slot, SlotTable>) {
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
