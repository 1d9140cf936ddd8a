import { APPLIED_ANNOTATION, type Workload } from '../api/cluster.ts';
import type { FeasibilityTarget } from './feasibility.ts';
import { revertInjected, revertSpread } from './merge.ts';
import type { CompiledPolicy } from './policy.ts';
import { parseRecord } from './record.ts';
import { workloadRef } from './workload.ts';

/**
 * A workload as feasibility weighs it: the owner's own terms, that is the template's less
 * what its `placement.dev/applied` record says the policies injected (they come back as the
 * policies' own requirements, so a shortfall names the policy, not the pod), and `policies`,
 * those that target it.
 */
export function feasibilityTargetOf(
  w: Workload,
  policies: readonly CompiledPolicy[],
): FeasibilityTarget {
  const record = parseRecord(w.annotations[APPLIED_ANNOTATION]);
  const affinity = record.kind === 'ok' ? revertInjected(w.affinity, record.record) : w.affinity;
  const spread =
    record.kind === 'ok'
      ? revertSpread(w.topologySpreadConstraints, record.record)
      : w.topologySpreadConstraints;
  return {
    workload: workloadRef(w),
    replicas: w.replicas,
    policies,
    ownAffinity: affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [],
    ownAntiAffinity:
      affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [],
    constraints: {
      ...(w.nodeSelector === undefined ? {} : { nodeSelector: w.nodeSelector }),
      ...(affinity?.nodeAffinity === undefined ? {} : { nodeAffinity: affinity.nodeAffinity }),
      ...(w.tolerations === undefined ? {} : { tolerations: w.tolerations }),
    },
    ...(spread === undefined ? {} : { ownSpreadConstraints: spread }),
  };
}
