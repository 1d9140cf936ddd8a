import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

import type { Registry } from 'prom-client';
import { errorMessage } from '../util/errors.ts';

/** Whether the operator can do its work now; the reason is shown by `/readyz` when it cannot. */
export type Readiness =
  { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface MetricsServerOptions {
  readonly registry: Registry;
  /** Address to bind, e.g. `0.0.0.0` in a pod or `127.0.0.1` in tests. */
  readonly host: string;
  /** Port to bind; 0 picks a free one (see `MetricsServer.port`). */
  readonly port: number;
  /** Asked on every `/readyz`: caches synced, leader election joined, and so on. */
  readonly ready: () => Readiness;
}

export interface MetricsServer {
  readonly host: string;
  /** The bound port (the chosen one when 0 was asked for). */
  readonly port: number;
  /** Stops listening and closes idle keep-alive connections; resolves when all are closed. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text format), `/healthz` (200 while the process runs) and
 * `/readyz` (200 when `ready()` says so, else 503 with its reason).
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    void handle(options, request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      reject(
        new Error(
          `metrics server: cannot listen on ${options.host}:${options.port}: ${error.message}`,
        ),
      );
    });
    server.listen(options.port, options.host, () => {
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error(`metrics server: ${options.host}:${options.port} is not a TCP address`);
  }
  return {
    host: options.host,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
        // Prometheus keeps connections alive between scrapes; do not wait for it to hang up.
        server.closeIdleConnections();
      }),
  };
}

async function handle(
  options: MetricsServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    reply(request, response, 405, 'method not allowed\n');
    return;
  }
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  switch (path) {
    case '/metrics':
      try {
        const text = await options.registry.metrics();
        reply(request, response, 200, text, options.registry.contentType);
      } catch (error: unknown) {
        reply(request, response, 500, `collecting metrics failed: ${describe(error)}\n`);
      }
      return;
    case '/healthz':
      reply(request, response, 200, 'ok\n');
      return;
    case '/readyz': {
      const readiness = checkReady(options.ready);
      if (readiness.ready) reply(request, response, 200, 'ok\n');
      else reply(request, response, 503, `not ready: ${readiness.reason}\n`);
      return;
    }
    default:
      reply(request, response, 404, 'not found\n');
  }
}

/** A readiness check that throws is a not-ready answer, not a crashed probe. */
function checkReady(ready: () => Readiness): Readiness {
  try {
    return ready();
  } catch (error: unknown) {
    return { ready: false, reason: `readiness check failed: ${describe(error)}` };
  }
}

function reply(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

function describe(error: unknown): string {
  return errorMessage(error);
}
