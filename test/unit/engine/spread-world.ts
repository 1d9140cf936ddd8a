// Small clusters for the topology spread tests: nodes and pods from a compact description,
// the engine's index over them, and the engine's verdicts, keyed by pod.
import type {
  Labels,
  Node,
  Pod,
  Taint,
  Toleration,
  TopologySpreadConstraint,
} from '../../../src/api/core.ts';
import { nodeFacts } from '../../../src/engine/node-eligibility.ts';
import {
  SpreadIndex,
  SpreadRulesCache,
  spreadPodOf,
  type SpreadPod,
} from '../../../src/engine/spread-index.ts';
import { SpreadJudge, type SpreadVerdict } from '../../../src/engine/topology-spread.ts';

export const ZONE = 'topology.kubernetes.io/zone';
export const HOSTNAME = 'kubernetes.io/hostname';

export const node = (name: string, labels: Labels, taints: readonly Taint[] = []): Node => ({
  metadata: { name, labels },
  spec: { taints },
});

export interface PodSpec {
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly node: string;
  readonly constraints?: readonly TopologySpreadConstraint[];
  readonly nodeSelector?: Labels;
  readonly tolerations?: readonly Toleration[];
  readonly terminating?: boolean;
}

export const pod = (name: string, s: PodSpec): Pod => ({
  metadata: {
    name,
    namespace: s.namespace ?? 'shop',
    labels: s.labels ?? {},
    ...(s.terminating === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
  },
  spec: {
    nodeName: s.node,
    ...(s.constraints ? { topologySpreadConstraints: s.constraints } : {}),
    ...(s.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
    ...(s.tolerations ? { tolerations: s.tolerations } : {}),
  },
});

/** A DoNotSchedule constraint on `app` with the given key and extra fields. */
export const spread = (
  app: string,
  topologyKey: string,
  extra: Partial<TopologySpreadConstraint> = {},
): TopologySpreadConstraint => ({
  maxSkew: 1,
  topologyKey,
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: { matchLabels: { app } },
  ...extra,
});

export interface Judged {
  readonly index: SpreadIndex;
  readonly judge: SpreadJudge;
  readonly pods: readonly SpreadPod[];
  readonly verdicts: ReadonlyMap<string, SpreadVerdict>;
  readonly cache: SpreadRulesCache;
}

/** Builds the index over the nodes and pods and judges every pod that is not being deleted. */
export function judgeAll(nodes: readonly Node[], pods: readonly Pod[]): Judged {
  const cache = new SpreadRulesCache();
  const spreadPods = pods.map((p) => spreadPodOf(p, cache));
  const index = new SpreadIndex(nodes.map(nodeFacts), spreadPods);
  const judge = new SpreadJudge(index);
  const verdicts = new Map<string, SpreadVerdict>();
  for (const p of spreadPods) if (p.terminating !== true) verdicts.set(p.key, judge.judge(p));
  return { index, judge, pods: spreadPods, verdicts, cache };
}
