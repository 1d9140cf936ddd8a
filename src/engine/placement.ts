import type { PolicyRef } from '../api/policy.ts';
import type { Rule } from '../api/rules.ts';
import type { Labels } from '../api/core.ts';
import type { ResolvedTerm } from './term.ts';

/** Who asked for a term: the pod's own spec, or a policy (`PlacementPolicy/NS/NAME`, `ClusterPlacementPolicy/NAME`). */
export type TermSource = 'pod' | PolicyRef;

export interface SourcedTerm {
  readonly term: ResolvedTerm;
  readonly source: TermSource;
  /** Position of the term in its source's list, as reported to people. */
  readonly index: number;
  /** Where the term is written in its source, e.g. `spec.spreadAcross[0]`. */
  readonly field: string;
}

export interface WeightedTerm extends SourcedTerm {
  readonly weight: number;
}

/** Every affinity term that applies to a pod (its own and its policies'), resolved against it. */
export interface PlacementTerms {
  readonly affinity: readonly SourcedTerm[];
  readonly antiAffinity: readonly SourcedTerm[];
  readonly preferredAffinity: readonly WeightedTerm[];
  readonly preferredAntiAffinity: readonly WeightedTerm[];
}

/**
 * A pod as the engine sees it: identity, labels, node, and every affinity term that
 * applies to it (its own and those of the policies that target it), already resolved.
 * Pods that resolve alike may share the term lists.
 */
export interface PodPlacement extends PlacementTerms {
  /** `namespace/name`. */
  readonly key: string;
  /** Being deleted: still a neighbour to the scheduler, no longer judged. */
  readonly terminating?: boolean;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly nodeName: string;
  /**
   * Policies that select the pod's workload but that PlacementExceptions exempt it from:
   * the pod carries none of their terms, and no violation of theirs is reported on it.
   */
  readonly exemptFrom?: readonly PolicyRef[];
}

export interface Violation {
  /** `namespace/name` of the pod in breach. */
  readonly pod: string;
  readonly node: string;
  readonly rule: Rule;
  readonly source: TermSource;
  readonly term: number;
  readonly message: string;
  /**
   * The domain (`key=value`) the rule is judged in: the pod's, for a term or constraint whose
   * topology key its node has (topologySpread: the over domain).
   */
  readonly domain?: string;
  /** topologySpread: by how many pods the domain is over. */
  readonly over?: number;
  /** topologySpread: the domain's excess pods (`namespace/name`), this one among them. */
  readonly excess?: readonly string[];
  /**
   * symmetricAntiAffinity: the first pod (`namespace/name`, in key order, of the pod's own
   * namespace) whose required anti-affinity term selects this one in the domain.
   */
  readonly conflictingPod?: string;
}

/** How well a pod's preferred terms are met where it runs. */
export interface PreferredScore {
  /** The pod's own preferred terms, scored as the scheduler does: weight × matching pods in the domain, affinity minus anti-affinity (other pods' terms that match this pod are not counted). */
  readonly score: number;
  /** Weight of preferred terms met (affinity: a match in the domain; anti-affinity: none). */
  readonly satisfiedWeight: number;
  readonly totalWeight: number;
  /** The pod's ScheduleAnyway topology spread constraints, when it has some. */
  readonly spread?: SpreadScore;
}

/** How well a pod's ScheduleAnyway topology spread constraints hold where it runs. */
export interface SpreadScore {
  /** Constraints whose domain (the pod's) is within maxSkew of the least-loaded one. */
  readonly satisfied: number;
  readonly total: number;
  /** Summed over them: matching pods in the pod's domain above the minimum plus maxSkew. */
  readonly excess: number;
}

/**
 * A judge's answer on one pod: ok, or the violations `V` found; either way what `Score` says
 * of its preferred rules. The judges' verdicts are all of this shape.
 */
export type Verdict<V, Score extends object> = (
  { readonly kind: 'ok' } | { readonly kind: 'violated'; readonly violations: readonly V[] }
) &
  Score;

export type PodVerdict = Verdict<Violation, { readonly preferred: PreferredScore }>;
