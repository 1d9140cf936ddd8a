// A policy as the engine holds it once compiled (CompiledPolicy, compiled in
// policy-compile.ts), the workload it is applied to (WorkloadRef), and the terms it asks of
// that workload. Which policies reach a workload, and in what order, is policy-reach.ts.
import type {
  Affinity,
  Labels,
  LabelSelector,
  PodAffinityTerm,
  TopologySpreadConstraint,
  WeightedPodAffinityTerm,
} from '../api/core.ts';
import type {
  PlacementPolicy,
  PolicyMode,
  PolicyRef,
  SpreadConstraint,
  SpreadMode,
} from '../api/policy.ts';
import type { InvalidObjectError } from './errors.ts';
import type { CompiledException } from './exception.ts';
import type { SourcedTerm, WeightedTerm } from './placement.ts';
import type { Selector } from './selector.ts';
import {
  PREFERRED_TERMS as PREFERRED,
  REQUIRED_TERMS as REQUIRED,
  resolveTerm,
  type TermOwner,
} from './term.ts';

export interface SpreadRule {
  readonly topologyKey: string;
  readonly mode: SpreadMode;
  readonly weight: number;
  readonly constraint: SpreadConstraint;
  /** TopologySpread: the constraint's maxSkew (default 1). */
  readonly maxSkew: number;
  /** TopologySpread with mode Required: the constraint's minDomains, when given. */
  readonly minDomains?: number;
}

/** Which namespaces a policy may reach. */
export type NamespaceScope =
  | { readonly kind: 'own'; readonly namespace: string }
  | {
      readonly kind: 'cluster';
      readonly names: ReadonlySet<string>;
      readonly selector: Selector | null;
    };

/** A validated policy with defaults applied. */
export interface CompiledPolicy {
  readonly ref: PolicyRef;
  readonly source: PlacementPolicy;
  readonly priority: number;
  readonly mode: PolicyMode;
  readonly auditEnabled: boolean;
  readonly kinds: ReadonlySet<string>;
  readonly selector: Selector;
  readonly scope: NamespaceScope;
  readonly affinity: Affinity;
  readonly spread: readonly SpreadRule[];
  /** Where PlacementExceptions to it may come from (`spec.exceptions`); null: none allowed. */
  readonly exceptionScope: NamespaceScope | null;
  /**
   * The exceptions that name this policy, as the caller knows them (see withExemptions);
   * whether the policy accepts each is decided where it is used (policyReach).
   */
  readonly exemptions: readonly CompiledException[];
}

export type PolicyCompilation =
  | { readonly kind: 'ok'; readonly policy: CompiledPolicy }
  | { readonly kind: 'invalid'; readonly errors: readonly InvalidObjectError[] };

/** `PlacementPolicy shop/spread-web` or `ClusterPlacementPolicy spread-all`: how errors name a policy. */
export function policyName(p: Pick<PlacementPolicy, 'kind' | 'metadata'>): string {
  return p.kind === 'PlacementPolicy'
    ? `PlacementPolicy ${p.metadata.namespace ?? ''}/${p.metadata.name}`
    : `ClusterPlacementPolicy ${p.metadata.name}`;
}

/** The workload a pod or template belongs to, as policies target it. */
export interface WorkloadRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The pod template's labels. */
  readonly templateLabels: Labels;
  /** The workload's own pod selector: what `spreadAcross` terms select. */
  readonly podSelector: LabelSelector;
}

/**
 * Whether a policy asks for anything a placed pod can break: a required pod (anti-)affinity
 * term or a Required spread. Preferred terms only score.
 */
export function hasRequiredTerms(policy: CompiledPolicy): boolean {
  const a = policy.affinity;
  return (
    (a.podAffinity?.[REQUIRED] ?? []).length > 0 ||
    (a.podAntiAffinity?.[REQUIRED] ?? []).length > 0 ||
    (a.nodeAffinity?.[REQUIRED]?.nodeSelectorTerms ?? []).length > 0 ||
    policy.spread.some((s) => s.mode === 'Required')
  );
}

/** The pod affinity terms a policy asks of one workload, with `spreadAcross` expanded. */
export interface PolicyTerms {
  readonly podAffinity: readonly PodAffinityTerm[];
  readonly podAntiAffinity: readonly PodAffinityTerm[];
  readonly preferredPodAffinity: readonly WeightedPodAffinityTerm[];
  readonly preferredPodAntiAffinity: readonly WeightedPodAffinityTerm[];
}

/** The policy's `spreadAcross` entries of one mode that write anti-affinity. */
const antiAffinitySpreads = (policy: CompiledPolicy, mode: SpreadMode): SpreadRule[] =>
  policy.spread.filter((s) => s.constraint === 'PodAntiAffinity' && s.mode === mode);

/** `spreadAcross` (PodAntiAffinity) becomes anti-affinity on the workload's own pod selector. */
export function policyTermsFor(policy: CompiledPolicy, workload: WorkloadRef): PolicyTerms {
  const spreadTerm = (s: SpreadRule): PodAffinityTerm => ({
    labelSelector: workload.podSelector,
    topologyKey: s.topologyKey,
  });
  const a = policy.affinity;
  return {
    podAffinity: a.podAffinity?.[REQUIRED] ?? [],
    podAntiAffinity: [
      ...(a.podAntiAffinity?.[REQUIRED] ?? []),
      ...antiAffinitySpreads(policy, 'Required').map(spreadTerm),
    ],
    preferredPodAffinity: a.podAffinity?.[PREFERRED] ?? [],
    preferredPodAntiAffinity: [
      ...(a.podAntiAffinity?.[PREFERRED] ?? []),
      ...antiAffinitySpreads(policy, 'Preferred').map((s) => ({
        weight: s.weight,
        podAffinityTerm: spreadTerm(s),
      })),
    ],
  };
}

/**
 * `spreadAcross` (TopologySpread) becomes a topologySpreadConstraint on the workload's own
 * pod selector: mode Required is DoNotSchedule (a scheduling filter), Preferred is
 * ScheduleAnyway (a score). Fields in the order and form the API server stores them.
 */
export function policySpreadConstraintsFor(
  policy: CompiledPolicy,
  workload: WorkloadRef,
): TopologySpreadConstraint[] {
  return policySpreadEntries(policy, workload).map((e) => e.constraint);
}

/** The constraints of policySpreadConstraintsFor, each with its `spec.spreadAcross` position. */
export function policySpreadEntries(
  policy: CompiledPolicy,
  workload: WorkloadRef,
): { readonly index: number; readonly constraint: TopologySpreadConstraint }[] {
  return policy.spread.flatMap((s, index) =>
    s.constraint === 'TopologySpread'
      ? [
          {
            index,
            constraint: {
              maxSkew: s.maxSkew,
              topologyKey: s.topologyKey,
              whenUnsatisfiable: s.mode === 'Required' ? 'DoNotSchedule' : 'ScheduleAnyway',
              labelSelector: workload.podSelector,
              ...(s.minDomains === undefined ? {} : { minDomains: s.minDomains }),
            },
          },
        ]
      : [],
  );
}

/**
 * The policy's terms for one pod, resolved against it and named by where each is written
 * in the policy (`spec.affinity...[i]` or `spec.spreadAcross[i]`).
 */
export function resolvePolicyTerms(
  policy: CompiledPolicy,
  workload: WorkloadRef,
  owner: TermOwner,
): {
  affinity: SourcedTerm[];
  antiAffinity: SourcedTerm[];
  preferredAffinity: WeightedTerm[];
  preferredAntiAffinity: WeightedTerm[];
} {
  const a = policy.affinity;
  const spreadFields = (mode: SpreadMode): string[] =>
    policy.spread.flatMap((s, i) =>
      s.mode === mode && s.constraint === 'PodAntiAffinity' ? [`spec.spreadAcross[${i}]`] : [],
    );
  const fieldsOf = (
    kind: 'podAffinity' | 'podAntiAffinity',
    list: 'required' | 'preferred',
    extra: string[],
  ) => [
    ...(list === 'required' ? (a[kind]?.[REQUIRED] ?? []) : (a[kind]?.[PREFERRED] ?? [])).map(
      (_, i) => `spec.affinity.${kind}.${list === 'required' ? REQUIRED : PREFERRED}[${i}]`,
    ),
    ...extra,
  ];
  const terms = policyTermsFor(policy, workload);
  const sourced = (list: readonly PodAffinityTerm[], fields: string[]): SourcedTerm[] =>
    list.map((t, i) => {
      const field = fields[i] ?? '';
      return { term: resolveTerm(t, owner, field), source: policy.ref, index: i, field };
    });
  const weighted = (list: readonly WeightedPodAffinityTerm[], fields: string[]): WeightedTerm[] =>
    list.map((w, i) => {
      const field = fields[i] ?? '';
      return {
        term: resolveTerm(w.podAffinityTerm, owner, field),
        source: policy.ref,
        index: i,
        field,
        weight: w.weight,
      };
    });
  return {
    affinity: sourced(terms.podAffinity, fieldsOf('podAffinity', 'required', [])),
    antiAffinity: sourced(
      terms.podAntiAffinity,
      fieldsOf('podAntiAffinity', 'required', spreadFields('Required')),
    ),
    preferredAffinity: weighted(
      terms.preferredPodAffinity,
      fieldsOf('podAffinity', 'preferred', []),
    ),
    preferredAntiAffinity: weighted(
      terms.preferredPodAntiAffinity,
      fieldsOf('podAntiAffinity', 'preferred', spreadFields('Preferred')),
    ),
  };
}
