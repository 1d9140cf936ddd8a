// Label keys that are also names of Object.prototype members (`constructor`, `toString`,
// `__proto__`...) are valid Kubernetes label keys. A label lookup must see only the labels an
// object carries: a node without the key is in no domain of it, a pod without it does not
// merge it through matchLabelKeys, a nodeSelector on it does not match.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { nodeAdmits } from '../../../src/engine/node-eligibility.ts';
import { audit, exprs, labelsIn, namespace, node, pod, term, tuplesOf } from '../builders.ts';

const KEYS = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'];

for (const key of KEYS) {
  void test(`a topologyKey "${key}" that no node carries puts no pod in any domain`, () => {
    const report = audit({
      nodes: [node('n1'), node('n2')],
      namespaces: [namespace('default')],
      pods: [
        pod('a-1', { labels: { app: 'a' }, node: 'n1', anti: [term(labelsIn({ app: 'a' }), key)] }),
        pod('a-2', { labels: { app: 'a' }, node: 'n2', anti: [term(labelsIn({ app: 'a' }), key)] }),
        pod('b-1', {
          labels: { app: 'b' },
          node: 'n1',
          affinity: [term(labelsIn({ app: 'a' }), key)],
        }),
      ],
    });
    // Anti-affinity outside every domain holds; affinity outside every domain cannot be met.
    assert.deepEqual(
      tuplesOf(report.violations).map((t) => `${t.pod} ${t.rule}`),
      ['default/b-1 podAffinity'],
    );
  });

  void test(`matchLabelKeys ["${key}"] on a pod without that label merges nothing`, () => {
    const report = audit({
      nodes: [node('n1')],
      namespaces: [namespace('default')],
      pods: [
        pod('a-1', { labels: { app: 'a' }, node: 'n1' }),
        pod('b-1', {
          labels: { app: 'b' },
          node: 'n1',
          affinity: [
            term(labelsIn({ app: 'a' }), 'kubernetes.io/hostname', { matchLabelKeys: [key] }),
          ],
        }),
      ],
    });
    assert.deepEqual(report.violations, []);
  });

  void test(`a node without "${key}" does not meet a nodeSelector or Exists on it`, () => {
    const facts = { name: 'n1', labels: { app: 'x' }, taints: [], unschedulable: false };
    assert.equal(nodeAdmits(facts, { nodeSelector: { [key]: 'x' } }), false);
    const exists = exprs([key, 'Exists']).matchExpressions ?? [];
    assert.equal(
      nodeAdmits(facts, {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: exists }],
          },
        },
      }),
      false,
    );
  });
}
