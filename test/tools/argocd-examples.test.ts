// The Argo CD examples in examples/argocd: the recommended Applications compare with
// Server-Side Diff and ignore nothing; the one for workloads whose terms are not injected at
// admission keeps the legacy diff and tells Argo CD to leave what the operator writes alone
// (ignoreDifferences by the operator's field manager, and the sync options that make a sync
// respect it); all point at paths that exist, and give the chart values its schema accepts;
// argocd-cm carries health.lua unchanged for both kinds and no system-wide ignoreDifferences;
// argocd-cmd-params-cm turns Server-Side Diff on for every Application.
// Why these settings: docs/gitops.md, test/integration/admission/server-side-diff.test.ts
// and test/integration/gitops-ownership.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';

import { FIELD_MANAGER } from '../../src/api/cluster.ts';
import { render } from '../chart/helm.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

const DIR = join(REPO_ROOT, 'examples', 'argocd');
const HEALTH = readFileSync(join(DIR, 'health.lua'), 'utf8');
const WORKLOAD_KINDS = [
  ['apps', 'Deployment'],
  ['apps', 'StatefulSet'],
  ['apps', 'DaemonSet'],
  ['batch', 'CronJob'],
] as const;

interface Application {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: {
    source: {
      repoURL: string;
      path: string;
      helm?: { releaseName?: string; valuesObject?: Record<string, unknown> };
    };
    destination: { server: string; namespace?: string };
    ignoreDifferences?: { group: string; kind: string; managedFieldsManagers?: string[] }[];
    syncPolicy?: { syncOptions?: string[] };
  };
}

const apps = new Map(
  readdirSync(DIR)
    .filter((f) => f.endsWith('.application.yaml'))
    .map((f) => [f, parse(readFileSync(join(DIR, f), 'utf8')) as Application]),
);
const app = (file: string): Application => {
  const found = apps.get(file);
  assert.ok(found !== undefined, `examples/argocd/${file}`);
  return found;
};

const tmp = mkdtempSync(join(tmpdir(), 'argocd-examples-'));
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

void describe('examples/argocd Applications', () => {
  void test('the four Applications are there and are Applications', () => {
    assert.deepEqual([...apps.keys()].sort(), [
      'placement-operator.application.yaml',
      'placement-policies.application.yaml',
      'workloads-without-admission.application.yaml',
      'workloads.application.yaml',
    ]);
    for (const [file, a] of apps) {
      assert.equal(a.apiVersion, 'argoproj.io/v1alpha1', file);
      assert.equal(a.kind, 'Application', file);
    }
  });

  void test('every source path exists in this repository', () => {
    for (const [file, a] of apps) {
      assert.ok(existsSync(join(REPO_ROOT, a.spec.source.path)), `${file}: ${a.spec.source.path}`);
    }
  });

  /** The options of the Application's compare-options annotation. */
  const compareOptions = (file: string): string[] =>
    (app(file).metadata.annotations?.['argocd.argoproj.io/compare-options'] ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o !== '');

  for (const file of ['placement-policies.application.yaml', 'workloads.application.yaml']) {
    void test(`${file}: Server-Side Diff, admission's changes left out of it, nothing ignored`, () => {
      assert.deepEqual(compareOptions(file), ['ServerSideDiff=true']);
      assert.deepEqual(app(file).spec.ignoreDifferences ?? [], []);
      const options = app(file).spec.syncPolicy?.syncOptions ?? [];
      assert.ok(options.includes('ServerSideApply=true'), options.join(', '));
      // Without ignoreDifferences there is nothing for a sync to respect.
      assert.ok(!options.includes('RespectIgnoreDifferences=true'), options.join(', '));
    });
  }

  const legacy = 'workloads-without-admission.application.yaml';
  void test(`${legacy}: the legacy diff, whatever the system-wide setting`, () => {
    assert.deepEqual(compareOptions(legacy), ['ServerSideDiff=false']);
  });

  void test(`${legacy}: ignores the operator's fields on every workload kind it rewrites`, () => {
    const ignore = app(legacy).spec.ignoreDifferences ?? [];
    for (const [group, kind] of WORKLOAD_KINDS) {
      const entry = ignore.find((i) => i.group === group && i.kind === kind);
      assert.deepEqual(entry?.managedFieldsManagers, [FIELD_MANAGER], `${group}/${kind}`);
    }
  });

  void test(`${legacy}: RespectIgnoreDifferences=true and ServerSideApply=true`, () => {
    const options = app(legacy).spec.syncPolicy?.syncOptions ?? [];
    for (const option of ['RespectIgnoreDifferences=true', 'ServerSideApply=true']) {
      assert.ok(options.includes(option), `${option} in ${options.join(', ')}`);
    }
  });

  void test('both workloads Applications deploy the same workloads', () => {
    const a = app('workloads.application.yaml');
    const b = app(legacy);
    assert.deepEqual(b.spec.source, a.spec.source);
    assert.deepEqual(b.spec.destination, a.spec.destination);
  });

  void test('placement-operator: the chart path, and values the chart schema accepts', () => {
    const a = app('placement-operator.application.yaml');
    assert.equal(a.spec.source.path, 'charts/placement-operator');
    const values = a.spec.source.helm?.valuesObject;
    assert.ok(values !== undefined);
    const file = join(tmp, 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    const objects = render({
      release: a.spec.source.helm?.releaseName ?? a.metadata.name,
      namespace: a.spec.destination.namespace ?? 'default',
      valuesFiles: [file],
    });
    assert.ok(objects.some((o) => o.kind === 'Deployment'));
  });
});

/** A ConfigMap of examples/argocd. */
const configMap = (file: string): { metadata: { name: string }; data: Record<string, string> } =>
  parse(readFileSync(join(DIR, file), 'utf8')) as {
    metadata: { name: string };
    data: Record<string, string>;
  };

void describe('examples/argocd/argocd-cm.yaml', () => {
  const cm = configMap('argocd-cm.yaml');

  void test('is argocd-cm', () => {
    assert.equal(cm.metadata.name, 'argocd-cm');
  });

  for (const kind of ['PlacementPolicy', 'ClusterPlacementPolicy']) {
    void test(`health check for placement.dev ${kind} is health.lua, unchanged`, () => {
      assert.equal(cm.data[`resource.customizations.health.placement.dev_${kind}`], HEALTH);
    });
  }

  void test('no system-wide ignoreDifferences (they would reach Server-Side Diff Applications too)', () => {
    const keys = Object.keys(cm.data).filter((k) =>
      k.startsWith('resource.customizations.ignoreDifferences.'),
    );
    assert.deepEqual(keys, []);
  });
});

void describe('examples/argocd/argocd-cmd-params-cm.yaml', () => {
  const cm = configMap('argocd-cmd-params-cm.yaml');

  void test('is argocd-cmd-params-cm and turns Server-Side Diff on, as a string', () => {
    assert.equal(cm.metadata.name, 'argocd-cmd-params-cm');
    assert.deepEqual(cm.data, { 'controller.diff.server.side': 'true' });
  });
});
