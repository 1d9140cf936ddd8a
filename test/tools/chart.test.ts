// The Helm chart (charts/placement-operator), rendered by the pinned helm (built from the
// Go module proxy by hack/tools/build-helm.sh on first use, then cached):
//
//   hack/node --test test/tools/chart.test.ts
//
// helm lint is clean; the default and the all-features values render; every rendered
// object parses; the Deployment meets each security requirement; the RBAC is exactly the
// table in test/chart/operator-permissions.ts (no secrets, no wildcards, eviction only
// with remediation); values.schema.json and the chart's own checks refuse bad values with
// a message that names the value; the chart's CRDs are byte-for-byte the ones in crds/.
// What the API server makes of all this is test/integration/chart.test.ts.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';

import { REPO_ROOT } from '../cluster/paths.ts';
import {
  ALL_FEATURES,
  CHART_DIR,
  DEFAULT_NAMESPACE,
  DEFAULT_RELEASE,
  helm,
  only,
  render,
  tryRender,
  type Manifest,
  type RenderOptions,
} from '../chart/helm.ts';
import {
  grantsFor,
  permissionKeys,
  ruleKeys,
  type PolicyRule,
} from '../chart/operator-permissions.ts';
import {
  DEFAULT_AGGREGATED_ROLES,
  userRoles,
  type AggregatedRolesValues,
} from '../chart/user-roles.ts';

// ---------------------------------------------------------------------------------------
// The parts of rendered objects these checks read.

type StringMap = Readonly<Record<string, string>>;

interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: string | number };
}

interface Container {
  readonly name: string;
  readonly image: string;
  readonly args?: readonly string[];
  readonly env?: readonly {
    readonly name: string;
    readonly value?: string;
    readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } };
  }[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
  readonly resources?: {
    readonly requests?: Readonly<Record<string, string | number>>;
    readonly limits?: Readonly<Record<string, string | number>>;
  };
  readonly securityContext?: {
    readonly runAsNonRoot?: boolean;
    readonly runAsUser?: number;
    readonly readOnlyRootFilesystem?: boolean;
    readonly allowPrivilegeEscalation?: boolean;
    readonly privileged?: boolean;
    readonly capabilities?: { readonly drop?: readonly string[]; readonly add?: readonly string[] };
    readonly seccompProfile?: { readonly type: string };
  };
}

interface LabelSelector {
  readonly matchLabels?: StringMap;
}

interface PodSpec {
  readonly serviceAccountName?: string;
  readonly automountServiceAccountToken?: boolean;
  readonly hostNetwork?: boolean;
  readonly hostPID?: boolean;
  readonly securityContext?: {
    readonly runAsNonRoot?: boolean;
    readonly runAsUser?: number;
    readonly seccompProfile?: { readonly type: string };
  };
  readonly containers: readonly Container[];
  readonly topologySpreadConstraints?: readonly {
    readonly topologyKey: string;
    readonly labelSelector?: LabelSelector;
  }[];
  readonly affinity?: {
    readonly podAntiAffinity?: {
      readonly preferredDuringSchedulingIgnoredDuringExecution?: readonly {
        readonly podAffinityTerm: {
          readonly topologyKey: string;
          readonly labelSelector?: LabelSelector;
        };
      }[];
    };
  };
}

interface Deployment extends Manifest {
  readonly spec: {
    readonly replicas: number;
    readonly selector: LabelSelector;
    readonly template: {
      readonly metadata: { readonly labels: StringMap };
      readonly spec: PodSpec;
    };
  };
}

interface RoleObject extends Manifest {
  readonly rules: readonly PolicyRule[];
}

interface Binding extends Manifest {
  readonly roleRef: { readonly kind: string; readonly name: string };
  readonly subjects: readonly {
    readonly kind: string;
    readonly name: string;
    readonly namespace?: string;
  }[];
}

interface Service extends Manifest {
  readonly spec: {
    readonly selector: StringMap;
    readonly ports: readonly { readonly name: string; readonly targetPort: string | number }[];
  };
}

interface ServiceMonitor extends Manifest {
  readonly spec: {
    readonly selector: LabelSelector;
    readonly endpoints: readonly { readonly port: string; readonly path: string }[];
  };
}

interface PrometheusRule extends Manifest {
  readonly spec: {
    readonly groups: readonly {
      readonly name: string;
      readonly rules: readonly {
        readonly alert?: string;
        readonly record?: string;
        readonly expr: string;
        readonly for?: string;
      }[];
    }[];
  };
}

interface ConfigMap extends Manifest {
  readonly data: StringMap;
}

interface AdmissionPolicy extends Manifest {
  readonly spec: {
    readonly matchConstraints: { readonly resourceRules: readonly unknown[] };
    readonly validations: readonly { readonly messageExpression: string }[];
  };
}

interface AdmissionBinding extends Manifest {
  readonly spec: { readonly policyName: string; readonly validationActions: readonly string[] };
}

interface Pdb extends Manifest {
  readonly spec: { readonly minAvailable: number | string; readonly selector: LabelSelector };
}

// ---------------------------------------------------------------------------------------

const FEATURES = parse(readFileSync(ALL_FEATURES, 'utf8')) as {
  leaderElection: { leaseName: string };
  metrics: { port: number };
  serviceAccount: { name: string };
};

interface Variant {
  readonly name: string;
  readonly options: RenderOptions;
  readonly replicas: number;
  readonly leaseName: string;
  readonly metricsPort: number;
  readonly serviceAccount: string;
  readonly remediation: boolean;
  /** reports.enabled: the OpenReports grants and --reports=true. */
  readonly reports: boolean;
  /** reports.policyReports: the wgpolicyk8s.io grants and --policy-reports=true. */
  readonly policyReports: boolean;
  /** Kinds beyond the ones every render has. */
  readonly optionalKinds: readonly string[];
  /** What src/main.ts's readConfig must make of the rendered flags (and the pod's env). */
  readonly config: Readonly<Record<string, unknown>>;
}

type ReadConfig = (argv: readonly string[], env: NodeJS.ProcessEnv) => unknown;
const MAIN_TS = join(REPO_ROOT, 'src', 'main.ts');

const VARIANTS: readonly Variant[] = [
  {
    name: 'default values',
    options: {},
    replicas: 2,
    leaseName: 'placement-operator',
    metricsPort: 8080,
    serviceAccount: `${DEFAULT_RELEASE}-placement-operator`,
    remediation: false,
    reports: false,
    policyReports: false,
    optionalKinds: [],
    config: {
      leaderElect: true,
      leaseName: 'placement-operator',
      leaseNamespace: DEFAULT_NAMESPACE,
      identity: 'po-0',
      inCluster: true,
      workers: 4,
      rolloutBudget: 5,
      metricsPort: 8080,
      logLevel: 'info',
      auditMs: 5 * 60_000,
      resyncMs: 10 * 60_000,
      settleMs: 3_000,
      evictionDryRun: true,
      reports: false,
      policyReports: false,
      crossNamespaceTerms: 'allow',
    },
  },
  {
    name: 'all-features values',
    options: { valuesFiles: [ALL_FEATURES] },
    replicas: 3,
    leaseName: FEATURES.leaderElection.leaseName,
    metricsPort: FEATURES.metrics.port,
    serviceAccount: FEATURES.serviceAccount.name,
    remediation: true,
    reports: true,
    policyReports: true,
    optionalKinds: [
      'ServiceMonitor',
      'PrometheusRule',
      'ConfigMap',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ],
    config: {
      leaderElect: true,
      leaseName: FEATURES.leaderElection.leaseName,
      workers: 16,
      rolloutBudget: 20,
      metricsPort: FEATURES.metrics.port,
      logLevel: 'warn', // extraArgs come last and win
      auditMs: 2 * 60_000,
      resyncMs: 90 * 60_000,
      evictionDryRun: false,
      reports: true,
      policyReports: true,
      crossNamespaceTerms: 'deny',
    },
  },
];

const ALWAYS = [
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'Deployment',
  'PodDisruptionBudget',
];

/** Kinds that live outside any namespace. */
const CLUSTER_SCOPED = new Set([
  'ClusterRole',
  'ClusterRoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

/** The Roles and ClusterRoles a binding of the chart binds: the operator's own. */
function operatorRoles(objects: readonly Manifest[]): RoleObject[] {
  const bound = new Set(
    objects
      .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
      .map((b) => `${(b as Binding).roleRef.kind}/${(b as Binding).roleRef.name}`),
  );
  return objects.filter(
    (o) => o.kind.endsWith('Role') && bound.has(`${o.kind}/${o.metadata.name}`),
  ) as RoleObject[];
}

const subset = (labels: StringMap | undefined, of: StringMap): boolean =>
  labels !== undefined &&
  Object.keys(labels).length > 0 &&
  Object.entries(labels).every(([k, v]) => of[k] === v);

void describe('helm lint', () => {
  for (const variant of VARIANTS) {
    void test(`is clean with ${variant.name} (--strict)`, () => {
      const values = (variant.options.valuesFiles ?? []).flatMap((f) => ['--values', f]);
      const ran = helm([
        'lint',
        CHART_DIR,
        '--strict',
        '--namespace',
        DEFAULT_NAMESPACE,
        ...values,
      ]);
      assert.equal(ran.status, 0, ran.stdout + ran.stderr);
      assert.doesNotMatch(ran.stdout, /\[(WARNING|ERROR)\]/, ran.stdout);
      assert.match(ran.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

for (const variant of VARIANTS) {
  void describe(`rendered with ${variant.name}`, () => {
    const objects = render(variant.options);
    const deployment = only(objects, 'Deployment') as Deployment;
    const pod = deployment.spec.template.spec;
    const podLabels = deployment.spec.template.metadata.labels;
    const container = pod.containers[0];
    assert.ok(container !== undefined, 'the Deployment has a container');
    const sc = container.securityContext ?? {};

    void test('renders exactly the expected kinds, in the release namespace', () => {
      const kinds = new Set(objects.map((o) => o.kind));
      assert.deepEqual([...kinds].sort(), [...ALWAYS, ...variant.optionalKinds].sort());
      for (const o of objects) {
        if (CLUSTER_SCOPED.has(o.kind)) {
          assert.equal(o.metadata.namespace, undefined, `${o.kind} ${o.metadata.name}`);
        } else {
          assert.equal(o.metadata.namespace, DEFAULT_NAMESPACE, `${o.kind} ${o.metadata.name}`);
        }
        assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'placement-operator');
      }
    });

    // One case per requirement, so a failure names the requirement.
    const requirements: readonly { name: string; actual: () => unknown; want: unknown }[] = [
      { name: 'replicas', actual: () => deployment.spec.replicas, want: variant.replicas },
      { name: 'pod runAsNonRoot', actual: () => pod.securityContext?.runAsNonRoot, want: true },
      { name: 'pod runAsUser 65532', actual: () => pod.securityContext?.runAsUser, want: 65532 },
      {
        name: 'pod seccompProfile RuntimeDefault',
        actual: () => pod.securityContext?.seccompProfile?.type,
        want: 'RuntimeDefault',
      },
      { name: 'container runAsNonRoot', actual: () => sc.runAsNonRoot, want: true },
      { name: 'container runAsUser 65532', actual: () => sc.runAsUser, want: 65532 },
      { name: 'readOnlyRootFilesystem', actual: () => sc.readOnlyRootFilesystem, want: true },
      {
        name: 'allowPrivilegeEscalation false',
        actual: () => sc.allowPrivilegeEscalation,
        want: false,
      },
      { name: 'not privileged', actual: () => sc.privileged ?? false, want: false },
      { name: 'capabilities drop ALL', actual: () => sc.capabilities?.drop, want: ['ALL'] },
      { name: 'no added capabilities', actual: () => sc.capabilities?.add ?? [], want: [] },
      {
        name: 'container seccompProfile RuntimeDefault',
        actual: () => sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type,
        want: 'RuntimeDefault',
      },
      {
        name: 'no host network or PID',
        actual: () => [pod.hostNetwork, pod.hostPID],
        want: [undefined, undefined],
      },
      {
        name: 'its own ServiceAccount',
        actual: () => pod.serviceAccountName,
        want: variant.serviceAccount,
      },
      {
        name: 'metrics container port',
        actual: () => container.ports?.find((p) => p.name === 'metrics')?.containerPort,
        want: variant.metricsPort,
      },
      {
        name: 'liveness probe GET /healthz on the metrics port',
        actual: () => container.livenessProbe?.httpGet,
        want: { path: '/healthz', port: 'metrics' },
      },
      {
        name: 'readiness probe GET /readyz on the metrics port',
        actual: () => container.readinessProbe?.httpGet,
        want: { path: '/readyz', port: 'metrics' },
      },
      {
        name: 'POD_NAME and POD_NAMESPACE from the downward API',
        actual: () =>
          ['POD_NAME', 'POD_NAMESPACE'].map(
            (name) => container.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath,
          ),
        want: ['metadata.name', 'metadata.namespace'],
      },
      {
        name: 'CPU and memory requests and limits',
        actual: () =>
          [container.resources?.requests, container.resources?.limits].map((r) =>
            ['cpu', 'memory'].every((k) => r?.[k] !== undefined),
          ),
        want: [true, true],
      },
      {
        name: 'leader election on, with the Lease the Role names',
        actual: () => [
          container.args?.includes('--leader-elect=true'),
          container.args?.includes(`--lease-name=${variant.leaseName}`),
        ],
        want: [true, true],
      },
      {
        name: 'eviction dry-run exactly when remediation is off',
        actual: () => container.args?.includes('--eviction-dry-run'),
        want: !variant.remediation,
      },
      {
        name: 'runs the built entry point',
        actual: () => container.args?.[0],
        want: '/app/dist/main.js',
      },
      {
        name: 'image pinned to a tag or digest, never latest',
        actual: () =>
          /(:[\w.-]+|@sha256:[a-f0-9]{64})$/.test(container.image) &&
          !container.image.endsWith(':latest'),
        want: true,
      },
      {
        name: 'zone spread selects its own replicas',
        actual: () =>
          pod.topologySpreadConstraints?.some(
            (c) =>
              c.topologyKey === 'topology.kubernetes.io/zone' &&
              subset(c.labelSelector?.matchLabels, podLabels),
          ),
        want: true,
      },
      {
        name: 'anti-affinity between its own replicas per node',
        actual: () =>
          pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.some(
            (t) =>
              t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
              subset(t.podAffinityTerm.labelSelector?.matchLabels, podLabels),
          ),
        want: true,
      },
      {
        name: 'Deployment selector matches its pod labels',
        actual: () => subset(deployment.spec.selector.matchLabels, podLabels),
        want: true,
      },
    ];
    for (const r of requirements) {
      void test(`Deployment: ${r.name}`, () => {
        assert.deepEqual(r.actual(), r.want);
      });
    }

    void test('every flag the entry point takes is passed as --name=value or a bare boolean', () => {
      for (const arg of (container.args ?? []).slice(1)) {
        assert.match(arg, /^--[a-z][a-z0-9-]*(=.+)?$/, arg);
      }
    });

    void test('src/main.ts reads the rendered flags as the values say', async (t) => {
      if (!existsSync(MAIN_TS)) {
        t.skip('src/main.ts does not exist yet');
        return;
      }
      // A variable path: the flag contract is checked at run time, not by tsc.
      const main = (await import(MAIN_TS)) as { readConfig?: ReadConfig };
      assert.equal(typeof main.readConfig, 'function', 'src/main.ts exports readConfig');
      const env = {
        POD_NAME: 'po-0',
        POD_NAMESPACE: DEFAULT_NAMESPACE,
        KUBERNETES_SERVICE_HOST: '10.0.0.1',
      };
      const config = main.readConfig?.((container.args ?? []).slice(1), env);
      assert.ok(
        typeof config === 'object' && config !== null,
        `readConfig returned ${String(config)}`,
      );
      const c = config as Record<string, unknown>;
      assert.deepEqual(
        Object.fromEntries(Object.keys(variant.config).map((k) => [k, c[k]])),
        variant.config,
      );
    });

    void test('PodDisruptionBudget keeps one replica up and selects the pods', () => {
      const pdb = only(objects, 'PodDisruptionBudget') as Pdb;
      assert.ok(Number(pdb.spec.minAvailable) >= 1);
      assert.ok(subset(pdb.spec.selector.matchLabels, podLabels));
    });

    void test('metrics Service targets the metrics port of these pods', () => {
      const service = only(objects, 'Service') as Service;
      assert.ok(subset(service.spec.selector, podLabels));
      assert.deepEqual(
        service.spec.ports.map((p) => [p.name, p.targetPort]),
        [['metrics', 'metrics']],
      );
    });

    void test('RBAC is exactly the operator permission table: nothing missing, nothing extra', () => {
      const actual = operatorRoles(objects).flatMap((o) =>
        ruleKeys(
          o.rules,
          o.kind === 'ClusterRole' ? 'cluster' : `ns:${o.metadata.namespace ?? ''}`,
        ),
      );
      const want = permissionKeys(
        grantsFor(
          variant.leaseName,
          variant.remediation,
          true,
          variant.reports,
          variant.policyReports,
        ),
        DEFAULT_NAMESPACE,
      );
      assert.deepEqual([...new Set(actual)].sort(), [...new Set(want)].sort());
    });

    void test('RBAC: no secrets, no wildcards, no non-resource URLs', () => {
      for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
        for (const rule of (o as RoleObject).rules) {
          const where = `${o.kind} ${o.metadata.name}: ${JSON.stringify(rule)}`;
          for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames]) {
            assert.ok(!(field ?? []).some((x) => x.includes('*')), `wildcard in ${where}`);
          }
          assert.ok(
            !(rule.resources ?? []).some((r) => r.startsWith('secrets')),
            `secrets in ${where}`,
          );
          assert.equal(rule.nonResourceURLs, undefined, where);
        }
      }
    });

    void test('reports are granted only when turned on', () => {
      const rules = (group: string) =>
        operatorRoles(objects)
          .flatMap((o) => o.rules)
          .filter((r) => (r.apiGroups ?? []).includes(group));
      assert.equal(rules('openreports.io').length, variant.reports ? 2 : 0);
      assert.equal(rules('wgpolicyk8s.io').length, variant.policyReports ? 2 : 0);
    });

    void test('eviction is granted only with audit.remediation.enabled', () => {
      const evictionRules = operatorRoles(objects)
        .flatMap((o) => o.rules)
        .filter((r) => (r.resources ?? []).includes('pods/eviction'));
      assert.equal(evictionRules.length, variant.remediation ? 1 : 0);
    });

    void test('the roles that no binding names are exactly the user roles (default values)', () => {
      const operator = new Set(operatorRoles(objects));
      const unbound = objects
        .filter((o) => o.kind.endsWith('Role') && !operator.has(o as RoleObject))
        .map((o) => o.metadata.name)
        .sort();
      const fullname = only(objects, 'Deployment').metadata.name;
      assert.deepEqual(
        unbound,
        userRoles(DEFAULT_AGGREGATED_ROLES)
          .map((r) => `${fullname}-${r.suffix}`)
          .sort(),
      );
    });

    void test('every binding binds a role of this chart to its ServiceAccount only', () => {
      const roles = new Set(
        objects.filter((o) => o.kind.endsWith('Role')).map((o) => `${o.kind}/${o.metadata.name}`),
      );
      const bindings = objects.filter(
        (o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding',
      ) as Binding[];
      assert.ok(bindings.length >= 2);
      for (const b of bindings) {
        assert.ok(
          roles.has(`${b.roleRef.kind}/${b.roleRef.name}`),
          `${b.metadata.name} -> ${b.roleRef.name}`,
        );
        assert.deepEqual(b.subjects, [
          { kind: 'ServiceAccount', name: variant.serviceAccount, namespace: DEFAULT_NAMESPACE },
        ]);
      }
    });

    void test('the Lease Role lives in the release namespace', () => {
      const role = only(objects, 'Role') as RoleObject;
      assert.equal(role.metadata.namespace, DEFAULT_NAMESPACE);
      assert.ok(role.rules.every((r) => (r.resources ?? []).every((x) => x === 'leases')));
    });
  });
}

void describe('monitoring objects (all-features values)', () => {
  const objects = render({ valuesFiles: [ALL_FEATURES] });
  const service = only(objects, 'Service') as Service;

  void test('ServiceMonitor scrapes the metrics Service by its port name', () => {
    const monitor = only(objects, 'ServiceMonitor') as ServiceMonitor;
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.ok(subset(monitor.spec.selector.matchLabels, service.metadata.labels ?? {}));
    assert.deepEqual(
      monitor.spec.endpoints.map((e) => [e.port, e.path]),
      [['metrics', '/metrics']],
    );
    assert.equal(monitor.metadata.labels?.['release'], 'prometheus', 'serviceMonitor.labels');
  });

  void test('PrometheusRule carries files/alerts.yaml: groups of rules with expressions', (t) => {
    const rule = only(objects, 'PrometheusRule') as PrometheusRule;
    const fromFile = parse(
      readFileSync(join(CHART_DIR, 'files', 'alerts.yaml'), 'utf8'),
    ) as unknown;
    assert.deepEqual(rule.spec, fromFile);
    assert.ok(rule.spec.groups.length > 0);
    for (const group of rule.spec.groups) {
      assert.ok(group.rules.length > 0, group.name);
      for (const r of group.rules) {
        assert.ok((r.alert ?? r.record) !== undefined && r.expr.trim() !== '', JSON.stringify(r));
      }
      if (group.name.endsWith('.placeholder')) {
        t.diagnostic('files/alerts.yaml is still the packaging placeholder');
      }
    }
  });

  void test('metrics.prometheusRule.violationsFor sets the for of PlacementViolations only', () => {
    const fromFile = parse(
      readFileSync(join(CHART_DIR, 'files', 'alerts.yaml'), 'utf8'),
    ) as PrometheusRule['spec'];
    const rule = only(
      render({ valuesFiles: [ALL_FEATURES], set: ['metrics.prometheusRule.violationsFor=5s'] }),
      'PrometheusRule',
    ) as PrometheusRule;
    const forOf = (spec: PrometheusRule['spec']) =>
      spec.groups.flatMap((g) => g.rules.map((r) => [r.alert ?? r.record, r.for]));
    assert.deepEqual(
      forOf(rule.spec),
      forOf(fromFile).map(([name, d]) => [name, name === 'PlacementViolations' ? '5s' : d]),
    );
  });

  void test('Grafana dashboard ConfigMap: grafana_dashboard "1" and the JSON of files/dashboard.json', (t) => {
    const cm = only(objects, 'ConfigMap', '-dashboard') as ConfigMap;
    assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
    const json = cm.data['placement-operator.json'];
    assert.ok(json !== undefined);
    const dashboard = JSON.parse(json) as { title?: string; __placeholder?: string };
    assert.deepEqual(
      dashboard,
      JSON.parse(readFileSync(join(CHART_DIR, 'files', 'dashboard.json'), 'utf8')),
    );
    assert.ok(typeof dashboard.title === 'string');
    if (dashboard.__placeholder !== undefined) {
      t.diagnostic('files/dashboard.json is still the packaging placeholder');
    }
  });
});

void describe('values that change the shape', () => {
  void test('one replica without leader election: no Lease Role, no PDB, --leader-elect=false', () => {
    const objects = render({ set: ['replicas=1', 'leaderElection.enabled=false'] });
    const kinds = objects.map((o) => o.kind);
    assert.ok(!kinds.includes('Role') && !kinds.includes('RoleBinding'), kinds.join(', '));
    assert.ok(
      !kinds.includes('PodDisruptionBudget'),
      'minAvailable 1 with one replica would block drains',
    );
    const args =
      (only(objects, 'Deployment') as Deployment).spec.template.spec.containers[0]?.args ?? [];
    assert.ok(args.includes('--leader-elect=false'), args.join(' '));
    assert.ok(!args.some((a) => a.startsWith('--lease-name')), args.join(' '));
  });

  void test('remediation in dry-run keeps the eviction grant and passes --eviction-dry-run', () => {
    const objects = render({
      set: ['audit.remediation.enabled=true', 'audit.remediation.dryRun=true'],
    });
    const args =
      (only(objects, 'Deployment') as Deployment).spec.template.spec.containers[0]?.args ?? [];
    assert.ok(args.includes('--eviction-dry-run'));
    assert.ok(
      objects.some((o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-remediation')),
    );
  });

  void test('tenancy.crossNamespaceTerms: Deny adds the admission policy and the operator flag; Allow neither', () => {
    const shape = (o: RenderOptions) => {
      const objects = render(o);
      const args =
        (only(objects, 'Deployment') as Deployment).spec.template.spec.containers[0]?.args ?? [];
      return {
        flag: args.filter((a) => a.startsWith('--namespaced-policy-cross-namespace-terms')),
        admission: objects.filter((x) => x.kind.startsWith('ValidatingAdmissionPolicy')),
      };
    };
    const allow = shape({});
    assert.deepEqual(allow.flag, ['--namespaced-policy-cross-namespace-terms=allow']);
    assert.deepEqual(allow.admission, []);
    const deny = shape({ set: ['tenancy.crossNamespaceTerms=Deny'] });
    assert.deepEqual(deny.flag, ['--namespaced-policy-cross-namespace-terms=deny']);
    const [policy, binding] = deny.admission as [AdmissionPolicy, AdmissionBinding];
    assert.equal(policy.kind, 'ValidatingAdmissionPolicy');
    assert.equal(binding.kind, 'ValidatingAdmissionPolicyBinding');
    assert.equal(binding.spec.policyName, policy.metadata.name);
    assert.deepEqual(binding.spec.validationActions, ['Deny']);
    assert.deepEqual(policy.spec.matchConstraints.resourceRules, [
      {
        apiGroups: ['placement.dev'],
        apiVersions: ['*'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['placementpolicies'],
      },
    ]);
    // One check per list of terms and field, each naming its field in the message.
    const named = policy.spec.validations.map((v) =>
      /^'(spec\.affinity\.\w+\.\w+)\[.*?'(\S*?)\.(\w+):/s.exec(v.messageExpression)?.slice(1),
    );
    assert.equal(named.length, 8);
    for (const kind of ['podAffinity', 'podAntiAffinity'])
      for (const list of ['required', 'preferred'])
        for (const field of ['namespaceSelector', 'namespaces'])
          assert.ok(
            named.some(
              (n) =>
                n?.[0] === `spec.affinity.${kind}.${list}DuringSchedulingIgnoredDuringExecution` &&
                n[1] === (list === 'preferred' ? ']' + '.podAffinityTerm' : ']') &&
                n[2] === field,
            ),
            `${kind} ${list} ${field}: ${JSON.stringify(named)}`,
          );
  });

  void test('image digest wins over the tag; an empty tag means the appVersion', () => {
    const image = (o: RenderOptions): string =>
      (only(render(o), 'Deployment') as Deployment).spec.template.spec.containers[0]?.image ?? '';
    assert.equal(image({}), 'registry.example/placement-operator:0.1.0');
    const digest = `sha256:${'ab'.repeat(32)}`;
    assert.equal(
      image({ set: [`image.digest=${digest}`] }),
      `registry.example/placement-operator@${digest}`,
    );
  });
});

void describe('roles for the cluster’s users (aggregatedRoles)', () => {
  const AGGREGATE = 'rbac.authorization.k8s.io/aggregate-to-';
  const variants: readonly { name: string; values: AggregatedRolesValues }[] = [
    { name: 'default values', values: DEFAULT_AGGREGATED_ROLES },
    {
      name: 'all aggregation off',
      values: { admin: false, edit: false, view: false, exceptionsToAdmin: false },
    },
    {
      name: 'only view, exceptions aggregated into admin',
      values: { admin: false, edit: false, view: true, exceptionsToAdmin: true },
    },
    {
      name: 'admin off, edit and view on',
      values: { ...DEFAULT_AGGREGATED_ROLES, admin: false },
    },
  ];
  for (const { name, values } of variants) {
    void test(`${name}: the user roles are exactly the table, label for label and rule for rule`, () => {
      const objects = render({
        set: Object.entries(values).map(([k, v]) => `aggregatedRoles.${k}=${String(v)}`),
      });
      const fullname = only(objects, 'Deployment').metadata.name;
      const bound = new Set(operatorRoles(objects));
      const rendered = objects
        .filter((o) => o.kind === 'ClusterRole' && !bound.has(o as RoleObject))
        .map((o) => ({
          name: o.metadata.name,
          aggregateTo: Object.entries(o.metadata.labels ?? {})
            .filter(([k, v]) => k.startsWith(AGGREGATE) && v === 'true')
            .map(([k]) => k.slice(AGGREGATE.length))
            .sort(),
          rules: [...new Set(ruleKeys((o as RoleObject).rules, 'cluster'))].sort(),
        }))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      const want = userRoles(values)
        .map((r) => ({
          name: `${fullname}-${r.suffix}`,
          aggregateTo: [...r.aggregateTo].sort(),
          rules: [
            ...new Set(
              permissionKeys(
                r.grants.map((g) => ({ ...g, scope: 'cluster' as const, when: 'always' as const })),
                DEFAULT_NAMESPACE,
              ),
            ),
          ].sort(),
        }))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      assert.deepEqual(rendered, want);
    });
  }

  void test('no user role writes ClusterPlacementPolicies or any status, or uses a wildcard', () => {
    const objects = render({ set: ['aggregatedRoles.exceptionsToAdmin=true'] });
    const bound = new Set(operatorRoles(objects));
    const keys = objects
      .filter((o) => o.kind === 'ClusterRole' && !bound.has(o as RoleObject))
      .flatMap((o) => ruleKeys((o as RoleObject).rules, 'cluster'));
    assert.ok(keys.length > 0);
    const writes = ['create', 'update', 'patch', 'delete'];
    const bad = keys.filter((k) => {
      const [, group = '', resource = '', verb = ''] = k.split(' ');
      return (
        k.includes('*') ||
        group !== 'placement.dev' ||
        (writes.includes(verb) &&
          (resource.startsWith('clusterplacementpolicies') || resource.includes('/status')))
      );
    });
    assert.deepEqual(bad, []);
  });

  void test('the user roles are never bound by the chart: the cluster’s roles bind them', () => {
    const objects = render();
    const names = new Set(
      objects
        .filter(
          (o) => o.kind === 'ClusterRole' && !new Set(operatorRoles(objects)).has(o as RoleObject),
        )
        .map((o) => o.metadata.name),
    );
    assert.equal(names.size, 4);
    for (const b of objects.filter((o) => o.kind.endsWith('Binding')) as Binding[]) {
      assert.ok(!names.has(b.roleRef.name), `${b.metadata.name} binds ${b.roleRef.name}`);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Bad values: helm template must fail, and the message must name the value.

interface BadValues {
  readonly name: string;
  readonly set?: readonly string[];
  readonly setJson?: readonly string[];
  readonly message: RegExp;
}

const SCHEMA = /values don't meet the specifications of the schema/;

const BAD_VALUES: readonly BadValues[] = [
  { name: 'replicas 0', set: ['replicas=0'], message: /at '\/replicas': minimum: got 0, want 1/ },
  {
    name: 'rolloutBudget 0',
    set: ['rolloutBudget=0'],
    message: /at '\/rolloutBudget': minimum: got 0, want 1/,
  },
  { name: 'workers 0', set: ['workers=0'], message: /at '\/workers': minimum: got 0, want 1/ },
  { name: 'workers 65', set: ['workers=65'], message: /at '\/workers': maximum: got 65, want 64/ },
  {
    name: 'workers not a number',
    set: ['workers=four'],
    message: /at '\/workers': got string, want integer/,
  },
  {
    name: 'logLevel verbose',
    set: ['logLevel=verbose'],
    message: /at '\/logLevel': value must be one of 'debug', 'info', 'warn', 'error'/,
  },
  {
    name: 'image.tag a number',
    set: ['image.tag=1'],
    message: /at '\/image\/tag': got number, want string/,
  },
  {
    name: 'image.digest not sha256',
    set: ['image.digest=latest'],
    message: /at '\/image\/digest'/,
  },
  {
    name: 'pullPolicy unknown',
    set: ['image.pullPolicy=Sometimes'],
    message: /at '\/image\/pullPolicy': value must be one of/,
  },
  {
    name: 'resources.requests.cpu not a quantity',
    set: ['resources.requests.cpu=lots'],
    message: /at '\/resources\/requests\/cpu': 'lots' does not match pattern/,
  },
  {
    name: 'resources flat (no requests/limits)',
    setJson: ['resources={"cpu":"1"}'],
    message: /at '\/resources': additional properties 'cpu' not allowed/,
  },
  {
    name: 'resources a string',
    set: ['resources=big'],
    message: /at '\/resources': got string, want object/,
  },
  {
    name: 'unknown top-level key (typo)',
    set: ['replicaCount=3'],
    message: /additional properties 'replicaCount' not allowed/,
  },
  {
    name: 'auditInterval not a duration',
    set: ['auditInterval=5min'],
    message: /at '\/auditInterval': '5min' does not match pattern/,
  },
  // src/main.ts reads one number and one unit.
  {
    name: 'resyncInterval with two units',
    set: ['resyncInterval=1h30m'],
    message: /at '\/resyncInterval': '1h30m' does not match pattern/,
  },
  {
    name: 'metrics.prometheusRule.violationsFor not a duration',
    set: ['metrics.prometheusRule.violationsFor=soon'],
    message: /at '\/metrics\/prometheusRule\/violationsFor': 'soon' does not match pattern/,
  },
  {
    name: 'metrics.port privileged',
    set: ['metrics.port=80'],
    message: /at '\/metrics\/port': minimum: got 80, want 1,?024/,
  },
  {
    name: 'remediation.enabled not a boolean',
    set: ['audit.remediation.enabled=yes'],
    message: /at '\/audit\/remediation\/enabled': got string, want boolean/,
  },
  {
    name: 'extraArgs not flags',
    setJson: ['extraArgs=["rm -rf"]'],
    message: /at '\/extraArgs\/0'/,
  },
  {
    name: 'tenancy.crossNamespaceTerms lower case',
    set: ['tenancy.crossNamespaceTerms=deny'],
    message: /at '\/tenancy\/crossNamespaceTerms': value must be one of 'Allow', 'Deny'/,
  },
  {
    name: 'aggregatedRoles.admin not a boolean',
    set: ['aggregatedRoles.admin=yes'],
    message: /at '\/aggregatedRoles\/admin': got string, want boolean/,
  },
  {
    name: 'aggregatedRoles with an unknown role (typo)',
    set: ['aggregatedRoles.viewer=true'],
    message: /additional properties 'viewer' not allowed/,
  },
  {
    name: 'two replicas without leader election',
    set: ['leaderElection.enabled=false'],
    message: /replicas is 2 but leaderElection.enabled is false/,
  },
  {
    name: 'existing ServiceAccount without a name',
    set: ['serviceAccount.create=false'],
    message: /serviceAccount.name is required when serviceAccount.create is false/,
  },
];

void describe('bad values are refused with a message that names them', () => {
  for (const c of BAD_VALUES) {
    void test(c.name, () => {
      const args = [
        'template',
        DEFAULT_RELEASE,
        CHART_DIR,
        ...(c.set ?? []).flatMap((s) => ['--set', s]),
        ...(c.setJson ?? []).flatMap((s) => ['--set-json', s]),
      ];
      const ran = helm(args);
      assert.notEqual(ran.status, 0, `helm ${args.join(' ')} rendered`);
      assert.match(ran.stderr, c.message);
      if (!/leaderElection|serviceAccount\.name/.test(c.message.source))
        assert.match(ran.stderr, SCHEMA);
    });
  }

  void test('the default values pass the schema (sanity check of the table above)', () => {
    assert.equal(tryRender().status, 0);
  });
});

void describe('CRDs', () => {
  const chartCrds = join(CHART_DIR, 'crds');
  const repoCrds = join(REPO_ROOT, 'crds');

  void test('the chart carries crds/ byte for byte (else run hack/chart-sync-crds.sh)', () => {
    const names = readdirSync(repoCrds)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    assert.deepEqual(
      readdirSync(chartCrds)
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
      names,
      'run hack/chart-sync-crds.sh',
    );
    for (const name of names) {
      assert.ok(
        readFileSync(join(chartCrds, name)).equals(readFileSync(join(repoCrds, name))),
        `charts/placement-operator/crds/${name} differs from crds/${name}: run hack/chart-sync-crds.sh`,
      );
    }
  });

  void test('--include-crds renders every CRD ahead of the templates', () => {
    const objects = render({ includeCrds: true });
    const crds = objects
      .filter((o) => o.kind === 'CustomResourceDefinition')
      .map((o) => o.metadata.name);
    assert.deepEqual(crds.sort(), [
      'clusterplacementpolicies.placement.dev',
      'placementexceptions.placement.dev',
      'placementpolicies.placement.dev',
    ]);
    assert.equal(objects[0]?.kind, 'CustomResourceDefinition');
  });

  void test('files/alerts.yaml and files/dashboard.json exist (the templates include them)', () => {
    for (const file of ['alerts.yaml', 'dashboard.json']) {
      const path = join(CHART_DIR, 'files', file);
      assert.ok(existsSync(path), `${path} is missing`);
    }
  });
});
