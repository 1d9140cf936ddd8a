/** The OpenReports API the audit publishes to (`openreports.io/v1alpha1`), as far as the operator uses it. */

export const REPORTS_GROUP = 'openreports.io';
export const REPORTS_VERSION = 'v1alpha1';
export const REPORTS_API_VERSION = `${REPORTS_GROUP}/${REPORTS_VERSION}` as const;

/** The report kinds, by the resource that serves each. */
export const REPORT_RESOURCES = { Report: 'reports', ClusterReport: 'clusterreports' } as const;
export type ReportKind = keyof typeof REPORT_RESOURCES;

/** What every report the operator writes carries (value: the field manager), and what it lists its own reports by. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
