// Properties of the topology index on small random clusters:
// 1. updated one change at a time, it ends equal to an index rebuilt from the final state,
//    and judges every pod the same (and as the reference below does);
// 2. its verdicts are those of a naive all-pairs judge written from the scheduler's rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Labels, Namespace, Node, Pod } from '../../../src/api/core.ts';
import {
  auditSnapshot,
  buildIndex,
  compareViolations,
  isPlaced,
  judgePod,
  placementOf,
  WorkloadLookup,
  type PodVerdict,
  type TopologyIndex,
} from '../../../src/engine/index.ts';
import { snapshotOf, sortTuples, tuplesOf } from '../builders.ts';
import {
  NAMESPACES,
  NODES,
  keyOf,
  podsArb,
  nodesArb,
  namespacesArb,
  opArb,
  type Op,
} from './affinity-arbitraries.ts';
import { referenceAudit, referenceJudged, type ReferenceCluster } from '../reference.ts';

const RUNS = 500;

// ---- the cluster as a model, and the index kept in step with it ----

class Model {
  readonly nodes = new Map<string, Labels>();
  readonly namespaces = new Map<string, Labels>();
  readonly pods = new Map<string, Pod>();

  constructor(nodes: readonly Node[], namespaces: readonly Namespace[], pods: readonly Pod[]) {
    for (const n of nodes) this.nodes.set(n.metadata.name, n.metadata.labels ?? {});
    for (const n of namespaces) this.namespaces.set(n.metadata.name, n.metadata.labels ?? {});
    for (const p of pods) this.pods.set(keyOf(p), p);
  }

  snapshot() {
    return snapshotOf({
      nodes: [...this.nodes].map(([name, labels]) => ({ metadata: { name, labels } })),
      namespaces: [...this.namespaces].map(([name, labels]) => ({ metadata: { name, labels } })),
      pods: [...this.pods.values()],
    });
  }

  /** Applies `op` to the model and the same change, as the operator would, to `index`. */
  apply(op: Op, index: TopologyIndex): void {
    const upsert = (p: Pod) => {
      this.pods.set(keyOf(p), p);
      if (isPlaced(p)) index.upsertPod(placementOf(p, [], new WorkloadLookup([]), index));
      else index.removePod(keyOf(p));
    };
    const existing = (which: number): Pod | undefined => {
      const all = [...this.pods.values()];
      return all[which % Math.max(all.length, 1)];
    };
    switch (op.kind) {
      case 'upsertPod':
        upsert(op.pod);
        return;
      case 'removePod': {
        const p = existing(op.which);
        if (p === undefined) return;
        this.pods.delete(keyOf(p));
        index.removePod(keyOf(p));
        return;
      }
      case 'relabelPod': {
        const p = existing(op.which);
        if (p === undefined) return;
        upsert({ ...p, metadata: { ...p.metadata, labels: op.labels } });
        return;
      }
      case 'setNode':
        this.nodes.set(op.name, op.labels);
        index.setNode(op.name, op.labels);
        return;
      case 'removeNode':
        this.nodes.delete(op.name);
        index.removeNode(op.name);
        return;
      case 'setNamespace':
        this.namespaces.set(op.name, op.labels);
        index.setNamespace(op.name, op.labels);
        return;
    }
  }
}

/** A verdict with its violations in report order, so two indexes' verdicts compare equal. */
function normalised(v: PodVerdict): PodVerdict {
  return v.kind === 'ok' ? v : { ...v, violations: [...v.violations].sort(compareViolations) };
}

function verdicts(index: TopologyIndex): Map<string, PodVerdict> {
  const out = new Map<string, PodVerdict>();
  for (const entry of index.allPods()) {
    if (entry.pod.terminating !== true) out.set(entry.pod.key, normalised(judgePod(index, entry)));
  }
  return out;
}

/** The index's verdicts on every placed pod are the reference judge's on the same cluster. */
function agreesWithReference(index: TopologyIndex, cluster: ReferenceCluster): void {
  const got = verdicts(index);
  assert.deepEqual(
    [...got.keys()].sort(),
    cluster.pods.filter(referenceJudged).map(keyOf).sort(),
    'the placed pods',
  );
  for (const [key, ref] of referenceAudit(cluster)) {
    const verdict = got.get(key);
    assert.ok(verdict !== undefined, key);
    assert.equal(verdict.kind === 'violated', ref.violated, `${key}: verdict`);
    // The engine reports carriers of one term once; the reference lists tuples once too.
    const tuples = verdict.kind === 'violated' ? tuplesOf(verdict.violations) : [];
    const unique = sortTuples([...new Map(tuples.map((t) => [JSON.stringify(t), t])).values()]);
    assert.deepEqual(unique, ref.tuples, `${key}: violations`);
    const preferred = verdict.preferred.totalWeight > 0 ? verdict.preferred : undefined;
    assert.deepEqual(preferred, ref.preferred, `${key}: preferred`);
  }
}

void test('an index updated change by change equals one rebuilt from the final state', () => {
  fc.assert(
    fc.property(
      nodesArb(0),
      namespacesArb(0),
      podsArb(6),
      fc.array(opArb, { maxLength: 25 }),
      (nodes, namespaces, pods, ops) => {
        const model = new Model(nodes, namespaces, pods);
        const index = buildIndex(model.snapshot(), []);
        for (const op of ops) model.apply(op, index);
        const rebuilt = buildIndex(model.snapshot(), []);
        assert.equal(index.describe(), rebuilt.describe());
        assert.deepEqual(index.size, rebuilt.size);
        assert.deepEqual(verdicts(index), verdicts(rebuilt));
        agreesWithReference(index, model.snapshot());
      },
    ),
    { numRuns: RUNS },
  );
});

void test('an index emptied change by change holds nothing', () => {
  fc.assert(
    fc.property(nodesArb(1), namespacesArb(1), podsArb(8), (nodes, namespaces, pods) => {
      const model = new Model(nodes, namespaces, pods);
      const index = buildIndex(model.snapshot(), []);
      for (const p of pods) index.removePod(keyOf(p));
      assert.equal(index.describe(), '');
      assert.equal(index.size.groups, 0);
      assert.equal(index.size.pods, 0);
    }),
    { numRuns: RUNS },
  );
});

void test('the engine judges as a naive all-pairs reference of the scheduler rules does', () => {
  fc.assert(
    fc.property(
      nodesArb(NODES.length - 1),
      namespacesArb(NAMESPACES.length),
      podsArb(8),
      (nodes, namespaces, pods) => {
        const cluster = { nodes, namespaces, pods };
        const result = auditSnapshot(snapshotOf(cluster));
        assert.equal(result.kind, 'ok');
        agreesWithReference(result.index, cluster);
      },
    ),
    { numRuns: RUNS },
  );
});
