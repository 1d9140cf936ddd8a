// The tenancy rules of the engine (docs/adr/0003-tenancy.md): how far a policy's finding about
// a pod may travel (findingReach), which fields of a namespaced policy select pods of other
// namespaces (crossNamespaceTermFields), and that a symmetric anti-affinity message never
// names a pod of another namespace.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Labels, PodAffinityTerm } from '../../../src/api/core.ts';
import type { PlacementPolicy, PlacementPolicySpec } from '../../../src/api/policy.ts';
import {
  compileException,
  compilePolicy,
  crossNamespaceTermFields,
  findingReach,
  withExemptions,
  type CompiledPolicy,
  type FindingReach,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  audit,
  clusterPolicy,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  pod,
  term,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREFERRED = 'preferredDuringSchedulingIgnoredDuringExecution';

function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

/** The policy: in team-a, anti-affinity to every pod of every namespace per node. */
const EVERYONE: PodAffinityTerm = term({}, HOSTNAME, { namespaceSelector: {} });
const evilSpec = (targets: PlacementPolicySpec['targets'] = {}): PlacementPolicySpec => ({
  mode: 'Audit',
  targets,
  affinity: { podAntiAffinity: { [REQUIRED]: [EVERYONE] } },
  audit: { remediation: 'Evict', maxEvictionsPerMinute: 100 },
});

const workload = (
  kind: string,
  ns: string,
  name: string,
  templateLabels: Labels = { app: name },
): WorkloadRef => ({
  kind,
  namespace: ns,
  name,
  templateLabels,
  podSelector: { matchLabels: templateLabels },
});

void describe('findingReach: may a policy finding about a pod be shown or acted on there', () => {
  const cases: readonly {
    name: string;
    policy: PlacementPolicy;
    workload: WorkloadRef;
    namespaceLabels?: Labels;
    want: FindingReach;
  }[] = [
    {
      name: 'namespaced policy, a targeted Deployment of its own namespace: act',
      policy: namespacedPolicy('team-a', 'evil', evilSpec()),
      workload: workload('Deployment', 'team-a', 'web'),
      want: 'act',
    },
    {
      name: 'namespaced policy, a Deployment of another namespace: platform only',
      policy: namespacedPolicy('team-a', 'evil', evilSpec()),
      workload: workload('Deployment', 'team-b', 'web'),
      want: 'platform',
    },
    {
      name: 'namespaced policy, another namespace that its selector would match: platform only',
      policy: namespacedPolicy('team-a', 'evil', evilSpec({ selector: labelsIn({ app: 'web' }) })),
      workload: workload('Deployment', 'team-b', 'web'),
      want: 'platform',
    },
    {
      name: 'namespaced policy, a bare pod of another namespace with kinds [Pod]: platform only',
      policy: namespacedPolicy('team-a', 'evil', evilSpec({ kinds: ['Pod'] })),
      workload: workload('Pod', 'kube-system', 'etcd-0'),
      want: 'platform',
    },
    {
      name: 'namespaced policy, a pod of its namespace its selector leaves out: shown, not acted on',
      policy: namespacedPolicy('team-a', 'evil', evilSpec({ selector: labelsIn({ app: 'web' }) })),
      workload: workload('Deployment', 'team-a', 'db'),
      want: 'show',
    },
    {
      name: 'namespaced policy, a bare pod of its namespace, kinds not listing Pod: shown only',
      policy: namespacedPolicy('team-a', 'evil', evilSpec()),
      workload: workload('Pod', 'team-a', 'debug'),
      want: 'show',
    },
    {
      name: 'namespaced policy, a bare pod of its namespace, kinds listing Pod: act',
      policy: namespacedPolicy('team-a', 'evil', evilSpec({ kinds: ['Pod'] })),
      workload: workload('Pod', 'team-a', 'debug'),
      want: 'act',
    },
    {
      name: 'cluster policy, a targeted workload of any namespace: act',
      policy: clusterPolicy('spread', evilSpec({ namespaceSelector: labelsIn({ tier: 'web' }) })),
      workload: workload('Deployment', 'team-b', 'web'),
      namespaceLabels: { tier: 'web' },
      want: 'act',
    },
    {
      name: 'cluster policy, a namespace outside its targets: shown, not acted on',
      policy: clusterPolicy('spread', evilSpec({ namespaceSelector: labelsIn({ tier: 'web' }) })),
      workload: workload('Deployment', 'kube-system', 'coredns'),
      namespaceLabels: { tier: 'system' },
      want: 'show',
    },
    {
      name: 'cluster policy, a kind it does not target: shown, not acted on',
      policy: clusterPolicy('spread', evilSpec()),
      workload: workload('DaemonSet', 'team-b', 'agent'),
      want: 'show',
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.equal(findingReach(compiled(c.policy), c.workload, c.namespaceLabels ?? {}), c.want);
    });
  }

  // An exempted workload is not targeted: its pods are shown at most, never evicted.
  const exempted = (policy: PlacementPolicy, exceptionNs: string): CompiledPolicy => {
    const e = compileException({
      apiVersion: 'placement.dev/v1alpha1',
      kind: 'PlacementException',
      metadata: { name: 'web-local-volume', namespace: exceptionNs },
      spec: {
        policyRef:
          policy.kind === 'ClusterPlacementPolicy'
            ? { kind: 'ClusterPlacementPolicy', name: policy.metadata.name }
            : { kind: 'PlacementPolicy', name: policy.metadata.name },
        workloads: { names: ['web'] },
        reason: 'a singleton with a local volume',
      },
    });
    if (e.kind === 'invalid') throw new Error(e.errors.map((x) => x.message).join('; '));
    return withExemptions(compiled(policy), [e.exception]);
  };
  void test('cluster policy, a workload an accepted exception exempts: shown, not acted on', () => {
    const policy = clusterPolicy('spread', {
      ...evilSpec(),
      exceptions: { allowed: true, namespaces: ['team-b'] },
    });
    assert.equal(
      findingReach(exempted(policy, 'team-b'), workload('Deployment', 'team-b', 'web'), {}),
      'show',
    );
    assert.equal(
      findingReach(exempted(policy, 'team-b'), workload('Deployment', 'team-b', 'api'), {}),
      'act',
    );
  });
  void test('namespaced policy, a workload an accepted exception exempts: shown, not acted on', () => {
    const policy = namespacedPolicy('team-a', 'evil', {
      ...evilSpec(),
      exceptions: { allowed: true },
    });
    assert.equal(
      findingReach(exempted(policy, 'team-a'), workload('Deployment', 'team-a', 'web'), {}),
      'show',
    );
  });
  void test('an exception the policy does not accept leaves the workload targeted: act', () => {
    const policy = clusterPolicy('spread', evilSpec());
    assert.equal(
      findingReach(exempted(policy, 'team-b'), workload('Deployment', 'team-b', 'web'), {}),
      'act',
    );
  });
});

void describe('crossNamespaceTermFields: what a namespaced policy reaches beyond its namespace', () => {
  const own = term(labelsIn({ app: 'db' }), HOSTNAME);
  const cases: readonly { name: string; policy: PlacementPolicy; want: string[] }[] = [
    {
      name: 'terms without namespaces: none',
      policy: namespacedPolicy('team-a', 'p', {
        affinity: { podAffinity: { [REQUIRED]: [own] } },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
      want: [],
    },
    {
      name: 'namespaces naming only its own namespace: none',
      policy: namespacedPolicy('team-a', 'p', {
        affinity: {
          podAffinity: {
            [REQUIRED]: [term(labelsIn({ app: 'db' }), HOSTNAME, { namespaces: ['team-a'] })],
          },
        },
      }),
      want: [],
    },
    {
      name: 'the issue policy: namespaceSelector {} in a required anti-affinity term',
      policy: namespacedPolicy('team-a', 'evil', evilSpec()),
      want: [`spec.affinity.podAntiAffinity.${REQUIRED}[0].namespaceSelector`],
    },
    {
      name: 'namespaces naming another namespace, in a preferred affinity term',
      policy: namespacedPolicy('team-a', 'p', {
        affinity: {
          podAffinity: {
            [REQUIRED]: [own],
            [PREFERRED]: [
              { weight: 10, podAffinityTerm: own },
              {
                weight: 10,
                podAffinityTerm: term(labelsIn({ app: 'db' }), HOSTNAME, {
                  namespaces: ['team-a', 'team-b'],
                }),
              },
            ],
          },
        },
      }),
      want: [`spec.affinity.podAffinity.${PREFERRED}[1].podAffinityTerm.namespaces`],
    },
    {
      name: 'both fields of one term, and a namespaceSelector that selects nothing else still counts',
      policy: namespacedPolicy('team-a', 'p', {
        affinity: {
          podAntiAffinity: {
            [REQUIRED]: [
              own,
              term({}, HOSTNAME, {
                namespaces: ['team-c'],
                namespaceSelector: labelsIn({ 'kubernetes.io/metadata.name': 'team-a' }),
              }),
            ],
          },
        },
      }),
      want: [
        `spec.affinity.podAntiAffinity.${REQUIRED}[1].namespaces`,
        `spec.affinity.podAntiAffinity.${REQUIRED}[1].namespaceSelector`,
      ],
    },
    {
      name: 'namespaceSelector null is not used (as in a Pod): none',
      policy: namespacedPolicy('team-a', 'p', {
        affinity: { podAffinity: { [REQUIRED]: [{ ...own, namespaceSelector: null }] } },
      }),
      want: [],
    },
    {
      name: 'a cluster policy may reach every namespace: none',
      policy: clusterPolicy('everyone', evilSpec()),
      want: [],
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      assert.deepEqual(crossNamespaceTermFields(c.policy), c.want);
    });
  }
});

void describe('a symmetric anti-affinity message names pods of the judged pod namespace only', () => {
  const nodes = [node('n1')];
  const namespaces = ['team-a', 'team-b'].map((n) => namespace(n));
  const cases: readonly { name: string; carriers: [string, string][]; want: RegExp }[] = [
    {
      name: 'a carrier of the same namespace is named',
      carriers: [['team-b', 'own-carrier']],
      want: /^spec\.affinity.*\[0\]: pod team-b\/own-carrier in kubernetes\.io\/hostname=n1 has/,
    },
    {
      name: 'a carrier of another namespace is counted, not named',
      carriers: [['team-a', 'carrier']],
      want: /\[0\]: 1 pod\(s\) of other namespaces in kubernetes\.io\/hostname=n1 have a required podAntiAffinity term/,
    },
    {
      name: 'with both, the one of the same namespace is named and the others counted',
      carriers: [
        ['team-a', 'a-carrier'],
        ['team-b', 'b-carrier'],
      ],
      want: /: pod team-b\/b-carrier and 1 more in kubernetes\.io\/hostname=n1 has/,
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const carrier = (ns: string, name: string) =>
        pod(name, {
          ns,
          labels: { role: 'carrier' },
          node: 'n1',
          anti: [term(labelsIn({ app: 'victim' }), HOSTNAME, { namespaceSelector: {} })],
        });
      const report = audit({
        nodes,
        namespaces,
        pods: [
          pod('victim', { ns: 'team-b', labels: { app: 'victim' }, node: 'n1' }),
          ...c.carriers.map(([ns, name]) => carrier(ns, name)),
        ],
      });
      const messages = report.violations
        .filter((v) => v.pod === 'team-b/victim' && v.rule === 'symmetricAntiAffinity')
        .map((v) => v.message);
      assert.equal(messages.length, 1, messages.join('\n'));
      assert.match(messages[0] ?? '', c.want);
      assert.doesNotMatch(messages[0] ?? '', /team-a/);
    });
  }
});
