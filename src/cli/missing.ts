import type { Pod } from '../api/core.ts';
import { isPlaced, podKey, type ClusterSnapshot, type UnresolvedPod } from '../engine/index.ts';

/** The workload kinds whose objects settle a pod's workload, as `kubectl get` names them. */
const RESOURCES: readonly (readonly [string, string])[] = [
  ['Deployment', 'deployments'],
  ['ReplicaSet', 'replicasets'],
  ['StatefulSet', 'statefulsets'],
  ['DaemonSet', 'daemonsets'],
  ['Job', 'jobs'],
  ['CronJob', 'cronjobs'],
];

/** The `kubectl get` whose output the CLI judges exactly: every object a policy's judgement reads. */
export const EXACT_GET = `kubectl get nodes,pods,namespaces,placementpolicies,clusterplacementpolicies,${RESOURCES.map(([, r]) => r).join(',')} -A -o json`;

/**
 * One line saying how many pods were judged without their policies, an example of what was
 * missing, and the resources to add to the `kubectl get`. `nothingJudged`: no pod at all
 * could be judged against the policies, so the run stops there.
 */
export function missingWorkloads(
  unresolved: readonly UnresolvedPod[],
  nothingJudged: boolean,
): string {
  const needs = new Set(unresolved.flatMap((u) => u.needs));
  const add = RESOURCES.filter(([kind]) => needs.has(kind)).map(([, resource]) => resource);
  // Kinds the CLI does not know by name (none today: policies target the six above).
  for (const kind of [...needs].sort()) {
    if (!RESOURCES.some(([k]) => k === kind)) add.push(`${kind.toLowerCase()}s`);
  }
  const first = unresolved[0];
  const example = first === undefined ? '' : ` (${first.missing}, for pod ${first.pod})`;
  const what = nothingJudged
    ? `the policies could judge no pod: the workloads of ${String(unresolved.length)} pod(s) are not in the input${example}`
    : `${String(unresolved.length)} pod(s) judged by their own terms only, without their policies: their workloads are not in the input${example}`;
  return `${what}; add ${add.join(',')} to the kubectl get, as in: ${EXACT_GET}`;
}

/** The snapshot without the pods bound to nodes it lacks, and those pods. */
export function withoutAbsentNodes(snapshot: ClusterSnapshot): {
  readonly snapshot: ClusterSnapshot;
  readonly absent: readonly Pod[];
} {
  const nodes = new Set(snapshot.nodes.map((n) => n.metadata.name));
  const absent = snapshot.pods.filter((p) => isPlaced(p) && !nodes.has(p.spec.nodeName ?? ''));
  if (absent.length === 0) return { snapshot, absent };
  const gone = new Set(absent);
  return { snapshot: { ...snapshot, pods: snapshot.pods.filter((p) => !gone.has(p)) }, absent };
}

/**
 * One line saying how many pods were not judged because their nodes are not in the input,
 * with an example; `noNode`: the input holds no Node at all, so the run stops there. A pod
 * is judged by its node's labels: without the node it would seem outside every domain.
 */
export function missingNodes(absent: readonly Pod[], noNode: boolean): string {
  const first = absent[0];
  const example =
    first === undefined ? '' : ` (node ${first.spec.nodeName ?? ''}, for pod ${podKey(first)})`;
  const what = noNode
    ? `${absent.length} pod(s) are bound to nodes but the input has no Node${example}`
    : `${absent.length} pod(s) not judged: their nodes are not in the input${example}`;
  return `${what}; add nodes to the kubectl get, as in: ${EXACT_GET}`;
}
