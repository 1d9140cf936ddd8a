// Node affinity and nodeSelector drift: a table of named cases, then a property against a
// naive judge written here from the NodeAffinity plugin's rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Labels, NodeSelectorRequirement, NodeSelectorTerm } from '../../../src/api/core.ts';
import {
  judgeNodeRules,
  preferredNodeAffinityScore,
  type NodeIdentity,
  type NodeRules,
  type NodeRuleVerdict,
} from '../../../src/engine/node-affinity.ts';

const node = (labels: Labels, name = 'n1'): NodeIdentity => ({ name, labels });
const expr = (key: string, operator: string, ...values: string[]): NodeSelectorRequirement => ({
  key,
  operator,
  ...(values.length > 0 ? { values } : {}),
});
const required = (...nodeSelectorTerms: NodeSelectorTerm[]): NodeRules => ({
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } },
});
const on = (...matchExpressions: NodeSelectorRequirement[]): NodeSelectorTerm => ({
  matchExpressions,
});

interface Case {
  readonly name: string;
  readonly rules: NodeRules;
  readonly node: NodeIdentity;
  /** The rules broken, in order; empty: ok. */
  readonly broken: readonly ('nodeSelector' | 'nodeAffinity')[];
  /** Text the message must hold. */
  readonly says?: string;
}

const gpu = node({ pool: 'gpu', cores: '16', zone: 'a' });

const cases: Case[] = [
  { name: 'no rules: fine anywhere', rules: {}, node: gpu, broken: [] },
  { name: 'nodeSelector met', rules: { nodeSelector: { pool: 'gpu' } }, node: gpu, broken: [] },
  {
    name: 'nodeSelector: node relabelled out of the pool',
    rules: { nodeSelector: { pool: 'gpu' } },
    node: node({ pool: 'cpu' }),
    broken: ['nodeSelector'],
    says: 'nodeSelector pool=gpu: node n1 has "cpu"',
  },
  {
    name: 'nodeSelector: label removed',
    rules: { nodeSelector: { pool: 'gpu' } },
    node: node({}),
    broken: ['nodeSelector'],
    says: 'has none',
  },
  { name: 'In met', rules: required(on(expr('pool', 'In', 'gpu', 'tpu'))), node: gpu, broken: [] },
  {
    name: 'In: value not listed',
    rules: required(on(expr('pool', 'In', 'tpu'))),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'nodeSelectorTerms[0].matchExpressions[0] (pool In [tpu]): node label is "gpu"',
  },
  {
    name: 'NotIn: a missing key satisfies it',
    rules: required(on(expr('spot', 'NotIn', 'true'))),
    node: gpu,
    broken: [],
  },
  {
    name: 'NotIn: listed value',
    rules: required(on(expr('pool', 'NotIn', 'gpu'))),
    node: gpu,
    broken: ['nodeAffinity'],
  },
  { name: 'Exists met', rules: required(on(expr('zone', 'Exists'))), node: gpu, broken: [] },
  {
    name: 'Exists: label gone',
    rules: required(on(expr('rack', 'Exists'))),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'node label is none',
  },
  {
    name: 'DoesNotExist: label added',
    rules: required(on(expr('zone', 'DoesNotExist'))),
    node: gpu,
    broken: ['nodeAffinity'],
  },
  { name: 'Gt met', rules: required(on(expr('cores', 'Gt', '8'))), node: gpu, broken: [] },
  {
    name: 'Gt: not greater',
    rules: required(on(expr('cores', 'Gt', '16'))),
    node: gpu,
    broken: ['nodeAffinity'],
  },
  { name: 'Lt met', rules: required(on(expr('cores', 'Lt', '17'))), node: gpu, broken: [] },
  {
    name: 'Lt: a label that is not an integer matches neither Gt nor Lt',
    rules: required(on(expr('pool', 'Lt', '5'))),
    node: gpu,
    broken: ['nodeAffinity'],
  },
  {
    name: 'expressions of a term are ANDed: the second fails',
    rules: required(on(expr('pool', 'In', 'gpu'), expr('zone', 'In', 'b'))),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'nodeSelectorTerms[0].matchExpressions[1] (zone In [b])',
  },
  {
    name: 'terms are ORed: the second matches',
    rules: required(on(expr('pool', 'In', 'tpu')), on(expr('zone', 'In', 'a'))),
    node: gpu,
    broken: [],
  },
  {
    name: 'terms are ORed: each failing term is named',
    rules: required(on(expr('pool', 'In', 'tpu')), on(expr('zone', 'In', 'b'))),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'nodeSelectorTerms[1].matchExpressions[0] (zone In [b])',
  },
  {
    name: 'matchFields metadata.name In the node',
    rules: required({ matchFields: [expr('metadata.name', 'In', 'n1')] }),
    node: gpu,
    broken: [],
  },
  {
    name: 'matchFields metadata.name names another node',
    rules: required({ matchFields: [expr('metadata.name', 'In', 'n2')] }),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'matchFields[0] (metadata.name In [n2]): node field is "n1"',
  },
  {
    name: 'matchFields on a field the scheduler does not know matches no node',
    rules: required({ matchFields: [expr('metadata.uid', 'In', 'x')] }),
    node: gpu,
    broken: ['nodeAffinity'],
  },
  {
    name: 'a term without requirements matches no node',
    rules: required({}),
    node: gpu,
    broken: ['nodeAffinity'],
    says: 'has no requirement',
  },
  {
    name: 'both the nodeSelector and the affinity broken: both reported',
    rules: { nodeSelector: { pool: 'cpu' }, ...required(on(expr('zone', 'In', 'b'))) },
    node: gpu,
    broken: ['nodeSelector', 'nodeAffinity'],
  },
  {
    name: 'preferred terms never break a rule',
    rules: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 10, preference: on(expr('pool', 'In', 'tpu')) },
        ],
      },
    },
    node: gpu,
    broken: [],
  },
];

const broken = (v: NodeRuleVerdict): string[] =>
  v.kind === 'ok' ? [] : v.violations.map((x) => x.rule);

for (const c of cases) {
  void test(`judgeNodeRules: ${c.name}`, () => {
    const v = judgeNodeRules(c.rules, c.node);
    assert.deepEqual(broken(v), c.broken);
    if (c.says !== undefined) {
      assert.equal(v.kind, 'violated');
      const text = v.violations.map((x) => x.message).join('\n');
      assert.ok(text.includes(c.says), `"${text}" should say "${c.says}"`);
    }
  });
}

void test('preferred node affinity: the sum of the weights of the terms the node matches', () => {
  const rules: NodeRules = {
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 5, preference: on(expr('pool', 'In', 'gpu')) },
        { weight: 7, preference: on(expr('zone', 'In', 'a'), expr('cores', 'Gt', '8')) },
        { weight: 11, preference: on(expr('zone', 'In', 'b')) },
        { weight: 13, preference: {} },
      ],
    },
  };
  assert.equal(preferredNodeAffinityScore(rules, gpu), 12);
  assert.equal(judgeNodeRules(rules, gpu).preferredScore, 12);
  assert.equal(preferredNodeAffinityScore(rules, node({ zone: 'b' })), 11);
});

// ---------------------------------------------------------------- property

const KEYS = ['pool', 'zone', 'size'] as const;
const VALUES = ['a', 'b', '1', '5', '9'] as const;
const NODE_NAMES = ['n0', 'n1', 'n2'] as const;

/** The NodeAffinity rules, written out once more without the engine's helpers. */
function naiveHolds(rules: NodeRules, n: NodeIdentity): { selector: boolean; affinity: boolean } {
  const has = (k: string): boolean => Object.keys(n.labels).includes(k);
  const get = (k: string): string | undefined => (has(k) ? n.labels[k] : undefined);
  const selector = Object.keys(rules.nodeSelector ?? {}).every(
    (k) => get(k) === rules.nodeSelector?.[k],
  );
  const one = (r: NodeSelectorRequirement, v: string | undefined): boolean => {
    const vs = r.values ?? [];
    if (r.operator === 'In') return v !== undefined && vs.indexOf(v) >= 0;
    if (r.operator === 'NotIn') return v === undefined || vs.indexOf(v) < 0;
    if (r.operator === 'Exists') return v !== undefined;
    if (r.operator === 'DoesNotExist') return v === undefined;
    const isInt = (s: string | undefined): boolean => s !== undefined && /^-?[0-9]+$/.test(s);
    if (vs.length !== 1 || !isInt(v) || !isInt(vs[0])) return false;
    const d = parseInt(v ?? '', 10) - parseInt(vs[0] ?? '', 10);
    return r.operator === 'Gt' ? d > 0 : d < 0;
  };
  const term = (t: NodeSelectorTerm): boolean => {
    const e = t.matchExpressions ?? [];
    const f = t.matchFields ?? [];
    if (e.length + f.length === 0) return false;
    return (
      e.every((r) => one(r, get(r.key))) &&
      f.every((r) => r.key === 'metadata.name' && one(r, n.name))
    );
  };
  const terms = rules.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return { selector, affinity: terms === undefined || terms.nodeSelectorTerms.some(term) };
}

const requirementArb: fc.Arbitrary<NodeSelectorRequirement> = fc
  .record({
    key: fc.constantFrom(...KEYS),
    operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'),
    values: fc.subarray([...VALUES], { minLength: 1, maxLength: 2 }),
  })
  .map(({ key, operator, values }) =>
    operator === 'Exists' || operator === 'DoesNotExist'
      ? { key, operator }
      : {
          key,
          operator,
          values: operator === 'Gt' || operator === 'Lt' ? values.slice(0, 1) : values,
        },
  );

const fieldArb: fc.Arbitrary<NodeSelectorRequirement> = fc.record({
  key: fc.constantFrom('metadata.name', 'metadata.name', 'spec.unknown'),
  operator: fc.constantFrom('In', 'NotIn'),
  values: fc.subarray([...NODE_NAMES], { minLength: 1, maxLength: 2 }),
});

const termArb: fc.Arbitrary<NodeSelectorTerm> = fc
  .record({
    e: fc.array(requirementArb, { maxLength: 3 }),
    f: fc.array(fieldArb, { maxLength: 1 }),
  })
  .map(({ e, f }) => ({
    ...(e.length > 0 ? { matchExpressions: e } : {}),
    ...(f.length > 0 ? { matchFields: f } : {}),
  }));

const labelsArb: fc.Arbitrary<Labels> = fc.dictionary(
  fc.constantFrom(...KEYS),
  fc.constantFrom(...VALUES),
);

const rulesArb: fc.Arbitrary<NodeRules> = fc
  .record({
    selector: fc.option(labelsArb, { nil: undefined }),
    terms: fc.option(fc.array(termArb, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    preferred: fc.array(
      fc.record({ weight: fc.integer({ min: 1, max: 100 }), preference: termArb }),
      {
        maxLength: 3,
      },
    ),
  })
  .map(({ selector, terms, preferred }) => ({
    ...(selector ? { nodeSelector: selector } : {}),
    nodeAffinity: {
      ...(terms
        ? { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } }
        : {}),
      preferredDuringSchedulingIgnoredDuringExecution: preferred,
    },
  }));

void test('property: judgeNodeRules agrees with a naive NodeAffinity judge', () => {
  fc.assert(
    fc.property(rulesArb, labelsArb, fc.constantFrom(...NODE_NAMES), (rules, labels, name) => {
      const n = node(labels, name);
      const want = naiveHolds(rules, n);
      const got = broken(judgeNodeRules(rules, n));
      assert.equal(got.includes('nodeSelector'), !want.selector);
      assert.equal(got.includes('nodeAffinity'), !want.affinity);
      const score = (rules.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
        .filter((p) => naiveHolds(required(p.preference), n).affinity)
        .reduce((s, p) => s + p.weight, 0);
      assert.equal(judgeNodeRules(rules, n).preferredScore, score);
    }),
    { numRuns: 2000 },
  );
});
