// Compiling a PlacementPolicy: every field validated (each problem names the policy and the
// field) and defaults applied, once per generation. The result's shape is policy.ts.
import type { Affinity } from '../api/core.ts';
import {
  DEFAULT_TARGET_KINDS,
  TARGET_KINDS,
  policyRef,
  POLICY_MODES,
  SPREAD_CONSTRAINTS,
  SPREAD_MODES,
  type PlacementPolicy,
  type SpreadAcross,
  type SpreadMode,
} from '../api/policy.ts';
import { checkOneOf, FieldError } from './errors.ts';
import {
  policyName,
  type NamespaceScope,
  type PolicyCompilation,
  type SpreadRule,
} from './policy.ts';
import { compileSelector, SELECT_EVERYTHING } from './selector.ts';
import {
  PREFERRED_TERMS as PREFERRED,
  REQUIRED_TERMS as REQUIRED,
  resolveTerm,
  type TermOwner,
} from './term.ts';

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
  checkOneOf(errors, 'spec.mode', mode, POLICY_MODES);
  const kinds = spec.targets?.kinds ?? DEFAULT_TARGET_KINDS;
  kinds.forEach((k, i) => {
    checkOneOf(errors, `spec.targets.kinds[${i}]`, k, TARGET_KINDS);
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
  checkOneOf(errors, `${field}.mode`, spreadMode, SPREAD_MODES);
  const mode: SpreadMode = spreadMode === 'Required' ? 'Required' : 'Preferred';
  const weight = s.weight ?? 100;
  checkWeight(weight, `${field}.weight`, errors);
  const given: string = s.constraint ?? 'PodAntiAffinity';
  const constraint = SPREAD_CONSTRAINTS.find((c) => c === given);
  checkOneOf(errors, `${field}.constraint`, given, SPREAD_CONSTRAINTS);
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
