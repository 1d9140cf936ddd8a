/**
 * Compiles the Enforce policies into the CEL of one MutatingAdmissionPolicy that computes,
 * inside the API server, what merge.ts computes for a workload:
 * `desiredPlacement(current, its placement.dev/applied record, injectionFor(targeting
 * policies))`, `spreadAcross` (anti-affinity and topologySpreadConstraints) and required
 * node affinity included. One policy for all,
 * because the API server runs several MutatingAdmissionPolicies in no defined order, and
 * priority order is part of the result (docs/adr/0002).
 *
 * This file is the plan: which policies admission takes, which objects it leaves to the
 * reconciler, and the order of the program's variables, which refer to each other by name.
 * The parts are written beside it: admission-target.ts (which objects a policy targets),
 * admission-record.ts (the record read and written), admission-slots.ts (each slot's terms),
 * admission-revert.ts (what an earlier injection added comes out), admission-clash.ts (the
 * podAffinity / podAntiAffinity clash check), admission-node.ts (required node affinity),
 * admission-spread.ts (topologySpreadConstraints), admission-cel.ts (CEL pieces they share)
 * and admission-object.ts (the MutatingAdmissionPolicy and its binding).
 */
import {
  AFFINITY_PATH,
  GROUPS,
  labelSelectorText,
  lit,
  OBJ,
  SLOT_ORDER,
  slotVar,
  v,
} from './admission-cel.ts';
import { podClashVariables } from './admission-clash.ts';
import {
  nodeInjectVariables,
  nodePatches,
  nodeRevertVariables,
  nodeTables,
} from './admission-node.ts';
import { admissionSpec } from './admission-object.ts';
import { RECORD_PATCH, recordReadVariables, recordWriteVariables } from './admission-record.ts';
import { containerRevertVariables, revertPatches } from './admission-revert.ts';
import { injectPatches, slotTables, slotVariables } from './admission-slots.ts';
import {
  spreadPatches,
  spreadTables,
  spreadVariables,
  spreadWantedCel,
} from './admission-spread.ts';
import { targetsCel } from './admission-target.ts';
import type { JsonValue } from './canonical.ts';
import type { CompiledPolicy } from './policy.ts';

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

/** The most policies one MutatingAdmissionPolicy holds (CEL cost and size, measured in ADR 0002). */
export const MAX_ADMITTED_POLICIES = 40;

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
  const quoted = (ref: string): string => lit(`"${ref}"`);
  const knownCel = `[${[...policies.map((p) => p.ref), ...known, ...invalid].map(quoted).join(', ')}]`;
  const generationsCel = `{${admitted
    .map((p) => `${quoted(p.ref)}: ${String(p.source.metadata.generation ?? 0)}`)
    .join(', ')}}`;

  const variables = [
    v('labels', 'object.spec.template.?metadata.?labels.orValue({})'),
    v('nsLabels', 'namespaceObject.?metadata.?labels.orValue({})'),
    ...admitted.map((p, i) => v(`p${i}`, targetsCel(p))),
    ...recordReadVariables(),
    v(
      'selText',
      `has(object.spec.selector) ? ${labelSelectorText('object.spec.selector', 5)} : '{}'`,
    ),
    v('hasAff', `has(${OBJ})`),
    ...GROUPS.map((g) => v(`has_${g}`, `variables.hasAff && has(${OBJ}.${g})`)),
    ...slotVariables(tables, perPolicy),
    ...nodeRevertVariables(node),
    ...containerRevertVariables(),
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
    ...recordWriteVariables(admitted),
  ];

  const nodeOps = nodePatches(node, AFFINITY_PATH);
  const patches = [
    // The revert: recorded terms out (highest index first), then what it created and left empty.
    ...revertPatches(nodeOps.remove),
    // The injection: containers it needs, then its terms after the owner's.
    ...injectPatches(tables, nodeOps.set),
    spreadPatches(spread),
    RECORD_PATCH,
  ];
  return {
    spec: admissionSpec(variables, patches),
    admitted: admitted.map((p) => p.ref),
    fallback,
  };
}
