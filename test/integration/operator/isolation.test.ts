// What a policy must not touch: workloads in another namespace than a PlacementPolicy's,
// anything at all when the API server refuses the policy, any workload under mode: Audit,
// and Jobs and bare Pods (their pod template is immutable: audited, never rewritten).
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/isolation.test.ts
import assert from 'node:assert/strict';

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
  makeNamespace,
  podSpec,
  policy,
  policyRef,
  policyStatus,
  runOperator,
  templateOf,
  waitEnforced,
  waitFor,
  waitReconciledAgain,
  waitRolledOut,
  workload,
  type Cluster,
  type JsonObject,
  type Obj,
  type Operator,
} from './support.ts';

const RESYNC_MS = 3_000;
const spreadSpec = (selector: JsonObject, extra: JsonObject = {}): JsonObject => ({
  targets: { selector: { matchLabels: selector } },
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  ...extra,
});

/** Waits until a resync has looked at each of `workloads` (`Kind/namespace/name`) again. */
const pastResync = (op: Operator, ...workloads: string[]): Promise<void> =>
  waitReconciledAgain(op, workloads);

function assertUntouched(now: Obj, before: Obj): void {
  const what = `${now.kind} ${now.metadata.namespace ?? ''}/${now.metadata.name}`;
  assert.equal(now.metadata.annotations?.[APPLIED], undefined, `${what}: no record`);
  assert.deepEqual(templateOf(now), templateOf(before), `${what}: template unchanged`);
}

async function refused(c: Cluster, manifest: JsonObject): Promise<string> {
  try {
    await c.apply(JSON.stringify(manifest));
  } catch (error) {
    return (error as Error).message;
  }
  return assert.fail('the API server accepted the policy');
}

clusterTest(
  'isolation: what a policy must not touch',
  { timeout: 170_000 },
  async ({ t, c, s }) => {
    // Debug logs: a line a reconcile, so a test can tell when a resync has come by.
    const op = await runOperator(c, s, [
      '--resync-interval',
      `${RESYNC_MS}ms`,
      '--log-level',
      'debug',
    ]);

    await t.test('a PlacementPolicy changes nothing outside its namespace', async (t) => {
      const home = await makeNamespace(c, s, 'home');
      const away = await makeNamespace(c, s, 'away');
      await c.apply(list(deployment(home, 'web'), deployment(away, 'web')));
      await waitRolledOut(c, away);
      const awayBefore = await get(c, 'deployment', away, 'web');
      await c.apply(JSON.stringify(policy(home, 'spread-web', spreadSpec({ app: 'web' }))));
      await waitEnforced(c, home, 'spread-web', 1);
      assert.deepEqual(appliedPolicies(await get(c, 'deployment', home, 'web')), {
        [policyRef(home, 'spread-web')]: 1,
      });
      await pastResync(op, `Deployment/${away}/web`);
      const awayNow = await get(c, 'deployment', away, 'web');
      assertUntouched(awayNow, awayBefore);
      assert.equal(
        awayNow.metadata.resourceVersion,
        awayBefore.metadata.resourceVersion,
        'not written at all',
      );
      t.diagnostic(`${away}/web untouched while ${home}/web was rewritten`);
    });

    await t.test(
      'a policy that cannot work is refused by the API server and reaches nothing',
      async () => {
        const ns = await makeNamespace(c, s, 'refused');
        await c.apply(JSON.stringify(deployment(ns, 'web')));
        const before = await get(c, 'deployment', ns, 'web');
        const bad = policy(ns, 'reach-out', {
          targets: {
            selector: { matchLabels: { app: 'web' } },
            namespaceSelector: { matchLabels: { env: 'prod' } },
          },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
        });
        assert.match(
          await refused(c, bad),
          /namespaceSelector is not allowed on a namespaced PlacementPolicy/,
        );
        const found = await c.kubectl('get', 'placementpolicies', '-n', ns, '-o', 'name');
        assert.equal(found.trim(), '', 'nothing was created');
        await pastResync(op, `Deployment/${ns}/web`);
        assertUntouched(await get(c, 'deployment', ns, 'web'), before);
      },
    );

    await t.test(
      'mode: Audit never writes a workload; status reports the ones lacking the rules',
      async () => {
        const ns = await makeNamespace(c, s, 'audit');
        // compliant: its owner already wrote the very term the policy asks for.
        const ownSpread = {
          labelSelector: { matchLabels: { app: 'compliant' } },
          topologyKey: HOSTNAME,
        };
        await c.apply(
          list(
            deployment(ns, 'lacking', {
              labels: { app: 'lacking', tier: 'audited' },
              selector: { app: 'lacking' },
            }),
            deployment(ns, 'compliant', {
              labels: { app: 'compliant', tier: 'audited' },
              selector: { app: 'compliant' },
              affinity: {
                podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [ownSpread] },
              },
            }),
          ),
        );
        await waitRolledOut(c, ns);
        const before = new Map<string, Obj>();
        for (const n of ['lacking', 'compliant']) before.set(n, await get(c, 'deployment', ns, n));
        const writes0 = await op.writes();

        await c.apply(
          JSON.stringify(
            policy(ns, 'audit-only', spreadSpec({ tier: 'audited' }, { mode: 'Audit' })),
          ),
        );
        const status = await waitFor('Audit policy status', async () => {
          const { status, generation } = await policyStatus(c, ns, 'audit-only');
          return status.observedGeneration === generation && status.matched === 2
            ? status
            : undefined;
        });
        const ready = condition(status, 'Ready');
        assert.equal(ready?.status, 'True');
        assert.equal(ready.reason, 'Auditing');
        assert.match(ready.message, /1 of 2 workload\(s\) lack the rules/);
        assert.deepEqual(
          { matched: status.matched, enforced: status.enforced, pending: status.pending },
          { matched: 2, enforced: 1, pending: 1 },
        );
        await pastResync(op, `Deployment/${ns}/lacking`, `Deployment/${ns}/compliant`);
        for (const n of ['lacking', 'compliant']) {
          const now = await get(c, 'deployment', ns, n);
          const old = before.get(n);
          assert.ok(old);
          assertUntouched(now, old);
          assert.equal(
            now.metadata.resourceVersion,
            old.metadata.resourceVersion,
            `${n}: not written at all`,
          );
        }
        assert.equal(await op.writes(), writes0, 'no workload write under mode: Audit');
      },
    );

    await t.test('Jobs and bare Pods are never rewritten', async () => {
      const ns = await makeNamespace(c, s, 'batch');
      const labels = (app: string) => ({ labels: { app, tier: 'batch' }, selector: { app } });
      await c.apply(
        list(
          workload('Job', ns, 'nightly', labels('nightly')),
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'solo', namespace: ns, labels: { app: 'solo', tier: 'batch' } },
            spec: podSpec({}),
          },
          deployment(ns, 'svc', labels('svc')),
        ),
      );
      const job0 = await get(c, 'job', ns, 'nightly');
      const pod0 = await c.json<{ metadata: Obj['metadata']; spec: JsonObject }>(
        'get',
        'pod',
        'solo',
        '-n',
        ns,
      );
      await c.apply(
        JSON.stringify(
          policy(ns, 'spread-batch', {
            ...spreadSpec({ tier: 'batch' }),
            targets: {
              kinds: ['Deployment', 'Job', 'Pod'],
              selector: { matchLabels: { tier: 'batch' } },
            },
          }),
        ),
      );
      // The Deployment is rewritten: the policy is live for this namespace.
      await waitEnforced(c, ns, 'spread-batch', 1);
      assert.ok(affinityOf(await get(c, 'deployment', ns, 'svc')));
      // A Job is no workload of the operator's: svc, beside it, stands witness to the resync.
      await pastResync(op, `Deployment/${ns}/svc`);
      assertUntouched(await get(c, 'job', ns, 'nightly'), job0);
      const pod = await c.json<{ metadata: Obj['metadata']; spec: JsonObject }>(
        'get',
        'pod',
        'solo',
        '-n',
        ns,
      );
      assert.equal(pod.metadata.annotations?.[APPLIED], undefined, 'pod: no record');
      assert.deepEqual(pod.spec['affinity'], pod0.spec['affinity'], 'pod: affinity unchanged');
      assert.equal(pod.spec['affinity'], undefined);

      // Audited instead, and status says so: the audit counts their placed, live pods (kwok
      // completes the Job's pod at once, so the bare Pod is the one left to count).
      await waitFor('status.workloads.auditOnly = 1', async () => {
        const { status } = await policyStatus(c, ns, 'spread-batch');
        return status.workloads?.auditOnly === 1 ? true : undefined;
      });
    });
  },
);
