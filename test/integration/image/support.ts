// The operator image, built for real by hack/image/build.sh, and testcontainers pointed at
// the engine that built it. npm test builds it first and exports PLACEMENT_IMAGE and
// DOCKER_HOST; a file run alone builds it here (the podman layers are cached, so a rebuild
// of an unchanged tree takes seconds). With Docker instead: build the Dockerfile, set
// PLACEMENT_IMAGE to its tag and leave DOCKER_HOST to Docker (see the README).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';

import { GenericContainer, getContainerRuntimeClient } from 'testcontainers';

const run = promisify(execFile);
const BUILD = join(import.meta.dirname, '..', '..', '..', 'hack', 'image', 'build.sh');
/** A cold build (debootstrap, the base images, npm ci twice) takes minutes. */
export const BUILD_TIMEOUT_MS = 20 * 60_000;

let built: Promise<string> | undefined;

/** The image's name, built once per process when npm test did not build it already. */
export function operatorImage(): Promise<string> {
  built ??= locate();
  return built;
}

async function locate(): Promise<string> {
  let image = process.env['PLACEMENT_IMAGE'];
  if (image === undefined || image === '') {
    const { stdout } = await run('bash', [BUILD], { maxBuffer: 16 * 1024 * 1024 });
    const vars = new Map(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    );
    image = vars.get('PLACEMENT_IMAGE');
    const dockerHost = vars.get('DOCKER_HOST');
    if (image === undefined || dockerHost === undefined)
      throw new Error(`hack/image/build.sh printed no image and socket: ${stdout}`);
    process.env['DOCKER_HOST'] = dockerHost;
  }
  // Ryuk, testcontainers' reaper, is an image from a registry; the tests remove their own.
  process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';
  return image;
}

/**
 * A container run as the chart runs the pod: read-only root, a user, capabilities and
 * privilege escalation as its securityContext says, host network (the control plane
 * listens on the host's loopback).
 */
export class PodLikeContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.withNetworkMode('host');
  }

  withReadOnlyRootFilesystem(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }
}

/** SIGKILL, as a node failure or an OOM kill would end the process: no cleanup runs. */
export async function killContainer(id: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  await client.container.getById(id).kill({ signal: 'SIGKILL' });
}

/** The paths and owners of a container's whole filesystem, from its export (a tar). */
export async function containerFiles(
  id: string,
): Promise<{ path: string; mode: string; owner: string }[]> {
  const client = await getContainerRuntimeClient();
  const archive = await client.container.getById(id).export();
  const listing = await new Promise<string>((resolve, reject) => {
    const tar = execFile(
      'tar',
      ['-tvf', '-', '--numeric-owner'],
      { maxBuffer: 256 * 1024 * 1024 },
      (error, stdout) => {
        if (error) reject(new Error(`tar -t of the export of ${id}: ${error.message}`));
        else resolve(stdout);
      },
    );
    if (tar.stdin === null) throw new Error('tar has no stdin');
    Readable.from(archive).pipe(tar.stdin);
  });
  return listing
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      // -rw-r--r-- 0/0  1234 2026-01-01 00:00 ./app/package.json[ -> target]
      const [mode = '', owner = '', , , , ...rest] = line.split(/\s+/);
      const name = rest.join(' ').replace(/ -> .*$/, '');
      return { path: `/${name.replace(/^\.?\//, '')}`.replace(/\/$/, ''), mode, owner };
    });
}
