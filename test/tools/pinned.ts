// The pinned Go tools the tests drive, built from the Go module proxy by
// hack/tools/build-*.sh when they are not cached (see hack/tools/go-tool.sh).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { REPO_ROOT } from '../cluster/paths.ts';

/** A cold build of Prometheus on 2 cores, most of it downloading modules, takes minutes. */
export const TOOL_BUILD_TIMEOUT_MS = 40 * 60_000;

const built = new Map<string, string>();

/**
 * The directory a build script prints after building (or finding current) its tools.
 * Always asks the script, which answers at once when the cache is current.
 */
export function toolDir(script: string): string {
  const known = built.get(script);
  if (known !== undefined) return known;
  const path = join(REPO_ROOT, 'hack', 'tools', script);
  const ran = spawnSync('bash', [path], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: TOOL_BUILD_TIMEOUT_MS,
  });
  if (ran.status !== 0) {
    throw new Error(`${path} failed (exit ${String(ran.status)}); see its output above`);
  }
  const dir = ran.stdout.trim().split('\n').at(-1) ?? '';
  built.set(script, dir);
  return dir;
}

/** The pinned promtool (PROMTOOL overrides it). */
export const promtoolBinary = (): string =>
  process.env['PROMTOOL'] ?? join(toolDir('build-prometheus.sh'), 'promtool');

/** The pinned Prometheus server. */
export const prometheusBinary = (): string => join(toolDir('build-prometheus.sh'), 'prometheus');

/** Argo CD's Lua runtime for health checks (hack/tools/argocd-lua). */
export const argocdLuaBinary = (): string => join(toolDir('build-argocd-lua.sh'), 'argocd-lua');

/** The pinned report CRD files of one API, as upstream publishes them (hack/tools/fetch-report-crds.sh). */
export const reportCrdFiles = (api: 'openreports.io' | 'wgpolicyk8s.io'): string[] => {
  const dir = toolDir('fetch-report-crds.sh');
  const files =
    api === 'openreports.io'
      ? ['openreports.io_reports.yaml', 'openreports.io_clusterreports.yaml']
      : ['wgpolicyk8s.io_policyreports.yaml', 'wgpolicyk8s.io_clusterpolicyreports.yaml'];
  return files.map((f) => join(dir, f));
};
