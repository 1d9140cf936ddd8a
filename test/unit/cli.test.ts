// The audit CLI on the seed fixtures (test/fixtures/<scenario>/{satisfied,violated}.yaml with
// the expected `-o json` output beside them), its table output, and its refusals of bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse } from 'yaml';

import { EXIT, run } from '../../src/cli/kubectl-placement.ts';
import { EXACT_GET } from '../../src/cli/missing.ts';

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
  assert.deepEqual(SCENARIOS, [
    'checkout',
    'checkout-policy',
    'frontend-backend',
    'node-rules',
    'web-store',
    'zone-spread',
  ]);
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

// ---- workloads missing from the input: never a guess ----

type Item = Record<string, unknown> & { kind: string; metadata: Record<string, unknown> };

/** zone-spread/violated.yaml (4 violations of a Required zone spread), as kubectl's JSON. */
const zoneSpread = (): Item[] =>
  (parse(fixture('zone-spread', 'violated.yaml')) as { items: Item[] }).items;
const without = (items: Item[], ...kinds: string[]): Item[] =>
  items.filter((i) => !kinds.includes(i.kind));
/** The policy's spec, changed. */
const withPolicySpec = (items: Item[], spec: Record<string, unknown>): Item[] =>
  items.map((i) => (i.kind === 'PlacementPolicy' ? { ...i, spec } : i));
/** A pod of a StatefulSet `db` on node-1, with the labels its StatefulSet gave it. */
const statefulPod: Item = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'db-0',
    namespace: 'shop',
    labels: {
      app: 'db',
      'controller-revision-hash': 'db-7b9c',
      'statefulset.kubernetes.io/pod-name': 'db-0',
      'topology.kubernetes.io/zone': 'zone-a',
    },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: true }],
  },
  spec: { nodeName: 'node-1', containers: [{ name: 'db', image: 'db' }] },
  status: { phase: 'Running' },
};
/** The web pods as a Job's: owned by Job `web-1`, labelled as the Job controller does. */
const asJobPods = (items: Item[]): Item[] =>
  items.map((i) => {
    if (i.kind !== 'Pod') return i;
    const labels = { ...(i.metadata['labels'] as Record<string, string>) };
    delete labels['pod-template-hash'];
    return {
      ...i,
      metadata: {
        ...i.metadata,
        labels: { ...labels, 'batch.kubernetes.io/job-name': 'web-1', 'job-name': 'web-1' },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'web-1', controller: true }],
      },
    };
  });
const SPREAD = { topologyKey: 'topology.kubernetes.io/zone', mode: 'Required' };
const ADD_ALL = `as in: ${EXACT_GET}`;

void describe('audit when the input lacks workloads', () => {
  const full = JSON.parse(fixture('zone-spread', 'violated.expected.json')) as {
    violations: unknown[];
  };
  const cases: {
    name: string;
    items: Item[];
    exit: number;
    /** Violations on stdout; undefined: nothing on stdout. */
    violations?: number;
    /** Every part must appear in the one stderr line; undefined: stderr is empty. */
    stderr?: string[];
  }[] = [
    {
      name: 'every workload there (the README command): exact, nothing on stderr',
      items: zoneSpread(),
      exit: EXIT.violations,
      violations: full.violations.length,
    },
    {
      name: 'Deployments without their ReplicaSets: found by the ReplicaSet name, exact',
      items: without(zoneSpread(), 'ReplicaSet'),
      exit: EXIT.violations,
      violations: full.violations.length,
    },
    {
      name: 'no workloads at all (nodes,pods,namespaces and policies): exit 2, no guess',
      items: without(zoneSpread(), 'Deployment', 'ReplicaSet'),
      exit: EXIT.badInput,
      stderr: [
        'the policies could judge no pod',
        'the workloads of 2 pod(s) are not in the input',
        'ReplicaSet shop/web-6f4b8d7c5, for pod shop/web-6f4b8d7c5-',
        'add deployments,replicasets to the kubectl get',
        ADD_ALL,
      ],
    },
    {
      name: 'a StatefulSet missing: its pod judged by its own terms only, the others as usual',
      items: [...zoneSpread(), statefulPod],
      exit: EXIT.violations,
      violations: full.violations.length,
      stderr: [
        '1 pod(s) judged by their own terms only, without their policies',
        'StatefulSet shop/db, for pod shop/db-0',
        'add statefulsets to the kubectl get',
        ADD_ALL,
      ],
    },
    {
      name: 'Jobs missing: jobs and cronjobs to add',
      items: withPolicySpec(asJobPods(without(zoneSpread(), 'Deployment', 'ReplicaSet')), {
        targets: { kinds: ['Job'] },
        spreadAcross: [SPREAD],
      }),
      exit: EXIT.badInput,
      stderr: ['2 pod(s)', 'Job shop/web-1', 'add jobs,cronjobs to the kubectl get'],
    },
    {
      name: 'the policy spreads Preferred only: nothing it asks can be broken, no line',
      items: withPolicySpec(without(zoneSpread(), 'Deployment', 'ReplicaSet'), {
        spreadAcross: [{ ...SPREAD, mode: 'Preferred' }],
      }),
      exit: EXIT.ok,
      violations: 0,
    },
    {
      name: 'the policy targets DaemonSets only: it cannot target these pods, no line',
      items: withPolicySpec(without(zoneSpread(), 'Deployment', 'ReplicaSet'), {
        targets: { kinds: ['DaemonSet'] },
        spreadAcross: [SPREAD],
      }),
      exit: EXIT.ok,
      violations: 0,
    },
    {
      name: 'no policies: the pods own terms, no line',
      items: without(zoneSpread(), 'Deployment', 'ReplicaSet', 'PlacementPolicy'),
      exit: EXIT.ok,
      violations: 0,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const r = runWith(['audit', '-f', 'cluster.json', '-o', 'json'], {
        'cluster.json': list(...c.items),
      });
      assert.equal(r.code, c.exit, r.stderr);
      if (c.violations === undefined) assert.equal(r.stdout, '');
      else {
        const report = JSON.parse(r.stdout) as { violations: unknown[] };
        assert.equal(report.violations.length, c.violations, r.stdout);
        if (c.violations === full.violations.length)
          assert.deepEqual(report.violations, full.violations);
      }
      if (c.stderr === undefined) {
        assert.equal(r.stderr, '');
        return;
      }
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
      const line = lines[0] ?? '';
      assert.ok(line.startsWith('kubectl-placement: cluster.json: '), line);
      for (const part of c.stderr)
        assert.ok(line.includes(part), `"${part}" missing from: ${line}`);
    });
  }
});

void describe('the documented command is the exact one', () => {
  const resources = EXACT_GET.replace(/^kubectl get /, '').replace(/ -A -o json$/, '');
  const files = [
    'README.md',
    'docs/operations.md',
    'docs/metrics.md',
    'charts/placement-operator/files/alerts.yaml',
    'src/cli/kubectl-placement.ts',
  ];
  for (const file of files) {
    void test(`${file} lists every resource the audit reads whenever it gives the command`, () => {
      const text = readFileSync(`${ROOT}${file}`, 'utf8').replace(/\\\n[\s*]*/g, '');
      const gets = [...text.matchAll(/kubectl get (nodes,\S+)/g)].map((m) => m[1]);
      for (const got of gets) assert.equal(got, resources, `${file}: kubectl get ${got ?? ''}`);
    });
  }
  void test('the README gives it in the audit CLI section and the quick start', () => {
    const text = readFileSync(`${ROOT}README.md`, 'utf8').replace(/\\\n[\s*]*/g, '');
    assert.ok(text.split(`kubectl get ${resources} -A -o json`).length - 1 >= 2, resources);
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
