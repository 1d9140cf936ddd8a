// The audit CLI on the seed fixtures (test/fixtures/<scenario>/{satisfied,violated}.yaml with
// the expected `-o json` output beside them), its table output, and its refusals of bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse } from 'yaml';

import { EXIT, run } from '../../src/cli/kubectl-placement.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
// Audit scenarios are the fixture folders holding a satisfied.yaml (others hold chart values).
const SCENARIOS = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${FIXTURES}${d.name}/satisfied.yaml`))
  .map((d) => d.name)
  .sort();
const OUTCOMES = [
  { file: 'satisfied', exit: EXIT.ok },
  { file: 'violated', exit: EXIT.violations },
] as const;

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process; `files` are what it can read (`/dev/stdin` for `-f -`). */
function runWith(args: readonly string[], files: Readonly<Record<string, string>>): Ran {
  let stdout = '';
  let stderr = '';
  const code = run(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (path) => {
      const text = files[path];
      if (text !== undefined) return text;
      return readFileSync(path, 'utf8'); // the real error, ENOENT included
    },
  });
  return { code, stdout, stderr };
}

/**
 * Runs `hack/node bin/kubectl-placement ARGS` with `input` on standard input. By default the
 * input arrives through a shell pipe, as in `kubectl get ... -o json | kubectl-placement audit
 * -f -`; `socket` hands the CLI node's own stdin, which is a socket.
 */
function runProcess(
  args: readonly string[],
  input: string,
  stdin: 'pipe' | 'socket' = 'pipe',
): Ran {
  const command =
    stdin === 'pipe'
      ? ['-c', 'cat | bash hack/node bin/kubectl-placement "$@"', 'kubectl-placement', ...args]
      : ['hack/node', 'bin/kubectl-placement', ...args];
  const r = spawnSync('bash', command, { cwd: ROOT, input, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const fixture = (scenario: string, name: string): string =>
  readFileSync(`${FIXTURES}${scenario}/${name}`, 'utf8');

const expected = (scenario: string, outcome: string): unknown =>
  JSON.parse(fixture(scenario, `${outcome}.expected.json`));

void test('every seed scenario is there', () => {
  assert.deepEqual(SCENARIOS, ['checkout', 'checkout-policy', 'frontend-backend', 'web-store']);
});

void describe('audit -o json on the fixtures', () => {
  for (const scenario of SCENARIOS) {
    for (const { file, exit } of OUTCOMES) {
      void test(`${scenario}/${file}.yaml exits ${exit} with the expected report`, () => {
        const path = `${FIXTURES}${scenario}/${file}.yaml`;
        const r = runWith(['audit', '-f', path, '-o', 'json'], {});
        assert.equal(r.stderr, '');
        assert.deepEqual(JSON.parse(r.stdout), expected(scenario, file));
        assert.equal(r.code, exit);
      });
    }
  }
});

void describe('audit reads standard input with -f -', () => {
  void test('in process', () => {
    const r = runWith(['audit', '-f', '-', '-o', 'json'], {
      '/dev/stdin': fixture('web-store', 'violated.yaml'),
    });
    assert.deepEqual(JSON.parse(r.stdout), expected('web-store', 'violated'));
    assert.equal(r.code, EXIT.violations);
  });

  void test('as a subprocess, YAML on stdin', () => {
    const r = runProcess(['audit', '-f', '-', '-o', 'json'], fixture('checkout', 'violated.yaml'));
    assert.equal(r.stderr, '');
    assert.deepEqual(JSON.parse(r.stdout), expected('checkout', 'violated'));
    assert.equal(r.code, EXIT.violations);
  });

  void test('as a subprocess, JSON on stdin (kubectl get -o json), table output', () => {
    const json = JSON.stringify(parse(fixture('checkout-policy', 'satisfied.yaml')));
    const r = runProcess(['audit', '-f', '-'], json);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, '0 violation(s) among 4 placed pod(s) on 2 node(s)\n');
    assert.equal(r.code, EXIT.ok);
  });

  void test('as a subprocess whose stdin is a socket', () => {
    const r = runProcess(
      ['audit', '-f', '-', '-o', 'json'],
      fixture('web-store', 'violated.yaml'),
      'socket',
    );
    assert.equal(r.stderr, '');
    assert.equal(r.code, EXIT.violations);
  });

  void test('as a subprocess, bad input exits 2 with one line on stderr', () => {
    const r = runProcess(['audit', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n');
    assert.equal(r.code, EXIT.badInput);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'kubectl-placement: <stdin>: expected a Kubernetes List with items, found kind Pod\n',
    );
  });
});

void describe('audit table output', () => {
  void test('a header, one row per violation, a blank line and the summary', () => {
    const r = runWith(['audit', '-f', `${FIXTURES}checkout/violated.yaml`], {});
    assert.equal(r.code, EXIT.violations);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^POD +NODE +RULE +SOURCE +TERM +MESSAGE$/);
    assert.equal(lines.at(-1), '5 violation(s) among 4 placed pod(s) on 2 node(s)');
    assert.equal(lines.at(-2), '');
    const rows = lines.slice(1, -2);
    assert.equal(rows.length, 5);
    assert.match(
      rows[0] ?? '',
      /^shop\/checkout-7c9d6b5f4-2xk8p +node-1 +podAntiAffinity +pod +0 +spec\.affinity\.podAntiAffinity\./,
    );
    assert.match(
      rows[4] ?? '',
      /^shop\/checkout-redis-5b8c7d9f6-t7x9v +node-2 +podAffinity +pod +0 /,
    );
  });

  void test('policy violations name the policy as the source', () => {
    const r = runWith(
      ['audit', '-f', `${FIXTURES}checkout-policy/violated.yaml`, '-o', 'table'],
      {},
    );
    assert.equal(r.code, EXIT.violations);
    assert.match(r.stdout, /podAffinity +PlacementPolicy\/shop\/checkout-redis-placement +0 /);
  });

  void test('no violation: the summary line alone', () => {
    const r = runWith(['audit', '-f', `${FIXTURES}frontend-backend/satisfied.yaml`], {});
    assert.equal(r.code, EXIT.ok);
    assert.equal(r.stdout, '0 violation(s) among 4 placed pod(s) on 2 node(s)\n');
  });
});

// ---- bad input: exit 2, one line naming the file, the object and the field ----

const NODE = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', labels: {} } };
const list = (...items: unknown[]): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
const runningPod = (spec: Record<string, unknown>, name = 'web') => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', labels: { app: 'web' } },
  spec: { nodeName: 'node-1', ...spec },
  status: { phase: 'Running' },
});

void describe('bad input', () => {
  const cases: {
    name: string;
    file: string;
    text?: string;
    /** Every part must appear in the one line. */
    want: string[];
  }[] = [
    {
      name: 'not a List',
      file: 'pod.json',
      text: JSON.stringify(runningPod({})),
      want: ['pod.json', 'expected a Kubernetes List', 'kind Pod'],
    },
    {
      name: 'a List without items',
      file: 'empty.yaml',
      text: 'apiVersion: v1\nkind: List\n',
      want: ['empty.yaml', 'expected a Kubernetes List with items'],
    },
    {
      name: 'a pod without a name',
      file: 'cluster.json',
      text: list(NODE, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: 'shop' },
        spec: {},
      }),
      want: ['cluster.json', 'items[1] (Pod)', 'metadata.name is missing'],
    },
    {
      name: 'an unknown selector operator in a pod term',
      file: 'cluster.json',
      text: list(
        NODE,
        runningPod({
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: {
                    matchExpressions: [{ key: 'app', operator: 'Inn', values: ['web'] }],
                  },
                  topologyKey: 'kubernetes.io/hostname',
                },
              ],
            },
          },
        }),
      ),
      want: [
        'cluster.json',
        'Pod shop/web',
        'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].operator',
        '"Inn" is not one of In, NotIn, Exists, DoesNotExist',
      ],
    },
    {
      name: 'a term whose topologyKey is not a string',
      file: 'cluster.json',
      text: list(
        NODE,
        runningPod({
          affinity: {
            podAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                { labelSelector: {}, topologyKey: 7 },
              ],
            },
          },
        }),
      ),
      want: [
        'cluster.json',
        'Pod shop/web',
        'spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey',
      ],
    },
    {
      name: 'a file that does not exist',
      file: '/nonexistent/cluster.yaml',
      want: ['/nonexistent/cluster.yaml', 'no such file'],
    },
    {
      name: 'YAML that does not parse',
      file: 'broken.yaml',
      text: 'apiVersion: v1\nkind: List\nitems:\n  - kind: Pod\n    metadata: {name: [web\n',
      want: ['broken.yaml', 'not valid JSON or YAML'],
    },
    {
      name: 'JSON that does not parse',
      file: 'broken.json',
      text: '{"apiVersion": "v1", "kind": "List", "items": [',
      want: ['broken.json', 'not valid JSON or YAML'],
    },
    {
      name: 'an invalid PlacementPolicy',
      file: 'cluster.json',
      text: list(NODE, {
        apiVersion: 'placement.dev/v1alpha1',
        kind: 'PlacementPolicy',
        metadata: { name: 'spread-web', namespace: 'shop' },
        spec: { targets: { namespaceSelector: {} } },
      }),
      want: [
        'cluster.json',
        'PlacementPolicy shop/spread-web',
        'spec.targets.namespaceSelector',
        'is not allowed on a namespaced PlacementPolicy',
      ],
    },
    {
      name: 'a PlacementPolicy with a bad weight',
      file: 'cluster.json',
      text: list(NODE, {
        apiVersion: 'placement.dev/v1alpha1',
        kind: 'ClusterPlacementPolicy',
        metadata: { name: 'soft' },
        spec: { spreadAcross: [{ topologyKey: 'kubernetes.io/hostname', weight: 0 }] },
      }),
      want: [
        'cluster.json',
        'ClusterPlacementPolicy soft',
        'spec.spreadAcross[0].weight',
        '0 is not an integer in 1..100',
      ],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const r = runWith(
        ['audit', '-f', c.file, '-o', 'json'],
        c.text === undefined ? {} : { [c.file]: c.text },
      );
      assert.equal(r.code, EXIT.badInput);
      assert.equal(r.stdout, '');
      assert.ok(r.stderr.endsWith('\n'), r.stderr);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
      const line = lines[0] ?? '';
      assert.ok(line.startsWith(`kubectl-placement: ${c.file}: `), line);
      for (const part of c.want) assert.ok(line.includes(part), `"${part}" missing from: ${line}`);
    });
  }
});

void describe('usage', () => {
  void test('--help prints the usage and exits 0', () => {
    const r = runWith(['--help'], {});
    assert.equal(r.code, EXIT.ok);
    assert.match(r.stdout, /^Usage: kubectl-placement audit -f FILE\|- \[-o table\|json\]/);
  });

  const cases: { name: string; args: string[]; want: RegExp }[] = [
    { name: 'no command', args: [], want: /expected the command "audit"/ },
    {
      name: 'an unknown command',
      args: ['check', '-f', '-'],
      want: /expected the command "audit"/,
    },
    { name: 'audit without -f', args: ['audit'], want: /audit needs -f FILE/ },
    {
      name: 'an unknown output format',
      args: ['audit', '-f', '-', '-o', 'yaml'],
      want: /-o yaml: output must be table or json/,
    },
    { name: 'an unknown flag', args: ['audit', '--frobnicate'], want: /frobnicate/ },
  ];
  for (const c of cases) {
    void test(`${c.name} exits 2`, () => {
      const r = runWith(c.args, { '/dev/stdin': list() });
      assert.equal(r.code, EXIT.badInput);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, c.want);
    });
  }
});
