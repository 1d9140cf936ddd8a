// What the controller's unit tests build their cases from: a store of objects, a policy for
// the Deployments labelled app=web, a catalog of policies.
import type { Store } from '../../../src/api/cluster.ts';
import type { PlacementPolicy, PlacementPolicySpec } from '../../../src/api/policy.ts';
import { PolicyCatalog } from '../../../src/controller/policy-catalog.ts';
import { labelsIn, namespacedPolicy } from '../builders.ts';

/** A store over a fixed list. */
export const storeOf = <T>(items: readonly T[], key: (t: T) => string): Store<T> => ({
  synced: true,
  list: () => items,
  get: (k) => items.find((t) => key(t) === k),
});

/** A policy in `shop` that targets the Deployments labelled app=web. */
export function webPolicy(
  name: string,
  spec: PlacementPolicySpec,
  generation = 1,
): PlacementPolicy {
  const p = namespacedPolicy('shop', name, {
    targets: { kinds: ['Deployment'], selector: labelsIn({ app: 'web' }) },
    ...spec,
  });
  return { ...p, metadata: { ...p.metadata, generation } };
}

export const catalogOf = (...policies: PlacementPolicy[]): PolicyCatalog => {
  const c = new PolicyCatalog();
  for (const p of policies) c.set(p);
  return c;
};
