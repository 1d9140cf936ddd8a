/**
 * Bulk requests to the local control plane over one HTTP/2 connection, with the admin client
 * certificate from its kubeconfig (system:masters: exempt from API priority and fairness, so
 * the only limits are the server's speed and the caller's concurrency). One connection holds
 * every request in flight as a stream: no TLS handshake or socket per request.
 */
import { readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { gunzipSync } from 'node:zlib';

export interface H2Response {
  readonly status: number;
  readonly body: string;
  /** Bytes on the wire (compressed, when the server gzipped the body). */
  readonly wireBytes: number;
}

/** A request the server will never accept: not retried. */
export class Refused extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class H2Api {
  readonly #session: ClientHttp2Session;

  constructor(kubeconfigPath: string) {
    const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
    };
    const cluster = config.clusters[0]?.cluster;
    const user = config.users[0]?.user;
    if (cluster === undefined || user === undefined) throw new Error('kubeconfig: no cluster/user');
    const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
    this.#session = connect(cluster.server, {
      ca: b64(cluster['certificate-authority-data']),
      cert: b64(user['client-certificate-data']),
      key: b64(user['client-key-data']),
    });
    this.#session.on('error', () => undefined); // each stream reports its own failure
  }

  send(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    gzip = false,
  ): Promise<H2Response> {
    const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = constants;
    return new Promise((resolve, reject) => {
      const stream = this.#session.request({
        [HTTP2_HEADER_METHOD]: method,
        [HTTP2_HEADER_PATH]: path,
        accept: 'application/json',
        'content-type': contentType,
        ...(gzip ? { 'accept-encoding': 'gzip' } : {}),
      });
      stream.setTimeout(120_000, () => {
        stream.close(constants.NGHTTP2_CANCEL);
      });
      let status = 0;
      let gzipped = false;
      stream.on('response', (headers) => {
        status = Number(headers[HTTP2_HEADER_STATUS] ?? 0);
        gzipped = headers['content-encoding'] === 'gzip';
      });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const plain = gzipped ? gunzipSync(raw) : raw;
        resolve({ status, body: plain.toString('utf8'), wireBytes: raw.length });
      });
      stream.on('close', () => {
        if (status === 0) reject(new Error(`${method} ${path}: stream closed without a response`));
      });
      stream.on('error', reject);
      stream.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  async get<T>(path: string): Promise<T> {
    const res = await this.send('GET', path);
    if (res.status !== 200) {
      throw new Error(`GET ${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    }
    return JSON.parse(res.body) as T;
  }

  /** POST that retries on 429, 5xx and broken streams (the API server under load). */
  async create<T>(path: string, body: unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.send('POST', path, body);
        if (res.status === 201 || res.status === 200) return JSON.parse(res.body) as T;
        if (res.status !== 429 && res.status < 500) {
          throw new Refused(`POST ${path}: HTTP ${res.status}: ${res.body.slice(0, 500)}`);
        }
        if (attempt >= 8) throw new Refused(`POST ${path}: HTTP ${res.status} ${attempt} times`);
      } catch (err) {
        if (err instanceof Refused || attempt >= 8) throw err;
      }
      await sleep(250 * attempt);
    }
  }

  async mergePatch(path: string, patch: unknown): Promise<void> {
    const res = await this.send('PATCH', path, patch, 'application/merge-patch+json');
    if (res.status !== 200) {
      throw new Error(`PATCH ${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    }
  }

  close(): void {
    this.#session.close();
  }
}
