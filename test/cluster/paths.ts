// Where the pinned control-plane binaries live. hack/control-plane/versions.sh
// is the single source of the pins; it is read here rather than copied so a
// version bump cannot leave the tests pointing at a stale cache directory.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_SCRIPT = join(REPO_ROOT, 'hack', 'control-plane', 'build.sh');
export const STAGES_DIR = join(REPO_ROOT, 'test', 'cluster', 'kwok-stages');

export const BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
] as const;
export type Binary = (typeof BINARIES)[number];

export interface Versions {
  kubernetes: string;
  etcd: string;
  kwok: string;
}

export function readVersions(): Versions {
  const text = readFileSync(join(REPO_ROOT, 'hack', 'control-plane', 'versions.sh'), 'utf8');
  const pin = (name: string): string => {
    const match = new RegExp(`^${name}=(\\S+)`, 'm').exec(text);
    if (match?.[1] === undefined) throw new Error(`versions.sh has no ${name}`);
    return match[1];
  };
  return { kubernetes: pin('K8S_VERSION'), etcd: pin('ETCD_VERSION'), kwok: pin('KWOK_VERSION') };
}

/** Same layout as build.sh: ${PLACEMENT_CACHE:-~/.cache/placement-operator}/k8s-<version>/bin. */
export function defaultBinDir(): string {
  const cache = process.env['PLACEMENT_CACHE'] ?? join(homedir(), '.cache', 'placement-operator');
  return join(cache, `k8s-${readVersions().kubernetes}`, 'bin');
}

export function missingBinaries(binDir: string): Binary[] {
  return BINARIES.filter((name) => !existsSync(join(binDir, name)));
}
