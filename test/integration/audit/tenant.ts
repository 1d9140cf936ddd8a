// Issue #16's scenario on a real control plane, shared by the audit suite (operator with the
// admin kubeconfig) and the chart suite (operator with the chart's ServiceAccount token): a
// tenant, a ServiceAccount that may write PlacementPolicies in team-a only, acts through
// `kubectl --as`; workloads of team-a and of two other namespaces share nodes; the tenant's
// policy keeps every pod of every namespace off its pods' nodes (anti-affinity with
// `labelSelector: {}` and `namespaceSelector: {}`) and asks for evictions.
import assert from 'node:assert/strict';

import { metricValue, scrape, type OperatorProcess } from '../harness.ts';
import {
  deployment,
  HOSTNAME,
  list,
  makeNamespace,
  makePool,
  policy,
  REQ,
  waitAuditPasses,
  waitFor,
  type Cluster,
  type JsonObject,
  type Pool,
  type Scope,
} from '../operator/support.ts';
import { barePod, pods, running, waitRunning, waitStatus, type PodInfo } from './support.ts';

export const EVICTED = 'evicted violating pod';
export const CROSS_NAMESPACE_FINDING = 'namespaced policy term broken outside its namespace';
const CROSS_METRIC = 'placement_cross_namespace_violations';
export const EVERYONE_TERM: JsonObject = {
  labelSelector: {},
  namespaceSelector: {},
  topologyKey: HOSTNAME,
};
/** The field the admission policy and the operator name when they refuse EVERYONE_TERM. */
export const EVERYONE_FIELD = `spec.affinity.podAntiAffinity.${REQ}[0].namespaceSelector`;

/** A PlacementPolicy of `ns` that keeps every pod of every namespace off its pods' nodes. */
export function everyonePolicy(
  ns: string,
  name: string,
  mode: 'Audit' | 'Enforce' = 'Audit',
): JsonObject {
  return policy(ns, name, {
    mode,
    affinity: { podAntiAffinity: { [REQ]: [EVERYONE_TERM] } },
    audit: { remediation: 'Evict', maxEvictionsPerMinute: 100 },
  });
}

export interface Tenant {
  /** `system:serviceaccount:NS:tenant` */
  readonly user: string;
  /** kubectl as the tenant. */
  kubectl(...args: string[]): Promise<string>;
  /** `kubectl apply -f -` as the tenant. */
  apply(manifest: JsonObject): Promise<string>;
}

/**
 * A ServiceAccount of `ns` bound (Role and RoleBinding of this test) to PlacementPolicy rights
 * in `ns` only, and kubectl that impersonates it.
 */
export async function makeTenant(c: Cluster, ns: string): Promise<Tenant> {
  const name = 'tenant';
  await c.apply(
    list(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'placement-author', namespace: ns },
        rules: [
          {
            apiGroups: ['placement.dev'],
            resources: ['placementpolicies'],
            verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
          },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'placement-author', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'placement-author' },
        subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
      },
    ),
  );
  const user = `system:serviceaccount:${ns}:${name}`;
  return {
    user,
    kubectl: (...args) => c.kubectl(`--as=${user}`, ...args),
    apply: (manifest) => c.apply(JSON.stringify(manifest), `--as=${user}`),
  };
}

/** What the scenario set up. */
export interface TenantWorld {
  readonly pool: Pool;
  /** team-a, team-b, team-c (each with a unique suffix). */
  readonly a: string;
  readonly b: string;
  readonly c: string;
  readonly tenant: Tenant;
  /** Pods of team-b and team-c before the tenant's policy, by namespace/name → uid. */
  readonly others: ReadonlyMap<string, string>;
  /** team-a's pods before the policy: app → pod. */
  readonly own: ReadonlyMap<string, PodInfo>;
}

const preferNode = (node: string): JsonObject => ({
  nodeAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      {
        weight: 100,
        preference: { matchExpressions: [{ key: HOSTNAME, operator: 'In', values: [node] }] },
      },
    ],
  },
});

/**
 * Four nodes of a pool; n2 and n3 are cordoned while the workloads start, so everything runs on
 * n0 and n1, then uncordoned: every pod could go elsewhere, so remediation has somewhere to send
 * each one, and only the rule keeps it from evicting pods of other namespaces.
 *
 * team-a: Deployment a-web (anywhere), Deployment a-pinned (nodeSelector n0: never evicted, it
 * fits nowhere else, so its term stays broken by its neighbours), bare Pod a-debug on n0 (not a
 * workload the policy targets). team-b: Deployment b-web, 2 pods preferring n0 (next to
 * a-pinned). team-c: Deployment c-web, 2 pods.
 */
export async function tenantWorld(c: Cluster, s: Scope): Promise<TenantWorld> {
  const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b', 'zone-b']);
  const [n0, , n2, n3] = pool.nodes as [string, string, string, string];
  await c.kubectl('cordon', n2, n3);
  const [a, b, c2] = [
    await makeNamespace(c, s, 'team-a'),
    await makeNamespace(c, s, 'team-b'),
    await makeNamespace(c, s, 'team-c'),
  ];
  const tenant = await makeTenant(c, a);
  const pinned = pool.podSpec['nodeSelector'] as JsonObject;
  await c.apply(
    list(
      deployment(a, 'a-web', { podSpec: pool.podSpec }),
      deployment(a, 'a-pinned', {
        podSpec: { ...pool.podSpec, nodeSelector: { ...pinned, [HOSTNAME]: n0 } },
      }),
      barePod(a, 'a-debug', { app: 'a-debug' }, pool, n0),
      deployment(b, 'b-web', { replicas: 2, podSpec: pool.podSpec, affinity: preferNode(n0) }),
      deployment(c2, 'c-web', { replicas: 2, podSpec: pool.podSpec }),
    ),
  );
  const own = new Map<string, PodInfo>();
  for (const app of ['a-web', 'a-pinned', 'a-debug'])
    own.set(app, (await waitRunning(c, a, app, 1))[0] ?? assert.fail(app));
  const others = new Map<string, string>();
  for (const [ns, app] of [
    [b, 'b-web'],
    [c2, 'c-web'],
  ] as const)
    for (const p of await waitRunning(c, ns, app, 2))
      others.set(`${ns}/${p.metadata.name}`, p.metadata.uid);
  await c.kubectl('uncordon', n2, n3);
  return { pool, a, b, c: c2, tenant, others, own };
}

/** The tenant may write policies in team-a only, and may not even read pods elsewhere. */
export async function assertTenantConfined(w: TenantWorld): Promise<void> {
  const can = async (...args: string[]): Promise<string> =>
    (
      await w.tenant
        .kubectl('auth', 'can-i', ...args)
        .catch((e: unknown) => (e as { stdout?: string }).stdout ?? '')
    ).trim();
  assert.equal(await can('create', 'placementpolicies.placement.dev', '-n', w.a), 'yes');
  assert.equal(await can('create', 'placementpolicies.placement.dev', '-n', w.b), 'no');
  assert.equal(await can('list', 'pods', '-n', w.b), 'no');
  assert.equal(await can('create', 'pods/eviction', '-n', w.a), 'no');
}

const metric = async (op: OperatorProcess, name: string, labels: Record<string, string>) =>
  metricValue((await scrape(op)).body, name, labels);

interface EventItem {
  readonly metadata: { readonly namespace: string };
  readonly reason: string;
  readonly message?: string;
  readonly note?: string;
  readonly regarding?: { readonly namespace?: string; readonly name?: string };
  readonly involvedObject?: { readonly namespace?: string; readonly name?: string };
}

/**
 * What the operator of the tenant scenarios runs with: a full audit check every 2 s, so that
 * audit passes go on while nothing changes, and a test can wait for some to go by.
 */
export const TENANT_OPERATOR_FLAGS = ['--audit-interval', '2s'] as const;

/**
 * The operator runs with TENANT_OPERATOR_FLAGS. The tenant creates the policy through
 * impersonation; then: team-a's own violating pod is
 * evicted (remediation works), the cross-namespace findings show in the metric and the log,
 * and nothing outside team-a is evicted, gets an Event naming the policy, or shows in the
 * policy's status.
 */
export async function runTenantScenario(
  c: Cluster,
  w: TenantWorld,
  op: OperatorProcess,
  diagnostic: (line: string) => void,
): Promise<void> {
  const name = 'evil';
  const ref = `PlacementPolicy/${w.a}/${name}`;
  await w.tenant.apply(everyonePolicy(w.a, name));
  const aWeb = w.own.get('a-web') ?? assert.fail('no a-web');

  // Remediation still works where the rule says so: team-a's a-web pod is evicted.
  await waitFor(
    'team-a/a-web evicted',
    async () =>
      (await pods(c, w.a, 'a-web')).some((p) => p.metadata.uid === aWeb.metadata.uid && running(p))
        ? undefined
        : true,
    90_000,
  );
  // The API server shows the pod going as soon as the eviction is granted; the operator's log
  // line about it comes after the answer reaches it.
  const evictedLogged = (): boolean =>
    op.logs.some(
      (l) =>
        l['message'] === EVICTED &&
        l['pod'] === `${w.a}/${aWeb.metadata.name}` &&
        l['result'] === 'evicted',
    );
  await waitFor(
    `the operator's log line "${EVICTED}" about ${w.a}/${aWeb.metadata.name}`,
    () => Promise.resolve(evictedLogged() ? true : undefined),
    30_000,
  );
  assert.ok((await metric(op, 'placement_evictions_total', { result: 'evicted' })) >= 1);

  // The cross-namespace findings (b-web next to a-pinned) are counted for the platform team.
  await waitFor(
    `${CROSS_METRIC} for ${ref}`,
    async () =>
      (await metric(op, CROSS_METRIC, { policy: ref, rule: 'symmetricAntiAffinity' })) >= 2
        ? true
        : undefined,
    60_000,
  );

  const status = await waitStatus(
    c,
    w.a,
    name,
    'violations of team-a pods in the sample',
    (x) =>
      (x.violations ?? 0) > 0 && (x.violationSample ?? []).some((v) => v.pod.includes('a-pinned')),
    60_000,
  );

  // Two more audit passes: whatever else the operator would do, it has done by then.
  await waitAuditPasses(op, 2);
  diagnostic(`status: ${JSON.stringify(status)}`);

  const outside = [w.b, w.c];
  const mentionsOutside = (text: string): boolean => outside.some((ns) => text.includes(ns));

  // Nothing outside team-a was evicted: same pods, none being deleted.
  for (const [ns, app] of [
    [w.b, 'b-web'],
    [w.c, 'c-web'],
  ] as const) {
    const now = await pods(c, ns, app);
    for (const p of now) {
      assert.equal(
        w.others.get(`${ns}/${p.metadata.name}`),
        p.metadata.uid,
        `${ns}/${p.metadata.name} replaced`,
      );
      assert.ok(running(p), `${ns}/${p.metadata.name} is being deleted`);
    }
    assert.equal(now.length, 2, `${ns}/${app}`);
  }
  const evicted = op.logs.filter((l) => l['message'] === EVICTED).map((l) => String(l['pod']));
  assert.ok(
    evicted.every((p) => p.startsWith(`${w.a}/`)),
    evicted.join(', '),
  );
  // The bare pod of team-a breaks the term by symmetry only: shown, never acted on.
  const debug = (await pods(c, w.a, 'a-debug'))[0];
  assert.equal(debug?.metadata.uid, w.own.get('a-debug')?.metadata.uid, 'a-debug still runs');

  // The status names team-a's pods only.
  const latest = await waitStatus(c, w.a, name, 'audited', (x) => x.lastAuditTime !== undefined);
  const sample = latest.violationSample ?? [];
  assert.ok(sample.length > 0);
  for (const v of sample) {
    assert.ok(v.pod.startsWith(`${w.a}/`), `${v.pod} in the status of ${ref}`);
    assert.ok(!mentionsOutside(v.message), v.message);
  }

  // No Event outside team-a names the policy; no PlacementViolation Event there at all.
  const events = (await c.json<{ items: EventItem[] }>('get', 'events.events.k8s.io', '-A')).items;
  const naming = events.filter((e) => `${e.note ?? ''} ${e.message ?? ''}`.includes(ref));
  assert.ok(naming.length > 0, 'team-a pods got their PlacementViolation Events');
  for (const e of naming) assert.equal(e.metadata.namespace, w.a, JSON.stringify(e));
  for (const ns of outside) {
    const there = events.filter(
      (e) => e.metadata.namespace === ns && e.reason === 'PlacementViolation',
    );
    assert.deepEqual(there, [], `PlacementViolation Events in ${ns}`);
  }
  for (const e of events.filter((x) => x.metadata.namespace === w.a))
    assert.ok(!mentionsOutside(`${e.note ?? ''} ${e.message ?? ''}`), JSON.stringify(e));

  // One log line per cross-namespace finding, naming policy, pod and rule: for the platform team.
  const findings = op.logs.filter((l) => l['message'] === CROSS_NAMESPACE_FINDING);
  assert.ok(
    findings.some(
      (l) =>
        l['policy'] === ref &&
        String(l['pod']).startsWith(`${w.b}/`) &&
        l['rule'] === 'symmetricAntiAffinity',
    ),
    JSON.stringify(findings),
  );
  const keys = findings.map((l) => `${String(l['pod'])}|${String(l['rule'])}`);
  diagnostic(`cross-namespace findings logged: ${keys.join(', ')}`);
  // b-web's pods stayed next to a-pinned all along: one line each, not one per audit pass.
  const bWeb = keys.filter((k) => k.startsWith(`${w.b}/`));
  assert.equal(new Set(bWeb).size, bWeb.length, bWeb.join(', '));
}
