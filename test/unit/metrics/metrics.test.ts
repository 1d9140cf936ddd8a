import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  createMetrics,
  reconcileObserver,
  workQueueListener,
  type Metrics,
} from '../../../src/metrics/index.ts';

/** The sample lines of a scrape (no HELP/TYPE comments). */
async function samples(metrics: Metrics): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

interface Case {
  readonly name: string;
  /** What to do to a fresh registry (controllers `policy` and `workload`). */
  readonly act: (metrics: Metrics) => void;
  /** Sample lines that must be present, exactly. */
  readonly present: readonly string[];
  /** Prefixes no sample line may start with. */
  readonly absent?: readonly string[];
}

const cases: Case[] = [
  {
    name: 'every known controller starts with all reconcile results at 0',
    act: () => undefined,
    present: ['policy', 'workload'].flatMap((c) => [
      `controller_runtime_reconcile_total{controller="${c}",result="success"} 0`,
      `controller_runtime_reconcile_total{controller="${c}",result="error"} 0`,
      `controller_runtime_reconcile_total{controller="${c}",result="requeue"} 0`,
      `controller_runtime_reconcile_total{controller="${c}",result="requeue_after"} 0`,
      `controller_runtime_reconcile_errors_total{controller="${c}"} 0`,
      `controller_runtime_reconcile_panics_total{controller="${c}"} 0`,
      `controller_runtime_reconcile_time_seconds_count{controller="${c}"} 0`,
      `controller_runtime_max_concurrent_reconciles{controller="${c}"} 0`,
      `controller_runtime_active_workers{controller="${c}"} 0`,
      `workqueue_depth{name="${c}"} 0`,
      `workqueue_adds_total{name="${c}"} 0`,
      `workqueue_retries_total{name="${c}"} 0`,
      `workqueue_queue_duration_seconds_count{name="${c}"} 0`,
      `workqueue_work_duration_seconds_count{name="${c}"} 0`,
      `workqueue_unfinished_work_seconds{name="${c}"} 0`,
      `workqueue_longest_running_processor_seconds{name="${c}"} 0`,
    ]),
  },
  {
    name: 'known leases and outcome counters start at 0',
    act: () => undefined,
    present: [
      'leader_election_master_status{name="placement-operator"} 0',
      'placement_workload_writes_total{result="written"} 0',
      'placement_workload_writes_total{result="conflict"} 0',
      'placement_workload_reverts_total{result="failed"} 0',
      'placement_evictions_total{result="blocked"} 0',
      'placement_rollout_budget_in_use 0',
      'placement_audit_duration_seconds_count 0',
    ],
  },
  {
    name: 'the reconcile observer counts results, errors, panics and time',
    act: (metrics) => {
      const observe = reconcileObserver(metrics, 'policy');
      observe.workers(4);
      observe.activeWorkers(2);
      observe.reconciled('success', 0.2, false);
      observe.reconciled('error', 0.01, true);
      observe.reconciled('requeue_after', 0.01, false);
    },
    present: [
      'controller_runtime_max_concurrent_reconciles{controller="policy"} 4',
      'controller_runtime_active_workers{controller="policy"} 2',
      'controller_runtime_reconcile_total{controller="policy",result="success"} 1',
      'controller_runtime_reconcile_total{controller="policy",result="error"} 1',
      'controller_runtime_reconcile_total{controller="policy",result="requeue_after"} 1',
      'controller_runtime_reconcile_errors_total{controller="policy"} 1',
      'controller_runtime_reconcile_panics_total{controller="policy"} 1',
      'controller_runtime_reconcile_time_seconds_count{controller="policy"} 3',
      'controller_runtime_reconcile_time_seconds_bucket{le="0.01",controller="policy"} 2',
      'controller_runtime_reconcile_total{controller="workload",result="success"} 0',
    ],
  },
  {
    name: 'the queue listener converts ms to seconds',
    act: (metrics) => {
      const listen = workQueueListener(metrics, 'workload');
      listen.added(1);
      listen.added(2);
      listen.started(1, 250);
      listen.finished(1500);
      listen.retried();
      listen.unfinishedWork(3000, 2000);
    },
    present: [
      'workqueue_adds_total{name="workload"} 2',
      'workqueue_depth{name="workload"} 1',
      'workqueue_queue_duration_seconds_sum{name="workload"} 0.25',
      'workqueue_work_duration_seconds_sum{name="workload"} 1.5',
      'workqueue_retries_total{name="workload"} 1',
      'workqueue_unfinished_work_seconds{name="workload"} 3',
      'workqueue_longest_running_processor_seconds{name="workload"} 2',
    ],
  },
  {
    name: 'policy workloads and violations are labelled by policy, state and rule',
    act: ({ placement }) => {
      placement.setPolicyWorkloads('PlacementPolicy/shop/spread-web', {
        matched: 5,
        enforced: 3,
        pending: 2,
        exempted: 1,
      });
      placement.setViolations('ClusterPlacementPolicy/zones', { podAntiAffinity: 4 });
      placement.setViolations('pod', { podAffinity: 1, topologySpread: 2 });
      placement.setViolations('ClusterPlacementPolicy/gpu', { nodeAffinity: 3 });
      placement.setCrossNamespaceViolations('PlacementPolicy/team-a/evil', {
        symmetricAntiAffinity: 3,
      });
    },
    present: [
      'placement_cross_namespace_violations{policy="PlacementPolicy/team-a/evil",rule="symmetricAntiAffinity"} 3',
      'placement_cross_namespace_violations{policy="PlacementPolicy/team-a/evil",rule="podAffinity"} 0',
      'placement_policy_workloads{policy="PlacementPolicy/shop/spread-web",state="matched"} 5',
      'placement_policy_workloads{policy="PlacementPolicy/shop/spread-web",state="enforced"} 3',
      'placement_policy_workloads{policy="PlacementPolicy/shop/spread-web",state="pending"} 2',
      'placement_policy_workloads{policy="PlacementPolicy/shop/spread-web",state="exempted"} 1',
      'placement_violations{policy="ClusterPlacementPolicy/zones",rule="podAntiAffinity"} 4',
      'placement_violations{policy="ClusterPlacementPolicy/zones",rule="podAffinity"} 0',
      'placement_violations{policy="ClusterPlacementPolicy/zones",rule="symmetricAntiAffinity"} 0',
      'placement_violations{policy="pod",rule="podAffinity"} 1',
      'placement_violations{policy="pod",rule="topologySpread"} 2',
      'placement_violations{policy="pod",rule="nodeSelector"} 0',
      'placement_violations{policy="ClusterPlacementPolicy/gpu",rule="nodeAffinity"} 3',
    ],
  },
  {
    name: 'a deleted policy leaves no series behind',
    act: ({ placement }) => {
      placement.setPolicyWorkloads('PlacementPolicy/shop/old', {
        matched: 1,
        enforced: 1,
        pending: 0,
        exempted: 0,
      });
      placement.setViolations('PlacementPolicy/shop/old', { podAffinity: 2 });
      placement.setCrossNamespaceViolations('PlacementPolicy/shop/old', {});
      placement.setViolations('PlacementPolicy/shop/kept', {});
      placement.forgetPolicy('PlacementPolicy/shop/old');
    },
    present: ['placement_violations{policy="PlacementPolicy/shop/kept",rule="podAffinity"} 0'],
    absent: [
      'placement_policy_workloads{policy="PlacementPolicy/shop/old"',
      'placement_violations{policy="PlacementPolicy/shop/old"',
      'placement_cross_namespace_violations{policy="PlacementPolicy/shop/old"',
    ],
  },
  {
    name: 'audit, writes, reverts, evictions and the rollout budget',
    act: ({ placement }) => {
      placement.auditFinished(0.3, new Date(Date.UTC(2026, 10, 25, 12, 0, 0)));
      placement.auditFinished(2, undefined);
      placement.workloadWritten('written');
      placement.workloadWritten('written');
      placement.workloadWritten('conflict');
      placement.workloadReverted('gone');
      placement.evicted('blocked');
      placement.setRolloutBudget(3, 10);
    },
    present: [
      'placement_audit_duration_seconds_count 2',
      'placement_audit_duration_seconds_bucket{le="0.5"} 1',
      'placement_audit_last_success_timestamp_seconds 1795608000',
      'placement_workload_writes_total{result="written"} 2',
      'placement_workload_writes_total{result="conflict"} 1',
      'placement_workload_reverts_total{result="gone"} 1',
      'placement_evictions_total{result="blocked"} 1',
      'placement_rollout_budget_in_use 3',
      'placement_rollout_budget_limit 10',
    ],
  },
];

for (const c of cases) {
  void test(`metrics: ${c.name}`, async () => {
    const metrics = createMetrics({
      controllers: ['policy', 'workload'],
      leases: ['placement-operator'],
      processMetrics: false,
    });
    c.act(metrics);
    const lines = await samples(metrics);
    for (const line of c.present) assert.ok(lines.includes(line), `missing: ${line}`);
    for (const prefix of c.absent ?? []) {
      assert.deepEqual(
        lines.filter((line) => line.startsWith(prefix)),
        [],
      );
    }
  });
}

void test('metrics: each registry is its own, and process metrics are on by default', async () => {
  const a = createMetrics({ controllers: ['x'] });
  const b = createMetrics({ processMetrics: false });
  const textA = await a.registry.metrics();
  assert.match(textA, /^process_cpu_user_seconds_total /m);
  assert.match(textA, /^nodejs_eventloop_lag_seconds /m);
  assert.doesNotMatch(await b.registry.metrics(), /process_cpu|controller="x"/);
});
