// The audit's live index and kept feasibility: kept current from the informers, equal to a
// rebuild from scratch, and computed again only when something it read changes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Labels } from '../../../src/api/core.ts';
import type { PlacementPolicy, PolicyRef } from '../../../src/api/policy.ts';
import { APPLIED_ANNOTATION } from '../../../src/api/cluster.ts';
import { ContinuousAudit } from '../../../src/audit/continuous-audit.ts';
import { LiveIndex, newAuditStats } from '../../../src/audit/live-index.ts';
import {
  auditIndex,
  auditIndexSteps,
  IncrementalAudit,
  IncrementalNodeSpread,
  inject,
  injectionFor,
  judgeNodeAndSpread,
  judgeNodeAndSpreadSteps,
  nodePolicyReach,
  serializeRecord,
  workloadRef,
  type NodeSpreadAudit,
} from '../../../src/engine/index.ts';
import { UNITS_PER_STEP, type Steps } from '../../../src/util/steps.ts';
import { FakeClock } from '../controller/fake-clock.ts';
import {
  HOSTNAME,
  ZONE,
  clusterPolicy,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  nodeInZone,
  term,
} from '../builders.ts';
import {
  REQUIRED,
  HOUR,
  World,
  compiled,
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

// -------------------------------------------------------------- feasibility

void describe('ContinuousAudit feasibility', () => {
  const mutual = (): World => {
    const w = new World();
    for (const n of [nodeInZone('a1', 'a'), nodeInZone('b1', 'b')]) w.nodes.set(n);
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'frontend', { app: 'frontend' }));
    w.deployments.set(deployment('shop', 'backend', { app: 'backend' }));
    w.setPolicies(
      namespacedPolicy('shop', 'frontend-to-backend', {
        targets: { selector: labelsIn({ app: 'frontend' }) },
        affinity: affinityTo({ app: 'backend' }, HOSTNAME),
      }),
      namespacedPolicy('shop', 'backend-to-frontend', {
        targets: { selector: labelsIn({ app: 'backend' }) },
        affinity: affinityTo({ app: 'frontend' }, HOSTNAME),
      }),
    );
    return w;
  };

  void test('mutual required affinity with no pod running is unsatisfiable', async (t) => {
    const w = mutual();
    const audit = w.audit(t);
    await audit.evaluate();
    for (const [name, other] of [
      ['frontend-to-backend', 'frontend'],
      ['backend-to-frontend', 'backend'],
    ] as const) {
      assert.match(
        summaryOf(audit, `PlacementPolicy/shop/${name}`).unsatisfiable ?? '',
        new RegExp(`Deployment shop/${other}: required podAffinity on kubernetes.io/hostname`),
      );
    }
    // One side's pod runs (placed by hand): both can start now.
    w.pods.set(
      placed('backend-x-1', {
        ns: 'shop',
        labels: { app: 'backend' },
        node: 'a1',
      }),
    );
    await audit.evaluate();
    assert.equal(
      summaryOf(audit, 'PlacementPolicy/shop/frontend-to-backend').unsatisfiable,
      undefined,
    );
    assert.equal(
      summaryOf(audit, 'PlacementPolicy/shop/backend-to-frontend').unsatisfiable,
      undefined,
    );
  });

  void test('a workload no policy targets can start first and satisfy the affinity', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    await audit.evaluate();
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);

    // The db Deployment is targeted by no policy, and nothing keeps its pods from starting.
    w.deployments.set(deployment('shop', 'db', { app: 'db' }));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).unsatisfiable, undefined);
  });

  void test('a workload scaled or given new terms is judged again without a pod event', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 0 }));
    w.deployments.set(deployment('shop', 'db', { app: 'db' }, { replicas: 0 }));
    w.setPolicies(webNearDb());
    const audit = w.audit(t, {}, { debounceMs: 5 });
    await w.quietFor(5);
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);
    // db is scaled up: it can start first now. Only the Deployment changes, no pod yet.
    w.deployments.set(deployment('shop', 'db', { app: 'db' }, { replicas: 1 }));
    await w.quietFor(5);
    assert.equal(summaryOf(audit, WEB_NEAR_DB).unsatisfiable, undefined, 'scaled up');
    // db's own template now waits for a pod that never comes: it cannot start first.
    w.deployments.set(
      deployment(
        'shop',
        'db',
        { app: 'db' },
        {
          replicas: 1,
          affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'ghost' }), ZONE)] } },
        },
      ),
    );
    await w.quietFor(5);
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);
    // A status-only update (rollout progress) judges nothing again.
    const evaluations = audit.stats.evaluations;
    const db = w.deployments.get('Deployment/shop/db');
    assert.ok(db);
    w.deployments.set({ ...db, rolledOut: !db.rolledOut, resourceVersion: '2' });
    assert.equal(await w.passScheduled(), false, 'no pass after a status-only update');
    assert.equal(audit.stats.evaluations, evaluations);
  });

  void test('required spread over more replicas than nodes', async (t) => {
    const w = new World();
    for (const n of ['n0', 'n1']) w.nodes.set({ metadata: { name: n, labels: { [HOSTNAME]: n } } });
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 3 }));
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    await audit.evaluate();
    assert.match(
      summaryOf(audit, 'PlacementPolicy/shop/one-per-node').unsatisfiable ?? '',
      /Deployment shop\/web wants 3 replicas/,
    );
    w.nodes.set({ metadata: { name: 'n2', labels: { [HOSTNAME]: 'n2' } } });
    await audit.evaluate();
    assert.equal(summaryOf(audit, 'PlacementPolicy/shop/one-per-node').unsatisfiable, undefined);
  });
});

// ------------------------------------------------------ incremental = rebuild

const NODES = ['n0', 'n1', 'n2', 'n3'] as const;
const NAMESPACES = ['a', 'b'] as const;
const PODS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'] as const;
const APPS = ['web', 'db', 'cache'] as const;

type Op =
  | { readonly op: 'node'; readonly node: number; readonly zone: string | null }
  | { readonly op: 'deleteNode'; readonly node: number }
  | { readonly op: 'namespace'; readonly ns: number; readonly env: string | null }
  | {
      readonly op: 'pod';
      readonly pod: number;
      readonly ns: number;
      readonly app: number;
      readonly node: number | null;
      readonly anti: boolean;
      readonly owned: boolean;
      readonly phase: 'Running' | 'Succeeded';
      readonly deleting: boolean;
    }
  | { readonly op: 'deletePod'; readonly pod: number; readonly ns: number }
  | { readonly op: 'template'; readonly ns: number; readonly app: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('node' as const),
    node: fc.nat(NODES.length - 1),
    zone: fc.constantFrom('za', 'zb', null),
  }),
  fc.record({ op: fc.constant('deleteNode' as const), node: fc.nat(NODES.length - 1) }),
  fc.record({
    op: fc.constant('namespace' as const),
    ns: fc.nat(NAMESPACES.length - 1),
    env: fc.constantFrom('prod', 'dev', null),
  }),
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pod' as const),
      pod: fc.nat(PODS.length - 1),
      ns: fc.nat(NAMESPACES.length - 1),
      app: fc.nat(APPS.length - 1),
      node: fc.option(fc.nat(NODES.length - 1), { nil: null, freq: 5 }),
      anti: fc.boolean(),
      owned: fc.boolean(),
      phase: fc.constantFrom('Running' as const, 'Running' as const, 'Succeeded' as const),
      deleting: fc.constantFrom(false, false, false, true),
    }),
  },
  fc.record({
    op: fc.constant('deletePod' as const),
    pod: fc.nat(PODS.length - 1),
    ns: fc.nat(NAMESPACES.length - 1),
  }),
  fc.record({
    op: fc.constant('template' as const),
    ns: fc.nat(NAMESPACES.length - 1),
    app: fc.nat(APPS.length - 1),
  }),
);

const at = <T>(list: readonly T[], i: number): T => {
  const v = list[i];
  if (v === undefined) throw new Error(`no element ${i}`);
  return v;
};

/** Two policies that reach pods through namespaces, templates and labels. */
function propertyWorld(): World {
  const w = new World();
  for (const n of NODES) w.nodes.set(nodeInZone(n, 'za'));
  for (const ns of NAMESPACES) {
    w.namespaces.set(namespace(ns));
    const d = deployment(ns, 'app', { app: 'web' });
    w.deployments.set(d);
    w.replicaSets.set(replicaSet(d, 'h'));
  }
  w.setPolicies(
    clusterPolicy('spread-prod', {
      targets: {
        kinds: ['Deployment', 'Pod'],
        namespaceSelector: labelsIn({ env: 'prod' }),
        selector: labelsIn({ app: 'web' }),
      },
      spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
    }),
    namespacedPolicy('a', 'web-near-db', {
      targets: { kinds: ['Deployment', 'Pod'], selector: labelsIn({ app: 'web' }) },
      affinity: affinityTo({ app: 'db' }),
    }),
  );
  return w;
}

function apply(w: World, o: Op): void {
  switch (o.op) {
    case 'node': {
      const name = at(NODES, o.node);
      w.nodes.set({
        metadata: {
          name,
          labels: { [HOSTNAME]: name, ...(o.zone === null ? {} : { [ZONE]: o.zone }) },
        },
      });
      return;
    }
    case 'deleteNode':
      w.nodes.delete(at(NODES, o.node));
      return;
    case 'namespace': {
      const ns = at(NAMESPACES, o.ns);
      w.namespaces.set(namespace(ns, o.env === null ? {} : { env: o.env }));
      return;
    }
    case 'pod': {
      const ns = at(NAMESPACES, o.ns);
      w.pods.set(
        placed(at(PODS, o.pod), {
          ns,
          labels: { app: at(APPS, o.app), ...(o.owned ? { 'pod-template-hash': 'h' } : {}) },
          ...(o.node === null ? {} : { node: at(NODES, o.node) }),
          ...(o.anti ? { anti: [term(labelsIn({ app: 'db' }), HOSTNAME)] } : {}),
          ...(o.owned ? { owner: rsOwner('app-h') } : {}),
          phase: o.phase,
          deleting: o.deleting,
        }),
      );
      return;
    }
    case 'deletePod':
      w.pods.delete(`${at(NAMESPACES, o.ns)}/${at(PODS, o.pod)}`);
      return;
    case 'template': {
      const ns = at(NAMESPACES, o.ns);
      w.deployments.set(deployment(ns, 'app', { app: at(APPS, o.app) }));
      return;
    }
  }
}

void test('incremental updates end where a rebuild from the final state does', async () => {
  const REFS = ['ClusterPlacementPolicy/spread-prod', 'PlacementPolicy/a/web-near-db'];
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { maxLength: 12 }),
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      async (before, during) => {
        const w = propertyWorld();
        for (const o of before) apply(w, o);
        const options = { debounceMs: HOUR, fullCheckMs: HOUR };
        const incremental = new ContinuousAudit(w.deps(), options);
        incremental.start();
        try {
          for (const [i, o] of during.entries()) {
            apply(w, o);
            if (i % 4 === 3) await incremental.evaluate(); // judged mid-way too
          }
          await incremental.evaluate();
          const rebuilt = new ContinuousAudit(w.deps(), options);
          rebuilt.start();
          await rebuilt.evaluate();
          await rebuilt.stop();
          for (const ref of REFS)
            assert.deepEqual(incremental.summary(ref), rebuilt.summary(ref), ref);
          assert.deepEqual(incremental.report?.violations, rebuilt.report?.violations);
          await incremental.fullCheck();
          assert.equal(incremental.stats.mismatches, 0, 'the periodic check agrees');
          assert.equal(
            w.logged('incremental audit index disagreed with a rebuild; using the rebuild').length,
            0,
          );
        } finally {
          await incremental.stop();
        }
        assert.equal(w.pods.listeners, 0, 'stop() unsubscribes');
      },
    ),
    { numRuns: 300 },
  );
});

// ------------------------------------------- feasibility kept until what it read changes

void describe('ContinuousAudit keeps feasibility until what it read changes', () => {
  const unsatisfiable = async (
    audit: ContinuousAudit,
    ref: string,
  ): Promise<string | undefined> => {
    await audit.evaluate();
    return summaryOf(audit, ref).unsatisfiable;
  };

  void test('a provider pod deleted makes the policy unsatisfiable, re-created satisfiable', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const db = placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1' });
    w.pods.set(db); // no workload of its own: only the running pod can start web
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    const runs = audit.stats.feasibilityRuns;

    // Pods no look-up for running pods could find leave the result as it is.
    w.pods.set(placed('cache-0', { ns: 'shop', labels: { app: 'cache' }, node: 'a1' }));
    w.pods.set(placed('db-0', { ns: 'other', labels: { app: 'db' }, node: 'a1' }));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept');

    w.pods.delete('shop/db-0');
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    assert.equal(audit.stats.feasibilityRuns, runs + 1);
    w.pods.set(db);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    // Relabelled away, then finished: each takes the provider away as a deletion does.
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db-old' }, node: 'a1' }));
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    w.pods.set(db);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1', phase: 'Failed' }));
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
  });

  void test('a provider pod replaced by one alike before the next pass keeps the result', async (t) => {
    // As a ReplicaSet replaces a pod: another name, the same labels, the same node.
    const w = new World();
    for (const n of [nodeInZone('a1', 'a'), nodeInZone('b1', 'b')]) w.nodes.set(n);
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const db = (name: string, node = 'a1', anti: boolean = false) =>
      placed(name, {
        ns: 'shop',
        labels: { app: 'db' },
        node,
        ...(anti ? { anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] } : {}),
      });
    w.pods.set(db('db-0'));
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    const runs = audit.stats.feasibilityRuns;
    w.pods.delete('shop/db-0');
    w.pods.set(db('db-1'));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept: the model reads the same');
    // On another node, the replacement is read.
    w.pods.delete('shop/db-1');
    w.pods.set(db('db-2', 'b1'));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'computed: the provider moved');
    // A pod whose anti-affinity counts is read by name too (a message may name it).
    w.pods.set(db('db-2', 'b1', true));
    await audit.evaluate();
    const withAnti = audit.stats.feasibilityRuns;
    w.pods.delete('shop/db-2');
    w.pods.set(db('db-3', 'b1', true));
    await audit.evaluate();
    assert.equal(audit.stats.feasibilityRuns, withAnti + 1, 'computed: another pod refuses web');
  });

  void test('a provider pod whose other labels change keeps the result; its matched label or node does not', async (t) => {
    const w = new World();
    for (const n of [nodeInZone('a1', 'a'), nodeInZone('b1', 'b')]) w.nodes.set(n);
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const db = (labels: Labels, node = 'a1') =>
      placed('db-0', { ns: 'shop', labels: { app: 'db', ...labels }, node });
    w.pods.set(db({}));
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    const runs = audit.stats.feasibilityRuns;

    // A look-up finds it, but reads only app: another label changes nothing it read.
    w.pods.set(db({ version: '2' }));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept after an unrelated label');
    // Deleted and re-created as it was between two passes: as if nothing happened.
    w.pods.delete('shop/db-0');
    w.pods.set(db({ version: '2' }));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept after a change undone');

    // Moved to another node: where it runs was read.
    w.pods.set(db({ version: '2' }, 'b1'));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'computed after a move');
    // The matched label: the look-up no longer finds it.
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db-old' }, node: 'b1' }));
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    assert.equal(audit.stats.feasibilityRuns, runs + 2, 'computed after the matched label');
  });

  /** Two nodes without a zone, and `web` (2 replicas) in shop. */
  const twoNodes = (): World => {
    const w = new World();
    for (const n of ['n0', 'n1']) w.nodes.set(node(n));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 2 }));
    return w;
  };
  const onePer = (app: string, topologyKey: string) =>
    namespacedPolicy('shop', `${app}-one-per-domain`, {
      targets: { selector: labelsIn({ app }) },
      spreadAcross: [{ topologyKey, mode: 'Required' }],
    });
  const ONE_PER_NODE: PolicyRef = 'PlacementPolicy/shop/web-one-per-domain';

  void test('an old pod of a workload placed anew is read only by affinity', async (t) => {
    // web runs one per node, and its pods are placed anew: a pod that takes web's labels
    // becomes one of its old pods, which only another pod's affinity could use. A pod whose
    // other labels change is nothing the result read; one whose anti-affinity refuses web's
    // pods is.
    const w = twoNodes();
    w.pods.set(placed('other-0', { ns: 'shop', labels: { app: 'other', tier: 'x' }, node: 'n0' }));
    w.setPolicies(onePer('web', HOSTNAME));
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    const runs = audit.stats.feasibilityRuns;
    w.pods.set(placed('other-0', { ns: 'shop', labels: { app: 'other', tier: 'y' }, node: 'n0' }));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept: nothing read it');
    w.pods.set(placed('other-0', { ns: 'shop', labels: { app: 'web' }, node: 'n0' }));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept: an old web pod no affinity asks for');
    const away = { labelSelector: labelsIn({ app: 'web' }), topologyKey: HOSTNAME };
    w.pods.set(
      placed('other-0', { ns: 'shop', labels: { app: 'other' }, node: 'n0', anti: [away] }),
    );
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /at most 1 of 2/);
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'computed: it keeps web off n0');
  });

  void test('an old pod of a workload placed anew that affinity uses is read', async (t) => {
    // db is placed anew (its policy) but cannot start (it waits for a cache that does not
    // run): its old pod on n0 is all that web's affinity has, and web is fine while it runs.
    const w = twoNodes();
    const DB = { app: 'db' };
    w.deployments.set(
      deployment('shop', 'db', DB, { replicas: 1, affinity: affinityTo({ app: 'cache' }) }),
    );
    w.pods.set(placed('db-0', { ns: 'shop', labels: DB, node: 'n0' }));
    w.setPolicies(webNearDb({ affinity: affinityTo(DB, HOSTNAME) }), onePer('db', HOSTNAME));
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    const runs = audit.stats.feasibilityRuns;
    w.pods.delete('shop/db-0');
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'computed: web lost its provider');
  });

  void test('a pod of a workload that keeps its pods is read when the pod placed for it counts', async (t) => {
    // db keeps its pods (no policy asks it terms). Its template now keeps off web's nodes,
    // its running pod, made before, does not: deleted, the model places one for db that
    // takes a node from web (one per node).
    const w = twoNodes();
    const DB = { app: 'db' };
    const awayFromWeb = {
      podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'web' }), HOSTNAME)] },
    };
    w.deployments.set(deployment('shop', 'db', DB, { replicas: 1, affinity: awayFromWeb }));
    w.deployments.set(deployment('shop', 'cache', { app: 'cache' }, { replicas: 1 }));
    w.pods.set(placed('db-0', { ns: 'shop', labels: DB, node: 'n0' }));
    w.pods.set(placed('cache-0', { ns: 'shop', labels: { app: 'cache' }, node: 'n0' }));
    w.setPolicies(onePer('web', HOSTNAME));
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    const runs = audit.stats.feasibilityRuns;
    // cache's template is nothing any look-up finds and carries no anti-affinity.
    w.pods.delete('shop/cache-0');
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    assert.equal(
      audit.stats.feasibilityRuns,
      runs,
      'kept: the pod placed for cache counts for none',
    );
    w.pods.delete('shop/db-0');
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /at most 1 of 2/);
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'computed: the pod placed for db counts');
  });

  void test('a result whose reads change while it is computed is neither published nor kept', async (t) => {
    const w = twoNodes();
    w.deployments.set(deployment('shop', 'api', { app: 'api' }, { replicas: 2 }));
    const WEB = ONE_PER_NODE;
    // The nodes have no zone: api's pods are placed by the scheduling model whatever happens.
    w.setPolicies(onePer('web', HOSTNAME), onePer('api', ZONE));
    // Slices of no time: the computation lets the event loop run after every pod it places.
    const audit = w.audit(t, {}, { sliceMs: 0 });
    assert.equal(await unsatisfiable(audit, WEB), undefined);

    // n1 goes; it is back while the next computation (which counts one node) is under way.
    const n1 = w.nodes.get('n1');
    assert.ok(n1 !== undefined);
    w.nodes.delete('n1');
    const runs = audit.stats.feasibilityRuns;
    let during = false;
    const back = (): void => {
      if (audit.stats.feasibilityRuns === runs) {
        setImmediate(back);
        return;
      }
      during = true;
      w.nodes.set(n1);
    };
    setImmediate(back);
    await audit.evaluate();
    assert.ok(during, 'the node came back while feasibility was computed');
    assert.equal(audit.stats.feasibilityRuns, runs + 1);
    assert.equal(summaryOf(audit, WEB).unsatisfiable, undefined, 'the stale result not published');
    assert.equal(await unsatisfiable(audit, WEB), undefined);
    assert.equal(audit.stats.feasibilityRuns, runs + 2, 'the next pass computes again');
  });

  void test('pods relabelled while feasibility is computed, by labels it did not read, let it finish', async (t) => {
    const w = shop();
    // The scheduling model places each of web's pods in a slice of its own (slices of no time).
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 300 }));
    const other = (v: number) =>
      placed('other-0', { ns: 'shop', labels: { app: 'other', v: String(v) }, node: 'b1' });
    w.pods.set(other(0));
    const audit = w.audit(t, {}, { sliceMs: 0 });
    await audit.evaluate();
    relabelNode(w, 'a2', 'b'); // a zone it counted: computed again
    const runs = audit.stats.feasibilityRuns;
    let churned = 0;
    const churn = (): void => {
      if (audit.stats.feasibilityRuns !== runs) w.pods.set(other(++churned));
      if (churned < 100) setImmediate(churn);
    };
    setImmediate(churn);
    await audit.evaluate();
    const during = churned;
    assert.ok(during >= 50, `relabelled ${during} times while feasibility was computed`);
    assert.equal(audit.stats.feasibilityStopped, 0, 'not stopped');
    assert.equal(audit.stats.feasibilityRuns, runs + 1);
    await audit.evaluate();
    assert.equal(audit.stats.feasibilityRuns, runs + 1, 'kept: computed to the end');
  });

  void test("a workload that already carries a policy's terms: the shortfall still names the policy", async (t) => {
    // checkout-redis's seed: next to a checkout pod, one per node; checkout runs on 2 of 3.
    const w = new World();
    for (const n of ['n0', 'n1', 'n2']) w.nodes.set(node(n));
    w.namespaces.set(namespace('shop'));
    for (const [name, on] of [
      ['checkout-0', 'n0'],
      ['checkout-1', 'n1'],
    ] as const)
      w.pods.set(placed(name, { ns: 'shop', labels: { app: 'checkout' }, node: on }));
    const REF: PolicyRef = 'PlacementPolicy/shop/redis-with-checkout';
    w.setPolicies(
      namespacedPolicy('shop', 'redis-with-checkout', {
        targets: { selector: labelsIn({ app: 'redis' }) },
        affinity: affinityTo({ app: 'checkout' }, HOSTNAME),
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const plain = deployment('shop', 'redis', { app: 'redis' }, { replicas: 3 });
    w.deployments.set(plain);
    const audit = w.audit(t);
    const before = await unsatisfiable(audit, REF);
    assert.match(before ?? '', /at most 2 of 3/);
    // As the operator leaves it once written (allowBlockedRollouts): the terms in the
    // template, recorded as the policy's. They are still the policy's, not the owner's.
    const { affinity, record } = inject(
      plain.affinity,
      injectionFor(w.policies, workloadRef(plain)),
    );
    w.deployments.set({
      ...plain,
      affinity,
      annotations: { ...plain.annotations, [APPLIED_ANNOTATION]: serializeRecord(record) },
    });
    assert.equal(await unsatisfiable(audit, REF), before);
  });

  void test('a workload scaled beyond the domains, and nodes that add or take domains', async (t) => {
    const w = new World();
    for (const n of ['n0', 'n1']) w.nodes.set(node(n));
    w.namespaces.set(namespace('shop'));
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    w.deployments.set(web);
    const ONE_PER_NODE: PolicyRef = 'PlacementPolicy/shop/one-per-node';
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    w.deployments.set({ ...web, replicas: 3 });
    assert.match(
      (await unsatisfiable(audit, ONE_PER_NODE)) ?? '',
      /Deployment shop\/web wants 3 replicas, .* only 2 node domain/,
    );
    // A label the spread does not read: nothing to compute again.
    const runs = audit.stats.feasibilityRuns;
    w.nodes.set(node('n0', { [HOSTNAME]: 'n0', disk: 'ssd' }));
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /wants 3 replicas/);
    assert.equal(audit.stats.feasibilityRuns, runs, 'kept');
    w.nodes.set(node('n2'));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'a third node');
    w.nodes.set(node('n2', { [HOSTNAME]: 'n1' }));
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /only 2 node domain/);
    w.nodes.set(node('n2'));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'hostname back');
    w.nodes.delete('n1');
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /only 2 node domain/);
    w.deployments.set({ ...web, replicas: 2 });
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'scaled down');
  });

  void test('a namespace relabelled brings a workload under a cluster policy', async (t) => {
    const w = new World();
    w.nodes.set(node('n0'));
    w.namespaces.set(namespace('shop', { env: 'dev' }));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 2 }));
    const REF: PolicyRef = 'ClusterPlacementPolicy/prod-one-per-node';
    w.setPolicies(
      clusterPolicy('prod-one-per-node', {
        targets: { namespaceSelector: labelsIn({ env: 'prod' }) },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, REF), undefined);
    w.namespaces.set(namespace('shop', { env: 'prod' }));
    assert.match((await unsatisfiable(audit, REF)) ?? '', /Deployment shop\/web wants 2/);
    w.namespaces.set(namespace('shop', { env: 'dev' }));
    assert.equal(await unsatisfiable(audit, REF), undefined);
  });

  void test("a workload's owners, selector and own affinity are read again", async (t) => {
    const w = new World();
    w.nodes.set(node('n0'));
    w.namespaces.set(namespace('shop'));
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    const rs = replicaSet(web, 'h');
    w.deployments.set(web);
    w.replicaSets.set(rs);
    const REF: PolicyRef = 'PlacementPolicy/shop/one-per-node';
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        targets: { kinds: ['ReplicaSet'] },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t, {}, { debounceMs: 5 });
    await w.quietFor(5);
    // The Deployment's ReplicaSet is the Deployment's business: not a target of its own.
    assert.equal(summaryOf(audit, REF).unsatisfiable, undefined);
    w.replicaSets.set({ ...rs, ownerReferences: [] }); // orphaned: judged without any pod event
    await w.quietFor(5);
    assert.match(summaryOf(audit, REF).unsatisfiable ?? '', /ReplicaSet shop\/web-h wants 2/);
    w.replicaSets.set({ ...rs, ownerReferences: [], selector: labelsIn({ app: 'nothing' }) });
    await w.quietFor(5);
    // The spread selects the ReplicaSet's own selector now, which its pods do not match.
    assert.equal(summaryOf(audit, REF).unsatisfiable, undefined);
  });

  void test('a policy removed or edited takes its terms off exactly the pods it targeted', async (t) => {
    const w = shop();
    relabelNode(w, 'a2', 'b'); // web-0 away from the db
    w.pods.set(placed('db-1', { ns: 'shop', labels: { app: 'db' }, node: 'a1' }));
    const dbSpread = namespacedPolicy('shop', 'db-one-per-node', {
      targets: { kinds: ['Pod'], selector: labelsIn({ app: 'db' }) },
      spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
    });
    const DB_SPREAD: PolicyRef = 'PlacementPolicy/shop/db-one-per-node';
    w.setPolicies(webNearDb(), dbSpread);
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, DB_SPREAD).violations, 4); // anti-affinity and symmetric, each pod
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.setPolicies(webNearDb());
    await audit.evaluate();
    assert.equal(audit.summary(DB_SPREAD), undefined);
    assert.deepEqual(
      audit.report?.violations.map((v) => [v.pod, v.source]),
      [['shop/web-0', WEB_NEAR_DB]],
    );
    // Edited: zone instead of hostname, which both db pods share too.
    w.setPolicies(
      webNearDb({ affinity: affinityTo({ app: 'db' }, HOSTNAME) }),
      namespacedPolicy('shop', 'db-one-per-node', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'db' }) },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
      }),
    );
    await audit.evaluate();
    assert.equal(summaryOf(audit, DB_SPREAD).violations, 4); // anti-affinity and symmetric, each pod
    await audit.fullCheck();
    assert.equal(audit.stats.mismatches, 0);
  });

  void test('the periodic check computes feasibility anew and finds the kept result right', async (t) => {
    const w = shop();
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const audit = w.audit(t);
    await audit.evaluate();
    const runs = audit.stats.feasibilityRuns;
    await audit.fullCheck();
    assert.equal(audit.stats.feasibilityRuns, runs + 1);
    assert.equal(audit.stats.mismatches, 0);
    assert.equal(
      w.logged('kept feasibility result disagreed with a new one; using the new one').length,
      0,
    );
  });
});

// ------------------------------------------ kept feasibility = feasibility from scratch

const F_NODES = ['n0', 'n1', 'n2'] as const;
const F_APPS = ['web', 'db', 'cache'] as const;
const F_POLICIES: readonly PlacementPolicy[] = [
  webNearDb(),
  namespacedPolicy('shop', 'db-near-web', {
    targets: { selector: labelsIn({ app: 'db' }) },
    affinity: affinityTo({ app: 'web' }, HOSTNAME),
  }),
  namespacedPolicy('shop', 'one-per-node', {
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  }),
  clusterPolicy('prod-one-per-zone', {
    targets: { namespaceSelector: labelsIn({ env: 'prod' }), kinds: ['Deployment', 'ReplicaSet'] },
    spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
  }),
];

type FeasibilityOp =
  | {
      readonly op: 'node';
      readonly node: number;
      readonly zone: string | null;
      readonly host: boolean;
    }
  | { readonly op: 'deleteNode'; readonly node: number }
  | { readonly op: 'namespace'; readonly env: string | null }
  | {
      readonly op: 'pod';
      readonly pod: number;
      readonly app: number;
      readonly ns: 'shop' | 'other';
      readonly node: number | null;
      readonly phase: 'Running' | 'Failed';
      readonly anti: boolean;
      /** A label no workload's selector or template has. */
      readonly canary: boolean;
    }
  | { readonly op: 'deletePod'; readonly pod: number }
  | {
      readonly op: 'workload';
      readonly app: number;
      readonly replicas: number;
      readonly waitsFor: number | null;
      /** Its pods keep off nodes that run a pod of this app. */
      readonly avoids: number | null;
      readonly orphanRs: boolean;
    }
  | { readonly op: 'deleteWorkload'; readonly app: number }
  | { readonly op: 'policies'; readonly mask: number };

const feasibilityOpArb: fc.Arbitrary<FeasibilityOp> = fc.oneof(
  fc.record({
    op: fc.constant('node' as const),
    node: fc.nat(F_NODES.length - 1),
    zone: fc.constantFrom('za', 'zb', null),
    host: fc.boolean(),
  }),
  fc.record({ op: fc.constant('deleteNode' as const), node: fc.nat(F_NODES.length - 1) }),
  fc.record({ op: fc.constant('namespace' as const), env: fc.constantFrom('prod', 'dev', null) }),
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pod' as const),
      pod: fc.nat(3),
      app: fc.nat(F_APPS.length - 1),
      ns: fc.constantFrom('shop' as const, 'shop' as const, 'other' as const),
      node: fc.option(fc.nat(F_NODES.length - 1), { nil: null, freq: 5 }),
      phase: fc.constantFrom('Running' as const, 'Running' as const, 'Failed' as const),
      anti: fc.boolean(),
      canary: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('deletePod' as const), pod: fc.nat(3) }),
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('workload' as const),
      app: fc.nat(F_APPS.length - 1),
      replicas: fc.nat(3),
      waitsFor: fc.option(fc.nat(F_APPS.length - 1), { nil: null }),
      avoids: fc.option(fc.nat(F_APPS.length - 1), { nil: null, freq: 3 }),
      orphanRs: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('deleteWorkload' as const), app: fc.nat(F_APPS.length - 1) }),
  fc.record({ op: fc.constant('policies' as const), mask: fc.nat(2 ** F_POLICIES.length - 1) }),
);

function applyFeasibilityOp(w: World, o: FeasibilityOp): void {
  switch (o.op) {
    case 'node': {
      const name = at(F_NODES, o.node);
      const labels: Labels = {
        ...(o.host ? { [HOSTNAME]: name } : {}),
        ...(o.zone === null ? {} : { [ZONE]: o.zone }),
      };
      w.nodes.set({ metadata: { name, labels } });
      return;
    }
    case 'deleteNode':
      w.nodes.delete(at(F_NODES, o.node));
      return;
    case 'namespace':
      w.namespaces.set(namespace('shop', o.env === null ? {} : { env: o.env }));
      return;
    case 'pod':
      for (const ns of ['shop', 'other']) if (ns !== o.ns) w.pods.delete(`${ns}/p${o.pod}`);
      w.pods.set(
        placed(`p${o.pod}`, {
          ns: o.ns,
          labels: { app: at(F_APPS, o.app), ...(o.canary ? { track: 'canary' } : {}) },
          ...(o.node === null ? {} : { node: at(F_NODES, o.node) }),
          ...(o.anti ? { anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] } : {}),
          phase: o.phase,
        }),
      );
      return;
    case 'deletePod':
      for (const ns of ['shop', 'other']) w.pods.delete(`${ns}/p${o.pod}`);
      return;
    case 'workload': {
      const app = at(F_APPS, o.app);
      const d = deployment(
        'shop',
        app,
        { app },
        {
          replicas: o.replicas,
          affinity: {
            ...(o.waitsFor === null ? {} : affinityTo({ app: at(F_APPS, o.waitsFor) })),
            ...(o.avoids === null
              ? {}
              : {
                  podAntiAffinity: {
                    [REQUIRED]: [term(labelsIn({ app: at(F_APPS, o.avoids) }), HOSTNAME)],
                  },
                }),
          },
        },
      );
      const rs = replicaSet(d, 'h');
      w.deployments.set(d);
      w.replicaSets.set(o.orphanRs ? { ...rs, ownerReferences: [] } : rs);
      return;
    }
    case 'deleteWorkload': {
      const app = at(F_APPS, o.app);
      w.deployments.delete(`Deployment/shop/${app}`);
      w.replicaSets.delete(`ReplicaSet/shop/${app}-h`);
      return;
    }
    case 'policies':
      // Compiled anew each time: a new array of new objects, as after a policy event.
      w.setPolicies(...F_POLICIES.filter((_, i) => (o.mask & (1 << i)) !== 0));
      return;
  }
}

void test('kept feasibility and policies adopted in place end where an audit from scratch does, after every pass', async () => {
  const refs = F_POLICIES.map((p) => compiled(p).ref);
  await fc.assert(
    // Up to three changes between two passes: a pod replaced by another in one pass, too.
    fc.asyncProperty(
      fc.array(fc.array(feasibilityOpArb, { minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 15,
      }),
      async (batches) => {
        const w = new World();
        for (const n of F_NODES) w.nodes.set(nodeInZone(n, 'za'));
        w.namespaces.set(namespace('shop'));
        w.namespaces.set(namespace('other'));
        w.setPolicies(...F_POLICIES);
        const options = { debounceMs: HOUR, fullCheckMs: HOUR };
        const kept = new ContinuousAudit(w.deps(), options);
        kept.start();
        try {
          for (const ops of batches) {
            for (const o of ops) applyFeasibilityOp(w, o);
            await kept.evaluate();
            const scratch = new ContinuousAudit(w.deps(), { ...options, fromScratch: true });
            scratch.start();
            await scratch.evaluate();
            await scratch.stop();
            for (const ref of refs) assert.deepEqual(kept.summary(ref), scratch.summary(ref), ref);
            assert.deepEqual(kept.report?.violations, scratch.report?.violations);
          }
          await kept.fullCheck();
          assert.equal(kept.stats.mismatches, 0, 'the periodic check agrees');
        } finally {
          await kept.stop();
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ------------------------------------------------- feasibility shares the event loop

void describe('ContinuousAudit feasibility shares the event loop', () => {
  /**
   * 1,000 Deployments of 8 replicas, one pod per node on 300 nodes, and one that wants more
   * replicas than there are nodes: the scheduling model places 8,000 pods and finds one
   * problem. Slices of 1 ms make that many slices on any machine, however fast or loaded.
   */
  const longFeasibility = (): World => {
    const w = new World();
    for (let i = 0; i < 300; i++) w.nodes.set(node(`n${String(i)}`));
    w.namespaces.set(namespace('shop'));
    for (let i = 0; i < 1000; i++)
      w.deployments.set(
        deployment('shop', `web${String(i)}`, { app: `web${String(i)}` }, { replicas: 8 }),
      );
    w.deployments.set(deployment('shop', 'big', { app: 'big' }, { replicas: 301 }));
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    return w;
  };
  const ref = 'PlacementPolicy/shop/one-per-node';

  void test('a pass publishes its verdicts while the pass before it still computes feasibility', async (t) => {
    const w = longFeasibility();
    w.pods.set(placed('solo', { ns: 'shop', labels: { app: 'solo' }, node: 'n0' }));
    const clock = new FakeClock();
    const QUIET = 500;
    const audit = w.audit(t, { clock }, { debounceMs: QUIET, sliceMs: 1 });
    /** Waits on the event loop (at most 20 s) for `done`. */
    const until = async (done: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!done()) {
        assert.ok(Date.now() < deadline, `waited 20 s for ${what}`);
        await new Promise((r) => setImmediate(r));
      }
    };
    clock.advance(QUIET);
    await until(() => audit.stats.feasibilityRuns === 1, 'the first pass to compute feasibility');
    // A pod that breaks its own anti-affinity: the next pass starts at once and reports it.
    const solo = { app: 'solo' };
    w.pods.set(
      placed('twin', {
        ns: 'shop',
        labels: solo,
        node: 'n0',
        anti: [term(labelsIn(solo), HOSTNAME)],
      }),
    );
    clock.advance(QUIET);
    await until(() => audit.stats.evaluations === 2, 'the second pass to publish');
    // twin is a pod feasibility reads: its change may stop that computation at its next
    // slice (feasibilityStopped) rather than let it run on. Either way it has not finished.
    assert.ok(
      w.metrics.audits === 0 || audit.stats.feasibilityStopped === 1,
      "the second pass published before the first pass's feasibility came to an end",
    );
    // twin's own term, and solo's symmetric side of it.
    assert.deepEqual(
      audit.report?.violations.map((v) => v.pod),
      ['shop/solo', 'shop/twin'],
    );
    await until(() => w.metrics.audits >= 1, 'feasibility to finish');
    await audit.evaluate();
    assert.match(summaryOf(audit, ref).unsatisfiable ?? '', /Deployment shop\/big wants 301/);
    assert.equal(audit.stats.mismatches, 0);
  });

  void test('a long feasibility computation lets timers run between its slices, with the same result', async (t) => {
    const w = longFeasibility();
    // How often a timer due every millisecond runs while the audit's feasibility pass is
    // under way (it has started, and the evaluation has not finished).
    const ticksDuringPass = async (audit: ContinuousAudit): Promise<number> => {
      const ticks = await passTicks(audit, 1);
      assert.equal(audit.stats.feasibilityRuns, 1, 'one feasibility pass');
      return ticks;
    };
    const { sliced, whole } = await slicedAndWhole(w, t, ticksDuringPass, 'a pass');
    assert.match(
      summaryOf(sliced, ref).unsatisfiable ?? '',
      /Deployment shop\/big wants 301 replicas/,
    );
    assert.deepEqual(sliced.summary(ref), whole.summary(ref), 'slicing changes the result');
  });
});

// -------------------------------------------------------------- slices

void describe('ContinuousAudit builds and judges a large index in slices', () => {
  const APPS = 150;
  const REPLICAS = 20;
  const ONE_PER_NODE_REF = 'PlacementPolicy/shop/one-per-node';
  /**
   * 3,000 pods of 150 Deployments on 100 nodes in two zones, one per node under a policy,
   * each app's pods kept out of each other's zone by their own anti-affinity (the inter-pod
   * rules judge them) and spread over the zones by their own constraint (the node and spread
   * rules judge them); app 0 has two pods per node.
   */
  const large = (): World => {
    const w = new World();
    for (let i = 0; i < 100; i++) w.nodes.set(nodeInZone(`n${String(i)}`, i % 2 === 0 ? 'a' : 'b'));
    w.namespaces.set(namespace('shop'));
    for (let a = 0; a < APPS; a++) {
      const app = `app${String(a)}`;
      const d = deployment('shop', app, { app }, { replicas: REPLICAS });
      w.deployments.set(d);
      w.replicaSets.set(replicaSet(d, 'h'));
      for (let r = 0; r < REPLICAS; r++) {
        const on = a === 0 ? Math.floor(r / 2) : (a + r * 5) % 100;
        const p = placed(`${app}-h-${String(r)}`, {
          ns: 'shop',
          labels: { app },
          node: `n${String(on)}`,
          owner: rsOwner(`${app}-h`),
          anti: [term(labelsIn({ app }), ZONE)],
        });
        const spread = {
          maxSkew: 1,
          topologyKey: ZONE,
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: labelsIn({ app }),
        };
        w.pods.set({ ...p, spec: { ...p.spec, topologySpreadConstraints: [spread] } });
      }
    }
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    return w;
  };

  const reported = (audit: ContinuousAudit) => ({
    violations: audit.report?.violations,
    summary: { ...audit.summary(ONE_PER_NODE_REF), lastAuditTime: undefined },
  });

  void test('the first pass and the full check let timers run before feasibility, with the same result', async (t) => {
    const w = large();
    // Ticks until feasibility starts: while the index is built and every pod judged.
    const firstPass = async (audit: ContinuousAudit): Promise<number> => {
      const ticks = await passTicks(audit, 0);
      assert.equal(audit.stats.evaluations, 1, 'one pass');
      return ticks;
    };
    const fullCheck = async (audit: ContinuousAudit): Promise<number> => {
      const runs = audit.stats.feasibilityRuns;
      return ticksWhile(
        () => audit.fullCheck(),
        () => audit.stats.feasibilityRuns === runs,
      );
    };
    const { sliced, whole } = await slicedAndWhole(w, t, firstPass, 'the first pass');
    const found = reported(sliced);
    assert.ok((found.violations?.length ?? 0) > 0, 'the pass finds violations');
    assert.deepEqual(found, reported(whole), 'slicing changes the result');

    const checkTicks = await fullCheck(sliced);
    assert.equal(await fullCheck(whole), 0, 'a timer ran during a full check run in one go');
    assert.ok(
      checkTicks >= 3,
      `a timer due every millisecond ran ${String(checkTicks)} times during the full check's rebuild`,
    );
    assert.equal(sliced.stats.mismatches, 0);
    assert.deepEqual(reported(sliced), found);
  });

  void test('changes heard while the index is built and judged are judged by the next pass', async (t) => {
    const w = large();
    const audit = w.audit(t, {}, { sliceMs: 1 });
    let changed = 0;
    // Once during the first pass, before feasibility: app1's pods join app0's two on node n0,
    // and app2's go (their node n2 goes too); each a change the pass must not lose.
    const change = (): void => {
      if (audit.stats.feasibilityRuns > 0 || changed > 0) return;
      changed++;
      for (let r = 0; r < REPLICAS; r++) {
        const key = `shop/app1-h-${String(r)}`;
        const p = w.pods.get(key);
        assert.ok(p !== undefined);
        w.pods.set({ ...p, spec: { ...p.spec, nodeName: 'n0' } });
        w.pods.delete(`shop/app2-h-${String(r)}`);
      }
      w.nodes.delete('n2');
    };
    await ticksWhile(
      () => audit.evaluate(),
      () => {
        change();
        return false;
      },
    );
    assert.equal(changed, 1, 'the changes were made while the first pass ran');
    await audit.evaluate();
    const fresh = w.audit(t);
    await fresh.evaluate();
    assert.deepEqual(reported(audit), reported(fresh), 'the next pass judges the changes');
    assert.ok(
      audit.report?.violations.some((v) => v.pod === 'shop/app1-h-0'),
      'app1 on one node breaks the rule',
    );
    assert.ok(!audit.report?.violations.some((v) => v.pod.startsWith('shop/app2-')));
    await audit.fullCheck();
    assert.equal(audit.stats.mismatches, 0, 'the incremental state equals a rebuild');
  });

  void test('a workload change heard while the first index is built changes the reach the next pass judges', async (t) => {
    const w = large();
    // The pods of a workload labelled pinned=yes must run in zone a: app3's in zone b break it
    // once its template is labelled so.
    const zoneA = namespacedPolicy('shop', 'app3-in-zone-a', {
      targets: { selector: { matchLabels: { app: 'app3', pinned: 'yes' } } },
      affinity: {
        nodeAffinity: {
          [REQUIRED]: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: ZONE, operator: 'In', values: ['a'] }] },
            ],
          },
        },
      },
    });
    w.setPolicies(zoneA);
    const ref = 'PlacementPolicy/shop/app3-in-zone-a';
    const audit = w.audit(t, {}, { sliceMs: 1 });
    const app3 = w.deployments.get('Deployment/shop/app3');
    assert.ok(app3 !== undefined);
    let changed = 0;
    // Once, while the first pass builds its index: app3's template comes to match.
    await ticksWhile(
      () => audit.evaluate(),
      () => {
        if (changed === 0 && audit.report === null) {
          changed++;
          w.deployments.set({
            ...app3,
            templateLabels: { app: 'app3', pinned: 'yes' },
            resourceVersion: '2',
          });
        }
        return false;
      },
    );
    assert.equal(changed, 1, 'the change was made while the first pass ran');
    await audit.evaluate();
    const fresh = w.audit(t);
    await fresh.evaluate();
    assert.deepEqual(reported(audit), reported(fresh), 'the next pass judges the new reach');
    assert.ok(
      fresh.report?.violations.some((v) => v.pod.startsWith('shop/app3-')) === true,
      'app3 pods break the rule somewhere',
    );
    const counted = fresh.summary(ref)?.violations ?? 0;
    assert.ok(counted > 0, 'the policy counts the app3 pods in zone b');
    assert.equal(audit.summary(ref)?.violations, counted);
    await audit.fullCheck();
    assert.equal(audit.stats.mismatches, 0, 'the incremental state equals a rebuild');
  });

  void test('each step over every pod yields every so many pods and returns what it returns run at once', () => {
    const w = large();
    const live = new LiveIndex(w.deps(), newAuditStats());
    const pods = w.pods.list().length;
    const policies = w.policies;
    const built = stepped(live.buildSteps(policies));
    const index = live.build(policies);
    const input = () => ({
      nodes: w.nodes.list(),
      pods: w.pods.list(),
      policiesOf: nodePolicyReach(policies, (p) => live.workloadOf(p), index),
    });
    // Each with how many loops over every pod it runs: every pod carries a spread constraint,
    // so the node and spread rules judge every pod again after the walk.
    const steps = [
      ['buildIndexSteps', 1, built, index, (v: unknown) => (v as typeof index).describe()],
      ['auditIndexSteps', 1, stepped(auditIndexSteps(index)), auditIndex(index), same],
      [
        'IncrementalAudit.passSteps',
        1,
        stepped(new IncrementalAudit().passSteps(index)),
        auditIndex(index),
        same,
      ],
      [
        'judgeNodeAndSpreadSteps',
        2,
        stepped(judgeNodeAndSpreadSteps(input())),
        judgeNodeAndSpread(input()),
        findings,
      ],
      [
        // the walk, node rules, spread, and each pod's scores and findings put together
        'IncrementalNodeSpread.passSteps',
        4,
        stepped(new IncrementalNodeSpread().passSteps(input())),
        judgeNodeAndSpread(input()),
        findings,
      ],
    ] as const;
    for (const [name, loops, { value, yields }, expected, seen] of steps) {
      assert.ok(
        yields >= loops * Math.floor(pods / UNITS_PER_STEP),
        `${name} yielded ${String(yields)} times in ${String(loops)} loop(s) over ${String(pods)} pods`,
      );
      assert.deepEqual(seen(value), seen(expected), `${name} returns another result`);
    }
  });
});

/** How often a timer due every millisecond runs while `run` runs and `counting()` holds. */
const ticksWhile = async (run: () => Promise<void>, counting: () => boolean): Promise<number> => {
  let running = true;
  let ticks = 0;
  const timer = setInterval(() => {
    if (running && counting()) ticks++;
  }, 1);
  try {
    await run();
  } finally {
    running = false;
    clearInterval(timer);
  }
  return ticks;
};

/** The ticks (ticksWhile) during a pass while `runs` feasibility computations have started. */
const passTicks = (audit: ContinuousAudit, runs: number): Promise<number> =>
  ticksWhile(
    () => audit.evaluate(),
    () => audit.stats.feasibilityRuns === runs,
  );

/**
 * Two audits of `w`, one in slices of 1 ms (many slices on any machine, however fast or
 * loaded), one in one slice, each measured by `ticks`: some ticks in slices, none in one go,
 * which shows that the count sees only what slicing lets through.
 */
async function slicedAndWhole(
  w: World,
  t: Parameters<World['audit']>[0],
  ticks: (audit: ContinuousAudit) => Promise<number>,
  what: string,
): Promise<{ sliced: ContinuousAudit; whole: ContinuousAudit }> {
  const sliced = w.audit(t, {}, { sliceMs: 1 });
  const slicedTicks = await ticks(sliced);
  const whole = w.audit(t, {}, { sliceMs: Infinity });
  assert.equal(await ticks(whole), 0, `a timer ran during ${what} run in one go`);
  assert.ok(
    slicedTicks >= 3,
    `a timer due every millisecond ran ${String(slicedTicks)} times during ${what} in 1 ms slices`,
  );
  return { sliced, whole };
}

/** Runs `steps` to the end, counting its yields. */
function stepped<T>(steps: Steps<T>): { value: T; yields: number } {
  let yields = 0;
  for (;;) {
    const r = steps.next();
    if (r.done === true) return { value: r.value, yields };
    yields++;
  }
}

const same = (x: unknown): unknown => x;
const findings = (x: unknown): unknown => {
  const f = x as NodeSpreadAudit;
  return { violations: f.violations, preferred: f.preferred, problems: f.problems };
};
