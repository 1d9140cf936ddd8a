// kubectl for the CRD tests: every run answers ok (with stdout) or refused (with stderr),
// so a test can assert on the API server's refusal as well as on success.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { defaultBinDir } from '../cluster/paths.ts';
import type { TestCluster } from '../cluster/select.ts';

export type Outcome = { kind: 'ok'; stdout: string } | { kind: 'refused'; stderr: string };

export interface Kubectl {
  run(args: readonly string[], stdin?: string): Promise<Outcome>;
  /** Like run, but fails the test on a non-zero exit. */
  must(args: readonly string[], stdin?: string): Promise<string>;
}

export function kubectlFor(cluster: TestCluster): Kubectl {
  const binDir = process.env['PLACEMENT_TEST_BIN_DIR'] || defaultBinDir();
  const binary = cluster.local?.kubectlPath ?? join(binDir, 'kubectl');
  const run = (args: readonly string[], stdin = ''): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const child = spawn(binary, ['--kubeconfig', cluster.kubeconfigPath, ...args]);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => {
        resolve(code === 0 ? { kind: 'ok', stdout } : { kind: 'refused', stderr });
      });
      child.stdin.end(stdin);
    });
  return {
    run,
    async must(args, stdin) {
      const outcome = await run(args, stdin);
      if (outcome.kind === 'refused') assert.fail(`kubectl ${args.join(' ')}: ${outcome.stderr}`);
      return outcome.stdout;
    },
  };
}
