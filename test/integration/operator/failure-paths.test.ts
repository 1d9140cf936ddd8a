// Failure paths that touch a workload, on the real API server. Each one must change nothing
// on the workload, say what is wrong where a person looks (a Warning Event on the workload,
// the policy's Degraded condition naming it), and recover by itself once the cause is gone.
//
// - The `placement.dev/applied` record is unreadable (not JSON, or JSON of the wrong shape):
//   the operator cannot know what it injected, so it leaves the workload alone
//   (PlacementBlocked, naming the field) until a person fixes it, without an error or a
//   retry. A policy deleted meanwhile keeps its finalizer and names the workload.
// - The API server refuses the write (here a ValidatingAdmissionPolicy that forbids pod
//   anti-affinity in the namespace, then a record over the annotation size limit):
//   PlacementWriteFailed, Ready and Degraded WriteRefused with the server's message; once
//   the admission policy is gone the write goes through (an admission policy may go without
//   any change to the workload: retried with backoff). A policy whose record could never fit
//   is refused up front (InvalidSpec) and writes nothing; one whose record does not fit with
//   one workload's own annotations is rejected by the API server's validation there
//   (PlacementWriteInvalid, naming metadata.annotations): not retried until the policy is
//   fixed, while the workload beside it takes the terms.
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/operator/failure-paths.test.ts
import assert from 'node:assert/strict';

import {
  APPLIED,
  appliedPolicies,
  clusterTest,
  condition,
  deployment,
  eventsAbout,
  FINALIZER,
  get,
  HOSTNAME,
  list,
  makeNamespace,
  ownerView,
  policy,
  policyStatus,
  REQ,
  runOperator,
  uniqueName,
  waitAdvanced,
  waitEnforced,
  waitFor,
  waitLoggedAgain,
  waitPolicyGone,
  waitRolledOut,
  ZONE,
  type Cluster,
  type JsonObject,
  type Obj,
  type Operator,
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

/** The record from issue 16: valid JSON, wrong shape (merge.ts used to throw a TypeError on it). */
/** A resync every second: the operator looks at a blocked workload again and again. */
const RESYNC = ['--resync-interval', '1s'];
const AUDIT_S = 2;

/**
 * Waits until the operator has looked at web again and left it unchanged once more: a write
 * it was going to make after the first look, it would have made by then.
 */
const waitLeftAlone = (op: Operator, ns: string): Promise<number> =>
  waitLoggedAgain(op, 'workload left unchanged', `Deployment/${ns}/web`);

const WRONG_SHAPE = '{"policies":{},"slots":{},"created":[1],"node":"x"}';

/** Reconcile errors of both controllers (a retry storm), and log lines at level error. */
async function trouble(op: Operator): Promise<{ errors: number; logged: number }> {
  let errors = 0;
  for (const controller of ['placement-workload', 'placement-policy'])
    errors += await op.metric('controller_runtime_reconcile_errors_total', { controller });
  const logged = op.process.logs.filter((l) => l['level'] === 'error').length;
  return { errors, logged };
}

/** An In requirement on `key` with 64 values of 63 characters: 4 KiB of record each. */
const bulky = (key: string): JsonObject => ({
  key,
  operator: 'In',
  values: Array.from({ length: 64 }, (_, i) => `${'v'.repeat(58)}-${String(i).padStart(4, '0')}`),
});

/** A required anti-affinity term whose selector takes about `n` × 4.2 KiB in a record. */
const bulkyTerm = (n: number, topologyKey: string): JsonObject => ({
  labelSelector: {
    matchExpressions: Array.from({ length: n }, (_, i) => bulky(`example.com/key-${i}`)),
  },
  topologyKey,
});

const spreadPolicy = (ns: string, name: string) =>
  policy(ns, name, {
    targets: { kinds: ['Deployment'], selector: { matchLabels: { app: 'web' } } },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Preferred' }],
  });

clusterTest('failure paths that touch a workload', { timeout: 600_000 }, async ({ t, c, s }) => {
  await t.test('an unreadable applied record: the workload is left alone', async () => {
    const ns = await makeNamespace(c, s, 'blocked');
    const web = deployment(ns, 'web', { replicas: 1 });
    (web['metadata'] as Record<string, unknown>)['annotations'] = { [APPLIED]: '{"policies": ' };
    await c.apply(list(web));
    await waitRolledOut(c, ns);
    const before = fingerprint(await get(c, 'deployment', ns, 'web'));
    const op = await runOperator(c, s, RESYNC);
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
    await waitLeftAlone(op, ns);
    assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before);

    // A person removes the broken record: the operator takes over from there.
    await c.kubectl('annotate', 'deployment/web', '-n', ns, `${APPLIED}-`);
    await waitEnforced(c, ns, 'spread', 1);
    assert.deepEqual(appliedPolicies(await get(c, 'deployment', ns, 'web')), {
      [`PlacementPolicy/${ns}/spread`]: 1,
    });
    const { status } = await policyStatus(c, ns, 'spread');
    assert.equal(condition(status, 'Degraded')?.status, 'False');
    await op.process.stop(); // the next cases watch their own operator alone
  });

  await t.test('a write the API server refuses: reported, nothing changed, retried', async () => {
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
    await op.process.stop();
  });
  await t.test(
    'a record of the wrong shape: blocked, the field named, no error, no retry',
    async () => {
      const ns = await makeNamespace(c, s, 'shape');
      const web = deployment(ns, 'web', { replicas: 1 });
      (web['metadata'] as Record<string, unknown>)['annotations'] = { [APPLIED]: WRONG_SHAPE };
      await c.apply(list(web));
      await waitRolledOut(c, ns);
      const before = fingerprint(await get(c, 'deployment', ns, 'web'));
      const op = await runOperator(c, s, RESYNC);
      await c.apply(list(spreadPolicy(ns, 'spread')));

      const why =
        `annotation ${APPLIED} is not a valid record: node: "x" is not an object; ` +
        'created[0]: 1 is not a string';
      const d = await waitDegraded(c, ns, 'spread', 'WorkloadBlocked');
      assert.ok(d.message.includes(`Deployment ${ns}/web: ${why}`), d.message);
      const events = await waitFor('a PlacementBlocked Event', async () => {
        const found = await eventsAbout(c, ns, 'web', 'PlacementBlocked');
        return found.length > 0 ? found : undefined;
      });
      assert.equal(events[0]?.type, 'Warning');
      assert.equal(events[0].message, why);
      await waitLeftAlone(op, ns);
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before);
      assert.deepEqual(await trouble(op), { errors: 0, logged: 0 });
      assert.ok(!op.process.logs.some((l) => JSON.stringify(l).includes('TypeError')));

      await c.kubectl('annotate', 'deployment/web', '-n', ns, `${APPLIED}-`);
      await waitEnforced(c, ns, 'spread', 1);
      await op.process.stop();
    },
  );

  await t.test(
    'a policy deleted while its workload is blocked keeps its finalizer, names the workload, and goes once the record is fixed',
    async () => {
      const ns = await makeNamespace(c, s, 'held');
      await c.apply(list(deployment(ns, 'web', { replicas: 1 })));
      await waitRolledOut(c, ns);
      const original = await get(c, 'deployment', ns, 'web');
      const op = await runOperator(c, s, RESYNC);
      await c.apply(list(spreadPolicy(ns, 'spread')));
      await waitEnforced(c, ns, 'spread', 1);
      const good = (await get(c, 'deployment', ns, 'web')).metadata.annotations?.[APPLIED];
      assert.ok(good !== undefined);

      await c.kubectl(
        'annotate',
        '--overwrite',
        'deployment/web',
        '-n',
        ns,
        `${APPLIED}=${WRONG_SHAPE}`,
      );
      const carrying = fingerprint(await get(c, 'deployment', ns, 'web'));
      await c.kubectl('delete', 'placementpolicy', 'spread', '-n', ns, '--wait=false');
      const d = await waitDegraded(c, ns, 'spread', 'DeletionBlocked');
      t.diagnostic(`Degraded: ${d.message}`);
      assert.ok(
        d.message.includes(`Deployment ${ns}/web: annotation ${APPLIED} is not a valid record`),
      );
      const held = await policyStatus(c, ns, 'spread');
      assert.ok(held.metadata.deletionTimestamp !== undefined, 'being deleted');
      assert.deepEqual(held.metadata.finalizers, [FINALIZER], 'the finalizer stays');
      assert.equal(condition(held.status, 'Ready')?.reason, 'Deleting');
      await waitLeftAlone(op, ns); // still held, the workload untouched
      assert.deepEqual((await policyStatus(c, ns, 'spread')).metadata.finalizers, [FINALIZER]);
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), carrying);

      // A person puts the record right: the terms come out, then the policy goes.
      await c.kubectl('annotate', '--overwrite', 'deployment/web', '-n', ns, `${APPLIED}=${good}`);
      await waitPolicyGone(c, ns, 'spread');
      assert.deepEqual(ownerView(await get(c, 'deployment', ns, 'web')), ownerView(original));
      await op.process.stop();
    },
  );

  await t.test(
    'a policy whose record cannot fit is refused up front; a write over the limit has its own reason',
    async () => {
      const ns = await makeNamespace(c, s, 'size');
      const blob = { 'example.com/blob': 'b'.repeat(70_000) };
      const web = deployment(ns, 'web', { replicas: 1, labels: { app: 'web' } });
      (web['metadata'] as Record<string, unknown>)['annotations'] = blob;
      await c.apply(list(web));
      await waitRolledOut(c, ns);
      const before = fingerprint(await get(c, 'deployment', ns, 'web'));
      // Audit passes every 2 s: a count that goes on while no workload changes.
      const op = await runOperator(c, s, ['--audit-interval', `${String(AUDIT_S)}s`]);
      const targets = { kinds: ['Deployment'], selector: { matchLabels: { app: 'web' } } };

      // 2 × 32 requirements × 4 KiB: no workload could carry the record of it.
      const huge = policy(ns, 'huge', {
        targets,
        affinity: { podAntiAffinity: { [REQ]: [bulkyTerm(32, HOSTNAME), bulkyTerm(32, ZONE)] } },
      });
      await c.apply(list(huge), '--server-side');
      const invalid = await waitFor('policy huge refused', async () => {
        const { status } = await policyStatus(c, ns, 'huge');
        const ready = condition(status, 'Ready');
        return ready?.reason === 'InvalidSpec' ? ready : undefined;
      });
      t.diagnostic(`Ready: ${invalid.message}`);
      assert.match(
        invalid.message,
        /^spec.affinity: its terms take \d+ bytes in the placement.dev\/applied annotation .* more than the 262144 bytes Kubernetes allows/,
      );
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before, 'nothing written');
      await c.kubectl('delete', 'placementpolicy', 'huge', '-n', ns);

      // 32 requirements (136 KiB) fit alone, but not with web's own 70 KB annotation and
      // kubectl's copy of it: the API server's validation rejects the write to web, and will
      // every time, so it is not retried; api, beside it, takes the terms.
      await c.apply(list(deployment(ns, 'api', { replicas: 1, labels: { app: 'web' } })));
      const big = (term: JsonObject) =>
        policy(ns, 'big', { targets, affinity: { podAntiAffinity: { [REQ]: [term] } } });
      await c.apply(list(big(bulkyTerm(32, HOSTNAME))), '--server-side');
      const { status } = await waitFor('policy big refused by the API server', async () => {
        const found = await policyStatus(c, ns, 'big');
        return condition(found.status, 'Degraded')?.reason === 'WriteRefused' ? found : undefined;
      });
      const degraded = condition(status, 'Degraded')?.message ?? '';
      t.diagnostic(`Degraded: ${degraded}`);
      assert.match(degraded, /HTTP 422: .*annotations: Too long/);
      assert.match(degraded, /rejects metadata.annotations: not tried again until/);
      assert.equal(condition(status, 'Ready')?.status, 'False');
      assert.equal(condition(status, 'Ready')?.reason, 'WriteRefused');
      const events = await waitFor('a PlacementWriteInvalid Event on web', async () => {
        const found = await eventsAbout(c, ns, 'web', 'PlacementWriteInvalid');
        return found.length > 0 ? found : undefined;
      });
      assert.equal(events[0]?.type, 'Warning');
      assert.match(events[0].message, /rejects metadata.annotations/);

      // Terminal: no retry storm. With backoff (5 ms doubling) the write would have been
      // tried about ten times in the time three more audit passes take.
      const failed = () => op.metric('placement_workload_writes_total', { result: 'failed' });
      const tried = await failed();
      assert.ok(tried >= 1 && tried <= 2, `failed writes so far: ${tried}`);
      const audits = () => op.metric('placement_audit_duration_seconds_count');
      await waitAdvanced(`three audit passes of ${String(AUDIT_S)} s`, audits, await audits(), 3);
      assert.equal(await failed(), tried, 'no write tried again without a change');
      assert.equal(fingerprint(await get(c, 'deployment', ns, 'web')), before, 'nothing written');

      // The policy is fixed: the change brings web back, and both carry its terms.
      await c.apply(list(big(bulkyTerm(2, HOSTNAME))), '--server-side');
      await waitEnforced(c, ns, 'big', 2, 120_000);
      assert.equal(await failed(), tried, 'the write after the fix went through');
      const fixed = await policyStatus(c, ns, 'big');
      assert.equal(condition(fixed.status, 'Degraded')?.status, 'False');
      await op.process.stop();
    },
  );
});
