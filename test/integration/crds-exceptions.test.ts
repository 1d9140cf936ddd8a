// Not a clusterTest: it installs the PlacementException CRD itself, the thing under test.
// The PlacementException CRD on a real API server: it installs, refuses every exception that
// cannot work with a message naming the field (by server-side apply with strict field
// validation, and by a plain create with --validate=false, so the refusal comes from the
// schema and its CEL rules, not from the client), accepts good ones as written, and prints
// its columns. compileException, which reads exceptions from files for the CLI, refuses the
// same ones where it checks the rule ('same-field'). The policies' own `spec.exceptions`
// field is covered with the other policy fields in crds.test.ts.
//
//   hack/node --test test/integration/crds-exceptions.test.ts
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import type { PlacementException } from '../../src/api/exception.ts';
import { compileException } from '../../src/engine/exception.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { selectTestCluster } from '../cluster/select.ts';
import { kubectlFor } from './crd-kubectl.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const CRD = join(REPO_ROOT, 'crds', 'placement.dev_placementexceptions.yaml');
const NAMESPACE = `crds-pex-test-${process.pid}`;
const FIELD_MANAGER = 'crds-exceptions-test';

const GOOD_SPEC: JsonObject = {
  policyRef: { kind: 'ClusterPlacementPolicy', name: 'spread-prod' },
  workloads: { kinds: ['Deployment'], names: ['legacy-db'] },
  reason: 'keeps its data on a local volume',
};

interface BadCase {
  name: string;
  spec: Json;
  field: string;
  message: RegExp;
  engine: 'same-field' | 'gap';
}

const BAD: BadCase[] = [
  {
    name: 'no policyRef',
    spec: { workloads: { names: ['db'] }, reason: 'r' },
    field: 'spec.policyRef',
    message: /Required value/,
    engine: 'gap',
  },
  {
    name: 'an unknown policy kind',
    spec: { ...GOOD_SPEC, policyRef: { kind: 'Policy', name: 'p' } },
    field: 'spec.policyRef.kind',
    message:
      /Unsupported value: "Policy": supported values: "ClusterPlacementPolicy", "PlacementPolicy"/,
    engine: 'same-field',
  },
  {
    name: 'an empty policy name',
    spec: { ...GOOD_SPEC, policyRef: { kind: 'PlacementPolicy', name: '' } },
    field: 'spec.policyRef.name',
    message: /should be at least 1 chars long/,
    engine: 'same-field',
  },
  {
    name: 'no reason',
    spec: { policyRef: GOOD_SPEC['policyRef'] ?? null, workloads: { names: ['db'] } },
    field: 'spec.reason',
    message: /Required value/,
    engine: 'same-field',
  },
  {
    name: 'a blank reason',
    spec: { ...GOOD_SPEC, reason: '   ' },
    field: 'spec.reason',
    message: /reason must say why the workloads cannot follow the policy/,
    engine: 'same-field',
  },
  {
    name: 'workloads with neither a selector nor names',
    spec: { ...GOOD_SPEC, workloads: { kinds: ['Deployment'] } },
    field: 'spec.workloads',
    message: /workloads needs a selector or names: which workloads are exempted/,
    engine: 'same-field',
  },
  {
    name: 'an empty list of names',
    spec: { ...GOOD_SPEC, workloads: { names: [] } },
    field: 'spec.workloads.names',
    message: /must have at least 1 items|should have at least 1 items/,
    engine: 'gap',
  },
  {
    name: 'a kind no policy can target',
    spec: { ...GOOD_SPEC, workloads: { kinds: ['Service'], names: ['db'] } },
    field: 'spec.workloads.kinds[0]',
    message: /Unsupported value: "Service"/,
    engine: 'same-field',
  },
  {
    name: 'an In requirement without values in the selector',
    spec: {
      ...GOOD_SPEC,
      workloads: { selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } },
    },
    field: 'spec.workloads.selector.matchExpressions[0].values',
    message: /values must be non-empty when operator is In/,
    engine: 'same-field',
  },
];

const GOOD: { name: string; spec: JsonObject }[] = [
  { name: 'by name, one kind', spec: GOOD_SPEC },
  {
    name: 'by template labels, every kind (no kinds given)',
    spec: {
      policyRef: { kind: 'PlacementPolicy', name: 'spread-web' },
      workloads: { selector: { matchLabels: { storage: 'local' } } },
      reason: 'local volumes pin each replica to its node',
    },
  },
  {
    name: 'by labels and names together',
    spec: {
      ...GOOD_SPEC,
      workloads: {
        kinds: ['StatefulSet', 'Deployment'],
        selector: { matchExpressions: [{ key: 'licence', operator: 'Exists' }] },
        names: ['a', 'b'],
      },
    },
  },
];

const object = (name: string, spec: Json) => ({
  apiVersion: 'placement.dev/v1alpha1',
  kind: 'PlacementException',
  metadata: { name, namespace: NAMESPACE },
  spec,
});

/** Server-side apply with strict field validation, as `kubectl apply --server-side` does. */
const APPLY = [
  'apply',
  '--server-side',
  `--field-manager=${FIELD_MANAGER}`,
  '--validate=strict',
  '-f',
  '-',
] as const;

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 50)
    .replace(/^-+|-+$/g, '');

void test('PlacementException CRD on a real API server', { timeout: 300_000 }, async (t) => {
  const cluster = await selectTestCluster({ nodes: 1, name: 'crds-pex' });
  const kube = kubectlFor(cluster);
  const kubectl = (args: readonly string[], stdin?: string) => kube.run(args, stdin);
  const must = (args: readonly string[], stdin?: string) => kube.must(args, stdin);
  t.after(async () => {
    await kubectl(['delete', 'namespace', NAMESPACE, '--wait=false', '--ignore-not-found']);
    await cluster.stop();
  });

  await t.test('installs and is served', async () => {
    await must([
      'apply',
      '--server-side',
      '--force-conflicts',
      `--field-manager=${FIELD_MANAGER}`,
      '-f',
      CRD,
    ]);
    const started = Date.now();
    while ((await kubectl(['get', 'pex', '-A', '-o', 'name'])).kind !== 'ok') {
      if (Date.now() - started > 60_000) assert.fail('placementexceptions not served after 60 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });
  await must(['create', 'namespace', NAMESPACE]);

  await t.test('refuses what cannot work, naming the field', { concurrency: 4 }, async (t) => {
    await Promise.all(
      BAD.map((c) =>
        t.test(c.name, async () => {
          const sent = JSON.stringify(object(`bad-${slug(c.name)}`, c.spec));
          for (const [how, args] of [
            ['server-side apply', APPLY],
            ['plain create', ['create', '--validate=false', '-f', '-']],
          ] as const) {
            const outcome = await kubectl(args, sent);
            if (outcome.kind !== 'refused') assert.fail(`${how}: accepted`);
            assert.ok(
              outcome.stderr.includes(`${c.field}: `),
              `${how}: names ${c.field}:\n${outcome.stderr}`,
            );
            assert.match(outcome.stderr, c.message, `${how}:\n${outcome.stderr}`);
          }
          if (c.engine === 'same-field') {
            const compiled = compileException(object('x', c.spec) as unknown as PlacementException);
            const fields = compiled.kind === 'invalid' ? compiled.errors.map((e) => e.field) : [];
            assert.ok(
              fields.includes(c.field),
              `compileException names ${c.field}: ${fields.join(', ')}`,
            );
          }
        }),
      ),
    );
  });

  await t.test('stores none of them', async () => {
    assert.doesNotMatch(await must(['get', 'pex', '-n', NAMESPACE, '-o', 'name']), /\/bad-/);
  });

  await t.test('accepts good exceptions as written', { concurrency: 4 }, async (t) => {
    await Promise.all(
      GOOD.map((c) =>
        t.test(c.name, async () => {
          const name = `good-${slug(c.name)}`;
          await must(APPLY, JSON.stringify(object(name, c.spec)));
          const stored = JSON.parse(
            await must(['get', 'pex', name, '-n', NAMESPACE, '-o', 'json']),
          ) as { spec: JsonObject };
          assert.deepEqual(stored.spec, c.spec);
          const compiled = compileException(object(name, c.spec) as unknown as PlacementException);
          assert.equal(compiled.kind, 'ok');
        }),
      ),
    );
  });

  await t.test('prints the policy, Accepted and Exempted columns', async () => {
    const header = (await must(['get', 'pex', '-n', NAMESPACE])).split('\n')[0] ?? '';
    assert.deepEqual(header.split(/\s+/).filter(Boolean), [
      'NAME',
      'POLICY-KIND',
      'POLICY',
      'ACCEPTED',
      'EXEMPTED',
      'AGE',
    ]);
  });
});
