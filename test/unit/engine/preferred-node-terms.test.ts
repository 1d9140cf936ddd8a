// Which preferred node-affinity terms a pod is scored by, and whose each one is: the list the
// audit's score and `why`'s origins both read. A table of named cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { PlacementPolicySpec } from '../../../src/api/policy.ts';
import { compilePolicy } from '../../../src/engine/policy-compile.ts';
import type { CompiledPolicy } from '../../../src/engine/policy.ts';
import {
  scoredNodeTerms,
  type PreferredNodeTerm,
} from '../../../src/engine/preferred-node-terms.ts';
import { namespacedPolicy } from '../builders.ts';

const PREFERRED = 'preferredDuringSchedulingIgnoredDuringExecution';

const prefer = (pool: string, weight: number): PreferredNodeTerm => ({
  weight,
  preference: { matchExpressions: [{ key: 'pool', operator: 'In', values: [pool] }] },
});

function compiled(name: string, terms: readonly PreferredNodeTerm[]): CompiledPolicy {
  const spec: PlacementPolicySpec = { affinity: { nodeAffinity: { [PREFERRED]: [...terms] } } };
  const c = compilePolicy(namespacedPolicy('shop', name, spec));
  if (c.kind !== 'ok') assert.fail(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

/** Each scored term as `pool/weight own-position from-policy[index] repeat`. */
const described = (own: readonly PreferredNodeTerm[], policies: readonly CompiledPolicy[]) =>
  scoredNodeTerms(own, policies).map((s) =>
    [
      `${String(s.term.preference.matchExpressions?.[0]?.values?.[0])}/${s.term.weight}`,
      s.own === undefined ? '-' : `own[${s.own}]`,
      s.from === undefined ? 'pod' : `${s.from.ref}[${s.from.index}]`,
      ...(s.repeat ? ['repeat'] : []),
    ].join(' '),
  );

const gpu = compiled('gpu', [prefer('cpu', 5), prefer('gpu', 10)]);
const alsoGpu = compiled('also-gpu', [prefer('gpu', 10)]);

const CASES: readonly {
  name: string;
  own: readonly PreferredNodeTerm[];
  policies: readonly CompiledPolicy[];
  want: readonly string[];
}[] = [
  { name: 'nothing to score', own: [], policies: [], want: [] },
  {
    name: "the pod's own terms, in order, are the pod's",
    own: [prefer('gpu', 10), prefer('cpu', 1)],
    policies: [],
    want: ['gpu/10 own[0] pod', 'cpu/1 own[1] pod'],
  },
  {
    name: 'an own term written twice is listed twice and scored once',
    own: [prefer('gpu', 10), prefer('gpu', 10)],
    policies: [],
    want: ['gpu/10 own[0] pod', 'gpu/10 own[1] pod repeat'],
  },
  {
    name: 'an own term equal to a policy term is the policy’s, at its place in the policy',
    own: [prefer('gpu', 10)],
    policies: [gpu],
    want: ['gpu/10 own[0] PlacementPolicy/shop/gpu[1]', 'cpu/5 - PlacementPolicy/shop/gpu[0]'],
  },
  {
    name: 'the same weight matters: another weight is another term',
    own: [prefer('gpu', 3)],
    policies: [alsoGpu],
    want: ['gpu/3 own[0] pod', 'gpu/10 - PlacementPolicy/shop/also-gpu[0]'],
  },
  {
    name: 'a term two policies write is the first policy’s, listed once',
    own: [],
    policies: [alsoGpu, gpu],
    want: ['gpu/10 - PlacementPolicy/shop/also-gpu[0]', 'cpu/5 - PlacementPolicy/shop/gpu[0]'],
  },
];

for (const c of CASES) {
  void test(`scoredNodeTerms: ${c.name}`, () => {
    assert.deepEqual(described(c.own, c.policies), c.want);
  });
}
