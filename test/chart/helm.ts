// The Helm chart as the tests see it: the pinned helm binary (built from the Go module
// proxy by hack/tools/build-helm.sh when it is not cached), `helm template` with values,
// and the rendered manifests parsed into plain objects.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

import { REPO_ROOT } from '../cluster/paths.ts';

export const CHART_DIR = join(REPO_ROOT, 'charts', 'placement-operator');
export const BUILD_HELM = join(REPO_ROOT, 'hack', 'tools', 'build-helm.sh');
export const ALL_FEATURES = join(REPO_ROOT, 'test', 'fixtures', 'chart', 'all-features.yaml');
/** A cold build of helm on 2 cores takes about 12 minutes (most of it downloading modules). */
export const HELM_BUILD_TIMEOUT_MS = 30 * 60_000;

export interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let cachedHelm: string | undefined;

/**
 * Path of the pinned helm. Always asks the build script, which answers at once when the
 * binary is cached and current, and builds it (minutes) when it is not.
 */
export function helmBinary(): string {
  if (cachedHelm !== undefined) return cachedHelm;
  const built = spawnSync('bash', [BUILD_HELM], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: HELM_BUILD_TIMEOUT_MS,
  });
  if (built.status !== 0) {
    throw new Error(`${BUILD_HELM} failed (exit ${String(built.status)}); see its output above`);
  }
  cachedHelm = built.stdout.trim().split('\n').at(-1) ?? '';
  return cachedHelm;
}

/** Runs helm with the given arguments; never throws on a non-zero exit. */
export function helm(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Ran {
  const ran = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  if (ran.error !== undefined) throw ran.error;
  return { status: ran.status, stdout: ran.stdout, stderr: ran.stderr };
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
  readonly valuesFiles?: readonly string[];
  /** `--set` pairs, as `key=value`. */
  readonly set?: readonly string[];
  readonly includeCrds?: boolean;
}

export const DEFAULT_RELEASE = 'po';
export const DEFAULT_NAMESPACE = 'placement-system';

/** The helm template command line for these options. */
export function templateArgs(options: RenderOptions = {}): string[] {
  return [
    'template',
    options.release ?? DEFAULT_RELEASE,
    CHART_DIR,
    '--namespace',
    options.namespace ?? DEFAULT_NAMESPACE,
    ...(options.includeCrds === true ? ['--include-crds'] : []),
    ...(options.valuesFiles ?? []).flatMap((file) => ['--values', file]),
    ...(options.set ?? []).flatMap((pair) => ['--set', pair]),
  ];
}

/** `helm template`, unparsed: for cases that expect a failure. */
export function tryRender(options: RenderOptions = {}): Ran {
  return helm(templateArgs(options));
}

/** A Kubernetes object as rendered: the fields every object has, the rest unchecked. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

/** Parses multi-document YAML into objects, dropping empty documents; throws on bad YAML. */
export function parseManifests(text: string, source: string): Manifest[] {
  const objects: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) {
      throw new Error(`${source}: a document is not a Kubernetes object: ${JSON.stringify(value)}`);
    }
    objects.push(value);
  }
  return objects;
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const metadata = v['metadata'];
  return (
    typeof v['apiVersion'] === 'string' &&
    typeof v['kind'] === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>)['name'] === 'string'
  );
}

/** `helm template` parsed; throws with helm's message when rendering fails. */
export function render(options: RenderOptions = {}): Manifest[] {
  const ran = tryRender(options);
  if (ran.status !== 0) {
    throw new Error(`helm ${templateArgs(options).join(' ')} failed: ${ran.stderr.trim()}`);
  }
  return parseManifests(ran.stdout, 'helm template');
}

/** The single object of a kind (and name suffix, when several share the kind). */
export function only(objects: readonly Manifest[], kind: string, nameSuffix = ''): Manifest {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1) {
    const names = objects.filter((o) => o.kind === kind).map((o) => o.metadata.name);
    throw new Error(
      `expected one ${kind}${nameSuffix === '' ? '' : ` named *${nameSuffix}`}, found ${String(found.length)} (${kind}s: ${names.join(', ') || 'none'})`,
    );
  }
  const [object] = found;
  if (object === undefined) throw new Error(`no ${kind}`);
  return object;
}
