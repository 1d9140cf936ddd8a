/**
 * The report APIs the audit publishes to, as far as the operator uses them: OpenReports
 * (`openreports.io/v1alpha1` Report / ClusterReport) and, for older consumers, the policy
 * working group's `wgpolicyk8s.io/v1alpha2` PolicyReport / ClusterPolicyReport, whose
 * results have the same fields.
 */

/** A report's scope, by its OpenReports kind: the namespaced report or the cluster one. */
export type ReportKind = 'Report' | 'ClusterReport';

export interface ReportApi {
  readonly group: string;
  readonly version: string;
  /** Each scope's kind and resource in this API. */
  readonly kinds: Readonly<
    Record<ReportKind, { readonly kind: string; readonly resource: string }>
  >;
  /** Whether a report has a top-level `source` (wgpolicyk8s.io v1alpha2 has it per result only). */
  readonly reportSource: boolean;
}

/** A kind and its resource, the kind's lower-case plural as every report API spells it. */
const kindOf = (kind: string) => ({ kind, resource: `${kind.toLowerCase()}s` });

export const OPENREPORTS: ReportApi = {
  group: 'openreports.io',
  version: 'v1alpha1',
  kinds: { Report: kindOf('Report'), ClusterReport: kindOf('ClusterReport') },
  reportSource: true,
};

export const POLICY_REPORTS: ReportApi = {
  group: 'wgpolicyk8s.io',
  version: 'v1alpha2',
  kinds: { Report: kindOf('PolicyReport'), ClusterReport: kindOf('ClusterPolicyReport') },
  reportSource: false,
};

export const apiVersionOf = (api: ReportApi): string => `${api.group}/${api.version}`;

/** What every report the operator writes carries (value: the field manager), and what it lists its own reports by. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
