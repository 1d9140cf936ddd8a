// The node and spread rules in the continuous audit, on a real control plane: a node
// relabelled out of the `pool=gpu` its pods require breaks a policy's nodeAffinity (metric,
// status, Event) and a bare pod's own nodeSelector; eviction moves the policy's pods to a node
// that meets the rule, except those that `placement.dev/evict: "false"` opts out; and a zone
// whose matching pods grow breaks a Deployment's topology spread, naming the zone, how far
// over, and the excess pod; a policy's spreadAcross TopologySpread constraint, once its pods
// are skewed, is the policy's violation, and its Evict remediation moves an excess pod to the
// zone below the skew unless `placement.dev/evict: "false"` opts the pods out.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/audit/node-spread.test.ts
import assert from 'node:assert/strict';

import {
  clusterTest,
  deployment,
  list,
  makePool,
  podSpec,
  policy,
  POOL_KEY,
  REQ,
  runOperator,
  waitEnforced,
  waitFor,
  ZONE,
  type JsonObject,
} from '../operator/support.ts';
import {
  barePod,
  label,
  pods,
  running,
  violationEvents,
  waitRunning,
  waitStatus,
  type PodInfo,
} from './support.ts';

const GPU_AFFINITY = {
  nodeAffinity: {
    [REQ]: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] }],
    },
  },
};

const eventText = async (
  c: Parameters<typeof violationEvents>[0],
  ns: string,
  pod: string,
): Promise<string> =>
  (await violationEvents(c, ns, pod)).map((e) => e.note ?? e.message ?? '').join('\n');

const nameOf = (list: readonly PodInfo[]): string => list[0]?.metadata.name ?? '';

clusterTest(
  'node rules: relabelled node, nodeAffinity and nodeSelector violations, eviction and its opt-out',
  { timeout: 300_000, namespace: 'noderules' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b']);
    const [n0, n1, n2] = pool.nodes as [string, string, string];
    // Only n0 is a gpu node: every pod that requires one starts there.
    await label(c, 'node', n0, { pool: 'gpu' });
    for (const n of [n1, n2]) await label(c, 'node', n, { pool: 'cpu' });

    const gpuPod = (app: string): JsonObject =>
      deployment(ns, app, { replicas: 1, affinity: GPU_AFFINITY, podSpec: pool.podSpec });
    const keep = gpuPod('keep');
    const keepMeta = keep['metadata'] as JsonObject;
    await c.apply(
      list(
        gpuPod('train'),
        { ...keep, metadata: { ...keepMeta, annotations: { 'placement.dev/evict': 'false' } } },
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'sel', namespace: ns, labels: { app: 'sel' } },
          spec: podSpec({
            podSpec: {
              ...pool.podSpec,
              nodeSelector: { ...(pool.podSpec['nodeSelector'] as JsonObject), pool: 'gpu' },
            },
          }),
        },
        // The templates carry the rule already: the policy audits it, and may evict.
        policy(ns, 'gpu-only', {
          mode: 'Audit',
          targets: {
            selector: {
              matchExpressions: [{ key: 'app', operator: 'In', values: ['train', 'keep'] }],
            },
          },
          affinity: GPU_AFFINITY,
        }),
      ),
    );
    const train = await waitRunning(c, ns, 'train', 1);
    const kept = await waitRunning(c, ns, 'keep', 1);
    await waitRunning(c, ns, 'sel', 1);
    assert.equal(train[0]?.spec.nodeName, n0);
    assert.equal(kept[0]?.spec.nodeName, n0);

    const op = await runOperator(c, s, ['--leader-elect=false']);
    await waitStatus(
      c,
      ns,
      'gpu-only',
      'audited, no violation',
      (x) => x.lastAuditTime !== undefined && x.violations === 0,
    );

    await t.test(
      'n0 relabelled pool=cpu: nodeAffinity of the policy, nodeSelector of the pod',
      async () => {
        await label(c, 'node', n1, { pool: 'gpu' });
        await label(c, 'node', n0, { pool: 'cpu' });
        const status = await waitStatus(
          c,
          ns,
          'gpu-only',
          'two violations',
          (x) => x.violations === 2,
        );
        const sample = status.violationSample ?? [];
        assert.deepEqual(
          sample.map((v) => v.rule),
          ['nodeAffinity', 'nodeAffinity'],
        );
        assert.ok(
          sample.every((v) => v.node === n0 && v.source === `PlacementPolicy/${ns}/gpu-only`),
        );
        assert.match(sample[0]?.message ?? '', /pool In \[gpu\]\): node label is "cpu"/);
        await waitFor('placement_violations for the policy and for the pod', async () => {
          const policyCount = await op.metric('placement_violations', {
            policy: `PlacementPolicy/${ns}/gpu-only`,
            rule: 'nodeAffinity',
          });
          const podCount = await op.metric('placement_violations', {
            policy: 'pod',
            rule: 'nodeSelector',
          });
          return policyCount === 2 && podCount >= 1 ? true : undefined;
        });
        let seen = '';
        await waitFor('a PlacementViolation Event on each pod', async () => {
          const trainText = await eventText(c, ns, nameOf(train));
          const selText = await eventText(c, ns, 'sel');
          seen = `${trainText} | ${selText}`;
          return /^nodeAffinity \(PlacementPolicy\//m.test(trainText) &&
            /^nodeSelector \(pod\): spec\.nodeSelector pool=gpu: node \S+ has "cpu"$/m.test(selText)
            ? true
            : undefined;
        }).catch((err: unknown) => {
          throw new Error(`${String(err)}; Events: ${seen}`);
        });
      },
    );

    await t.test('Evict: the pod moves to the gpu node; the opted-out workload stays', async () => {
      await c.apply(
        list(
          policy(ns, 'gpu-only', {
            mode: 'Audit',
            targets: {
              selector: {
                matchExpressions: [{ key: 'app', operator: 'In', values: ['train', 'keep'] }],
              },
            },
            affinity: GPU_AFFINITY,
            audit: { remediation: 'Evict', maxEvictionsPerMinute: 5 },
          }),
        ),
      );
      const moved = await waitFor(
        'train replaced on n1',
        async () => {
          const now = await pods(c, ns, 'train');
          const fresh = now.filter((p) => p.metadata.uid !== train[0]?.metadata.uid && running(p));
          return fresh.length === 1 && now.length === 1 ? fresh : undefined;
        },
        120_000,
      );
      assert.equal(moved[0]?.spec.nodeName, n1);
      await waitFor('the opt-out told', () =>
        Promise.resolve(
          op.logged('not evicting: eviction turned off').some(
            // The Deployment's annotations reach its ReplicaSet, the first owner looked at.
            (l) =>
              l['pod'] === `${ns}/${nameOf(kept)}` &&
              String(l['by']).startsWith(`ReplicaSet ${ns}/keep-`),
          )
            ? true
            : undefined,
        ),
      ).catch((err: unknown) => {
        const told = op.logged('not evicting: eviction turned off');
        const evicted = op.logged('evicted violating pod');
        throw new Error(`${String(err)}; ${JSON.stringify({ told, evicted })}`);
      });
      const stillKept = await pods(c, ns, 'keep');
      assert.deepEqual(
        stillKept.map((p) => p.metadata.uid),
        kept.map((p) => p.metadata.uid),
      );
      await waitStatus(c, ns, 'gpu-only', 'only the opted-out pod left', (x) => x.violations === 1);
      assert.equal(await op.metric('placement_evictions_total', { result: 'evicted' }), 1);
    });
  },
);

clusterTest(
  'topology spread: a zone whose pods grow is over, named with how far and the excess pod',
  { timeout: 240_000, namespace: 'spread' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-b']);
    const [na, nb] = pool.nodes as [string, string];
    const spread = [
      {
        maxSkew: 1,
        topologyKey: ZONE,
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: { matchLabels: { app: 'web' } },
      },
    ];
    await c.apply(
      list(
        deployment(ns, 'web', {
          replicas: 2,
          podSpec: { ...pool.podSpec, topologySpreadConstraints: spread },
        }),
      ),
    );
    const web = await waitRunning(c, ns, 'web', 2);
    assert.deepEqual(web.map((p) => p.spec.nodeName).sort(), [na, nb].sort());
    const inA = web.find((p) => p.spec.nodeName === na)?.metadata.name ?? '';

    const op = await runOperator(c, s, ['--leader-elect=false']);
    await waitFor('a first audit', async () =>
      (await op.metric('placement_audit_last_success_timestamp_seconds')) > 0 ? true : undefined,
    );
    assert.equal(
      await op.metric('placement_violations', { policy: 'pod', rule: 'topologySpread' }),
      0,
      'one pod per zone: within the skew',
    );

    // Two more app=web pods in zone-a, without constraints of their own: a holds 3, b 1.
    await c.apply(
      list(
        barePod(ns, 'extra-0', { app: 'web' }, pool, na),
        barePod(ns, 'extra-1', { app: 'web' }, pool, na),
      ),
    );
    await waitRunning(c, ns, 'web', 4);
    await waitFor('placement_violations{policy="pod",rule="topologySpread"} 1', async () =>
      (await op.metric('placement_violations', { policy: 'pod', rule: 'topologySpread' })) === 1
        ? true
        : undefined,
    );
    // The excess is the Deployment's pod: it carries the constraint, the bare pods do not.
    const text = await waitFor('a PlacementViolation Event on the excess pod', async () => {
      const got = await eventText(c, ns, inA);
      return got.includes('topologySpread') ? got : undefined;
    });
    assert.match(
      text,
      new RegExp(
        `^topologySpread \\(pod\\): spec\\.topologySpreadConstraints\\[0\\] \\(${ZONE.replace('.', '\\.')}\\): domain zone-a holds 3 matching pods, the least-loaded 1, maxSkew 1: 1 over; the excess: ${ns}/${inA}$`,
        'm',
      ),
    );
    t.diagnostic(text);
  },
);

clusterTest(
  "topology spread of a policy: the policy's violation, evicted to the zone below the skew, opt-out honoured",
  { timeout: 420_000, namespace: 'polspread' },
  async ({ t, c, s, ns }) => {
    const pool = await makePool(c, s, ['zone-a', 'zone-a', 'zone-b']);
    const [a0, a1, b0] = pool.nodes as [string, string, string];
    const ref = `PlacementPolicy/${ns}/zones`;
    // zone-b's node leaves the pool while the Deployment scales: it matches no pod's
    // nodeSelector, so (nodeAffinityPolicy Honor) it is no domain and every pod goes to zone-a.
    await label(c, 'node', b0, { [POOL_KEY]: null });
    const op = await runOperator(c, s, ['--leader-elect=false']);
    const zones = (audit: JsonObject): JsonObject =>
      policy(ns, 'zones', {
        targets: { selector: { matchLabels: { app: 'web' } } },
        spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', mode: 'Required' }],
        audit,
      });
    await c.apply(
      list(
        zones({ remediation: 'Evict', maxEvictionsPerMinute: 5 }),
        deployment(ns, 'web', { replicas: 0, podSpec: pool.podSpec }),
      ),
    );
    await waitEnforced(c, ns, 'zones', 1, 120_000);
    await c.kubectl('scale', 'deployment', 'web', '-n', ns, '--replicas=3');
    const web = await waitRunning(c, ns, 'web', 3, 120_000);
    assert.deepEqual(
      web.map((p) => [a0, a1].includes(p.spec.nodeName ?? '')),
      [true, true, true],
      'every pod in zone-a',
    );
    // Opted out before zone-b comes back: the violation stays and nothing is evicted.
    for (const p of web)
      await c.kubectl('annotate', 'pod', p.metadata.name, '-n', ns, 'placement.dev/evict=false');

    await t.test('zone-b back: the policy is broken, not the pods', async () => {
      await label(c, 'node', b0, { [POOL_KEY]: pool.id });
      const status = await waitStatus(
        c,
        ns,
        'zones',
        'two topologySpread violations (zone-a holds 3, zone-b 0, maxSkew 1)',
        (x) => x.violations === 2,
        120_000,
      );
      const sample = status.violationSample ?? [];
      assert.deepEqual(
        sample.map((v) => [v.rule, v.source]),
        [
          ['topologySpread', ref],
          ['topologySpread', ref],
        ],
      );
      assert.match(
        sample[0]?.message ?? '',
        /^spec\.spreadAcross\[0\]: the pod's topologySpreadConstraints\[0\] \(\S+\): domain zone-a holds 3 matching pods, the least-loaded 0, maxSkew 1: 2 over/,
      );
      await waitFor('placement_violations for the policy', async () =>
        (await op.metric('placement_violations', { policy: ref, rule: 'topologySpread' })) === 2
          ? true
          : undefined,
      );
      assert.equal(
        await op.metric('placement_violations', { policy: 'pod', rule: 'topologySpread' }),
        0,
      );
      const excess = sample[0]?.pod.split('/')[1] ?? '';
      await waitFor('a PlacementViolation Event naming the policy', async () =>
        (await eventText(c, ns, excess)).includes(`topologySpread (${ref})`) ? true : undefined,
      );
    });

    await t.test('opted out: told, not evicted', async () => {
      await waitFor('the opt-out told', () =>
        Promise.resolve(
          op
            .logged('not evicting: eviction turned off')
            .some((l) => l['policy'] === ref && String(l['by']).startsWith('Pod ')),
        ).then((told) => (told ? true : undefined)),
      );
      const now = await pods(c, ns, 'web');
      assert.deepEqual(
        now.map((p) => p.metadata.uid).sort(),
        web.map((p) => p.metadata.uid).sort(),
      );
      assert.equal(await op.metric('placement_evictions_total', { result: 'evicted' }), 0);
    });

    await t.test('opt-out removed: an excess pod moves to zone-b, the spread holds', async () => {
      for (const p of web)
        await c.kubectl('annotate', 'pod', p.metadata.name, '-n', ns, 'placement.dev/evict-');
      const moved = await waitFor(
        'a web pod Running on the zone-b node',
        async () => {
          const now = await pods(c, ns, 'web');
          return now.some((p) => running(p) && p.spec.nodeName === b0) ? now : undefined;
        },
        180_000,
      );
      t.diagnostic(moved.map((p) => `${p.metadata.name}@${p.spec.nodeName ?? ''}`).join(' '));
      await waitStatus(c, ns, 'zones', 'no violation', (x) => x.violations === 0, 120_000);
      assert.ok((await op.metric('placement_evictions_total', { result: 'evicted' })) >= 1);
      const after = await waitRunning(c, ns, 'web', 3, 120_000);
      const inA = after.filter((p) => p.spec.nodeName !== b0).length;
      assert.ok(inA <= 2, `zone-a holds ${inA} of 3`);
    });
  },
);
