// The least-privilege comparison (test/chart/least-privilege.ts) on hand-made audit logs:
// it holds when the requests use exactly the grants, and fails, naming what drifted, when
// either side grows: a grant no request used, a request no grant covers, a refusal (403), or
// the operator's credentials used by another program. And the permission table itself: the
// loader and the chart refuse a malformed grant with a message naming it. And what a run of
// node --test covers (the comparison needs the whole suite, in order).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { CHART_DIR, helm } from '../chart/helm.ts';
import {
  comparePermissions,
  parseAuditLog,
  permissionProblems,
  type AuditEvent,
} from '../chart/least-privilege.ts';
import {
  PERMISSIONS_FILE,
  grantsFor,
  readPermissionTable,
  type Grant,
} from '../chart/operator-permissions.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { describeRun, integrationFiles } from '../support/test-run.ts';

const NS = 'placement-system';
const USER = `system:serviceaccount:${NS}:po-placement-operator`;
const OPTIONS = { user: USER, namespace: NS, userAgent: 'placement-operator' };

let nextId = 0;

interface Request {
  readonly verb: string;
  readonly resource: string;
  readonly group?: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly code?: number;
  readonly user?: string;
  readonly userAgent?: string;
  readonly stage?: string;
  readonly auditID?: string;
}

/** One audit event line, as kube-apiserver writes it at Metadata level. */
function event(r: Request): AuditEvent {
  return {
    auditID: r.auditID ?? `id-${String(nextId++)}`,
    stage: r.stage ?? 'ResponseComplete',
    verb: r.verb,
    requestURI: `/apis/x/${r.resource}`,
    userAgent: r.userAgent ?? 'placement-operator',
    user: { username: r.user ?? USER },
    objectRef: {
      resource: r.resource,
      ...(r.group === undefined ? {} : { apiGroup: r.group }),
      ...(r.subresource === undefined ? {} : { subresource: r.subresource }),
      ...(r.namespace === undefined ? {} : { namespace: r.namespace }),
      ...(r.name === undefined ? {} : { name: r.name }),
    },
    responseStatus: { code: r.code ?? 200 },
    annotations: { 'authorization.k8s.io/decision': r.code === 403 ? 'forbid' : 'allow' },
  };
}

/** A small table: pods read cluster-wide, deployments patched, one Lease by name. */
const GRANTS: Grant[] = [
  { group: '', resource: 'pods', verbs: ['list', 'watch'], scope: 'cluster', when: 'always' },
  { group: 'apps', resource: 'deployments', verbs: ['patch'], scope: 'cluster', when: 'always' },
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['get'],
    scope: 'release-namespace',
    resourceNames: ['placement-operator'],
    when: 'leaderElection',
  },
];

/** Requests that use every grant of GRANTS once. */
const EXACT: Request[] = [
  { verb: 'list', resource: 'pods' },
  { verb: 'watch', resource: 'pods', stage: 'ResponseStarted', auditID: 'w' },
  { verb: 'watch', resource: 'pods', stage: 'ResponseComplete', auditID: 'w' },
  { verb: 'patch', group: 'apps', resource: 'deployments', namespace: 'shop', name: 'web' },
  {
    verb: 'get',
    group: 'coordination.k8s.io',
    resource: 'leases',
    namespace: NS,
    name: 'placement-operator',
    code: 404,
  },
];

interface Case {
  readonly name: string;
  readonly requests: readonly Request[];
  readonly grants?: readonly Grant[];
  /** A line of permissionProblems that must be there; none at all when undefined. */
  readonly problem?: RegExp;
}

const CASES: readonly Case[] = [
  { name: 'requests that use exactly the grants: no problem', requests: EXACT },
  {
    name: "someone else's requests are not the operator's",
    requests: [...EXACT, { verb: 'delete', resource: 'pods', user: 'admin' }],
  },
  {
    name: 'a grant no request used',
    requests: EXACT.filter((r) => r.verb !== 'patch'),
    problem: /^ {2}cluster apps deployments\[\(any\)\] patch$/,
  },
  {
    name: 'a grant grows a verb nobody uses',
    requests: EXACT,
    grants: GRANTS.map((g) => (g.resource === 'pods' ? { ...g, verbs: [...g.verbs, 'get'] } : g)),
    problem: /^ {2}cluster core pods\[\(any\)\] get$/,
  },
  {
    name: 'a cluster-wide grant used only in the release namespace',
    requests: [
      ...EXACT.filter((r) => r.verb !== 'patch'),
      { verb: 'patch', group: 'apps', resource: 'deployments', namespace: NS, name: 'x' },
    ],
    problem: /^granted in every namespace but used only in the release namespace/,
  },
  {
    name: 'a request no grant covers',
    requests: [...EXACT, { verb: 'get', resource: 'pods', namespace: 'shop', name: 'web-1' }],
    problem: /^ {2}get core pods in other namespaces \(x1\)$/,
  },
  {
    name: 'a subresource is a resource of its own',
    requests: [...EXACT, { verb: 'create', resource: 'pods', subresource: 'eviction' }],
    problem: /^ {2}create core pods\/eviction cluster-wide \(x1\)$/,
  },
  {
    name: 'a Role grant does not reach outside the release namespace',
    requests: [
      ...EXACT,
      {
        verb: 'get',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'default',
        name: 'placement-operator',
      },
    ],
    problem: /^ {2}get coordination.k8s.io leases in other namespaces \(x1\)$/,
  },
  {
    name: 'a grant limited to one name does not cover another',
    requests: [
      ...EXACT,
      {
        verb: 'get',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: NS,
        name: 'other',
      },
    ],
    problem: /^ {2}get coordination.k8s.io leases in the release namespace/,
  },
  {
    name: 'a server-side apply that creates its object needs create as well as patch',
    requests: [...EXACT, { verb: 'patch', group: 'apps', resource: 'deployments', code: 201 }],
    problem:
      /^ {2}create apps deployments cluster-wide \(a server-side apply that created it\) \(x1\)$/,
  },
  {
    name: 'a server-side apply that creates its object uses the create grant',
    requests: [...EXACT, { verb: 'patch', group: 'apps', resource: 'deployments', code: 201 }],
    grants: [
      ...GRANTS,
      {
        group: 'apps',
        resource: 'deployments',
        verbs: ['create'],
        scope: 'cluster',
        when: 'always',
      },
    ],
  },
  {
    name: 'a refused request (403), even one the table would cover',
    requests: [...EXACT, { verb: 'list', resource: 'pods', code: 403 }],
    problem: /^requests the API server refused \(403\):$/,
  },
  {
    name: "another program with the operator's credentials",
    requests: [...EXACT, { verb: 'list', resource: 'pods', userAgent: 'kubectl/v1.36.3' }],
    problem: /^ {2}list core pods cluster-wide by "kubectl\/v1.36.3" \(x1\)$/,
  },
];

void describe('comparePermissions: the audit log against the grants', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const problems = permissionProblems(
        comparePermissions(c.requests.map(event), c.grants ?? GRANTS, OPTIONS),
      );
      if (c.problem === undefined) assert.deepEqual(problems, []);
      else {
        const problem = c.problem;
        assert.ok(
          problems.some((line) => problem.test(line)),
          `${String(problem)} in\n${problems.join('\n')}`,
        );
      }
    });
  }

  void test('a watch is one request, whatever stages the log has of it', () => {
    const use = comparePermissions(EXACT.map(event), GRANTS, OPTIONS);
    assert.equal(use.requests, EXACT.length - 1);
    assert.equal(use.used.get('cluster core pods[(any)] watch'), 1);
  });

  void test('parseAuditLog reads JSON lines and names a line that is not an event', () => {
    const lines = EXACT.map((r) => JSON.stringify({ kind: 'Event', ...event(r) }));
    assert.equal(parseAuditLog(`${lines.join('\n')}\n`).length, EXACT.length);
    assert.throws(() => parseAuditLog(`${lines[0] ?? ''}\n{"kind":"Status"}\n`), /line 2/);
    assert.throws(() => parseAuditLog('not json'), /line 1 is not JSON/);
  });
});

void describe('the permission table', () => {
  void test('parses, and every grant is in force for some chart values', () => {
    const rows = readPermissionTable();
    assert.ok(rows.length > 0);
    assert.equal(grantsFor('l', true, true, true, true).length, rows.length);
  });

  const malformed: readonly { name: string; row: string; message: RegExp }[] = [
    {
      name: 'unknown scope',
      row: "{ scope: global, when: always, group: '', resource: pods, verbs: [list] }",
      message: /grant 1: scope "global" is not cluster or release/,
    },
    {
      name: 'unknown verb',
      row: "{ scope: cluster, when: always, group: '', resource: pods, verbs: [lst] }",
      message: /grant 1: verbs \["lst"\] must be some of/,
    },
    {
      name: 'unknown field',
      row: "{ scope: cluster, when: always, group: '', resource: pods, verbs: [list], resourceNames: [a] }",
      message: /grant 1: unknown field\(s\) resourceNames/,
    },
    {
      name: 'names that are not a list of names',
      row: "{ scope: cluster, when: always, group: '', resource: pods, verbs: [get], names: a }",
      message: /grant 1: names must be a list of object names/,
    },
    {
      name: 'both lease and names',
      row: '{ scope: release, when: leaderElection, group: coordination.k8s.io, resource: leases, verbs: [get], lease: true, names: [a] }',
      message: /grant 1: lease and names both limit the names; give one/,
    },
  ];
  for (const m of malformed) {
    void test(`the loader refuses a grant with ${m.name}`, () => {
      assert.throws(() => readPermissionTable(`- ${m.row}\n`), m.message);
    });
  }

  void test('the chart refuses a grant that no template renders, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chart-permissions-'));
    try {
      const chart = join(dir, 'placement-operator');
      cpSync(CHART_DIR, chart, { recursive: true });
      const table = join(chart, 'files', 'permissions.yaml');
      writeFileSync(
        table,
        `${readFileSync(PERMISSIONS_FILE, 'utf8')}- { scope: release, when: always, group: '', resource: configmaps, verbs: [get] }\n`,
      );
      const ran = helm(['template', 'po', chart]);
      assert.notEqual(ran.status, 0);
      assert.match(
        ran.stderr,
        /files\/permissions.yaml, grant \d+ \(core configmaps\): scope "release" with when "always" is rendered by no template/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe('describeRun: what a run of node --test covers', () => {
  const all = ['node', 'test/integration/**/*.test.ts'];
  const cases: readonly {
    name: string;
    argv: readonly string[];
    execArgv: readonly string[];
    want: { whole: boolean; filters: readonly string[]; serial: boolean };
  }[] = [
    {
      name: 'the integration glob, one file at a time (hack/test.sh)',
      argv: all,
      execArgv: ['--test', '--test-concurrency=1'],
      want: { whole: true, filters: [], serial: true },
    },
    {
      name: 'one file',
      argv: ['node', 'test/integration/operator/ha.test.ts'],
      execArgv: ['--test', '--test-concurrency=1'],
      want: { whole: false, filters: [], serial: true },
    },
    {
      name: 'a name pattern',
      argv: all,
      execArgv: ['--test', '--test-concurrency', '1', '--test-name-pattern=HA'],
      want: { whole: true, filters: ['--test-name-pattern=HA'], serial: true },
    },
    {
      name: 'files side by side',
      argv: all,
      execArgv: ['--test', '--test-concurrency=2'],
      want: { whole: true, filters: [], serial: false },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const run = describeRun(c.argv, c.execArgv, REPO_ROOT, undefined);
      assert.equal(
        integrationFiles().every((f) => run.files.includes(f)),
        c.want.whole,
      );
      assert.deepEqual(run.filters, c.want.filters);
      assert.equal(run.serial, c.want.serial);
      assert.deepEqual(run.files, [...run.files].sort(), 'sorted as node runs them');
    });
  }
});
