// The few API calls that cluster startup makes (health checks, creating nodes,
// readiness polls), over node:https with the admin client certificate. Going
// direct avoids spawning kubectl dozens of times while polling.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

export interface HttpResponse {
  status: number;
  body: string;
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

const REQUEST_TIMEOUT_MS = 5000;

export class KubeHttp {
  readonly server: string;
  readonly #agent: Agent;

  /** tls undefined: no client certificate and no server verification (component /healthz). */
  constructor(server: string, tls: TlsFiles | undefined) {
    this.server = server;
    this.#agent =
      tls === undefined
        ? new Agent({ keepAlive: true, rejectUnauthorized: false })
        : new Agent({
            keepAlive: true,
            ca: readFileSync(tls.ca),
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
          });
  }

  send(method: string, path: string, body?: unknown): Promise<HttpResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.server),
        {
          method,
          agent: this.#agent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: { accept: 'application/json', 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** GET returning the parsed body, or undefined when the object is absent (404). */
  async get(path: string): Promise<unknown> {
    const res = await this.send('GET', path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${res.body}`);
    return JSON.parse(res.body) as unknown;
  }

  /** True when path answers 200; false on any error (not up yet). */
  async ok(path: string): Promise<boolean> {
    try {
      return (await this.send('GET', path)).status === 200;
    } catch {
      return false;
    }
  }

  close(): void {
    this.#agent.destroy();
  }
}
