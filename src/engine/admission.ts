import { APPLIED_ANNOTATION, SLOTS, type Slot } from './record.ts';
import { asServerStores, canonicalJson, type JsonValue } from './canonical.ts';
import { policyTermsFor, type CompiledPolicy, type NamespaceScope } from './policy.ts';
import type { Selector } from './selector.ts';
import { REQUIRED_TERMS as REQUIRED } from './term.ts';

/**
 * Compiles the Enforce policies into the CEL of one MutatingAdmissionPolicy that computes,
 * inside the API server, what merge.ts computes for a workload that carries no
 * `placement.dev/applied` record yet: `inject(owner, injectionFor(targeting policies))`.
 * One policy for all, because the API server runs several MutatingAdmissionPolicies in no
 * defined order, and priority order is part of the result (docs/adr/0002).
 */

/** The kinds admission covers; a CronJob's template sits elsewhere and stays with the reconciler. */
export const ADMISSION_KINDS = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  ReplicaSet: 'replicasets',
} as const;

/** The field manager of the operator's own writes: admission leaves them alone. */
export const OPERATOR_FIELD_MANAGER = 'placement-operator';

/** Why a policy's terms are left to the reconciler instead of admission. */
export type AdmissionFallback = 'spreadAcross' | 'requiredNodeAffinity' | 'tooManyPolicies';

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

const lit = (s: string): string => JSON.stringify(s);
const OBJ = 'object.spec.template.spec.affinity';
const TYPE = 'Object.spec.template.spec.affinity';
const slotVar = (slot: Slot): string => slot.replace('.', '_');
const present = (e: string): string => `has(${e}) && size(${e}) > 0`;

/** CEL text of the canonical JSON (merge.ts's record form) of a string list. */
const strList = (e: string, v: string, escape = false): string =>
  `'[' + ${e}.map(${v}, '"' + ${escape ? `${v}.replace('\\\\', '\\\\\\\\').replace('"', '\\\\"')` : v} + '"').join(',') + ']'`;

/** CEL text of `{"a":..,"b":..}` from optional parts, keys in sorted order. */
const objectOf = (parts: readonly string[]): string =>
  `'{' + (${parts.join(' + ')}).join(',') + '}'`;
const optional = (cond: string, key: string, value: string): string =>
  `(${cond} ? [${lit(`"${key}":`)} + ${value}] : [])`;

function selectorRequirement(r: string, d: number, escape: boolean): string {
  return `'{"key":"' + ${r}.key + '","operator":"' + ${r}.operator + '"' + (${present(`${r}.values`)} ? ',"values":' + ${strList(`${r}.values`, `v${d}`, escape)} : '') + '}'`;
}

function labelSelector(e: string, d: number): string {
  const k = `k${d}`;
  return objectOf([
    optional(
      present(`${e}.matchExpressions`),
      'matchExpressions',
      `'[' + ${e}.matchExpressions.map(r${d}, ${selectorRequirement(`r${d}`, d, false)}).join(',') + ']'`,
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
    optional(`has(${t}.labelSelector)`, 'labelSelector', labelSelector(`${t}.labelSelector`, 1)),
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
      labelSelector(`${t}.namespaceSelector`, 2),
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
      `'[' + ${w}.preference.${field}.map(r${d}, ${selectorRequirement(`r${d}`, d, true)}).join(',') + ']'`,
    );
  return `'{"preference":' + ${objectOf([reqs('matchExpressions', 3), reqs('matchFields', 4)])} + ',"weight":' + string(${w}.weight) + '}'`;
}

/** CEL text of the canonical JSON of term `t` as it sits in `slot`. */
function termText(slot: Slot, t: string): string {
  if (slot === 'nodeAffinity.preferred') return nodePreference(t);
  if (slot.endsWith('.required')) return podAffinityTerm(t);
  return `'{"podAffinityTerm":' + ${podAffinityTerm(`${t}.podAffinityTerm`)} + ',"weight":' + string(${t}.weight) + '}'`;
}

/** Fields whose value is a map of strings, not a struct. */
const STRING_MAPS = new Set(['matchLabels']);

/** A typed CEL constructor for a JSON value at `type` (the API server needs typed values in a JSON Patch). */
function typedValue(type: string, value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return lit(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    return `[${(value as readonly JsonValue[]).map((v) => typedValue(type, v)).join(', ')}]`;
  }
  const fields = Object.entries(value as Record<string, JsonValue>).map(([k, v]) =>
    STRING_MAPS.has(k)
      ? `${k}: {${Object.entries(v as Record<string, string>)
          .map(([mk, mv]) => `${lit(mk)}: ${lit(mv)}`)
          .join(', ')}}`
      : `${k}: ${typedValue(`${type}.${k}`, v)}`,
  );
  return `${type}{${fields.join(', ')}}`;
}

function selectorCel(selector: Selector, labels: string): string {
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

function fallbackOf(p: CompiledPolicy): AdmissionFallback | null {
  if (p.spread.length > 0) return 'spreadAcross';
  if ((p.affinity.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms.length ?? 0) > 0)
    return 'requiredNodeAffinity';
  return null;
}

/** The most policies one MutatingAdmissionPolicy holds (CEL cost and size, measured in ADR 0002). */
export const MAX_ADMITTED_POLICIES = 40;

/**
 * The MutatingAdmissionPolicy spec for the Enforce policies `policies` (priority order).
 * Policies admission cannot compute exactly stay with the reconciler, and an object that
 * one of them targets is left alone at admission, so that priority order always holds.
 */
export function admissionPlan(
  policies: readonly CompiledPolicy[],
  invalid: readonly string[] = [],
): AdmissionPlan {
  const enforced = policies.filter((p) => p.mode === 'Enforce');
  const fallback: Record<string, AdmissionFallback> = {};
  const admitted: CompiledPolicy[] = [];
  const left: CompiledPolicy[] = [];
  for (const p of enforced) {
    const why = admitted.length >= MAX_ADMITTED_POLICIES ? 'tooManyPolicies' : fallbackOf(p);
    if (why === null) admitted.push(p);
    else {
      fallback[p.ref] = why;
      left.push(p);
    }
  }
  if (admitted.length === 0) return { spec: null, admitted: [], fallback };

  // Each slot's distinct terms (canonical text → index); each policy's indices, in its order.
  const tables = new Map<Slot, string[]>(SLOT_ORDER.map((s) => [s, []]));
  const values = new Map<Slot, JsonValue[]>(SLOT_ORDER.map((s) => [s, []]));
  const perPolicy = admitted.map((p) => {
    const t = policyTermsFor(p, {
      kind: 'Deployment',
      namespace: '',
      name: '',
      templateLabels: {},
      podSelector: {},
    });
    const lists: Record<Slot, readonly unknown[]> = {
      'podAffinity.required': t.podAffinity,
      'podAffinity.preferred': t.preferredPodAffinity,
      'podAntiAffinity.required': t.podAntiAffinity,
      'podAntiAffinity.preferred': t.preferredPodAntiAffinity,
      'nodeAffinity.preferred':
        p.affinity.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [],
    };
    const indices = {} as Record<Slot, number[]>;
    for (const slot of SLOT_ORDER) {
      const table = tables.get(slot) ?? [];
      indices[slot] = lists[slot].map((raw) => {
        const value = asServerStores(raw) as JsonValue;
        const text = canonicalJson(value);
        let i = table.indexOf(text);
        if (i < 0) {
          i = table.push(text) - 1;
          values.get(slot)?.push(value);
        }
        return i;
      });
    }
    return indices;
  });

  const v = (name: string, expression: string) => ({ name, expression });
  const GROUPS = ['podAffinity', 'podAntiAffinity', 'nodeAffinity'] as const;
  const slotsOf = (g: (typeof GROUPS)[number]): Slot[] =>
    SLOT_ORDER.filter((s) => SLOTS[s][0] === g);
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
  const inSection = (s: string, c: string): string =>
    `[${['[', ','].flatMap((a) => [',', ']'].map((b) => `variables.sec_${s}.contains('${a}' + ${c} + '${b}')`)).join(', ')}].exists(f, f)`;

  const variables = [
    v('labels', 'object.spec.template.?metadata.?labels.orValue({})'),
    v('nsLabels', 'namespaceObject.?metadata.?labels.orValue({})'),
    ...admitted.map((p, i) => v(`p${i}`, targetsCel(p))),
    v('record', `object.metadata.?annotations[?${lit(APPLIED_ANNOTATION)}].orValue('')`),
    v('hasRecord', `variables.record != ''`),
    v(
      'createdText',
      `variables.hasRecord ? variables.record.split('"created":[')[1].split(']')[0] : ''`,
    ),
    v('slotsText', `variables.hasRecord ? variables.record.split('"slots":{')[1] : ''`),
    v(
      'blocked',
      [
        ...left.map((p) => `(${targetsCel(p)})`),
        // Node requirements a record holds are taken out by the reconciler only.
        `variables.record.contains('"node":')`,
        `(variables.hasRecord && !(variables.record.startsWith('{"created":[') && variables.record.contains('"slots":{')))`,
        ...invalid.map((ref) => `variables.record.contains(${lit(`"${ref}":`)})`),
      ].join(' || '),
    ),
    v('hasAff', `has(${OBJ})`),
    ...GROUPS.map((g) => v(`has_${g}`, `variables.hasAff && has(${OBJ}.${g})`)),
    ...SLOT_ORDER.flatMap((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      const texts = `[${(tables.get(slot) ?? []).map(lit).join(', ')}]`;
      const picks = admitted
        .map((_, i) => ({ i, idx: perPolicy[i]?.[slot] ?? [] }))
        .filter((x) => x.idx.length > 0)
        .map((x) => `(variables.p${x.i} ? [${x.idx.join(', ')}] : [])`);
      return [
        v(`hasF_${s}`, `variables.has_${group} && has(${OBJ}.${group}.${field})`),
        v(`sec_${s}`, sectionCel(slot)),
        v(
          `cur_${s}`,
          `variables.hasF_${s} ? ${OBJ}.${group}.${field}.map(t, ${termText(slot, 't')}) : []`,
        ),
        // merge.ts's revert: each recorded term's last occurrence comes out.
        v(
          `rm_${s}`,
          `lists.range(size(variables.cur_${s})).filter(i, ${inSection(s, `variables.cur_${s}[i]`)} && !(variables.cur_${s}[i] in variables.cur_${s}.slice(i + 1, size(variables.cur_${s}))))`,
        ),
        v(
          `kept_${s}`,
          `lists.range(size(variables.cur_${s})).filter(i, !(i in variables.rm_${s})).map(i, variables.cur_${s}[i])`,
        ),
        v(
          `inj_${s}`,
          picks.length === 0 ? '[0].filter(x, false)' : `(${picks.join(' + ')}).distinct()`,
        ),
        v(`add_${s}`, `variables.inj_${s}.filter(i, !(${texts}[i] in variables.kept_${s}))`),
        v(`text_${s}`, `variables.add_${s}.map(i, ${texts}[i]).join(',')`),
        // Absent once the revert has pruned what the record says it created.
        v(
          `goneF_${s}`,
          `!variables.hasF_${s} || (${inCreated(`affinity.${group}.${field}`)} && size(variables.kept_${s}) == 0)`,
        ),
      ];
    }),
    ...GROUPS.map((g) =>
      v(
        `goneG_${g}`,
        `!variables.has_${g} || (${inCreated(`affinity.${g}`)} && ${all([
          ...slotsOf(g).map((s) => `variables.goneF_${slotVar(s)}`),
          ...(g === 'nodeAffinity' ? [`!has(${OBJ}.nodeAffinity.${REQUIRED})`] : []),
        ])})`,
      ),
    ),
    v(
      'goneAff',
      `!variables.hasAff || (${inCreated('affinity')} && ${all(GROUPS.map((g) => `variables.goneG_${g}`))})`,
    ),
    v('injecting', SLOT_ORDER.map((s) => `size(variables.inj_${slotVar(s)}) > 0`).join(' || ')),
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
      `'{"created":[' + variables.created.join(',') + '],"policies":{' + variables.policies + '},"slots":{' + (${[
        ...SLOT_ORDER,
      ]
        .sort()
        .map(
          (s) =>
            `(size(variables.add_${slotVar(s)}) > 0 ? [${lit(`"${s}":[`)} + variables.text_${slotVar(s)} + ']'] : [])`,
        )
        .join(' + ')}).join(',') + '}}'`,
    ),
  ];

  const op = (kind: 'add' | 'remove', path: string, value?: string): string =>
    `JSONPatch{op: '${kind}', path: ${lit(path)}${value === undefined ? '' : `, value: ${value}`}}`;
  const base = '/spec/template/spec/affinity';
  const annotation = `/metadata/annotations/${APPLIED_ANNOTATION.replace('/', '~1')}`;
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
    ...GROUPS.map(
      (g) =>
        `(variables.has_${g} && variables.goneG_${g} && !(${any(slotsOf(g), 'inj')}) ? [${op('remove', `${base}/${g}`)}] : [])`,
    ),
    `(variables.hasAff && variables.goneAff && !variables.injecting ? [${op('remove', base)}] : [])`,
    // The injection: containers it needs, then its terms after the owner's.
    `(variables.hasAff || !variables.injecting ? [] : [${op('add', base, `${TYPE}{}`)}])`,
    ...GROUPS.map(
      (g) =>
        `(!variables.has_${g} && (${any(slotsOf(g), 'add')}) ? [${op('add', `${base}/${g}`, `${TYPE}.${g}{}`)}] : [])`,
    ),
    ...SLOT_ORDER.map((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      const path = `${base}/${group}/${field}`;
      const typed = `[${(values.get(slot) ?? []).map((x) => typedValue(`${TYPE}.${group}.${field}`, x)).join(', ')}]`;
      return (
        `(size(variables.add_${s}) > 0 && !variables.hasF_${s} ? [${op('add', path, '[]')}] : []) + ` +
        `variables.add_${s}.map(i, ${op('add', `${path}/-`, `${typed}[i]`)})`
      );
    }),
    `(!variables.injecting ? (variables.hasRecord ? [${op('remove', annotation)}] : []) : has(object.metadata.annotations) ? [${op('add', annotation, 'variables.newRecord')}] : [${op('add', '/metadata/annotations', `{${lit(APPLIED_ANNOTATION)}: variables.newRecord}`)}])`,
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
        expression: `request.?options.?fieldManager.orValue('') != ${lit(OPERATOR_FIELD_MANAGER)}`,
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
  return {
    spec: spec,
    admitted: admitted.map((p) => p.ref),
    fallback,
  };
}

/** The containers merge.ts's `inject` notes as created, in the order it notes them. */
function createdCel(): string {
  const parts = [`(variables.goneAff ? ['"affinity"'] : [])`];
  for (const g of ['podAffinity', 'podAntiAffinity', 'nodeAffinity'] as const) {
    const slots = SLOT_ORDER.filter((s) => SLOTS[s][0] === g);
    const any = slots.map((s) => `size(variables.inj_${slotVar(s)}) > 0`).join(' || ');
    parts.push(`(variables.goneG_${g} && (${any}) ? [${lit(`"affinity.${g}"`)}] : [])`);
    for (const s of slots) {
      parts.push(
        `(size(variables.inj_${slotVar(s)}) > 0 && variables.goneF_${slotVar(s)} ? [${lit(`"affinity.${g}.${SLOTS[s][1]}"`)}] : [])`,
      );
    }
  }
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
  const labels = { 'app.kubernetes.io/managed-by': OPERATOR_FIELD_MANAGER };
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
