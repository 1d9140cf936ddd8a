/** One read of everything placement depends on, as `kubectl get ... -A -o json` would print it. */
import { ApiException, type KubeConfig } from '@kubernetes/client-node';

import { GROUP, VERSION } from '../api/policy.ts';
import { getJson } from './client.ts';
import { record, text } from './json.ts';
import { EXCEPTION_PLURAL, POLICY_PLURAL, WORKLOAD_API } from './resources.ts';

interface Collection {
  readonly kind: string;
  readonly apiVersion: string;
  readonly path: string;
  /** A CustomResourceDefinition that may be missing: a 404 reads as no objects. */
  readonly optional?: boolean;
}

const PLACEMENT = `/apis/${GROUP}/${VERSION}`;

/** The collections the audit and the plan read, every namespace. */
export const CLUSTER_COLLECTIONS: readonly Collection[] = [
  { kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes' },
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods' },
  ...Object.entries(WORKLOAD_API).map(([kind, api]) => ({
    kind,
    apiVersion: api.groupVersion.replace('/apis/', ''),
    path: `${api.groupVersion}/${api.plural}`,
  })),
  { kind: 'Job', apiVersion: 'batch/v1', path: '/apis/batch/v1/jobs' },
  ...Object.entries(POLICY_PLURAL).map(([kind, plural]) => ({
    kind,
    apiVersion: `${GROUP}/${VERSION}`,
    path: `${PLACEMENT}/${plural}`,
    optional: true,
  })),
  {
    kind: 'PlacementException',
    apiVersion: `${GROUP}/${VERSION}`,
    path: `${PLACEMENT}/${EXCEPTION_PLURAL}`,
    optional: true,
  },
];

const PAGE = 500;

/**
 * Lists every object of CLUSTER_COLLECTIONS, page by page, each item with its kind and
 * apiVersion filled in (a list's items carry neither). Reads only; throws what the API
 * server answered for any collection but a missing optional one.
 */
export async function readClusterItems(kc: KubeConfig, signal: AbortSignal): Promise<unknown[]> {
  const lists = await Promise.all(
    CLUSTER_COLLECTIONS.map(async (c) => {
      const items: unknown[] = [];
      let next: string | undefined;
      do {
        let body;
        try {
          body = record(await getJson(kc, c.path, { limit: String(PAGE), continue: next }, signal));
        } catch (err) {
          if (c.optional === true && err instanceof ApiException && err.code === 404) return [];
          throw err;
        }
        for (const item of Array.isArray(body['items']) ? (body['items'] as unknown[]) : [])
          items.push({ ...record(item), kind: c.kind, apiVersion: c.apiVersion });
        const token = text(record(body['metadata'])['continue']);
        next = token === undefined || token === '' ? undefined : token;
      } while (next !== undefined);
      return items;
    }),
  );
  return lists.flat();
}
