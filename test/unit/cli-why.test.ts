// `kubectl-placement why` in-process on the seed scenario of test/fixtures/plan with a
// checkout-redis pod that no node takes: its table and `-o json`, its exit status, and one
// line for each bad input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';

import { main } from '../../src/cli/kubectl-placement.ts';
import { WHY_EXIT } from '../../src/cli/why.ts';
import type { Explanation } from '../../src/engine/explain.ts';

const PLAN = fileURLToPath(new URL('../fixtures/plan/', import.meta.url));
const seed = parse(readFileSync(`${PLAN}seed.yaml`, 'utf8')) as { items: unknown[] };
const policies = parseAllDocuments(readFileSync(`${PLAN}seed-policies.yaml`, 'utf8')).map(
  (d) => d.toJS() as unknown,
);
const PENDING = 'checkout-redis-585b5d75c-new';
const pending = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: PENDING,
    namespace: 'shop',
    labels: { app: 'checkout-redis', 'pod-template-hash': '585b5d75c' },
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'checkout-redis-585b5d75c',
        uid: 'u',
        controller: true,
      },
    ],
  },
  spec: { containers: [{ name: 'redis', image: 'redis' }] },
  status: { phase: 'Pending' },
};
const list = (items: unknown[]): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
const SNAPSHOT = list([...seed.items, ...policies, pending]);

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function why(
  args: readonly string[],
  files: Readonly<Record<string, string>> = {},
): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const code = await main(['why', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (path) => {
      const text = { 'snap.json': SNAPSHOT, ...files }[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    env: {},
  });
  return { code, stdout, stderr };
}

void describe('kubectl-placement why -f SNAPSHOT', () => {
  void test('a Pending pod: exit 1, the rules that rule out each node and the smallest change', async () => {
    const r = await why(['-f', 'snap.json', `shop/${PENDING}`]);
    assert.equal(r.code, WHY_EXIT.blocked, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(
      r.stdout,
      /^Pod shop\/checkout-redis-585b5d75c-new \(Deployment\/shop\/checkout-redis\): Pending, not bound to a node: no node passes its placement rules\./,
    );
    assert.match(r.stdout, /RULED OUT BY +SOURCE +FIELD +NODES +CONFLICTING PODS \(DOMAIN\)/);
    assert.match(
      r.stdout,
      /podAntiAffinity +PlacementPolicy\/shop\/checkout-redis-with-checkout +spec\.spreadAcross\[0\] +local-node-0, local-node-2, local-node-3 +shop\/checkout-redis-585b5d75c-47zwz \(kubernetes\.io\/hostname=local-node-0\)/,
    );
    assert.match(
      r.stdout,
      /As the scheduler would report it: 0\/4 nodes are available: 2 node\(s\) didn't match pod affinity rules, 2 node\(s\) didn't match pod anti-affinity rules\./,
    );
    assert.match(
      r.stdout,
      /move pod shop\/checkout-redis-585b5d75c-47zwz out of kubernetes\.io\/hostname=local-node-0 +local-node-0 +1/,
    );
  });

  void test('-o json: the documented fields, -n names the namespace', async () => {
    const r = await why(['-f', 'snap.json', '-n', 'shop', PENDING, '-o', 'json']);
    assert.equal(r.code, WHY_EXIT.blocked);
    const e = JSON.parse(r.stdout) as Explanation;
    assert.deepEqual(Object.keys(e), [
      'pod',
      'phase',
      'workload',
      'rules',
      'node',
      'status',
      'nodes',
      'ruledOut',
      'schedulerReasons',
      'changes',
      'violations',
    ]);
    assert.equal(e.status, 'unschedulable');
    assert.equal(e.nodes.length, 4);
    assert.equal(e.changes[0]?.cost, 1);
  });

  void test('a pod that meets its rules: exit 0, its rules and who put them there', async () => {
    const r = await why(['-f', 'snap.json', 'shop/checkout-redis-585b5d75c-47zwz']);
    assert.equal(r.code, WHY_EXIT.ok, r.stderr);
    assert.match(r.stdout, /it meets every placement rule where it runs/);
    assert.match(
      r.stdout,
      /podAffinity +yes +spec\.affinity\.podAffinity\.requiredDuringSchedulingIgnoredDuringExecution\[0\] +app=checkout per kubernetes\.io\/hostname +PlacementPolicy\/shop\/checkout-redis-with-checkout \(not in the template: judged by the policy\)/,
    );
  });

  void test('a bound pod in breach: exit 1, the rule, the domain and the other pod', async () => {
    const twin = {
      ...pending,
      metadata: { ...pending.metadata, name: 'twin' },
      spec: { ...pending.spec, nodeName: 'local-node-0' },
      status: { phase: 'Running' },
    };
    const r = await why(['-f', 'other.json', 'shop/twin'], {
      'other.json': list([...seed.items, ...policies, twin]),
    });
    assert.equal(r.code, WHY_EXIT.blocked, r.stderr);
    assert.match(
      r.stdout,
      /podAntiAffinity +PlacementPolicy\/shop\/checkout-redis-with-checkout +spec\.spreadAcross\[0\] +kubernetes\.io\/hostname=local-node-0 +shop\/checkout-redis-585b5d75c-47zwz/,
    );
  });

  const bad: readonly {
    name: string;
    args: string[];
    files?: Record<string, string>;
    line: string;
  }[] = [
    {
      name: 'a pod that is not there',
      args: ['-f', 'snap.json', 'shop/nope'],
      line: 'pod shop/nope not found in snap.json',
    },
    { name: 'no pod named', args: ['-f', 'snap.json'], line: 'expected one POD' },
    {
      name: 'two namespaces',
      args: ['-f', 'snap.json', '-n', 'web', 'shop/x'],
      line: 'shop/x: namespace shop and -n web differ',
    },
    {
      name: 'an output it does not know',
      args: ['-f', 'snap.json', 'shop/x', '-o', 'yaml'],
      line: '-o yaml: output must be table or json',
    },
    {
      name: 'a file that is not there',
      args: ['-f', 'gone.json', 'shop/x'],
      line: 'gone.json: no such file',
    },
    {
      name: 'a policy the engine cannot take, by object and field',
      args: ['-f', 'bad.json', `shop/${PENDING}`],
      files: {
        'bad.json': list([
          ...seed.items,
          pending,
          {
            apiVersion: 'placement.dev/v1alpha1',
            kind: 'PlacementPolicy',
            metadata: { name: 'p', namespace: 'shop' },
            spec: { spreadAcross: [{ topologyKey: '', mode: 'Required' }] },
          },
        ]),
      },
      line: 'bad.json: ',
    },
    {
      name: 'a kubeconfig that is not there',
      args: ['--kubeconfig', '/nonexistent/kubeconfig', 'shop/x'],
      line: '/nonexistent/kubeconfig',
    },
  ];
  for (const c of bad)
    void test(`bad input, one line, exit 2: ${c.name}`, async () => {
      const r = await why(c.args, c.files);
      assert.equal(r.code, WHY_EXIT.badInput);
      assert.equal(r.stdout, '');
      const first = r.stderr.split('\n')[0] ?? '';
      assert.ok(first.startsWith('kubectl-placement why: '), r.stderr);
      assert.ok(first.includes(c.line), `${first} should include ${c.line}`);
    });
});
