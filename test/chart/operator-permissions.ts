// What the operator may do, as one table: the unit test compares the chart's rendered
// RBAC with it (nothing missing, nothing extra) and the integration test asks the API
// server, as the chart's ServiceAccount, whether each permission holds.

import { ADMISSION_POLICY_NAME } from '../../src/engine/admission.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface Grant {
  /** API group; '' is the core group. */
  readonly group: string;
  /** Plural resource, with `/subresource` where it applies. */
  readonly resource: string;
  readonly verbs: readonly Verb[];
  /** ClusterRole (every namespace) or Role in the release namespace. */
  readonly scope: 'cluster' | 'release-namespace';
  /** Limits the grant to these object names. */
  readonly resourceNames?: readonly string[];
  /** Granted only with audit.remediation.enabled. */
  readonly onlyWithRemediation?: true;
}

const ADMISSION = 'admissionregistration.k8s.io';

const READ: readonly Verb[] = ['get', 'list', 'watch'];
const REWRITE: readonly Verb[] = ['get', 'list', 'watch', 'patch'];
const cluster = (group: string, resources: readonly string[], verbs: readonly Verb[]): Grant[] =>
  resources.map((resource) => ({ group, resource, verbs, scope: 'cluster' }));

/** Every permission the operator needs, for a Lease named `leaseName`. */
export function operatorGrants(leaseName: string): Grant[] {
  return [
    ...cluster('', ['pods', 'nodes', 'namespaces'], READ),
    ...cluster('apps', ['deployments', 'statefulsets', 'replicasets', 'daemonsets'], REWRITE),
    ...cluster('batch', ['cronjobs'], REWRITE),
    ...cluster('batch', ['jobs'], READ),
    ...cluster(
      'placement.dev',
      ['placementpolicies', 'clusterplacementpolicies'],
      ['get', 'list', 'watch', 'patch', 'update'],
    ),
    ...cluster(
      'placement.dev',
      [
        'placementpolicies/status',
        'clusterplacementpolicies/status',
        'placementpolicies/finalizers',
        'clusterplacementpolicies/finalizers',
      ],
      ['patch', 'update'],
    ),
    ...cluster('events.k8s.io', ['events'], ['create', 'patch']),
    // Injection at admission: the operator's one MutatingAdmissionPolicy and its binding.
    {
      group: ADMISSION,
      resource: 'mutatingadmissionpolicies',
      verbs: ['create'],
      scope: 'cluster',
    },
    {
      group: ADMISSION,
      resource: 'mutatingadmissionpolicies',
      verbs: ['patch', 'delete'],
      scope: 'cluster',
      resourceNames: [ADMISSION_POLICY_NAME],
    },
    {
      group: ADMISSION,
      resource: 'mutatingadmissionpolicybindings',
      verbs: ['create'],
      scope: 'cluster',
    },
    {
      group: ADMISSION,
      resource: 'mutatingadmissionpolicybindings',
      verbs: ['patch', 'delete'],
      scope: 'cluster',
      resourceNames: [ADMISSION_POLICY_NAME],
    },
    {
      group: '',
      resource: 'pods/eviction',
      verbs: ['create'],
      scope: 'cluster',
      onlyWithRemediation: true,
    },
    {
      group: 'coordination.k8s.io',
      resource: 'leases',
      verbs: ['create'],
      scope: 'release-namespace',
    },
    {
      group: 'coordination.k8s.io',
      resource: 'leases',
      verbs: ['get', 'update'],
      scope: 'release-namespace',
      resourceNames: [leaseName],
    },
  ];
}

/** Grants in force for the given remediation setting. */
export function grantsFor(leaseName: string, remediation: boolean): Grant[] {
  return operatorGrants(leaseName).filter((g) => remediation || g.onlyWithRemediation !== true);
}

/** Requests that must be refused: `where` says in which namespace(s) the check runs. */
export interface Denial {
  readonly verb: Verb;
  readonly group: string;
  readonly resource: string;
  readonly name?: string;
  readonly where: 'all-namespaces' | 'release-namespace' | 'other-namespace';
  readonly why: string;
}

export const DENIALS: readonly Denial[] = [
  { verb: 'get', group: '', resource: 'secrets', where: 'all-namespaces', why: 'no secrets' },
  { verb: 'list', group: '', resource: 'secrets', where: 'all-namespaces', why: 'no secrets' },
  { verb: 'watch', group: '', resource: 'secrets', where: 'release-namespace', why: 'no secrets' },
  { verb: 'get', group: '', resource: 'secrets', where: 'release-namespace', why: 'no secrets' },
  { verb: 'get', group: '', resource: 'configmaps', where: 'all-namespaces', why: 'not needed' },
  {
    verb: 'create',
    group: '',
    resource: 'pods/eviction',
    where: 'all-namespaces',
    why: 'remediation off',
  },
  {
    verb: 'delete',
    group: '',
    resource: 'pods',
    where: 'all-namespaces',
    why: 'evictions only, never deletes',
  },
  {
    verb: 'create',
    group: '',
    resource: 'pods',
    where: 'all-namespaces',
    why: 'never creates pods',
  },
  {
    verb: 'update',
    group: 'apps',
    resource: 'deployments',
    where: 'all-namespaces',
    why: 'patches only',
  },
  {
    verb: 'delete',
    group: 'apps',
    resource: 'deployments',
    where: 'all-namespaces',
    why: 'never deletes',
  },
  {
    verb: 'create',
    group: 'apps',
    resource: 'deployments',
    where: 'all-namespaces',
    why: 'never creates',
  },
  {
    verb: 'patch',
    group: 'batch',
    resource: 'jobs',
    where: 'all-namespaces',
    why: 'jobs are audited only',
  },
  {
    verb: 'delete',
    group: 'placement.dev',
    resource: 'placementpolicies',
    where: 'all-namespaces',
    why: 'never deletes policies',
  },
  {
    verb: 'create',
    group: 'coordination.k8s.io',
    resource: 'leases',
    where: 'other-namespace',
    why: 'leases in its own namespace only',
  },
  {
    verb: 'get',
    group: 'coordination.k8s.io',
    resource: 'leases',
    name: 'someone-elses-lease',
    where: 'release-namespace',
    why: 'its own Lease only',
  },
  {
    verb: 'update',
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterroles',
    where: 'all-namespaces',
    why: 'no escalation',
  },
  {
    verb: 'create',
    group: '',
    resource: 'events',
    where: 'all-namespaces',
    why: 'events.k8s.io only',
  },
];

/** Stands for "no resourceNames" (any object) in a permission key. */
const ANY_NAME = '(any)';

/** One permission per line, `scope group resource[name] verb`, for set comparison. */
export function permissionKeys(grants: readonly Grant[], namespace: string): string[] {
  return grants.flatMap((g) =>
    g.verbs.flatMap((verb) =>
      (g.resourceNames ?? [ANY_NAME]).map(
        (name) =>
          `${g.scope === 'cluster' ? 'cluster' : `ns:${namespace}`} ${g.group || 'core'} ${g.resource}[${name}] ${verb}`,
      ),
    ),
  );
}

/** A PolicyRule as it appears in a rendered Role or ClusterRole. */
export interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** The same keys as `permissionKeys`, from rendered rules. */
export function ruleKeys(rules: readonly PolicyRule[], scope: string): string[] {
  return rules.flatMap((rule) =>
    (rule.apiGroups ?? []).flatMap((group) =>
      (rule.resources ?? []).flatMap((resource) =>
        (rule.verbs ?? []).flatMap((verb) =>
          (rule.resourceNames ?? [ANY_NAME]).map(
            (name) => `${scope} ${group || 'core'} ${resource}[${name}] ${verb}`,
          ),
        ),
      ),
    ),
  );
}
