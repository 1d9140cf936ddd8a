// Issue #16, part 1: a tenant's policy never reaches outside its namespace. A ServiceAccount
// with PlacementPolicy rights in team-a only (a Role and RoleBinding of this test) creates,
// through `kubectl --as`, a policy whose required anti-affinity selects every pod of every
// namespace per node, with remediation: Evict. Workloads of team-a, team-b and team-c share
// nodes. The operator evicts team-a's own violating pod and nothing else, writes no Event
// outside team-a, shows only team-a pods in the policy's status, and counts the findings about
// other namespaces in placement_cross_namespace_violations. Then, under
// --namespaced-policy-cross-namespace-terms=deny, the same stored policy is Degraded with a
// reason naming the field and inert: nothing judged, nothing evicted, no workload written.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/tenant-isolation.test.ts
import assert from 'node:assert/strict';

import { APPLIED, clusterTest, get, runOperator, waitAuditPasses } from '../operator/support.ts';
import { conditionOf, pods, waitStatus } from './support.ts';
import {
  assertTenantConfined,
  everyonePolicy,
  EVERYONE_FIELD,
  runTenantScenario,
  TENANT_OPERATOR_FLAGS,
  tenantWorld,
} from './tenant.ts';

clusterTest(
  'a tenant policy in team-a evicts, tells and shows nothing outside team-a',
  { timeout: 420_000 },
  async ({ t, c, s }) => {
    const w = await tenantWorld(c, s);
    await assertTenantConfined(w);

    await t.test(
      "allowed terms: remediation stays in team-a; the rest is the platform team's",
      async (st) => {
        const op = await runOperator(c, s, ['--leader-elect=false', ...TENANT_OPERATOR_FLAGS]);
        try {
          await runTenantScenario(c, w, op.process, (l) => {
            st.diagnostic(l);
          });
        } finally {
          await op.process.stop();
        }
      },
    );

    await t.test(
      '--namespaced-policy-cross-namespace-terms=deny: the stored policy is Degraded and inert',
      async () => {
        // An Enforce twin, so that "never reaches a workload" is tested too.
        await w.tenant.apply(everyonePolicy(w.a, 'evil-enforce', 'Enforce'));
        const before = new Map(
          (
            await c.json<{ items: { metadata: { name: string; uid: string } }[] }>(
              'get',
              'pods',
              '-n',
              w.a,
            )
          ).items.map((p) => [p.metadata.name, p.metadata.uid]),
        );
        const op = await runOperator(c, s, [
          '--leader-elect=false',
          '--namespaced-policy-cross-namespace-terms=deny',
          ...TENANT_OPERATOR_FLAGS,
        ]);
        for (const name of ['evil', 'evil-enforce']) {
          const status = await waitStatus(
            c,
            w.a,
            name,
            'Degraded: CrossNamespaceTermsDenied',
            (x) => conditionOf(x, 'Degraded')?.reason === 'CrossNamespaceTermsDenied',
          );
          const degraded = conditionOf(status, 'Degraded') ?? assert.fail('no Degraded');
          assert.equal(degraded.status, 'True');
          assert.ok(
            degraded.message.startsWith(`${EVERYONE_FIELD}: selects pods of other namespaces`),
            degraded.message,
          );
          assert.equal(conditionOf(status, 'Ready')?.status, 'False');
          assert.equal(status.violations, 0, 'never judged');
          assert.deepEqual(status.violationSample, []);
        }
        // Let a few audit passes go by: nothing judged, nothing evicted, nothing written.
        await waitAuditPasses(op.process, 3);
        assert.equal(await op.metric('placement_evictions_total', { result: 'evicted' }), 0);
        assert.equal(await op.metric('placement_cross_namespace_violations'), 0);
        assert.equal(await op.writes(), 0);
        assert.deepEqual(op.logged('namespaced policy term broken outside its namespace'), []);
        for (const app of ['a-web', 'a-pinned']) {
          const d = await get(c, 'deployment', w.a, app);
          assert.equal(d.metadata.annotations?.[APPLIED], undefined, `${app} carries no record`);
          assert.equal(
            d.spec.template?.spec.affinity?.['podAntiAffinity'],
            undefined,
            `${app} template untouched`,
          );
          for (const p of await pods(c, w.a, app))
            assert.equal(
              before.get(p.metadata.name),
              p.metadata.uid,
              `${p.metadata.name} not evicted`,
            );
        }
      },
    );
  },
);
