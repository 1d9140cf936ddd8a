import type { Labels, Pod, PodAffinityRules, PodAffinityTerm } from '../api/core.ts';
import type { PlacementTerms } from './placement.ts';
import type { CompiledPolicy, WorkloadRef } from './policy.ts';
import { PREFERRED_TERMS, REQUIRED_TERMS } from './term.ts';
import { labelOf } from './labels.ts';

/** Pods with the same shape: the label keys their terms read, and the terms for each set of values. */
interface Shape {
  readonly labelKeys: readonly string[];
  readonly byValues: Map<string, PlacementTerms>;
}

const NO_TERMS: PlacementTerms = Object.freeze({
  affinity: Object.freeze([]),
  antiAffinity: Object.freeze([]),
  preferredAffinity: Object.freeze([]),
  preferredAntiAffinity: Object.freeze([]),
});

/** A `null` in JSON text: what NaN, Infinity and undefined array items become, so not a key. */
const JSON_NULL = /[[:,]null[\],}]/;

/**
 * Remembers what pods' terms resolved to, so that the replicas of a workload, which
 * resolve alike, pay for one resolution. A pod's terms depend only on:
 * - its namespace (the default namespace of its own terms);
 * - the policies that target it, in order, by identity (a compiled policy never changes;
 *   an edited policy compiles to a new object);
 * - its workload's pod selector, when one of those policies spreads it;
 * - its own podAffinity and podAntiAffinity as written;
 * - the values of the labels that their matchLabelKeys and mismatchLabelKeys name.
 *
 * That is the key, by content (the JSON text of the terms, as they were read from JSON or
 * YAML), never by the identity of a pod or workload object, so a relabelled pod, an edited
 * workload template or a policy edit finds its own entry. Which policies target a pod is
 * decided by the caller, with the current namespace and template labels. What cannot be
 * keyed exactly (non-string label values, numbers JSON cannot write) is resolved afresh.
 * Failed resolutions are not kept: the same pod fails the same way again.
 *
 * The entries are never dropped: keep a cache for one build, or for as long as the set of
 * pod shapes stays bounded.
 */
export class PlacementCache {
  private readonly policyIds = new WeakMap<CompiledPolicy, number>();
  private readonly shapes = new Map<string, Shape>();
  private nextPolicyId = 0;

  /** The terms of `pod`, from the cache or from `resolve` (which must compute them from the same inputs). */
  terms(
    pod: Pod,
    workload: WorkloadRef,
    policies: readonly CompiledPolicy[],
    resolve: () => PlacementTerms,
  ): PlacementTerms {
    const own = pod.spec.affinity;
    const written = own?.podAffinity !== undefined || own?.podAntiAffinity !== undefined;
    if (!written && policies.length === 0) return NO_TERMS;
    const key = this.shapeKey(pod, workload, policies);
    if (key === undefined) return resolve();
    const labels = pod.metadata.labels ?? {};
    const shape = this.shapes.get(key);
    if (shape === undefined) {
      // Resolve first: terms that cannot be read throw here, as they would uncached, before
      // anything below reads them.
      const terms = resolve();
      const labelKeys = labelKeysRead([own?.podAffinity, own?.podAntiAffinity], policies);
      const fresh: Shape = { labelKeys, byValues: new Map() };
      this.shapes.set(key, fresh);
      return remember(fresh, labels, terms);
    }
    const values = valuesKey(shape.labelKeys, labels);
    if (values === undefined) return resolve();
    return shape.byValues.get(values) ?? remember(shape, labels, resolve());
  }

  /**
   * What the last shape key was made of, by identity: the replicas of a workload come one
   * after another with the same affinity and pod selector objects (transforms.ts shares them,
   * and none is ever changed), so their key is not serialised again.
   */
  private last:
    | {
        readonly namespace: string;
        readonly affinity: Pod['spec']['affinity'];
        readonly policies: readonly CompiledPolicy[];
        readonly podSelector: WorkloadRef['podSelector'] | undefined;
        readonly key: string | undefined;
      }
    | undefined;

  private shapeKey(
    pod: Pod,
    workload: WorkloadRef,
    policies: readonly CompiledPolicy[],
  ): string | undefined {
    const own = pod.spec.affinity;
    const spreads = policies.some((p) => p.spread.length > 0);
    const podSelector = spreads ? workload.podSelector : undefined;
    const last = this.last;
    if (
      last !== undefined &&
      last.affinity === own &&
      last.podSelector === podSelector &&
      last.namespace === pod.metadata.namespace &&
      last.policies.length === policies.length &&
      last.policies.every((p, i) => p === policies[i])
    )
      return last.key;
    const key = this.keyOf(pod, podSelector, policies);
    this.last = { namespace: pod.metadata.namespace, affinity: own, policies, podSelector, key };
    return key;
  }

  private keyOf(
    pod: Pod,
    podSelector: WorkloadRef['podSelector'] | undefined,
    policies: readonly CompiledPolicy[],
  ): string | undefined {
    const own = pod.spec.affinity;
    let key: string;
    try {
      key = JSON.stringify([
        pod.metadata.namespace,
        policies.map((p) => this.policyId(p)),
        podSelector ?? 0,
        own?.podAffinity ?? 0,
        own?.podAntiAffinity ?? 0,
      ]);
    } catch {
      return undefined; // not JSON (a cycle, a BigInt): not from an API server or a file
    }
    return JSON_NULL.test(key) ? undefined : key;
  }

  private policyId(policy: CompiledPolicy): number {
    let id = this.policyIds.get(policy);
    if (id === undefined) {
      id = this.nextPolicyId++;
      this.policyIds.set(policy, id);
    }
    return id;
  }
}

function remember(shape: Shape, labels: Labels, terms: PlacementTerms): PlacementTerms {
  const values = valuesKey(shape.labelKeys, labels);
  if (values === undefined) return terms;
  // Shared by every pod of the shape from now on: frozen, so no caller can change another's.
  const frozen: PlacementTerms = Object.freeze({
    affinity: Object.freeze(terms.affinity),
    antiAffinity: Object.freeze(terms.antiAffinity),
    preferredAffinity: Object.freeze(terms.preferredAffinity),
    preferredAntiAffinity: Object.freeze(terms.preferredAntiAffinity),
  });
  shape.byValues.set(values, frozen);
  return frozen;
}

/** The values of `keys` as resolution reads them, or undefined when one is not a string. */
function valuesKey(keys: readonly string[], labels: Labels): string | undefined {
  if (keys.length === 0) return '';
  const values: (string | null)[] = [];
  for (const key of keys) {
    const value: unknown = labelOf(labels, key);
    if (value === undefined) values.push(null);
    else if (typeof value === 'string') values.push(value);
    else return undefined;
  }
  return JSON.stringify(values);
}

/** Every label key that matchLabelKeys or mismatchLabelKeys name, in the pod's terms and the policies'. */
function labelKeysRead(
  own: readonly (PodAffinityRules | undefined)[],
  policies: readonly CompiledPolicy[],
): string[] {
  const keys = new Set<string>();
  const read = (term: PodAffinityTerm): void => {
    for (const list of [term.matchLabelKeys, term.mismatchLabelKeys]) {
      // Resolution reads a list only when the term has a labelSelector: one that is not a
      // list may have resolved, and reads no label.
      const names: unknown = list;
      if (Array.isArray(names)) for (const key of names as unknown[]) keys.add(String(key));
    }
  };
  const rules = [
    ...own,
    ...policies.flatMap((p) => [p.affinity.podAffinity, p.affinity.podAntiAffinity]),
  ];
  for (const r of rules) {
    for (const term of r?.[REQUIRED_TERMS] ?? []) read(term);
    for (const weighted of r?.[PREFERRED_TERMS] ?? []) read(weighted.podAffinityTerm);
  }
  return [...keys];
}
