// A List parsed as it arrives from a pipe (src/cli/read-bytes.ts's openInput, json-list.ts):
// the same snapshot, the same report and the same one line for bad input as the List read
// whole, wherever the chunks end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import { parseList } from '../../src/cli/input.ts';
import { EXIT, run } from '../../src/cli/kubectl-placement.ts';
import type { ArrivingInput } from '../../src/cli/read-bytes.ts';
import { kubectlJson, kubectlNode, type Item } from './kubectl-lists.ts';

/** Bytes that arrive `chunk` at a time, as from a pipe. */
function arriving(bytes: Uint8Array, chunk: number): ArrivingInput {
  let length = 0;
  return {
    bytes: () => bytes.subarray(0, length),
    more: (atLeast) => {
      if (length >= bytes.length) return false;
      const want = Math.max(atLeast, 1);
      length = Math.min(bytes.length, length + Math.ceil(want / chunk) * chunk);
      return true;
    },
  };
}

/** A List as kubectl prints it, about `pods` × 10 KB: runs of items arrive before the end. */
function list(pods: number, seed: number): Item[] {
  const items: Item[] = [];
  for (let n = 0; n < 6; n++) items.push(kubectlNode(n, `z${n % 3}`));
  for (let i = 0; i < pods; i++) {
    const app = `app-${(i * 7 + seed) % 5}`;
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${app}-${i}`,
        namespace: `team-${(i + seed) % 3}`,
        uid: `uid-${i}`,
        labels: { app },
        annotations: { note: `${'x'.repeat(10_000 + ((i * seed) % 977))} "},\n    {"` },
      },
      spec: {
        nodeName: `node-${(i + seed) % 6}`,
        ...((i + seed) % 3 === 0
          ? {
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    {
                      labelSelector: { matchLabels: { app } },
                      topologyKey: 'kubernetes.io/hostname',
                    },
                  ],
                },
              },
            }
          : {}),
      },
      status: { phase: 'Running' },
    });
  }
  for (let ns = 0; ns < 3; ns++)
    items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `team-${ns}` } });
  return items;
}

/** The CLI's run on `text`, read whole (`readFile`) or as it arrives (`openFile`). */
function runOn(text: string, chunk: number | undefined) {
  let stdout = '';
  let stderr = '';
  const bytes = Buffer.from(text);
  const code = run(['audit', '-f', 'cluster.json', '-o', 'json'], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: () => bytes,
    threads: 1,
    ...(chunk === undefined ? {} : { openFile: () => arriving(bytes, chunk) }),
  });
  return { code, stdout, stderr };
}

/** The snapshot, or the message of what was thrown. */
const outcome = (read: () => unknown): unknown => {
  try {
    return read();
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}` : err;
  }
};

const chunks = fc.constantFrom(1, 4096, 65_536, 1_000_003);

void describe('a List parsed as it arrives', () => {
  void test('the same snapshot and the same report as read whole, whatever the chunks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), chunks, (seed, chunk) => {
        const text = kubectlJson(list(450, seed));
        assert.ok(text.length > 4 * 2 ** 20, 'longer than the runs read before the end');
        const bytes = Buffer.from(text);
        const input = arriving(bytes, chunk);
        let steps = 0;
        const counted: ArrivingInput = {
          bytes: input.bytes,
          more: (atLeast) => {
            if (atLeast < bytes.length) steps++;
            return input.more(atLeast);
          },
        };
        assert.deepStrictEqual(
          parseList(counted, 'c.json', { threads: 1 }),
          parseList(bytes, 'c.json', { threads: 1 }),
        );
        assert.ok(steps >= 3, `parsed while it arrived (${steps} reads before the end)`);
        assert.deepStrictEqual(runOn(text, chunk), runOn(text, undefined));
      }),
      { numRuns: 4 },
    );
  });

  void test('small Lists, compact JSON, a byte order mark and YAML: as read whole', () => {
    const items = list(3, 1);
    const inputs = [
      kubectlJson(items),
      JSON.stringify({ kind: 'List', items }),
      `\ufeff${kubectlJson(list(450, 2))}`,
      `{kind: List, apiVersion: v1, items: [{kind: Namespace, metadata: {name: a}}]}`,
      'kind: List\nitems:\n- kind: Namespace\n  metadata: {name: a}\n',
      '{"kind": "List", "items": []}',
      '{"kind": "List"}',
    ];
    for (const text of inputs) {
      const bytes = Buffer.from(text);
      assert.deepStrictEqual(
        outcome(() => parseList(arriving(bytes, 4096), 'c.json', { threads: 1 })),
        outcome(() => parseList(bytes, 'c.json', { threads: 1 })),
        text.slice(0, 40),
      );
    }
  });

  void test('bad input: the same one line and exit 2 as read whole', () => {
    const items = list(450, 3);
    const last = items.length - 10;
    const text = kubectlJson(items);
    const at = text.lastIndexOf('"uid": ');
    const bad = [
      kubectlJson(items.map((item, i) => (i === last ? { ...item, metadata: {} } : item))),
      kubectlJson(
        items.map((item, i) =>
          i === 100 ? { ...item, spec: { ...(item['spec'] as object), nodeName: 7 } } : item,
        ),
      ),
      `${text.slice(0, at)}"uid" 1, ${text.slice(at)}`,
      text.slice(0, text.length - 3000),
      `${text}\n{}`,
      `{"apiVersion": "v1", "items": 7${text.slice(text.indexOf('['))}`,
    ];
    for (const input of bad) {
      const whole = runOn(input, undefined);
      assert.equal(whole.code, EXIT.badInput, whole.stderr);
      assert.equal(whole.stderr.trimEnd().split('\n').length, 1, whole.stderr);
      for (const chunk of [1, 65_536]) assert.deepStrictEqual(runOn(input, chunk), whole);
    }
  });
});
