// Topology spread: the drift judge of running pods, the filter for a new pod, and the
// ScheduleAnyway score, each a table of named cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Node, Pod, TopologySpreadConstraint } from '../../../src/api/core.ts';
import { FieldError } from '../../../src/engine/errors.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import type { SpreadScore } from '../../../src/engine/placement.ts';
import { compileSpreadRules, spreadSubjectOf } from '../../../src/engine/spread-index.ts';
import { spreadFilter } from '../../../src/engine/topology-spread.ts';
import { HOSTNAME, ZONE, judgeAll, node, pod, spread, type PodSpec } from './spread-world.ts';

/** Nodes a0, a1 in zone a; b0 in zone b; c0 in zone c; bare without a zone label. */
const NODES: readonly Node[] = [
  node('a0', { [ZONE]: 'a', [HOSTNAME]: 'a0' }),
  node('a1', { [ZONE]: 'a', [HOSTNAME]: 'a1' }),
  node('b0', { [ZONE]: 'b', [HOSTNAME]: 'b0' }),
  node('c0', { [ZONE]: 'c', [HOSTNAME]: 'c0', pool: 'spare' }, [
    { key: 'spare', effect: 'NoSchedule' },
  ]),
  node('bare', { [HOSTNAME]: 'bare' }),
];

const web = (nodeName: string, extra: Partial<PodSpec> = {}): PodSpec => ({
  node: nodeName,
  labels: { app: 'web' },
  constraints: [spread('web', ZONE)],
  ...extra,
});

/** Pods named w0.. from node names. */
const webs = (nodes: readonly string[], extra: Partial<PodSpec> = {}): Pod[] =>
  nodes.map((n, i) => pod(`w${i}`, web(n, extra)));

interface DriftCase {
  readonly name: string;
  readonly nodes?: readonly Node[];
  readonly pods: readonly Pod[];
  /** The pods (names) judged in breach; every other judged pod must be fine. */
  readonly violating: readonly string[];
  /** Text one violation message must hold. */
  readonly says?: string;
}

const driftCases: DriftCase[] = [
  { name: 'balanced over three zones', pods: webs(['a0', 'b0', 'c0']), violating: [] },
  {
    name: 'within maxSkew: 2, 1, 1',
    pods: webs(['a0', 'a1', 'b0', 'c0']),
    violating: [],
  },
  {
    name: 'after an outage: zone a holds 4, b and c 1: the excess are the last names of a',
    pods: webs(['a0', 'a1', 'a0', 'a1', 'b0', 'c0']),
    violating: ['w2', 'w3'],
    says: 'domain a holds 4 matching pods, the least-loaded 1, maxSkew 1: 2 over; the excess: shop/w3, shop/w2',
  },
  {
    name: 'maxSkew 3 allows it',
    pods: webs(['a0', 'a1', 'a0', 'a1', 'b0', 'c0'], {
      constraints: [spread('web', ZONE, { maxSkew: 3 })],
    }),
    violating: [],
  },
  {
    name: 'an empty zone is the minimum: 2, 1, 0',
    pods: webs(['a0', 'a1', 'b0']),
    violating: ['w1'],
  },
  {
    name: 'nodeTaintsPolicy Honor: the tainted zone c is no domain',
    pods: webs(['a0', 'a1', 'b0'], {
      constraints: [spread('web', ZONE, { nodeTaintsPolicy: 'Honor' })],
    }),
    violating: [],
  },
  {
    name: 'nodeTaintsPolicy Honor with a toleration: zone c counts again',
    pods: webs(['a0', 'a1', 'b0'], {
      constraints: [spread('web', ZONE, { nodeTaintsPolicy: 'Honor' })],
      tolerations: [{ key: 'spare', operator: 'Exists' }],
    }),
    violating: ['w1'],
  },
  {
    name: 'nodeAffinityPolicy Honor: pods held to zone a by a nodeSelector count zone a only',
    pods: webs(['a0', 'a1'], { nodeSelector: { [ZONE]: 'a' } }),
    violating: [],
  },
  {
    name: 'nodeAffinityPolicy Ignore: every zone counts, so zone a is over',
    pods: webs(['a0', 'a1'], {
      nodeSelector: { [ZONE]: 'a' },
      constraints: [spread('web', ZONE, { nodeAffinityPolicy: 'Ignore' })],
    }),
    violating: ['w1'],
  },
  {
    name: 'minDomains above the number of domains: the minimum is 0',
    pods: webs(['a0', 'b0', 'c0'], {
      constraints: [spread('web', ZONE, { minDomains: 4 })],
    }),
    violating: [],
  },
  {
    name: 'minDomains above the number of domains makes 2 over maxSkew 1',
    pods: webs(['a0', 'a1', 'b0', 'c0'], {
      constraints: [spread('web', ZONE, { minDomains: 4 })],
    }),
    violating: ['w1'],
  },
  {
    name: 'a pod on a node without the topology key breaks its constraint',
    pods: webs(['a0', 'bare']),
    violating: ['w1'],
    says: 'node bare has no label topology.kubernetes.io/zone',
  },
  {
    name: 'only pods of the same namespace count',
    pods: [
      ...webs(['b0', 'c0']),
      pod('x0', { node: 'a0', namespace: 'other', labels: { app: 'web' } }),
      pod('x1', { node: 'a0', namespace: 'other', labels: { app: 'web' } }),
      pod('x2', { node: 'a1', namespace: 'other', labels: { app: 'web' } }),
    ],
    violating: [],
  },
  {
    name: 'pods being deleted do not count',
    pods: [
      ...webs(['a0', 'b0', 'c0']),
      pod('t0', web('a0', { terminating: true })),
      pod('t1', web('a1', { terminating: true })),
    ],
    violating: [],
  },
  {
    name: 'pods without the constraint count, and are the excess only after the carriers',
    pods: [
      pod('w0', web('a0')),
      pod('w1', web('b0')),
      pod('w2', web('c0')),
      pod('z0', { node: 'a0', labels: { app: 'web' } }),
      pod('z1', { node: 'a1', labels: { app: 'web' } }),
    ],
    // Zone a holds 3, min 1: 1 over. The carrier w0 goes before z0, z1.
    violating: ['w0'],
  },
  {
    name: 'matchLabelKeys: each revision spreads on its own',
    pods: [
      ...['a0', 'a1', 'a0'].map((n, i) =>
        pod(`old${i}`, {
          node: n,
          labels: { app: 'web', rev: '1' },
          constraints: [spread('web', ZONE, { matchLabelKeys: ['rev'] })],
        }),
      ),
      ...['b0', 'c0', 'b0'].map((n, i) =>
        pod(`new${i}`, {
          node: n,
          labels: { app: 'web', rev: '2' },
          constraints: [spread('web', ZONE, { matchLabelKeys: ['rev'] })],
        }),
      ),
    ],
    // rev 1: a holds 3, b and c 0: 2 over. rev 2: b 2, c 1, a 0: 1 over.
    violating: ['old1', 'old2', 'new2'],
  },
  {
    name: 'a selector that restricts nothing counts nothing',
    pods: webs(['a0', 'a1', 'a0'], { constraints: [spread('web', ZONE, { labelSelector: {} })] }),
    violating: [],
  },
  {
    name: 'a node lacking the key of another constraint is no domain of either',
    nodes: [...NODES, node('d0', { [ZONE]: 'd' })],
    pods: webs(['a0', 'a1', 'b0', 'c0'], {
      constraints: [spread('web', ZONE), spread('web', HOSTNAME, { maxSkew: 5 })],
    }),
    // d0 has no hostname: zone d is no domain, so the minimum stays 1 and zone a (2) is fine.
    violating: [],
  },
  {
    name: 'ScheduleAnyway never breaks the rule',
    pods: webs(['a0', 'a1', 'a0', 'b0'], {
      constraints: [spread('web', ZONE, { whenUnsatisfiable: 'ScheduleAnyway' })],
    }),
    violating: [],
  },
];

for (const c of driftCases) {
  void test(`judgeSpread: ${c.name}`, () => {
    const { verdicts } = judgeAll(c.nodes ?? NODES, c.pods);
    const violating = [...verdicts]
      .filter(([, v]) => v.kind === 'violated')
      .map(([k]) => k.slice(k.indexOf('/') + 1))
      .sort();
    assert.deepEqual(violating, [...c.violating].sort());
    if (c.says !== undefined) {
      const text = [...verdicts.values()]
        .flatMap((v) => (v.kind === 'violated' ? v.violations.map((x) => x.message) : []))
        .join('\n');
      assert.ok(text.includes(c.says), `"${text}" should say "${c.says}"`);
    }
  });
}

void test('judgeSpread: the over domain names every excess pod and by how much', () => {
  const { verdicts } = judgeAll(NODES, webs(['a0', 'a1', 'a0', 'a1', 'a0', 'b0', 'c0']));
  const v = verdicts.get('shop/w4');
  assert.equal(v?.kind, 'violated');
  const over = v.violations[0]?.over;
  assert.deepEqual(
    { domain: over?.domain, count: over?.count, min: over?.min, over: over?.over },
    { domain: 'a', count: 5, min: 1, over: 3 },
  );
  assert.deepEqual(
    over?.excess.map((p) => p.key),
    ['shop/w4', 'shop/w3', 'shop/w2'],
  );
});

/** A ScheduleAnyway constraint on `app=web`. */
const soft = (topologyKey = ZONE, extra: Partial<TopologySpreadConstraint> = {}) =>
  spread('web', topologyKey, { whenUnsatisfiable: 'ScheduleAnyway', ...extra });

interface ScoreCase {
  readonly name: string;
  readonly nodes?: readonly Node[];
  readonly pods: readonly Pod[];
  /** Scores by pod name (`none`: the pod has no ScheduleAnyway constraint). */
  readonly expect: Readonly<Record<string, SpreadScore | 'none'>>;
}

const held = (satisfied: number, total = 1, excess = 0): SpreadScore => ({
  satisfied,
  total,
  excess,
});

const scoreCases: ScoreCase[] = [
  {
    name: 'within maxSkew everywhere: 2, 1, 1',
    pods: webs(['a0', 'a1', 'b0', 'c0'], { constraints: [soft()] }),
    expect: { w0: held(1), w1: held(1), w2: held(1), w3: held(1) },
  },
  {
    name: 'after an outage: zone a holds 4, b and c 1: every pod of a scores 2 over',
    pods: webs(['a0', 'a1', 'a0', 'a1', 'b0', 'c0'], { constraints: [soft()] }),
    expect: { w0: held(0, 1, 2), w3: held(0, 1, 2), w4: held(1), w5: held(1) },
  },
  {
    name: 'maxSkew 3 allows 4, 1, 1',
    pods: webs(['a0', 'a1', 'a0', 'a1', 'b0', 'c0'], { constraints: [soft(ZONE, { maxSkew: 3 })] }),
    expect: { w0: held(1), w4: held(1) },
  },
  {
    name: 'an empty zone is the minimum: 2, 1, 0',
    pods: webs(['a0', 'a1', 'b0'], { constraints: [soft()] }),
    expect: { w0: held(0, 1, 1), w2: held(1) },
  },
  {
    name: 'nodeTaintsPolicy Honor: the tainted zone c is no domain, so no minimum of 0',
    pods: webs(['a0', 'a1', 'b0'], { constraints: [soft(ZONE, { nodeTaintsPolicy: 'Honor' })] }),
    expect: { w0: held(1), w2: held(1) },
  },
  {
    name: 'minDomains above the number of domains: the minimum is 0',
    pods: webs(['a0', 'a1', 'b0', 'c0'], { constraints: [soft(ZONE, { minDomains: 4 })] }),
    expect: { w0: held(0, 1, 1), w2: held(1) },
  },
  {
    name: 'a pod on a node without the topology key: the constraint does not hold, no excess',
    pods: webs(['a0', 'bare'], { constraints: [soft()] }),
    expect: { w0: held(1), w1: held(0) },
  },
  {
    name: 'two constraints: the zone one is 1 over, the hostname one holds',
    pods: webs(['a0', 'a1', 'a0', 'b0', 'c0'], {
      constraints: [soft(), soft(HOSTNAME, { maxSkew: 5 })],
    }),
    expect: { w0: held(1, 2, 1), w3: held(2, 2) },
  },
  {
    name: 'only pods of the same namespace count',
    pods: [
      ...webs(['b0', 'c0'], { constraints: [soft()] }),
      pod('x0', { node: 'a0', namespace: 'other', labels: { app: 'web' } }),
      pod('x1', { node: 'a0', namespace: 'other', labels: { app: 'web' } }),
      pod('x2', { node: 'a1', namespace: 'other', labels: { app: 'web' } }),
    ],
    expect: { w0: held(1), w1: held(1) },
  },
  {
    name: 'a pod its own selector does not match is not counted in its domain',
    pods: [
      ...webs(['b0', 'c0']),
      pod('o0', { node: 'a0', labels: { app: 'other' }, constraints: [soft()] }),
    ],
    // Zone a holds 0 matching pods, the minimum 0: it holds.
    expect: { o0: held(1) },
  },
  {
    name: 'DoNotSchedule constraints give no score',
    pods: webs(['a0', 'a1', 'a0', 'b0']),
    expect: { w0: 'none', w3: 'none' },
  },
];

for (const c of scoreCases) {
  void test(`SpreadJudge.score: ${c.name}`, () => {
    const { judge, pods } = judgeAll(c.nodes ?? NODES, c.pods);
    for (const [name, want] of Object.entries(c.expect)) {
      const p = pods.find((x) => x.key === `${x.namespace}/${name}`);
      assert.ok(p !== undefined, name);
      assert.deepEqual(judge.score(p) ?? 'none', want, name);
    }
  });
}

// ---------------------------------------------------------------- the filter

interface FilterCase {
  readonly name: string;
  readonly pods: readonly Pod[];
  readonly incoming: PodSpec;
  /** Verdict per node of NODES, in order: . passes, S skew, L missing label. */
  readonly expect: string;
}

const filterCases: FilterCase[] = [
  { name: 'an empty cluster: any node with the key', pods: [], incoming: web(''), expect: '....L' },
  {
    name: 'zone a ahead by one: only b and c',
    pods: webs(['a0', 'b0', 'c0', 'a1']),
    incoming: web(''),
    expect: 'SS..L',
  },
  {
    name: 'a pod that does not match its own selector adds nothing',
    pods: webs(['a0', 'b0', 'c0', 'a1']),
    incoming: web('', { labels: { app: 'other' } }),
    expect: '....L',
  },
  {
    name: 'nodeTaintsPolicy Honor: zone c is no domain, so it is no minimum either',
    pods: webs(['a0', 'b0']),
    incoming: web('', { constraints: [spread('web', ZONE, { nodeTaintsPolicy: 'Honor' })] }),
    expect: '....L',
  },
  {
    name: 'minDomains 4 with three zones: the minimum is 0',
    pods: webs(['a0', 'b0', 'c0']),
    incoming: web('', { constraints: [spread('web', ZONE, { minDomains: 4 })] }),
    expect: 'SSSSL',
  },
  {
    name: 'the first failing constraint decides: hostname key missing',
    pods: [],
    incoming: web('', { constraints: [spread('web', 'rack')] }),
    expect: 'LLLLL',
  },
];

const CODE = { ok: '.', overMaxSkew: 'S', missingTopologyLabel: 'L' } as const;

for (const c of filterCases) {
  void test(`spreadFilter: ${c.name}`, () => {
    const { index } = judgeAll(NODES, c.pods);
    const incoming = pod('new', c.incoming);
    const rules = compileSpreadRules(spreadSubjectOf(incoming));
    const got = NODES.map((n) => {
      const v = spreadFilter(
        index,
        { labels: incoming.metadata.labels ?? {}, rules },
        nodeFacts(n),
      );
      return v.kind === 'ok' ? CODE.ok : CODE[v.miss.reason];
    }).join('');
    assert.equal(got, c.expect);
  });
}

void test('spreadFilter: the refusal says which domain, its count and the minimum', () => {
  const { index } = judgeAll(NODES, webs(['a0', 'b0', 'c0', 'a1']));
  const incoming = pod('new', web(''));
  const rules = compileSpreadRules(spreadSubjectOf(incoming));
  const v = spreadFilter(index, { labels: { app: 'web' }, rules }, nodeFacts(NODES[0] as Node));
  assert.equal(v.kind, 'refused');
  assert.equal(
    v.message,
    'topologySpreadConstraints[0] (topology.kubernetes.io/zone): domain a would hold 3 matching pods, the least-loaded domain 1: skew 2 > maxSkew 1',
  );
});

void test('bad constraints are refused with the field named', () => {
  const bad = (extra: Record<string, unknown>) =>
    spreadSubjectOf(pod('x', web('a0', { constraints: [{ ...spread('web', ZONE), ...extra }] })));
  const cases: [Record<string, unknown>, string][] = [
    [{ maxSkew: 0 }, 'spec.topologySpreadConstraints[0].maxSkew'],
    [{ whenUnsatisfiable: 'Never' }, 'spec.topologySpreadConstraints[0].whenUnsatisfiable'],
    [{ nodeTaintsPolicy: 'Maybe' }, 'spec.topologySpreadConstraints[0].nodeTaintsPolicy'],
    [{ minDomains: 0 }, 'spec.topologySpreadConstraints[0].minDomains'],
    [
      { labelSelector: { matchExpressions: [{ key: 'app', operator: 'Inn', values: ['a'] }] } },
      'spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].operator',
    ],
  ];
  for (const [extra, field] of cases) {
    assert.throws(
      () => compileSpreadRules(bad(extra)),
      (e: unknown) => e instanceof FieldError && e.field === field,
      field,
    );
  }
});
