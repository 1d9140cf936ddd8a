// The rollout budget (docs/operations.md): with --rollout-budget 2, a new policy over six
// Deployments never has more than two of them rolling because of the operator at once; the
// policy status shows the others pending, waiting for the budget; all converge.
//
// The Deployments are sampled every 200 ms while they converge. A Deployment counts as
// rolling from the operator's template write until its rollout is complete: its controller
// has not observed the new generation, or not every replica is updated and available, or
// pods of an old ReplicaSet remain. minReadySeconds makes each rollout last a few seconds,
// so that the waves are visible.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/rollout-budget.test.ts
import assert from 'node:assert/strict';

import { loadKubeConfig, makeKubeClients } from '../../../src/kube/client.ts';
import {
  appliedPolicies,
  clusterTest,
  condition,
  deployment,
  HOSTNAME,
  list,
  policy,
  runOperator,
  sleep,
  waitEnforced,
  waitFor,
  waitRolledOut,
  type Obj,
  type PolicyStatus,
} from './support.ts';

const BUDGET = 2;
const WORKLOADS = 6;
/** How often the invariants (at most BUDGET rolling at once) are sampled until convergence. */
const SAMPLE_MS = 200;
const CONVERGE_MS = 150_000;

/** Rolling: from the template write until the rollout is complete. */
function rolling(d: Obj): boolean {
  const st = (d.status ?? {}) as Record<string, number | undefined>;
  const want = d.spec.replicas ?? 1;
  const updated = st['updatedReplicas'] ?? 0;
  return (
    (st['observedGeneration'] ?? 0) < (d.metadata.generation ?? 0) ||
    updated < want ||
    (st['availableReplicas'] ?? 0) < want ||
    (st['replicas'] ?? 0) > updated
  );
}

clusterTest(
  'rollout budget: at most 2 workloads rolling because of the operator',
  { timeout: 180_000, namespace: 'budget' },
  async ({ t, c, s, ns }) => {
    const names = Array.from({ length: WORKLOADS }, (_, i) => `svc-${i}`);
    await c.apply(
      list(
        ...names.map((n) =>
          deployment(ns, n, {
            replicas: 2,
            labels: { app: n, tier: 'budget' },
            selector: { app: n },
            spec: { minReadySeconds: 3 },
          }),
        ),
      ),
    );
    await waitRolledOut(c, ns);
    const op = await runOperator(c, s, ['--rollout-budget', String(BUDGET)]);
    const writes0 = await op.writes();

    await c.apply(
      JSON.stringify(
        policy(ns, 'spread-all', {
          targets: { selector: { matchLabels: { tier: 'budget' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
        }),
      ),
    );

    // Straight from the API (no kubectl process per sample), so that 200 ms is the period.
    const api = makeKubeClients(loadKubeConfig({ kubeconfig: c.kubeconfigPath }));
    const sample = async (): Promise<{ deployments: Obj[]; status: PolicyStatus | undefined }> => {
      const [deployments, p] = await Promise.all([
        api.apps.listNamespacedDeployment({ namespace: ns }),
        api.customObjects.getNamespacedCustomObject({
          group: 'placement.dev',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'placementpolicies',
          name: 'spread-all',
        }) as Promise<{ status?: PolicyStatus }>,
      ]);
      // The typed objects carry the same fields the kubectl JSON does.
      return {
        deployments: deployments.items.map(
          (d) => Object.assign(d, { kind: 'Deployment' }) as unknown as Obj,
        ),
        status: p.status,
      };
    };

    let samples = 0;
    let maxRolling = 0;
    let maxInUse = 0;
    let waitingSeen: PolicyStatus | undefined;
    const timeline: string[] = [];
    const deadline = Date.now() + CONVERGE_MS;
    for (;;) {
      const { deployments, status } = await sample();
      const written = deployments.filter((d) => appliedPolicies(d) !== undefined);
      const now = deployments.filter(rolling).map((d) => d.metadata.name);
      const inUse = await op.metric('placement_rollout_budget_in_use');
      samples++;
      maxRolling = Math.max(maxRolling, now.length);
      maxInUse = Math.max(maxInUse, inUse);
      const line = `written ${written.length}, rolling [${now.join(' ')}], budget in use ${inUse}, status pending ${String(status?.pending)}`;
      if (timeline.at(-1) !== line) timeline.push(line);
      assert.ok(
        now.length <= BUDGET,
        `${now.length} rolling at once: ${now.join(', ')}\n${timeline.join('\n')}`,
      );
      assert.ok(inUse <= BUDGET, `budget in use ${inUse}`);
      const ready = status === undefined ? undefined : condition(status, 'Ready');
      if (
        waitingSeen === undefined &&
        (status?.pending ?? 0) >= 1 &&
        ready?.status === 'False' &&
        ready.message.includes('waiting for the rollout budget')
      ) {
        waitingSeen = status;
      }
      if (written.length === WORKLOADS && now.length === 0) break;
      assert.ok(
        Date.now() < deadline,
        `not converged after ${CONVERGE_MS} ms:\n${timeline.join('\n')}`,
      );
      await sleep(SAMPLE_MS);
    }
    t.diagnostic(
      `${samples} samples; at most ${maxRolling} rolling, budget in use at most ${maxInUse}`,
    );
    t.diagnostic(timeline.join('\n'));
    assert.equal(maxRolling, BUDGET, 'the budget was used, not more');
    assert.ok(waitingSeen, 'status showed workloads pending, waiting for the rollout budget');
    t.diagnostic(
      `while waiting: ${JSON.stringify(condition(waitingSeen, 'Ready'))}, pending ${String(waitingSeen.pending)}`,
    );
    assert.ok((waitingSeen.pending ?? 0) >= 1);

    await waitEnforced(c, ns, 'spread-all', WORKLOADS);
    await waitRolledOut(c, ns);
    assert.equal((await op.writes()) - writes0, WORKLOADS, 'each Deployment written once');
    // Every slot is given back, and the gauge says so (once the last status events are in).
    await waitFor(
      'placement_rollout_budget_in_use 0',
      async () => ((await op.metric('placement_rollout_budget_in_use')) === 0 ? true : undefined),
      15_000,
    );
  },
);
