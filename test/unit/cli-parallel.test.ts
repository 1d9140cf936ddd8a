// The items of a large List read on several threads (src/cli/parallel-list.ts): the same
// snapshot and the same report as on one thread, whatever the List; and a bad item or broken
// JSON in a part a worker thread reads still gives the one line a single thread gives.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import { parseList } from '../../src/cli/input.ts';
import { readJsonList } from '../../src/cli/json-list.ts';
import { defaultThreads, idleCores, splitItems, warmWorkers } from '../../src/cli/parallel-list.ts';
import { EXIT, run } from '../../src/cli/kubectl-placement.ts';
import { podRows, podsOfRows } from '../../src/cli/pod-rows.ts';
import { kubectlJson, kubectlNode, type Item } from './kubectl-lists.ts';

const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const APPS = ['web', 'db', 'cache', 'batch'];

/**
 * Lists as kubectl prints them: Nodes, Pods (some with affinity or spread constraints, some
 * unbound, some leaving), Namespaces; at least `minPods` pods.
 */
const listsOf = (minPods: number) =>
  fc
    .record({
      nodes: fc.integer({ min: 1, max: 6 }),
      pods: fc.array(
        fc.record({
          app: fc.constantFrom(...APPS),
          ns: fc.integer({ min: 0, max: 3 }),
          node: fc.integer({ min: -1, max: 6 }),
          affinity: fc.constantFrom('none', 'anti', 'affinity', 'spread'),
          phase: fc.constantFrom('Running', 'Pending', 'Succeeded', undefined),
          deleting: fc.boolean(),
          tolerates: fc.boolean(),
        }),
        { minLength: minPods, maxLength: minPods + 60 },
      ),
    })
    .map(({ nodes, pods }) => {
      const items: Item[] = [];
      for (let n = 0; n < nodes; n++) items.push(kubectlNode(n, ZONES[n % 3] ?? ''));
      pods.forEach((p, i) => {
        const selector = { matchLabels: { app: p.app } };
        const affinity =
          p.affinity === 'anti'
            ? {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    { labelSelector: selector, topologyKey: 'kubernetes.io/hostname' },
                  ],
                },
              }
            : p.affinity === 'affinity'
              ? {
                  podAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: [
                      { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE_KEY },
                    ],
                  },
                }
              : undefined;
        items.push({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: `${p.app}-${i}`,
            namespace: `team-${p.ns}`,
            uid: `uid-${i}`,
            resourceVersion: `${1000 + i}`,
            labels: { app: p.app, 'pod-template-hash': `h${i % 4}` },
            annotations: { note: `a "quoted" },\n    { string`, 'placement.dev/x': 'y' },
            ownerReferences: [{ kind: 'ReplicaSet', name: `${p.app}-rs`, controller: true }],
            ...(p.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
          },
          spec: {
            ...(p.node >= 0 ? { nodeName: `node-${p.node}` } : {}),
            containers: [{ name: 'c', image: 'x', args: ['},', '{'] }],
            ...(affinity === undefined ? {} : { affinity }),
            ...(p.affinity === 'spread'
              ? {
                  topologySpreadConstraints: [
                    {
                      maxSkew: 1,
                      topologyKey: ZONE_KEY,
                      whenUnsatisfiable: 'DoNotSchedule',
                      labelSelector: selector,
                    },
                  ],
                }
              : {}),
            ...(p.tolerates
              ? { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists' }] }
              : {}),
          },
          ...(p.phase === undefined ? {} : { status: { phase: p.phase, podIP: '10.0.0.1' } }),
        });
      });
      for (let ns = 0; ns < 4; ns++)
        items.push({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: `team-${ns}`, labels: { team: `t${ns}` } },
        });
      return items;
    });
const lists = listsOf(1);

const ZONE_KEY = 'topology.kubernetes.io/zone';

function runWith(text: string, threads: number) {
  let stdout = '';
  let stderr = '';
  const code = run(['audit', '-f', 'cluster.json', '-o', 'json'], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: () => Buffer.from(text),
    threads,
  });
  return { code, stdout, stderr };
}

void describe('reading on several threads', () => {
  void test('one thread per idle core, each with 16 MiB at least', () => {
    const cores = availableParallelism();
    const big = 1024 * 2 ** 20;
    assert.equal(idleCores(0), cores);
    assert.equal(idleCores(cores), 1, 'every core busy: this thread alone');
    assert.equal(idleCores(cores + 5), 1);
    assert.equal(idleCores(cores - 1), 1, 'one core idle: this thread takes it');
    assert.equal(defaultThreads(big, idleCores(0)), cores);
    assert.equal(defaultThreads(big, 1), 1);
    assert.equal(defaultThreads(big, 3), 3);
    assert.equal(defaultThreads(32 * 2 ** 20, idleCores(0)), Math.min(cores, 2));
    assert.equal(defaultThreads(20 * 2 ** 20, 8), 1, 'too little for a second thread');
  });

  void test('pods as rows come back field for field, absent fields absent', () => {
    fc.assert(
      fc.property(lists, (items) => {
        const { pods } = parseList(kubectlJson(items), 'cluster.json', { threads: 1 });
        const back = podsOfRows(structuredClone(podRows(pods)));
        assert.deepStrictEqual(back, pods);
        back.forEach((pod, i) => {
          assert.deepStrictEqual(Object.keys(pod.metadata), Object.keys(pods[i]?.metadata ?? {}));
        });
      }),
      { numRuns: 50 },
    );
  });

  void test('1, 2 and 3 threads give the same snapshot and byte for byte the same report', () => {
    fc.assert(
      fc.property(lists, (items) => {
        const text = kubectlJson(items);
        const one = parseList(text, 'cluster.json', { threads: 1 });
        const ref = runWith(text, 1);
        for (const threads of [2, 3]) {
          assert.deepStrictEqual(parseList(text, 'cluster.json', { threads }), one);
          assert.deepStrictEqual(runWith(text, threads), ref);
        }
      }),
      { numRuns: 12 },
    );
  });

  void test('workers started while the input arrives take their parts: the same snapshot', () => {
    fc.assert(
      fc.property(lists, (items) => {
        const text = kubectlJson(items);
        const one = parseList(text, 'cluster.json', { threads: 1 });
        assert.equal(warmWorkers(2), 2, 'two workers waiting for a part');
        assert.deepStrictEqual(parseList(text, 'cluster.json', { threads: 3 }), one);
        assert.equal(warmWorkers(0), 0, 'the parse took both');
        // More than the parse needs, or a parse on one thread: the others are ended.
        warmWorkers(2);
        assert.deepStrictEqual(parseList(text, 'cluster.json', { threads: 2 }), one);
        assert.equal(warmWorkers(0), 0, 'the one the parse did not take was ended');
      }),
      { numRuns: 4 },
    );
  });

  void test('compact JSON is read on one thread, with the same result', () => {
    fc.assert(
      fc.property(lists, (items) => {
        const compact = JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
        assert.deepStrictEqual(
          parseList(compact, 'c.json', { threads: 3 }),
          parseList(kubectlJson(items), 'p.json', { threads: 1 }),
        );
      }),
      { numRuns: 5 },
    );
  });
});

void describe('bad input in the part a worker reads', () => {
  // Many pods: with 2 or 3 threads, the last items are a worker's. The bad item is a pod.
  const items = fc.sample(listsOf(40), { numRuns: 1, seed: 7 })[0] ?? [];
  const last = items.length - 8;
  assert.equal(items[last]?.kind, 'Pod');

  // 1, 2 and 3 threads, then 3 whose workers started before the input was whole.
  const refusals = (text: string): string[] =>
    [1, 2, 3, 0].map((threads) => {
      if (threads === 0) assert.equal(warmWorkers(2), 2);
      const r = runWith(text, threads === 0 ? 3 : threads);
      if (threads === 0) assert.equal(warmWorkers(0), 0);
      assert.equal(r.code, EXIT.badInput, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      return lines[0] ?? '';
    });

  void test('an item without a name: one line naming the item and the field, exit 2', () => {
    const bad = items.map((item, i) =>
      i === last ? { ...item, metadata: { namespace: 'team-1' } } : item,
    );
    const [one, ...others] = refusals(kubectlJson(bad));
    assert.match(
      one ?? '',
      new RegExp(`cluster\\.json: items\\[${last}\\] \\(\\w+\\): metadata\\.name is missing$`),
    );
    for (const line of others) assert.equal(line, one);
  });

  void test('a field of the wrong type: the same line on any number of threads', () => {
    const bad = items.map((item, i) =>
      i === last ? { ...item, spec: { ...(item.spec as object), nodeName: 7 } } : item,
    );
    const [one, ...others] = refusals(kubectlJson(bad));
    assert.match(
      one ?? '',
      /items\[\d+\] \(Pod team-\d\/[\w-]+\): spec\.nodeName must be a string$/,
    );
    for (const line of others) assert.equal(line, one);
  });

  void test('broken JSON: the same line, column and item on any number of threads', () => {
    const text = kubectlJson(items);
    const at = text.lastIndexOf('"uid": ');
    const broken = `${text.slice(0, at)}"uid" 1, ${text.slice(at)}`;
    const [one, ...others] = refusals(broken);
    assert.match(
      one ?? '',
      /not valid JSON or YAML: .* at line \d+ column \d+ \(in items\[\d+\]\)$/,
    );
    for (const line of others) assert.equal(line, one);
  });

  void test('a List cut short in the last part: the same line on any number of threads', () => {
    const text = kubectlJson(items);
    const [one, ...others] = refusals(text.slice(0, text.length - 200));
    assert.match(one ?? '', /unexpected end of input/);
    for (const line of others) assert.equal(line, one);
  });
});

void describe('a worker that does not run', () => {
  void test('a worker module that cannot load: the main thread reads every item, in order', () => {
    const items = fc.sample(listsOf(30), { numRuns: 1, seed: 3 })[0] ?? [];
    const bytes = Buffer.from(kubectlJson(items));
    const read: unknown[] = [];
    let taken = 0;
    const split = splitItems(
      bytes,
      3,
      () => taken++,
      new URL('./no-such-list-worker.ts', import.meta.url),
    );
    try {
      readJsonList(bytes, (item) => read.push(item), split);
    } finally {
      split.close();
    }
    assert.equal(taken, 0, 'no worker answered');
    assert.deepStrictEqual(read, items);
  });
});
