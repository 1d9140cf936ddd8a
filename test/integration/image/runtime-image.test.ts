// Not a clusterTest: it inspects the built image and needs no cluster.
// The runtime image itself, as hack/image/build.sh built it from the Dockerfile: its
// configuration, every file in it (from the container's export), and what runs in it.
//
//   hack/node --test test/integration/image/runtime-image.test.ts
//
// The app holds package.json, dist/, crds/ and the production node_modules only, all owned
// by root; the base holds node and its libraries, no shell and no package manager; node
// runs as 65532 on a read-only root with every capability dropped.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ImageName, getContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';

import { BUILD_TIMEOUT_MS, PodLikeContainer, containerFiles, operatorImage } from './support.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
}

const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockPackage>;
};
const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const installable = Object.entries(lock.packages).filter(([path]) =>
  path.startsWith('node_modules/'),
);
/** Every production package npm ci --omit=dev must install, by its node_modules path. */
const PRODUCTION = installable
  .filter(([, p]) => p.dev !== true && p.optional !== true && p.devOptional !== true)
  .map(([path]) => path);
/** What it may install besides (optional packages for this platform). */
const ALLOWED = new Set(installable.filter(([, p]) => p.dev !== true).map(([path]) => path));

/** A package directory: node_modules/[@scope/]name, nested any number of times. */
const PACKAGE_JSON = /^\/app\/((?:node_modules\/(?:@[^/]+\/)?[^/]+\/?)+)package\.json$/;
const SHELLS_AND_PACKAGE_MANAGERS = ['sh', 'bash', 'dash', 'ash', 'busybox', 'apt', 'apt-get'];
const PACKAGE_TOOLS = ['dpkg', 'npm', 'npx', 'yarn', 'corepack'];

void test('the runtime image', { timeout: BUILD_TIMEOUT_MS + 120_000 }, async (t) => {
  const image = await operatorImage();
  const client = await getContainerRuntimeClient();

  await t.test('runs node as 65532 from /app, dist/main.js as its command', async () => {
    const config = (await client.image.inspect(ImageName.fromString(image))).Config;
    assert.equal(config.User, '65532:65532');
    assert.equal(config.WorkingDir, '/app');
    assert.deepEqual(config.Cmd, ['dist/main.js']);
    assert.equal(config.Entrypoint?.length, 1);
    assert.match(config.Entrypoint[0] ?? '', /\/node$/);
  });

  // Started as the chart runs the pod, idle, so its files can be listed and node asked.
  const container: StartedTestContainer = await new PodLikeContainer(image)
    .withReadOnlyRootFilesystem()
    .withUser('65532:65532')
    .withDroppedCapabilities('ALL')
    .withSecurityOpt('no-new-privileges')
    .withCommand(['-e', 'setInterval(() => undefined, 1 << 30)'])
    .start();
  t.after(() => container.stop({ timeout: 1_000 }));
  const files = await containerFiles(container.getId());
  const app = files.filter((f) => f.path.startsWith('/app/'));

  await t.test('/app holds package.json, dist/, crds/ and node_modules/ only', () => {
    const top = [...new Set(app.map((f) => f.path.split('/')[2]))].sort();
    assert.deepEqual(top, ['crds', 'dist', 'node_modules', 'package.json']);
    const paths = new Set(app.map((f) => f.path));
    assert.ok(paths.has('/app/dist/main.js'), 'the compiled entry point');
    for (const crd of readdirSync(join(REPO, 'crds')))
      assert.ok(paths.has(`/app/crds/${crd}`), `crds/${crd}`);
    const sources = app.filter(
      (f) => !f.path.startsWith('/app/node_modules/') && /\.ts$/.test(f.path),
    );
    assert.deepEqual(sources, [], 'no TypeScript sources beside the compiled code');
    const tooling = app.filter((f) =>
      /^\/app\/(src|test|bench|hack|docs|charts|examples|\.git)(\/|$)/.test(f.path),
    );
    assert.deepEqual(tooling, []);
  });

  await t.test('node_modules is the production tree of package-lock.json', () => {
    const installed = app
      .map((f) => PACKAGE_JSON.exec(f.path)?.[1]?.replace(/\/$/, ''))
      .filter((p): p is string => p !== undefined);
    assert.deepEqual(
      installed.filter((p) => !ALLOWED.has(p)),
      [],
      'installed but not production (devDependencies or their dependencies)',
    );
    const present = new Set(installed);
    assert.deepEqual(
      PRODUCTION.filter((p) => !present.has(p)),
      [],
      'production packages missing',
    );
    // A devDependency that a production package also needs (@types/node, through the
    // Kubernetes client) is production in the lock; every other one must be absent.
    const devOnly = Object.keys(manifest.devDependencies).filter(
      (dev) => lock.packages[`node_modules/${dev}`]?.dev === true,
    );
    assert.ok(devOnly.includes('typescript') && devOnly.includes('eslint'), devOnly.join(' '));
    for (const dev of devOnly)
      assert.ok(!present.has(`node_modules/${dev}`), `devDependency ${dev} is in the image`);
    for (const dep of Object.keys(manifest.dependencies))
      assert.ok(present.has(`node_modules/${dep}`), `dependency ${dep} is missing`);
  });

  await t.test('the app is owned by root and not writable by the runtime user', () => {
    const writable = app.filter(
      (f) => f.owner !== '0/0' || (f.mode[8] === 'w' && !f.mode.startsWith('l')),
    );
    assert.deepEqual(writable.slice(0, 10), []);
  });

  await t.test('the base has no shell and no package manager', async () => {
    const names = [...SHELLS_AND_PACKAGE_MANAGERS, ...PACKAGE_TOOLS];
    // Programs, not directories (a distroless base keeps /var/lib/dpkg for scanners).
    const found = files.filter(
      (f) => !f.mode.startsWith('d') && names.includes(f.path.split('/').pop() ?? ''),
    );
    assert.deepEqual(found, []);
    const shell = await container.exec(['/bin/sh', '-c', 'true']).then(
      (r) => r.exitCode,
      () => 127,
    );
    assert.notEqual(shell, 0, '/bin/sh ran');
  });

  await t.test('node runs as 65532:65532 on a read-only root', async () => {
    const node = files.find((f) => /\/node$/.test(f.path) && f.mode.startsWith('-'));
    assert.ok(node !== undefined, 'a node binary');
    const script =
      "const fs = require('node:fs'); let ro = false;" +
      "try { fs.writeFileSync('/app/x', ''); } catch (e) { ro = e.code === 'EROFS'; }" +
      'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), ro }))';
    const r = await container.exec([node.path, '-e', script]);
    assert.equal(r.exitCode, 0, r.output);
    assert.deepEqual(JSON.parse(r.stdout) as unknown, { uid: 65532, gid: 65532, ro: true });
  });
});
