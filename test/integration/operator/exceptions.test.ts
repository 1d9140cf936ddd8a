// PlacementExceptions on the control plane: a cluster policy spreads every Deployment of a
// namespace; an exception for one of them takes its terms out exactly (its template is the
// owner's again) while the others keep theirs; the policy counts it as exempted (status,
// printer column, metric); neither the continuous audit nor the CLI judges its pods by the
// policy; an exception the policy does not allow is refused (Accepted=False, an Event) and
// changes nothing; deleting the exception brings the terms back.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/exceptions.test.ts
import assert from 'node:assert/strict';

import { run as runCli } from '../../../src/cli/kubectl-placement.ts';
import {
  affinityOf,
  APPLIED,
  appliedPolicies,
  clusterTest,
  condition,
  deployment,
  get,
  HOSTNAME,
  list,
  makePool,
  policy,
  policyStatus,
  PREF,
  REQ,
  runOperator,
  slot,
  templateOf,
  uniqueName,
  waitEnforced,
  waitFor,
  ZONE,
  type Cluster,
  type JsonObject,
  type Obj,
  type Pod,
  type Scope,
  waitReconciledAgain,
} from './support.ts';

const RESYNC_MS = 3_000;
const DEPLOYMENTS = ['api', 'db', 'web'] as const;

interface ExceptionObject {
  metadata: { name: string; generation?: number };
  status?: {
    observedGeneration?: number;
    exempted?: number;
    workloads?: string[];
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

function exception(ns: string, name: string, policyName: string, names: string[]): JsonObject {
  return {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementException',
    metadata: { name, namespace: ns },
    spec: {
      policyRef: { kind: 'ClusterPlacementPolicy', name: policyName },
      workloads: { kinds: ['Deployment'], names },
      reason: 'keeps its data on a local volume: its replicas must share one node',
    },
  };
}

/** A ClusterPlacementPolicy removed after the test, its finalizer first (no operator is left). */
async function clusterPolicy(c: Cluster, s: Scope, name: string, spec: JsonObject): Promise<void> {
  s.defer(async () => {
    await c
      .kubectl('patch', 'cpp', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}')
      .catch(() => '');
    await c.kubectl('delete', 'cpp', name, '--ignore-not-found', '--wait=false');
  });
  await c.apply(JSON.stringify(policy(undefined, name, spec, 'ClusterPlacementPolicy')));
}

const exceptionStatus = (c: Cluster, ns: string, name: string) =>
  c.json<ExceptionObject>('get', 'placementexception', name, '-n', ns);

/** Whether the template carries the policy's spread term for `app`. */
const carriesSpread = (w: Obj, app: string): boolean =>
  slot(affinityOf(w), 'podAntiAffinity', REQ).some(
    (t) =>
      JSON.stringify(t) ===
      JSON.stringify({ labelSelector: { matchLabels: { app } }, topologyKey: HOSTNAME }),
  );

/** Runs the CLI on a List of these objects; returns the violations it reports. */
function cliViolations(items: readonly unknown[]): { pod: string; source: string }[] {
  let stdout = '';
  let stderr = '';
  const code = runCli(['audit', '-f', 'cluster.json', '-o', 'json'], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: () => JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  });
  assert.ok(code === 0 || code === 1, `kubectl-placement exit ${String(code)}: ${stderr}`);
  return (JSON.parse(stdout) as { violations: { pod: string; source: string }[] }).violations;
}

clusterTest(
  'PlacementExceptions: granted, refused, withdrawn',
  { timeout: 300_000, namespace: 'pex' },
  async ({ t, c, s, ns }) => {
    // Debug logging: the test waits for web to be reconciled again ("Reconciled").
    const op = await runOperator(c, s, [
      '--resync-interval',
      `${RESYNC_MS}ms`,
      '--log-level',
      'debug',
    ]);
    const pool = await makePool(c, s, ['zone-a', 'zone-b', 'zone-a']);
    const spread = uniqueName('spread-all');
    const zones = uniqueName('zones');
    const SPREAD = `ClusterPlacementPolicy/${spread}`;
    const ZONES = `ClusterPlacementPolicy/${zones}`;

    // db's owner wrote a node preference of its own: it must survive every change.
    const own = {
      nodeAffinity: {
        [PREF]: [
          {
            weight: 10,
            preference: { matchExpressions: [{ key: ZONE, operator: 'In', values: ['zone-a'] }] },
          },
        ],
      },
    };
    await c.apply(
      list(
        ...DEPLOYMENTS.map((name) =>
          deployment(ns, name, {
            replicas: 2,
            podSpec: pool.podSpec,
            ...(name === 'db' ? { affinity: own } : {}),
          }),
        ),
      ),
    );
    const original = new Map<string, Obj>();
    for (const name of DEPLOYMENTS) original.set(name, await get(c, 'deployment', ns, name));

    await t.test('a cluster policy spreads every Deployment of the namespace', async () => {
      await clusterPolicy(c, s, spread, {
        targets: { namespaces: [ns] },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
        exceptions: { allowed: true, namespaces: [ns] },
        // Once the exception is gone the spread goes back into db while its owner pins both
        // replicas to one node: a rollout that cannot finish, written all the same here.
        allowBlockedRollouts: true,
      });
      // A second policy, which allows no exception.
      await clusterPolicy(c, s, zones, {
        targets: { namespaces: [ns] },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred' }],
      });
      await waitEnforced(c, undefined, spread, 3);
      await waitEnforced(c, undefined, zones, 3);
      for (const name of DEPLOYMENTS) {
        const w = await get(c, 'deployment', ns, name);
        assert.ok(carriesSpread(w, name), `${name} carries the spread`);
      }
    });

    await t.test(
      'an exception the policy does not allow is refused and changes nothing',
      async () => {
        const before = await get(c, 'deployment', ns, 'web');
        await c.apply(JSON.stringify(exception(ns, 'web-no-zones', zones, ['web'])));
        const refused = await waitFor('Accepted=False on web-no-zones', async () => {
          const e = await exceptionStatus(c, ns, 'web-no-zones');
          const accepted = e.status?.conditions?.find((x) => x.type === 'Accepted');
          return accepted?.status === 'False' ? { e, accepted } : undefined;
        });
        assert.equal(refused.accepted.reason, 'NotAllowed');
        assert.equal(
          refused.accepted.message,
          `ClusterPlacementPolicy ${zones} does not allow exceptions (spec.exceptions.allowed is not true)`,
        );
        assert.equal(refused.e.status?.exempted, 0);
        const events = await waitFor('an ExceptionRefused Event', async () => {
          const found = await c.json<{
            items: { reason: string; note?: string; message?: string }[];
          }>(
            'get',
            'events',
            '-n',
            ns,
            '--field-selector',
            'involvedObject.kind=PlacementException,involvedObject.name=web-no-zones',
          );
          return found.items.some((e) => e.reason === 'ExceptionRefused') ? found.items : undefined;
        });
        assert.ok(events.length > 0);
        // No effect: web keeps both policies' terms, and nothing was written, also after a
        // resync has looked at web again.
        await waitReconciledAgain(op, [`Deployment/${ns}/web`]);
        const after = await get(c, 'deployment', ns, 'web');
        // The Deployment controller still writes its status: the generation counts spec writes.
        assert.equal(after.metadata.generation, before.metadata.generation, 'spec not written');
        assert.equal(after.metadata.annotations?.[APPLIED], before.metadata.annotations?.[APPLIED]);
        const { status } = await policyStatus(c, undefined, zones);
        assert.equal(status.matched, 3);
        assert.equal(status.exempted, 0);
      },
    );

    await t.test(
      'an allowed exception takes exactly the policy’s terms out of one workload',
      async () => {
        await c.apply(JSON.stringify(exception(ns, 'db-local-volume', spread, ['db'])));
        const db = await waitFor('db without the spread term', async () => {
          const w = await get(c, 'deployment', ns, 'db');
          return carriesSpread(w, 'db') ? undefined : w;
        });
        // What remains is the owner's template plus the other policy's (zones) terms: take those
        // out again and the owner's original is what is left, field for field.
        assert.deepEqual(appliedPolicies(db), { [ZONES]: 1 });
        const zonesTerm = {
          weight: 100,
          podAffinityTerm: { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE },
        };
        assert.deepEqual(affinityOf(db), {
          ...own,
          podAntiAffinity: { [PREF]: [zonesTerm] },
        });
        const dbOriginal = original.get('db');
        assert.ok(dbOriginal);
        const { affinity: _now, ...specNow } = templateOf(db).spec;
        const { affinity: _then, ...specThen } = templateOf(dbOriginal).spec;
        assert.deepEqual(specNow, specThen, 'nothing but the affinity differs from the original');
        assert.deepEqual(templateOf(db).metadata, templateOf(dbOriginal).metadata);

        for (const name of ['api', 'web']) {
          const w = await get(c, 'deployment', ns, name);
          assert.ok(carriesSpread(w, name), `${name} keeps the spread`);
          assert.deepEqual(Object.keys(appliedPolicies(w) ?? {}).sort(), [SPREAD, ZONES].sort());
        }
      },
    );

    await t.test('the policy counts it as exempted: status, printer column, metric', async () => {
      const status = await waitFor('status.exempted = 1', async () => {
        const { status } = await policyStatus(c, undefined, spread);
        return status.exempted === 1 && status.matched === 2 ? status : undefined;
      });
      assert.equal(status.enforced, 2);
      assert.match(condition(status, 'Ready')?.message ?? '', /1 exempted by PlacementExceptions/);
      const table = await c.kubectl('get', 'cpp', spread);
      const [header = '', row = ''] = table.trim().split('\n');
      const columns = header.split(/\s+/);
      assert.equal(row.split(/\s+/)[columns.indexOf('EXEMPTED')], '1', table);
      await waitFor('placement_policy_workloads{state="exempted"} = 1', async () =>
        (await op.metric('placement_policy_workloads', { policy: SPREAD, state: 'exempted' })) === 1
          ? true
          : undefined,
      );
      const e = await waitFor('the exception Accepted, naming db', async () => {
        const found = await exceptionStatus(c, ns, 'db-local-volume');
        return found.status?.exempted === 1 ? found.status : undefined;
      });
      assert.deepEqual(e.workloads, ['Deployment/db']);
      const accepted = e.conditions?.find((x) => x.type === 'Accepted');
      assert.equal(accepted?.status, 'True');
      assert.equal(accepted.message, `exempts 1 workload(s) from ${SPREAD}`);
      const pex = await c.kubectl('get', 'pex', 'db-local-volume', '-n', ns);
      assert.match(pex, /db-local-volume\s+ClusterPlacementPolicy\s+\S+\s+True\s+1\s/);
    });

    const dbPods = async (): Promise<Pod[]> =>
      (await c.json<{ items: Pod[] }>('get', 'pods', '-n', ns, '-l', 'app=db')).items.filter(
        (p) => p.metadata.deletionTimestamp === undefined,
      );

    await t.test(
      'the audit does not judge the exempted workload’s pods by the policy',
      async () => {
        // Its owner now pins db to one node: both replicas share it, which the spread forbids.
        const [first = ''] = pool.nodes;
        const pin = [
          'patch',
          'deployment',
          'db',
          '-n',
          ns,
          '--type=merge',
          '-p',
          JSON.stringify({
            spec: {
              template: {
                spec: {
                  nodeSelector: {
                    ...(pool.podSpec['nodeSelector'] as JsonObject),
                    [HOSTNAME]: first,
                  },
                },
              },
            },
          }),
        ];
        // The exemption reaches admission a few seconds after the exception is accepted (the
        // operator rewrites its MutatingAdmissionPolicy, the API server reloads it); an edit
        // before then would get the spread back, as the previous policy set gave it.
        await waitFor(
          'admission to exempt db: a dry run of the edit comes back without the spread',
          async () =>
            carriesSpread(
              JSON.parse(await c.kubectl(...pin, '--dry-run=server', '-o', 'json')) as Obj,
              'db',
            )
              ? undefined
              : true,
        );
        await c.kubectl(...pin);
        await waitFor(
          'both db replicas running on one node',
          async () => {
            const pods = await dbPods();
            return pods.length === 2 &&
              pods.every((p) => p.spec.nodeName === first && p.status.phase === 'Running')
              ? true
              : undefined;
          },
          120_000,
        );
        // A pass of the continuous audit that started after they settled (a namespace label
        // change starts one): no violation of the spread.
        const settled = Date.now() / 1000;
        await c.kubectl('label', 'namespace', ns, 'placement.dev/test-tick=1');
        await waitFor('an audit pass after db settled', async () =>
          (await op.metric('placement_audit_last_success_timestamp_seconds')) > settled
            ? true
            : undefined,
        );
        const { status } = await policyStatus(c, undefined, spread);
        assert.equal(status.violations ?? 0, 0, JSON.stringify(status));
        assert.equal(
          await op.metric('placement_violations', { policy: SPREAD }),
          0,
          'placement_violations of the spread',
        );

        // The CLI on a `kubectl get` of the same cluster agrees, and without the exception in
        // its input it reports db's pods: the exception is what keeps them out.
        const namespaced = await c.json<{ items: unknown[] }>(
          'get',
          'pods,deployments,replicasets,placementexceptions',
          '-n',
          ns,
        );
        const items = [
          ...(await c.json<{ items: unknown[] }>('get', 'nodes', ...pool.nodes)).items,
          await c.json<unknown>('get', 'namespace', ns),
          await c.json<unknown>('get', 'cpp', spread),
          ...namespaced.items,
        ];
        const isException = (o: unknown): boolean =>
          (o as { kind?: string }).kind === 'PlacementException';
        assert.ok(items.some(isException));
        const withException = cliViolations(items).filter((v) => v.source === SPREAD);
        assert.deepEqual(withException, []);
        const without = cliViolations(items.filter((o) => !isException(o))).filter(
          (v) => v.source === SPREAD,
        );
        assert.deepEqual(
          [...new Set(without.map((v) => v.pod.split('/')[1]?.replace(/-[^-]+-[^-]+$/, '')))],
          ['db'],
        );
      },
    );

    await t.test(
      'deleting the exception brings the terms back, and the audit sees db again',
      async () => {
        await c.kubectl('delete', 'placementexception', 'db-local-volume', '-n', ns);
        const db = await waitFor('db with the spread term again', async () => {
          const w = await get(c, 'deployment', ns, 'db');
          return carriesSpread(w, 'db') ? w : undefined;
        });
        assert.deepEqual(Object.keys(appliedPolicies(db) ?? {}).sort(), [SPREAD, ZONES].sort());
        assert.ok(db.metadata.annotations?.[APPLIED] !== undefined);
        // db's pods still share a node (the new ones cannot start beside them): now they break
        // the spread, and the policy says so.
        const status = await waitFor(
          'the spread to report db pods',
          async () => {
            const { status } = await policyStatus(c, undefined, spread);
            const sample = status.violationSample ?? [];
            return sample.some((v) => v.pod.startsWith(`${ns}/db-`)) ? status : undefined;
          },
          60_000,
        );
        assert.ok((status.violations ?? 0) >= 2);
        await waitFor('status.exempted = 0', async () => {
          const { status } = await policyStatus(c, undefined, spread);
          return status.exempted === 0 && status.matched === 3 ? true : undefined;
        });
      },
    );
  },
);
