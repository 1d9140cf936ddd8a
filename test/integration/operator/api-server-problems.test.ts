// The operator and an API server it cannot use, on the real control plane.
//
// At start-up (one line on stderr, exit 1, nothing written to the cluster):
// - a kubeconfig whose CA is not the cluster's: a TLS failure, not retried;
// - a bogus token: the credentials are refused (401), not retried.
// While running (one log line when the problem starts, one when it ends, however many
// retries in between; the retries are debug lines, counted here to know enough happened):
// - the API server goes away: the operator talks to it through a TCP proxy the test closes,
//   so new connections are refused (ECONNREFUSED) and the line names the proxy's URL;
// - the operator's rights are taken away (403), given back, then its ServiceAccount is
//   deleted, which invalidates its token (401).
// Closed loopback ports, DNS failures and the flag and kubeconfig cases need no cluster:
// test/unit/startup.test.ts.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/api-server-problems.test.ts
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createPki } from '../../cluster/pki.ts';
import { startOperator } from '../harness.ts';
import {
  clusterTest,
  leaseFlags,
  runOperator,
  tail,
  uniqueName,
  waitFor,
  type Cluster,
  type Operator,
} from './support.ts';

type Kubeconfig = {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: Record<string, unknown> }[];
  'current-context': string;
};

/** The test cluster's kubeconfig, minified to its current context, credentials included. */
async function adminConfig(c: Cluster): Promise<Kubeconfig> {
  return JSON.parse(
    await c.kubectl('config', 'view', '--raw', '--minify', '-o', 'json'),
  ) as Kubeconfig;
}

/** Writes a variant of `base` (a fresh object) and returns a Cluster whose kubeconfig it is. */
async function variant(
  c: Cluster,
  dir: string,
  name: string,
  base: Kubeconfig,
  change: (k: Kubeconfig) => void,
): Promise<Cluster> {
  const k = structuredClone(base);
  change(k);
  const path = join(dir, `${name}.kubeconfig`);
  await writeFile(path, JSON.stringify(k), { mode: 0o600 });
  // The operator started on it runs with these credentials, not the chart's account.
  return {
    ...c,
    kubeconfigPath: path,
    ...(c.operator === undefined ? {} : { operator: { ...c.operator, kubeconfigPath: path } }),
  };
}

const serverOf = (k: Kubeconfig): string => String(entries(k).cluster['server']);

/** Nothing with this operator's lease or identity exists: no Lease, no Event. */
async function assertNothingWritten(c: Cluster, lease: string, identity: string): Promise<void> {
  const leases = await c.json<{ items: { metadata: { name: string } }[] }>('get', 'leases', '-A');
  assert.deepEqual(
    leases.items.filter((l) => l.metadata.name === lease),
    [],
    'no Lease was written',
  );
  const events = await c.json<{ items: { reportingInstance?: string }[] }>(
    'get',
    'events.events.k8s.io',
    '-A',
  );
  assert.deepEqual(
    events.items.filter((e) => e.reportingInstance === identity),
    [],
    'no Event was written',
  );
}

/** Runs the operator until it exits; returns its status and everything it printed. */
async function runToExit(c: Cluster, lease: string, identity: string) {
  const op = startOperator(c, ...leaseFlags(lease, identity));
  // 'close' comes after the output has been read; the harness keeps non-JSON lines as {message}.
  const status = await new Promise<number | null>((resolve) => op.child.once('close', resolve));
  return {
    status,
    lines: op.logs.map((l) =>
      typeof l['message'] === 'string' ? l['message'] : JSON.stringify(l),
    ),
  };
}

/** A TCP proxy to the API server (TLS passes through); closing it refuses new connections. */
class Proxy {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(server: string) {
    const url = new URL(server);
    this.#target = { host: url.hostname, port: Number(url.port) };
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.#target.port, this.#target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    this.port = address.port;
    this.#server = server;
  }

  /** Stops listening and cuts every connection (the watches included). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }
}

const RETRIES = ['list failed; retrying', 'watch failed; retrying'];

/**
 * Waits for `message` and then for `retries` retries of the pods informer with a cause
 * matching `cause` after it; returns the lines logged so far.
 */
async function waitRetried(
  op: Operator,
  message: string,
  cause: RegExp,
  retries = 3,
): Promise<Record<string, unknown>[]> {
  return waitFor(
    `"${message}" and ${retries} retries after it`,
    () => {
      const logs = op.process.logs;
      const first = logs.findIndex((l) => l['message'] === message);
      if (first === -1) return Promise.resolve(undefined);
      const after = logs
        .slice(first)
        .filter(
          (l) =>
            RETRIES.includes(String(l['message'])) &&
            l['resource'] === 'pods' &&
            cause.test(String(l['cause'])),
        );
      return Promise.resolve(after.length >= retries ? [...logs] : undefined);
    },
    120_000,
  ).catch((error: unknown) => {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n${tail(op.process, 30)}`,
    );
  });
}

const named = (logs: Record<string, unknown>[], message: string) =>
  logs.filter((l) => l['message'] === message);

/** The one element of `lines`; fails showing them all otherwise. */
function only(lines: Record<string, unknown>[]): Record<string, unknown> {
  const [line] = lines;
  assert.ok(lines.length === 1 && line !== undefined, `one line: ${JSON.stringify(lines)}`);
  return line;
}

/** The kubeconfig's (only) cluster entry and context, for a variant to change. */
function entries(k: Kubeconfig): {
  cluster: Record<string, unknown>;
  context: Record<string, unknown>;
} {
  const [cluster] = k.clusters;
  const [context] = k.contexts;
  assert.ok(cluster !== undefined && context !== undefined, 'a minified kubeconfig');
  return { cluster: cluster.cluster, context: context.context };
}

clusterTest(
  'the operator names what stands between it and its API server',
  { timeout: 600_000 },
  async ({ t, c, s }) => {
    const dir = await mkdtemp(join(tmpdir(), 'api-server-problems-'));
    s.defer(() => rm(dir, { recursive: true, force: true }));
    const admin = await adminConfig(c);
    const server = serverOf(admin);

    await t.test(
      "start-up: a CA that is not the cluster's is one line, exit 1, nothing written",
      async () => {
        const wrong = await createPki(await mkdtemp(join(dir, 'pki-')));
        const wrongCa = await variant(c, dir, 'wrong-ca', admin, (k) => {
          const { cluster } = entries(k);
          delete cluster['certificate-authority-data'];
          cluster['certificate-authority'] = wrong.ca.cert;
        });
        const [lease, identity] = [uniqueName('lease'), uniqueName('op')];
        const { status, lines } = await runToExit(wrongCa, lease, identity);
        assert.deepEqual(lines, [
          `placement-operator: API server ${server}: TLS: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
        ]);
        assert.equal(status, 1);
        await assertNothingWritten(c, lease, identity);
      },
    );

    await t.test('start-up: a bogus token is one line, exit 1, nothing written', async () => {
      const bogus = await variant(c, dir, 'bogus-token', admin, (k) => {
        k.users = [{ name: 'bogus', user: { token: 'not-a-token-this-cluster-knows' } }];
        entries(k).context['user'] = 'bogus';
      });
      const [lease, identity] = [uniqueName('lease'), uniqueName('op')];
      const { status, lines } = await runToExit(bogus, lease, identity);
      assert.deepEqual(lines, [
        `placement-operator: API server ${server} refused the credentials of user "bogus" (401 Unauthorized)`,
      ]);
      assert.equal(status, 1);
      await assertNothingWritten(c, lease, identity);
    });

    await t.test(
      'running: the API server gone is said once, with its URL and the cause',
      async () => {
        const proxy = new Proxy(server);
        await proxy.open();
        s.defer(() => proxy.close());
        const proxied = await variant(c, dir, 'proxied', admin, (k) => {
          entries(k).cluster['server'] = `https://127.0.0.1:${proxy.port}`;
        });
        const url = `https://127.0.0.1:${proxy.port}`;
        const op = await runOperator(proxied, s, ['--leader-elect=false', '--log-level', 'debug']);

        await proxy.close();
        const down = await waitRetried(op, 'API server unreachable; retrying', /ECONNREFUSED/);
        const unreachable = named(down, 'API server unreachable; retrying');
        // One line for the outage, with the first cause a connection met: the cut itself (a
        // watch's connection closed or reset) or a refusal.
        const said = only(unreachable);
        assert.equal(said['level'], 'warn');
        assert.equal(said['server'], url);
        assert.match(
          String(said['cause']),
          /^connection (refused \(ECONNREFUSED\)|reset \(ECONNRESET\)|closed by the server \(UND_ERR_SOCKET\))$/,
        );
        // Every informer retried, each more than once; none of that was a warning.
        const retries = down.filter((l) => RETRIES.includes(String(l['message'])));
        assert.ok(new Set(retries.map((l) => l['resource'])).size >= 5, 'every informer retried');
        assert.ok(
          retries.every((l) => l['level'] === 'debug' && String(l['url']).startsWith(`${url}/`)),
        );
        assert.ok(retries.length > 3 * unreachable.length, `${retries.length} retries`);

        await proxy.open(); // the same port
        await waitFor('"API server answering again"', () =>
          Promise.resolve(op.logged('API server answering again').length > 0 ? true : undefined),
        );
        const back = only(op.logged('API server answering again'));
        assert.equal(back['server'], url);
        assert.equal(back['was'], 'unreachable');
        assert.equal(
          named(op.process.logs, 'API server unreachable; retrying').length,
          unreachable.length,
        );
      },
    );

    await t.test(
      'running: rights taken away (403), then the token revoked (401), each said once',
      async () => {
        const ns = uniqueName('sa');
        const account = 'placement-operator';
        const binding = uniqueName('api-problems');
        await c.kubectl('create', 'namespace', ns);
        s.defer(() => c.kubectl('delete', 'namespace', ns, '--wait=false'));
        await c.kubectl('create', 'serviceaccount', account, '-n', ns);
        const bind = () =>
          c.kubectl(
            'create',
            'clusterrolebinding',
            binding,
            '--clusterrole=cluster-admin',
            `--serviceaccount=${ns}:${account}`,
          );
        await bind();
        s.defer(() => c.kubectl('delete', 'clusterrolebinding', binding, '--ignore-not-found'));
        const token = (
          await c.kubectl('create', 'token', account, '-n', ns, '--duration=1h')
        ).trim();
        const user = `system:serviceaccount:${ns}:${account}`;
        const asAccount = await variant(c, dir, 'service-account', admin, (k) => {
          k.users = [{ name: user, user: { token } }];
          entries(k).context['user'] = user;
        });
        const op = await runOperator(asAccount, s, [
          '--leader-elect=false',
          '--log-level',
          'debug',
        ]);

        // 403: open watches go on until they end (25 s); the next list or watch is refused.
        await c.kubectl('delete', 'clusterrolebinding', binding);
        const forbidden = await waitRetried(
          op,
          'API server forbids the requests; retrying',
          /^403/,
        );
        const said = only(named(forbidden, 'API server forbids the requests; retrying'));
        assert.equal(said['level'], 'error');
        assert.equal(said['server'], server);
        assert.equal(said['user'], user);

        await bind();
        await waitFor(
          '"API server answering again"',
          () =>
            Promise.resolve(op.logged('API server answering again').length > 0 ? true : undefined),
          120_000,
        );
        assert.equal(only(op.logged('API server answering again'))['was'], 'forbidden');

        // 401: a deleted ServiceAccount's tokens are no longer accepted.
        await c.kubectl('delete', 'serviceaccount', account, '-n', ns);
        const refused = await waitRetried(
          op,
          'API server refused the credentials; retrying',
          /^401/,
        );
        const credentials = only(named(refused, 'API server refused the credentials; retrying'));
        assert.equal(credentials['level'], 'error');
        assert.equal(credentials['server'], server);
        assert.equal(credentials['user'], user);
        assert.equal(credentials['cause'], '401 Unauthorized');
        assert.ok(
          op.process.logs.every((l) => !JSON.stringify(l).includes(token)),
          'the token is never logged',
        );
        assert.equal(named(op.process.logs, 'API server forbids the requests; retrying').length, 1);
      },
    );
  },
);
