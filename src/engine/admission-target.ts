/**
 * Which objects a policy targets at admission: policy.ts's policyReach (kinds, namespaces,
 * selector, accepted exceptions) as CEL over the object under admission and its namespace's
 * labels (`variables.labels`, `variables.nsLabels`).
 */
import { lit, selectorCel } from './admission-cel.ts';
import type { CompiledPolicy, NamespaceScope } from './policy.ts';

/** The kinds admission covers; a CronJob's template sits elsewhere and stays with the reconciler. */
export const ADMISSION_KINDS = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  ReplicaSet: 'replicasets',
} as const;

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
export function targetsCel(p: CompiledPolicy): string {
  const kinds = [...p.kinds].filter((k) => k in ADMISSION_KINDS);
  if (kinds.length === 0) return 'false';
  const exempted = exemptedCel(p);
  return `request.kind.kind in [${kinds.map(lit).join(', ')}] && ${inScopeCel(p.scope)} && ${selectorCel(p.selector, 'variables.labels')}${exempted === 'false' ? '' : ` && !${exempted}`}`;
}
