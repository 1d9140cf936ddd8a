// Global setup for `npm test`: one control plane for every integration test file.
// Files read its kubeconfig from KUBECONFIG_TEST (test/integration/cluster.ts), which
// is also how a developer points the suite at an existing cluster instead.
//
// The operator runs under the Helm chart's own ServiceAccount and RBAC, installed here once
// (test/cluster/operator-account.ts); its kubeconfig is handed to the files in
// PLACEMENT_TEST_OPERATOR, and harness.ts's startOperator uses it. The API server records
// that account's requests in its audit log; what this run covers (files, filters, the log)
// goes to PLACEMENT_TEST_RUN for test/integration/zz-least-privilege.test.ts, which compares
// the log with the chart's grants after every other integration file ran.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { installOperatorAccount, publishOperatorAccount } from './cluster/operator-account.ts';
import { defaultBinDir } from './cluster/paths.ts';
import { selectTestCluster, type TestCluster } from './cluster/select.ts';
import { describeRun, publishRun } from './support/test-run.ts';

let cluster: TestCluster | undefined;

/** Nodes of the shared cluster: four, over zones a and b; tests that need their own add them. */
export const SHARED_NODES = 4;

export async function globalSetup(): Promise<void> {
  cluster = await selectTestCluster({
    nodes: SHARED_NODES,
    name: 'shared',
    zones: ['zone-a', 'zone-b'],
  });
  process.env['KUBECONFIG_TEST'] = cluster.kubeconfigPath;
  process.env['PLACEMENT_TEST_BIN_DIR'] = cluster.local?.binDir ?? '';
  // Next to the admin kubeconfig on the local cluster; an existing cluster's directory is
  // not ours to write in.
  const dir =
    cluster.local === undefined
      ? await mkdtemp(join(tmpdir(), 'placement-operator-account-'))
      : dirname(cluster.kubeconfigPath);
  const kubectl = cluster.local?.kubectlPath ?? join(defaultBinDir(), 'kubectl');
  publishOperatorAccount(await installOperatorAccount(kubectl, cluster.kubeconfigPath, dir));
  publishRun(
    describeRun(process.argv, process.execArgv, process.cwd(), cluster.local?.auditLogPath),
  );
}

export async function globalTeardown(): Promise<void> {
  await cluster?.stop();
}
