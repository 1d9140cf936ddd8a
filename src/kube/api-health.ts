/**
 * What stands between the operator and its API server, named from a failed request: the
 * server's URL and the cause (connection refused, DNS, TLS, timeout, refused credentials),
 * read from the error's `cause` chain instead of undici's bare "fetch failed".
 *
 * Two users: the start-up check (a bounded retry budget, then one line and exit), and the
 * running operator's `ApiHealth`, which logs a problem once when it starts and once when it
 * ends, however many informers and retries run into it in between.
 *
 * Long because each cause (connection, DNS, TLS, timeout, credentials) has its own reading
 * and its own line; both users need them all.
 */
import { ApiException, type KubeConfig } from '@kubernetes/client-node';

import { realSleep, type Sleep } from '../util/clock.ts';
import { getJson, StartupError } from './client.ts';
import { isRecord, record, text } from './json.ts';
import { silentLogger, type Logger } from '../util/logger.ts';

/**
 * Why a request failed, as far as reaching the API server goes:
 * - `unreachable`: no answer (refused, DNS, timeout, reset); retrying may help.
 * - `tls`: the handshake failed (unknown CA, wrong host name, expired certificate).
 * - `unauthorized`: 401, the credentials are refused.
 * - `forbidden`: 403, the credentials are accepted but lack a permission.
 * - `server`: 429 or 5xx, the server is there but failing.
 * - `other`: anything else (a 404 for a CRD not installed, a malformed answer).
 */
export type ApiProblemKind =
  'unreachable' | 'tls' | 'unauthorized' | 'forbidden' | 'server' | 'other';

export interface ApiProblem {
  readonly kind: ApiProblemKind;
  /** One line: `connection refused (ECONNREFUSED)`, `401 Unauthorized`, ... */
  readonly cause: string;
  /** The error code (`ECONNREFUSED`, `SELF_SIGNED_CERT_IN_CHAIN`) or the HTTP status. */
  readonly code: string | undefined;
}

/** Node and undici codes for "no answer", with the words a person reads. */
const NETWORK_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CLOSED: 'connection closed',
  ENOTFOUND: 'DNS: no such host',
  EAI_AGAIN: 'DNS: lookup failed (temporary)',
  EAI_FAIL: 'DNS: lookup failed',
  ETIMEDOUT: 'connect timeout',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout waiting for the response',
  UND_ERR_BODY_TIMEOUT: 'timeout reading the response',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host down',
  EADDRNOTAVAIL: 'address not available',
};

/** OpenSSL verification codes Node reports on a failed handshake (besides ERR_TLS_*, ERR_SSL_*). */
const TLS_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);

const isTlsCode = (code: string): boolean =>
  TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_');

/** The error and its causes, outermost first (an AggregateError contributes its first error). */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 8) {
    chain.push(current);
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = (current.errors as unknown[])[0];
    } else if (current instanceof Error) {
      current = current.cause;
    } else {
      break;
    }
  }
  return chain;
}

const codeOf = (error: unknown): string | undefined =>
  isRecord(error) || error instanceof Error ? text((error as { code?: unknown }).code) : undefined;

const firstLine = (message: string): string => (message.split('\n')[0] ?? '').trim();

/** `HTTP 403: pods is forbidden: ...`: the Status message when the body carries one. */
function httpCause(status: number, body: unknown, fallback: string | undefined): string {
  let message: string | undefined;
  if (typeof body === 'string') {
    try {
      message = text(record(JSON.parse(body) as unknown)['message']);
    } catch {
      message = body === '' ? undefined : firstLine(body);
    }
  } else {
    message = text(record(body)['message']);
  }
  const reason = STATUS_TEXT[status] ?? fallback;
  const head = reason === undefined ? `${status}` : `${status} ${reason}`;
  return message === undefined || message === reason ? head : `${head}: ${firstLine(message)}`;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function statusKind(status: number): ApiProblemKind {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429 || status >= 500) return 'server';
  return 'other';
}

/**
 * Names what went wrong with a request: an ApiException (the typed clients, getJson), a
 * watch's error (an Error with `statusCode`), undici's "fetch failed" (a TypeError whose
 * `cause` carries the code), an abort on a deadline, or anything else.
 */
export function apiProblem(error: unknown): ApiProblem {
  if (error instanceof ApiException) {
    const status = error.code;
    return {
      kind: statusKind(status),
      cause: httpCause(status, error.body, undefined),
      code: String(status),
    };
  }
  const statusCode =
    isRecord(error) || error instanceof Error
      ? (error as { statusCode?: unknown }).statusCode
      : undefined;
  if (typeof statusCode === 'number') {
    return {
      kind: statusKind(statusCode),
      cause: httpCause(statusCode, undefined, error instanceof Error ? error.message : undefined),
      code: String(statusCode),
    };
  }
  const chain = causeChain(error);
  for (const link of chain) {
    const code = codeOf(link);
    if (code === undefined) continue;
    const words = NETWORK_CODES[code];
    if (words !== undefined) return { kind: 'unreachable', cause: `${words} (${code})`, code };
    if (isTlsCode(code)) {
      // Node appends advice about its own flags ("; if the root CA is installed locally,
      // try running Node.js with --use-system-ca"), which is not the operator's to take.
      const message = link instanceof Error ? firstLine(link.message).split(';')[0] : code;
      return { kind: 'tls', cause: `TLS: ${message} (${code})`, code };
    }
  }
  if (chain.some((e) => e instanceof Error && e.name === 'TimeoutError')) {
    return { kind: 'unreachable', cause: 'timeout: no answer in time', code: 'TimeoutError' };
  }
  // The innermost message says most ("fetch failed" wraps the real one).
  const innermost = chain.findLast((e) => e instanceof Error && e.message !== '');
  const message =
    innermost instanceof Error ? firstLine(innermost.message) : firstLine(String(error));
  return { kind: 'other', cause: message, code: codeOf(innermost) };
}

/**
 * The condition a problem puts its source in. Every kind but `other` is one condition for
 * the whole server, told apart by its code (refused and timed out are two; a 403 on pods and
 * one on nodes are one: the same user lacking rights, named once). `other` (a 404 for a CRD
 * not installed) belongs to its resource.
 */
const conditionOf = (problem: ApiProblem, source: string): string =>
  problem.kind === 'other'
    ? `other ${source}: ${problem.cause}`
    : // An outage is one condition however each connection learns of it: a watch cut
      // (socket closed, reset) and the refusals after it are the same server gone.
      problem.kind === 'unauthorized' ||
        problem.kind === 'forbidden' ||
        problem.kind === 'unreachable'
      ? problem.kind
      : `${problem.kind} ${problem.code ?? problem.cause}`;

const LOG_LINES: Readonly<Record<ApiProblemKind, { level: 'warn' | 'error'; message: string }>> = {
  unreachable: { level: 'warn', message: 'API server unreachable; retrying' },
  tls: { level: 'error', message: 'API server TLS handshake failed; retrying' },
  unauthorized: { level: 'error', message: 'API server refused the credentials; retrying' },
  forbidden: { level: 'error', message: 'API server forbids the requests; retrying' },
  server: { level: 'warn', message: 'API server failing; retrying' },
  other: { level: 'warn', message: 'API request failing; retrying' },
};

/** Who talks to whom: put in the log lines, never the credentials themselves. */
export interface ApiTarget {
  readonly server: string;
  /** The kubeconfig user's name (in a pod, client-node's `inClusterUser`). */
  readonly user: string | undefined;
}

export const apiTarget = (kc: KubeConfig): ApiTarget => ({
  server: kc.getCurrentCluster()?.server ?? '',
  user: kc.getCurrentUser()?.name,
});

/** What a retrying caller (an informer, the leader elector) reports to; tests fake it. */
export interface ApiHealthReporter {
  /** `source` failed (a resource's list or watch, the lease); called on every retry. */
  failed(source: string, error: unknown): ApiProblem;
  /** `source` got through. */
  ok(source: string): void;
}

/**
 * One log line when a problem starts, one when it is over, however many sources retry into
 * it in between (see conditionOf). A source moving from one problem to another logs the new
 * one if no other source has it already; the per-retry lines are the callers' (debug).
 */
export class ApiHealth implements ApiHealthReporter {
  readonly #target: ApiTarget;
  readonly #logger: Logger;
  /** source → the condition it is in (absent: fine). */
  readonly #conditions = new Map<string, string>();

  constructor(target: ApiTarget, logger: Logger = silentLogger) {
    this.#target = target;
    this.#logger = logger;
  }

  /** The conditions being retried now, for tests and the readiness reason. */
  get problems(): readonly string[] {
    return [...new Set(this.#conditions.values())];
  }

  failed(source: string, error: unknown): ApiProblem {
    const problem = apiProblem(error);
    const condition = conditionOf(problem, source);
    const before = this.#conditions.get(source);
    if (before === condition) return problem;
    const known = this.#holders(condition) > 0;
    this.#conditions.set(source, condition);
    if (!known) {
      const line = LOG_LINES[problem.kind];
      this.#logger[line.level](line.message, {
        server: this.#target.server,
        ...(problem.kind === 'unauthorized' || problem.kind === 'forbidden'
          ? { user: this.#target.user ?? '(none)' }
          : {}),
        // The first source to meet it: for a 403, the resource the user may not read.
        ...(problem.kind === 'forbidden' || problem.kind === 'other' ? { resource: source } : {}),
        cause: problem.cause,
        ...(problem.code === undefined ? {} : { code: problem.code }),
      });
    }
    return problem;
  }

  ok(source: string): void {
    const before = this.#conditions.get(source);
    if (before === undefined) return;
    this.#conditions.delete(source);
    if (this.#holders(before) === 0) {
      this.#logger.info('API server answering again', {
        server: this.#target.server,
        was: before,
      });
    }
  }

  #holders(condition: string): number {
    let n = 0;
    for (const c of this.#conditions.values()) if (c === condition) n++;
    return n;
  }
}

export interface StartupCheckOptions {
  /** How long to keep retrying an unreachable or failing server. Default 30 s. */
  readonly budgetMs?: number;
  /** First delay between attempts; doubles up to `maxDelayMs`. Defaults 1 s and 8 s. */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Deadline of one attempt; the last one may end this much after the budget. Default 10 s. */
  readonly attemptTimeoutMs?: number;
  readonly sleep?: Sleep;
  readonly now?: () => number;
  /** Called after every failed attempt that will be retried (debug logging). */
  readonly onRetry?: (attempt: number, problem: ApiProblem, delayMs: number) => void;
  /** The request; `GET /version` through `getJson` unless a test replaces it. */
  readonly probe?: (signal: AbortSignal) => Promise<unknown>;
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;

/**
 * Makes sure the API server answers, with these credentials, before anything starts:
 * `GET /version` (every authenticated user may read it; a bad token gets 401). A TLS
 * failure, refused credentials or any answer that retrying cannot change fail at once; no
 * answer (and 429/5xx) is retried with backoff until the budget is spent. Throws a
 * StartupError whose message is one line naming the server and the cause.
 */
export async function checkApiServer(
  kc: KubeConfig,
  options: StartupCheckOptions = {},
): Promise<void> {
  const target = apiTarget(kc);
  const budgetMs = options.budgetMs ?? 30_000;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
  const sleep = options.sleep ?? realSleep;
  const now = options.now ?? (() => performance.now());
  const probe = options.probe ?? ((signal: AbortSignal) => getJson(kc, '/version', {}, signal));
  const startedAt = now();
  let delayMs = options.initialDelayMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    try {
      await probe(AbortSignal.timeout(attemptTimeoutMs));
      return;
    } catch (error) {
      const problem = apiProblem(error);
      const server = `API server ${target.server}`;
      switch (problem.kind) {
        case 'unauthorized':
          throw new StartupError(
            `${server} refused the credentials of user "${target.user ?? '(none)'}" (${problem.cause})`,
          );
        case 'tls':
          throw new StartupError(`${server}: ${problem.cause}`);
        case 'unreachable':
        case 'server': {
          const elapsed = now() - startedAt;
          if (elapsed >= budgetMs) {
            const tries = attempt === 1 ? '1 attempt' : `${attempt} attempts`;
            const what = problem.kind === 'server' ? 'failing' : 'unreachable';
            throw new StartupError(
              `${server} ${what} after ${tries} in ${seconds(elapsed)}: ${problem.cause}`,
            );
          }
          // The last wait ends with the budget, so the last attempt is made at its end.
          const waitMs = Math.min(delayMs, budgetMs - elapsed);
          options.onRetry?.(attempt, problem, waitMs);
          await sleep(waitMs, new AbortController().signal);
          delayMs = Math.min(delayMs * 2, maxDelayMs);
          break;
        }
        case 'forbidden':
          // Authenticated; whether each list is allowed is the informers' business.
          return;
        case 'other':
          throw new StartupError(`${server}: ${problem.cause}`);
      }
    }
  }
}
