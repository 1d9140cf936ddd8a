/**
 * The placement rules a pod is under and who put each there (see explain.ts): its owner's
 * template, or a policy. A term a policy asks for is the policy's (pod-placement.ts merges
 * them so), injected when the workload's `placement.dev/applied` record names the policy,
 * else only judged by it; a term of the pod's spec that the record holds was injected for
 * the record's policies even when they are gone from the input.
 */
import { APPLIED_ANNOTATION } from '../api/cluster.ts';
import type { Pod } from '../api/core.ts';
import { asServerStores } from './canonical.ts';
import { jsonEqual } from '../util/json.ts';
import type { RuleOrigin } from './explain-types.ts';
import type { PodPlacement, SourcedTerm, WeightedTerm } from './placement.ts';
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
 * with who put it there; `workload` is its owner's key (`Kind/ns/name`), null for a bare pod.
 */
export function ruleOrigins(
  pod: Pod,
  target: PodPlacement,
  workload: string | null,
  object: WorkloadObject | undefined,
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
  const putBy = (s: SourcedTerm, slot: Slot, raw: unknown): string => {
    if (s.source === 'pod') return recorded(slot, raw) ?? owner;
    const generation = record?.policies[s.source];
    return generation === undefined
      ? `${s.source} (not in the template: judged by the policy)`
      : `${s.source} (injected into ${workload ?? ''}, policy generation ${generation})`;
  };
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
  const node = affinity?.nodeAffinity;
  const terms = node?.[REQUIRED_TERMS]?.nodeSelectorTerms;
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
  (node?.[PREFERRED_TERMS] ?? []).forEach((p, i) => {
    out.push({
      rule: 'nodeAffinity',
      required: false,
      field: `spec.affinity.nodeAffinity.${PREFERRED_TERMS}[${i}]`,
      source: 'pod',
      putBy: recorded('nodeAffinity.preferred', p) ?? owner,
      text: `weight ${p.weight}`,
    });
  });
  (pod.spec.topologySpreadConstraints ?? []).forEach((c, i) => {
    out.push({
      rule: 'topologySpread',
      required: c.whenUnsatisfiable === 'DoNotSchedule',
      field: `spec.topologySpreadConstraints[${i}]`,
      source: 'pod',
      putBy: inRecord(record?.topologySpreadConstraints, c) ?? owner,
      text: `maxSkew ${c.maxSkew} per ${c.topologyKey}, ${c.whenUnsatisfiable}`,
    });
  });
  out.push(
    ...podTerms('podAffinity', target.affinity, target.preferredAffinity),
    ...podTerms('podAntiAffinity', target.antiAffinity, target.preferredAntiAffinity),
  );
  return out;
}
