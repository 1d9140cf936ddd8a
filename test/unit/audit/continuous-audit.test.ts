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
  HOUR,
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
  type World,
} from './world.ts';
import { FakeClock, flush, peek } from '../controller/fake-clock.ts';

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

  void test('a node relabelled while feasibility is computed stops it: the next pass does not wait for it', async (t) => {
    const w = shop();
    // The scheduling model places each of web's pods in a slice of its own (slices of no time).
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 300 }));
    const audit = w.audit(t, {}, { sliceMs: 0 });
    await w.quietFor(HOUR);
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), {});

    relabelNode(w, 'a2', 'b');
    const runs = audit.stats.feasibilityRuns;
    const stopped = audit.stats.feasibilityStopped;
    const finished = w.metrics.nextAudit();
    w.clock.advance(HOUR);
    for (let ticks = 0; audit.stats.feasibilityRuns === runs; ticks++) {
      assert.ok(ticks < 1000, 'the pass after the relabel computes feasibility');
      await flush();
    }
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), { podAffinity: 1 });

    // Back in its zone while the computation (which counted zones) is under way.
    relabelNode(w, 'a2', 'a');
    let ticks = 0;
    for (; (await peek(finished)) === 'pending'; ticks++)
      assert.ok(ticks < 10_000, 'the pass that computes feasibility ends');
    assert.ok(ticks <= 3, `the pass ended ${ticks} ticks after the relabel, not at once`);
    assert.equal(audit.stats.feasibilityStopped, stopped + 1, 'the computation stopped');
    assert.equal(summaryOf(audit, WEB_NEAR_DB).unsatisfiable, undefined, 'nothing stale published');

    // The next pass publishes the relabel before it computes feasibility anew.
    let seen: unknown = 'not computed';
    const look = (): void => {
      if (audit.stats.feasibilityRuns === runs + 1) setImmediate(look);
      else seen = w.metrics.violations.get(WEB_NEAR_DB);
    };
    setImmediate(look);
    await w.quietFor(HOUR);
    assert.deepEqual(seen, {}, 'the metric while feasibility was computed');
    assert.equal(audit.stats.feasibilityRuns, runs + 2);
    assert.equal(audit.stats.feasibilityStopped, stopped + 1, 'computed to the end');
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
    await w.quietFor(20);
    const first = audit.stats.evaluations;
    assert.equal(first, 1, 'start() judges once');
    relabelNode(w, 'a2', 'b');
    relabelNode(w, 'b1', 'a');
    w.clock.advance(19);
    relabelNode(w, 'b2', 'a');
    assert.equal(audit.stats.evaluations, first, 'nothing judged before the quiet time is over');
    await w.quietFor(1);
    assert.equal(audit.stats.evaluations, first + 1, 'one evaluation for the burst');
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    // A node update that changes no label (a heartbeat) judges nothing again.
    w.nodes.set(nodeInZone('a1', 'a'));
    assert.equal(await w.passScheduled(), false, 'no pass after a heartbeat');
    assert.equal(audit.stats.evaluations, first + 1);
  });

  void test('a new policy alone is judged after the quiet time', async (t) => {
    const w = shop();
    w.setPolicies();
    relabelNode(w, 'a2', 'b');
    const audit = w.audit(t, {}, { debounceMs: 20 });
    await w.quietFor(20);
    assert.equal(audit.summary(WEB_NEAR_DB), undefined);
    w.setPolicies(webNearDb()); // nothing else changes: no pod, node or namespace event
    await w.quietFor(20);
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    assert.deepEqual(w.changes.at(-1), [WEB_NEAR_DB]);
    // A policy event that leaves the policies as they were (a status write) judges nothing.
    const evaluations = audit.stats.evaluations;
    w.policySignal.fire();
    assert.equal(await w.passScheduled(), false, 'no pass after a status write');
    assert.equal(audit.stats.evaluations, evaluations);
  });
});

// ------------------------------------------------------------------ when a pass starts

void describe('ContinuousAudit starts a pass', () => {
  const QUIET = 500;
  /**
   * An audit on `shop()` whose quiet time runs on a clock the test moves; its passes run in
   * one slice, so a pass the clock starts has finished once the event loop has turned.
   */
  const clocked = (t: { after: (fn: () => Promise<void>) => void }) => {
    const w = shop();
    const clock = new FakeClock();
    const audit = w.audit(t, { clock }, { debounceMs: QUIET, sliceMs: Infinity });
    return { w, clock, audit };
  };
  /** Waits (on the event loop, at most 10 s) until `n` passes have finished. */
  const finished = async (w: World, n: number): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (w.metrics.audits < n) {
      assert.ok(Date.now() < deadline, `waited 10 s for pass ${String(n)} to finish`);
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(w.metrics.audits, n, `pass ${String(n)} finished, and no other`);
  };
  /** Lets the event loop run once: a pass the clock started has begun by then. */
  const turn = () => new Promise((r) => setImmediate(r));

  void test('after the quiet time from the start, then at once for a change after a quiet time', async (t) => {
    const { w, clock, audit } = clocked(t);
    clock.advance(QUIET - 1);
    await turn();
    assert.equal(audit.stats.evaluations, 0, 'no pass before the quiet time is up');
    clock.advance(1);
    await finished(w, 1);
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);

    clock.advance(2 * QUIET);
    relabelNode(w, 'a2', 'b');
    clock.advance(0);
    await finished(w, 2);
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1, 'judged at once');
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), { podAffinity: 1 });
  });

  void test('the rest of a burst is judged together once the quiet time after the last pass is up', async (t) => {
    const { w, clock, audit } = clocked(t);
    clock.advance(QUIET);
    await finished(w, 1);
    clock.advance(2 * QUIET);
    relabelNode(w, 'a2', 'b'); // first of the burst: at once
    clock.advance(0);
    await finished(w, 2);
    clock.advance(100);
    relabelNode(w, 'a2', 'a');
    clock.advance(100);
    relabelNode(w, 'b1', 'a');
    relabelNode(w, 'a2', 'b');
    clock.advance(QUIET - 201);
    await turn();
    assert.equal(audit.stats.evaluations, 2, 'the rest waits for the quiet time');
    clock.advance(1);
    await finished(w, 3);
    assert.equal(audit.stats.evaluations, 3, 'one pass for the rest of the burst');
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1, 'the last state judged');
    // A node update that changes no label (a heartbeat) starts nothing.
    clock.advance(2 * QUIET);
    w.nodes.set(nodeInZone('a1', 'a'));
    clock.advance(2 * QUIET);
    await turn();
    assert.equal(audit.stats.evaluations, 3);
  });

  void test('steady changes start a pass at most once per quiet time', async (t) => {
    const { w, clock, audit } = clocked(t);
    clock.advance(QUIET);
    await finished(w, 1);
    clock.advance(2 * QUIET);
    // 10 changes a second for 10 s: a pod relabelled with a label no rule reads.
    const web = w.pods.get('shop/web-0');
    assert.ok(web !== undefined);
    for (let i = 0; i < 100; i++) {
      w.pods.set({ ...web, metadata: { ...web.metadata, labels: { app: 'web', n: String(i) } } });
      clock.advance(100);
      await turn();
    }
    await finished(w, audit.stats.evaluations);
    const passes = audit.stats.evaluations - 1;
    assert.ok(passes <= 10_000 / QUIET + 1, `${String(passes)} passes in 10 s`);
    assert.ok(passes >= 10_000 / QUIET - 1, `${String(passes)} passes in 10 s`);
  });
});
