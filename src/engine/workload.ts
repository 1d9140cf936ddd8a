import type { Labels, LabelSelector, OwnerReference, Pod } from '../api/core.ts';
import type { WorkloadRef } from './policy.ts';
import { labelOf } from './labels.ts';

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

/** Labels that controllers add to the pods they create, not written in the template. */
const GENERATED_POD_LABELS = new Set([
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
 * The workload a pod belongs to, following controller owner references up to the object
 * people write (ReplicaSet → Deployment, Job → CronJob). Where the owning objects are not
 * known (an audit of Pods alone), the Deployment is recognised by the ReplicaSet's
 * `-<pod-template-hash>` name suffix, and the template labels are the pod's labels less
 * those controllers add.
 */
export function workloadOfPod(pod: Pod, lookup: WorkloadFinder): WorkloadRef {
  const ns = pod.metadata.namespace;
  const podLabels = pod.metadata.labels ?? {};
  let owner = controllerOf(pod.metadata.ownerReferences);
  if (owner === undefined) return fromPod(pod, 'Pod', pod.metadata.name);
  let object = lookup.get(owner.kind, ns, owner.name);
  if (owner.kind === 'ReplicaSet' || owner.kind === 'Job') {
    const parent = object ? controllerOf(object.metadata.ownerReferences) : undefined;
    if (parent !== undefined) {
      owner = parent;
      object = lookup.get(parent.kind, ns, parent.name);
    } else if (object === undefined && owner.kind === 'ReplicaSet') {
      const hash = labelOf(podLabels, 'pod-template-hash');
      if (hash !== undefined && owner.name.endsWith(`-${hash}`)) {
        owner = { kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
      }
    }
  }
  return object === undefined ? fromPod(pod, owner.kind, owner.name) : fromObject(object, ns);
}

function fromPod(pod: Pod, kind: string, name: string): WorkloadRef {
  const templateLabels = Object.fromEntries(
    Object.entries(pod.metadata.labels ?? {}).filter(([k]) => !GENERATED_POD_LABELS.has(k)),
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
