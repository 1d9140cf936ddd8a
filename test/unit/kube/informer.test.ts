// The informer's state machine with a scripted list/watch source: which list and watch
// calls it makes, the delays it asks for, and the events a consumer sees. The real API
// server side is in test/integration/kube/informer.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Pod } from '../../../src/api/core.ts';
import { ApiHealth } from '../../../src/kube/api-health.ts';
import { diffSnapshot, Informer } from '../../../src/kube/informer.ts';
import type {
  ListPage,
  ListWatchSource,
  RawEventType,
  WatchEnd,
} from '../../../src/kube/list-watch.ts';
import { PODS } from '../../../src/kube/resources.ts';
import type { WatchEvent } from '../../../src/api/cluster.ts';

const pod = (name: string, resourceVersion: string, labels: Record<string, string> = {}) => ({
  metadata: { name, namespace: 'ns', resourceVersion, labels, managedFields: [{}] },
  spec: { nodeName: 'n1', containers: [] },
  status: { phase: 'Running' },
});

type WatchStep =
  | {
      readonly events: readonly [RawEventType, unknown][];
      readonly end: WatchEnd;
      /** How long the watch stays open, on the test's clock. */
      readonly lastsMs?: number;
    }
  | 'hang';

/** Serves lists and watches from scripts; records what was asked. */
class ScriptedSource implements ListWatchSource {
  readonly calls: string[] = [];
  clockMs = 0;
  readonly lists: ListPage[][];
  readonly watches: WatchStep[];

  constructor(lists: ListPage[][], watches: WatchStep[]) {
    this.lists = lists;
    this.watches = watches;
  }

  list(query: { limit: number; continue?: string }): Promise<ListPage> {
    this.calls.push(`list limit=${query.limit} continue=${query.continue ?? ''}`);
    const pages = this.lists[0];
    const page = pages?.shift();
    if (pages !== undefined && pages.length === 0) this.lists.shift();
    return page === undefined ? Promise.reject(new Error('no more lists')) : Promise.resolve(page);
  }

  watch(
    query: { resourceVersion: string },
    onEvent: (type: RawEventType, object: unknown) => void,
    signal: AbortSignal,
  ): Promise<WatchEnd> {
    this.calls.push(`watch rv=${query.resourceVersion}`);
    const step = this.watches.shift() ?? 'hang';
    if (step === 'hang') {
      return new Promise((resolve) => {
        const close = (): void => {
          resolve({ kind: 'closed' });
        };
        if (signal.aborted) close();
        signal.addEventListener('abort', close);
      });
    }
    for (const [type, object] of step.events) onEvent(type, object);
    this.clockMs += step.lastsMs ?? 0;
    return Promise.resolve(step.end);
  }
}

const page = (items: unknown[], resourceVersion: string, next?: string): ListPage => ({
  items,
  resourceVersion,
  continue: next,
});

function informerOver(source: ScriptedSource) {
  const events: string[] = [];
  const sleeps: number[] = [];
  const informer = new Informer(PODS, source, {
    now: () => source.clockMs,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    onEvent: (e: WatchEvent<Pod>) => events.push(`${e.type} ${e.object.metadata.name}`),
  });
  return { informer, events, sleeps };
}

/** Lets the loop run until the scripted source is down to its hanging watch. */
async function settle(source: ScriptedSource): Promise<void> {
  for (let i = 0; i < 100 && source.watches.length > 0; i++)
    await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

void test('lists every page, then watches from the list resourceVersion', async () => {
  const source = new ScriptedSource(
    [[page([pod('a', '5')], '10', 'tok'), page([pod('b', '6')], '10')]],
    [],
  );
  const { informer, events } = informerOver(source);
  await informer.start();
  await settle(source);
  assert.deepEqual(source.calls, [
    'list limit=500 continue=',
    'list limit=500 continue=tok',
    'watch rv=10',
  ]);
  assert.deepEqual(events, ['added a', 'added b']);
  assert.equal(informer.synced, true);
  assert.deepEqual(
    informer.list().map((p) => p.metadata.name),
    ['a', 'b'],
  );
  await informer.stop();
});

void test('applies watch events, skips updates that change nothing it keeps, follows bookmarks', async () => {
  const source = new ScriptedSource(
    [[page([pod('a', '5')], '10')]],
    [
      {
        events: [
          ['ADDED', pod('b', '11')],
          // a status-only change: the trimmed pod is the same
          ['MODIFIED', { ...pod('a', '12'), status: { phase: 'Running', podIP: '10.0.0.9' } }],
          ['MODIFIED', pod('a', '13', { app: 'x' })],
          ['DELETED', pod('b', '14')],
          ['BOOKMARK', { metadata: { resourceVersion: '20' } }],
        ],
        end: { kind: 'closed' },
      },
    ],
  );
  const { informer, events, sleeps } = informerOver(source);
  await informer.start();
  await settle(source);
  assert.deepEqual(events, ['added a', 'added b', 'updated a', 'deleted b']);
  assert.equal(informer.get('ns/a')?.metadata.resourceVersion, '13');
  assert.deepEqual(source.calls.slice(-1), ['watch rv=20']);
  assert.deepEqual(sleeps, [], 'a watch that delivered events resumes at once');
  await informer.stop();
});

void test('410 relists and tells consumers what changed meanwhile', async () => {
  const source = new ScriptedSource(
    [
      [page([pod('a', '5'), pod('b', '6'), pod('c', '7')], '10')],
      [page([pod('b', '6'), pod('c', '30', { app: 'changed' }), pod('d', '31')], '40')],
    ],
    [{ events: [], end: { kind: 'expired', message: 'too old resource version: 10 (35)' } }],
  );
  const { informer, events } = informerOver(source);
  await informer.start();
  await settle(source);
  assert.deepEqual(events, ['added a', 'added b', 'added c', 'deleted a', 'updated c', 'added d']);
  assert.deepEqual(source.calls, [
    'list limit=500 continue=',
    'watch rv=10',
    'list limit=500 continue=',
    'watch rv=40',
  ]);
  assert.equal(informer.stats.expired, 1);
  await informer.stop();
});

void test('failed watches back off 1 s, 2 s, 4 s ... and reset after an event', async () => {
  const fail: WatchStep = { events: [], end: { kind: 'failed', message: 'connection refused' } };
  const source = new ScriptedSource(
    [[page([], '10')]],
    [
      fail,
      fail,
      fail,
      { events: [['ADDED', pod('a', '11')]], end: { kind: 'failed', message: 'reset by peer' } },
      fail,
    ],
  );
  const { informer, sleeps } = informerOver(source);
  await informer.start();
  await settle(source);
  assert.deepEqual(sleeps, [1_000, 2_000, 4_000, 1_000, 2_000]);
  assert.deepEqual(source.calls.filter((c) => c.startsWith('watch')).length, 6);
  assert.ok(
    source.calls.every((c) => c === 'list limit=500 continue=' || c.startsWith('watch rv=1')),
  );
  await informer.stop();
});

void test('a quiet watch that ran its course resumes at once; one closed at once backs off', async () => {
  const quiet: WatchStep = { events: [], end: { kind: 'closed' }, lastsMs: 25_000 };
  const instant: WatchStep = { events: [], end: { kind: 'closed' }, lastsMs: 0 };
  const source = new ScriptedSource(
    [[page([], '10')]],
    [quiet, quiet, instant, instant, quiet, instant],
  );
  const { informer, sleeps } = informerOver(source);
  await informer.start();
  await settle(source);
  assert.deepEqual(sleeps, [1_000, 2_000, 1_000]);
  assert.equal(informer.stats.lists, 1, 'closing is no reason to relist');
  await informer.stop();
});

void test('a failed first list is retried with backoff; start() waits for it', async () => {
  // The first, empty, script makes list() reject once.
  const source = new ScriptedSource([[], [page([pod('a', '5')], '10')]], []);
  const { informer, sleeps, events } = informerOver(source);
  await informer.start();
  assert.deepEqual(sleeps, [1_000]);
  assert.deepEqual(events, ['added a']);
  await informer.stop();
});

void test('retries name the URL and the cause; the health reporter says it once', async () => {
  const refused = new TypeError('fetch failed', {
    cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), {
      code: 'ECONNREFUSED',
    }),
  });
  const unauthorized = Object.assign(new Error('Unauthorized'), { statusCode: 401 });
  let lists = 0;
  let watches = 0;
  const source: ListWatchSource = {
    url: 'https://10.0.0.1:6443/api/v1/pods',
    list: () => (++lists <= 3 ? Promise.reject(refused) : Promise.resolve(page([], '10'))),
    watch: (_query, _onEvent, signal, onOpen) => {
      if (++watches <= 3)
        return Promise.resolve({ kind: 'failed', message: 'x', error: unauthorized });
      onOpen?.();
      return new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          resolve({ kind: 'closed' });
        });
      });
    },
  };
  const lines: string[] = [];
  const log =
    (level: string) =>
    (message: string, meta: Record<string, unknown> = {}): void => {
      lines.push(`${level} ${message} ${JSON.stringify(meta)}`);
    };
  const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const informer = new Informer(PODS, source, {
    logger,
    health: new ApiHealth({ server: 'https://10.0.0.1:6443', user: 'operator' }, logger),
    sleep: () => Promise.resolve(),
  });
  await informer.start();
  for (let i = 0; i < 20 && watches < 4; i++) await new Promise((r) => setImmediate(r));
  await informer.stop();
  const retry = (what: string, delayMs: number, cause: string) =>
    `debug ${what}; retrying ${JSON.stringify({ resource: 'pods', url: 'https://10.0.0.1:6443/api/v1/pods', delayMs, cause })}`;
  assert.deepEqual(
    lines.filter((l) => !l.startsWith('debug listed')),
    [
      'warn API server unreachable; retrying {"server":"https://10.0.0.1:6443","cause":"connection refused (ECONNREFUSED)","code":"ECONNREFUSED"}',
      retry('list failed', 1_000, 'connection refused (ECONNREFUSED)'),
      retry('list failed', 2_000, 'connection refused (ECONNREFUSED)'),
      retry('list failed', 4_000, 'connection refused (ECONNREFUSED)'),
      'info API server answering again {"server":"https://10.0.0.1:6443","was":"unreachable"}',
      'error API server refused the credentials; retrying {"server":"https://10.0.0.1:6443","user":"operator","cause":"401 Unauthorized","code":"401"}',
      retry('watch failed', 1_000, '401 Unauthorized'),
      retry('watch failed', 2_000, '401 Unauthorized'),
      retry('watch failed', 4_000, '401 Unauthorized'),
      'info API server answering again {"server":"https://10.0.0.1:6443","was":"unauthorized"}',
    ],
  );
});

void test('stop() before the first list rejects start()', async () => {
  const never: ListWatchSource = {
    list: (_query, signal) =>
      new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          reject(new Error('aborted'));
        });
      }),
    watch: () => Promise.resolve({ kind: 'closed' }),
  };
  const informer = new Informer(PODS, never);
  const started = informer.start();
  await informer.stop();
  await assert.rejects(started, /stopped before it synced/);
});

void test('a handler that throws does not stop the others', async () => {
  const source = new ScriptedSource([[page([pod('a', '5')], '10')]], []);
  const { informer, events } = informerOver(source);
  informer.addHandler(() => {
    throw new Error('boom');
  });
  await informer.start();
  assert.deepEqual(events, ['added a']);
  await informer.stop();
});

const cached = (name: string, rv: string, labels: Record<string, string> = {}): Pod => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, labels },
  spec: {},
});

void test('diffSnapshot: deleted, added and changed; a new resourceVersion alone is no change', () => {
  const old = new Map([
    ['a', cached('a', '1')],
    ['b', cached('b', '2')],
    ['c', cached('c', '3')],
  ]);
  const fresh = new Map([
    ['b', cached('b', '9')],
    ['c', cached('c', '9', { x: 'y' })],
    ['d', cached('d', '9')],
  ]);
  assert.deepEqual(
    diffSnapshot(old, fresh).map((e) => `${e.type} ${e.object.metadata.name}`),
    ['deleted a', 'updated c', 'added d'],
  );
});
