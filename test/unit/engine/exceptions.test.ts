// PlacementExceptions in the engine: what compileException accepts and refuses, how
// policyReach decides "does policy P target workload W" given the exceptions attached to
// P, what judgeException says of each exception, and what an audit makes of exempted
// workloads (none of the policy's terms, no violation of the policy on their pods).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Labels } from '../../../src/api/core.ts';
import type { PlacementException, PlacementExceptionSpec } from '../../../src/api/exception.ts';
import type { PlacementPolicy, PlacementPolicySpec } from '../../../src/api/policy.ts';
import {
  auditSnapshot,
  compileException,
  compilePolicy,
  judgeException,
  policyReach,
  policyTargets,
  withExemptions,
  type CompiledException,
  type CompiledPolicy,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  clusterPolicy,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  pod,
  snapshotOf,
  term,
  type Cluster,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

function exception(ns: string, name: string, spec: PlacementExceptionSpec): PlacementException {
  return {
    apiVersion: 'placement.dev/v1alpha1',
    kind: 'PlacementException',
    metadata: { name, namespace: ns },
    spec,
  };
}

/** An exception of `cpp` (a ClusterPlacementPolicy) for the workloads named. */
const exemptNames = (ns: string, policy: string, ...names: string[]): PlacementException =>
  exception(ns, `exempt-${names.join('-')}`, {
    policyRef: { kind: 'ClusterPlacementPolicy', name: policy },
    workloads: { names },
    reason: 'a singleton with a local volume',
  });

/** Input as it comes from a file or the API server: typed fields may hold anything. */
const untyped = (spec: Record<string, unknown>): PlacementExceptionSpec =>
  spec as unknown as PlacementExceptionSpec;

function compiledException(e: PlacementException): CompiledException {
  const c = compileException(e);
  if (c.kind === 'invalid') throw new Error(c.errors.map((x) => x.message).join('; '));
  return c.exception;
}

function compiled(p: PlacementPolicy, ...exceptions: PlacementException[]): CompiledPolicy {
  const c = compilePolicy(p);
  if (c.kind === 'invalid') throw new Error(c.errors.map((x) => x.message).join('; '));
  return withExemptions(c.policy, exceptions.map(compiledException));
}

const workload = (
  ns: string,
  name: string,
  labels: Labels = { app: name },
  kind = 'Deployment',
): WorkloadRef => ({
  kind,
  namespace: ns,
  name,
  templateLabels: labels,
  podSelector: { matchLabels: labels },
});

const allowedFrom = (extra: PlacementPolicySpec['exceptions'] = {}): PlacementPolicySpec => ({
  spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  exceptions: { allowed: true, ...extra },
});

void describe('compileException', () => {
  const cases: {
    name: string;
    spec: PlacementExceptionSpec;
    want: { field: string; problem: RegExp }[];
  }[] = [
    {
      name: 'an unknown policy kind',
      spec: untyped({
        policyRef: { kind: 'Policy', name: 'p' },
        workloads: { names: ['db'] },
        reason: 'r',
      }),
      want: [
        {
          field: 'spec.policyRef.kind',
          problem: /"Policy" is not one of ClusterPlacementPolicy, PlacementPolicy/,
        },
      ],
    },
    {
      name: 'no policy name',
      spec: untyped({
        policyRef: { kind: 'PlacementPolicy', name: '' },
        workloads: { names: ['db'] },
        reason: 'r',
      }),
      want: [{ field: 'spec.policyRef.name', problem: /must not be empty/ }],
    },
    {
      name: 'a blank reason',
      spec: untyped({
        policyRef: { kind: 'PlacementPolicy', name: 'p' },
        workloads: { names: ['db'] },
        reason: '  ',
      }),
      want: [{ field: 'spec.reason', problem: /must say why/ }],
    },
    {
      name: 'neither a selector nor names',
      spec: untyped({
        policyRef: { kind: 'PlacementPolicy', name: 'p' },
        workloads: { kinds: ['Deployment'] },
        reason: 'r',
      }),
      want: [{ field: 'spec.workloads', problem: /needs a selector or names/ }],
    },
    {
      name: 'an unknown kind and a bad selector, both reported',
      spec: untyped({
        policyRef: { kind: 'PlacementPolicy', name: 'p' },
        workloads: {
          kinds: ['Deployment', 'Daemonset'],
          selector: { matchExpressions: [{ key: 'app', operator: 'In' }] },
        },
        reason: 'r',
      }),
      want: [
        { field: 'spec.workloads.kinds[1]', problem: /"Daemonset" is not one of/ },
        {
          field: 'spec.workloads.selector.matchExpressions[0].values',
          problem: /must be non-empty when operator is In/,
        },
      ],
    },
  ];
  for (const c of cases) {
    void test(`refuses ${c.name}, naming the exception and the field`, () => {
      const result = compileException(exception('team-a', 'x', c.spec));
      assert.ok(result.kind === 'invalid', 'refused');
      const errors = result.errors;
      assert.equal(errors.length, c.want.length, errors.map((e) => e.message).join('\n'));
      c.want.forEach((w, i) => {
        const error = errors[i];
        assert.ok(error !== undefined);
        assert.equal(error.object, 'PlacementException team-a/x');
        assert.equal(error.field, w.field);
        assert.match(error.problem, w.problem);
      });
    });
  }

  void test('defaults: every kind; a PlacementPolicy is looked up in the exception’s namespace', () => {
    const e = compiledException(
      exception('team-a', 'x', {
        policyRef: { kind: 'PlacementPolicy', name: 'spread' },
        workloads: { selector: {} },
        reason: 'r',
      }),
    );
    assert.equal(e.policy, 'PlacementPolicy/team-a/spread');
    assert.deepEqual(
      [...e.kinds],
      ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'CronJob', 'Job', 'Pod'],
    );
    assert.equal(e.ref, 'PlacementException/team-a/x');
  });
});

void describe('compilePolicy: spec.exceptions', () => {
  void test('a namespaced policy refuses namespaces and namespaceSelector, as in targets', () => {
    const c = compilePolicy(
      namespacedPolicy('team-a', 'p', {
        exceptions: { allowed: true, namespaces: ['team-b'], namespaceSelector: {} },
      }),
    );
    assert.ok(c.kind === 'invalid', 'refused');
    assert.deepEqual(
      c.errors.map((e) => e.field),
      ['spec.exceptions.namespaceSelector'],
      'the first one found is reported, as for targets',
    );
  });

  void test('no exceptions field: none allowed', () => {
    const c = compilePolicy(clusterPolicy('c', {}));
    assert.equal(c.kind === 'ok' ? c.policy.exceptionScope : 'invalid', null);
  });
});

/** team-a's db, and an exception there that exempts it from the policy spread. */
const DB_EXEMPTED = {
  exceptions: [exemptNames('team-a', 'spread', 'db')],
  workload: workload('team-a', 'db'),
};
/** A policy that accepts exceptions from namespaces labelled exceptions.example/allowed=true. */
const ALLOWED_BY_LABEL = clusterPolicy(
  'spread',
  allowedFrom({ namespaceSelector: labelsIn({ 'exceptions.example/allowed': 'true' }) }),
);

void describe('policyReach', () => {
  const cases: {
    name: string;
    policy: PlacementPolicy;
    exceptions: PlacementException[];
    workload: WorkloadRef;
    namespaceLabels?: Labels;
    want: 'none' | 'targeted' | 'exempted';
  }[] = [
    {
      name: 'no exception: targeted',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [],
      workload: workload('team-a', 'db'),
      want: 'targeted',
    },
    {
      name: 'an exception the policy allows exempts the workload it names',
      policy: clusterPolicy('spread', allowedFrom()),
      ...DB_EXEMPTED,
      want: 'exempted',
    },
    {
      name: 'and leaves the other workloads of the namespace targeted',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [exemptNames('team-a', 'spread', 'db')],
      workload: workload('team-a', 'web'),
      want: 'targeted',
    },
    {
      name: 'an exception reaches its own namespace only',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [exemptNames('team-a', 'spread', 'db')],
      workload: workload('team-b', 'db'),
      want: 'targeted',
    },
    {
      name: 'a policy that does not allow exceptions ignores them',
      policy: clusterPolicy('spread', { spreadAcross: [{ topologyKey: HOSTNAME }] }),
      ...DB_EXEMPTED,
      want: 'targeted',
    },
    {
      name: 'allowed: false ignores them too',
      policy: clusterPolicy('spread', { exceptions: { allowed: false } }),
      ...DB_EXEMPTED,
      want: 'targeted',
    },
    {
      name: 'an exception from a namespace the policy does not list is ignored',
      policy: clusterPolicy('spread', allowedFrom({ namespaces: ['team-b'] })),
      ...DB_EXEMPTED,
      want: 'targeted',
    },
    {
      name: 'one from a namespace the policy lists takes effect',
      policy: clusterPolicy('spread', allowedFrom({ namespaces: ['team-a'] })),
      ...DB_EXEMPTED,
      want: 'exempted',
    },
    {
      name: 'the namespaceSelector is matched against the namespace labels',
      policy: ALLOWED_BY_LABEL,
      ...DB_EXEMPTED,
      namespaceLabels: { 'exceptions.example/allowed': 'true' },
      want: 'exempted',
    },
    {
      name: 'a namespace whose labels do not match: ignored',
      policy: ALLOWED_BY_LABEL,
      ...DB_EXEMPTED,
      namespaceLabels: { 'exceptions.example/allowed': 'false' },
      want: 'targeted',
    },
    {
      name: 'an exception naming another policy changes nothing',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [exemptNames('team-a', 'other', 'db')],
      workload: workload('team-a', 'db'),
      want: 'targeted',
    },
    {
      name: 'a workload the policy does not select is not "exempted"',
      policy: clusterPolicy('spread', {
        ...allowedFrom(),
        targets: { selector: labelsIn({ tier: 'prod' }) },
      }),
      ...DB_EXEMPTED,
      want: 'none',
    },
    {
      name: 'the selector is matched against the template labels, within the kinds listed',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [
        exception('team-a', 'local-volumes', {
          policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
          workloads: { kinds: ['StatefulSet'], selector: labelsIn({ storage: 'local' }) },
          reason: 'local volumes pin each replica to a node',
        }),
      ],
      workload: workload('team-a', 'db', { app: 'db', storage: 'local' }, 'StatefulSet'),
      want: 'exempted',
    },
    {
      name: 'a kind it does not list stays targeted',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [
        exception('team-a', 'local-volumes', {
          policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
          workloads: { kinds: ['StatefulSet'], selector: labelsIn({ storage: 'local' }) },
          reason: 'local volumes pin each replica to a node',
        }),
      ],
      workload: workload('team-a', 'db', { app: 'db', storage: 'local' }),
      want: 'targeted',
    },
    {
      name: 'names and a selector together must both hold',
      policy: clusterPolicy('spread', allowedFrom()),
      exceptions: [
        exception('team-a', 'both', {
          policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
          workloads: { names: ['db'], selector: labelsIn({ storage: 'local' }) },
          reason: 'r',
        }),
      ],
      workload: workload('team-a', 'db'),
      want: 'targeted',
    },
    {
      name: 'a PlacementPolicy that allows exceptions, and one of its namespace',
      policy: namespacedPolicy('team-a', 'spread', allowedFrom()),
      exceptions: [
        exception('team-a', 'x', {
          policyRef: { kind: 'PlacementPolicy', name: 'spread' },
          workloads: { names: ['db'] },
          reason: 'r',
        }),
      ],
      workload: workload('team-a', 'db'),
      want: 'exempted',
    },
    {
      name: 'an exception in another namespace names that namespace’s PlacementPolicy, not this one',
      policy: namespacedPolicy('team-a', 'spread', allowedFrom()),
      exceptions: [
        exception('team-b', 'x', {
          policyRef: { kind: 'PlacementPolicy', name: 'spread' },
          workloads: { names: ['db'] },
          reason: 'r',
        }),
      ],
      workload: workload('team-a', 'db'),
      want: 'targeted',
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const p = compiled(c.policy, ...c.exceptions);
      const reach = policyReach(p, c.workload, c.namespaceLabels ?? {});
      assert.equal(reach.kind, c.want);
      assert.equal(policyTargets(p, c.workload, c.namespaceLabels ?? {}), c.want === 'targeted');
    });
  }

  void test('exempted names every exception that exempts the workload', () => {
    const p = compiled(
      clusterPolicy('spread', allowedFrom()),
      exemptNames('team-a', 'spread', 'db'),
      exception('team-a', 'by-label', {
        policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' },
        workloads: { selector: labelsIn({ app: 'db' }) },
        reason: 'r',
      }),
    );
    const reach = policyReach(p, workload('team-a', 'db'), {});
    assert.deepEqual(reach.kind === 'exempted' ? reach.by.map((e) => e.ref) : [], [
      'PlacementException/team-a/exempt-db',
      'PlacementException/team-a/by-label',
    ]);
  });

  void test('withExemptions keeps the policy object when there is nothing to attach', () => {
    const c = compilePolicy(clusterPolicy('spread', allowedFrom()));
    assert.ok(c.kind === 'ok');
    assert.equal(withExemptions(c.policy, []), c.policy);
    assert.equal(
      withExemptions(c.policy, [compiledException(exemptNames('team-a', 'other', 'db'))]),
      c.policy,
    );
    const attached = withExemptions(c.policy, [
      compiledException(exemptNames('team-a', 'spread', 'db')),
    ]);
    assert.notEqual(attached, c.policy);
    assert.equal(attached.exemptions.length, 1);
  });
});

void describe('judgeException', () => {
  const e = compiledException(exemptNames('team-a', 'spread', 'db'));
  const cases: {
    name: string;
    named: Parameters<typeof judgeException>[1];
    namespaceLabels?: Labels;
    want: { kind: 'accepted' } | { kind: 'refused'; reason: string; message: RegExp };
  }[] = [
    {
      name: 'the policy does not exist',
      named: { kind: 'missing' },
      want: {
        kind: 'refused',
        reason: 'PolicyNotFound',
        message: /^ClusterPlacementPolicy spread does not exist$/,
      },
    },
    {
      name: 'the policy cannot be read',
      named: { kind: 'invalid' },
      want: { kind: 'refused', reason: 'PolicyInvalid', message: /cannot be read/ },
    },
    {
      name: 'the policy does not allow exceptions',
      named: { kind: 'valid', policy: compiled(clusterPolicy('spread', {})) },
      want: {
        kind: 'refused',
        reason: 'NotAllowed',
        message:
          /^ClusterPlacementPolicy spread does not allow exceptions \(spec\.exceptions\.allowed is not true\)$/,
      },
    },
    {
      name: 'the policy does not allow exceptions from this namespace',
      named: {
        kind: 'valid',
        policy: compiled(clusterPolicy('spread', allowedFrom({ namespaces: ['team-b'] }))),
      },
      want: {
        kind: 'refused',
        reason: 'NamespaceNotAllowed',
        message: /does not allow exceptions from namespace team-a/,
      },
    },
    {
      name: 'accepted',
      named: { kind: 'valid', policy: compiled(clusterPolicy('spread', allowedFrom())) },
      want: { kind: 'accepted' },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const verdict = judgeException(e, c.named, c.namespaceLabels ?? {});
      assert.equal(verdict.kind, c.want.kind);
      if (verdict.kind === 'refused' && c.want.kind === 'refused') {
        assert.equal(verdict.reason, c.want.reason);
        assert.match(verdict.message, c.want.message);
      }
    });
  }
});

void describe('audit with exceptions', () => {
  // Deployment pods, recognised by their ReplicaSet's name and pod-template-hash.
  const deploymentPod = (ns: string, app: string, i: number, nodeName: string) =>
    pod(`${app}-5d8f7-${i}`, {
      ns,
      node: nodeName,
      labels: { app, 'pod-template-hash': '5d8f7' },
      owner: { kind: 'ReplicaSet', name: `${app}-5d8f7`, controller: true },
    });
  const base: Cluster = {
    nodes: [node('node-1'), node('node-2')],
    namespaces: [namespace('team-a'), namespace('team-b')],
    pods: [
      // Two db replicas share a node: against a one-per-node spread.
      deploymentPod('team-a', 'db', 0, 'node-1'),
      deploymentPod('team-a', 'db', 1, 'node-1'),
      deploymentPod('team-a', 'web', 0, 'node-1'),
      deploymentPod('team-a', 'web', 1, 'node-1'),
      deploymentPod('team-b', 'db', 0, 'node-2'),
      deploymentPod('team-b', 'db', 1, 'node-2'),
    ],
  };
  const SPREAD = 'ClusterPlacementPolicy/spread';
  /** `pod source` of every violation, once each (a spread breach is also a symmetric one). */
  const judged = (r: { report: { violations: readonly { pod: string; source: string }[] } }) =>
    [...new Set(r.report.violations.map((v) => `${v.pod} ${v.source}`))].sort();
  const breaking = (ns: string, app: string): string[] =>
    [0, 1].map((i) => `${ns}/${app}-5d8f7-${i} ${SPREAD}`);

  const run = (policy: PlacementPolicy, exceptions: PlacementException[]) => {
    const result = auditSnapshot({ ...snapshotOf({ ...base, policies: [policy] }), exceptions });
    if (result.kind === 'invalid') assert.fail(result.errors.map((e) => e.message).join('; '));
    return result;
  };

  void test('without an exception, every workload sharing a node breaks the spread', () => {
    const r = run(clusterPolicy('spread', allowedFrom()), []);
    assert.deepEqual(judged(r), [
      ...breaking('team-a', 'db'),
      ...breaking('team-a', 'web'),
      ...breaking('team-b', 'db'),
    ]);
    assert.deepEqual(r.exemptions, []);
    assert.deepEqual(r.exceptions, []);
  });

  void test('an accepted exception: the exempted workload is not judged by the policy, the rest are', () => {
    const r = run(clusterPolicy('spread', allowedFrom()), [exemptNames('team-a', 'spread', 'db')]);
    assert.deepEqual(judged(r), [...breaking('team-a', 'web'), ...breaking('team-b', 'db')]);
    assert.deepEqual(r.exemptions, [
      {
        workload: 'Deployment/team-a/db',
        policy: SPREAD,
        exceptions: ['PlacementException/team-a/exempt-db'],
      },
    ]);
    assert.deepEqual(r.exceptions, [
      {
        exception: 'PlacementException/team-a/exempt-db',
        policy: SPREAD,
        accepted: true,
        message: `exempts the selected workloads from ${SPREAD}`,
      },
    ]);
    // Its pods carry none of the policy's terms in the index.
    const entry = r.index.get('team-a/db-5d8f7-0');
    assert.ok(entry !== undefined);
    assert.deepEqual(entry.pod.antiAffinity, []);
    assert.deepEqual(entry.pod.exemptFrom, [SPREAD]);
  });

  void test('an exception the policy does not allow has no effect, and says why', () => {
    const r = run(clusterPolicy('spread', allowedFrom({ namespaces: ['team-b'] })), [
      exemptNames('team-a', 'spread', 'db'),
    ]);
    assert.deepEqual(judged(r), [
      ...breaking('team-a', 'db'),
      ...breaking('team-a', 'web'),
      ...breaking('team-b', 'db'),
    ]);
    assert.deepEqual(r.exemptions, []);
    assert.deepEqual(r.exceptions, [
      {
        exception: 'PlacementException/team-a/exempt-db',
        policy: SPREAD,
        accepted: false,
        reason: 'NamespaceNotAllowed',
        message:
          'ClusterPlacementPolicy spread does not allow exceptions from namespace team-a ' +
          '(neither spec.exceptions.namespaces nor spec.exceptions.namespaceSelector selects it)',
      },
    ]);
  });

  void test('an exempted pod is not reported for another pod’s term of that policy (symmetry)', () => {
    // Every Deployment of team-a keeps away from db pods: web carries the term and is in
    // breach; db is exempted, so the symmetric violation on its pods is not reported.
    const avoidDb = clusterPolicy('spread', {
      targets: { namespaces: ['team-a'] },
      affinity: { podAntiAffinity: { [REQUIRED]: [term(labelsIn({ app: 'db' }), HOSTNAME)] } },
      exceptions: { allowed: true },
    });
    const without = run(avoidDb, []);
    const exempted = run(avoidDb, [exemptNames('team-a', 'spread', 'db')]);
    const onDb = (r: typeof without) =>
      r.report.violations.filter((v) => v.pod.startsWith('team-a/db-'));
    assert.ok(onDb(without).some((v) => v.rule === 'symmetricAntiAffinity'));
    assert.deepEqual(onDb(exempted), []);
    assert.deepEqual(
      [...new Set(exempted.report.violations.map((v) => `${v.pod} ${v.rule} ${v.source}`))].sort(),
      [
        `team-a/web-5d8f7-0 podAntiAffinity ${SPREAD}`,
        `team-a/web-5d8f7-1 podAntiAffinity ${SPREAD}`,
      ],
    );
  });

  void test('an exception that cannot be read makes the audit invalid, naming it and the field', () => {
    const result = auditSnapshot({
      ...snapshotOf({ ...base, policies: [clusterPolicy('spread', allowedFrom())] }),
      exceptions: [
        exception(
          'team-a',
          'bad',
          untyped({ policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread' }, reason: 'r' }),
        ),
      ],
    });
    assert.ok(result.kind === 'invalid', 'refused');
    assert.deepEqual(
      result.errors.map((e) => e.message),
      [
        'PlacementException team-a/bad: spec.workloads: needs a selector or names: which workloads are exempted',
      ],
    );
  });
});
