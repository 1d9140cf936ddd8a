// The Argo CD examples in examples/argocd: the Applications tell Argo CD to leave what the
// operator writes alone (ignoreDifferences by the operator's field manager, and the sync
// options that make a sync respect it), point at paths that exist, and give the chart
// values its schema accepts; argocd-cm carries health.lua unchanged for both kinds.
// Why these settings: docs/gitops.md and test/integration/gitops-ownership.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';

import { FIELD_MANAGER } from '../../src/kube/client.ts';
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
  metadata: { name: string; namespace: string };
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
  void test('the three Applications are there and are Applications', () => {
    assert.deepEqual([...apps.keys()].sort(), [
      'placement-operator.application.yaml',
      'placement-policies.application.yaml',
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

  for (const file of ['placement-policies.application.yaml', 'workloads.application.yaml']) {
    void test(`${file}: ignores the operator's fields on every workload kind it rewrites`, () => {
      const ignore = app(file).spec.ignoreDifferences ?? [];
      for (const [group, kind] of WORKLOAD_KINDS) {
        const entry = ignore.find((i) => i.group === group && i.kind === kind);
        assert.deepEqual(entry?.managedFieldsManagers, [FIELD_MANAGER], `${group}/${kind}`);
      }
    });

    void test(`${file}: RespectIgnoreDifferences=true and ServerSideApply=true`, () => {
      const options = app(file).spec.syncPolicy?.syncOptions ?? [];
      for (const option of ['RespectIgnoreDifferences=true', 'ServerSideApply=true']) {
        assert.ok(options.includes(option), `${option} in ${options.join(', ')}`);
      }
    });
  }

  void test('placement-policies: the operator-written status and finalizer are not drift', () => {
    const ignore = app('placement-policies.application.yaml').spec.ignoreDifferences ?? [];
    for (const kind of ['PlacementPolicy', 'ClusterPlacementPolicy']) {
      const entry = ignore.find((i) => i.group === 'placement.dev' && i.kind === kind);
      assert.deepEqual(entry?.managedFieldsManagers, [FIELD_MANAGER], kind);
    }
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

void describe('examples/argocd/argocd-cm.yaml', () => {
  const cm = parse(readFileSync(join(DIR, 'argocd-cm.yaml'), 'utf8')) as {
    metadata: { name: string };
    data: Record<string, string>;
  };

  void test('is argocd-cm', () => {
    assert.equal(cm.metadata.name, 'argocd-cm');
  });

  for (const kind of ['PlacementPolicy', 'ClusterPlacementPolicy']) {
    void test(`health check for placement.dev ${kind} is health.lua, unchanged`, () => {
      assert.equal(cm.data[`resource.customizations.health.placement.dev_${kind}`], HEALTH);
    });
  }

  void test('system-level ignoreDifferences name the operator field manager', () => {
    for (const [group, kind] of WORKLOAD_KINDS) {
      const text = cm.data[`resource.customizations.ignoreDifferences.${group}_${kind}`];
      assert.ok(text !== undefined, `${group}_${kind}`);
      assert.deepEqual(parse(text), { managedFieldsManagers: [FIELD_MANAGER] });
    }
  });
});
