// Global setup for `npm test`: one control plane for every integration test file.
// Files read its kubeconfig from KUBECONFIG_TEST (test/integration/cluster.ts), which
// is also how a developer points the suite at an existing cluster instead.
import { selectTestCluster, type TestCluster } from './cluster/select.ts';

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
}

export async function globalTeardown(): Promise<void> {
  await cluster?.stop();
}
