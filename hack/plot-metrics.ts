// Draws the metrics of a Prometheus test run as a PNG for docs/metrics.md: one panel per
// series of the range data that test/integration/metrics/prometheus-scrape.test.ts writes
// when PLACEMENT_METRICS_RUN is set, with the run's events (drift, alert firing, undo) as
// vertical lines.
//
//   PLACEMENT_METRICS_RUN=/tmp/run.json KUBECONFIG_TEST=... hack/node --test \
//     --test-global-setup=test/global-setup.ts test/integration/metrics/prometheus-scrape.test.ts
//   hack/node hack/plot-metrics.ts /tmp/run.json docs/metrics-run.png
//
// No dependency: the PNG is written with node:zlib (deflate and CRC-32), text with the small
// bitmap font in plot-font.ts, so the picture is the same on every machine.
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32, deflateSync } from 'node:zlib';

import { GLYPH_WIDTH, glyph } from './plot-font.ts';

export interface Run {
  readonly start: number;
  readonly end: number;
  /** Seconds between the samples of query_range. */
  readonly step: number;
  readonly events: Readonly<Record<string, number>>;
  readonly series: readonly {
    readonly name: string;
    readonly query: string;
    readonly unit: string;
    readonly values: readonly (readonly [number, number])[];
  }[];
}

type Rgb = readonly [number, number, number];

const INK: Rgb = [34, 34, 34];
const GRID: Rgb = [225, 225, 225];
const AXIS: Rgb = [120, 120, 120];
const SERIES_COLOURS: readonly Rgb[] = [
  [200, 30, 30],
  [30, 90, 200],
];
const EVENT_COLOURS: readonly Rgb[] = [
  [120, 120, 120],
  [230, 130, 0],
  [150, 0, 150],
  [0, 140, 60],
];

/** An RGB raster with the few drawing operations a line chart needs. */
class Canvas {
  readonly width: number;
  readonly height: number;
  /** White to start with. */
  readonly pixels: Buffer;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 3, 255);
  }

  dot(x: number, y: number, c: Rgb): void {
    const [px, py] = [Math.round(x), Math.round(y)];
    if (px < 0 || py < 0 || px >= this.width || py >= this.height) return;
    this.pixels.set(c, (py * this.width + px) * 3);
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.dot(x + i, y + j, c);
  }

  /** A line `thick` pixels wide; `dash` pixels on, `dash` off when given. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thick = 1, dash = 0): void {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    const half = Math.floor(thick / 2);
    for (let s = 0; s <= steps; s++) {
      if (dash > 0 && Math.floor(s / dash) % 2 === 1) continue;
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      this.rect(Math.round(x) - half, Math.round(y) - half, thick, thick, c);
    }
  }

  /** Text at `scale` pixels per font dot; `vertical` reads bottom to top from (x, y). */
  text(x: number, y: number, s: string, c: Rgb, scale = 2, vertical = false): void {
    Array.from(s, (ch) => ch).forEach((ch, k) => {
      const rows = glyph(ch);
      const advance = k * (GLYPH_WIDTH + 1) * scale;
      rows.forEach((row, gy) => {
        Array.from(row, (bit) => bit).forEach((bit, gx) => {
          if (bit !== '#') return;
          if (vertical) this.rect(x + gy * scale, y - advance - (gx + 1) * scale, scale, scale, c);
          else this.rect(x + advance + gx * scale, y + gy * scale, scale, scale, c);
        });
      });
    });
  }

  png(): Buffer {
    const rows = Buffer.alloc((this.width * 3 + 1) * this.height);
    for (let y = 0; y < this.height; y++) {
      // Filter type 0 (none) before each row.
      this.pixels.copy(
        rows,
        y * (this.width * 3 + 1) + 1,
        y * this.width * 3,
        (y + 1) * this.width * 3,
      );
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header.set([8, 2, 0, 0, 0], 8); // 8 bits per channel, RGB, deflate, no filter set, no interlace
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', header),
      chunk('IDAT', deflateSync(rows, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const textWidth = (s: string, scale = 2): number => s.length * (GLYPH_WIDTH + 1) * scale;

/** Round tick steps (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`. */
function tickStep(span: number, count: number): number {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? 10 * power;
}

const label = (v: number): string => String(Number(v.toPrecision(3)));

interface LegendEntry {
  readonly x: number;
  readonly y: number;
  readonly text: string;
  readonly colour: Rgb;
}

/** The events' legend from (left, y), wrapped before `right`; and the y below it. */
function eventLegend(
  run: Run,
  left: number,
  right: number,
  y: number,
): { entries: LegendEntry[]; bottom: number } {
  const entries: LegendEntry[] = [];
  let [x, line] = [left, y];
  Object.entries(run.events).forEach(([name, at], i) => {
    const text = `${name} at ${(at - run.start).toFixed(1)} s`;
    if (x > left && x + 38 + textWidth(text) > right) [x, line] = [left, line + 22];
    entries.push({ x, y: line, text, colour: EVENT_COLOURS[i % EVENT_COLOURS.length] ?? INK });
    x += 38 + textWidth(text) + 40;
  });
  return { entries, bottom: line + 22 };
}

/** Draws the run: a panel per series over a shared time axis, events as dashed lines. */
export function plot(run: Run): Buffer {
  const width = 1200;
  const panelHeight = 190;
  const gap = 70;
  const left = 100;
  const right = width - 30;
  const legend = eventLegend(run, left, right, 40);
  const top = legend.bottom;
  const height = top + run.series.length * (panelHeight + gap) + 20;
  const canvas = new Canvas(width, height);
  // One step past the end, so that the last sample shows as a step of its own.
  const span = Math.max(run.end - run.start + run.step, 1);
  const xOf = (t: number): number => left + ((t - run.start) / span) * (right - left);

  canvas.text(
    left,
    16,
    'placement-operator scraped by Prometheus every second, during a drift',
    INK,
  );
  for (const e of legend.entries) {
    canvas.line(e.x, e.y + 6, e.x + 30, e.y + 6, e.colour, 2, 4);
    canvas.text(e.x + 38, e.y, e.text, INK);
  }
  const events = Object.values(run.events);

  run.series.forEach((series, p) => {
    const y0 = top + p * (panelHeight + gap) + 20;
    const y1 = y0 + panelHeight;
    const colour = SERIES_COLOURS[p % SERIES_COLOURS.length] ?? INK;
    const max = Math.max(...series.values.map(([, v]) => (Number.isFinite(v) ? v : 0)), 0);
    // Whole steps for a count (pods), round ones otherwise.
    const counts = series.values.every(([, v]) => Number.isInteger(v));
    const yStep = Math.max(tickStep(max > 0 ? max * 1.1 : 1, 4), counts ? 1 : 0);
    const yMax = Math.max(yStep * Math.ceil((max * 1.1) / yStep), yStep);
    const yOf = (v: number): number => y1 - (v / yMax) * (y1 - y0);

    // Grid, ticks and labels.
    for (let v = 0; v <= yMax + yStep / 2; v += yStep) {
      canvas.line(left, yOf(v), right, yOf(v), GRID);
      canvas.text(left - 10 - textWidth(label(v)), yOf(v) - 7, label(v), INK);
    }
    const xStep = tickStep(span, 10);
    for (let s = 0; s <= span; s += xStep) {
      canvas.line(xOf(run.start + s), y0, xOf(run.start + s), y1, GRID);
      canvas.text(xOf(run.start + s) - textWidth(label(s)) / 2, y1 + 8, label(s), INK);
    }
    canvas.line(left, y0, left, y1, AXIS);
    canvas.line(left, y1, right, y1, AXIS);
    canvas.text(18, y1 - (panelHeight - textWidth(series.unit)) / 2, series.unit, INK, 2, true);
    canvas.text(left, y0 - 22, series.query, colour);

    events.forEach((at, i) => {
      const c = EVENT_COLOURS[i % EVENT_COLOURS.length] ?? INK;
      canvas.line(xOf(at), y0, xOf(at), y1, c, 2, 4);
    });
    // Each sample holds for one step (a query_range value stands for its step).
    const points = series.values.filter(([, v]) => Number.isFinite(v));
    points.forEach(([t, v], i) => {
      canvas.line(xOf(t), yOf(v), xOf(t + run.step), yOf(v), colour, 3);
      const next = points[i + 1];
      if (next?.[0] === t + run.step) {
        canvas.line(xOf(next[0]), yOf(v), xOf(next[0]), yOf(next[1]), colour, 3);
      }
    });
  });
  canvas.text(
    left,
    height - 22,
    `seconds since the first scrape (query_range, step ${String(run.step)} s)`,
    INK,
  );
  return canvas.png();
}

function main(argv: readonly string[]): void {
  const [input, output = 'docs/metrics-run.png'] = argv;
  if (input === undefined) {
    process.stderr.write('usage: hack/plot-metrics.ts RUN.json [OUT.png]\n');
    process.exit(2);
  }
  const run = JSON.parse(readFileSync(input, 'utf8')) as Run;
  writeFileSync(output, plot(run));
  process.stdout.write(`${output}\n`);
}

if (import.meta.main) main(process.argv.slice(2));
