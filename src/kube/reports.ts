/**
 * OpenReports objects (`openreports.io/v1alpha1` Report and ClusterReport) on the API server:
 * whether they are served (discovery), and the list / apply / delete the report sync needs.
 */
import { HttpMethod, type KubeConfig } from '@kubernetes/client-node';

import { FIELD_MANAGER } from '../api/cluster.ts';
import {
  MANAGED_BY_LABEL,
  REPORT_RESOURCES,
  REPORTS_API_VERSION,
  type ReportKind,
} from '../api/reports.ts';
import { apiFailure, requestJson } from './client.ts';
import { isRecord } from './json.ts';

const GROUP_PATH = `/apis/${REPORTS_API_VERSION}`;

/**
 * Which report kinds the API server serves (empty when the CRDs are not installed): a
 * discovery document of openreports.io/v1alpha1, or a 404 for the group version.
 */
export async function reportKindsServed(
  kc: KubeConfig,
  signal: AbortSignal,
): Promise<Set<ReportKind>> {
  let list: unknown;
  try {
    list = await requestJson(kc, HttpMethod.GET, GROUP_PATH, {}, signal);
  } catch (error) {
    if (apiFailure(error).status === 404) return new Set();
    throw error;
  }
  return servedReportKinds(list);
}

/** The report kinds an APIResourceList of openreports.io/v1alpha1 lists. */
export function servedReportKinds(list: unknown): Set<ReportKind> {
  const names = new Set(
    (isRecord(list) && Array.isArray(list.resources) ? list.resources : []).map((r: unknown) =>
      isRecord(r) ? r.name : undefined,
    ),
  );
  const out = new Set<ReportKind>();
  for (const [kind, resource] of Object.entries(REPORT_RESOURCES))
    if (names.has(resource)) out.add(kind as ReportKind);
  return out;
}

function path(kind: ReportKind, namespace: string | undefined, name?: string): string {
  const base = kind === 'Report' ? `${GROUP_PATH}/namespaces/${namespace ?? ''}` : GROUP_PATH;
  return `${base}/${REPORT_RESOURCES[kind]}${name === undefined ? '' : `/${name}`}`;
}

interface ReportIdentity {
  readonly kind: ReportKind;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/** Reads and writes the operator's reports (implements the audit's ReportStore). */
export class KubeReportStore {
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  served(signal: AbortSignal): Promise<Set<ReportKind>> {
    return reportKindsServed(this.#kc, signal);
  }

  /** The operator's reports of one kind, in every namespace. */
  async list(kind: ReportKind, signal: AbortSignal): Promise<readonly unknown[]> {
    const items: unknown[] = [];
    let token: string | undefined;
    do {
      const page = await requestJson(
        this.#kc,
        HttpMethod.GET,
        `${GROUP_PATH}/${REPORT_RESOURCES[kind]}`,
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
    await requestJson(
      this.#kc,
      HttpMethod.PATCH,
      path(report.kind, report.metadata.namespace, report.metadata.name),
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
      await requestJson(this.#kc, HttpMethod.DELETE, path(kind, namespace, name), {}, signal);
    } catch (error) {
      if (apiFailure(error).status !== 404) throw error;
    }
  }
}
