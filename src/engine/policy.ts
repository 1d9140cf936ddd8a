// A policy compiled once per generation (compilePolicy), and the one targeting rule
// (policyReach) with what hangs on it: exceptions, priority order, and the terms a policy
// asks of a workload. One file because compiling and targeting share the compiled shape,
// and every reader of a policy (controller, audit, CLI) goes through both.
import type {
  Affinity,
  Labels,
  LabelSelector,
  PodAffinityTerm,
  TopologySpreadConstraint,
  WeightedPodAffinityTerm,
} from '../api/core.ts';
import {
  DEFAULT_TARGET_KINDS,
  TARGET_KINDS,
  policyRef,
  SPREAD_CONSTRAINTS,
  type PlacementPolicy,
  type PolicyMode,
  type PolicyRef,
  type SpreadAcross,
  type SpreadConstraint,
  type SpreadMode,
} from '../api/policy.ts';
import { FieldError, InvalidObjectError } from './errors.ts';
import { exceptionSelects, type CompiledException } from './exception.ts';
import type { SourcedTerm, WeightedTerm } from './placement.ts';
import { compileSelector, selectorMatches, SELECT_EVERYTHING, type Selector } from './selector.ts';
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

/**
 * Validates a policy and applies its defaults. Every problem is reported, each naming
 * the policy and the field, so a person can fix them all at once.
 */
export function compilePolicy(policy: PlacementPolicy): PolicyCompilation {
  const errors: FieldError[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      if (err instanceof FieldError) {
        errors.push(err);
        return undefined;
      }
      throw err;
    }
  };
  const spec = policy.spec;
  // Typed fields still hold what the API server or a file gave: check the enums.
  const mode: string = spec.mode ?? 'Enforce';
  if (mode !== 'Enforce' && mode !== 'Audit') {
    errors.push(new FieldError('spec.mode', `"${mode}" is not one of Enforce, Audit`));
  }
  const kinds = spec.targets?.kinds ?? DEFAULT_TARGET_KINDS;
  kinds.forEach((k, i) => {
    if (!(TARGET_KINDS as readonly string[]).includes(k)) {
      errors.push(
        new FieldError(
          `spec.targets.kinds[${i}]`,
          `"${k}" is not one of ${TARGET_KINDS.join(', ')}`,
        ),
      );
    }
  });
  const selector = attempt(() =>
    spec.targets?.selector === undefined
      ? SELECT_EVERYTHING
      : compileSelector(spec.targets.selector, 'spec.targets.selector'),
  );
  const scope = attempt(() => namespaceScope(policy, 'targets'));
  const exceptionScope = attempt(() =>
    policy.spec.exceptions?.allowed === true ? namespaceScope(policy, 'exceptions') : null,
  );
  validateAffinity(spec.affinity ?? {}, attempt, errors);
  const spread = (spec.spreadAcross ?? []).map((s, i) =>
    compileSpread(s, `spec.spreadAcross[${i}]`, errors),
  );
  if (
    errors.length > 0 ||
    selector === undefined ||
    scope === undefined ||
    exceptionScope === undefined
  ) {
    const name = policyName(policy);
    return { kind: 'invalid', errors: errors.map((e) => e.forObject(name)) };
  }
  return {
    kind: 'ok',
    policy: {
      ref: policyRef(policy),
      source: policy,
      priority: spec.priority ?? 0,
      mode: mode === 'Audit' ? 'Audit' : 'Enforce',
      auditEnabled: spec.audit?.enabled ?? true,
      kinds: new Set(kinds),
      selector,
      scope,
      affinity: spec.affinity ?? {},
      spread,
      exceptionScope,
      exemptions: [],
    },
  };
}

/**
 * The namespaces `spec.targets` reaches, or those `spec.exceptions` accepts exceptions from:
 * the same fields, with the same meaning.
 */
function namespaceScope(policy: PlacementPolicy, field: 'targets' | 'exceptions'): NamespaceScope {
  const where = policy.spec[field] ?? {};
  if (policy.kind === 'PlacementPolicy') {
    // A namespaced policy reaches its own namespace only, whatever it asks for.
    for (const key of ['namespaceSelector', 'namespaces'] as const) {
      if (where[key] !== undefined) {
        throw new FieldError(
          `spec.${field}.${key}`,
          'is not allowed on a namespaced PlacementPolicy',
        );
      }
    }
    return { kind: 'own', namespace: policy.metadata.namespace ?? '' };
  }
  const names = new Set(where.namespaces ?? []);
  const selector =
    where.namespaceSelector === undefined
      ? names.size === 0
        ? SELECT_EVERYTHING // neither given: every namespace
        : null
      : compileSelector(where.namespaceSelector, `spec.${field}.namespaceSelector`);
  return { kind: 'cluster', names, selector };
}

/** One `spreadAcross` entry, defaults applied; its problems go to `errors`. */
function compileSpread(s: SpreadAcross, field: string, errors: FieldError[]): SpreadRule {
  if (s.topologyKey === '')
    errors.push(new FieldError(`${field}.topologyKey`, 'must not be empty'));
  const spreadMode: string = s.mode ?? 'Preferred';
  if (spreadMode !== 'Required' && spreadMode !== 'Preferred') {
    errors.push(
      new FieldError(`${field}.mode`, `"${spreadMode}" is not one of Required, Preferred`),
    );
  }
  const mode: SpreadMode = spreadMode === 'Required' ? 'Required' : 'Preferred';
  const weight = s.weight ?? 100;
  checkWeight(weight, `${field}.weight`, errors);
  const given: string = s.constraint ?? 'PodAntiAffinity';
  const constraint = SPREAD_CONSTRAINTS.find((c) => c === given);
  if (constraint === undefined) {
    errors.push(
      new FieldError(
        `${field}.constraint`,
        `"${given}" is not one of ${SPREAD_CONSTRAINTS.join(', ')}`,
      ),
    );
  }
  const topologySpread = constraint === 'TopologySpread';
  const positive = (value: number | undefined, name: string): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      errors.push(
        new FieldError(`${field}.${name}`, `${String(value)} is not an integer of 1 or more`),
      );
  };
  positive(s.maxSkew, 'maxSkew');
  positive(s.minDomains, 'minDomains');
  if (s.maxSkew !== undefined && constraint === 'PodAntiAffinity') {
    errors.push(
      new FieldError(`${field}.maxSkew`, 'is allowed with constraint TopologySpread only'),
    );
  }
  if (
    s.minDomains !== undefined &&
    constraint !== undefined &&
    (!topologySpread || mode !== 'Required')
  ) {
    errors.push(
      new FieldError(
        `${field}.minDomains`,
        'is allowed with constraint TopologySpread and mode Required only',
      ),
    );
  }
  return {
    topologyKey: s.topologyKey,
    mode,
    weight,
    constraint: constraint ?? 'PodAntiAffinity',
    maxSkew: s.maxSkew ?? 1,
    ...(s.minDomains === undefined ? {} : { minDomains: s.minDomains }),
  };
}

function checkWeight(weight: number, field: string, errors: FieldError[]): void {
  if (!Number.isInteger(weight) || weight < 1 || weight > 100) {
    errors.push(new FieldError(field, `${String(weight)} is not an integer in 1..100`));
  }
}

/** Checks every term of an affinity without resolving it against a pod. */
function validateAffinity(
  affinity: Affinity,
  attempt: <T>(f: () => T) => T | undefined,
  errors: FieldError[],
): void {
  const probe: TermOwner = { namespace: 'probe', labels: {} };
  for (const kind of ['podAffinity', 'podAntiAffinity'] as const) {
    const rules = affinity[kind];
    const base = `spec.affinity.${kind}`;
    (rules?.[REQUIRED] ?? []).forEach((t, i) => {
      attempt(() => resolveTerm(t, probe, `${base}.${REQUIRED}[${i}]`));
    });
    (rules?.[PREFERRED] ?? []).forEach((w, i) => {
      const field = `${base}.${PREFERRED}[${i}]`;
      checkWeight(w.weight, `${field}.weight`, errors);
      attempt(() => resolveTerm(w.podAffinityTerm, probe, `${field}.podAffinityTerm`));
    });
  }
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

const inScope = (scope: NamespaceScope, namespace: string, namespaceLabels: Labels): boolean =>
  scope.kind === 'own'
    ? scope.namespace === namespace
    : scope.names.has(namespace) ||
      (scope.selector !== null && selectorMatches(scope.selector, namespaceLabels));

/** How a policy reaches a workload. */
export type Reach =
  | { readonly kind: 'none' }
  | { readonly kind: 'targeted' }
  /** Selected by the policy, but exempted by accepted PlacementExceptions: gets none of its terms. */
  | { readonly kind: 'exempted'; readonly by: readonly CompiledException[] };

const NONE: Reach = { kind: 'none' };
const TARGETED: Reach = { kind: 'targeted' };

/**
 * Whether a policy targets a workload, given the exceptions attached to it: the one place
 * that decides it, for the controller, the audit, feasibility and the CLI alike.
 * `namespaceLabels` are the labels of the workload's namespace.
 */
export function policyReach(
  policy: CompiledPolicy,
  workload: WorkloadRef,
  namespaceLabels: Labels,
): Reach {
  if (!policy.kinds.has(workload.kind)) return NONE;
  if (!inScope(policy.scope, workload.namespace, namespaceLabels)) return NONE;
  if (!selectorMatches(policy.selector, workload.templateLabels)) return NONE;
  if (policy.exemptions.length === 0) return TARGETED;
  const by = policy.exemptions.filter(
    (e) =>
      exceptionSelects(e, workload) &&
      exceptionAllowed(policy, e.namespace, namespaceLabels).kind === 'allowed',
  );
  return by.length === 0 ? TARGETED : { kind: 'exempted', by };
}

/** Whether a policy targets a workload and no accepted exception exempts it (see policyReach). */
export const policyTargets = (
  policy: CompiledPolicy,
  workload: WorkloadRef,
  namespaceLabels: Labels,
): boolean => policyReach(policy, workload, namespaceLabels).kind === 'targeted';

/** Whether the policy accepts exceptions from a namespace (`spec.exceptions`). */
export type ExceptionAllowance =
  | { readonly kind: 'allowed' }
  | {
      readonly kind: 'refused';
      readonly reason: 'NotAllowed' | 'NamespaceNotAllowed';
      readonly message: string;
    };

export function exceptionAllowed(
  policy: CompiledPolicy,
  namespace: string,
  namespaceLabels: Labels,
): ExceptionAllowance {
  const scope = policy.exceptionScope;
  if (scope === null) {
    return {
      kind: 'refused',
      reason: 'NotAllowed',
      message: `${policyName(policy.source)} does not allow exceptions (spec.exceptions.allowed is not true)`,
    };
  }
  if (!inScope(scope, namespace, namespaceLabels)) {
    return {
      kind: 'refused',
      reason: 'NamespaceNotAllowed',
      message:
        `${policyName(policy.source)} does not allow exceptions from namespace ${namespace} ` +
        `(neither spec.exceptions.namespaces nor spec.exceptions.namespaceSelector selects it)`,
    };
  }
  return { kind: 'allowed' };
}

/**
 * The policy with the exceptions that name it attached (those naming other policies are
 * left out). The same object when there is nothing to attach and nothing was, so that
 * whoever keys work by policy identity sees no change.
 */
export function withExemptions(
  policy: CompiledPolicy,
  exceptions: readonly CompiledException[],
): CompiledPolicy {
  const mine = exceptions.filter((e) => e.policy === policy.ref);
  if (mine.length === 0 && policy.exemptions.length === 0) return policy;
  return { ...policy, exemptions: mine };
}

/**
 * Whether a policy could target a workload of one of `kinds` in `namespace`, whatever its
 * template labels: all that can be told of a pod whose workload is not known (see
 * resolveWorkload).
 */
export function policyMayTarget(
  policy: CompiledPolicy,
  kinds: readonly string[],
  namespace: string,
  namespaceLabels: Labels,
): boolean {
  return (
    kinds.some((k) => policy.kinds.has(k)) && inScope(policy.scope, namespace, namespaceLabels)
  );
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

/** Highest priority first, ties broken by namespace/name. */
export function comparePolicies(a: CompiledPolicy, b: CompiledPolicy): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0;
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
