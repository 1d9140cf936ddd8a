// `kubectl-placement plan` on the cluster states of test/fixtures/plan: its `-o json` and table
// output against the snapshots beside them (PLAN_SNAPSHOTS=write rewrites them; read the
// diff), its exit status, and one line naming the file and the field for each bad input.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';

import { main } from '../../src/cli/kubectl-placement.ts';
import { PLAN_EXIT } from '../../src/cli/plan.ts';

const PLAN = fileURLToPath(new URL('../fixtures/plan/', import.meta.url));
const WRITE = process.env['PLAN_SNAPSHOTS'] === 'write';

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process; `files` are what it can read besides the disk. */
async function plan(
  args: readonly string[],
  files: Readonly<Record<string, string>> = {},
  env: Readonly<Record<string, string>> = {},
): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const code = await main(['plan', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (path) => files[path] ?? readFileSync(path, 'utf8'),
    env,
  });
  return { code, stdout, stderr };
}

/** Compares with the snapshot: JSON as data (the files are formatted by prettier), text as is. */
function snapshot(file: string, actual: string): void {
  if (WRITE) writeFileSync(`${PLAN}${file}`, actual);
  const expected = readFileSync(`${PLAN}${file}`, 'utf8');
  if (file.endsWith('.json'))
    assert.deepEqual(JSON.parse(actual), JSON.parse(expected), `snapshot ${file}`);
  else assert.equal(actual, expected, `snapshot ${file}`);
}

interface PlanJson {
  workloads: { workload: string; action: string; message?: string; policies: string[] }[];
  unsatisfiable: { policy: string; message: string }[];
  violations: { pod: string; rule: string; source: string }[];
  summary: Record<string, number>;
}

void describe('kubectl-placement plan on the seed', () => {
  const policies = `${PLAN}seed-policies.yaml`;

  void test('checkout-redis is held back and Unsatisfiable, "at most 2 of 3"; exit 1', async () => {
    const json = await plan(['-f', policies, '--cluster-state', `${PLAN}seed.yaml`, '-o', 'json']);
    assert.equal(json.stderr, '');
    assert.equal(json.code, PLAN_EXIT.blocked);
    snapshot('seed.expected.json', json.stdout);
    const doc = JSON.parse(json.stdout) as PlanJson;
    const byName = new Map(doc.workloads.map((w) => [w.workload, w]));
    assert.equal(byName.get('Deployment/shop/checkout')?.action, 'rollout');
    const redis = byName.get('Deployment/shop/checkout-redis');
    assert.equal(redis?.action, 'heldBack');
    assert.match(redis.message ?? '', /at most 2 of 3 pods can run/);
    assert.match(redis.message ?? '', /would unblock: .*replicas ≤ 2/);
    assert.deepEqual(
      doc.unsatisfiable.map((u) => u.policy),
      ['PlacementPolicy/shop/checkout-redis-with-checkout'],
    );
    assert.match(
      doc.unsatisfiable[0]?.message ?? '',
      /checkout-redis: at most 2 of 3 pods can run/,
    );
    // The redis pod on local-node-2 runs where no checkout pod does.
    assert.deepEqual(
      doc.violations.map((v) => [v.pod, v.rule]),
      [['shop/checkout-redis-585b5d75c-gdm66', 'podAffinity']],
    );

    const table = await plan(['-f', policies, '--cluster-state', `${PLAN}seed.yaml`]);
    assert.equal(table.code, PLAN_EXIT.blocked);
    snapshot('seed.expected.txt', table.stdout);
  });

  void test('with maxUnavailable: 1 and a checkout pod on every node both rollouts start; exit 0', async () => {
    const state = `${PLAN}seed-max-unavailable.yaml`;
    const json = await plan(['-f', policies, '--cluster-state', state, '-o', 'json']);
    assert.equal(json.stderr, '');
    assert.equal(json.code, PLAN_EXIT.ok);
    snapshot('seed-max-unavailable.expected.json', json.stdout);
    const doc = JSON.parse(json.stdout) as PlanJson;
    assert.deepEqual(
      doc.workloads.map((w) => [w.workload, w.action]),
      [
        ['Deployment/shop/checkout', 'rollout'],
        ['Deployment/shop/checkout-redis', 'rollout'],
      ],
    );
    assert.deepEqual(doc.unsatisfiable, []);
  });

  void test('policies from several files plan as one file of them all', async () => {
    const examples = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
    const r = await plan([
      '-f',
      `${examples}checkout-one-per-node.yaml`,
      '-f',
      `${examples}checkout-redis-with-checkout.yaml`,
      '--cluster-state',
      `${PLAN}seed.yaml`,
      '-o',
      'json',
    ]);
    assert.equal(r.code, PLAN_EXIT.blocked);
    assert.deepEqual(
      JSON.parse(r.stdout),
      JSON.parse(readFileSync(`${PLAN}seed.expected.json`, 'utf8')),
    );
    // A bad policy is named with the file it came from.
    const bad = await plan(
      [
        '-f',
        `${examples}checkout-one-per-node.yaml`,
        '-f',
        'bad.yaml',
        '--cluster-state',
        `${PLAN}seed.yaml`,
      ],
      {
        'bad.yaml':
          'apiVersion: placement.dev/v1alpha1\nkind: ClusterPlacementPolicy\nmetadata: { name: b }\nspec: { spreadAcross: [{ topologyKey: "", mode: Required }] }\n',
      },
    );
    assert.equal(bad.code, PLAN_EXIT.badInput);
    assert.match(
      bad.stderr,
      /^kubectl-placement plan: bad\.yaml: ClusterPlacementPolicy b: spec\.spreadAcross\[0\]/,
    );
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });

  void test("the cluster's own policies count: one there and one in the file plan as both", async () => {
    const [one, redis] = parseAllDocuments(readFileSync(policies, 'utf8')).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
    const state = parse(readFileSync(`${PLAN}seed.yaml`, 'utf8')) as { items: unknown[] };
    state.items.push({
      ...one,
      metadata: { name: 'checkout-one-per-node', namespace: 'shop', generation: 1 },
    });
    const r = await plan(['-f', 'redis.yaml', '--cluster-state', 'state.json', '-o', 'json'], {
      'redis.yaml': JSON.stringify(redis),
      'state.json': JSON.stringify(state),
    });
    assert.equal(r.code, PLAN_EXIT.blocked, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout),
      JSON.parse(readFileSync(`${PLAN}seed.expected.json`, 'utf8')),
    );
  });

  void test('a policy already in the cluster with the same spec changes nothing', async () => {
    // The seed with its policies applied and the workloads written: nothing left to do.
    const state = readFileSync(`${PLAN}seed-max-unavailable.yaml`, 'utf8');
    const first = JSON.parse(
      (
        await plan([
          '-f',
          policies,
          '--cluster-state',
          `${PLAN}seed-max-unavailable.yaml`,
          '-o',
          'json',
        ])
      ).stdout,
    ) as PlanJson & { workloads: { affinity: unknown }[] };
    assert.equal(first.workloads.length, 2);
    // An empty policy file is refused, so apply one that targets nothing.
    const none = `apiVersion: placement.dev/v1alpha1
kind: PlacementPolicy
metadata: { name: nothing, namespace: shop }
spec: { targets: { selector: { matchLabels: { app: none } } } }
`;
    const r = await plan(['-f', 'none.yaml', '--cluster-state', 'state.yaml', '-o', 'json'], {
      'none.yaml': none,
      'state.yaml': state,
    });
    assert.equal(r.code, PLAN_EXIT.ok);
    const doc = JSON.parse(r.stdout) as PlanJson;
    assert.deepEqual(doc.workloads, []);
    assert.deepEqual(doc.summary, {
      workloads: 0,
      rollouts: 0,
      heldBack: 0,
      unsatisfiable: 0,
      violations: 0,
    });
  });
});

void describe('kubectl-placement plan refuses bad input with one line', () => {
  const state = `${PLAN}seed.yaml`;
  const policy = (spec: string, kind = 'PlacementPolicy'): string =>
    `apiVersion: placement.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: p, namespace: shop }\nspec: ${spec}\n`;
  const cases: {
    name: string;
    args: readonly string[];
    files?: Record<string, string>;
    env?: Record<string, string>;
    want: RegExp;
  }[] = [
    { name: 'no -f', args: ['--cluster-state', state], want: /plan needs -f POLICY\.yaml/ },
    {
      name: 'missing policy file',
      args: ['-f', '/nonexistent/p.yaml', '--cluster-state', state],
      want: /^kubectl-placement plan: \/nonexistent\/p\.yaml: no such file$/,
    },
    {
      name: 'missing cluster state',
      args: ['-f', 'p.yaml', '--cluster-state', '/nonexistent/s.yaml'],
      files: { 'p.yaml': policy('{}') },
      want: /^kubectl-placement plan: \/nonexistent\/s\.yaml: no such file$/,
    },
    {
      name: 'policy file not YAML',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: { 'p.yaml': 'kind: [unclosed\n' },
      want: /^kubectl-placement plan: p\.yaml: not valid JSON or YAML: /,
    },
    {
      name: 'a document of another kind',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: {
        'p.yaml': `${policy('{}')}---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n`,
      },
      want: /^kubectl-placement plan: p\.yaml: document 2: expected a PlacementPolicy or ClusterPlacementPolicy, found kind ConfigMap$/,
    },
    {
      name: 'wrong apiVersion',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: { 'p.yaml': policy('{}').replace('v1alpha1', 'v9') },
      want: /p\.yaml \(PlacementPolicy\): apiVersion must be placement\.dev\/v1alpha1, found "placement\.dev\/v9"$/,
    },
    {
      name: 'no name',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: { 'p.yaml': policy('{}').replace('name: p, ', '') },
      want: /p\.yaml \(PlacementPolicy\): metadata\.name is missing$/,
    },
    {
      name: 'a field of the wrong shape',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: { 'p.yaml': policy('{ affinity: { podAffinity: [] } }') },
      want: /p\.yaml \(PlacementPolicy shop\/p\): spec\.affinity\.podAffinity must be an object$/,
    },
    {
      name: 'an operator that does not exist',
      args: ['-f', 'p.yaml', '--cluster-state', state],
      files: {
        'p.yaml': policy(
          '{ affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: zone, labelSelector: { matchExpressions: [{ key: app, operator: Inn, values: [x] }] } }] } } }',
        ),
      },
      want: /^kubectl-placement plan: p\.yaml: PlacementPolicy shop\/p: spec\.affinity\.podAffinity\.requiredDuringSchedulingIgnoredDuringExecution\[0\]\.labelSelector\.matchExpressions\[0\]\.operator: "Inn" is not one of/,
    },
    {
      name: 'cluster state that is not a List',
      args: ['-f', 'p.yaml', '--cluster-state', 's.yaml'],
      files: { 'p.yaml': policy('{}'), 's.yaml': 'kind: Pod\n' },
      want: /^kubectl-placement plan: s\.yaml: expected a Kubernetes List with items, found kind Pod$/,
    },
    {
      name: 'both from standard input',
      args: ['-f', '-', '--cluster-state', '-'],
      want: /cannot both read standard input/,
    },
    {
      name: 'unknown output',
      args: ['-f', 'p.yaml', '-o', 'yaml', '--cluster-state', state],
      want: /-o yaml: output must be table or json/,
    },
    {
      name: 'a kubeconfig that is not there',
      args: ['-f', 'p.yaml', '--kubeconfig', '/nonexistent/kubeconfig'],
      files: { 'p.yaml': policy('{}') },
      want: /^kubectl-placement plan: --kubeconfig \/nonexistent\/kubeconfig: no such file$/,
    },
    {
      name: '$KUBECONFIG that is not there',
      args: ['-f', 'p.yaml'],
      files: { 'p.yaml': policy('{}') },
      env: { KUBECONFIG: '/nonexistent/env-kubeconfig' },
      want: /^kubectl-placement plan: \$KUBECONFIG \/nonexistent\/env-kubeconfig: no such file$/,
    },
  ];
  for (const c of cases) {
    void test(c.name, async () => {
      const r = await plan(c.args, c.files, c.env);
      assert.equal(r.code, PLAN_EXIT.badInput, r.stderr);
      assert.equal(r.stdout, '');
      const first = r.stderr.split('\n')[0] ?? '';
      assert.match(first, c.want);
    });
  }
});

void describe('kubectl-placement plan with spreadAcross TopologySpread', () => {
  const spread = (extra: string): string => `apiVersion: placement.dev/v1alpha1
kind: PlacementPolicy
metadata: { name: checkout-zones, namespace: shop }
spec:
  targets: { selector: { matchLabels: { app: checkout } } }
  spreadAcross: [{ topologyKey: topology.kubernetes.io/zone, constraint: TopologySpread${extra} }]
`;

  void test('shows the constraint it would write, in the table and in -o json', async () => {
    const files = { 'zones.yaml': spread(', mode: Required') };
    const state = `${PLAN}seed.yaml`;
    const json = await plan(['-f', 'zones.yaml', '--cluster-state', state, '-o', 'json'], files);
    assert.equal(json.stderr, '');
    const doc = JSON.parse(json.stdout) as {
      workloads: (PlanJson['workloads'][number] & {
        injectedSpread?: unknown[];
        topologySpreadConstraints?: unknown;
      })[];
    };
    const constraint = {
      maxSkew: 1,
      topologyKey: 'topology.kubernetes.io/zone',
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: { matchLabels: { app: 'checkout' } },
    };
    assert.deepEqual(
      doc.workloads.map((w) => [
        w.workload,
        w.action,
        w.injectedSpread,
        w.topologySpreadConstraints,
      ]),
      [['Deployment/shop/checkout', 'rollout', [constraint], [constraint]]],
    );
    const table = await plan(['-f', 'zones.yaml', '--cluster-state', state], files);
    assert.match(
      table.stdout,
      /topologySpread: app=checkout per topology\.kubernetes\.io\/zone \(maxSkew 1, DoNotSchedule\)/,
    );
  });

  void test('a bad maxSkew is refused with one line naming the policy and the field', async () => {
    const r = await plan(['-f', 'zones.yaml', '--cluster-state', `${PLAN}seed.yaml`], {
      'zones.yaml': spread(', maxSkew: 0'),
    });
    assert.notEqual(r.code, PLAN_EXIT.ok);
    assert.match(
      r.stderr.split('\n')[0] ?? '',
      /PlacementPolicy shop\/checkout-zones: spec\.spreadAcross\[0\]\.maxSkew: 0 is not an integer of 1 or more/,
    );
  });
});
