/** The two calls an informer makes, over client-node: a paginated list and a watch. */
import { Watch, type KubeConfig, type RequestContext } from '@kubernetes/client-node';

import { getJson, USER_AGENT } from './client.ts';
import { apiFailure } from './failure.ts';
import { int, record, text, type JsonRecord } from './json.ts';

export interface ListPage {
  readonly items: readonly unknown[];
  /** The snapshot's resourceVersion, the same on every page of one list. */
  readonly resourceVersion: string;
  /** Token for the next page; undefined on the last one. */
  readonly continue: string | undefined;
}

/** Why a watch stream ended. */
export type WatchEnd =
  /** The server (timeoutSeconds) or the client (inactivity) closed it: resume from the last resourceVersion. */
  | { readonly kind: 'closed' }
  /** 410 Gone, "too old resource version": the history is compacted, relist. */
  | { readonly kind: 'expired'; readonly message: string }
  /** Could not connect, or the connection broke: retry after a backoff. */
  | { readonly kind: 'failed'; readonly message: string; readonly error?: unknown };

export type RawEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface ListWatchSource {
  /** The collection's URL, for log lines (the server and the path). */
  readonly url?: string;
  list(
    query: { readonly limit: number; readonly continue?: string },
    signal: AbortSignal,
  ): Promise<ListPage>;
  /**
   * Streams events to `onEvent` until the stream ends or `signal` aborts; never rejects.
   * `onOpen` is called once the server has accepted the watch (200), before any event.
   */
  watch(
    query: { readonly resourceVersion: string; readonly timeoutSeconds: number },
    onEvent: (type: RawEventType, object: unknown) => void,
    signal: AbortSignal,
    onOpen?: () => void,
  ): Promise<WatchEnd>;
}

export interface Selectors {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

const EVENT_TYPES: ReadonlySet<string> = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);

/** A 410 as a watch ERROR event carries it: `{kind: Status, code: 410, reason: Expired|Gone}`. */
const isExpiredStatus = (status: JsonRecord): boolean =>
  int(status['code']) === 410 || status['reason'] === 'Expired' || status['reason'] === 'Gone';

/**
 * The kubeconfig as client-node's Watch uses it (the current cluster, and credentials per
 * request), adding our User-Agent: the Watch sends none of its own, so a watch would show as
 * "undici" in the API server's audit log instead of as the operator.
 */
export function watchConfig(kc: KubeConfig): KubeConfig {
  const config = Object.create(kc) as KubeConfig;
  config.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await kc.applySecurityAuthentication(context);
    context.setHeaderParam('User-Agent', USER_AGENT);
  };
  return config;
}

/** The list and watch of one collection path through client-node. */
export function kubeListWatch(
  kc: KubeConfig,
  path: string,
  selectors: Selectors = {},
): ListWatchSource {
  const watcher = new Watch(watchConfig(kc));
  return {
    url: `${kc.getCurrentCluster()?.server ?? ''}${path}`,
    async list(query, signal) {
      const body = record(
        await getJson(
          kc,
          path,
          {
            limit: String(query.limit),
            continue: query.continue,
            labelSelector: selectors.labelSelector,
            fieldSelector: selectors.fieldSelector,
          },
          signal,
        ),
      );
      const meta = record(body['metadata']);
      const next = text(meta['continue']);
      return {
        items: Array.isArray(body['items']) ? (body['items'] as unknown[]) : [],
        resourceVersion: text(meta['resourceVersion']) ?? '',
        continue: next === undefined || next === '' ? undefined : next,
      };
    },

    watch(query, onEvent, signal, onOpen) {
      return new Promise<WatchEnd>((resolve) => {
        let controller: AbortController | undefined;
        let errorStatus: JsonRecord | undefined;
        let finished = false;
        const abort = (): void => controller?.abort();
        const finish = (end: WatchEnd): void => {
          finished = true;
          signal.removeEventListener('abort', abort);
          resolve(end);
        };
        signal.addEventListener('abort', abort, { once: true });

        const onLine = (type: string, object: unknown): void => {
          if (type === 'ERROR') {
            // The server closes the stream after an ERROR; make sure of it.
            errorStatus = record(object);
            abort();
          } else if (EVENT_TYPES.has(type)) {
            onEvent(type as RawEventType, object);
          }
        };
        const onDone = (error: unknown): void => {
          if (errorStatus !== undefined) {
            const message = text(errorStatus['message']) ?? 'watch ERROR event';
            finish(
              isExpiredStatus(errorStatus)
                ? { kind: 'expired', message }
                : { kind: 'failed', message },
            );
            return;
          }
          if (error === null || error === undefined || signal.aborted) {
            finish({ kind: 'closed' });
            return;
          }
          // client-node's inactivity timer: nothing arrived for 30 s, nothing is lost.
          if (error instanceof Error && error.name === 'TimeoutError') {
            finish({ kind: 'closed' });
            return;
          }
          const failure = apiFailure(error);
          finish(
            failure.status === 410
              ? { kind: 'expired', message: failure.message }
              : { kind: 'failed', message: failure.message, error },
          );
        };

        watcher
          .watch(
            path,
            {
              resourceVersion: query.resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: query.timeoutSeconds,
              labelSelector: selectors.labelSelector,
              fieldSelector: selectors.fieldSelector,
            },
            onLine,
            onDone,
          )
          .then(
            (c) => {
              controller = c;
              if (signal.aborted) c.abort();
              // client-node resolves after the response; a refusal has finished already.
              else if (!finished) onOpen?.();
            },
            (error: unknown) => {
              // Thrown before the request was made (no cluster, credentials plugin failed).
              finish({ kind: 'failed', message: apiFailure(error).message, error });
            },
          );
      });
    },
  };
}
