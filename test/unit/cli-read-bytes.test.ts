// How the CLI reads its input file or standard input: every byte, in order, through a pipe
// of unknown length as from a regular file, and the memory given back once it is parsed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

import { parseList } from '../../src/cli/input.ts';
import { PARALLEL_BYTES } from '../../src/cli/parallel-list.ts';
import { readInputBytes, releaseInput } from '../../src/cli/read-bytes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'read-bytes-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** 40 MB (more than one step of the growing buffer) of bytes that differ from place to place. */
function bigFile(): { path: string; bytes: Buffer } {
  const bytes = Buffer.alloc(40_000_003);
  for (let i = 0; i < bytes.length; i += 4093) bytes[i] = (i / 4093) % 251;
  const path = join(dir, 'big.bin');
  writeFileSync(path, bytes);
  return { path, bytes };
}

void describe('readInputBytes', () => {
  void test('reads a regular file whole, and releaseInput empties what it read', () => {
    const { path, bytes } = bigFile();
    const read = readInputBytes(path);
    assert.equal(read.length, bytes.length);
    assert.ok(Buffer.from(read.buffer, read.byteOffset, read.byteLength).equals(bytes));
    releaseInput(read);
    assert.equal(read.length, 0);
  });

  void test('leaves input that it did not read as it is', () => {
    const bytes = Buffer.from('{"kind":"List","items":[]}');
    releaseInput(bytes);
    assert.equal(bytes.toString(), '{"kind":"List","items":[]}');
  });

  void test('reads standard input from a pipe whole', () => {
    const { path, bytes } = bigFile();
    const reader = `import { readInputBytes } from ${JSON.stringify(join(ROOT, 'src/cli/read-bytes.ts'))};
const b = readInputBytes('/dev/stdin');
process.stdout.write(String(b.length) + ' ' + (await import('node:crypto')).createHash('sha256').update(b).digest('hex'));`;
    const r = spawnSync(
      'bash',
      ['-c', `cat "$1" | bash hack/node --input-type=module -e "$2"`, 'read', path, reader],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`);
  });

  void test('names a file that is not there', () => {
    assert.throws(() => readInputBytes(join(dir, 'absent.json')), { code: 'ENOENT' });
  });

  void test('a large JSON List from a pipe, read on two threads: the same snapshot, no worker left', () => {
    // kubectl's indentation, about 40 MB: enough for two threads.
    const pods = Array.from({ length: 60_000 }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `web-${i}`, namespace: `team-${i % 5}`, labels: { app: `a${i % 7}` } },
      spec: { nodeName: `node-${i % 40}`, containers: [{ name: 'c', image: 'x'.repeat(400) }] },
      status: { phase: 'Running' },
    }));
    const text = JSON.stringify({ apiVersion: 'v1', items: pods, kind: 'List' }, null, 4);
    assert.ok(text.length > PARALLEL_BYTES, 'large enough for a second thread');
    const path = join(dir, 'big.json');
    writeFileSync(path, text);
    const hash = (snapshot: unknown): string =>
      createHash('sha256').update(JSON.stringify(snapshot)).digest('hex');
    const reader = `import { openInput } from ${JSON.stringify(join(ROOT, 'src/cli/read-bytes.ts'))};
import { parseList } from ${JSON.stringify(join(ROOT, 'src/cli/input.ts'))};
import { warmWorkers } from ${JSON.stringify(join(ROOT, 'src/cli/parallel-list.ts'))};
const snapshot = parseList(openInput('/dev/stdin'), 'stdin', { threads: 2 });
process.stdout.write(warmWorkers(0) + ' ' + (await import('node:crypto')).createHash('sha256').update(JSON.stringify(snapshot)).digest('hex'));`;
    const r = spawnSync(
      'bash',
      ['-c', `cat "$1" | bash hack/node --input-type=module -e "$2"`, 'read', path, reader],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const one = parseList(text, 'stdin', { threads: 1 });
    assert.equal(one.pods.length, pods.length);
    // The worker started while the input arrived took its part: none is left waiting.
    assert.equal(r.stdout, `0 ${hash(one)}`);
  });
});
