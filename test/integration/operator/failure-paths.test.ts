// Failure paths that touch a workload, on the real API server. Each one must change nothing
// on the workload, say what is wrong where a person looks (a Warning Event on the workload,
// the policy's Degraded condition naming it), and recover by itself once the cause is gone.
//
// - The `placement.dev/applied` record is unreadable: the operator cannot know what it
//   injected, so it leaves the workload alone (PlacementBlocked) until a person fixes it.
// - The API server refuses the write (here a ValidatingAdmissionPolicy that forbids pod
//   anti-affinity in the namespace): PlacementWriteFailed, Degraded WriteRefused with the
//   server's message; once the admission policy is gone the write goes through.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/failure-paths.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  APPLIED,
  appliedPolicies,
  begin,
  condition,
  deployment,
  eventsAbout,
  get,
  HOSTNAME,
  list,
  makeNamespace,
  policy,
  policyStatus,
  runOperator,
  Scope,
  sleep,
  uniqueName,
  waitEnforced,
  waitFor,
  waitRolledOut,
  type Cluster,
  type Obj,
} from './support.ts';

/** What a write would change: the template and the annotations, with the version. */
const fingerprint = (d: Obj): string =>
  JSON.stringify([d.metadata.resourceVersion, d.metadata.annotations, d.spec.template]);

async function waitDegraded(c: Cluster, ns: string, name: string, reason: string) {
  return waitFor(`policy ${name} Degraded with reason ${reason}`, async () => {
    const { status } = await policyStatus(c, ns, name);
    const d = condition(status, 'Degraded');
    return d?.status === 'True' && d.reason === reason ? d : undefined;
  });
}

const spreadPolicy = (ns: string, name: string) =>
  policy(ns, name, {
    targets: { kinds: ['Deployment'], selector: { matchLabels: { app: 'web' } } },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
  });

void test('failure paths that touch a workload', { timeout: 300_000 }, async (t) => {
  const { c } = await begin(t);

  // Each case stops its operator when it ends: every operator of the suite competes for the
  // chart's one Lease, so one left running would keep the next case's from leading.
  await t.test('an unreadable applied record: the workload is left alone', async (t) => {
    const s = new Scope(t);
    const ns = await makeNamespace(c, s, 'blocked');
    const web = deployment(ns, 'web', { replicas: 1 });
    (web['metadata'] as Record<string, unknown>)['annotations'] = { [APPLIED]: '{"policies": ' };
    await c.apply(list(web));
    await waitRolledOut(c, ns);
    const before = fingerprint(await get(c, 'deployment', ns, 'web'));
    await runOperator(c, s);
    await c.apply(list(spreadPolicy(ns, 'spread')));

    const d = await waitDegraded(c, ns, 'spread', 'WorkloadBlocked');
    assert.match(
      d.message,
      new RegExp(`Deployment ${ns}/web: annotation ${APPLIED} is not valid JSON`),
    );
    const events = await waitFor('a PlacementBlocked Event', async () => {
      const found = await eventsAbout(c, ns, 'web', 'PlacementBlocked');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(events[0]?.type, 'Warning');
    await sleep(3_000); // an observation window: nothing may write the workload in it
    assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before);

    // A person removes the broken record: the operator takes over from there.
    await c.kubectl('annotate', 'deployment/web', '-n', ns, `${APPLIED}-`);
    await waitEnforced(c, ns, 'spread', 1);
    assert.deepEqual(appliedPolicies(await get(c, 'deployment', ns, 'web')), {
      [`PlacementPolicy/${ns}/spread`]: 1,
    });
    const { status } = await policyStatus(c, ns, 'spread');
    assert.equal(condition(status, 'Degraded')?.status, 'False');
  });

  await t.test('a write the API server refuses: reported, nothing changed, retried', async (t) => {
    const s = new Scope(t);
    const ns = await makeNamespace(c, s, 'refused');
    await c.apply(list(deployment(ns, 'web', { replicas: 1 })));
    await waitRolledOut(c, ns);
    const before = fingerprint(await get(c, 'deployment', ns, 'web'));

    const admission = uniqueName('no-anti-affinity');
    const vap = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: admission },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['apps'],
              apiVersions: ['v1'],
              operations: ['UPDATE'],
              resources: ['deployments'],
            },
          ],
        },
        validations: [
          {
            expression:
              '!has(object.spec.template.spec.affinity) || ' +
              '!has(object.spec.template.spec.affinity.podAntiAffinity)',
            message: 'pod anti-affinity is not allowed in this namespace',
            reason: 'Invalid',
          },
        ],
      },
    };
    const binding = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: admission },
      spec: {
        policyName: admission,
        validationActions: ['Deny'],
        matchResources: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        },
      },
    };
    s.defer(() =>
      c.kubectl(
        'delete',
        'validatingadmissionpolicybinding,validatingadmissionpolicy',
        admission,
        '--ignore-not-found',
      ),
    );
    await c.apply(list(vap, binding));
    // Admission policies take effect once the API server has loaded them: probe with a dry run.
    const antiAffinity = JSON.stringify({
      spec: {
        template: {
          spec: {
            affinity: {
              podAntiAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  { topologyKey: HOSTNAME, labelSelector: { matchLabels: { app: 'x' } } },
                ],
              },
            },
          },
        },
      },
    });
    await waitFor('the admission policy in force', async () => {
      try {
        await c.kubectl(
          'patch',
          'deployment/web',
          '-n',
          ns,
          '--type=merge',
          '--dry-run=server',
          '-p',
          antiAffinity,
        );
        return undefined;
      } catch (error) {
        return String(error).includes('pod anti-affinity is not allowed') ? true : undefined;
      }
    });

    const op = await runOperator(c, s);
    await c.apply(list(spreadPolicy(ns, 'spread')));
    const d = await waitDegraded(c, ns, 'spread', 'WriteRefused');
    t.diagnostic(`Degraded: ${d.message}`);
    assert.match(
      d.message,
      new RegExp(
        `patch Deployment ${ns}/web: HTTP 422: .*pod anti-affinity is not allowed in this namespace`,
      ),
    );
    const events = await waitFor('a PlacementWriteFailed Event', async () => {
      const found = await eventsAbout(c, ns, 'web', 'PlacementWriteFailed');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(events[0]?.type, 'Warning');
    assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before, 'nothing written');
    assert.ok((await op.metric('placement_workload_writes_total', { result: 'failed' })) >= 1);
    const { status } = await policyStatus(c, ns, 'spread');
    assert.equal(condition(status, 'Ready')?.status, 'False');
    assert.equal(status.pending, 1);

    // The admission policy goes: the retried write goes through and the policy recovers.
    await c.kubectl('delete', 'validatingadmissionpolicybinding', admission);
    await waitEnforced(c, ns, 'spread', 1, 120_000);
    const recovered = await policyStatus(c, ns, 'spread');
    assert.equal(condition(recovered.status, 'Degraded')?.status, 'False');
  });
});
