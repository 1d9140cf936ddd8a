/**
 * Whether a pod in breach has somewhere better to go: remediation evicts only pods that the
 * scheduler could place again on another node without breaking a rule.
 */
import { nodeAdmits, type NodeFacts, type PodConstraints } from './node-eligibility.ts';
import type { TopologyIndex } from './topology-index.ts';
import { judgePod } from './verdict.ts';

/** Nodes tried when asking whether an evicted pod could be placed elsewhere. */
export const PROBE_NODES = 500;

/**
 * Whether the indexed pod `key`, taken off its node, could be placed on some other node
 * that its `constraints` admit and `accepts` accepts, without a violation. At most `limit` nodes are tried. The
 * index is probed in place and left as it was found.
 */
export function fitsElsewhere(
  index: TopologyIndex,
  key: string,
  nodes: readonly NodeFacts[],
  constraints: PodConstraints,
  limit: number = PROBE_NODES,
  accepts: (node: NodeFacts) => boolean = () => true,
): boolean {
  const entry = index.get(key);
  if (entry === undefined) return false;
  const original = entry.pod;
  index.removePod(key);
  try {
    let tried = 0;
    for (const node of nodes) {
      if (node.name === original.nodeName || !nodeAdmits(node, constraints)) continue;
      // The pod's node and spread rules (judge-node-spread.ts): a node that meets them.
      if (!accepts(node)) continue;
      if (++tried > limit) break;
      const probe = { ...original, key: `${key}#probe`, nodeName: node.name };
      index.upsertPod(probe);
      const probeEntry = index.get(probe.key);
      const verdict = probeEntry === undefined ? undefined : judgePod(index, probeEntry);
      index.removePod(probe.key);
      if (verdict?.kind === 'ok') return true;
    }
    return false;
  } finally {
    index.upsertPod(original);
  }
}
