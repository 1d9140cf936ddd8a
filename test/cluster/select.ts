// Picks the cluster that integration tests run against:
//   KUBECONFIG_TEST=<path>        an existing cluster (used as is, never torn down)
//   PLACEMENT_TEST_CLUSTER=local  (default) the local control plane, building the
//                                 pinned binaries first if they are not cached
//   PLACEMENT_TEST_CLUSTER=k3s    k3s via @testcontainers/k3s: needs a Docker
//                                 engine, which these machines lack, so it is
//                                 refused with an explanation instead of faked
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from './local-cluster.ts';
import { BUILD_SCRIPT, defaultBinDir, missingBinaries } from './paths.ts';

export interface TestCluster {
  kind: 'existing' | 'local';
  kubeconfigPath: string;
  /** Set for kind 'local'. */
  local?: LocalCluster;
  /** Tears down a local cluster; leaves an existing one alone. */
  stop(): Promise<void>;
}

export async function selectTestCluster(options: LocalClusterOptions): Promise<TestCluster> {
  const existing = process.env['KUBECONFIG_TEST'];
  if (existing !== undefined && existing !== '') {
    if (!existsSync(existing)) throw new Error(`KUBECONFIG_TEST=${existing}: no such file`);
    return { kind: 'existing', kubeconfigPath: existing, stop: () => Promise.resolve() };
  }
  const choice = process.env['PLACEMENT_TEST_CLUSTER'] ?? 'local';
  if (choice === 'k3s') {
    throw new Error(
      'PLACEMENT_TEST_CLUSTER=k3s runs k3s in a container through @testcontainers/k3s, which ' +
        'needs a Docker engine; none is available here. Unset it to use the local control ' +
        'plane (hack/control-plane), or set KUBECONFIG_TEST to use an existing cluster.',
    );
  }
  if (choice !== 'local') {
    throw new Error(`PLACEMENT_TEST_CLUSTER=${choice}: expected "local" or "k3s"`);
  }
  const binDir = await ensureBinaries(options.binDir);
  const local = await startLocalCluster({ ...options, binDir });
  return { kind: 'local', kubeconfigPath: local.kubeconfigPath, local, stop: () => local.stop() };
}

/**
 * Returns the directory of the pinned binaries, running build.sh when any is
 * missing (a cold build takes 10-25 minutes; later runs find them cached).
 */
export async function ensureBinaries(binDir: string = defaultBinDir()): Promise<string> {
  if (missingBinaries(binDir).length === 0) return binDir;
  if (binDir !== defaultBinDir()) {
    throw new Error(`missing ${missingBinaries(binDir).join(', ')} in ${binDir}`);
  }
  process.stderr.write(`control-plane binaries not cached; running ${BUILD_SCRIPT}\n`);
  return new Promise((resolve, reject) => {
    // Build progress goes straight to our stderr; stdout carries the bin dir.
    const build = spawn('bash', [BUILD_SCRIPT, '--print-bin-dir'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    build.stdout.setEncoding('utf8');
    build.stdout.on('data', (chunk: string) => (stdout += chunk));
    build.on('error', reject);
    build.on('close', (code) => {
      if (code === 0) resolve(stdout.trim());
      else reject(new Error(`${BUILD_SCRIPT} failed with exit code ${String(code)}`));
    });
  });
}
