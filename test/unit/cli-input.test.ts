// How the audit CLI reads its input: JSON item by item (pretty-printed as kubectl prints it,
// or compact), YAML with one or several Lists, the line and item named when JSON is broken,
// and pods whose nodes are not in the input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse } from 'yaml';

import { InputError, parseList } from '../../src/cli/input.ts';
import { EXIT, run } from '../../src/cli/kubectl-placement.ts';
import { EXACT_GET } from '../../src/cli/missing.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const webStore = (): { items: Record<string, unknown>[] } =>
  parse(readFileSync(`${FIXTURES}web-store/violated.yaml`, 'utf8')) as {
    items: Record<string, unknown>[];
  };

function runWith(args: readonly string[], text: string) {
  let stdout = '';
  let stderr = '';
  const code = run(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: () => Buffer.from(text),
  });
  return { code, stdout, stderr };
}

/** The one line on stderr of a refused input; fails unless there is exactly one. */
function refusal(text: string): string {
  const r = runWith(['audit', '-f', 'cluster.json', '-o', 'json'], text);
  assert.equal(r.code, EXIT.badInput);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  return lines[0] ?? '';
}

/** Many pods, so a pretty-printed List spans several of the reader's runs (96 KiB each). */
function bigList(pods: number): Record<string, unknown> {
  const items: Record<string, unknown>[] = [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { zone: 'a' } } },
  ];
  for (let i = 0; i < pods; i++) {
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `web-${i}`,
        namespace: `ns-${i % 7}`,
        labels: { app: `app-${i % 13}`, note: `a "quoted" },\n    { string` },
        ownerReferences: [{ kind: 'ReplicaSet', name: `rs-${i % 13}`, controller: true }],
      },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'c', image: 'x', args: ['},', '{'] }],
        affinity:
          i % 5 === 0
            ? {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    {
                      labelSelector: { matchLabels: { app: `app-${i % 13}` } },
                      topologyKey: 'zone',
                    },
                  ],
                },
              }
            : undefined,
      },
      status: { phase: 'Running' },
    });
  }
  return { apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } };
}

void describe('JSON is read item by item', () => {
  const list = bigList(6000);
  const compact = JSON.stringify(list);
  const pretty = JSON.stringify(list, null, 4);

  void test('kubectl-style indentation and compact JSON give the same snapshot', () => {
    assert.ok(pretty.length > 3 * (1 << 20), 'spans several runs');
    const a = parseList(Buffer.from(pretty), 'pretty.json');
    const b = parseList(compact, 'compact.json');
    assert.equal(a.pods.length, 6000);
    assert.deepEqual(a, b);
  });

  void test('each item is kept in its trimmed form (no containers, no status but the phase)', () => {
    const snapshot = parseList(compact, 'cluster.json');
    const pod = snapshot.pods[5];
    assert.deepEqual(Object.keys(pod?.spec ?? {}).sort(), ['affinity', 'nodeName']);
    assert.deepEqual(pod?.status, { phase: 'Running' });
  });

  void test('a break deep in a pretty-printed List names its line, column and item', () => {
    const broken = pretty.replace('"name": "web-4000",', '"name": "web-4000" "x": 1,');
    const line = refusal(broken);
    const at = pretty.slice(0, pretty.indexOf('"name": "web-4000"')).split('\n');
    assert.ok(line.startsWith('kubectl-placement: cluster.json: not valid JSON or YAML: '), line);
    assert.ok(line.includes(`at line ${at.length} column`), line);
    assert.ok(line.includes('(in items[4001])'), line);
  });

  void test("the caller's bytes are as they were after a read, and after a break", () => {
    const bytes = Buffer.from(pretty);
    parseList(bytes, 'pretty.json');
    assert.ok(bytes.equals(Buffer.from(pretty)), 'unchanged after a read');
    const broken = Buffer.from(pretty.replace('"name": "web-4000",', '"name": "web-4000" "x": 1,'));
    const copy = Buffer.from(broken);
    assert.throws(() => parseList(broken, 'broken.json'), InputError);
    assert.ok(broken.equals(copy), 'unchanged after a break');
  });

  void test('a List cut short names the end of the input', () => {
    const text = compact.slice(0, 5000);
    const line = refusal(text);
    assert.match(line, /not valid JSON or YAML: unexpected end of input .*at line 1 column \d+/);
  });

  void test('a field of the wrong type in JSON names the object and the field', () => {
    const items = webStore().items.map((i) =>
      i.kind === 'Pod' ? { ...i, spec: { ...(i.spec as object), nodeName: 7 } } : i,
    );
    const line = refusal(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 4));
    assert.match(
      line,
      /cluster\.json: items\[\d+\] \(Pod shop\/[\w-]+\): spec\.nodeName must be a string$/,
    );
  });

  void test('text after the List is refused', () => {
    const line = refusal(`${compact}\n{}`);
    assert.match(line, /expected nothing after the List at line 2 column 1$/);
  });

  void test('a byte order mark is skipped', () => {
    const snapshot = parseList(`\uFEFF${compact}`, 'bom.json');
    assert.equal(snapshot.nodes.length, 1);
  });
});

void describe('YAML', () => {
  const yamlOf = (items: unknown[]): string =>
    `apiVersion: v1\nkind: List\nitems:\n${items.map((i) => `  - ${JSON.stringify(i)}\n`).join('')}`;

  void test('several documents, each a List, are read together', () => {
    const items = webStore().items;
    const nodes = items.filter((i) => i.kind === 'Node');
    const rest = items.filter((i) => i.kind !== 'Node');
    const two = parseList(`${yamlOf(nodes)}---\n${yamlOf(rest)}`, 'two.yaml');
    const one = parseList(yamlOf(items), 'one.yaml');
    assert.deepEqual(two, one);
  });

  void test('a flow-style List starts with `{` like JSON and is still read as YAML', () => {
    const items = webStore().items;
    const flow = `{apiVersion: v1, kind: List, items: [${items.map((i) => JSON.stringify(i)).join(', ')}]}`;
    assert.throws(() => JSON.parse(flow), 'the input is not JSON');
    assert.deepEqual(parseList(flow, 'flow.yaml'), parseList(yamlOf(items), 'block.yaml'));
  });

  void test('JSON broken after its first item is a JSON error, not tried as YAML', () => {
    const items = webStore().items;
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 4);
    // The last item in flow style: YAML reads the whole, JSON stops there.
    const at = json.lastIndexOf('\n        {');
    const mixed = `${json.slice(0, at)}\n        {kind: Namespace, metadata: {name: x}},${json.slice(at)}`;
    assert.throws(
      () => parseList(mixed, 'mixed.json'),
      (err: unknown) =>
        err instanceof InputError &&
        new RegExp(
          `^mixed\\.json: not valid JSON or YAML: .* at line \\d+ column 10 \\(in items\\[${items.length - 1}\\]\\)$`,
        ).test(err.message),
    );
  });

  void test('a document that is not a List is named', () => {
    assert.throws(
      () => parseList(`${yamlOf(webStore().items)}---\napiVersion: v1\nkind: Pod\n`, 'two.yaml'),
      (err: unknown) =>
        err instanceof InputError &&
        err.message ===
          'two.yaml: document 2: expected a Kubernetes List with items, found kind Pod',
    );
  });
});

void describe('pods whose nodes are not in the input', () => {
  const run2 = (items: unknown[]) =>
    runWith(['audit', '-f', '-', '-o', 'json'], JSON.stringify({ kind: 'List', items }));
  const items = webStore().items;

  void test('no Node at all (kubectl get pods): exit 2 and one line', () => {
    const r = run2(items.filter((i) => i.kind !== 'Node'));
    assert.equal(r.code, EXIT.badInput);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', /\d+ pod\(s\) are bound to nodes but the input has no Node/);
    assert.ok(lines[0]?.includes(`add nodes to the kubectl get, as in: ${EXACT_GET}`));
  });

  void test('one node missing: its pods are not judged, the rest are, one line says so', () => {
    // web-store/violated: the web-store pod on node-2 lacks a store pod beside it.
    const full = run2(items);
    assert.equal(full.code, EXIT.violations);
    const r = run2(items.filter((i) => !(i.kind === 'Node' && nameOf(i) === 'node-2')));
    assert.equal(r.code, EXIT.ok);
    const report = JSON.parse(r.stdout) as { summary: { pods: number; nodes: number } };
    assert.equal(report.summary.nodes, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] ?? '',
      /1 pod\(s\) not judged: their nodes are not in the input \(node node-2, for pod shop\//,
    );
    assert.ok(lines[0]?.includes('add nodes to the kubectl get'));
  });

  void test('every node there: nothing on stderr', () => {
    assert.equal(run2(items).stderr, '');
  });
});

const nameOf = (item: Record<string, unknown>): unknown =>
  (item.metadata as Record<string, unknown>).name;
