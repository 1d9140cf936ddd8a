// Naming what stands between the operator and its API server: the classification of failed
// requests (from the error's cause chain), the once-per-condition log lines of ApiHealth,
// and the start-up check's retry budget. The same on a real API server (closed port, wrong
// CA, bogus token, revoked rights) is in test/integration/api-server-problems.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ApiException, KubeConfig } from '@kubernetes/client-node';

import {
  apiProblem,
  ApiHealth,
  checkApiServer,
  type ApiProblem,
} from '../../../src/kube/api-health.ts';
import type { Logger } from '../../../src/util/logger.ts';

/** undici's shape: a TypeError "fetch failed" whose cause carries the system error. */
const fetchFailed = (cause: Error): TypeError => new TypeError('fetch failed', { cause });
const systemError = (message: string, code: string): Error =>
  Object.assign(new Error(message), { code });
const status = (code: number, message: string): ApiException<string> =>
  new ApiException(
    code,
    `GET /api/v1/pods`,
    JSON.stringify({ kind: 'Status', code, message, reason: 'x' }),
    {},
  );

const PROBLEMS: readonly { name: string; error: unknown; want: ApiProblem }[] = [
  {
    name: 'connection refused (undici fetch failed)',
    error: fetchFailed(systemError('connect ECONNREFUSED 127.0.0.1:1234', 'ECONNREFUSED')),
    want: {
      kind: 'unreachable',
      cause: 'connection refused (ECONNREFUSED)',
      code: 'ECONNREFUSED',
    },
  },
  {
    name: 'connection refused on every address (AggregateError)',
    error: fetchFailed(
      Object.assign(
        new AggregateError([
          systemError('connect ECONNREFUSED ::1:1234', 'ECONNREFUSED'),
          systemError('connect ECONNREFUSED 127.0.0.1:1234', 'ECONNREFUSED'),
        ]),
        { code: 'ECONNREFUSED' },
      ),
    ),
    want: {
      kind: 'unreachable',
      cause: 'connection refused (ECONNREFUSED)',
      code: 'ECONNREFUSED',
    },
  },
  {
    name: 'DNS failure',
    error: fetchFailed(systemError('getaddrinfo ENOTFOUND nope.invalid', 'ENOTFOUND')),
    want: { kind: 'unreachable', cause: 'DNS: no such host (ENOTFOUND)', code: 'ENOTFOUND' },
  },
  {
    name: 'connect timeout',
    error: fetchFailed(systemError('Connect Timeout Error', 'UND_ERR_CONNECT_TIMEOUT')),
    want: {
      kind: 'unreachable',
      cause: 'connect timeout (UND_ERR_CONNECT_TIMEOUT)',
      code: 'UND_ERR_CONNECT_TIMEOUT',
    },
  },
  {
    name: 'a request deadline (AbortSignal.timeout)',
    error: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    want: { kind: 'unreachable', cause: 'timeout: no answer in time', code: 'TimeoutError' },
  },
  {
    name: 'TLS: unknown CA, without Node advice',
    error: fetchFailed(
      systemError(
        'unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca',
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      ),
    ),
    want: {
      kind: 'tls',
      cause: 'TLS: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    },
  },
  {
    name: 'TLS: host name not in the certificate',
    error: fetchFailed(
      systemError(
        "Hostname/IP does not match certificate's altnames",
        'ERR_TLS_CERT_ALTNAME_INVALID',
      ),
    ),
    want: {
      kind: 'tls',
      cause:
        "TLS: Hostname/IP does not match certificate's altnames (ERR_TLS_CERT_ALTNAME_INVALID)",
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    },
  },
  {
    name: '401 from a typed client or getJson, never the body dump',
    error: status(401, 'Unauthorized'),
    want: { kind: 'unauthorized', cause: '401 Unauthorized', code: '401' },
  },
  {
    name: '403 with the Status message',
    error: status(403, 'pods is forbidden: User "x" cannot list resource "pods"'),
    want: {
      kind: 'forbidden',
      cause: '403 Forbidden: pods is forbidden: User "x" cannot list resource "pods"',
      code: '403',
    },
  },
  {
    name: "401 from client-node's Watch (an Error with statusCode)",
    error: Object.assign(new Error('Unauthorized'), { statusCode: 401 }),
    want: { kind: 'unauthorized', cause: '401 Unauthorized', code: '401' },
  },
  {
    name: '503',
    error: status(503, 'etcd leader changed'),
    want: { kind: 'server', cause: '503 Service Unavailable: etcd leader changed', code: '503' },
  },
  {
    name: '404 (a CRD not installed) is no connectivity problem',
    error: status(404, 'the server could not find the requested resource'),
    want: {
      kind: 'other',
      cause: '404 Not Found: the server could not find the requested resource',
      code: '404',
    },
  },
  {
    name: 'anything else: its first line',
    error: new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false\nmore'),
    want: {
      kind: 'other',
      cause: 'HTTP protocol is not allowed when skipTLSVerify is not set or false',
      code: undefined,
    },
  },
];

void describe('apiProblem', () => {
  for (const { name, error, want } of PROBLEMS) {
    void test(name, () => {
      assert.deepEqual(apiProblem(error), want);
    });
  }
});

/** A logger that keeps `level message {meta}` lines. */
function recordingLogger(): {
  logger: Logger;
  lines: { level: string; message: string; meta: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; meta: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, meta: Record<string, unknown> = {}): void => {
      lines.push({ level, message, meta });
    };
  return {
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    lines,
  };
}

const TARGET = { server: 'https://10.0.0.1:6443', user: 'operator' };
const REFUSED = fetchFailed(systemError('connect ECONNREFUSED 10.0.0.1:6443', 'ECONNREFUSED'));
const RESET = fetchFailed(systemError('other side closed', 'UND_ERR_SOCKET'));
const SOURCES = ['pods', 'nodes', 'namespaces', 'deployments'];

void describe('ApiHealth', () => {
  void test('an outage every source retries into is one line, its end another', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    for (let retry = 0; retry < 5; retry++) for (const s of SOURCES) health.failed(s, REFUSED);
    assert.deepEqual(lines, [
      {
        level: 'warn',
        message: 'API server unreachable; retrying',
        meta: {
          server: 'https://10.0.0.1:6443',
          cause: 'connection refused (ECONNREFUSED)',
          code: 'ECONNREFUSED',
        },
      },
    ]);
    assert.deepEqual(health.problems, ['unreachable']);
    for (const s of SOURCES.slice(0, -1)) health.ok(s);
    assert.equal(lines.length, 1, 'not over while one source still fails');
    health.ok('deployments');
    health.ok('deployments');
    assert.deepEqual(lines.slice(1), [
      {
        level: 'info',
        message: 'API server answering again',
        meta: { server: 'https://10.0.0.1:6443', was: 'unreachable' },
      },
    ]);
    assert.deepEqual(health.problems, []);
  });

  void test('a cut then refusals are one outage: one line, with the first cause', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    for (const s of SOURCES) health.failed(s, RESET);
    for (let retry = 0; retry < 3; retry++) for (const s of SOURCES) health.failed(s, REFUSED);
    assert.deepEqual(
      lines.map((l) => [l.level, l.meta['cause']]),
      [['warn', 'connection closed by the server (UND_ERR_SOCKET)']],
    );
  });

  void test('a different kind of problem is a new line, once', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    for (const s of SOURCES) health.failed(s, REFUSED);
    for (let retry = 0; retry < 3; retry++)
      for (const s of SOURCES) health.failed(s, status(503, 'Service Unavailable'));
    assert.deepEqual(
      lines.map((l) => [l.level, l.message]),
      [
        ['warn', 'API server unreachable; retrying'],
        ['warn', 'API server failing; retrying'],
      ],
    );
  });

  void test('refused credentials: one error line with the user and server, no token', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    for (let retry = 0; retry < 4; retry++) {
      for (const s of SOURCES) health.failed(s, status(401, 'Unauthorized'));
      health.failed(
        'lease default/po',
        Object.assign(new Error('Unauthorized'), { statusCode: 401 }),
      );
    }
    assert.deepEqual(lines, [
      {
        level: 'error',
        message: 'API server refused the credentials; retrying',
        meta: {
          server: 'https://10.0.0.1:6443',
          user: 'operator',
          cause: '401 Unauthorized',
          code: '401',
        },
      },
    ]);
  });

  void test('403 on several resources is one line naming the first', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    for (let retry = 0; retry < 3; retry++) {
      health.failed('pods', status(403, 'pods is forbidden'));
      health.failed('nodes', Object.assign(new Error('Forbidden'), { statusCode: 403 }));
    }
    assert.deepEqual(lines, [
      {
        level: 'error',
        message: 'API server forbids the requests; retrying',
        meta: {
          server: 'https://10.0.0.1:6443',
          user: 'operator',
          resource: 'pods',
          cause: '403 Forbidden: pods is forbidden',
          code: '403',
        },
      },
    ]);
  });

  void test('other failures belong to their resource', () => {
    const { logger, lines } = recordingLogger();
    const health = new ApiHealth(TARGET, logger);
    const missing = status(404, 'the server could not find the requested resource');
    for (let retry = 0; retry < 3; retry++) {
      health.failed('placementpolicies', missing);
      health.failed('clusterplacementpolicies', missing);
    }
    assert.deepEqual(
      lines.map((l) => [l.message, l.meta['resource']]),
      [
        ['API request failing; retrying', 'placementpolicies'],
        ['API request failing; retrying', 'clusterplacementpolicies'],
      ],
    );
  });
});

void describe('checkApiServer: the start-up retry budget', () => {
  /** A clock that moves only when the check sleeps; each attempt costs `attemptMs`. */
  function run(
    outcomes: readonly (Error | 'ok')[],
    options: { budgetMs?: number; attemptMs?: number } = {},
  ) {
    let clock = 0;
    const attempts: number[] = [];
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://10.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'operator', token: 'secret-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'operator' }],
      currentContext: 'x',
    });
    const result = checkApiServer(kc, {
      ...(options.budgetMs === undefined ? {} : { budgetMs: options.budgetMs }),
      now: () => clock,
      sleep: (ms) => {
        clock += ms;
        return Promise.resolve();
      },
      probe: () => {
        attempts.push(clock);
        clock += options.attemptMs ?? 0;
        const outcome = outcomes[Math.min(attempts.length - 1, outcomes.length - 1)];
        return outcome === 'ok'
          ? Promise.resolve({})
          : Promise.reject(outcome ?? new Error('no outcome scripted'));
      },
    });
    return { result, attempts };
  }

  void test('unreachable: attempts at 0, 1, 3, 7, 15, 23 and 30 s, then one line', async () => {
    const { result, attempts } = run([REFUSED]);
    await assert.rejects(result, {
      name: 'StartupError',
      message:
        'API server https://10.0.0.1:6443 unreachable after 7 attempts in 30s: connection refused (ECONNREFUSED)',
    });
    assert.deepEqual(attempts, [0, 1_000, 3_000, 7_000, 15_000, 23_000, 30_000]);
  });

  void test('a slow failure uses up the budget sooner', async () => {
    const { result, attempts } = run(
      [new DOMException('The operation was aborted due to timeout', 'TimeoutError')],
      { attemptMs: 10_000 },
    );
    await assert.rejects(result, {
      message:
        'API server https://10.0.0.1:6443 unreachable after 3 attempts in 33s: timeout: no answer in time',
    });
    assert.deepEqual(attempts, [0, 11_000, 23_000]);
  });

  void test('a server that comes up within the budget is fine', async () => {
    const { result, attempts } = run([REFUSED, status(503, 'starting'), 'ok']);
    await result;
    assert.deepEqual(attempts, [0, 1_000, 3_000]);
  });

  void test('refused credentials fail at once, naming the user and not the token', async () => {
    const { result, attempts } = run([status(401, 'Unauthorized')]);
    await assert.rejects(result, {
      message:
        'API server https://10.0.0.1:6443 refused the credentials of user "operator" (401 Unauthorized)',
    });
    assert.deepEqual(attempts, [0]);
  });

  void test('a TLS failure fails at once', async () => {
    const { result, attempts } = run([
      fetchFailed(
        systemError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'),
      ),
    ]);
    await assert.rejects(result, {
      message:
        'API server https://10.0.0.1:6443: TLS: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)',
    });
    assert.deepEqual(attempts, [0]);
  });

  void test('403 on /version: authenticated, the informers will name what is missing', async () => {
    const { result } = run([status(403, 'forbidden')]);
    await result;
  });
});
