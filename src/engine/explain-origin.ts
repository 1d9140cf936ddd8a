/**
 * The placement rules a pod is under and who put each there (see explain.ts): its owner's
 * template, or a policy. A term a policy asks for is the policy's (pod-placement.ts merges
 * them so), injected when the workload's `placement.dev/applied` record names the policy,
 * else only judged by it; a term of the pod's spec that the record holds was injected for
 * the record's policies even when they are gone from the input. A policy's node requirements
 * and node preferences, and a spread constraint one of its `spreadAcross` entries writes, are
 * the policy's, as the audit attributes them (judge-node-spread.ts).
 */
import { APPLIED_ANNOTATION } from '../api/cluster.ts';
import type { Pod } from '../api/core.ts';
import type { PolicyRef } from '../api/policy.ts';
import { asServerStores } from './canonical.ts';
import { jsonEqual } from '../util/json.ts';
import type { RuleOrigin } from './explain-types.ts';
import { attributed, spreadOrigins, type PodPolicies } from './judge-node-spread.ts';
import type { PodPlacement, SourcedTerm, WeightedTerm } from './placement.ts';
import { scoredNodeTerms } from './preferred-node-terms.ts';
import { parseRecord, type AppliedRecord, type Slot } from './record.ts';
import { selectorText } from './rollout-sim.ts';
import { PREFERRED_TERMS, REQUIRED_TERMS } from './term.ts';
import type { WorkloadObject } from './workload.ts';

/** The workload's record, when it has one that reads. */
function recordOf(object: WorkloadObject | undefined): AppliedRecord | undefined {
  // The CLI's reader keeps a workload's placement.dev annotations (src/kube/transforms.ts).
  const meta = object?.metadata as
    { readonly annotations?: Readonly<Record<string, string>> } | undefined;
  const parsed = parseRecord(meta?.annotations?.[APPLIED_ANNOTATION]);
  return parsed.kind === 'ok' ? parsed.record : undefined;
}

type TermKind = 'podAffinity' | 'podAntiAffinity';

/**
 * The rules of `pod` (as `target`, its placement with policy terms, resolves them), each
 * with who put it there; `workload` is its owner's key (`Kind/ns/name`), null for a bare pod;
 * `reached`, the policies with node or spread rules that reach it.
 */
export function ruleOrigins(
  pod: Pod,
  target: PodPlacement,
  workload: string | null,
  object: WorkloadObject | undefined,
  reached: PodPolicies,
): RuleOrigin[] {
  const record = recordOf(object);
  const owner = workload === null ? 'the pod itself (no owner)' : `its owner ${workload}`;
  /** Who put `raw` there when the record holds it among `held`. */
  const inRecord = (held: readonly unknown[] | undefined, raw: unknown): string | undefined => {
    if (!(held ?? []).some((t) => jsonEqual(asServerStores(t), asServerStores(raw))))
      return undefined;
    return `injected into ${workload ?? ''} for ${Object.keys(record?.policies ?? {}).join(', ')} (its ${APPLIED_ANNOTATION} record)`;
  };
  const recorded = (slot: Slot, raw: unknown): string | undefined =>
    inRecord(record?.slots[slot], raw);
  /** A policy's rule: injected per the workload's record, else as `otherwise` says. */
  const byPolicy = (ref: PolicyRef, otherwise: string): string => {
    const generation = record?.policies[ref];
    return generation === undefined
      ? `${ref} (${otherwise})`
      : `${ref} (injected into ${workload ?? ''}, policy generation ${generation})`;
  };
  const JUDGED_ONLY = 'not in the template: judged by the policy';
  const putBy = (s: SourcedTerm, slot: Slot, raw: unknown): string =>
    s.source === 'pod' ? (recorded(slot, raw) ?? owner) : byPolicy(s.source, JUDGED_ONLY);
  const affinity = pod.spec.affinity;
  const rawOf = (kind: TermKind, list: 'required' | 'preferred', i: number): unknown =>
    list === 'required'
      ? affinity?.[kind]?.[REQUIRED_TERMS]?.[i]
      : affinity?.[kind]?.[PREFERRED_TERMS]?.[i];
  const termText = (s: SourcedTerm): string =>
    `${selectorText(s.term.selector)} per ${s.term.topologyKey}`;
  const podTerms = (
    rule: TermKind,
    required: readonly SourcedTerm[],
    preferred: readonly WeightedTerm[],
  ): RuleOrigin[] => {
    const origin = (s: SourcedTerm, list: 'required' | 'preferred', text: string): RuleOrigin => ({
      rule,
      required: list === 'required',
      field: s.field,
      source: s.source,
      putBy: putBy(s, `${rule}.${list}`, rawOf(rule, list, s.index)),
      text,
    });
    return [
      ...required.map((s) => origin(s, 'required', termText(s))),
      ...preferred.map((s) => origin(s, 'preferred', `${termText(s)}, weight ${s.weight}`)),
    ];
  };
  const out: RuleOrigin[] = [];
  const selector = Object.entries(pod.spec.nodeSelector ?? {});
  if (selector.length > 0)
    out.push({
      rule: 'nodeSelector',
      required: true,
      field: 'spec.nodeSelector',
      source: 'pod',
      putBy: owner,
      text: selector.map(([k, v]) => `${k}=${v}`).join(','),
    });
  // The pod's own terms with its policies' requirements taken out, as the audit judges them.
  const nodeRules = attributed(pod, reached);
  const terms = nodeRules.own.rules.nodeAffinity?.[REQUIRED_TERMS]?.nodeSelectorTerms;
  if (terms !== undefined) {
    const injected = [
      ...(record?.node?.matchExpressions ?? []),
      ...(record?.node?.matchFields ?? []),
    ];
    out.push({
      rule: 'nodeAffinity',
      required: true,
      field: `spec.affinity.nodeAffinity.${REQUIRED_TERMS}`,
      source: 'pod',
      putBy:
        injected.length === 0
          ? owner
          : `${owner}, with requirements injected for ${Object.keys(record?.policies ?? {}).join(', ')} (its ${APPLIED_ANNOTATION} record)`,
      text: `${terms.length} nodeSelectorTerm(s), any one to hold`,
    });
  }
  for (const p of nodeRules.policies) {
    const policyTerms = p.affinity.nodeAffinity?.[REQUIRED_TERMS]?.nodeSelectorTerms ?? [];
    out.push({
      rule: 'nodeAffinity',
      required: true,
      field: `spec.affinity.nodeAffinity.${REQUIRED_TERMS}`,
      source: p.ref,
      putBy: byPolicy(p.ref, JUDGED_ONLY),
      text: `${policyTerms.length} nodeSelectorTerm(s), every one to hold`,
    });
  }
  out.push(...preferredNodeOrigins(pod, reached, owner, byPolicy, recorded));
  const spreadFrom = spreadOrigins(pod, reached);
  (pod.spec.topologySpreadConstraints ?? []).forEach((c, i) => {
    const origin = spreadFrom.get(i);
    out.push({
      rule: 'topologySpread',
      required: c.whenUnsatisfiable === 'DoNotSchedule',
      ...(origin === undefined
        ? {
            field: `spec.topologySpreadConstraints[${i}]`,
            source: 'pod',
            putBy: inRecord(record?.topologySpreadConstraints, c) ?? owner,
          }
        : {
            field: `spec.spreadAcross[${origin.index}]`,
            source: origin.source,
            putBy: byPolicy(origin.source, `as spreadAcross[${origin.index}] writes it`),
          }),
      text: `maxSkew ${c.maxSkew} per ${c.topologyKey}, ${c.whenUnsatisfiable}`,
    });
  });
  out.push(
    ...podTerms('podAffinity', target.affinity, target.preferredAffinity),
    ...podTerms('podAntiAffinity', target.antiAffinity, target.preferredAntiAffinity),
  );
  return out;
}

/**
 * The preferred node-affinity terms a pod is scored by (scoredNodeTerms, as the audit's
 * score reads them): its own, those equal to a reaching policy's being the policy's, then the
 * policies' it does not carry.
 */
function preferredNodeOrigins(
  pod: Pod,
  reached: PodPolicies,
  owner: string,
  byPolicy: (ref: PolicyRef, otherwise: string) => string,
  recorded: (slot: Slot, raw: unknown) => string | undefined,
): RuleOrigin[] {
  const policies = reached.targeting.filter((p) => !reached.exempt.includes(p.ref));
  const own = pod.spec.affinity?.nodeAffinity?.[PREFERRED_TERMS] ?? [];
  return scoredNodeTerms(own, policies).map(({ term, own: at, from }) => ({
    rule: 'nodeAffinity',
    required: false,
    field: `spec.affinity.nodeAffinity.${PREFERRED_TERMS}[${from?.index ?? at ?? 0}]`,
    source: from?.ref ?? 'pod',
    putBy:
      from === undefined
        ? (recorded('nodeAffinity.preferred', term) ?? owner)
        : byPolicy(
            from.ref,
            at === undefined
              ? 'not in the template: scored by the policy'
              : 'the pod carries its term',
          ),
    text: `weight ${term.weight}`,
  }));
}
