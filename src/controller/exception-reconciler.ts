import type { Labels } from '../api/core.ts';
import { API_VERSION } from '../api/policy.ts';
import type { PlacementException } from '../api/exception.ts';
import {
  judgeException,
  policyReach,
  type ExceptionVerdict,
  managedByDeployment,
  workloadRef,
} from '../engine/index.ts';
import { jsonEqual } from '../util/json.ts';
import type { ExceptionEntry, PolicyCatalog } from './policy-catalog.ts';
import { afterWrite, DONE, type KeyReconciler } from './result.ts';
import type { CatalogReaderDeps } from './ports.ts';
import type { Store, Workload, WriteResult } from '../api/cluster.ts';

/** At most this many exempted workloads are listed in an exception's status. */
export const LISTED_WORKLOADS = 20;

export interface ExceptionCondition {
  readonly type: 'Accepted';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

export interface ExceptionStatus {
  readonly observedGeneration: number;
  readonly conditions: readonly ExceptionCondition[];
  /** Workloads this exception exempts from the policy now. */
  readonly exempted: number;
  /** Up to LISTED_WORKLOADS of them, `Kind/name` (all in the exception's namespace). */
  readonly workloads: readonly string[];
}

export interface ExceptionStatusWriter {
  writeStatus(exception: PlacementException, status: unknown): Promise<WriteResult>;
}

export interface ExceptionReconcilerDeps extends CatalogReaderDeps {
  readonly exceptions: Store<PlacementException>;
  readonly writer: ExceptionStatusWriter;
  readonly now: () => Date;
}

/** Whether the exception takes effect, from the catalog: its own validity, then the policy's word. */
export function exceptionVerdict(
  entry: ExceptionEntry,
  catalog: PolicyCatalog,
  namespaceLabels: Labels,
): ExceptionVerdict {
  if (entry.kind === 'invalid') {
    return {
      kind: 'refused',
      reason: 'InvalidSpec',
      message: entry.errors.map((e) => `${e.field}: ${e.problem}`).join('; '),
    };
  }
  const e = entry.exception;
  return judgeException(e, catalog.named(e.policy), namespaceLabels);
}

/** The status an exception should show: Accepted, and the workloads it exempts. */
export function exceptionStatus(
  source: PlacementException,
  entry: ExceptionEntry,
  inputs: {
    readonly catalog: PolicyCatalog;
    readonly workloads: readonly Workload[];
    readonly namespaceLabels: Labels;
    readonly now: string;
  },
): ExceptionStatus {
  const generation = source.metadata.generation ?? 0;
  const verdict = exceptionVerdict(entry, inputs.catalog, inputs.namespaceLabels);
  const exempted: string[] = [];
  if (verdict.kind === 'accepted' && entry.kind === 'valid') {
    const e = entry.exception;
    const named = inputs.catalog.named(e.policy);
    if (named.kind === 'valid') {
      for (const w of inputs.workloads) {
        if (w.namespace !== e.namespace || managedByDeployment(w)) continue;
        const reach = policyReach(named.policy, workloadRef(w), inputs.namespaceLabels);
        if (reach.kind === 'exempted' && reach.by.some((x) => x.ref === e.ref))
          exempted.push(`${w.kind}/${w.name}`);
      }
    }
  }
  exempted.sort();
  const message =
    verdict.kind === 'accepted'
      ? exempted.length === 0
        ? `${verdict.message}; none of them exists now`
        : `exempts ${exempted.length} workload(s) from ${entry.kind === 'valid' ? entry.exception.policy : ''}`
      : verdict.message;
  const previous = previousCondition(source);
  const status = verdict.kind === 'accepted' ? 'True' : 'False';
  const condition: ExceptionCondition = {
    type: 'Accepted',
    status,
    reason: verdict.kind === 'accepted' ? 'Accepted' : verdict.reason,
    message,
    observedGeneration: generation,
    lastTransitionTime:
      previous !== undefined && previous.status === status
        ? previous.lastTransitionTime
        : inputs.now,
  };
  return {
    observedGeneration: generation,
    conditions: [condition],
    exempted: exempted.length,
    workloads: exempted.slice(0, LISTED_WORKLOADS),
  };
}

function previousCondition(e: PlacementException): ExceptionCondition | undefined {
  // What the API server holds: any condition type, whatever this version writes.
  const status = (e as { status?: { conditions?: readonly { type: string }[] } }).status;
  return status?.conditions?.find((c) => c.type === 'Accepted') as ExceptionCondition | undefined;
}

/** Whether writing `next` would change what the exception shows (timestamps aside). */
function statusDiffers(e: PlacementException, next: ExceptionStatus): boolean {
  const strip = (s: unknown): unknown => {
    const { conditions, ...rest } = (s ?? {}) as Record<string, unknown> & {
      conditions?: readonly ExceptionCondition[];
    };
    return { ...rest, conditions: (conditions ?? []).map(({ lastTransitionTime: _l, ...c }) => c) };
  };
  return !jsonEqual(strip((e as { status?: unknown }).status), strip(next));
}

/**
 * Keeps a PlacementException's status: whether its policy accepts it (and why not), and
 * which workloads it exempts. The exemption itself is decided in the catalog, from the same
 * rules; this only reports it. A change of verdict is also an Event on the exception.
 */
export const reconcileException: KeyReconciler<ExceptionReconcilerDeps> = async (
  key,
  deps,
  log,
) => {
  const source = deps.exceptions.get(key);
  if (source === undefined) return DONE;
  const { entry } = deps.catalog.setException(source);
  if (entry === undefined) return DONE; // being deleted
  const namespace = source.metadata.namespace;
  const status = exceptionStatus(source, entry, {
    catalog: deps.catalog,
    workloads: deps.workloads.list(),
    namespaceLabels: deps.namespaceLabels(namespace),
    now: deps.now().toISOString(),
  });
  if (!statusDiffers(source, status)) return DONE;
  const result = await deps.writer.writeStatus(source, status);
  switch (result.kind) {
    case 'written': {
      const before = previousCondition(source);
      const [now] = status.conditions;
      if (now !== undefined && (before?.status !== now.status || before.reason !== now.reason)) {
        deps.events.record(
          {
            kind: 'PlacementException',
            apiVersion: API_VERSION,
            namespace,
            name: source.metadata.name,
            ...(source.metadata.uid === undefined ? {} : { uid: source.metadata.uid }),
          },
          now.status === 'True' ? 'Normal' : 'Warning',
          now.status === 'True' ? 'ExceptionAccepted' : 'ExceptionRefused',
          now.message,
        );
        log.info(now.status === 'True' ? 'exception accepted' : 'exception refused', {
          reason: now.reason,
          message: now.message,
        });
      }
      return DONE;
    }
    case 'conflict':
    case 'gone':
    case 'failed':
      return afterWrite(result, `writing status of PlacementException ${key}`) ?? DONE;
  }
};
