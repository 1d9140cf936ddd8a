// The continuous audit keeps node-rule and spread findings between passes: after pod, node and
// policy changes its report is that of an audit judging from scratch,
// and the periodic check finds the kept findings right.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod, TopologySpreadConstraint } from '../../../src/api/core.ts';
import type { ContinuousAudit } from '../../../src/audit/continuous-audit.ts';
import { labelsIn, namespacedPolicy, ZONE } from '../builders.ts';
import { placed, REQUIRED, shop, relabelNode, webNearDb, type World } from './world.ts';

const SPREAD: TopologySpreadConstraint = {
  maxSkew: 1,
  topologyKey: ZONE,
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: { matchLabels: { app: 'api' } },
};

const api = (name: string, node: string, extra: Partial<Pod['spec']> = {}): Pod => {
  const p = placed(name, { ns: 'shop', labels: { app: 'api' }, node });
  return { ...p, spec: { ...p.spec, topologySpreadConstraints: [SPREAD], ...extra } };
};

const GPU_ONLY = namespacedPolicy('shop', 'api-on-gpu', {
  mode: 'Audit',
  targets: { kinds: ['Pod'], selector: labelsIn({ app: 'api' }) },
  affinity: {
    nodeAffinity: {
      [REQUIRED]: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] },
        ],
      },
    },
  },
});

/** Two audits of one world: one keeps findings between passes, one judges from scratch. */
function pair(t: Parameters<World['audit']>[0]): {
  w: World;
  kept: ContinuousAudit;
  scratch: ContinuousAudit;
} {
  const w = shop();
  for (const [i, node] of ['a1', 'a2', 'a1', 'a2', 'b1'].entries())
    w.pods.set(api(`api-${i}`, node));
  w.pods.set(api('api-sel', 'b2', { nodeSelector: { pool: 'gpu' } }));
  w.setPolicies(webNearDb(), GPU_ONLY);
  return { w, kept: w.audit(t), scratch: w.audit(t, {}, { fromScratch: true }) };
}

async function same(kept: ContinuousAudit, scratch: ContinuousAudit, what: string): Promise<void> {
  await kept.evaluate();
  await scratch.evaluate();
  assert.deepEqual(kept.report?.violations, scratch.report?.violations, what);
  assert.deepEqual(
    [...(kept.report?.preferred ?? [])].sort(),
    [...(scratch.report?.preferred ?? [])].sort(),
    what,
  );
}

void test('node and spread findings kept between passes follow pod, node and policy changes', async (t) => {
  const { w, kept, scratch } = pair(t);
  await same(kept, scratch, 'first pass');
  const rules = (kept.report?.violations ?? []).map((v) => v.rule);
  assert.ok(rules.includes('topologySpread'), 'zone a holds 4 api pods, zone b 2: one over');
  assert.ok(rules.includes('nodeSelector') && rules.includes('nodeAffinity'));

  w.pods.delete('shop/api-2');
  await same(kept, scratch, 'an api pod deleted');
  w.pods.set(api('api-2', 'b1'));
  await same(kept, scratch, 'put back in zone b');
  relabelNode(w, 'a2', 'b');
  await same(kept, scratch, 'a node moved to zone b');
  const b2 = w.nodes.get('b2');
  assert.ok(b2);
  w.nodes.set({
    ...b2,
    metadata: { ...b2.metadata, labels: { ...b2.metadata.labels, pool: 'gpu' } },
  });
  await same(kept, scratch, 'a node labelled pool=gpu');
  w.nodes.delete('b1');
  await same(kept, scratch, 'a node deleted');
  w.setPolicies(webNearDb());
  await same(kept, scratch, 'the node policy removed');

  await kept.fullCheck();
  assert.equal(kept.stats.mismatches, 0, 'the periodic check agrees');
  assert.equal(
    w.logged(
      'node and spread findings kept between passes disagreed with a rebuild; using the rebuild',
    ).length,
    0,
  );
});
