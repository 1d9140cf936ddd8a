// Not a clusterTest: it reads the shared control plane's audit log, creating nothing.
// Least privilege, proven by the API server's audit log. Every operator of the suite runs as
// the chart's ServiceAccount (harness.ts), and the shared control plane's audit log records
// that account's requests (test/cluster/local-cluster.ts). After every other integration
// file ran, this one holds them against the chart's permission table
// (charts/placement-operator/files/permissions.yaml): each grant used by some request (a
// cluster-wide one also outside the release namespace), each request covered by a grant,
// none refused (403), and none made with the operator's token by another program. So a grant
// the operator stopped using fails here, and so does a request that needs a grant the table
// lacks.
//
// It must run last: node runs the files of a run sorted by path, one at a time with
// --test-concurrency=1 (hack/test.sh), and this file's name sorts after every other
// integration file (checked below). A global teardown would run last without that, but
// what it throws is not reported (node runs it after the summary, swallows the message and
// runs it twice); it can only set the exit code. A test here reports like any other.
//
// Only the whole suite can show that a grant is used. Run with part of it (one file, a name
// pattern), that half is skipped and says why, while every request the part made must still
// be covered and allowed; without an audit log (no global setup, or an existing cluster)
// the whole test is skipped. hack/test.sh sets PLACEMENT_LEAST_PRIVILEGE=required, which
// turns a skip into a failure.
//
//   npm test
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { USER_AGENT } from '../../src/kube/client.ts';
import { render } from '../chart/helm.ts';
import { comparePermissions, parseAuditLog, permissionProblems } from '../chart/least-privilege.ts';
import {
  grantsFor,
  permissionKeys,
  ruleKeys,
  type PolicyRule,
} from '../chart/operator-permissions.ts';
import {
  OPERATOR_CHART_VALUES,
  OPERATOR_LEASE,
  OPERATOR_NAMESPACE,
  OPERATOR_RELEASE,
  OPERATOR_USER,
} from '../cluster/operator-account.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { currentRun, integrationFiles, type TestRun } from '../support/test-run.ts';

const THIS_FILE = relative(REPO_ROOT, fileURLToPath(import.meta.url));
const REQUIRED = process.env['PLACEMENT_LEAST_PRIVILEGE'] === 'required';

/** Why this run cannot tell whether a grant is used; undefined when it can. */
function notTheWholeSuite(run: TestRun | undefined): string | undefined {
  if (run === undefined) {
    return 'this file ran without the global setup (test/global-setup.ts), so no audit log of the suite exists';
  }
  if (run.auditLogPath === undefined) {
    return 'the suite ran on an existing cluster (KUBECONFIG_TEST), whose API server keeps no audit log for it';
  }
  const missing = integrationFiles().filter((f) => f !== THIS_FILE && !run.files.includes(f));
  if (missing.length > 0) {
    const shown = missing.slice(0, 4).join(', ');
    return `this run left out ${String(missing.length)} integration file(s) (${shown}${missing.length > 4 ? ', ...' : ''}), whose requests the log lacks`;
  }
  if (run.filters.length > 0) return `this run ran only some tests (${run.filters.join(' ')})`;
  if (!run.serial) {
    return 'the files ran concurrently (--test-concurrency is not 1), so others may still be running';
  }
  return undefined;
}

const remediation = OPERATOR_CHART_VALUES.includes('audit.remediation.enabled=true');
const reports = OPERATOR_CHART_VALUES.includes('reports.enabled=true');
const policyReports = OPERATOR_CHART_VALUES.includes('reports.policyReports=true');

void test('least privilege: the chart grants exactly what the operator used', async (t) => {
  const run = currentRun();
  const later = (run?.files ?? []).filter(
    (f) => f.startsWith('test/integration/') && f > THIS_FILE,
  );
  assert.deepEqual(later, [], `these run after ${THIS_FILE}, so their requests would be missed`);
  const whole = notTheWholeSuite(run);
  const skipped = (message: string): string => {
    const text = `skipped: ${message}. Run \`npm test\` for it.`;
    if (REQUIRED) assert.fail(`PLACEMENT_LEAST_PRIVILEGE=required, but ${text}`);
    return text;
  };
  const logPath = run?.auditLogPath;
  if (logPath === undefined) {
    t.skip(skipped(whole ?? 'no audit log'));
    return;
  }

  const grants = grantsFor(OPERATOR_LEASE, remediation, true, reports, policyReports);
  await t.test('the RBAC the suite installed is the permission table', () => {
    const objects = render({
      release: OPERATOR_RELEASE,
      namespace: OPERATOR_NAMESPACE,
      set: [...OPERATOR_CHART_VALUES],
    });
    // The operator's roles are those the chart binds; the roles it ships for people
    // (aggregated into admin/edit/view, or for the platform team to bind) are not.
    const bound = new Set(
      objects
        .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
        .map((b) => {
          const ref = (b as unknown as { roleRef: { kind: string; name: string } }).roleRef;
          return `${ref.kind}/${ref.name}`;
        }),
    );
    const installed = objects
      .filter(
        (o) =>
          (o.kind === 'ClusterRole' || o.kind === 'Role') &&
          bound.has(`${o.kind}/${o.metadata.name}`),
      )
      .flatMap((o) =>
        ruleKeys(
          (o as unknown as { rules: PolicyRule[] }).rules,
          o.kind === 'ClusterRole' ? 'cluster' : `ns:${OPERATOR_NAMESPACE}`,
        ),
      );
    assert.deepEqual(
      [...new Set(installed)].sort(),
      [...new Set(permissionKeys(grants, OPERATOR_NAMESPACE))].sort(),
    );
  });

  const events = parseAuditLog(readFileSync(logPath, 'utf8'));
  const use = comparePermissions(events, grants, {
    user: OPERATOR_USER,
    namespace: OPERATOR_NAMESPACE,
    userAgent: USER_AGENT,
  });
  t.diagnostic(
    `${String(use.requests)} requests as ${OPERATOR_USER}; audit log ${String(events.length)} ` +
      `lines, ${(statSync(logPath).size / 1024).toFixed(0)} KiB (${logPath})`,
  );
  for (const [key, n] of [...use.used].sort(([a], [b]) => a.localeCompare(b))) {
    t.diagnostic(`  ${key}: ${String(n)}`);
  }

  // Holds for any part of the suite: a request the table does not cover is wrong whichever
  // test made it.
  await t.test('every request of the operator is covered by a grant; none refused', () => {
    assert.ok(use.requests > 0, `no request of ${OPERATOR_USER} in ${logPath}`);
    assert.deepEqual(permissionProblems({ ...use, unused: [], tooWide: [] }), []);
  });

  // Only the whole suite can show that a grant is used, and where.
  await t.test(
    'every grant was used by some request, and beyond the release namespace if cluster-wide',
    (st) => {
      if (whole !== undefined) {
        st.skip(skipped(whole));
        return;
      }
      assert.deepEqual(permissionProblems(use), []);
    },
  );
});
