// The Dockerfile's shape: Node 24 build stages, a distroless runtime stage with no shell
// that holds only the compiled code and production dependencies, a numeric non-root USER,
// an exec-form CMD, OCI labels. What the stages actually produce is checked by
// hack/image/check.sh (no Docker engine here: it runs the stages' commands itself).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';

import {
  execForm,
  keyValues,
  parseArg,
  parseCopy,
  parseDockerfile,
  substitute,
  type Instruction,
  type Stage,
} from '../../hack/image/dockerfile.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

const TEXT = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const DOCKERFILE = parseDockerfile(TEXT);
const PKG = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  engines: { node: string };
};
const CHART = parse(
  readFileSync(join(REPO_ROOT, 'charts', 'placement-operator', 'Chart.yaml'), 'utf8'),
) as { appVersion: string };

const stage = (name: string): Stage => {
  const found = DOCKERFILE.stages.find((s) => s.name === name);
  assert.ok(
    found !== undefined,
    `a stage named ${name} (stages: ${DOCKERFILE.stages.map((s) => s.name).join(', ')})`,
  );
  return found;
};
const runtime = DOCKERFILE.stages.at(-1);
assert.ok(runtime !== undefined, 'the Dockerfile has stages');
const all = (s: Stage, keyword: string): Instruction[] =>
  s.instructions.filter((i) => i.keyword === keyword);
const runs = (s: Stage): string[] => all(s, 'RUN').map((i) => i.args);

/** The runtime stage's ARG defaults, for its LABELs. */
const runtimeArgs = Object.fromEntries(
  all(runtime, 'ARG').map((i) => {
    const [name, value] = parseArg(i.args);
    return [name, value ?? DOCKERFILE.globalArgs[name] ?? ''];
  }),
);
const labels = Object.fromEntries(
  Object.entries(
    keyValues(
      all(runtime, 'LABEL')
        .map((i) => i.args)
        .join(' '),
    ),
  ).map(([k, v]) => [k, substitute(v, runtimeArgs)]),
);

void describe('Dockerfile stages', () => {
  void test('build, deps and runtime, in that order, the runtime last', () => {
    assert.deepEqual(
      DOCKERFILE.stages.map((s) => s.name),
      ['build', 'deps', 'runtime'],
    );
  });

  void test('build stages use Node 24 LTS on Debian bookworm (slim)', () => {
    assert.match(PKG.engines.node, />=\s*24/);
    for (const name of ['build', 'deps']) assert.equal(stage(name).image, 'node:24-bookworm-slim');
  });

  void test('runtime is distroless Node 24 (no shell), as nonroot, on the same Debian', () => {
    assert.match(
      runtime.image,
      /^gcr\.io\/distroless\/nodejs24-debian12(:nonroot|@sha256:[a-f0-9]{64})$/,
    );
  });

  void test('build stage: npm ci, then npm run build', () => {
    const commands = runs(stage('build'));
    const ci = commands.findIndex((c) => /^npm ci\b/.test(c) && !c.includes('--omit=dev'));
    const build = commands.findIndex((c) => /^npm run build\b/.test(c));
    assert.ok(ci >= 0 && build > ci, commands.join(' | '));
  });

  void test('deps stage: a clean production install (npm ci --omit=dev)', () => {
    const commands = runs(stage('deps'));
    assert.ok(
      commands.some((c) => /^npm ci\b.*--omit=dev/.test(c)),
      commands.join(' | '),
    );
    assert.ok(!all(stage('deps'), 'COPY').some((i) => parseCopy(i.args).from !== undefined));
  });

  void test('install scripts are not run (no dependency needs one; it keeps installs inert)', () => {
    for (const command of [...runs(stage('build')), ...runs(stage('deps'))].filter((c) =>
      c.startsWith('npm ci'),
    )) {
      assert.match(command, /--ignore-scripts/);
    }
  });
});

void describe('Dockerfile runtime stage', () => {
  void test('no RUN: distroless has no shell to run it', () => {
    assert.deepEqual(runs(runtime), []);
  });

  void test('copies only package.json, crds/, dist/ from build and node_modules/ from deps', () => {
    const copies = all(runtime, 'COPY').map((i) => parseCopy(i.args));
    const sources = copies
      .flatMap((c) => c.sources.map((s) => `${c.from ?? 'context'}:${s.replace(/\/$/, '')}`))
      .sort();
    assert.deepEqual(sources, [
      'build:/src/dist',
      'context:crds',
      'context:package.json',
      'deps:/src/node_modules',
    ]);
  });

  void test('USER is numeric 65532 (non-root, so runAsNonRoot can verify it)', () => {
    const users = all(runtime, 'USER').map((i) => i.args.trim());
    assert.deepEqual(users, ['65532:65532']);
  });

  void test('CMD is exec form ["dist/main.js"] and node stays the entrypoint', () => {
    const cmds = all(runtime, 'CMD');
    assert.equal(cmds.length, 1);
    assert.deepEqual(execForm(cmds[0]?.args ?? ''), ['dist/main.js']);
    assert.deepEqual(all(runtime, 'ENTRYPOINT'), [], 'the distroless image’s entrypoint is node');
  });

  void test('no shell-form CMD or ENTRYPOINT in any stage', () => {
    for (const s of DOCKERFILE.stages) {
      for (const i of [...all(s, 'CMD'), ...all(s, 'ENTRYPOINT')]) {
        assert.ok(
          execForm(i.args) !== undefined,
          `Dockerfile:${String(i.line)}: ${i.keyword} ${i.args}`,
        );
      }
    }
  });

  void test('the chart runs the same file the CMD names', () => {
    const workdir = all(runtime, 'WORKDIR').at(-1)?.args.trim() ?? '/';
    const entry = posix.join(workdir, 'dist/main.js');
    const deployment = readFileSync(
      join(REPO_ROOT, 'charts', 'placement-operator', 'templates', 'deployment.yaml'),
      'utf8',
    );
    assert.ok(deployment.includes(`- ${entry}\n`), `deployment.yaml args start with ${entry}`);
  });

  void test('exposes the chart’s default metrics port', () => {
    const values = parse(
      readFileSync(join(REPO_ROOT, 'charts', 'placement-operator', 'values.yaml'), 'utf8'),
    ) as { metrics: { port: number } };
    assert.deepEqual(
      all(runtime, 'EXPOSE').map((i) => i.args.trim()),
      [String(values.metrics.port)],
    );
  });

  void test('NODE_ENV=production', () => {
    assert.equal(
      keyValues(
        all(runtime, 'ENV')
          .map((i) => i.args)
          .join(' '),
      )['NODE_ENV'],
      'production',
    );
  });
});

void describe('Dockerfile OCI labels', () => {
  const cases: readonly { key: string; want: string | RegExp }[] = [
    { key: 'org.opencontainers.image.title', want: 'placement-operator' },
    { key: 'org.opencontainers.image.description', want: /affinity/ },
    { key: 'org.opencontainers.image.source', want: /^https:\/\// },
    { key: 'org.opencontainers.image.licenses', want: PKG.license },
    { key: 'org.opencontainers.image.version', want: PKG.version },
  ];
  for (const c of cases) {
    void test(c.key, () => {
      const value = labels[c.key];
      assert.ok(value !== undefined && value !== '', `${c.key} is set`);
      if (typeof c.want === 'string') assert.equal(value, c.want);
      else assert.match(value, c.want);
    });
  }

  void test('the version label, package.json and the chart appVersion agree', () => {
    assert.equal(labels['org.opencontainers.image.version'], CHART.appVersion);
  });
});

void describe('.dockerignore', () => {
  void test('keeps local state out of the build context', () => {
    const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const p of ['.git', 'node_modules', 'dist', '.tmp']) assert.ok(patterns.includes(p), p);
  });
});

void describe('hack/image/dockerfile.ts reads Dockerfile syntax', () => {
  const cases: readonly {
    name: string;
    text: string;
    check: (d: ReturnType<typeof parseDockerfile>) => void;
  }[] = [
    {
      name: 'continuation lines and comments between them',
      text: 'FROM a AS x\nRUN one \\\n  # a comment\n  two\n',
      check: (d) => {
        assert.equal(d.stages[0]?.instructions[0]?.args, 'one two');
      },
    },
    {
      name: 'global ARG substitution in FROM, with build-arg default',
      text: 'ARG IMG=base:1\nFROM ${IMG} AS x\n',
      check: (d) => {
        assert.equal(d.stages[0]?.image, 'base:1');
      },
    },
    {
      name: 'unnamed stages are numbered',
      text: 'FROM a\nFROM b\n',
      check: (d) => {
        assert.deepEqual(
          d.stages.map((s) => s.name),
          ['0', '1'],
        );
      },
    },
  ];
  for (const c of cases)
    void test(c.name, () => {
      c.check(parseDockerfile(c.text));
    });

  void test('shell-form CMD is not exec form', () => {
    assert.equal(execForm('node dist/main.js'), undefined);
    assert.deepEqual(execForm('["dist/main.js"]'), ['dist/main.js']);
  });
});
