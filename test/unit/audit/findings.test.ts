// What the audit tells of what it found: Events, policy status, metrics, and how far each
// finding travels across namespaces.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  PlacementPolicy,
  PolicyAudit as AuditSpec,
  PolicyRef,
} from '../../../src/api/policy.ts';
import { CROSS_NAMESPACE_FINDING } from '../../../src/audit/continuous-audit.ts';
import {
  HOSTNAME,
  clusterPolicy,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  term,
} from '../builders.ts';
import {
  REQUIRED,
  World,
  placed,
  deployment,
  replicaSet,
  rsOwner,
  affinityTo,
  webNearDb,
  WEB_NEAR_DB,
  shop,
  relabelNode,
  summaryOf,
} from './world.ts';

// ------------------------------------------------------------------ telling

void describe('ContinuousAudit tells', () => {
  void test('one Event per new violation, not one per audit', async (t) => {
    const w = shop();
    w.pods.set(placed('web-1', { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(w.events.length, 1, 'web-1 breaks the rule from the start');
    const [event] = w.events;
    assert.ok(event);
    assert.deepEqual(event.target, {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: 'shop',
      name: 'web-1',
      uid: 'uid-shop-web-1',
    });
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'PlacementViolation');
    assert.match(event.message, /^podAffinity \(PlacementPolicy\/shop\/web-near-db\): /);

    // Judged again and again while it stays: nothing new.
    for (let i = 0; i < 3; i++) await audit.evaluate();
    w.pods.set(placed('other-0', { ns: 'shop', labels: { app: 'other' }, node: 'b2' }));
    await audit.evaluate();
    await audit.fullCheck();
    assert.equal(w.events.length, 1);

    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.deepEqual(
      w.events.map((e) => e.target.name),
      ['web-1', 'web-0'],
      'web-0 breaks it now: one more Event',
    );

    // Cleared, then broken again: that is a new violation.
    relabelNode(w, 'a2', 'a');
    await audit.evaluate();
    assert.equal(w.events.length, 2);
    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.deepEqual(
      w.events.map((e) => e.target.name),
      ['web-1', 'web-0', 'web-0'],
    );
    // The same message again within minutes: the recorder must not drop it as a repeat.
    assert.equal(w.events[2]?.message, w.events[1]?.message);
    assert.ok(w.events.every((e) => !e.deduplicate));
  });

  void test('onChange names only the policies whose results changed', async (t) => {
    const w = shop();
    w.pods.set(placed('cache-0', { ns: 'shop', labels: { app: 'cache' }, node: 'b1' }));
    w.pods.set(placed('worker-0', { ns: 'shop', labels: { app: 'worker' }, node: 'b2' }));
    w.setPolicies(
      webNearDb(),
      namespacedPolicy('shop', 'worker-near-cache', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'worker' }) },
        affinity: affinityTo({ app: 'cache' }),
      }),
    );
    const WORKER: PolicyRef = 'PlacementPolicy/shop/worker-near-cache';
    const audit = w.audit(t);
    await audit.evaluate();
    assert.deepEqual(w.changes, [[WORKER, WEB_NEAR_DB].sort()], 'first audit: every policy');

    w.time += 60_000; // lastAuditTime moves on every audit; that alone is no change
    await audit.evaluate();
    assert.equal(w.changes.length, 1, 'nothing changed');

    relabelNode(w, 'a2', 'b'); // web-0 leaves the db's zone
    await audit.evaluate();
    assert.deepEqual(w.changes.at(-1), [WEB_NEAR_DB]);

    relabelNode(w, 'b2', 'a'); // worker-0 leaves the cache's zone
    await audit.evaluate();
    assert.deepEqual(w.changes.at(-1), [WORKER]);
    assert.equal(w.changes.length, 3);
  });

  void test('the sample is bounded, the count is not', async (t) => {
    const w = shop();
    for (let i = 1; i <= 5; i++)
      w.pods.set(placed(`web-${i}`, { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t, {}, { sampleSize: 3 });
    await audit.evaluate();
    const s = summaryOf(audit, WEB_NEAR_DB);
    assert.equal(s.violations, 5);
    assert.deepEqual(
      s.violationSample.map((v) => v.pod),
      ['shop/web-1', 'shop/web-2', 'shop/web-3'],
    );
  });
});

// ------------------------------------------------------------------ tenancy

void describe('ContinuousAudit keeps a namespaced policy in its namespace', () => {
  const EVIL: PolicyRef = 'PlacementPolicy/team-a/evil';
  /** Issue #16: team-a's policy keeps every pod of every namespace off its pods' nodes. */
  const evil = (audit: AuditSpec = { remediation: 'Evict', maxEvictionsPerMinute: 100 }) =>
    namespacedPolicy('team-a', 'evil', {
      mode: 'Audit',
      affinity: {
        podAntiAffinity: { [REQUIRED]: [term({}, HOSTNAME, { namespaceSelector: {} })] },
      },
      audit,
    });

  /** One pod of a Deployment (and its ReplicaSet) on `node`. */
  const deployed = (w: World, ns: string, app: string, node: string): void => {
    const d = deployment(ns, app, { app });
    w.deployments.set(d);
    w.replicaSets.set(replicaSet(d, 'h1'));
    w.pods.set(
      placed(`${app}-h1-x`, {
        ns,
        labels: { app, 'pod-template-hash': 'h1' },
        node,
        owner: rsOwner(`${app}-h1`),
      }),
    );
  };

  /**
   * Shared node n0: team-a's web pod and a bare debug pod of team-a, team-b's and team-c's web
   * pods. n1 holds team-b's api alone; n2 is free, so every pod there would fit elsewhere.
   */
  const tenants = (policy: PlacementPolicy = evil()): World => {
    const w = new World();
    for (const n of ['n0', 'n1', 'n2']) w.nodes.set(node(n));
    for (const ns of ['team-a', 'team-b', 'team-c']) w.namespaces.set(namespace(ns));
    deployed(w, 'team-a', 'a-web', 'n0');
    w.pods.set(placed('a-debug', { ns: 'team-a', labels: { app: 'debug' }, node: 'n0' }));
    deployed(w, 'team-b', 'b-web', 'n0');
    deployed(w, 'team-c', 'c-web', 'n0');
    deployed(w, 'team-b', 'b-api', 'n1');
    w.setPolicies(policy);
    return w;
  };

  const OUTSIDE = /team-b|team-c/;

  void test('remediation evicts only pods of workloads it targets, in its own namespace', async (t) => {
    const w = tenants();
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    // a-web breaks the term; a-debug only by symmetry (not targeted); b-web and c-web by
    // symmetry too, in namespaces the policy has no business in.
    assert.deepEqual(w.evictor.calls, [
      { pod: 'team-a/a-web-h1-x', dryRun: false, uid: 'uid-team-a-a-web-h1-x' },
    ]);
    assert.deepEqual(
      w.logged('evicted violating pod').map((l) => l.meta['pod']),
      ['team-a/a-web-h1-x'],
    );
  });

  void test('its status, placement_violations and Events show only pods of its namespace', async (t) => {
    const w = tenants();
    const audit = w.audit(t);
    await audit.evaluate();
    const s = summaryOf(audit, EVIL);
    assert.deepEqual(
      s.violationSample.map((v) => [v.pod, v.rule]),
      [
        ['team-a/a-debug', 'symmetricAntiAffinity'],
        ['team-a/a-web-h1-x', 'podAntiAffinity'],
      ],
    );
    assert.equal(s.violations, 2);
    for (const v of s.violationSample) assert.doesNotMatch(v.message, OUTSIDE, v.message);
    assert.deepEqual(w.metrics.violations.get(EVIL), {
      podAntiAffinity: 1,
      symmetricAntiAffinity: 1,
    });
    assert.deepEqual(
      w.events.map((e) => [e.target.namespace, e.target.name, e.reason]),
      [
        ['team-a', 'a-debug', 'PlacementViolation'],
        ['team-a', 'a-web-h1-x', 'PlacementViolation'],
      ],
    );
    for (const e of w.events) assert.doesNotMatch(e.message, OUTSIDE, e.message);
    assert.deepEqual(
      w.logged('pod breaks a placement rule').map((l) => l.meta['pod']),
      ['team-a/a-debug', 'team-a/a-web-h1-x'],
    );
  });

  void test('findings outside its namespace: a metric without pod names, one log line each when new', async (t) => {
    const w = tenants();
    const audit = w.audit(t);
    await audit.evaluate();
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), { symmetricAntiAffinity: 2 });
    const lines = () =>
      w
        .logged(CROSS_NAMESPACE_FINDING)
        .map((l) => [l.level, l.meta['policy'], l.meta['pod'], l.meta['rule']]);
    assert.deepEqual(lines(), [
      ['info', EVIL, 'team-b/b-web-h1-x', 'symmetricAntiAffinity'],
      ['info', EVIL, 'team-c/c-web-h1-x', 'symmetricAntiAffinity'],
    ]);
    // Judged again while they last: nothing new to say.
    for (let i = 0; i < 3; i++) await audit.evaluate();
    await audit.fullCheck();
    assert.equal(lines().length, 2);
    // team-a's web pod leaves n0: the findings end; it comes back: they are new again.
    const aWeb = w.pods.get('team-a/a-web-h1-x') ?? assert.fail('no a-web pod');
    w.pods.set({ ...aWeb, spec: { ...aWeb.spec, nodeName: 'n2' } });
    await audit.evaluate();
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), {});
    w.pods.set(aWeb);
    await audit.evaluate();
    assert.equal(lines().length, 4);
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), { symmetricAntiAffinity: 2 });
    // None of it reached the policy's status or an Event.
    assert.equal(summaryOf(audit, EVIL).violations, 2);
    assert.ok(w.events.every((e) => e.target.namespace === 'team-a'));
  });

  void test('a cluster policy keeps its reach; the cross-namespace metric is for namespaced ones', async (t) => {
    const w = tenants(
      clusterPolicy('everyone', {
        mode: 'Audit',
        targets: { namespaces: ['team-a'] },
        affinity: {
          podAntiAffinity: { [REQUIRED]: [term({}, HOSTNAME, { namespaceSelector: {} })] },
        },
        audit: { remediation: 'Evict', maxEvictionsPerMinute: 100 },
      }),
    );
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    const s = summaryOf(audit, 'ClusterPlacementPolicy/everyone');
    assert.deepEqual(
      s.violationSample.map((v) => v.pod),
      ['team-a/a-debug', 'team-a/a-web-h1-x', 'team-b/b-web-h1-x', 'team-c/c-web-h1-x'],
    );
    // It still evicts only what it targets.
    assert.deepEqual(
      w.evictor.calls.map((c) => c.pod),
      ['team-a/a-web-h1-x'],
    );
    assert.equal(w.metrics.crossNamespace.size, 0);
  });
});
