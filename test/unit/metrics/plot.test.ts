// hack/plot-metrics.ts: the PNG it writes is one a decoder accepts (signature, chunk CRCs,
// IHDR, image data of the stated size) and shows each series in its colour.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32, inflateSync } from 'node:zlib';

import { glyph } from '../../../hack/plot-font.ts';
import { plot, type Run } from '../../../hack/plot-metrics.ts';

interface Chunk {
  readonly type: string;
  readonly data: Buffer;
}

function chunks(png: Buffer): Chunk[] {
  const found: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('ascii', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    const crc = png.readUInt32BE(at + 8 + length);
    assert.equal(crc, crc32(png.subarray(at + 4, at + 8 + length)), `CRC of ${type}`);
    found.push({ type, data });
    at += 12 + length;
  }
  return found;
}

const RUN: Run = {
  start: 100,
  end: 110,
  step: 1,
  events: { 'node relabelled': 102.5, 'node relabelled back': 107.2 },
  series: [
    {
      name: 'placement_violations',
      query: 'sum(placement_violations)',
      unit: 'violating pods',
      values: [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110].map(
        (t) => [t, t > 103 && t < 108 ? 1 : 0] as const,
      ),
    },
    {
      name: 'reconciles per second',
      query: 'sum(rate(controller_runtime_reconcile_total[10s]))',
      unit: 'reconciles / s',
      values: [101, 102, 103, 104].map((t) => [t, 0.25 * (t - 100)] as const),
    },
  ],
};

void describe('plot-metrics', () => {
  void test('writes a PNG with valid chunks and image data of the stated size', () => {
    const png = plot(RUN);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const all = chunks(png);
    assert.deepEqual(
      all.map((c) => c.type),
      ['IHDR', 'IDAT', 'IEND'],
    );
    const [header, data] = all as [Chunk, Chunk, Chunk];
    const [width, height] = [header.data.readUInt32BE(0), header.data.readUInt32BE(4)];
    assert.deepEqual([...header.data.subarray(8)], [8, 2, 0, 0, 0], 'RGB, 8 bits');
    const rows = inflateSync(data.data);
    assert.equal(rows.length, (width * 3 + 1) * height);
  });

  void test('draws each series in its own colour', () => {
    const [, data] = chunks(plot(RUN)) as [Chunk, Chunk, Chunk];
    const rows = inflateSync(data.data);
    const count = (rgb: readonly number[]): number => {
      let n = 0;
      for (let i = 0; i + 2 < rows.length; i++)
        if (rows[i] === rgb[0] && rows[i + 1] === rgb[1] && rows[i + 2] === rgb[2]) n++;
      return n;
    };
    assert.ok(count([200, 30, 30]) > 500, 'the first series in red');
    assert.ok(count([30, 90, 200]) > 500, 'the second series in blue');
  });

  void test('the font refuses a character it lacks, naming it', () => {
    assert.equal(glyph('a').length, 7);
    assert.throws(() => glyph('é'), /plot-font: no glyph for "é"/);
  });
});
