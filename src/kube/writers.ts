/**
 * Writes: workload template affinity, policy status and finalizers, pod eviction. Each is a
 * JSON merge patch guarded by the resourceVersion the decision was made on, so a write based
 * on a stale cache fails with 409 instead of undoing someone else's change.
 */
import { PatchStrategy, type V1Eviction } from '@kubernetes/client-node';

import { FIELD_MANAGER } from '../api/cluster.ts';
import { GROUP, VERSION } from '../api/policy.ts';
import type { PlacementPolicy } from '../api/policy.ts';
import type { PlacementException } from '../api/exception.ts';
import { requestOptions, type KubeClients } from './client.ts';
import { apiFailure, isInvalid, isRetryable, type ApiFailure } from './failure.ts';
import { record, text, type Plain } from './json.ts';
import { mergeDiff } from '../util/json.ts';
import { EXCEPTION_PLURAL, POLICY_PLURAL } from './resources.ts';
import { objectKey } from './transforms.ts';
import type { CachedPolicy } from './types.ts';
import {
  APPLIED_ANNOTATION,
  POLICY_FINALIZER,
  type AffinityWrite,
  type WriteResult,
} from '../api/cluster.ts';

export interface WriterOptions {
  /** Per-request deadline. Default 30 s. */
  readonly timeoutMs?: number;
}

/** How a failed write reads to the reconciler; the message names the object and the API's reason. */
export function failedWrite(error: unknown, what: string): WriteResult {
  const failure = apiFailure(error);
  if (failure.status === 409) return { kind: 'conflict' };
  if (failure.status === 404) return { kind: 'gone' };
  const status = failure.status === undefined ? '' : `HTTP ${failure.status}: `;
  return {
    kind: 'failed',
    message: `${what}: ${status}${failure.message}`,
    retryable: isRetryable(failure),
    ...(isInvalid(failure) ? { invalid: failure.fields } : {}),
  };
}

const written = (resourceVersion: string): WriteResult => ({ kind: 'written', resourceVersion });
const versionOf = (object: unknown): string =>
  text(record(record(object)['metadata'])['resourceVersion']) ?? '';

/**
 * The merge patch for an affinity write: the resourceVersion precondition, the annotation
 * (null removes it), and the RFC 7396 difference between the cached template affinity and
 * the new one, so the owner's fields and ordering stay as they are; the same for the
 * template's topologySpreadConstraints when the write carries them. `undefined` when the
 * workload already looks like that.
 */
export function affinityPatch(write: AffinityWrite): Record<string, unknown> | undefined {
  const { workload } = write;
  const affinity = mergeDiff(workload.affinity, write.affinity);
  // A merge patch replaces a list whole; the resourceVersion guards the owner's entries.
  const spread =
    write.topologySpreadConstraints === undefined
      ? undefined
      : mergeDiff(workload.topologySpreadConstraints, write.topologySpreadConstraints ?? undefined);
  const annotation = write.appliedAnnotation ?? null;
  if (
    affinity === undefined &&
    spread === undefined &&
    (workload.annotations[APPLIED_ANNOTATION] ?? null) === annotation
  ) {
    return undefined;
  }
  const patch: Record<string, unknown> = {
    metadata: {
      resourceVersion: workload.resourceVersion,
      annotations: { [APPLIED_ANNOTATION]: annotation },
    },
  };
  if (affinity !== undefined || spread !== undefined) {
    const template = {
      spec: {
        ...(affinity === undefined ? {} : { affinity }),
        ...(spread === undefined ? {} : { topologySpreadConstraints: spread }),
      },
    };
    patch['spec'] =
      workload.kind === 'CronJob' ? { jobTemplate: { spec: { template } } } : { template };
  }
  return patch;
}

/** What every writer holds: the API clients it calls and its per-request deadline. */
abstract class ApiWriter<K extends keyof KubeClients> {
  protected readonly clients: Pick<KubeClients, K>;
  protected readonly timeoutMs: number | undefined;

  constructor(clients: Pick<KubeClients, K>, options: WriterOptions = {}) {
    this.clients = clients;
    this.timeoutMs = options.timeoutMs;
  }
}

/** Implements ports.ts's WorkloadWriter. */
export class KubeWorkloadWriter extends ApiWriter<'apps' | 'batch'> {
  async writeAffinity(write: AffinityWrite): Promise<WriteResult> {
    const { workload } = write;
    const patch = affinityPatch(write);
    if (patch === undefined) return written(workload.resourceVersion);
    const request = {
      name: workload.name,
      namespace: workload.namespace,
      body: patch,
      fieldManager: FIELD_MANAGER,
    };
    const options = requestOptions({ patch: PatchStrategy.MergePatch, ...this.#deadline() });
    const { apps, batch } = this.clients;
    try {
      switch (workload.kind) {
        case 'Deployment':
          return written(versionOf(await apps.patchNamespacedDeployment(request, options)));
        case 'StatefulSet':
          return written(versionOf(await apps.patchNamespacedStatefulSet(request, options)));
        case 'ReplicaSet':
          return written(versionOf(await apps.patchNamespacedReplicaSet(request, options)));
        case 'DaemonSet':
          return written(versionOf(await apps.patchNamespacedDaemonSet(request, options)));
        case 'CronJob':
          return written(versionOf(await batch.patchNamespacedCronJob(request, options)));
      }
    } catch (error) {
      return failedWrite(error, `patch ${workload.kind} ${workload.namespace}/${workload.name}`);
    }
  }

  #deadline(): { timeoutMs?: number } {
    return this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs };
  }
}

/** The parts of a policy a write reads: the cached form carries resourceVersion and status. */
type PolicyLike = PlacementPolicy & Partial<Pick<CachedPolicy, 'status'>>;

/** What a status or metadata write reads of a cached object of ours. */
interface Versioned {
  readonly metadata: { readonly resourceVersion?: string };
  readonly status?: unknown;
}

const policyVersion = (object: PlacementPolicy | PlacementException): string | undefined => {
  const version = (object as Versioned).metadata.resourceVersion;
  return version === undefined || version === '' ? undefined : version;
};

/** `metadata` with the resourceVersion precondition when the object carries one. */
const guarded = (
  object: PlacementPolicy | PlacementException,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => {
  const resourceVersion = policyVersion(object);
  return resourceVersion === undefined ? extra : { resourceVersion, ...extra };
};

/** Options of a JSON merge patch, with the writer's deadline. */
const mergePatch = (timeoutMs: number | undefined) =>
  requestOptions({
    patch: PatchStrategy.MergePatch,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

/** Implements ports.ts's PolicyStatusWriter for PlacementPolicy and ClusterPlacementPolicy. */
export class KubePolicyStatusWriter extends ApiWriter<'customObjects'> {
  /**
   * Makes `status` the policy's whole status through the status subresource: the patch is
   * the difference from the cached status, so fields left out of `status` are removed.
   */
  async writeStatus(policy: PlacementPolicy, status: unknown): Promise<WriteResult> {
    const cached = policy as PolicyLike;
    const diff = mergeDiff(cached.status, status);
    if (diff === undefined) return written(policyVersion(cached) ?? '');
    return this.#patch(cached, { metadata: guarded(cached), status: diff }, true);
  }

  /** Adds or removes POLICY_FINALIZER; a no-op (no request) when it is already so. */
  async setFinalizer(policy: PlacementPolicy, present: boolean): Promise<WriteResult> {
    const current = policy.metadata.finalizers ?? [];
    if (current.includes(POLICY_FINALIZER) === present) return written(policyVersion(policy) ?? '');
    const next = present
      ? [...current, POLICY_FINALIZER]
      : current.filter((f) => f !== POLICY_FINALIZER);
    // Lists are replaced whole by a merge patch; the resourceVersion keeps others' finalizers safe.
    const body = { metadata: guarded(policy, { finalizers: next.length > 0 ? next : null }) };
    return this.#patch(policy, body, false);
  }

  async #patch(
    policy: PlacementPolicy,
    body: Record<string, unknown>,
    status: boolean,
  ): Promise<WriteResult> {
    const { name, namespace } = policy.metadata;
    const what = `patch ${policy.kind} ${objectKey(namespace, name)}${status ? ' status' : ''}`;
    const plural = POLICY_PLURAL[policy.kind];
    let target: PlacementTarget = { plural, name };
    if (policy.kind === 'PlacementPolicy') {
      if (namespace === undefined)
        return failedWrite(new Error(`${what}: PlacementPolicy without a namespace`), what);
      target = { plural, namespace, name };
    }
    return patchPlacementObject(this.clients, target, body, status, what, this.timeoutMs);
  }
}

/** A placement.dev object: namespaced when `namespace` is given, else cluster-scoped. */
interface PlacementTarget {
  readonly plural: string;
  readonly namespace?: string;
  readonly name: string;
}

/**
 * Merge-patches a placement.dev object, or its status subresource when `status`; `what` names
 * the write in a failure.
 */
async function patchPlacementObject(
  clients: Pick<KubeClients, 'customObjects'>,
  target: PlacementTarget,
  body: Record<string, unknown>,
  status: boolean,
  what: string,
  timeoutMs: number | undefined,
): Promise<WriteResult> {
  const { customObjects } = clients;
  const { plural, namespace, name } = target;
  const coordinates = { group: GROUP, version: VERSION, plural, name };
  const options = mergePatch(timeoutMs);
  try {
    let result: unknown;
    if (namespace !== undefined) {
      const request = { ...coordinates, namespace, body, fieldManager: FIELD_MANAGER };
      result = status
        ? await customObjects.patchNamespacedCustomObjectStatus(request, options)
        : await customObjects.patchNamespacedCustomObject(request, options);
    } else {
      const request = { ...coordinates, body, fieldManager: FIELD_MANAGER };
      result = status
        ? await customObjects.patchClusterCustomObjectStatus(request, options)
        : await customObjects.patchClusterCustomObject(request, options);
    }
    return written(versionOf(result));
  } catch (error) {
    return failedWrite(error, what);
  }
}

/** Implements the controller's ExceptionStatusWriter: PlacementException status, by merge patch. */
export class KubeExceptionStatusWriter extends ApiWriter<'customObjects'> {
  /** Makes `status` the exception's whole status (the difference from the cached one). */
  async writeStatus(exception: PlacementException, status: unknown): Promise<WriteResult> {
    const diff = mergeDiff((exception as Versioned).status, status);
    if (diff === undefined) return written(policyVersion(exception) ?? '');
    const { name, namespace } = exception.metadata;
    const target = { plural: EXCEPTION_PLURAL, namespace, name };
    const body = { metadata: guarded(exception), status: diff };
    const what = `patch PlacementException ${namespace}/${name} status`;
    return patchPlacementObject(this.clients, target, body, true, what, this.timeoutMs);
  }
}

export type EvictionResult =
  | { readonly kind: 'evicted' }
  /** 429: a PodDisruptionBudget allows no disruption now; try again later. */
  | {
      readonly kind: 'blocked';
      readonly reason: 'blocked by PodDisruptionBudget';
      readonly message: string;
    }
  /** The pod is gone, or is no longer the one asked for (uid precondition). */
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly message: string; readonly retryable: boolean };

const isDisruptionBudgetRefusal = (failure: ApiFailure): boolean =>
  failure.causes.includes('DisruptionBudget') || /disruption budget/i.test(failure.message);

export interface Evictor {
  evict(namespace: string, name: string, dryRun: boolean, uid?: string): Promise<EvictionResult>;
}

/** Evicts through the Eviction API, which honours PodDisruptionBudgets (a delete would not). */
export class KubeEvictor extends ApiWriter<'core'> implements Evictor {
  async evict(
    namespace: string,
    name: string,
    dryRun: boolean,
    uid?: string,
  ): Promise<EvictionResult> {
    const body: Plain<V1Eviction> = {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name, namespace },
      // A StatefulSet pod comes back under the same name: evict only the one judged.
      ...(uid === undefined ? {} : { deleteOptions: { preconditions: { uid } } }),
    };
    const options = requestOptions(
      this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs },
    );
    try {
      await this.clients.core.createNamespacedPodEviction(
        { name, namespace, body, ...(dryRun ? { dryRun: 'All' } : {}) },
        options,
      );
      return { kind: 'evicted' };
    } catch (error) {
      const failure = apiFailure(error);
      // 429 is also API Priority and Fairness throttling: only the budget's refusal is "blocked".
      if (failure.status === 429 && isDisruptionBudgetRefusal(failure)) {
        return {
          kind: 'blocked',
          reason: 'blocked by PodDisruptionBudget',
          message: failure.message,
        };
      }
      if (failure.status === 404 || failure.status === 409) return { kind: 'gone' };
      const status = failure.status === undefined ? '' : `HTTP ${failure.status}: `;
      return {
        kind: 'failed',
        message: `evict Pod ${namespace}/${name}: ${status}${failure.message}`,
        retryable: isRetryable(failure),
      };
    }
  }
}
