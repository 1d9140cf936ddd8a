// Least privilege, as the API server saw it: the operator's requests in the audit log
// (audit.k8s.io/v1 Events, JSON lines) held against the grants of the permission table.
// Pure: no I/O. test/integration/zz-least-privilege.test.ts runs it on the log of the whole
// suite; test/tools/least-privilege.test.ts shows that each way the two sides can drift
// apart fails it.
import { permissionKeys, type Grant } from './operator-permissions.ts';

/** The fields of an audit Event this comparison reads (Metadata level). */
export interface AuditEvent {
  readonly auditID: string;
  readonly stage: string;
  readonly verb: string;
  readonly requestURI: string;
  readonly userAgent?: string;
  readonly user: { readonly username: string };
  readonly objectRef?: {
    readonly apiGroup?: string;
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  readonly responseStatus?: { readonly code?: number };
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Parses the log's JSON lines; a line that is not an audit Event throws with its number. */
export function parseAuditLog(text: string): AuditEvent[] {
  const events: AuditEvent[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`audit log line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
    const e = value as Partial<AuditEvent> & { kind?: string };
    if (
      e.kind !== 'Event' ||
      typeof e.auditID !== 'string' ||
      typeof e.verb !== 'string' ||
      typeof e.user?.username !== 'string'
    ) {
      throw new Error(`audit log line ${i + 1} is not an audit Event: ${line.slice(0, 200)}`);
    }
    events.push(e as AuditEvent);
  });
  return events;
}

/** One request: the last stage the log has of it (a watch has ResponseStarted, then Complete). */
export interface AuditedRequest {
  readonly event: AuditEvent;
  /** The permission key of the grant that covers it (operator-permissions.ts's form). */
  readonly key: string | undefined;
}

export interface PermissionUse {
  /** Requests of the user, each once. */
  readonly requests: number;
  /** How many requests each granted permission covered; a key absent here went unused. */
  readonly used: ReadonlyMap<string, number>;
  /** Granted permissions no request used. */
  readonly unused: readonly string[];
  /** ClusterRole permissions used only in the release namespace: a Role would do. */
  readonly tooWide: readonly string[];
  /** Requests no grant covers (the table lacks what they needed), one line per kind. */
  readonly ungranted: readonly string[];
  /** Requests the API server refused (403), one line per kind. */
  readonly forbidden: readonly string[];
  /** Requests with the user's credentials from another program (by User-Agent). */
  readonly otherClients: readonly string[];
}

export interface CompareOptions {
  /** The operator's user name, `system:serviceaccount:<ns>:<name>`. */
  readonly user: string;
  /** The release namespace: where `release-namespace` grants apply. */
  readonly namespace: string;
  /** The User-Agent the operator sends; requests with another one are not the operator's. */
  readonly userAgent: string;
}

/** `get apps deployments/status ns/name`: what a request did, for messages. */
export function describeRequest(e: AuditEvent): string {
  const ref = e.objectRef;
  if (ref?.resource === undefined) return `${e.verb} ${e.requestURI} (non-resource)`;
  const resource = `${ref.apiGroup || 'core'} ${ref.resource}${ref.subresource === undefined ? '' : `/${ref.subresource}`}`;
  const where = ref.namespace === undefined ? '(cluster)' : `in ${ref.namespace}`;
  return `${e.verb} ${resource} ${where}${ref.name === undefined ? '' : ` name ${ref.name}`}`;
}

/** The same request without its object's name and namespace: one line per kind of request. */
function requestKind(e: AuditEvent, namespace: string): string {
  const ref = e.objectRef;
  if (ref?.resource === undefined) return `${e.verb} ${e.requestURI.split('?')[0] ?? ''}`;
  const sub = ref.subresource === undefined ? '' : `/${ref.subresource}`;
  const where =
    ref.namespace === undefined
      ? 'cluster-wide'
      : ref.namespace === namespace
        ? `in the release namespace ${namespace}`
        : 'in other namespaces';
  return `${e.verb} ${ref.apiGroup || 'core'} ${ref.resource}${sub} ${where}`;
}

/** The grant that allows the request, as RBAC would decide it; undefined when none does. */
export function coveringGrant(
  e: AuditEvent,
  grants: readonly Grant[],
  namespace: string,
): Grant | undefined {
  const ref = e.objectRef;
  if (ref?.resource === undefined) return undefined;
  const resource =
    ref.subresource === undefined ? ref.resource : `${ref.resource}/${ref.subresource}`;
  return grants.find(
    (g) =>
      g.group === (ref.apiGroup ?? '') &&
      g.resource === resource &&
      g.verbs.includes(e.verb as Grant['verbs'][number]) &&
      (g.scope === 'cluster' || ref.namespace === namespace) &&
      (g.resourceNames === undefined ||
        (ref.name !== undefined && g.resourceNames.includes(ref.name))),
  );
}

/** The permission key of one verb of a grant, for one request. */
function keyOf(grant: Grant, verb: string, name: string | undefined, namespace: string): string {
  const single: Grant = {
    ...grant,
    verbs: [verb as Grant['verbs'][number]],
    ...(grant.resourceNames === undefined ? {} : { resourceNames: [name ?? ''] }),
  };
  const [key] = permissionKeys([single], namespace);
  if (key === undefined) throw new Error('a grant with one verb has one key');
  return key;
}

const countLines = (lines: readonly string[]): string[] => {
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([l, n]) => `${l} (x${n})`);
};

/**
 * Holds the user's requests in the log against the grants: every grant used, every request
 * covered by a grant, none refused, none from another program with the same credentials.
 */
export function comparePermissions(
  events: readonly AuditEvent[],
  grants: readonly Grant[],
  options: CompareOptions,
): PermissionUse {
  const latest = new Map<string, AuditEvent>();
  for (const e of events) {
    if (e.user.username !== options.user) continue;
    latest.set(e.auditID, e); // the log is in order: the last stage wins
  }
  const used = new Map<string, number>();
  /** Cluster-scope keys used somewhere other than the release namespace. */
  const usedOutside = new Set<string>();
  const ungranted: string[] = [];
  const forbidden: string[] = [];
  const otherClients: string[] = [];
  for (const e of latest.values()) {
    const kind = requestKind(e, options.namespace);
    if (!(e.userAgent ?? '').startsWith(options.userAgent)) {
      otherClients.push(`${kind} by "${e.userAgent ?? '(no User-Agent)'}"`);
      continue;
    }
    // RBAC's refusals only: a 403 that authorization allowed came from admission (an Event
    // refused in a namespace being deleted), which no grant changes.
    const refused = e.annotations?.['authorization.k8s.io/decision'] === 'forbid';
    if (refused) {
      forbidden.push(kind);
      continue;
    }
    if (e.responseStatus?.code === 403) continue;
    // What Kubernetes grants every authenticated user (the discovery roles: /version, /api)
    // needs nothing of the chart.
    const reason = e.annotations?.['authorization.k8s.io/reason'] ?? '';
    if (
      e.objectRef === undefined &&
      /ClusterRole "system:(discovery|public-info-viewer|basic-user)"/.test(reason)
    )
      continue;
    // A server-side apply that creates its object (201) is authorized as a patch and, by the
    // API server inside the same request, as a create; the log records only the patch.
    const asked =
      e.verb === 'patch' && e.responseStatus?.code === 201 ? [e, { ...e, verb: 'create' }] : [e];
    for (const a of asked) {
      const grant = coveringGrant(a, grants, options.namespace);
      if (grant === undefined) {
        const reason = e.annotations?.['authorization.k8s.io/reason'];
        const what =
          a === e
            ? kind
            : requestKind(a, options.namespace) + ' (a server-side apply that created it)';
        ungranted.push(`${what}${reason === undefined || a !== e ? '' : ` (${reason})`}`);
        continue;
      }
      const key = keyOf(grant, a.verb, a.objectRef?.name, options.namespace);
      used.set(key, (used.get(key) ?? 0) + 1);
      if (a.objectRef?.namespace !== options.namespace) usedOutside.add(key);
    }
  }
  const granted = [...new Set(permissionKeys(grants, options.namespace))].sort();
  return {
    requests: latest.size,
    used,
    unused: granted.filter((key) => !used.has(key)),
    tooWide: granted.filter(
      (key) => key.startsWith('cluster ') && used.has(key) && !usedOutside.has(key),
    ),
    ungranted: countLines(ungranted),
    forbidden: countLines(forbidden),
    otherClients: countLines(otherClients),
  };
}

/** Everything wrong with a comparison, as lines for a failure message; [] when it holds. */
export function permissionProblems(use: PermissionUse): string[] {
  const section = (title: string, lines: readonly string[]): string[] =>
    lines.length === 0 ? [] : [title, ...lines.map((l) => `  ${l}`)];
  return [
    ...section(
      'granted but never used by the operator in the whole suite (take it out of charts/placement-operator/files/permissions.yaml, or test the code path that needs it):',
      use.unused,
    ),
    ...section(
      'granted in every namespace but used only in the release namespace (make it scope: release):',
      use.tooWide,
    ),
    ...section(
      'requests no grant of charts/placement-operator/files/permissions.yaml covers (add the grant):',
      use.ungranted,
    ),
    ...section('requests the API server refused (403):', use.forbidden),
    ...section(
      "requests with the operator's credentials from another program (only the operator may use them):",
      use.otherClients,
    ),
  ];
}
