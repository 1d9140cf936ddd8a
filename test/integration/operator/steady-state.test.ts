// "No write when nothing changed: a steady cluster costs zero workload writes" (docs/architecture.md, "Rewriting").
// Once two policies are enforced on every kind of workload the operator rewrites, the
// operator resyncs every 5 s, four times (they stand in for hours of 10-minute resyncs), and
// must not write a single workload or policy: the metrics say so, and so do the objects'
// resourceVersions.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/steady-state.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  HOSTNAME,
  list,
  listOf,
  policy,
  PREF,
  REQ,
  runOperator,
  waitAdvanced,
  waitControllersDone,
  waitEnforced,
  ZONE,
  type Cluster,
  type JsonObject,
  workload,
} from './support.ts';

const KINDS = 'deployments,statefulsets,replicasets,daemonsets,cronjobs';
/** Resyncs observed: each looks at all six workloads again. */
const RESYNCS = 4;
const WORKLOADS = 6;
const RESYNC = '5s';

const ownerTerms: JsonObject = {
  nodeAffinity: {
    [REQ]: {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
        { matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
      ],
    },
  },
  podAntiAffinity: {
    [PREF]: [
      {
        weight: 7,
        podAffinityTerm: {
          labelSelector: { matchLabels: { role: 'noisy' } },
          topologyKey: HOSTNAME,
        },
      },
    ],
  },
};

/** resourceVersion of every workload in `ns`, by kind/name. */
async function versions(c: Cluster, ns: string): Promise<Map<string, string>> {
  const objects = await listOf(c, KINDS, ns);
  return new Map(
    objects.map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.resourceVersion ?? '']),
  );
}

async function rolledOut(c: Cluster, ns: string): Promise<void> {
  for (const w of ['deployment/owned', 'deployment/bare', 'statefulset/db', 'daemonset/agent']) {
    await c.kubectl('rollout', 'status', w, '-n', ns, '--timeout=90s');
  }
}

clusterTest(
  'a steady cluster costs zero writes',
  { timeout: 170_000, namespace: 'steady' },
  async ({ t, c, s, ns }) => {
    const labels = (app: string) => ({ labels: { app, tier: 'steady' }, selector: { app } });
    await c.apply(
      list(
        workload('Deployment', ns, 'owned', {
          ...labels('owned'),
          replicas: 2,
          affinity: ownerTerms,
        }),
        workload('Deployment', ns, 'bare', { ...labels('bare'), replicas: 1 }),
        workload('StatefulSet', ns, 'db', {
          ...labels('db'),
          replicas: 2,
          spec: { podManagementPolicy: 'Parallel' },
        }),
        // A ReplicaSet of its own (no Deployment above it) is rewritten like the others.
        workload('ReplicaSet', ns, 'standalone', { ...labels('standalone'), replicas: 1 }),
        workload('DaemonSet', ns, 'agent', labels('agent')),
        workload('CronJob', ns, 'report', { labels: { app: 'report', tier: 'steady' } }),
      ),
    );
    // Debug logs: each policy status write is logged ("policy status updated").
    const op = await runOperator(c, s, ['--resync-interval', RESYNC, '--log-level', 'debug']);
    const kinds = ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'CronJob'];
    await c.apply(
      list(
        policy(ns, 'spread', {
          targets: { kinds, selector: { matchLabels: { tier: 'steady' } } },
          spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
          affinity: {
            nodeAffinity: {
              [REQ]: {
                nodeSelectorTerms: [
                  {
                    matchExpressions: [
                      { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] },
                    ],
                  },
                ],
              },
            },
          },
        }),
        policy(ns, 'zones', {
          priority: 10,
          targets: {
            kinds,
            selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['steady'] }] },
          },
          spreadAcross: [{ topologyKey: ZONE, mode: 'Preferred', weight: 40 }],
          affinity: {
            podAffinity: {
              [PREF]: [
                {
                  weight: 3,
                  podAffinityTerm: {
                    labelSelector: { matchLabels: { app: 'cache' } },
                    topologyKey: ZONE,
                  },
                },
              ],
            },
          },
        }),
      ),
    );
    await waitEnforced(c, ns, 'spread', 6);
    await waitEnforced(c, ns, 'zones', 6);
    await rolledOut(c, ns);
    // Settled: the last rollout's status updates are in (each controller says it is done).
    const rolled = Date.now();
    await waitControllersDone(c, ns, KINDS);
    t.diagnostic(`controllers done ${(Date.now() - rolled) / 1000} s after the rollouts`);

    const writes0 = await op.writes();
    const reconciles = () =>
      op.metric('controller_runtime_reconcile_total', { controller: 'placement-workload' });
    const reconciles0 = await reconciles();
    const versions0 = await versions(c, ns);
    const statusWrites0 = op.logged('policy status updated').length;
    t.diagnostic(
      `converged after ${writes0} workload writes; observing ${RESYNCS} resyncs of ${RESYNC}`,
    );

    // The resyncs happen: each looks at every workload again, and writes nothing.
    const started = Date.now();
    const reached = await waitAdvanced(
      `${RESYNCS} resyncs of the ${WORKLOADS} workloads`,
      reconciles,
      reconciles0,
      RESYNCS * WORKLOADS,
      60_000,
    );
    t.diagnostic(
      `${reached - reconciles0} workload reconciles in ${(Date.now() - started) / 1000} s`,
    );
    assert.equal(await op.writes(), writes0, 'no workload write while nothing changes');
    const versions1 = await versions(c, ns);
    assert.deepEqual(
      Object.fromEntries(versions1),
      Object.fromEntries(versions0),
      'no workload changed',
    );
    // Policy status is written when it changes, and lastAuditTime is refreshed at most once a
    // minute: over four 5 s resyncs, at most one write per policy (a status the API server prunes would
    // differ from the cache forever and be re-sent on every reconcile).
    const statusWrites = op.logged('policy status updated').length - statusWrites0;
    assert.ok(statusWrites <= 2, `${statusWrites} policy status writes while nothing changed`);
    assert.equal(await op.writes(), writes0);
    for (const name of ['placement_workload_writes_total', 'placement_workload_reverts_total']) {
      for (const result of ['conflict', 'failed']) {
        t.diagnostic(`${name}{result="${result}"} = ${await op.metric(name, { result })}`);
      }
    }
  },
);
