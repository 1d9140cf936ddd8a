// What a `node --test` run covers, as the global setup sees it: the test files it was given
// (node expands the patterns and runs the files sorted, one at a time with
// --test-concurrency=1), and whether anything narrows the tests inside them. Tests that
// judge the whole suite (zz-least-privilege.test.ts) read it from the environment.
import { globSync } from 'node:fs';
import { relative, resolve } from 'node:path';

import { REPO_ROOT } from '../cluster/paths.ts';

const ENV = 'PLACEMENT_TEST_RUN';

export interface TestRun {
  /** The files of the run, relative to the repository, sorted as node runs them. */
  readonly files: readonly string[];
  /** Flags that run only some tests of those files (name patterns, only, shards). */
  readonly filters: readonly string[];
  /** --test-concurrency=1: one file after another, in that order. */
  readonly serial: boolean;
  /** The API server's audit log of the shared cluster; undefined for an existing cluster. */
  readonly auditLogPath: string | undefined;
}

const FILTER_FLAGS = [
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-only',
  '--test-shard',
  '--test-tag',
];

/** The run of this process (the test runner's own, where the global setup runs). */
export function describeRun(
  argv: readonly string[],
  execArgv: readonly string[],
  cwd: string,
  auditLogPath: string | undefined,
): TestRun {
  const patterns = argv.slice(1);
  const files = [
    ...new Set(
      patterns.flatMap((p) =>
        globSync(p, { cwd, exclude: (name) => name === 'node_modules' }).map((f) =>
          relative(REPO_ROOT, resolve(cwd, f)),
        ),
      ),
    ),
  ].sort();
  const filters = execArgv.filter((a) =>
    FILTER_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)),
  );
  const concurrency = execArgv.findIndex(
    (a) => a === '--test-concurrency' || a.startsWith('--test-concurrency='),
  );
  const value =
    concurrency < 0
      ? undefined
      : (execArgv[concurrency]?.split('=')[1] ?? execArgv[concurrency + 1]);
  return { files, filters, serial: value === '1', auditLogPath };
}

export function publishRun(run: TestRun): void {
  process.env[ENV] = JSON.stringify(run);
}

/** The run the global setup described; undefined without a global setup. */
export function currentRun(): TestRun | undefined {
  const text = process.env[ENV];
  return text === undefined || text === '' ? undefined : (JSON.parse(text) as TestRun);
}

/** Every integration test file in the repository, as `describeRun` names them. */
export function integrationFiles(): string[] {
  return globSync('test/integration/**/*.test.ts', { cwd: REPO_ROOT }).sort();
}
