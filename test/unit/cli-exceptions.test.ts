// The audit CLI with PlacementExceptions in its input List: an exempted workload is not
// judged by the policy, the output lists it and the exceptions the policies refuse (JSON
// and table), and an exception that cannot be read is refused like any bad input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { EXIT, run } from '../../src/cli/kubectl-placement.ts';

const HOSTNAME = 'kubernetes.io/hostname';

function runOn(list: unknown, ...args: string[]): { code: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = run(['audit', '-f', 'cluster.json', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: () => JSON.stringify(list),
  });
  return { code, stdout, stderr };
}

const nodeNamed = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels: { [HOSTNAME]: name } },
});
const ns = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
});
/** A Deployment's pod, as `kubectl get pods` shows it (the CLI finds the Deployment by name). */
const deploymentPod = (namespace: string, app: string, i: number, nodeName: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: `${app}-7c9d6-${i}`,
    namespace,
    labels: { app, 'pod-template-hash': '7c9d6' },
    ownerReferences: [{ kind: 'ReplicaSet', name: `${app}-7c9d6`, controller: true }],
  },
  spec: { nodeName },
  status: { phase: 'Running' },
});
/** The Deployment and ReplicaSet of an app's pods: with them in the input, ownership is exact. */
const deploymentObjects = (namespace: string, app: string) => [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, namespace, labels: { app } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app } },
      template: { metadata: { labels: { app } }, spec: { containers: [] } },
    },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${app}-7c9d6`,
      namespace,
      labels: { app, 'pod-template-hash': '7c9d6' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: app, controller: true }],
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app, 'pod-template-hash': '7c9d6' } },
      template: {
        metadata: { labels: { app, 'pod-template-hash': '7c9d6' } },
        spec: { containers: [] },
      },
    },
  },
];
const spread = (exceptions: Record<string, unknown>) => ({
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'ClusterPlacementPolicy',
  metadata: { name: 'spread' },
  spec: { spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }], exceptions },
});
const exemptDb = {
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'PlacementException',
  metadata: { name: 'db-local-volume', namespace: 'team-a' },
  spec: {
    policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
    workloads: { kinds: ['Deployment'], names: ['db'] },
    reason: 'db keeps its data on a local volume of node-1',
  },
};
const cluster = (...extra: unknown[]) => ({
  apiVersion: 'v1',
  kind: 'List',
  items: [
    nodeNamed('node-1'),
    nodeNamed('node-2'),
    ns('team-a'),
    deploymentPod('team-a', 'db', 0, 'node-1'),
    deploymentPod('team-a', 'db', 1, 'node-1'),
    deploymentPod('team-a', 'web', 0, 'node-1'),
    deploymentPod('team-a', 'web', 1, 'node-2'),
    ...extra,
    ...deploymentObjects('team-a', 'db'),
    ...deploymentObjects('team-a', 'web'),
  ],
});

interface JsonReport {
  violations: { pod: string; source: string }[];
  exempted?: { workload: string; policy: string; exceptions: string[] }[];
  exceptions?: { exception: string; accepted: boolean; reason?: string; message: string }[];
  summary: Record<string, number>;
}

void describe('audit with PlacementExceptions', () => {
  void test('an accepted exception: no violation, the workload listed as exempted (JSON)', () => {
    const r = runOn(cluster(spread({ allowed: true }), exemptDb), '-o', 'json');
    assert.equal(r.code, EXIT.ok, r.stderr);
    const report = JSON.parse(r.stdout) as JsonReport;
    assert.deepEqual(report.violations, []);
    assert.deepEqual(report.exempted, [
      {
        workload: 'Deployment/team-a/db',
        policy: 'ClusterPlacementPolicy/spread',
        exceptions: ['PlacementException/team-a/db-local-volume'],
      },
    ]);
    assert.deepEqual(
      report.exceptions?.map((e) => [e.exception, e.accepted]),
      [['PlacementException/team-a/db-local-volume', true]],
    );
    assert.deepEqual(report.summary, { pods: 4, nodes: 2, violations: 0, exempted: 1 });
  });

  void test('the same cluster without the exception: db breaks the spread', () => {
    const r = runOn(cluster(spread({ allowed: true })), '-o', 'json');
    assert.equal(r.code, EXIT.violations);
    const report = JSON.parse(r.stdout) as JsonReport;
    assert.deepEqual([...new Set(report.violations.map((v) => v.pod))].sort(), [
      'team-a/db-7c9d6-0',
      'team-a/db-7c9d6-1',
    ]);
    assert.deepEqual(Object.keys(report), ['violations', 'summary'], 'no exception, no new keys');
  });

  void test('a refused exception has no effect and is listed with its reason (JSON)', () => {
    const r = runOn(cluster(spread({ allowed: false }), exemptDb), '-o', 'json');
    assert.equal(r.code, EXIT.violations);
    const report = JSON.parse(r.stdout) as JsonReport;
    assert.equal(report.violations.length > 0, true);
    assert.deepEqual(report.exempted, []);
    assert.deepEqual(report.exceptions, [
      {
        exception: 'PlacementException/team-a/db-local-volume',
        policy: 'ClusterPlacementPolicy/spread',
        accepted: false,
        reason: 'NotAllowed',
        message:
          'ClusterPlacementPolicy spread does not allow exceptions (spec.exceptions.allowed is not true)',
      },
    ]);
    assert.equal(report.summary['exempted'], 0);
  });

  void test('table: the exempted workloads, then the summary that counts them', () => {
    const r = runOn(cluster(spread({ allowed: true }), exemptDb));
    assert.equal(r.code, EXIT.ok);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^EXEMPTED WORKLOAD +FROM POLICY +BY$/);
    assert.match(
      lines[1] ?? '',
      /^Deployment\/team-a\/db +ClusterPlacementPolicy\/spread +PlacementException\/team-a\/db-local-volume$/,
    );
    assert.equal(
      lines.at(-1),
      '0 violation(s) among 4 placed pod(s) on 2 node(s); 1 workload(s) exempted from a policy',
    );
  });

  void test('table: a refused exception is listed with the policy’s reason', () => {
    const r = runOn(cluster(spread({ allowed: true, namespaces: ['team-b'] }), exemptDb));
    assert.equal(r.code, EXIT.violations);
    assert.match(r.stdout, /^REFUSED EXCEPTION +POLICY +REASON +MESSAGE$/m);
    assert.match(
      r.stdout,
      /^PlacementException\/team-a\/db-local-volume +ClusterPlacementPolicy\/spread +NamespaceNotAllowed +ClusterPlacementPolicy spread does not allow exceptions from namespace team-a/m,
    );
  });

  void test('an exception that cannot be read: exit 2, one line naming it and the field', () => {
    const bad = { ...exemptDb, spec: { ...exemptDb.spec, workloads: { kinds: ['Deployment'] } } };
    const r = runOn(cluster(spread({ allowed: true }), bad));
    assert.equal(r.code, EXIT.badInput);
    assert.equal(
      r.stderr,
      'kubectl-placement: cluster.json: PlacementException team-a/db-local-volume: spec.workloads: ' +
        'needs a selector or names: which workloads are exempted\n',
    );
  });

  void test('an exception whose shape is wrong: exit 2, naming the item', () => {
    const bad = { ...exemptDb, spec: { ...exemptDb.spec, policyRef: 'spread' } };
    const r = runOn(cluster(spread({ allowed: true }), bad));
    assert.equal(r.code, EXIT.badInput);
    assert.match(
      r.stderr,
      /cluster\.json: items\[8\] \(PlacementException team-a\/db-local-volume\): spec\.policyRef needs a string kind and name/,
    );
  });
});
