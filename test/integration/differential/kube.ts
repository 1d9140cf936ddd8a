// A small JSON client for the differential test. Each verdict costs about ten API calls
// (snapshot, create, a few reads, delete); one kubectl process per call would cost far
// more than the scheduler's decision itself. Objects stay plain JSON, in the shape the API
// server serves them, so the engine and the fixtures see exactly what `kubectl get -o json`
// would give them.
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RequestContext,
} from '@kubernetes/client-node';

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** How long one set of credentials and its connection pool is reused before it is read again. */
const AUTH_REUSE_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

export class KubeApi {
  private readonly kc: KubeConfig;
  private readonly server: string;
  private readonly http = new IsomorphicFetchHttpLibrary();
  private auth: { template: RequestContext; until: number } | undefined;

  constructor(kubeconfigPath: string) {
    this.kc = new KubeConfig();
    this.kc.loadFromFile(kubeconfigPath);
    const cluster = this.kc.getCurrentCluster();
    if (cluster === null) throw new Error(`${kubeconfigPath}: no current cluster`);
    this.server = cluster.server;
  }

  /** One request; any HTTP status is returned, only transport failures throw. */
  async request(
    method: HttpMethod,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<ApiResponse> {
    const request = new RequestContext(`${this.server}${path}`, method);
    const auth = await this.authTemplate();
    for (const [k, v] of Object.entries(auth.getHeaders())) request.setHeaderParam(k, v);
    const dispatcher = auth.getDispatcher();
    if (dispatcher !== undefined) request.setDispatcher(dispatcher);
    request.setHeaderParam('Accept', 'application/json');
    if (body !== undefined) {
      request.setHeaderParam('Content-Type', contentType);
      request.setBody(JSON.stringify(body));
    }
    request.setSignal(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    const response = await this.http.send(request).toPromise();
    const text = await response.body.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text for the error message
    }
    return { status: response.httpStatusCode, body: parsed };
  }

  /** A request that must succeed (2xx); the error names the call and the server's message. */
  async ok<T>(method: HttpMethod, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.request(method, path, body, contentType);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`${method} ${path}: HTTP ${res.status}: ${statusMessage(res.body)}`);
    }
    return res.body as T;
  }

  get<T>(path: string): Promise<T> {
    return this.ok<T>(HttpMethod.GET, path);
  }

  private async authTemplate(): Promise<RequestContext> {
    if (this.auth !== undefined && Date.now() < this.auth.until) return this.auth.template;
    const template = new RequestContext(this.server, HttpMethod.GET);
    await this.kc.applySecurityAuthentication(template);
    this.auth = { template, until: Date.now() + AUTH_REUSE_MS };
    return template;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `pollMs` until it gives a value; past `timeoutMs` fails, naming `what`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  pollMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(pollMs);
  }
}

export function statusMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null && 'message' in body) {
    return String(body.message);
  }
  return typeof body === 'string' ? body : JSON.stringify(body);
}

export { HttpMethod };
