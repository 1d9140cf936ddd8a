// Runs the Dockerfile's stages without a Docker engine, then checks what the runtime image
// would hold. Each stage gets a directory standing for its root filesystem; WORKDIR, COPY
// (from the build context or --from another stage) and RUN (through bash, with Node 24
// from hack/node first on PATH, standing in for the node base image) act on it. The base
// images' own files are not there: what is checked is exactly what the Dockerfile adds.
//
//   hack/node hack/image/simulate.ts <context dir> <work dir>
//
// Called by hack/image/check.sh, which makes the context a clean copy of the repository.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

import {
  execForm,
  keyValues,
  parseArg,
  parseCopy,
  parseDockerfile,
  substitute,
  type Stage,
} from './dockerfile.ts';

interface StageState {
  readonly root: string;
  workdir: string;
  readonly env: Record<string, string>;
  readonly args: Record<string, string>;
}

const [contextDir, workDir] = process.argv.slice(2);
if (contextDir === undefined || workDir === undefined) {
  process.stderr.write('usage: simulate.ts <context dir> <work dir>\n');
  process.exit(2);
}

const dockerfile = parseDockerfile(readFileSync(join(contextDir, 'Dockerfile'), 'utf8'));
const states = new Map<string, StageState>();
const nodeBin = dirname(process.execPath);
const say = (text: string): void => void process.stderr.write(`>> ${text}\n`);

/** A path inside the stage's root. */
const inRoot = (state: StageState, path: string): string =>
  join(state.root, path.startsWith('/') ? path : join(state.workdir, path));

function copy(state: StageState, args: string): void {
  const c = parseCopy(substitute(args, state.args));
  const sourceRoot = c.from === undefined ? (contextDir ?? '') : states.get(c.from)?.root;
  if (sourceRoot === undefined)
    throw new Error(`COPY --from=${c.from ?? ''}: no such stage before this one`);
  const dest = inRoot(state, c.dest);
  const intoDir = c.dest.endsWith('/') || c.sources.length > 1;
  for (const source of c.sources) {
    const from = join(sourceRoot, source);
    if (!existsSync(from))
      throw new Error(
        `COPY ${source}: not in ${c.from === undefined ? 'the build context' : `stage ${c.from}`}`,
      );
    if (statSync(from).isDirectory()) {
      // Docker copies a directory's contents, not the directory itself.
      mkdirSync(dest, { recursive: true });
      cpSync(from, dest, { recursive: true });
    } else {
      const target = intoDir ? join(dest, basename(source)) : dest;
      mkdirSync(dirname(target), { recursive: true });
      cpSync(from, target);
    }
  }
}

function runShell(state: StageState, command: string, line: number): void {
  const cwd = join(state.root, state.workdir);
  mkdirSync(cwd, { recursive: true });
  say(`RUN ${command}   (Dockerfile:${String(line)}, in ${relative(workDir ?? '', cwd)})`);
  const ran = spawnSync('bash', ['-euo', 'pipefail', '-c', command], {
    cwd,
    stdio: 'inherit',
    env: { ...process.env, ...state.env, PATH: `${nodeBin}:${process.env['PATH'] ?? ''}` },
  });
  if (ran.status !== 0) {
    throw new Error(
      `RUN ${command} (Dockerfile:${String(line)}) failed with exit ${String(ran.status)}`,
    );
  }
}

function runStage(stage: Stage, index: number): StageState {
  const state: StageState = {
    root: join(workDir ?? '', 'stages', `${String(index)}-${stage.name}`),
    workdir: '/',
    env: {},
    args: {},
  };
  mkdirSync(state.root, { recursive: true });
  say(`stage ${stage.name} (FROM ${stage.image})`);
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case 'ARG': {
        const [name, value] = parseArg(ins.args);
        state.args[name] = value ?? dockerfile.globalArgs[name] ?? '';
        break;
      }
      case 'ENV':
        Object.assign(state.env, keyValues(substitute(ins.args, { ...state.args, ...state.env })));
        break;
      case 'WORKDIR': {
        const dir = substitute(ins.args.trim(), state.args);
        state.workdir = dir.startsWith('/') ? dir : join(state.workdir, dir);
        mkdirSync(join(state.root, state.workdir), { recursive: true });
        break;
      }
      case 'COPY':
        copy(state, ins.args);
        break;
      case 'RUN': {
        if (execForm(ins.args) !== undefined)
          throw new Error(`Dockerfile:${String(ins.line)}: exec-form RUN is not simulated`);
        runShell(state, substitute(ins.args, { ...state.args, ...state.env }), ins.line);
        break;
      }
      case 'ADD':
        throw new Error(`Dockerfile:${String(ins.line)}: ADD is not simulated (use COPY)`);
      default:
        // LABEL, USER, EXPOSE, CMD, ENTRYPOINT: metadata; test/unit/dockerfile.test.ts checks them.
        break;
    }
  }
  states.set(stage.name, state);
  states.set(String(index), state);
  return state;
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    return entry.isDirectory() ? filesUnder(join(dir, entry.name), rel) : [rel];
  });
}

let last: StageState | undefined;
for (const [index, stage] of dockerfile.stages.entries()) last = runStage(stage, index);
if (last === undefined) throw new Error('the Dockerfile has no stage');

// ---------------------------------------------------------------------------------------
// What the runtime image holds.

const app = join(last.root, last.workdir);
const failures: string[] = [];
const notes: string[] = [];
const check = (ok: boolean, message: string): void => {
  if (!ok) failures.push(message);
};

const top = readdirSync(app).sort();
say(`runtime ${last.workdir}: ${top.join(', ')}`);
check(
  JSON.stringify(top) === JSON.stringify(['crds', 'dist', 'node_modules', 'package.json']),
  `runtime ${last.workdir} holds exactly crds, dist, node_modules, package.json; it holds ${top.join(', ')}`,
);
const others = readdirSync(last.root).filter(
  (entry) => join(last.root, entry) !== app && !app.startsWith(join(last.root, entry)),
);
check(others.length === 0, `runtime root has files outside ${last.workdir}: ${others.join(', ')}`);

const pkg = JSON.parse(readFileSync(join(contextDir, 'package.json'), 'utf8')) as {
  type?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const runtimePkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { type?: string };
check(runtimePkg.type === 'module', 'package.json says "type": "module" (dist/ is ES modules)');

const distFiles = filesUnder(join(app, 'dist'));
check(distFiles.length > 0, 'dist/ is not empty');
check(
  distFiles.every((f) => /\.(js|js\.map)$/.test(f)),
  `dist/ holds only .js and .js.map: ${distFiles.filter((f) => !/\.(js|js\.map)$/.test(f)).join(', ')}`,
);
const mainJs = join(app, 'dist', 'main.js');
const mainTsExists = existsSync(join(contextDir, 'src', 'main.ts'));
if (mainTsExists) check(existsSync(mainJs), 'dist/main.js exists (the image CMD)');
else
  notes.push(
    'SKIPPED: dist/main.js (the image CMD) is not checked: src/main.ts does not exist yet',
  );

const modules = join(app, 'node_modules');
// npm marks in package-lock.json every package that only devDependencies reach ("dev": true).
const lock = JSON.parse(readFileSync(join(contextDir, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean }>;
};
const hiddenLock = join(modules, '.package-lock.json');
check(existsSync(hiddenLock), 'node_modules comes from npm ci (node_modules/.package-lock.json)');
const installed = existsSync(hiddenLock)
  ? Object.keys(
      (JSON.parse(readFileSync(hiddenLock, 'utf8')) as { packages: Record<string, unknown> })
        .packages,
    )
  : [];
const devOnly = installed.filter((key) => lock.packages[key]?.dev === true);
check(
  devOnly.length === 0,
  `packages that only devDependencies need are installed: ${devOnly.join(', ')}`,
);
for (const dev of Object.keys(pkg.devDependencies ?? {})) {
  if (!existsSync(join(modules, dev))) continue;
  // Present only because a production dependency needs it too (e.g. @types/node, which
  // @kubernetes/client-node lists under dependencies).
  const key = `node_modules/${dev}`;
  check(lock.packages[key]?.dev !== true, `devDependency ${dev} is not in node_modules`);
  notes.push(
    `note: ${dev} (a devDependency) is installed because a production dependency depends on it`,
  );
}
for (const tool of [
  'typescript',
  'eslint',
  'prettier',
  'typescript-eslint',
  'fast-check',
  '.bin/tsc',
  '.bin/eslint',
]) {
  check(!existsSync(join(modules, tool)), `${tool} is not in node_modules`);
}
for (const dep of Object.keys(pkg.dependencies ?? {})) {
  check(existsSync(join(modules, dep, 'package.json')), `dependency ${dep} is in node_modules`);
}

// Every package that dist/ imports is installed (a devDependency used at run time would
// be missing here, and nowhere else before the pod starts).
const imported = new Set<string>();
for (const file of distFiles.filter((f) => f.endsWith('.js'))) {
  const source = readFileSync(join(app, 'dist', file), 'utf8');
  for (const m of source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
    const spec = m[1] ?? '';
    if (spec.startsWith('.') || spec.startsWith('node:') || spec.startsWith('/')) continue;
    imported.add(
      spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec),
    );
  }
}
for (const name of imported) {
  check(
    existsSync(join(modules, name, 'package.json')),
    `dist/ imports ${name}, which the runtime node_modules lacks`,
  );
}

for (const file of readdirSync(join(contextDir, 'crds'))) {
  const shipped = join(app, 'crds', file);
  check(
    existsSync(shipped) &&
      readFileSync(shipped).equals(readFileSync(join(contextDir, 'crds', file))),
    `crds/${file} is in the image as in the repository`,
  );
}
for (const forbidden of ['src', 'test', 'bench', 'hack', 'tsconfig.json', '.git', 'charts']) {
  check(!existsSync(join(app, forbidden)), `${forbidden} is not in the image`);
}

// Start the entry point as the image would (node dist/main.js), with only the runtime files:
// --help must load every module and print the usage, without a cluster.
if (existsSync(mainJs)) {
  const ran = spawnSync(process.execPath, ['dist/main.js', '--help'], {
    cwd: app,
    encoding: 'utf8',
    env: { PATH: nodeBin, NODE_ENV: 'production' },
    timeout: 60_000,
  });
  check(
    ran.status === 0 && /Usage/.test(ran.stdout),
    `node dist/main.js --help in the runtime files: exit ${String(ran.status)}\n${ran.stdout}${ran.stderr}`,
  );
}

const count = filesUnder(app).length;
for (const note of notes) process.stdout.write(`${note}\n`);
if (failures.length > 0) {
  process.stdout.write(
    `image check FAILED (${String(failures.length)}):\n${failures.map((f) => `  - ${f}`).join('\n')}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `image check passed: ${String(count)} files in ${last.workdir} (dist ${String(distFiles.length)}, ` +
    `packages imported by dist: ${[...imported].sort().join(', ')})\n`,
);
