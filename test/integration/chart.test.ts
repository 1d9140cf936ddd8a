// Not a clusterTest: the chart installs its own CRDs, namespace and operator with helm.
// The Helm chart on a real API server:
//
//   hack/node --test --test-global-setup=test/global-setup.ts test/integration/chart.test.ts
//
// (or without the global setup: harness.ts then starts a control plane of its own).
// The chart's CRDs are installed for real; the default and the all-features renders pass
// a server-side dry-run apply (schema, defaulting and admission, nothing stored); `helm
// install` brings the Deployment up on the fake nodes. Then, with a token of the chart's
// own ServiceAccount (`kubectl create token`), `kubectl auth can-i` proves every
// permission of test/chart/operator-permissions.ts holds and each refusal in DENIALS
// holds too (no secrets, no eviction while remediation is off); that taking one verb out
// of the ClusterRole makes its check fail (so the checks are not vacuous); and that
// audit.remediation.enabled grants eviction and takes it back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';

import { writeTokenKubeconfig } from '../cluster/operator-account.ts';
import { REPO_ROOT, defaultBinDir } from '../cluster/paths.ts';
import {
  ALL_FEATURES,
  CHART_DIR,
  helm,
  parseManifests,
  templateArgs,
  tryRender,
  type Manifest,
  type Ran,
} from '../chart/helm.ts';
import {
  DENIALS,
  grantsFor,
  ruleKeys,
  type Denial,
  type Grant,
  type PolicyRule,
  type Verb,
} from '../chart/operator-permissions.ts';
import { Scope } from './operator/support.ts';
import {
  EVERYONE_FIELD,
  everyonePolicy,
  runTenantScenario,
  TENANT_OPERATOR_FLAGS,
  tenantWorld,
} from './audit/tenant.ts';
import { DEFAULT_AGGREGATED_ROLES, userRoles } from '../chart/user-roles.ts';
import {
  cluster,
  CRD_NAMES,
  scrape,
  startOperator,
  uniqueName,
  waitEstablished,
  waitFor,
  type Cluster,
  type OperatorProcess,
} from './harness.ts';

const run = promisify(execFile);
const KUBECTL = join(process.env['PLACEMENT_TEST_BIN_DIR'] || defaultBinDir(), 'kubectl');
const CHART_CRDS = join(CHART_DIR, 'crds');
const LEASE = 'placement-operator';
const FIELD_MANAGER = 'chart-test';
const MONITORING_GROUP = 'monitoring.coreos.com';

// ---------------------------------------------------------------------------------------
// kubectl as the chart's ServiceAccount

/** A kubeconfig that authenticates with a ServiceAccount token only (no client cert). */
const serviceAccountKubeconfig = (
  c: Cluster,
  dir: string,
  namespace: string,
  serviceAccount: string,
): Promise<string> =>
  writeTokenKubeconfig(
    (...args) => c.kubectl(...args),
    namespace,
    serviceAccount,
    join(dir, `${serviceAccount}.kubeconfig`),
    '1h',
  );

/** `group/resource[/sub]` as kubectl auth can-i wants it: resource.group, --subresource. */
function canIArgs(
  verb: Verb,
  group: string,
  resource: string,
  name: string | undefined,
  where: string[],
): string[] {
  const [plural = '', subresource] = resource.split('/');
  const qualified = group === '' ? plural : `${plural}.${group}`;
  return [
    'auth',
    'can-i',
    verb,
    name === undefined ? qualified : `${qualified}/${name}`,
    ...(subresource === undefined ? [] : [`--subresource=${subresource}`]),
    ...where,
  ];
}

/**
 * Asks the API server (SelfSubjectAccessReview) as the kubeconfig's user. Only a plain
 * "yes" or "no" counts: an authentication error must not pass for a refusal.
 */
async function canI(kubeconfig: string, args: string[]): Promise<boolean> {
  const answer = await run(KUBECTL, args, { env: { ...process.env, KUBECONFIG: kubeconfig } }).then(
    (r) => r.stdout,
    (error: unknown) => {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      if (e.code === 1 && e.stdout?.trim() === 'no') return e.stdout;
      throw new Error(`kubectl ${args.join(' ')}: ${e.stderr ?? String(error)}`);
    },
  );
  const word = answer.trim();
  if (word !== 'yes' && word !== 'no') throw new Error(`kubectl ${args.join(' ')}: ${answer}`);
  return word === 'yes';
}

const grantChecks = (grant: Grant, namespace: string): { verb: Verb; args: string[] }[] =>
  grant.verbs.flatMap((verb) =>
    (grant.resourceNames ?? [undefined]).map((name) => ({
      verb,
      args: canIArgs(
        verb,
        grant.group,
        grant.resource,
        name,
        grant.scope === 'cluster' ? ['--all-namespaces'] : ['-n', namespace],
      ),
    })),
  );

const denialArgs = (d: Denial, namespace: string): string[] =>
  canIArgs(
    d.verb,
    d.group,
    d.resource,
    d.name,
    d.where === 'all-namespaces'
      ? ['--all-namespaces']
      : ['-n', d.where === 'release-namespace' ? namespace : 'default'],
  );

// ---------------------------------------------------------------------------------------
// helm against the cluster

function helmOn(c: Cluster, args: readonly string[]): Ran {
  return helm([...args, '--kubeconfig', c.kubeconfigPath]);
}

function mustHelm(c: Cluster, args: readonly string[]): string {
  const ran = helmOn(c, args);
  assert.equal(ran.status, 0, `helm ${args.join(' ')}: ${ran.stderr}`);
  return ran.stdout;
}

async function installChartCrds(c: Cluster): Promise<void> {
  // Same field manager (kubectl's default) as harness.installCrds, so the two agree.
  await c.kubectl('apply', '--server-side', '--force-conflicts', '-f', CHART_CRDS);
  await waitEstablished(c, CRD_NAMES);
}

/** Renders for the namespace and dry-runs every object the cluster can serve. */
async function dryRun(
  t: TestContext,
  c: Cluster,
  namespace: string,
  valuesFiles: readonly string[],
): Promise<Manifest[]> {
  const ran = tryRender({ release: 'dry', namespace, valuesFiles });
  assert.equal(
    ran.status,
    0,
    `helm ${templateArgs({ namespace, valuesFiles }).join(' ')}: ${ran.stderr}`,
  );
  const objects = parseManifests(ran.stdout, 'helm template');
  const monitoringServed =
    (await c.kubectl('api-resources', `--api-group=${MONITORING_GROUP}`, '-o', 'name')).trim() !==
    '';
  const applicable = objects.filter(
    (o) => monitoringServed || !o.apiVersion.startsWith(`${MONITORING_GROUP}/`),
  );
  const skipped = objects.filter((o) => !applicable.includes(o)).map((o) => o.kind);
  if (skipped.length > 0) {
    t.diagnostic(
      `not served by this cluster, so not dry-run: ${skipped.join(', ')} (${MONITORING_GROUP})`,
    );
  }
  const out = await c.apply(
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: applicable }),
    '--server-side',
    '--dry-run=server',
    `--field-manager=${FIELD_MANAGER}`,
  );
  for (const o of applicable) {
    const name = o.metadata.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(
      out,
      new RegExp(`/${name} .*\\(server dry run\\)`),
      `${o.kind} ${o.metadata.name}`,
    );
  }
  return applicable;
}

// ---------------------------------------------------------------------------------------

/**
 * Runs the real operator (src/main.ts) as a local process whose only credentials are the
 * token of this test's own release's ServiceAccount (not the suite's shared one), against
 * that release's Lease: the chart as `helm install` made it is enough for the operator.
 */
function startOperatorWithChartServiceAccount(
  c: Cluster,
  serviceAccountKubeconfigPath: string,
  namespace: string,
  serviceAccount: string,
  ...flags: string[]
): OperatorProcess {
  return startOperator(
    {
      ...c,
      operator: {
        kubeconfigPath: serviceAccountKubeconfigPath,
        namespace,
        lease: LEASE,
        user: `system:serviceaccount:${namespace}:${serviceAccount}`,
      },
    },
    '--leader-elect=true',
    `--lease-name=${LEASE}`,
    `--lease-namespace=${namespace}`,
    '--identity=chart-test',
    '--eviction-dry-run',
    ...flags,
  );
}

const MAIN_TS = join(REPO_ROOT, 'src', 'main.ts');

interface DeploymentStatus {
  status?: { availableReplicas?: number };
}
interface PodList {
  items: { spec: { nodeName?: string } }[];
}
interface RoleJson {
  rules: PolicyRule[];
}

void test('the Helm chart on a real control plane', { timeout: 900_000 }, async (t) => {
  const c = await cluster();
  const namespace = uniqueName('chart');
  const release = uniqueName('po');
  const fullname = `${release}-placement-operator`;
  const dir = await mkdtemp(join(tmpdir(), 'chart-test-'));
  await c.kubectl('create', 'namespace', namespace);
  t.after(async () => {
    helmOn(c, ['uninstall', release, '--namespace', namespace, '--wait', '--timeout=2m']);
    await c.kubectl('delete', 'namespace', namespace, '--wait=false').catch(() => '');
    await rm(dir, { recursive: true, force: true });
  });

  await t.test('the chart CRDs install and become Established', () => installChartCrds(c));

  await t.test('server-side dry-run: default values', async (st) => {
    const objects = await dryRun(st, c, namespace, []);
    assert.ok(objects.some((o) => o.kind === 'Deployment'));
  });

  await t.test('server-side dry-run: all-features values', async (st) => {
    const objects = await dryRun(st, c, namespace, [ALL_FEATURES]);
    assert.ok(
      objects.some(
        (o) => o.kind === 'ConfigMap' && o.metadata.labels?.['grafana_dashboard'] === '1',
      ),
    );
    assert.ok(
      objects.some((o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-remediation')),
    );
  });

  await t.test('helm install: both replicas available, on different nodes', async () => {
    mustHelm(c, [
      'install',
      release,
      CHART_DIR,
      '--namespace',
      namespace,
      '--wait',
      '--timeout=3m',
    ]);
    const deployment = JSON.parse(
      await c.kubectl('get', 'deployment', fullname, '-n', namespace, '-o', 'json'),
    ) as DeploymentStatus;
    assert.equal(deployment.status?.availableReplicas, 2);
    const pods = JSON.parse(
      await c.kubectl(
        'get',
        'pods',
        '-n',
        namespace,
        '-l',
        `app.kubernetes.io/instance=${release}`,
        '-o',
        'json',
      ),
    ) as PodList;
    const nodes = pods.items.map((p) => p.spec.nodeName);
    assert.equal(
      new Set(nodes).size,
      2,
      `replicas on ${nodes.join(', ')}: anti-affinity keeps them apart`,
    );
  });

  await t.test(
    'helm install: the user roles are aggregated into admin, edit and view',
    async () => {
      // What each grants is test/chart/user-roles.ts, asked as impersonated users in
      // test/integration/operator/tenancy.test.ts; here: the install puts them in place.
      const want = userRoles(DEFAULT_AGGREGATED_ROLES);
      const rulesOf = async (role: string): Promise<string[]> =>
        ruleKeys(
          (JSON.parse(await c.kubectl('get', 'clusterrole', role, '-o', 'json')) as RoleJson).rules,
          'cluster',
        );
      for (const role of want) {
        const own = await rulesOf(`${fullname}-${role.suffix}`);
        for (const target of role.aggregateTo) {
          await waitFor(`${role.suffix} aggregated into ${target}`, async () => {
            const aggregated = new Set(await rulesOf(target));
            return own.every((k) => aggregated.has(k)) ? true : undefined;
          });
        }
      }
      const exceptions = new Set(await rulesOf(`${fullname}-exceptions`));
      const admin = await rulesOf('admin');
      assert.ok(
        !admin.some((k) => exceptions.has(k) && / (create|update|patch|delete)$/.test(k)),
        'exceptions are not aggregated into admin by default',
      );
    },
  );

  const kubeconfig = await serviceAccountKubeconfig(c, dir, namespace, fullname);

  await t.test(
    'as the chart ServiceAccount: every permission the operator needs holds',
    async () => {
      const missing: string[] = [];
      for (const grant of grantsFor(LEASE, false)) {
        for (const check of grantChecks(grant, namespace)) {
          if (!(await canI(kubeconfig, check.args))) missing.push(check.args.slice(2).join(' '));
        }
      }
      assert.deepEqual(missing, []);
    },
  );

  await t.test(
    'as the chart ServiceAccount: secrets, eviction and the rest are refused',
    async () => {
      const allowed: string[] = [];
      for (const denial of DENIALS) {
        const args = denialArgs(denial, namespace);
        if (await canI(kubeconfig, args))
          allowed.push(`${args.slice(2).join(' ')} (${denial.why})`);
      }
      assert.deepEqual(allowed, []);
    },
  );

  await t.test('kubectl auth can-i --list: the grants, and no secrets or wildcards', async () => {
    const listing = await run(KUBECTL, ['auth', 'can-i', '--list', '-n', namespace], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    const rows = listing.stdout
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s{2,}/))
      .filter((cols) => cols.length >= 2 && cols[0] !== undefined && !cols[0].startsWith('['));
    const resources = rows.map((cols) => cols[0] ?? '');
    for (const want of [
      'deployments.apps',
      'cronjobs.batch',
      'placementpolicies.placement.dev/status',
      'leases.coordination.k8s.io',
      'events.events.k8s.io',
    ]) {
      assert.ok(resources.includes(want), `${want} in\n${listing.stdout}`);
    }
    assert.ok(!resources.some((r) => r.startsWith('secrets')), listing.stdout);
    assert.ok(!resources.some((r) => r.startsWith('*')), listing.stdout);
    assert.ok(
      !rows.some((cols) => (cols.at(-1) ?? '').split(/[\s[\]]+/).includes('*')),
      listing.stdout,
    );
  });

  await t.test(
    'taking patch on deployments out of the ClusterRole makes can-i patch fail',
    async () => {
      const live = JSON.parse(
        await c.kubectl('get', 'clusterrole', fullname, '-o', 'json'),
      ) as RoleJson;
      // Applied with a field manager of its own; rules is an atomic list, so it takes them.
      const applyRules = (rules: readonly PolicyRule[]): Promise<string> =>
        c.apply(
          JSON.stringify({
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRole',
            metadata: { name: fullname },
            rules,
          }),
          '--server-side',
          '--force-conflicts',
          `--field-manager=${FIELD_MANAGER}`,
        );
      const patchDeployments = canIArgs('patch', 'apps', 'deployments', undefined, [
        '--all-namespaces',
      ]);
      const listDeployments = canIArgs('list', 'apps', 'deployments', undefined, [
        '--all-namespaces',
      ]);
      assert.equal(await canI(kubeconfig, patchDeployments), true);
      await applyRules(
        live.rules.map((rule) =>
          (rule.resources ?? []).includes('deployments')
            ? { ...rule, verbs: (rule.verbs ?? []).filter((v) => v !== 'patch') }
            : rule,
        ),
      );
      try {
        await waitFor('can-i patch deployments to turn to no', async () =>
          (await canI(kubeconfig, patchDeployments)) ? undefined : true,
        );
        assert.equal(await canI(kubeconfig, listDeployments), true, 'only patch was taken out');
      } finally {
        await applyRules(live.rules);
      }
      await waitFor('can-i patch deployments to be yes again', async () =>
        (await canI(kubeconfig, patchDeployments)) ? true : undefined,
      );
    },
  );

  await t.test(
    'audit.remediation.enabled grants pods/eviction; turning it off takes it back',
    async () => {
      const evict = canIArgs('create', '', 'pods/eviction', undefined, ['--all-namespaces']);
      assert.equal(await canI(kubeconfig, evict), false);
      mustHelm(c, [
        'upgrade',
        release,
        CHART_DIR,
        '--namespace',
        namespace,
        '--reuse-values',
        '--set',
        'audit.remediation.enabled=true',
      ]);
      await waitFor('can-i create pods/eviction to be yes', async () =>
        (await canI(kubeconfig, evict)) ? true : undefined,
      );
      const args = (
        JSON.parse(
          await c.kubectl('get', 'deployment', fullname, '-n', namespace, '-o', 'json'),
        ) as {
          spec: { template: { spec: { containers: { args: string[] }[] } } };
        }
      ).spec.template.spec.containers[0]?.args;
      assert.ok(args !== undefined && !args.includes('--eviction-dry-run'), args?.join(' '));
      mustHelm(c, [
        'upgrade',
        release,
        CHART_DIR,
        '--namespace',
        namespace,
        '--reuse-values',
        '--set',
        'audit.remediation.enabled=false',
      ]);
      await waitFor('can-i create pods/eviction to be no', async () =>
        (await canI(kubeconfig, evict)) ? undefined : true,
      );
    },
  );

  await t.test(
    'the operator runs under the chart ServiceAccount token',
    { skip: existsSync(MAIN_TS) ? false : 'src/main.ts does not exist yet' },
    async (st) => {
      const op = startOperatorWithChartServiceAccount(c, kubeconfig, namespace, fullname);
      try {
        await waitFor(
          '/readyz to answer 200',
          async () => ((await scrape(op, '/readyz')).status === 200 ? true : undefined),
          90_000,
        );
        const lease = await waitFor('the chart Lease to be held', async () => {
          const l = JSON.parse(
            await c.kubectl('get', 'lease', LEASE, '-n', namespace, '-o', 'json'),
          ) as {
            spec?: { holderIdentity?: string };
          };
          return l.spec?.holderIdentity === 'chart-test' ? l : undefined;
        });
        assert.ok(lease.spec !== undefined);
        const refused = op.logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
        assert.deepEqual(refused, [], 'the operator was refused something the chart should grant');
      } catch (error) {
        for (const line of op.logs.slice(-30)) st.diagnostic(JSON.stringify(line));
        throw error;
      } finally {
        await op.stop();
      }
    },
  );
});

void test(
  "the chart's RBAC: a tenant policy evicts nothing outside its namespace; tenancy Deny refuses it",
  { timeout: 900_000 },
  async (t) => {
    const c = await cluster();
    const s = new Scope(t);
    const namespace = uniqueName('chart-tenancy');
    const release = uniqueName('po');
    const fullname = `${release}-placement-operator`;
    const dir = await mkdtemp(join(tmpdir(), 'chart-tenancy-'));
    await installChartCrds(c);
    await c.kubectl('create', 'namespace', namespace);
    t.after(async () => {
      helmOn(c, ['uninstall', release, '--namespace', namespace, '--wait', '--timeout=2m']);
      await c.kubectl('delete', 'namespace', namespace, '--wait=false').catch(() => '');
      await rm(dir, { recursive: true, force: true });
    });
    // Remediation on: the operator holds pods/eviction on every namespace, as in production.
    mustHelm(c, [
      'install',
      release,
      CHART_DIR,
      '--namespace',
      namespace,
      '--set',
      'replicas=1',
      '--set',
      'audit.remediation.enabled=true',
      '--wait',
      '--timeout=3m',
    ]);
    const kubeconfig = await serviceAccountKubeconfig(c, dir, namespace, fullname);
    const w = await tenantWorld(c, s);
    // The real operator with the chart ServiceAccount's token only, evictions for real.
    const op = startOperator(
      {
        ...c,
        operator: {
          kubeconfigPath: kubeconfig,
          namespace,
          lease: LEASE,
          user: `system:serviceaccount:${namespace}:${fullname}`,
        },
      },
      '--leader-elect=true',
      `--lease-name=${LEASE}`,
      `--lease-namespace=${namespace}`,
      '--identity=chart-tenancy',
      ...TENANT_OPERATOR_FLAGS,
    );
    try {
      await waitFor(
        'the operator leading',
        () =>
          Promise.resolve(
            op.logs.some((l) => l['message'] === 'became leader; reconciling') ? true : undefined,
          ),
        90_000,
      );

      await t.test('the tenant policy evicts and tells nothing outside team-a', (st) =>
        runTenantScenario(c, w, op, (line) => {
          st.diagnostic(line);
        }),
      );

      await t.test(
        'tenancy.crossNamespaceTerms=Deny: the API server refuses such a policy, naming the field',
        async () => {
          mustHelm(c, [
            'upgrade',
            release,
            CHART_DIR,
            '--namespace',
            namespace,
            '--reuse-values',
            '--set',
            'tenancy.crossNamespaceTerms=Deny',
          ]);
          // The admission policy takes effect once the API server has compiled it.
          const refusal = await waitFor('the tenant policy refused', async () =>
            w.tenant.apply(everyonePolicy(w.a, 'evil-again')).then(
              async () => {
                await w.tenant.kubectl('delete', 'placementpolicy', 'evil-again', '-n', w.a);
                return undefined;
              },
              (error: unknown) => String(error),
            ),
          );
          assert.match(refusal, /ValidatingAdmissionPolicy '.*-cross-namespace-terms'/);
          assert.ok(
            refusal.includes(`${EVERYONE_FIELD}: a namespaced PlacementPolicy may not`),
            refusal,
          );
          // Terms of its own namespace only are still the tenant's to write.
          await w.tenant.apply({
            apiVersion: 'placement.dev/v1alpha1',
            kind: 'PlacementPolicy',
            metadata: { name: 'own-namespace', namespace: w.a },
            spec: {
              mode: 'Audit',
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    { labelSelector: {}, namespaces: [w.a], topologyKey: 'kubernetes.io/hostname' },
                  ],
                },
              },
            },
          });
          // The policy stored before still goes when deleted: the operator may remove its
          // finalizer (the admission policy looks at new or changed specs only).
          await w.tenant.kubectl('delete', 'placementpolicy', 'evil', '-n', w.a, '--wait=false');
          await waitFor('the stored policy gone', async () =>
            (await c.kubectl('get', 'placementpolicies', '-n', w.a, '-o', 'name')).includes(
              '/evil\n',
            )
              ? undefined
              : true,
          );
          const refused = op.logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
          assert.deepEqual(
            refused,
            [],
            'the operator was refused something the chart should grant',
          );
        },
      );
    } catch (error) {
      for (const line of op.logs.slice(-30)) t.diagnostic(JSON.stringify(line));
      throw error;
    } finally {
      await op.stop();
    }
  },
);
