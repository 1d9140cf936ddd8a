// The continuous audit's pass: what it judges after each change, and when.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Pod, PodAffinityTerm } from '../../../src/api/core.ts';
import {
  HOSTNAME,
  ZONE,
  labelsIn,
  namespace,
  namespacedPolicy,
  nodeInZone,
  term,
  type PodOptions,
} from '../builders.ts';
import {
  REQUIRED,
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

// ------------------------------------------------------------------ judging

void describe('ContinuousAudit reports drift', () => {
  void test('a node relabelled out of the zone breaks the rule, and relabelling back clears it', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);

    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    const s = summaryOf(audit, WEB_NEAR_DB);
    assert.equal(s.violations, 1);
    assert.deepEqual(
      s.violationSample.map((v) => [v.pod, v.node, v.rule, v.source]),
      [['shop/web-0', 'a2', 'podAffinity', WEB_NEAR_DB]],
    );
    assert.match(s.violationSample[0]?.message ?? '', /topology\.kubernetes\.io\/zone=b/);
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), { podAffinity: 1 });

    relabelNode(w, 'a2', 'a');
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), {});
  });

  void test('a relabelled node shows in status and the metric before feasibility is computed', async (t) => {
    const w = shop();
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 3 }));
    // Slices of no time: the feasibility computation lets the event loop run after each pod.
    const audit = w.audit(t, {}, { sliceMs: 0 });
    await audit.evaluate();
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), {});

    relabelNode(w, 'a2', 'b'); // a zone feasibility counted: it is computed again
    const runs = audit.stats.feasibilityRuns;
    let seen: { metric: unknown; status: number } | undefined;
    const look = (): void => {
      if (audit.stats.feasibilityRuns === runs) {
        setImmediate(look);
        return;
      }
      seen = {
        metric: w.metrics.violations.get(WEB_NEAR_DB),
        status: summaryOf(audit, WEB_NEAR_DB).violations,
      };
    };
    setImmediate(look);
    await audit.evaluate();
    assert.deepEqual(
      seen,
      { metric: { podAffinity: 1 }, status: 1 },
      'while feasibility was computed',
    );
    assert.equal(audit.stats.feasibilityRuns, runs + 1);
  });

  void test("a pod's label, a namespace's label and a workload's template each move pods in and out", async (t) => {
    const w = shop();
    w.namespaces.set(namespace('data', { tier: 'data' }));
    w.pods.set(placed('cache-0', { ns: 'data', labels: { app: 'cache' }, node: 'a1' }));
    w.pods.set(placed('worker-0', { ns: 'shop', labels: { app: 'worker' }, node: 'a2' }));
    const cacheTerm: PodAffinityTerm = term(labelsIn({ app: 'cache' }), ZONE, {
      namespaceSelector: labelsIn({ tier: 'data' }),
    });
    const api = deployment('shop', 'api', { app: 'api' });
    w.deployments.set(api);
    w.replicaSets.set(replicaSet(api, 'abc'));
    w.pods.set(
      placed('api-abc-1', {
        ns: 'shop',
        labels: { app: 'api', 'pod-template-hash': 'abc' },
        node: 'b1',
        owner: rsOwner('api-abc'),
      }),
    );
    w.setPolicies(
      webNearDb(),
      namespacedPolicy('shop', 'near-cache', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'worker' }) },
        affinity: { podAffinity: { [REQUIRED]: [cacheTerm] } },
      }),
      namespacedPolicy('shop', 'api-near-db', {
        targets: { selector: labelsIn({ app: 'api' }) },
        affinity: affinityTo({ app: 'db' }),
      }),
    );
    const audit = w.audit(t);
    const count = async (name: string): Promise<number> => {
      await audit.evaluate();
      return summaryOf(audit, `PlacementPolicy/shop/${name}`).violations;
    };
    // The api Deployment's pod runs in zone b, away from the db: a violation from the start.
    assert.equal(await count('api-near-db'), 1);

    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db-retired' }, node: 'a1' }));
    assert.equal(await count('web-near-db'), 1, 'db pod relabelled');
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1' }));
    assert.equal(await count('web-near-db'), 0, 'db pod label back');

    w.namespaces.set(namespace('data', { tier: 'archive' }));
    assert.equal(await count('near-cache'), 1, 'namespace relabelled');
    w.namespaces.set(namespace('data', { tier: 'data' }));
    assert.equal(await count('near-cache'), 0, 'namespace label back');

    // The template no longer matches the policy's selector: its pods are not the policy's.
    w.deployments.set(
      deployment(
        'shop',
        'api',
        { app: 'api', track: 'canary' },
        {
          templateLabels: { app: 'api-v2' },
        },
      ),
    );
    assert.equal(await count('api-near-db'), 0, 'template relabelled');
    w.deployments.set(api);
    assert.equal(await count('api-near-db'), 1, 'template back');
  });

  void test('which pods count as neighbours, and which are judged', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    const dbWith = (o: Partial<PodOptions>): Pod =>
      placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1', ...o });
    // What becomes of db-0 (null: deleted), and how many violations web-0 (next to it) has.
    const variants: [string, Pod | null, number][] = [
      ['deleted', null, 1],
      ['Succeeded', dbWith({ phase: 'Succeeded' }), 1],
      ['Failed', dbWith({ phase: 'Failed' }), 1],
      ['unbound again', placed('db-0', { ns: 'shop', labels: { app: 'db' } }), 1],
      // As in kube-scheduler's cache, a pod being deleted is a neighbour until it is gone.
      ['being deleted', dbWith({ deleting: true }), 0],
    ];
    for (const [what, next, want] of variants) {
      if (next === null) w.pods.delete('shop/db-0');
      else w.pods.set(next);
      await audit.evaluate();
      assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, want, `db pod ${what}`);
      w.pods.set(dbWith({}));
      await audit.evaluate();
      assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0, `db pod back after ${what}`);
    }
    // A pod being deleted is not judged: its breach ends with it.
    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.pods.set(placed('web-0', { ns: 'shop', labels: { app: 'web' }, node: 'a2', deleting: true }));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('a node deleted takes its pods out of every domain', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    w.nodes.delete('a1');
    await audit.evaluate();
    // db-0 still names a1, but a1 has no zone any more: web-0 has no db in zone a.
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.nodes.set(nodeInZone('a1', 'a'));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('a policy with audit disabled reports no violation', async (t) => {
    const w = shop();
    w.setPolicies(webNearDb({ audit: { enabled: false } }));
    relabelNode(w, 'a2', 'b');
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
    assert.deepEqual(w.events, []);
  });

  void test('a pod own terms are reported under "pod"', async (t) => {
    const w = shop();
    w.pods.set(
      placed('solo-0', {
        ns: 'shop',
        labels: { app: 'solo' },
        node: 'a1',
        anti: [term(labelsIn({ app: 'db' }), HOSTNAME)],
      }),
    );
    const audit = w.audit(t);
    await audit.evaluate();
    // solo-0 may not share a node with a db pod; db-0 is told so by symmetry.
    assert.deepEqual(w.metrics.violations.get('pod'), {
      podAntiAffinity: 1,
      symmetricAntiAffinity: 1,
    });
    assert.deepEqual(
      audit.report?.violations.map((v) => [v.pod, v.rule, v.source]),
      [
        ['shop/db-0', 'symmetricAntiAffinity', 'pod'],
        ['shop/solo-0', 'podAntiAffinity', 'pod'],
      ],
    );
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('changes are judged together after the quiet time', async (t) => {
    const w = shop();
    const audit = w.audit(t, {}, { debounceMs: 20 });
    const settled = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 60));
    };
    await settled();
    const first = audit.stats.evaluations;
    assert.ok(first >= 1, 'start() judges once');
    relabelNode(w, 'a2', 'b');
    relabelNode(w, 'b1', 'a');
    relabelNode(w, 'b2', 'a');
    await settled();
    assert.equal(audit.stats.evaluations, first + 1, 'one evaluation for the burst');
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    // A node update that changes no label (a heartbeat) judges nothing again.
    w.nodes.set(nodeInZone('a1', 'a'));
    await settled();
    assert.equal(audit.stats.evaluations, first + 1);
  });

  void test('a new policy alone is judged after the quiet time', async (t) => {
    const w = shop();
    w.setPolicies();
    relabelNode(w, 'a2', 'b');
    const audit = w.audit(t, {}, { debounceMs: 20 });
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(audit.summary(WEB_NEAR_DB), undefined);
    w.setPolicies(webNearDb()); // nothing else changes: no pod, node or namespace event
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    assert.deepEqual(w.changes.at(-1), [WEB_NEAR_DB]);
    // A policy event that leaves the policies as they were (a status write) judges nothing.
    const evaluations = audit.stats.evaluations;
    w.policySignal.fire();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(audit.stats.evaluations, evaluations);
  });
});
