/**
 * The audit's findings as OpenReports objects (`openreports.io/v1alpha1`), as a pure function:
 * one Report per namespace and policy that has failing pods there, one ClusterReport per
 * namespaced policy whose terms are broken outside its namespace (those findings are the
 * platform's to see, not the other namespace's). Only failures are listed: a passing pod
 * adds bytes to etcd and a write on every scale, and tells nobody anything. See
 * docs/adr/0005-openreports.md for why this shape. The same reports, with their kinds'
 * names, go to wgpolicyk8s.io PolicyReports for older consumers.
 */
import { createHash } from 'node:crypto';

import { FIELD_MANAGER } from '../api/cluster.ts';
import { GROUP, VERSION, type PolicyRef } from '../api/policy.ts';
import {
  apiVersionOf,
  MANAGED_BY_LABEL as MANAGED_BY,
  OPENREPORTS,
  type ReportApi,
  type ReportKind,
} from '../api/reports.ts';
import type { FindingReach, Violation } from '../engine/index.ts';
import { NAMED_EXCESS } from '../engine/topology-spread.ts';

/** The policy a report is about (`NAME`, `NS.NAME`, or a hash when that is no label value). */
export const POLICY_LABEL = 'placement.dev/policy';
/** `source` of every report: who produced it. */
export const REPORT_SOURCE = FIELD_MANAGER;
/** What a report lists for the rules a pod carries itself (no policy put them there). */
export const POD_RULES = 'pod';

/**
 * A violation as reports need it. The engine's Violation fits: its domain, how far over,
 * excess pods and conflicting pod go to the result's `properties`; `properties` adds what
 * else a finding knows.
 */
export interface ReportedViolation extends Omit<Violation, 'rule' | 'source'> {
  /** Any rule name: reports list every rule kind the audit judges. */
  readonly rule: string;
  readonly source: string;
  readonly properties?: Readonly<Record<string, string | undefined>>;
}

export interface ReportFinding {
  readonly violation: ReportedViolation;
  readonly reach: FindingReach;
}

/** A policy as a report's owner needs it (a CompiledPolicy is one). */
export interface ReportPolicy {
  readonly ref: PolicyRef;
  readonly source: { readonly metadata: { readonly uid?: string | undefined } };
}

export interface ReportResource {
  readonly apiVersion: 'v1';
  readonly kind: 'Pod';
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface ReportResult {
  readonly source: string;
  readonly policy: string;
  readonly rule: string;
  readonly result: 'fail';
  readonly severity: 'high' | 'medium';
  readonly scored: true;
  readonly message: string;
  readonly resources: readonly ReportResource[];
  readonly properties: Readonly<Record<string, string>>;
}

export interface ReportSummary {
  readonly pass: number;
  readonly fail: number;
  readonly warn: number;
  readonly error: number;
  readonly skip: number;
}

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

/** A Report or ClusterReport (or PolicyReport...) as the operator applies it (server-side apply body). */
export interface ReportObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly OwnerReference[];
  };
  /** Absent where the API has none (wgpolicyk8s.io). */
  readonly source?: string;
  readonly summary: ReportSummary;
  readonly results: readonly ReportResult[];
}

/** `Report/NS/NAME` or `ClusterReport/NAME` (by scope, whatever the API's kinds): one report's identity. */
export const reportKey = (metadata: { name: string; namespace?: string | undefined }): string =>
  metadata.namespace === undefined
    ? `ClusterReport/${metadata.name}`
    : `Report/${metadata.namespace}/${metadata.name}`;

const MAX_NAME = 253;

/**
 * The report's name for a policy: `placement-pp-NAME` (a PlacementPolicy, in its namespace),
 * `placement-cpp-NAME` (a ClusterPlacementPolicy, in each namespace it finds pods in),
 * `placement-pod-rules` (pods' own rules), and for a namespaced policy's findings elsewhere
 * (a ClusterReport) `placement-pp-NS.NAME`. Too long a name is cut and given a hash.
 */
export function reportName(source: string, kind: ReportKind): string {
  const parts = source.split('/');
  let name: string;
  if (source === POD_RULES) name = 'placement-pod-rules';
  else if (parts[0] === 'PlacementPolicy')
    name =
      kind === 'Report'
        ? `placement-pp-${parts[2] ?? ''}`
        : `placement-pp-${parts[1] ?? ''}.${parts[2] ?? ''}`;
  else name = `placement-cpp-${parts[1] ?? ''}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_NAME - 11)}-${hash}`;
}

/** Label values are at most 63 characters of [-A-Za-z0-9_.]: the policy name if it fits, a hash if not. */
function policyLabel(source: string): string {
  const value = source.split('/').slice(1).join('.') || source;
  return value.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value)
    ? value
    : createHash('sha256').update(source).digest('hex').slice(0, 40);
}

function ownerOf(source: string, uid: string | undefined): OwnerReference[] | undefined {
  if (source === POD_RULES || uid === undefined) return undefined;
  const [kind = '', ...rest] = source.split('/');
  return [{ apiVersion: `${GROUP}/${VERSION}`, kind, name: rest.at(-1) ?? '', uid }];
}

/** A finding as one result: the pod, the rule, and where it stands. */
export function reportResult(
  f: ReportFinding,
  podUid: (pod: string) => string | undefined,
): ReportResult {
  const v = f.violation;
  const [namespace = '', name = ''] = v.pod.split('/');
  const uid = podUid(v.pod);
  const properties: Record<string, string> = {
    node: v.node,
    term: String(v.term),
    ...findingProperties(v),
  };
  for (const [k, value] of Object.entries(v.properties ?? {}))
    if (value !== undefined) properties[k] = value;
  return {
    source: REPORT_SOURCE,
    policy: v.source,
    rule: v.rule,
    result: 'fail',
    // The operator acts on what its policy targets (eviction, if asked); the rest is shown.
    severity: f.reach === 'act' ? 'high' : 'medium',
    scored: true,
    message: v.message,
    resources: [
      { apiVersion: 'v1', kind: 'Pod', namespace, name, ...(uid === undefined ? {} : { uid }) },
    ],
    properties,
  };
}

/**
 * Where a finding stands beyond its node: the domain (`key=value`), how many pods it is over
 * (topologySpread), and the pods it conflicts with: the pod whose anti-affinity selects this
 * one, or the domain's other excess pods (the first NAMED_EXCESS, then how many more).
 * Only what the pods' placement decides, so an unchanged cluster gives unchanged reports.
 */
function findingProperties(v: ReportedViolation): Record<string, string> {
  const out: Record<string, string> = {};
  if (v.domain !== undefined) out['domain'] = v.domain;
  if (v.over !== undefined) out['over'] = String(v.over);
  if (v.conflictingPod !== undefined) out['conflictingPod'] = v.conflictingPod;
  const others = (v.excess ?? []).filter((p) => p !== v.pod);
  if (others.length > 0) {
    const more = others.length - NAMED_EXCESS;
    out['conflictingPods'] =
      others.slice(0, NAMED_EXCESS).join(',') + (more > 0 ? ` and ${more} more` : '');
  }
  return out;
}

const byPodRule = (a: ReportResult, b: ReportResult): number => {
  const ka = `${a.resources[0]?.namespace ?? ''}/${a.resources[0]?.name ?? ''}|${a.rule}|${a.properties['term'] ?? ''}`;
  const kb = `${b.resources[0]?.namespace ?? ''}/${b.resources[0]?.name ?? ''}|${b.rule}|${b.properties['term'] ?? ''}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/**
 * The reports a pass's findings call for, by reportKey, each with its results in a stable
 * order (so that the same findings give the same object). A policy with no failing pod in
 * a namespace has no report there; `kinds` leaves out the kinds the API server lacks.
 */
export function desiredReports(input: {
  readonly findings: readonly ReportFinding[];
  readonly policies: readonly ReportPolicy[];
  readonly podUid: (pod: string) => string | undefined;
  readonly kinds: ReadonlySet<ReportKind>;
  /** Default OpenReports. */
  readonly api?: ReportApi;
}): Map<string, ReportObject> {
  const api = input.api ?? OPENREPORTS;
  const uids = new Map(input.policies.map((p) => [p.ref as string, p.source.metadata.uid]));
  const groups = new Map<
    string,
    { kind: ReportKind; namespace?: string; source: string; results: ReportResult[] }
  >();
  for (const f of input.findings) {
    const v = f.violation;
    // A finding of a policy the caller no longer holds has no report to go to.
    if (v.source !== POD_RULES && !uids.has(v.source)) continue;
    const kind: ReportKind = f.reach === 'platform' ? 'ClusterReport' : 'Report';
    if (!input.kinds.has(kind)) continue;
    const namespace = kind === 'Report' ? (v.pod.split('/')[0] ?? '') : undefined;
    const key = `${kind}|${namespace ?? ''}|${v.source}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = {
        kind,
        source: v.source,
        results: [],
        ...(namespace === undefined ? {} : { namespace }),
      };
      groups.set(key, group);
    }
    group.results.push(reportResult(f, input.podUid));
  }
  const out = new Map<string, ReportObject>();
  for (const g of groups.values()) {
    const owners = ownerOf(g.source, uids.get(g.source));
    const report: ReportObject = {
      apiVersion: apiVersionOf(api),
      kind: api.kinds[g.kind].kind,
      metadata: {
        name: reportName(g.source, g.kind),
        ...(g.namespace === undefined ? {} : { namespace: g.namespace }),
        labels: { [MANAGED_BY]: FIELD_MANAGER, [POLICY_LABEL]: policyLabel(g.source) },
        // A namespaced report may be owned by a cluster-scoped policy, not the reverse: the
        // ClusterReports (a namespaced policy's findings elsewhere) are deleted by the operator.
        ...(owners === undefined || g.kind === 'ClusterReport' ? {} : { ownerReferences: owners }),
      },
      ...(api.reportSource ? { source: REPORT_SOURCE } : {}),
      summary: { pass: 0, fail: g.results.length, warn: 0, error: 0, skip: 0 },
      results: g.results.sort(byPodRule),
    };
    out.set(reportKey(report.metadata), report);
  }
  return out;
}

/**
 * What of a report the operator writes, and so compares with what is stored: its own labels,
 * owners, source, summary and results; not the server's fields nor labels others added.
 */
export function reportContent(r: unknown): unknown {
  const o = isObject(r) ? r : {};
  const metadata = isObject(o['metadata']) ? o['metadata'] : {};
  const labels = isObject(metadata['labels']) ? metadata['labels'] : {};
  const owners = Array.isArray(metadata['ownerReferences']) ? metadata['ownerReferences'] : [];
  return {
    labels: { [MANAGED_BY]: labels[MANAGED_BY], [POLICY_LABEL]: labels[POLICY_LABEL] },
    owners: owners.map((x: unknown) => {
      const ref = isObject(x) ? x : {};
      return {
        apiVersion: ref['apiVersion'],
        kind: ref['kind'],
        name: ref['name'],
        uid: ref['uid'],
      };
    }),
    source: o['source'],
    summary: o['summary'],
    results: o['results'] ?? [],
  };
}

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
