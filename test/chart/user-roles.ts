// What the chart grants the cluster's users, as one table: the ClusterRoles it aggregates
// into Kubernetes' user-facing roles (admin, edit, view) and the PlacementException role
// the platform team binds. The unit test compares the rendered roles with it; the
// integration test binds the built-in roles in a namespace and asks the API server, as
// impersonated users, what they may do.
import type { Verb } from './operator-permissions.ts';

export type UserFacingRole = 'admin' | 'edit' | 'view';

/** The values under `aggregatedRoles`. */
export interface AggregatedRolesValues {
  readonly admin: boolean;
  readonly edit: boolean;
  readonly view: boolean;
  readonly exceptionsToAdmin: boolean;
}

export const DEFAULT_AGGREGATED_ROLES: AggregatedRolesValues = {
  admin: true,
  edit: true,
  view: true,
  exceptionsToAdmin: false,
};

export interface UserGrant {
  readonly group: string;
  readonly resource: string;
  readonly verbs: readonly Verb[];
}

export interface UserRole {
  /** The ClusterRole is named `<fullname>-<suffix>`. */
  readonly suffix: string;
  /** The `rbac.authorization.k8s.io/aggregate-to-*` labels it carries (value "true"). */
  readonly aggregateTo: readonly UserFacingRole[];
  readonly grants: readonly UserGrant[];
}

const MANAGE: readonly Verb[] = ['create', 'update', 'patch', 'delete', 'get', 'list', 'watch'];
const READ: readonly Verb[] = ['get', 'list', 'watch'];
const GROUP = 'placement.dev';

const managePolicies: readonly UserGrant[] = [
  { group: GROUP, resource: 'placementpolicies', verbs: MANAGE },
  { group: GROUP, resource: 'placementpolicies/status', verbs: ['get'] },
];

/** The user roles the chart renders for these values. */
export function userRoles(values: AggregatedRolesValues): UserRole[] {
  const roles: UserRole[] = [];
  for (const role of ['admin', 'edit'] as const) {
    if (values[role])
      roles.push({ suffix: `aggregate-to-${role}`, aggregateTo: [role], grants: managePolicies });
  }
  if (values.view) {
    roles.push({
      suffix: 'aggregate-to-view',
      aggregateTo: ['view'],
      grants: [
        ...['placementpolicies', 'clusterplacementpolicies', 'placementexceptions'].map(
          (resource) => ({ group: GROUP, resource, verbs: READ }),
        ),
        ...[
          'placementpolicies/status',
          'clusterplacementpolicies/status',
          'placementexceptions/status',
        ].map((resource): UserGrant => ({ group: GROUP, resource, verbs: ['get'] })),
      ],
    });
  }
  roles.push({
    suffix: 'exceptions',
    aggregateTo: values.exceptionsToAdmin ? ['admin'] : [],
    grants: [
      { group: GROUP, resource: 'placementexceptions', verbs: MANAGE },
      { group: GROUP, resource: 'placementexceptions/status', verbs: ['get'] },
    ],
  });
  return roles;
}

/**
 * What someone bound to a user-facing role in one namespace may do, with the default
 * values: the integration test asks the API server each of these as an impersonated user.
 * `where` is the namespace bound (`own`), another namespace (`other`), or cluster-wide.
 */
export interface Expectation {
  readonly role: UserFacingRole;
  /** How the role is bound: a RoleBinding in the user's namespace, or a ClusterRoleBinding. */
  readonly binding: 'RoleBinding' | 'ClusterRoleBinding';
  readonly verb: Verb;
  readonly resource: string;
  readonly where: 'own' | 'other' | 'cluster';
  readonly allowed: boolean;
  readonly why: string;
}

const tableFor = (
  role: UserFacingRole,
  binding: Expectation['binding'],
  rows: readonly (readonly [Verb, string, Expectation['where'], boolean, string])[],
): Expectation[] =>
  rows.map(([verb, resource, where, allowed, why]) => ({
    role,
    binding,
    verb,
    resource,
    where,
    allowed,
    why,
  }));

const namespaceAdminRows = (
  role: 'admin' | 'edit',
): readonly (readonly [Verb, string, Expectation['where'], boolean, string])[] => [
  ...MANAGE.map(
    (verb) =>
      [verb, 'placementpolicies', 'own', true, `${role} manages its namespace's policies`] as const,
  ),
  ['get', 'placementpolicies/status', 'own', true, 'and reads their status'],
  ['update', 'placementpolicies/status', 'own', false, 'status is written by the operator'],
  ['create', 'placementpolicies', 'other', false, 'not in another namespace'],
  ['delete', 'placementpolicies', 'other', false, 'not in another namespace'],
  ['list', 'placementpolicies', 'other', false, 'not even to read'],
  [
    'create',
    'clusterplacementpolicies',
    'cluster',
    false,
    'cluster policies belong to the platform team',
  ],
  [
    'delete',
    'clusterplacementpolicies',
    'cluster',
    false,
    'cluster policies belong to the platform team',
  ],
  ['create', 'placementexceptions', 'own', false, 'exceptions are granted, not aggregated'],
  ['get', 'placementexceptions', 'own', true, 'but it sees them (view is part of it)'],
];

export const EXPECTATIONS: readonly Expectation[] = [
  ...tableFor('admin', 'RoleBinding', namespaceAdminRows('admin')),
  ...tableFor('edit', 'RoleBinding', namespaceAdminRows('edit')),
  ...tableFor('view', 'RoleBinding', [
    ['get', 'placementpolicies', 'own', true, 'a viewer reads policies'],
    ['list', 'placementpolicies', 'own', true, 'a viewer reads policies'],
    ['watch', 'placementpolicies', 'own', true, 'a viewer reads policies'],
    ['get', 'placementpolicies/status', 'own', true, 'and their status'],
    ['list', 'placementexceptions', 'own', true, 'and the exceptions of its namespace'],
    ['create', 'placementpolicies', 'own', false, 'but writes none'],
    ['update', 'placementpolicies', 'own', false, 'but writes none'],
    ['patch', 'placementpolicies', 'own', false, 'but writes none'],
    ['delete', 'placementpolicies', 'own', false, 'but writes none'],
    ['create', 'placementexceptions', 'own', false, 'nor exceptions'],
    ['list', 'placementpolicies', 'other', false, 'and nothing of another namespace'],
    ['list', 'clusterplacementpolicies', 'cluster', false, 'a RoleBinding grants no cluster kind'],
  ]),
  ...tableFor('view', 'ClusterRoleBinding', [
    ['list', 'clusterplacementpolicies', 'cluster', true, 'a cluster-wide viewer reads them'],
    ['get', 'clusterplacementpolicies/status', 'cluster', true, 'and their status'],
    ['create', 'clusterplacementpolicies', 'cluster', false, 'but writes none'],
  ]),
];
