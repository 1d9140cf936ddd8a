import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  nodeAdmits,
  tolerates,
  type NodeFacts,
  type PodConstraints,
} from '../../../src/engine/node-eligibility.ts';

const node = (o: Partial<NodeFacts> = {}): NodeFacts => ({
  name: 'n1',
  labels: { pool: 'a', cores: '16', 'kubernetes.io/hostname': 'n1' },
  taints: [],
  unschedulable: false,
  ...o,
});

const required = (...nodeSelectorTerms: object[]): PodConstraints => ({
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } },
});

interface Case {
  readonly name: string;
  readonly node: NodeFacts;
  readonly pod: PodConstraints;
  readonly admits: boolean;
}

const cases: Case[] = [
  { name: 'no constraints, plain node', node: node(), pod: {}, admits: true },
  {
    name: 'nodeSelector matches',
    node: node(),
    pod: { nodeSelector: { pool: 'a' } },
    admits: true,
  },
  {
    name: 'nodeSelector value differs',
    node: node(),
    pod: { nodeSelector: { pool: 'b' } },
    admits: false,
  },
  {
    name: 'nodeSelector key missing',
    node: node(),
    pod: { nodeSelector: { gpu: 'yes' } },
    admits: false,
  },
  {
    name: 'terms are ORed: the second matches',
    node: node(),
    pod: required(
      { matchExpressions: [{ key: 'pool', operator: 'In', values: ['b'] }] },
      { matchExpressions: [{ key: 'pool', operator: 'In', values: ['a'] }] },
    ),
    admits: true,
  },
  {
    name: 'expressions of one term are ANDed',
    node: node(),
    pod: required({
      matchExpressions: [
        { key: 'pool', operator: 'In', values: ['a'] },
        { key: 'gpu', operator: 'Exists' },
      ],
    }),
    admits: false,
  },
  {
    name: 'NotIn and DoesNotExist hold for a missing label',
    node: node(),
    pod: required({
      matchExpressions: [
        { key: 'gpu', operator: 'NotIn', values: ['yes'] },
        { key: 'gpu', operator: 'DoesNotExist' },
      ],
    }),
    admits: true,
  },
  {
    name: 'Gt compares integers',
    node: node(),
    pod: required({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }),
    admits: true,
  },
  {
    name: 'Lt fails on a label that is not an integer',
    node: node({ labels: { cores: 'many' } }),
    pod: required({ matchExpressions: [{ key: 'cores', operator: 'Lt', values: ['8'] }] }),
    admits: false,
  },
  {
    name: 'Gt fails on a missing label',
    node: node({ labels: {} }),
    pod: required({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['1'] }] }),
    admits: false,
  },
  {
    name: 'matchFields on metadata.name',
    node: node(),
    pod: required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }),
    admits: true,
  },
  {
    name: 'matchFields NotIn the node name',
    node: node(),
    pod: required({ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] }),
    admits: false,
  },
  {
    name: 'an empty nodeSelectorTerm matches no node',
    node: node(),
    pod: required({}),
    admits: false,
  },
  {
    name: 'a NoSchedule taint without a toleration',
    node: node({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }),
    pod: {},
    admits: false,
  },
  {
    name: 'a NoExecute taint without a toleration',
    node: node({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }] }),
    pod: {},
    admits: false,
  },
  {
    name: 'a PreferNoSchedule taint does not filter',
    node: node({ taints: [{ key: 'dedicated', value: 'db', effect: 'PreferNoSchedule' }] }),
    pod: {},
    admits: true,
  },
  {
    name: 'a matching Equal toleration',
    node: node({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }),
    pod: { tolerations: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] },
    admits: true,
  },
  {
    name: 'an Equal toleration with another value',
    node: node({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }),
    pod: { tolerations: [{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }] },
    admits: false,
  },
  {
    name: 'a cordoned node',
    node: node({ unschedulable: true }),
    pod: {},
    admits: false,
  },
  {
    name: 'a cordoned node, tolerated',
    node: node({ unschedulable: true }),
    pod: { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists' }] },
    admits: true,
  },
];

for (const c of cases) {
  void test(`nodeAdmits: ${c.name}`, () => {
    assert.equal(nodeAdmits(c.node, c.pod), c.admits);
  });
}

void test('tolerates: Exists with an empty key tolerates every taint; effect must match when set', () => {
  const taint = { key: 'k', value: 'v', effect: 'NoExecute' };
  assert.ok(tolerates({ operator: 'Exists' }, taint));
  assert.ok(tolerates({ key: 'k', operator: 'Exists' }, taint));
  assert.ok(!tolerates({ key: 'other', operator: 'Exists' }, taint));
  assert.ok(!tolerates({ operator: 'Exists', effect: 'NoSchedule' }, taint));
  assert.ok(tolerates({ key: 'k', value: 'v' }, taint), 'Equal is the default operator');
  assert.ok(!tolerates({ key: 'k' }, taint), 'Equal with no value wants an empty value');
});
