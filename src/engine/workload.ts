import type { Labels, LabelSelector, OwnerReference, Pod } from '../api/core.ts';
import type { Workload } from '../api/cluster.ts';
import type { WorkloadRef } from './policy.ts';
import { labelOf } from './labels.ts';
import { FieldError } from './errors.ts';
import { compileSelector, selectorMatches } from './selector.ts';

/** The fields of a workload object (Deployment, ReplicaSet, Job, ...) that ownership needs. */
export interface WorkloadObject {
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly ownerReferences?: readonly OwnerReference[];
  };
  readonly spec?: {
    readonly selector?: LabelSelector;
    readonly template?: { readonly metadata?: { readonly labels?: Labels } };
    readonly jobTemplate?: {
      readonly spec?: { readonly template?: { readonly metadata?: { readonly labels?: Labels } } };
    };
  };
}

/**
 * Labels that pods carry but no one wrote in their template: the API server and the
 * controllers add them to the pods they create or bind. A workload's template labels
 * guessed from one of its pods must leave every one of them out.
 *
 * - Deployment, StatefulSet, DaemonSet and Job controllers: the revision and identity
 *   labels below (the Job controller's are also defaulted into the Job's own template, so
 *   an exact Job has them; a guess from its pods does not).
 * - The PodTopologyLabels admission plugin (beta, on by default since 1.35; 1.36 included)
 *   copies `topology.kubernetes.io/zone` and `topology.kubernetes.io/region` from the node
 *   onto the pod when it is bound, unless the pod has them already. The 1.33 alpha used
 *   `topology.k8s.io/zone` and `/region` (fixed in 1.34, KEP-4742); they are left out too.
 *   `kubernetes.io/hostname` is not copied (the plugin's list is those two keys only), so a
 *   pod's hostname label is its owner's, and is kept.
 *
 * Left in, a copied zone made the guessed selector of a `spreadAcross` term select the
 * same-zone pods only, so spread violations across zones went unseen (issue #16).
 */
export const SERVER_ADDED_POD_LABELS: ReadonlySet<string> = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'job-name',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/job-completion-index',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'topology.k8s.io/zone',
  'topology.k8s.io/region',
]);

const controllerOf = (refs: readonly OwnerReference[] | undefined): OwnerReference | undefined =>
  refs?.find((r) => r.controller === true) ?? refs?.[0];

/** Finds the workload objects that own pods. */
export interface WorkloadFinder {
  get(kind: string, namespace: string, name: string): WorkloadObject | undefined;
}

/** Finds workload objects by kind, namespace and name, from a list. */
export class WorkloadLookup implements WorkloadFinder {
  /** kind → namespace → name → object: looked up once per pod and owner, so no key is built. */
  private readonly byKind = new Map<string, Map<string, Map<string, WorkloadObject>>>();

  constructor(objects: Iterable<WorkloadObject>) {
    for (const o of objects) {
      const namespace = o.metadata.namespace ?? '';
      let byNamespace = this.byKind.get(o.kind);
      if (byNamespace === undefined) {
        byNamespace = new Map();
        this.byKind.set(o.kind, byNamespace);
      }
      let byName = byNamespace.get(namespace);
      if (byName === undefined) {
        byName = new Map();
        byNamespace.set(namespace, byName);
      }
      byName.set(o.metadata.name, o);
    }
  }

  get(kind: string, namespace: string, name: string): WorkloadObject | undefined {
    return this.byKind.get(kind)?.get(namespace)?.get(name);
  }
}

/**
 * A pod's workload, and whether it is known exactly.
 * - `exact`: the workload as its object says (or the pod itself, for a pod without an owner).
 * - not exact: an object on the pod's chain of owners is not known, so its kind is one of
 *   `kinds` and its template labels and pod selector are guessed from the pod (`workload`).
 *   `missing` is the first object of the chain that was not found; `needs` are the kinds of
 *   the objects that would settle it.
 */
export type WorkloadResolution =
  | { readonly exact: true; readonly workload: WorkloadRef }
  | {
      readonly exact: false;
      readonly workload: WorkloadRef;
      readonly kinds: readonly string[];
      readonly missing: { readonly kind: string; readonly name: string };
      readonly needs: readonly string[];
    };

/**
 * The workload a pod belongs to, following controller owner references up to the object
 * people write (ReplicaSet → Deployment, Job → CronJob). A ReplicaSet that is not known is
 * a Deployment's when its name is `<deployment>-<pod-template-hash>` (how the Deployment
 * controller names them) and that Deployment is known and selects the pod: then the
 * Deployment is exact without its ReplicaSet.
 *
 * Where an owner is not known, the workload is guessed from the pod: its owner's kind and
 * name, and as template labels the pod's labels less SERVER_ADDED_POD_LABELS. The guess is
 * never exact: a template edited since the pod was made has other labels, and a
 * workload's own selector cannot be read from its pods. Callers that must be exact (the
 * CLI) judge such pods without the policies that could target them; the operator, whose
 * informers know every kind it can rewrite, meets it only for Jobs (no Job informer) and
 * for a pod seen before its owner.
 */
export function resolveWorkload(pod: Pod, lookup: WorkloadFinder): WorkloadResolution {
  const ns = pod.metadata.namespace;
  const owner = controllerOf(pod.metadata.ownerReferences);
  if (owner === undefined) return { exact: true, workload: fromPod(pod, 'Pod', pod.metadata.name) };
  const object = lookup.get(owner.kind, ns, owner.name);
  const guess = (
    kind: string,
    name: string,
    kinds: readonly string[],
    missing: { kind: string; name: string },
    needs: readonly string[],
  ): WorkloadResolution => ({
    exact: false,
    workload: fromPod(pod, kind, name),
    kinds,
    missing: { kind: missing.kind, name: missing.name },
    needs,
  });
  if (owner.kind !== 'ReplicaSet' && owner.kind !== 'Job') {
    return object === undefined
      ? guess(owner.kind, owner.name, [owner.kind], owner, [owner.kind])
      : { exact: true, workload: fromObject(object, ns) };
  }
  const top = owner.kind === 'ReplicaSet' ? 'Deployment' : 'CronJob';
  if (object !== undefined) {
    const parent = controllerOf(object.metadata.ownerReferences);
    if (parent === undefined) return { exact: true, workload: fromObject(object, ns) };
    const parentObject = lookup.get(parent.kind, ns, parent.name);
    return parentObject === undefined
      ? guess(parent.kind, parent.name, [parent.kind], parent, [parent.kind])
      : { exact: true, workload: fromObject(parentObject, ns) };
  }
  if (owner.kind === 'ReplicaSet') {
    const hash = labelOf(pod.metadata.labels ?? {}, 'pod-template-hash');
    if (hash !== undefined && owner.name.endsWith(`-${hash}`)) {
      const name = owner.name.slice(0, -hash.length - 1);
      const deployment = lookup.get('Deployment', ns, name);
      if (deployment !== undefined && selects(deployment, pod))
        return { exact: true, workload: fromObject(deployment, ns) };
      return guess('Deployment', name, ['Deployment', 'ReplicaSet'], owner, [top, owner.kind]);
    }
    // No Deployment names its ReplicaSets so: the ReplicaSet is a workload of its own, or
    // one of some other controller's.
    return guess(owner.kind, owner.name, [owner.kind], owner, [owner.kind]);
  }
  return guess(owner.kind, owner.name, [owner.kind, top], owner, [owner.kind, top]);
}

/**
 * resolveWorkload for the pods of one snapshot, while nothing it reads changes. A pod whose
 * namespace, owners and labels are those of the pod before it (the replicas of a workload come
 * one after another, and transforms.ts gives them the same owners and labels objects) resolves
 * as that pod did, and gets its resolution: nothing else of a pod with owners is read.
 */
export function workloadResolver(lookup: WorkloadFinder): (pod: Pod) => WorkloadResolution {
  let lastMeta: Pod['metadata'] | undefined;
  let last: WorkloadResolution | undefined;
  return (pod) => {
    const meta = pod.metadata;
    if (
      last !== undefined &&
      meta.ownerReferences !== undefined &&
      meta.ownerReferences === lastMeta?.ownerReferences &&
      meta.labels === lastMeta.labels &&
      meta.namespace === lastMeta.namespace
    )
      return last;
    lastMeta = meta;
    last = resolveWorkload(pod, lookup);
    return last;
  };
}

/** The workload of a pod, exact or guessed (see resolveWorkload). */
export function workloadOfPod(pod: Pod, lookup: WorkloadFinder): WorkloadRef {
  return resolveWorkload(pod, lookup).workload;
}

/** Whether a workload's own selector selects the pod (an invalid one selects nothing). */
function selects(object: WorkloadObject, pod: Pod): boolean {
  try {
    const selector = compileSelector(object.spec?.selector, 'spec.selector');
    return selectorMatches(selector, pod.metadata.labels ?? {});
  } catch (err) {
    if (err instanceof FieldError) return false;
    throw err;
  }
}

function fromPod(pod: Pod, kind: string, name: string): WorkloadRef {
  const templateLabels = Object.fromEntries(
    Object.entries(pod.metadata.labels ?? {}).filter(([k]) => !SERVER_ADDED_POD_LABELS.has(k)),
  );
  return {
    kind,
    namespace: pod.metadata.namespace,
    name,
    templateLabels,
    podSelector: { matchLabels: templateLabels },
  };
}

/** The workload as a policy sees it: kind, template labels, and its own pod selector. */
export function fromObject(object: WorkloadObject, namespace: string): WorkloadRef {
  const template = object.spec?.template ?? object.spec?.jobTemplate?.spec?.template;
  const templateLabels = template?.metadata?.labels ?? {};
  return {
    kind: object.kind,
    namespace: object.metadata.namespace ?? namespace,
    name: object.metadata.name,
    templateLabels,
    // A CronJob has no selector of its own; its pods carry its template labels.
    podSelector: object.spec?.selector ?? { matchLabels: templateLabels },
  };
}

/** How policies see a workload: kind, namespace, template labels and its own pod selector. */
export function workloadRef(w: Workload): WorkloadRef {
  return {
    kind: w.kind,
    namespace: w.namespace,
    name: w.name,
    templateLabels: w.templateLabels,
    podSelector: w.selector ?? { matchLabels: w.templateLabels },
  };
}

/** A Deployment's ReplicaSet: the Deployment is rewritten, never the ReplicaSet. */
export const managedByDeployment = (w: Workload): boolean =>
  w.kind === 'ReplicaSet' &&
  w.ownerReferences.some((r) => r.kind === 'Deployment' && r.controller === true);
