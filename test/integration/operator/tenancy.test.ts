// Teams declare their own policies: the chart's user roles on a real control plane.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/tenancy.test.ts
//
// The ClusterRoles the chart aggregates into admin, edit and view are rendered with the
// pinned helm and applied; users bound to the built-in roles in one namespace are
// impersonated (`--as=system:serviceaccount:...`). `kubectl auth can-i` answers every row
// of test/chart/user-roles.ts's EXPECTATIONS, and real requests agree: a namespace admin
// creates and deletes PlacementPolicies in its namespace, not in another, and no
// ClusterPlacementPolicy; a viewer reads but writes nothing. A namespace admin's policy
// still reaches nothing outside its namespace: the API server refuses targets.namespaces
// and namespaceSelector, and the operator rewrites its own namespace's workload only.
import assert from 'node:assert/strict';

import { only, render, type Manifest } from '../../chart/helm.ts';
import {
  DEFAULT_AGGREGATED_ROLES,
  EXPECTATIONS,
  userRoles,
  type Expectation,
  type UserFacingRole,
} from '../../chart/user-roles.ts';
import {
  APPLIED,
  appliedPolicies,
  clusterTest,
  deployment,
  get,
  HOSTNAME,
  list,
  makeNamespace,
  policy,
  policyRef,
  runOperator,
  templateOf,
  uniqueName,
  waitEnforced,
  waitFor,
  waitReconciledAgain,
  type Cluster,
  type Scope,
} from './support.ts';

const RESYNC_MS = 3_000;
const GROUP = 'placement.dev';

interface Tenants {
  readonly own: string;
  readonly other: string;
  /** Role → the impersonation flag of a user bound to it (RoleBinding in `own`). */
  readonly users: Readonly<Record<UserFacingRole, string>>;
  /** A user with a ClusterRoleBinding to view. */
  readonly clusterViewer: string;
}

/** A ServiceAccount in `ns`, and the `--as` flag that impersonates it. */
async function serviceAccount(c: Cluster, ns: string, name: string): Promise<string> {
  await c.kubectl('create', 'serviceaccount', name, '-n', ns);
  return `--as=system:serviceaccount:${ns}:${name}`;
}

async function setUpTenants(c: Cluster, s: Scope): Promise<Tenants> {
  const own = await makeNamespace(c, s, 'team-a');
  const other = await makeNamespace(c, s, 'team-b');
  const users = {} as Record<UserFacingRole, string>;
  for (const role of ['admin', 'edit', 'view'] as const) {
    users[role] = await serviceAccount(c, own, `${role}-user`);
    await c.kubectl(
      'create',
      'rolebinding',
      `${role}-user`,
      `--clusterrole=${role}`,
      `--serviceaccount=${own}:${role}-user`,
      '-n',
      own,
    );
  }
  const clusterViewer = await serviceAccount(c, own, 'cluster-viewer');
  const binding = uniqueName('cluster-viewer');
  s.defer(() => c.kubectl('delete', 'clusterrolebinding', binding, '--ignore-not-found'));
  await c.kubectl(
    'create',
    'clusterrolebinding',
    binding,
    '--clusterrole=view',
    `--serviceaccount=${own}:cluster-viewer`,
  );
  return { own, other, users, clusterViewer };
}

/** `kubectl auth can-i` as the user; only a plain yes or no counts. */
async function canI(
  c: Cluster,
  as: string,
  verb: string,
  resource: string,
  where: string[],
): Promise<boolean> {
  const [plural = '', subresource] = resource.split('/');
  const args = [
    'auth',
    'can-i',
    verb,
    `${plural}.${GROUP}`,
    ...(subresource === undefined ? [] : [`--subresource=${subresource}`]),
    ...where,
    as,
  ];
  const answer = await c.kubectl(...args).then(
    (out) => out,
    (error: unknown) => {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      if (e.code === 1 && e.stdout?.trim() === 'no') return e.stdout;
      throw new Error(`kubectl ${args.join(' ')}: ${e.stderr ?? String(error)}`);
    },
  );
  const word = answer.trim();
  assert.ok(word === 'yes' || word === 'no', `kubectl ${args.join(' ')}: ${answer}`);
  return word === 'yes';
}

function whereOf(e: Expectation, tenants: Tenants): string[] {
  switch (e.where) {
    case 'own':
      return ['-n', tenants.own];
    case 'other':
      return ['-n', tenants.other];
    case 'cluster':
      return [];
  }
}

/** What a request as `as` ended in: created, or refused with the server's message. */
async function attempt(
  c: Cluster,
  as: string,
  args: string[],
  manifest?: string,
): Promise<{ ok: true } | { ok: false; message: string }> {
  try {
    if (manifest === undefined) await c.kubectl(...args, as);
    else await c.apply(manifest, ...args, as);
    return { ok: true };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

const spreadSpec = {
  targets: { selector: { matchLabels: { app: 'web' } } },
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
};

clusterTest('teams declare their own policies', { timeout: 300_000 }, async ({ t, c, s }) => {
  // The user roles, as the chart renders them (a release of this test's own).
  const release = uniqueName('tenancy');
  const rendered: Manifest[] = render({ release });
  const fullname = only(rendered, 'Deployment').metadata.name;
  const names = new Set(userRoles(DEFAULT_AGGREGATED_ROLES).map((r) => `${fullname}-${r.suffix}`));
  const roles = rendered.filter((o) => o.kind === 'ClusterRole' && names.has(o.metadata.name));
  assert.equal(roles.length, names.size, [...names].join(', '));
  const tenants = await setUpTenants(c, s);
  const { own, other, users } = tenants;

  await t.test('the chart roles are what lets a namespace admin create policies', async (st) => {
    // Before: the built-in admin role knows nothing of placement.dev (unless another
    // install of the chart already aggregated into it on this cluster).
    const admin = await c.json<{ rules?: { apiGroups?: string[] }[] }>(
      'get',
      'clusterrole',
      'admin',
    );
    if ((admin.rules ?? []).some((r) => (r.apiGroups ?? []).includes(GROUP))) {
      st.diagnostic('admin already aggregates placement.dev roles: the "before" check is skipped');
    } else {
      assert.equal(await canI(c, users.admin, 'create', 'placementpolicies', ['-n', own]), false);
    }
    s.defer(() =>
      c.kubectl('delete', 'clusterrole', ...names, '--ignore-not-found', '--wait=false'),
    );
    await c.apply(
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: roles }),
      '--server-side',
    );
    // After: the aggregation controller fills admin in within moments.
    await waitFor('admin to aggregate the chart role', async () =>
      (await canI(c, users.admin, 'create', 'placementpolicies', ['-n', own])) ? true : undefined,
    );
  });

  await t.test('kubectl auth can-i answers every row of the user-role table', async () => {
    const wrong: string[] = [];
    for (const e of EXPECTATIONS) {
      const as = e.binding === 'ClusterRoleBinding' ? tenants.clusterViewer : users[e.role];
      const got = await canI(c, as, e.verb, e.resource, whereOf(e, tenants));
      if (got !== e.allowed)
        wrong.push(
          `${e.role} (${e.binding}) ${e.verb} ${e.resource} in ${e.where}: ${got ? 'yes' : 'no'}, want ${e.allowed ? 'yes' : 'no'} (${e.why})`,
        );
    }
    assert.deepEqual(wrong, []);
  });

  await t.test('a namespace admin manages policies in its namespace, nowhere else', async () => {
    const mine = JSON.stringify(policy(own, 'mine', spreadSpec));
    assert.deepEqual(await attempt(c, users.admin, [], mine), { ok: true });
    const theirs = await attempt(
      c,
      users.admin,
      [],
      JSON.stringify(policy(other, 'theirs', spreadSpec)),
    );
    assert.ok(!theirs.ok);
    assert.match(
      theirs.message,
      /forbidden: .*cannot (get|patch|create) resource "placementpolicies"/,
    );
    const cluster = await attempt(
      c,
      users.admin,
      [],
      JSON.stringify(
        policy(undefined, uniqueName('tenant-cpp'), spreadSpec, 'ClusterPlacementPolicy'),
      ),
    );
    assert.ok(!cluster.ok);
    assert.match(cluster.message, /forbidden: .*"clusterplacementpolicies"/);
    // An editor may too; and both delete what they made.
    const edited = JSON.stringify(policy(own, 'edited', spreadSpec));
    assert.deepEqual(await attempt(c, users.edit, [], edited), { ok: true });
    for (const [as, name] of [
      [users.admin, 'mine'],
      [users.edit, 'edited'],
    ] as const) {
      assert.deepEqual(
        await attempt(c, as, ['delete', 'placementpolicy', name, '-n', own, '--wait=false']),
        { ok: true },
      );
    }
  });

  await t.test('a viewer reads policies but writes none', async () => {
    await c.apply(JSON.stringify(policy(own, 'read-me', spreadSpec)));
    const read = await c.kubectl('get', 'placementpolicies', '-n', own, '-o', 'name', users.view);
    assert.match(read, /placementpolicy\.placement\.dev\/read-me/);
    const create = await attempt(
      c,
      users.view,
      [],
      JSON.stringify(policy(own, 'nope', spreadSpec)),
    );
    assert.ok(!create.ok);
    assert.match(create.message, /forbidden/);
    const remove = await attempt(c, users.view, [
      'delete',
      'placementpolicy',
      'read-me',
      '-n',
      own,
    ]);
    assert.ok(!remove.ok);
    assert.match(remove.message, /forbidden: .*cannot delete resource "placementpolicies"/);
    // Cluster policies: a cluster-wide viewer lists them; a namespace viewer cannot.
    const listCpp = ['get', 'clusterplacementpolicies', '-o', 'name'];
    assert.deepEqual(await attempt(c, tenants.clusterViewer, listCpp), { ok: true });
    const namespaceViewer = await attempt(c, users.view, listCpp);
    assert.ok(!namespaceViewer.ok);
    assert.match(namespaceViewer.message, /forbidden/);
    // Leave nothing for the operator below to act on.
    await c.kubectl('delete', 'placementpolicy', 'read-me', '-n', own, '--wait=false');
    await c
      .kubectl(
        'patch',
        'placementpolicy',
        'read-me',
        '-n',
        own,
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      )
      .catch(() => '');
  });

  await t.test(
    'the API server refuses a tenant policy that asks for other namespaces',
    async () => {
      for (const targets of [
        { selector: { matchLabels: { app: 'web' } }, namespaces: [other] },
        { selector: { matchLabels: { app: 'web' } }, namespaceSelector: {} },
      ]) {
        const refused = await attempt(
          c,
          users.admin,
          [],
          JSON.stringify(policy(own, 'reach-out', { ...spreadSpec, targets })),
        );
        assert.ok(!refused.ok, JSON.stringify(targets));
        // Refused by the schema's rules, not by RBAC: the admin may create policies here.
        assert.doesNotMatch(refused.message, /forbidden: User/);
        assert.match(refused.message, /is not allowed on a namespaced PlacementPolicy/);
      }
    },
  );

  await t.test('a namespace admin’s policy reaches its own namespace only', async () => {
    // Debug logs: a line a reconcile, so the test can tell when a resync has come by.
    const op = await runOperator(c, s, [
      '--resync-interval',
      `${RESYNC_MS}ms`,
      '--log-level',
      'debug',
    ]);
    await c.apply(list(deployment(own, 'web'), deployment(other, 'web')));
    const otherBefore = await get(c, 'deployment', other, 'web');
    // A policy as wide as its schema lets it be: every Deployment and StatefulSet.
    const wide = { ...spreadSpec, targets: { selector: {} } };
    assert.deepEqual(
      await attempt(c, users.admin, [], JSON.stringify(policy(own, 'spread-everything', wide))),
      { ok: true },
    );
    await waitEnforced(c, own, 'spread-everything', 1);
    assert.deepEqual(appliedPolicies(await get(c, 'deployment', own, 'web')), {
      [policyRef(own, 'spread-everything')]: 1,
    });
    await waitReconciledAgain(op, [`Deployment/${other}/web`]); // a resync looked at it again
    const otherNow = await get(c, 'deployment', other, 'web');
    assert.equal(otherNow.metadata.annotations?.[APPLIED], undefined, `${other}/web: no record`);
    assert.deepEqual(templateOf(otherNow), templateOf(otherBefore), `${other}/web: template`);
    assert.equal(otherNow.metadata.generation, otherBefore.metadata.generation, 'never written');
    assert.ok((await op.writes()) >= 1);
  });
});
