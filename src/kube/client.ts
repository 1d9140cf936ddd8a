import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  Observable,
  RequestContext,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
  setHeaderOptions,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type PatchStrategy,
  type SecurityAuthentication,
} from '@kubernetes/client-node';

import { isRecord, record, text } from './json.ts';

/** The field manager every write carries, so GitOps tools can tell our fields apart. */
export const FIELD_MANAGER = 'placement-operator';

export interface KubeConfigOptions {
  /** A kubeconfig file. The entry point resolves `--kubeconfig` and `KUBECONFIG` into this. */
  readonly kubeconfig?: string;
  /** The context to use instead of the file's current-context. */
  readonly context?: string;
  /** Use the pod's service account (ignored when `kubeconfig` is given). */
  readonly inCluster?: boolean;
}

/**
 * Loads a kubeconfig: the given file, else the in-cluster service account when asked, else
 * `~/.kube/config`. Never reads the environment itself (the entry point does), and never
 * falls back silently to `localhost:8080` as client-node's `loadFromDefault` would.
 */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  if (options.kubeconfig !== undefined) {
    kc.loadFromFile(options.kubeconfig);
  } else if (options.inCluster === true) {
    kc.loadFromCluster();
  } else {
    const file = join(homedir(), '.kube', 'config');
    if (!existsSync(file)) {
      throw new Error(`no kubeconfig: pass one, run in a cluster, or create ${file}`);
    }
    kc.loadFromFile(file);
  }
  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null) {
      throw new Error(`kubeconfig has no context "${options.context}"`);
    }
    kc.setCurrentContext(options.context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new Error(`kubeconfig context "${kc.getCurrentContext()}" names no cluster`);
  }
  return kc;
}

/** The typed API groups the operator talks to, sharing one kubeconfig. */
export interface KubeClients {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly customObjects: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
}

/** The typed clients, all sharing `authFor(kubeConfig)`'s connections. */
export function makeKubeClients(kubeConfig: KubeConfig): KubeClients {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: authFor(kubeConfig) },
    middleware: [setHeaderMiddleware('User-Agent', USER_AGENT)],
  });
  return {
    kubeConfig,
    core: new CoreV1Api(configuration),
    apps: new AppsV1Api(configuration),
    batch: new BatchV1Api(configuration),
    customObjects: new CustomObjectsApi(configuration),
    coordination: new CoordinationV1Api(configuration),
    events: new EventsV1Api(configuration),
  };
}

const USER_AGENT = 'placement-operator';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * client-node 2.0.1 builds a new undici Agent, so a new TLS connection, for every request
 * (KubeConfig.createDispatcher is not cached). This keeps the first dispatcher made for the
 * current cluster and user and gives it to later requests, so they share keep-alive
 * connections (about 4x less latency per request on the test cluster, and no handshake per
 * workload write). Credentials sent as headers (tokens) are still applied per request;
 * client certificates rotated on disk under the same path are not picked up.
 */
class SharedConnections implements SecurityAuthentication {
  readonly #kc: KubeConfig;
  #identity = '';
  #dispatcher: Dispatcher | undefined;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  getName(): string {
    return 'placement-operator/shared-connections';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.#kc.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    const identity = JSON.stringify([this.#kc.getCurrentCluster(), this.#kc.getCurrentUser()]);
    if (this.#dispatcher === undefined || identity !== this.#identity) {
      // Another context or user: a new pool; the old one finishes what it carries.
      void this.#dispatcher?.close();
      this.#identity = identity;
      this.#dispatcher = fresh;
      return;
    }
    context.setDispatcher(this.#dispatcher);
  }
}

const sharedConnections = new WeakMap<KubeConfig, SharedConnections>();

/** The authentication (and connection pool) every request made with `kc` goes through. */
export function authFor(kc: KubeConfig): SecurityAuthentication {
  let auth = sharedConnections.get(kc);
  if (auth === undefined) {
    auth = new SharedConnections(kc);
    sharedConnections.set(kc, auth);
  }
  return auth;
}

/** Requests without a deadline would hang on a stuck API server; this is the default one. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const deadline = (timeoutMs: number): ObservableMiddleware => ({
  pre: (context) => {
    context.setSignal(AbortSignal.timeout(timeoutMs));
    return new Observable(Promise.resolve(context));
  },
  post: (response) => new Observable(Promise.resolve(response)),
});

/** Per-request options for the typed APIs: a deadline, and the patch content type. */
export function requestOptions(
  options: { readonly patch?: PatchStrategy; readonly timeoutMs?: number } = {},
): ConfigurationOptions {
  const base: ConfigurationOptions = {
    middleware: [deadline(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)],
    middlewareMergeStrategy: 'append',
  };
  return options.patch === undefined ? base : setHeaderOptions('Content-Type', options.patch, base);
}

/**
 * GET of a path as plain JSON. The typed list calls turn every item into model classes
 * (dates into Date objects, `continue` into `_continue`); informers want the same raw shape
 * that watch events carry, and to drop it as soon as it is trimmed.
 */
export async function getJson(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<unknown> {
  return requestJson(kc, HttpMethod.GET, path, query, signal);
}

/** A raw JSON request (`body` as `contentType`); throws ApiException on a non-2xx answer. */
export async function requestJson(
  kc: KubeConfig,
  method: HttpMethod,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
  body?: { readonly text: string; readonly contentType: string },
): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const request = new RequestContext(`${cluster.server}${path}`, method);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) request.setQueryParam(name, value);
  }
  request.setHeaderParam('Accept', 'application/json');
  request.setHeaderParam('User-Agent', USER_AGENT);
  if (body !== undefined) {
    request.setHeaderParam('Content-Type', body.contentType);
    request.setBody(body.text);
  }
  await authFor(kc).applySecurityAuthentication(request);
  request.setSignal(AbortSignal.any([signal, AbortSignal.timeout(DEFAULT_REQUEST_TIMEOUT_MS * 2)]));
  const response = await new IsomorphicFetchHttpLibrary().send(request).toPromise();
  const text = await response.body.text();
  if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
    throw new ApiException(response.httpStatusCode, `${method} ${path}`, text, response.headers);
  }
  return text === '' ? null : (JSON.parse(text) as unknown);
}

/** What went wrong with an API call, whatever shape the error came in. */
export interface ApiFailure {
  /** HTTP status; undefined when no response arrived (network, timeout). */
  readonly status: number | undefined;
  /** The Status reason (`Conflict`, `NotFound`, `Expired`, ...), when the server sent one. */
  readonly reason: string | undefined;
  readonly message: string;
  /** `details.causes[].type` of the Status (e.g. `DisruptionBudget`). */
  readonly causes: readonly string[];
}

/** Reads an ApiException (its body is the Status JSON text), a watch error or a network error. */
export function apiFailure(error: unknown): ApiFailure {
  if (error instanceof ApiException) {
    const status = statusBody(error.body);
    return {
      status: error.code,
      reason: status.reason,
      message: status.message ?? `HTTP ${error.code}`,
      causes: status.causes,
    };
  }
  if (error instanceof Error) {
    const code = (error as { statusCode?: unknown }).statusCode;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return {
      status: typeof code === 'number' ? code : undefined,
      reason: undefined,
      message: `${error.message}${cause}`,
      causes: [],
    };
  }
  return { status: undefined, reason: undefined, message: String(error), causes: [] };
}

interface StatusBody {
  reason: string | undefined;
  message: string | undefined;
  causes: string[];
}

function statusBody(body: unknown): StatusBody {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { reason: undefined, message: body === '' ? undefined : body, causes: [] };
    }
  }
  if (!isRecord(parsed)) return { reason: undefined, message: undefined, causes: [] };
  const causes = record(parsed['details'])['causes'];
  return {
    reason: text(parsed['reason']),
    message: text(parsed['message']),
    causes: Array.isArray(causes)
      ? causes
          .map((cause) => text(record(cause)['type']))
          .filter((t): t is string => t !== undefined)
      : [],
  };
}

/** Worth retrying: no response, throttled, or the server's fault. */
export const isRetryable = (failure: ApiFailure): boolean =>
  failure.status === undefined || failure.status === 429 || failure.status >= 500;
