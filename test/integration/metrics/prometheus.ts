// A real Prometheus server for the integration tests: the pinned release built from its Go
// module (hack/tools/build-prometheus.sh), on a free port, its data in a temporary directory,
// scraping the targets it is given and evaluating a rule file; read through its HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { stringify } from 'yaml';

import { prometheusBinary } from '../../tools/pinned.ts';
import { freePort, waitFor } from '../harness.ts';

export interface PrometheusOptions {
  readonly job: string;
  /** host:port of each target. */
  readonly targets: readonly string[];
  /** Labels put on every series of the targets (as a ServiceMonitor's target labels). */
  readonly labels: Readonly<Record<string, string>>;
  /** Scrape and rule evaluation interval, as Prometheus reads it (`1s`). */
  readonly interval: string;
  /** A Prometheus rule file's content: `{groups: [...]}`. */
  readonly rules: unknown;
}

/** One series of an instant query: its labels and its value (a number, NaN included). */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One series of a range query: its labels and [unix seconds, value] pairs. */
export interface RangeSeries {
  readonly metric: Readonly<Record<string, string>>;
  readonly values: readonly (readonly [number, number])[];
}

export interface Alert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing';
  readonly activeAt: string;
}

export interface Prometheus {
  readonly url: string;
  /** Milliseconds from spawn until /-/ready answered 200. */
  readonly startMs: number;
  query(expr: string): Promise<Sample[]>;
  queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<RangeSeries[]>;
  /** The active (pending or firing) alerts of /api/v1/alerts. */
  alerts(): Promise<Alert[]>;
  /** SIGKILL, then remove the data directory. */
  stop(): Promise<void>;
}

interface ApiAnswer<T> {
  readonly status: 'success' | 'error';
  readonly data?: T;
  readonly error?: string;
}

/** Starts Prometheus and waits (deadline 60 s) until it says it is ready. */
export async function startPrometheus(o: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'placement-prometheus-'));
  const config = {
    global: {
      scrape_interval: o.interval,
      evaluation_interval: o.interval,
      scrape_timeout: o.interval,
    },
    rule_files: ['rules.yaml'],
    scrape_configs: [
      { job_name: o.job, static_configs: [{ targets: o.targets, labels: o.labels }] },
    ],
  };
  await writeFile(join(dir, 'prometheus.yaml'), stringify(config));
  await writeFile(join(dir, 'rules.yaml'), stringify(o.rules));
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const started = Date.now();
  const child = spawn(
    prometheusBinary(),
    [
      `--config.file=${join(dir, 'prometheus.yaml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${String(port)}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  process.once('exit', () => child.kill('SIGKILL'));
  const stop = async (): Promise<void> => {
    await killed(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `Prometheus ready at ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`Prometheus exited: ${log}`);
        return (await fetch(`${url}/-/ready`)).status === 200 ? true : undefined;
      },
      60_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const startMs = Date.now() - started;

  const api = async <T>(path: string, params: Record<string, string>): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
    const body = (await res.json()) as ApiAnswer<T>;
    if (body.status !== 'success' || body.data === undefined) {
      throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    }
    return body.data;
  };
  return {
    url,
    startMs,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: unknown }>('query', { query: expr });
      if (data.resultType === 'scalar') {
        const [, value] = data.result as [number, string];
        return [{ metric: {}, value: Number(value) }];
      }
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
        (r) => ({ metric: r.metric, value: Number(r.value[1]) }),
      );
    },
    queryRange: async (expr, startS, endS, stepS) => {
      const data = await api<{
        result: { metric: Record<string, string>; values: [number, string][] }[];
      }>('query_range', {
        query: expr,
        start: String(startS),
        end: String(endS),
        step: String(stepS),
      });
      return data.result.map((r) => ({
        metric: r.metric,
        values: r.values.map(([t, v]) => [t, Number(v)] as const),
      }));
    },
    alerts: async () => (await api<{ alerts: Alert[] }>('alerts', {})).alerts,
    stop,
  };
}

function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve();
    });
    child.kill('SIGKILL');
  });
}
