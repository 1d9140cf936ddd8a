// The identity the operator runs under in the integration tests: the Helm chart's own
// ServiceAccount and RBAC (rendered with the pinned helm from charts/placement-operator, as
// `helm install` would create them), and a kubeconfig that carries a token of that account
// only. The local control plane records this account's requests in its audit log
// (local-cluster.ts), which test/integration/zz-least-privilege.test.ts compares with the
// chart's grants.
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { render } from '../chart/helm.ts';

const run = promisify(execFile);

/** The release the tests install the chart's RBAC as; the chart names everything after it. */
export const OPERATOR_RELEASE = 'po';
export const OPERATOR_NAMESPACE = 'placement-system';
/** `<release>-placement-operator`: the chart's fullname, which its ServiceAccount takes. */
export const OPERATOR_SERVICE_ACCOUNT = `${OPERATOR_RELEASE}-placement-operator`;
/** The chart's default leaderElection.leaseName: the Role grants get/update on it only. */
export const OPERATOR_LEASE = 'placement-operator';
/** The user name the API server gives the account's tokens (and the audit log records). */
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT}`;
/**
 * Eviction is granted too (audit.remediation.enabled): the suite evicts pods; and the
 * OpenReports objects and PolicyReports (reports.enabled, reports.policyReports): the suite
 * publishes both. The tests hold the
 * chart's RBAC for these values equal to what the operator used.
 */
export const OPERATOR_CHART_VALUES = [
  'audit.remediation.enabled=true',
  'reports.enabled=true',
  'reports.policyReports=true',
] as const;
/** Long enough for the whole suite (about an hour on two cores), with room to spare. */
const TOKEN_DURATION = '12h';

/** Where and as whom the operator runs; what `startOperator` needs. */
export interface OperatorAccount {
  /** A kubeconfig with the account's token and nothing else. */
  readonly kubeconfigPath: string;
  /** The release namespace: the Lease lives here. */
  readonly namespace: string;
  readonly lease: string;
  readonly user: string;
}

const ENV = 'PLACEMENT_TEST_OPERATOR';

/** Hands the account to the test files (the global setup runs in the runner's process). */
export function publishOperatorAccount(account: OperatorAccount): void {
  process.env[ENV] = JSON.stringify(account);
}

/** The account the global setup installed; undefined without one. */
export function publishedOperatorAccount(): OperatorAccount | undefined {
  const text = process.env[ENV];
  return text === undefined || text === '' ? undefined : (JSON.parse(text) as OperatorAccount);
}

/**
 * Installs the chart's ServiceAccount, ClusterRoles and Role (idempotent: a server-side
 * apply), creates a token for the account (TokenRequest) and writes a kubeconfig for it into
 * `dir`. `kubectl` is the pinned kubectl; `adminKubeconfig` may do anything. Resolves once
 * the API server authorizes the account (RBAC is read from an informer: a moment's delay).
 */
export async function installOperatorAccount(
  kubectl: string,
  adminKubeconfig: string,
  dir: string,
): Promise<OperatorAccount> {
  const admin = async (...args: string[]): Promise<string> =>
    (
      await run(kubectl, [`--kubeconfig=${adminKubeconfig}`, ...args], {
        maxBuffer: 16 * 1024 * 1024,
      })
    ).stdout;
  const rbac = render({
    release: OPERATOR_RELEASE,
    namespace: OPERATOR_NAMESPACE,
    set: [...OPERATOR_CHART_VALUES],
  }).filter((o) =>
    ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
  );
  const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } };
  await applyStdin(kubectl, adminKubeconfig, {
    apiVersion: 'v1',
    kind: 'List',
    items: [namespace, ...rbac],
  });
  const kubeconfigPath = await writeTokenKubeconfig(
    admin,
    OPERATOR_NAMESPACE,
    OPERATOR_SERVICE_ACCOUNT,
    join(dir, 'operator.kubeconfig'),
    TOKEN_DURATION,
  );
  // Asked as the admin on the account's behalf (a SubjectAccessReview), so that nothing but
  // the operator ever uses the account's token: its audit log is the operator's alone.
  await waitAuthorized(admin);
  return {
    kubeconfigPath,
    namespace: OPERATOR_NAMESPACE,
    lease: OPERATOR_LEASE,
    user: OPERATOR_USER,
  };
}

/**
 * Writes a kubeconfig that authenticates with a token of the ServiceAccount only (no client
 * certificate): a TokenRequest (`kubectl create token`) made with `admin`'s kubectl, for the
 * admin kubeconfig's cluster. Resolves with `path`.
 */
export async function writeTokenKubeconfig(
  admin: (...args: string[]) => Promise<string>,
  namespace: string,
  serviceAccount: string,
  path: string,
  duration: string,
): Promise<string> {
  const token = (
    await admin('create', 'token', serviceAccount, '-n', namespace, `--duration=${duration}`)
  ).trim();
  const minified = JSON.parse(await admin('config', 'view', '--raw', '--minify', '-o', 'json')) as {
    clusters: { cluster: Record<string, unknown> }[];
  };
  const cluster = minified.clusters[0]?.cluster;
  if (cluster === undefined) throw new Error('the admin kubeconfig names no cluster');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster }],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'test', user: serviceAccount, namespace } }],
    'current-context': 'sa',
  };
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return path;
}

async function waitAuthorized(admin: (...args: string[]) => Promise<string>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // A core resource: the CRDs may not be installed yet, and kubectl checks the type.
    const answer = await admin(
      'auth',
      'can-i',
      'watch',
      'pods',
      '--all-namespaces',
      `--as=${OPERATOR_USER}`,
    ).catch((error: unknown) => {
      const e = error as { stdout?: string; stderr?: string };
      return `${e.stdout ?? ''}${e.stderr ?? ''}`;
    });
    if (answer.trim() === 'yes') return;
    if (Date.now() > deadline) {
      throw new Error(
        `the chart's RBAC does not authorize ${OPERATOR_USER} after 30 s: ${answer.trim()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function applyStdin(kubectl: string, kubeconfig: string, manifest: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, [
      `--kubeconfig=${kubeconfig}`,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=placement-tests',
      '-f',
      '-',
    ]);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`kubectl apply of the chart's RBAC failed (${String(code)}): ${err}`));
    });
    child.stdin.end(JSON.stringify(manifest));
  });
}
