// "Rewriting without losing anything" (docs/architecture.md, "Rewriting") on a real API server: the owner's own
// affinity terms stay where and as they are through inject, policy edit and revert; apply
// then revert leaves the workload as its owner wrote it; a workload that leaves the
// selector is reverted; the finalizer holds a deleted policy until its terms are out.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/never-lose-a-term.test.ts
import assert from 'node:assert/strict';

import {
  affinityOf,
  appliedPolicies,
  APPLIED,
  clusterTest,
  deployment,
  FINALIZER,
  get,
  HOSTNAME,
  list,
  ownerView,
  policy,
  policyRef,
  policyStatus,
  PREF,
  REQ,
  runOperator,
  slot,
  templateOf,
  waitEnforced,
  waitFor,
  waitRolledOut,
  ZONE,
  type Affinity,
  type Cluster,
  type Json,
  type JsonObject,
  type Obj,
} from './support.ts';

const POLICY = 'web-rules';
const POD_SLOTS = [
  ['podAffinity', REQ],
  ['podAffinity', PREF],
  ['podAntiAffinity', REQ],
  ['podAntiAffinity', PREF],
  ['nodeAffinity', PREF],
] as const;

/** Every kind of term an owner can write, in every list the operator also writes to. */
const ownerAffinity = (app: string): JsonObject => ({
  nodeAffinity: {
    [REQ]: {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
        {
          matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }],
          matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['nowhere'] }],
        },
      ],
    },
    [PREF]: [{ weight: 10, preference: { matchExpressions: [{ key: ZONE, operator: 'Exists' }] } }],
  },
  podAffinity: {
    // The first pod of the group matches its own term, so the scheduler lets it in.
    [REQ]: [
      { labelSelector: { matchLabels: { app } }, topologyKey: 'topology.kubernetes.io/region' },
    ],
    [PREF]: [
      {
        weight: 20,
        podAffinityTerm: {
          labelSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
          topologyKey: HOSTNAME,
        },
      },
    ],
  },
  podAntiAffinity: {
    [REQ]: [{ labelSelector: { matchLabels: { role: 'batch' } }, topologyKey: HOSTNAME }],
    [PREF]: [
      {
        weight: 30,
        podAffinityTerm: { labelSelector: { matchLabels: { app } }, topologyKey: ZONE },
      },
    ],
  },
});

const spreadTerm = (app: string, topologyKey: string): JsonObject => ({
  labelSelector: { matchLabels: { app } },
  topologyKey,
});

function policySpec(spreadKey: string): JsonObject {
  return {
    targets: { selector: { matchLabels: { tier: 'web' } } },
    spreadAcross: [{ topologyKey: spreadKey, mode: 'Required' }],
    affinity: {
      podAffinity: {
        [PREF]: [
          {
            weight: 50,
            podAffinityTerm: {
              labelSelector: { matchLabels: { app: 'cache' } },
              topologyKey: ZONE,
            },
          },
        ],
      },
      nodeAffinity: {
        [REQ]: {
          nodeSelectorTerms: [
            {
              matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }],
            },
          ],
        },
        [PREF]: [
          {
            weight: 5,
            preference: { matchExpressions: [{ key: 'type', operator: 'In', values: ['kwok'] }] },
          },
        ],
      },
    },
  };
}

interface AppliedRecord {
  policies: { [ref: string]: number };
  slots: { [slot: string]: Json[] };
  node?: { matchExpressions: Json[]; matchFields: Json[] };
  created: string[];
}

const recordOf = (w: Obj): AppliedRecord | undefined => {
  const text = w.metadata.annotations?.[APPLIED];
  return text === undefined ? undefined : (JSON.parse(text) as AppliedRecord);
};

const nodeTerms = (
  a: Affinity | undefined,
): { matchExpressions?: Json[]; matchFields?: Json[] }[] => {
  const req = a?.['nodeAffinity']?.[REQ] as { nodeSelectorTerms?: [] } | undefined;
  return req?.nodeSelectorTerms ?? [];
};

/**
 * The owner's terms are all there, unchanged and first in their lists; what follows them is
 * exactly what the record says was injected. Node requirements are ANDed into every one of
 * the owner's nodeSelectorTerms (the terms are ORed), after the owner's own expressions.
 */
function assertOwnerTermsInPlace(w: Obj, owner: Affinity | undefined): void {
  const now = affinityOf(w);
  const record = recordOf(w);
  const what = w.metadata.name;
  for (const [group, field] of POD_SLOTS) {
    const mine = slot(owner, group, field);
    const list = slot(now, group, field);
    assert.deepEqual(
      list.slice(0, mine.length),
      mine,
      `${what}: the owner's ${group}.${field} terms, first and unchanged`,
    );
    const injected = record?.slots[`${group}.${field === REQ ? 'required' : 'preferred'}`] ?? [];
    assert.deepEqual(
      list.slice(mine.length),
      injected,
      `${what}: after them, exactly the injected ${group}.${field} terms`,
    );
  }
  const ownTerms = nodeTerms(owner);
  const terms = nodeTerms(now);
  if (ownTerms.length === 0 && record?.node === undefined) {
    assert.equal(terms.length, 0, `${what}: no nodeSelectorTerms of anyone`);
    return;
  }
  assert.equal(terms.length, Math.max(ownTerms.length, 1), `${what}: nodeSelectorTerms count`);
  terms.forEach((term, i) => {
    for (const key of ['matchExpressions', 'matchFields'] as const) {
      const mine = ownTerms[i]?.[key] ?? [];
      const injected = record?.node?.[key] ?? [];
      assert.deepEqual(
        term[key] ?? [],
        [...mine, ...injected],
        `${what}: nodeSelectorTerms[${i}].${key}`,
      );
    }
  });
}

const hasSpread = (w: Obj, app: string, key: string): boolean =>
  slot(affinityOf(w), 'podAntiAffinity', REQ).some(
    (t) => JSON.stringify(t) === JSON.stringify(spreadTerm(app, key)),
  );

async function policyGone(c: Cluster, ns: string): Promise<boolean> {
  const out = await c.kubectl(
    'get',
    'placementpolicy',
    POLICY,
    '-n',
    ns,
    '--ignore-not-found',
    '-o',
    'name',
  );
  return out.trim() === '';
}

clusterTest(
  'never lose a term',
  { timeout: 180_000, namespace: 'terms' },
  async ({ t, c, s, ns }) => {
    const web = (app: string, affinity?: JsonObject): JsonObject =>
      deployment(ns, app, {
        labels: { app, tier: 'web' },
        selector: { app },
        ...(affinity === undefined ? {} : { affinity }),
      });
    // owned: terms of every kind; bare: no affinity at all; leaver: will leave the selector;
    // twin: owns the very term the edited policy asks for (identical terms are not repeated).
    await c.apply(
      list(
        web('owned', ownerAffinity('owned')),
        web('bare'),
        web('leaver', {
          podAntiAffinity: { [PREF]: [{ weight: 1, podAffinityTerm: spreadTerm('leaver', ZONE) }] },
        }),
        web('twin', { podAntiAffinity: { [REQ]: [spreadTerm('twin', ZONE)] } }),
      ),
    );
    await waitRolledOut(c, ns);
    const names = ['owned', 'bare', 'leaver', 'twin'];
    const original = new Map<string, Obj>();
    for (const n of names) original.set(n, await get(c, 'deployment', ns, n));
    const before = (n: string): Obj => {
      const o = original.get(n);
      assert.ok(o);
      return o;
    };
    assert.equal('affinity' in templateOf(before('bare')).spec, false);

    let op = await runOperator(c, s);
    const ref = policyRef(ns, POLICY);

    await t.test(
      'apply: the policy terms go in after the owner’s, which stay as they were',
      async () => {
        await c.apply(JSON.stringify(policy(ns, POLICY, policySpec(HOSTNAME))));
        await waitEnforced(c, ns, POLICY, 4);
        for (const n of names) {
          const w = await get(c, 'deployment', ns, n);
          assert.deepEqual(appliedPolicies(w), { [ref]: 1 }, `${n}: record`);
          assertOwnerTermsInPlace(w, affinityOf(before(n)));
          assert.ok(hasSpread(w, n, HOSTNAME), `${n}: carries the hostname spread`);
          assert.ok(
            slot(affinityOf(w), 'podAffinity', PREF).length > 0,
            `${n}: carries the preferred podAffinity`,
          );
        }
        const bare = recordOf(await get(c, 'deployment', ns, 'bare'));
        assert.ok(bare?.created.includes('affinity'), 'the record knows the affinity was created');
      },
    );

    await t.test(
      'edit: the old injected term is gone, the new one in, the owner’s untouched',
      async () => {
        await c.apply(JSON.stringify(policy(ns, POLICY, policySpec(ZONE))));
        await waitEnforced(c, ns, POLICY, 4);
        for (const n of names) {
          const w = await get(c, 'deployment', ns, n);
          assert.deepEqual(appliedPolicies(w), { [ref]: 2 }, `${n}: record at generation 2`);
          assert.equal(hasSpread(w, n, HOSTNAME), false, `${n}: the hostname spread is gone`);
          assert.ok(hasSpread(w, n, ZONE), `${n}: the zone spread is in`);
          assertOwnerTermsInPlace(w, affinityOf(before(n)));
        }
        const twin = await get(c, 'deployment', ns, 'twin');
        assert.deepEqual(
          slot(affinityOf(twin), 'podAntiAffinity', REQ),
          [spreadTerm('twin', ZONE)],
          'twin: the term once, the owner’s',
        );
        assert.equal(
          recordOf(twin)?.slots['podAntiAffinity.required'],
          undefined,
          'twin: the record does not claim the owner’s term',
        );
      },
    );

    await t.test('a workload that leaves the selector is reverted', async () => {
      await c.kubectl(
        'patch',
        'deployment',
        'leaver',
        '-n',
        ns,
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/spec/template/metadata/labels/tier"}]',
      );
      const leaver = await waitFor('leaver reverted', async () => {
        const w = await get(c, 'deployment', ns, 'leaver');
        return w.metadata.annotations?.[APPLIED] === undefined ? w : undefined;
      });
      const expected = structuredClone(ownerView(before('leaver'))) as {
        spec: { template: { metadata: { labels: { [k: string]: string } } } };
      };
      delete expected.spec.template.metadata.labels['tier'];
      assert.deepEqual(ownerView(leaver), expected);
      await waitEnforced(c, ns, POLICY, 3);
    });

    await t.test(
      'delete: the finalizer holds the policy until the terms are out, then all is as before',
      async () => {
        // With the operator stopped, nothing can revert: the finalizer must hold the policy.
        await op.process.stop();
        await c.kubectl('delete', 'placementpolicy', POLICY, '-n', ns, '--wait=false');
        const held = await policyStatus(c, ns, POLICY);
        assert.ok(held.metadata.deletionTimestamp !== undefined, 'being deleted');
        assert.deepEqual(held.metadata.finalizers, [FINALIZER]);
        for (const n of ['owned', 'bare', 'twin']) {
          assert.ok(
            appliedPolicies(await get(c, 'deployment', ns, n)),
            `${n} still carries the terms`,
          );
        }

        op = await runOperator(c, s);
        // The policy goes only once no workload carries its terms: check in the same instant.
        await waitFor(
          'policy gone',
          async () => ((await policyGone(c, ns)) ? true : undefined),
          60_000,
        );
        for (const n of ['owned', 'bare', 'twin']) {
          const w = await get(c, 'deployment', ns, n);
          assert.equal(
            w.metadata.annotations?.[APPLIED],
            undefined,
            `${n}: no record once the policy is gone`,
          );
        }
        for (const n of ['owned', 'bare', 'twin']) {
          const w = await get(c, 'deployment', ns, n);
          assert.deepEqual(
            ownerView(w),
            ownerView(before(n)),
            `${n}: exactly as the owner wrote it`,
          );
        }
        assert.equal(
          'affinity' in templateOf(await get(c, 'deployment', ns, 'bare')).spec,
          false,
          'bare: no affinity field at all',
        );
        assert.equal(await op.writes(), 3, 'the new operator wrote each carrier once');
      },
    );
  },
);
