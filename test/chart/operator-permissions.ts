// What the operator may do, as one table: charts/placement-operator/files/permissions.yaml,
// one grant per line. The chart renders its ClusterRoles and Role from that file; this module
// reads the same file for the tests. The unit test compares the chart's rendered RBAC with
// it (nothing missing, nothing extra), the integration test asks the API server, as the
// chart's ServiceAccount, whether each permission holds, and the least-privilege test
// (test/integration/zz-least-privilege.test.ts) holds it equal to what the operator asked
// the API server for during the whole suite, as the audit log recorded it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

import { REPO_ROOT } from '../cluster/paths.ts';

export const PERMISSIONS_FILE = join(
  REPO_ROOT,
  'charts',
  'placement-operator',
  'files',
  'permissions.yaml',
);

export const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] as const;
export type Verb = (typeof VERBS)[number];

/** When a grant is in force: always, or with a chart feature turned on. */
export type When = 'always' | 'remediation' | 'reports' | 'policyReports' | 'leaderElection';

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
  readonly when: When;
}

/** One line of permissions.yaml, as written. */
interface Row {
  readonly scope: 'cluster' | 'release';
  readonly when: When;
  readonly group: string;
  readonly resource: string;
  readonly verbs: readonly Verb[];
  readonly lease?: boolean;
  readonly names?: readonly string[];
}

const ROW_KEYS = ['scope', 'when', 'group', 'resource', 'verbs', 'lease', 'names'];
const WHENS: readonly When[] = [
  'always',
  'remediation',
  'reports',
  'policyReports',
  'leaderElection',
];

/** The table's rows; throws naming the line's number and field when one is malformed. */
export function readPermissionTable(text = readFileSync(PERMISSIONS_FILE, 'utf8')): Row[] {
  const parsed: unknown = parse(text);
  if (!Array.isArray(parsed)) throw new Error(`${PERMISSIONS_FILE}: not a list of grants`);
  return parsed.map((value: unknown, i) => {
    const where = `${PERMISSIONS_FILE}, grant ${i + 1}`;
    if (typeof value !== 'object' || value === null) throw new Error(`${where}: not a mapping`);
    const row = value as Record<string, unknown>;
    const extra = Object.keys(row).filter((k) => !ROW_KEYS.includes(k));
    if (extra.length > 0) throw new Error(`${where}: unknown field(s) ${extra.join(', ')}`);
    const { scope, when, group, resource, verbs, lease, names } = row;
    if (scope !== 'cluster' && scope !== 'release') {
      throw new Error(`${where}: scope ${JSON.stringify(scope)} is not cluster or release`);
    }
    if (!WHENS.includes(when as When)) {
      throw new Error(`${where}: when ${JSON.stringify(when)} is not one of ${WHENS.join(', ')}`);
    }
    if (typeof group !== 'string' || typeof resource !== 'string' || resource === '') {
      throw new Error(`${where}: group and resource must be strings (group '' is core)`);
    }
    if (
      !Array.isArray(verbs) ||
      verbs.length === 0 ||
      !verbs.every((v) => VERBS.includes(v as Verb))
    ) {
      throw new Error(
        `${where}: verbs ${JSON.stringify(verbs)} must be some of ${VERBS.join(', ')}`,
      );
    }
    if (lease !== undefined && typeof lease !== 'boolean') {
      throw new Error(`${where}: lease must be true or false`);
    }
    if (
      names !== undefined &&
      (!Array.isArray(names) ||
        names.length === 0 ||
        !names.every((n) => typeof n === 'string' && n !== ''))
    ) {
      throw new Error(`${where}: names must be a list of object names`);
    }
    if (names !== undefined && lease === true) {
      throw new Error(`${where}: lease and names both limit the names; give one`);
    }
    return {
      scope,
      when: when as When,
      group,
      resource,
      verbs: verbs as Verb[],
      ...(lease === undefined ? {} : { lease }),
      ...(names === undefined ? {} : { names: names as string[] }),
    };
  });
}

/** Every permission the operator has, for a Lease named `leaseName`. */
export function operatorGrants(leaseName: string): Grant[] {
  return readPermissionTable().map((row) => ({
    group: row.group,
    resource: row.resource,
    verbs: row.verbs,
    scope: row.scope === 'cluster' ? 'cluster' : 'release-namespace',
    when: row.when,
    ...(row.lease === true ? { resourceNames: [leaseName] } : {}),
    ...(row.names === undefined ? {} : { resourceNames: row.names }),
  }));
}

/** Grants in force with the given chart features. */
export function grantsFor(
  leaseName: string,
  remediation: boolean,
  leaderElection = true,
  reports = false,
  policyReports = false,
): Grant[] {
  const on: Record<When, boolean> = {
    always: true,
    remediation,
    reports,
    policyReports,
    leaderElection,
  };
  return operatorGrants(leaseName).filter((g) => on[g.when]);
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
    verb: 'patch',
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingadmissionpolicies',
    name: 'someone-elses-policy',
    where: 'all-namespaces',
    why: 'its own MutatingAdmissionPolicy only',
  },
  {
    verb: 'delete',
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingadmissionpolicybindings',
    name: 'someone-elses-binding',
    where: 'all-namespaces',
    why: 'its own binding only',
  },
  {
    verb: 'update',
    group: 'admissionregistration.k8s.io',
    resource: 'validatingadmissionpolicies',
    where: 'all-namespaces',
    why: 'no validating policies',
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
  // Granted once, never used (the audit log of the whole suite shows it): taken out.
  { verb: 'get', group: '', resource: 'pods', where: 'all-namespaces', why: 'informers only' },
  { verb: 'get', group: '', resource: 'nodes', where: 'all-namespaces', why: 'informers only' },
  {
    verb: 'get',
    group: 'apps',
    resource: 'deployments',
    where: 'all-namespaces',
    why: 'informers only',
  },
  {
    verb: 'list',
    group: 'batch',
    resource: 'jobs',
    where: 'all-namespaces',
    why: 'no Job informer',
  },
  {
    verb: 'update',
    group: 'placement.dev',
    resource: 'placementpolicies',
    where: 'all-namespaces',
    why: 'patches only',
  },
  {
    verb: 'update',
    group: 'placement.dev',
    resource: 'placementpolicies/status',
    where: 'all-namespaces',
    why: 'patches only',
  },
  {
    verb: 'update',
    group: 'placement.dev',
    resource: 'placementpolicies/finalizers',
    where: 'all-namespaces',
    why: 'the finalizer is a patch of the policy itself',
  },
  {
    verb: 'patch',
    group: 'events.k8s.io',
    resource: 'events',
    where: 'all-namespaces',
    why: 'events are only created',
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
