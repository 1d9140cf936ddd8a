/**
 * Report objects (OpenReports, or wgpolicyk8s.io PolicyReports) on the API server: which
 * kinds are served (discovery), and the list / apply / delete the report sync needs.
 */
import { HttpMethod, type KubeConfig } from '@kubernetes/client-node';

import { FIELD_MANAGER } from '../api/cluster.ts';
import { apiVersionOf, MANAGED_BY_LABEL, type ReportApi, type ReportKind } from '../api/reports.ts';
import { requestJson } from './client.ts';
import { apiFailure } from './failure.ts';
import { isRecord } from './json.ts';

const groupPath = (api: ReportApi): string => `/apis/${apiVersionOf(api)}`;

/**
 * Which report kinds the API server serves of `api` (none when its CRDs are not installed):
 * a discovery document of the group version, or a 404 for it.
 */
export async function reportKindsServed(
  kc: KubeConfig,
  api: ReportApi,
  signal: AbortSignal,
): Promise<Set<ReportKind>> {
  let list: unknown;
  try {
    list = await requestJson(kc, HttpMethod.GET, groupPath(api), {}, signal);
  } catch (error) {
    if (apiFailure(error).status === 404) return new Set();
    throw error;
  }
  return servedReportKinds(api, list);
}

/** The report kinds an APIResourceList of the API's group version lists. */
export function servedReportKinds(api: ReportApi, list: unknown): Set<ReportKind> {
  const names = new Set(
    (isRecord(list) && Array.isArray(list.resources) ? list.resources : []).map((r: unknown) =>
      isRecord(r) ? r.name : undefined,
    ),
  );
  const out = new Set<ReportKind>();
  for (const kind of ['Report', 'ClusterReport'] as const)
    if (names.has(api.kinds[kind].resource)) out.add(kind);
  return out;
}

function path(
  api: ReportApi,
  kind: ReportKind,
  namespace: string | undefined,
  name?: string,
): string {
  const base =
    kind === 'Report' ? `${groupPath(api)}/namespaces/${namespace ?? ''}` : groupPath(api);
  return `${base}/${api.kinds[kind].resource}${name === undefined ? '' : `/${name}`}`;
}

interface ReportIdentity {
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/** Reads and writes the operator's reports of one API (implements the audit's ReportStore). */
export class KubeReportStore {
  readonly #kc: KubeConfig;
  readonly #api: ReportApi;

  constructor(kc: KubeConfig, api: ReportApi) {
    this.#kc = kc;
    this.#api = api;
  }

  served(signal: AbortSignal): Promise<Set<ReportKind>> {
    return reportKindsServed(this.#kc, this.#api, signal);
  }

  /** The operator's reports of one kind, in every namespace. */
  async list(kind: ReportKind, signal: AbortSignal): Promise<readonly unknown[]> {
    const items: unknown[] = [];
    let token: string | undefined;
    do {
      const page = await requestJson(
        this.#kc,
        HttpMethod.GET,
        `${groupPath(this.#api)}/${this.#api.kinds[kind].resource}`,
        { labelSelector: `${MANAGED_BY_LABEL}=${FIELD_MANAGER}`, limit: '500', continue: token },
        signal,
      );
      if (isRecord(page) && Array.isArray(page.items)) items.push(...(page.items as unknown[]));
      const meta = isRecord(page) && isRecord(page.metadata) ? page.metadata : {};
      token = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
    } while (token !== undefined);
    return items;
  }

  /** Server-side apply (field manager placement-operator, taking ownership of its fields). */
  async apply(report: ReportIdentity, signal: AbortSignal): Promise<void> {
    const { name, namespace } = report.metadata;
    await requestJson(
      this.#kc,
      HttpMethod.PATCH,
      path(this.#api, namespace === undefined ? 'ClusterReport' : 'Report', namespace, name),
      { fieldManager: FIELD_MANAGER, force: 'true' },
      signal,
      { text: JSON.stringify(report), contentType: 'application/apply-patch+yaml' },
    );
  }

  async remove(
    kind: ReportKind,
    namespace: string | undefined,
    name: string,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      await requestJson(
        this.#kc,
        HttpMethod.DELETE,
        path(this.#api, kind, namespace, name),
        {},
        signal,
      );
    } catch (error) {
      if (apiFailure(error).status !== 404) throw error;
    }
  }
}
