// Not a clusterTest: the built image runs with the chart's RBAC in a namespace of its own.
// The built image run by testcontainers against the control plane, as the chart's pod
// runs it: the chart's container args and securityContext (read-only root, 65532, drop
// ALL, no new privileges), the chart ServiceAccount's token and CA mounted where the
// kubelet mounts them, KUBERNETES_SERVICE_HOST/PORT set, so the operator takes its
// in-cluster configuration path. The chart's RBAC is rendered by the pinned helm and
// applied for real.
//
//   hack/node --test test/integration/image/operator-container.test.ts
//
// One container: /readyz, the seed policy enforced, /metrics. A second: exactly one
// leader; SIGKILL of the leader: the other takes over. `docker stop` (SIGTERM) of the
// last: the Lease is released within 3 s.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';

import type { StartedTestContainer } from 'testcontainers';

import { parseManifests, tryRender, type Manifest } from '../../chart/helm.ts';
import { cluster, freePort, installCrds, metricValue, uniqueName, waitFor } from '../harness.ts';
import {
  HOSTNAME,
  REQ,
  affinityOf,
  example,
  get,
  list,
  waitEnforced,
} from '../operator/support.ts';
import { BUILD_TIMEOUT_MS, PodLikeContainer, killContainer, operatorImage } from './support.ts';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
const RELEASE_WITHIN_MS = 3_000;

interface ContainerSpec {
  args: string[];
  env?: { name: string; value?: string }[];
  securityContext: {
    runAsUser: number;
    runAsGroup: number;
    readOnlyRootFilesystem: boolean;
    allowPrivilegeEscalation: boolean;
    capabilities: { drop: string[] };
  };
}

interface Lease {
  spec?: { holderIdentity?: string };
}

/** The chart's pod, as a container: its args (but a port of its own), env and securityContext. */
interface Replica {
  readonly name: string;
  readonly port: number;
  readonly container: StartedTestContainer;
  readonly logs: string[];
}

void test(
  'the operator image as the chart runs it',
  { timeout: BUILD_TIMEOUT_MS + 600_000 },
  async (t) => {
    const image = await operatorImage();
    const c = await cluster();
    const namespace = uniqueName('image');
    const release = uniqueName('po');
    await installCrds(c);
    await c.kubectl('create', 'namespace', namespace);

    const rendered = tryRender({ release, namespace });
    assert.equal(rendered.status, 0, rendered.stderr);
    const objects = parseManifests(rendered.stdout, 'helm template');
    const rbac = objects.filter((o) => RBAC_KINDS.includes(o.kind));
    await c.apply(list(...(rbac as unknown as Parameters<typeof list>)));
    const deployment = objects.find((o) => o.kind === 'Deployment') as
      | (Manifest & {
          spec: {
            template: { spec: { serviceAccountName: string; containers: ContainerSpec[] } };
          };
        })
      | undefined;
    assert.ok(deployment !== undefined, 'the chart renders a Deployment');
    const pod = deployment.spec.template.spec;
    const spec = pod.containers[0];
    assert.ok(spec !== undefined);
    const leaseName = /^--lease-name=(.+)$/.exec(
      spec.args.find((a) => a.startsWith('--lease-name=')) ?? '',
    )?.[1];
    assert.ok(leaseName !== undefined, 'the chart names the Lease');

    // The kubelet's service-account volume: token, CA and namespace, readable by 65532.
    const secrets = await mkdtemp(join(tmpdir(), 'placement-sa-'));
    const admin = JSON.parse(
      await c.kubectl('config', 'view', '--raw', '--minify', '-o', 'json'),
    ) as {
      clusters: { cluster: { server: string; 'certificate-authority-data'?: string } }[];
    };
    const server = new URL(admin.clusters[0]?.cluster.server ?? '');
    const caData = admin.clusters[0]?.cluster['certificate-authority-data'];
    assert.ok(caData !== undefined, 'the admin kubeconfig carries the CA');
    const token = (
      await c.kubectl('create', 'token', pod.serviceAccountName, '-n', namespace, '--duration=1h')
    ).trim();
    await writeFile(join(secrets, 'token'), token);
    await writeFile(join(secrets, 'ca.crt'), Buffer.from(caData, 'base64'));
    await writeFile(join(secrets, 'namespace'), namespace);
    for (const f of ['token', 'ca.crt', 'namespace']) await chmod(join(secrets, f), 0o644);
    await chmod(secrets, 0o755);

    const replicas: Replica[] = [];
    t.after(async () => {
      for (const r of replicas) await r.container.stop({ timeout: 1_000 }).catch(() => undefined);
      await c
        .apply(list(...(rbac as unknown as Parameters<typeof list>)), '--dry-run=none')
        .catch(() => '');
      for (const o of rbac.filter((o) => o.kind.startsWith('Cluster')))
        await c.kubectl('delete', o.kind, o.metadata.name, '--ignore-not-found').catch(() => '');
      await c.kubectl('delete', 'namespace', namespace, '--wait=false').catch(() => '');
      await rm(secrets, { recursive: true, force: true });
    });

    const start = async (name: string): Promise<Replica> => {
      const port = await freePort();
      const sc = spec.securityContext;
      assert.ok(sc.readOnlyRootFilesystem && !sc.allowPrivilegeEscalation);
      const logs: string[] = [];
      const args = spec.args.map((a) =>
        a.startsWith('--metrics-port=') ? `--metrics-port=${String(port)}` : a,
      );
      const env: Record<string, string> = {
        KUBERNETES_SERVICE_HOST: server.hostname,
        KUBERNETES_SERVICE_PORT: server.port,
        POD_NAME: name,
        POD_NAMESPACE: namespace,
      };
      for (const e of spec.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
      const container = await new PodLikeContainer(image)
        .withReadOnlyRootFilesystem()
        .withUser(`${String(sc.runAsUser)}:${String(sc.runAsGroup)}`)
        .withDroppedCapabilities(...sc.capabilities.drop)
        .withSecurityOpt('no-new-privileges')
        .withTmpFs({ '/tmp': 'rw,size=64m' })
        .withBindMounts([{ source: secrets, target: SA_DIR, mode: 'ro' }])
        .withEnvironment(env)
        .withCommand(args)
        .withLogConsumer((stream: Readable) => {
          stream.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
        })
        .start();
      const replica = { name, port, container, logs };
      replicas.push(replica);
      return replica;
    };
    const get200 = async (r: Replica, path: string): Promise<string | undefined> => {
      const res = await fetch(`http://127.0.0.1:${String(r.port)}${path}`);
      return res.status === 200 ? res.text() : undefined;
    };
    const leaderMetric = async (r: Replica): Promise<number> =>
      metricValue((await get200(r, '/metrics')) ?? '', 'leader_election_master_status', {
        name: leaseName,
      });
    const holder = async (): Promise<string> =>
      (await c.json<Lease>('get', 'lease', leaseName, '-n', namespace)).spec?.holderIdentity ?? '';
    const diagnose = (r: Replica): void => {
      for (const line of r.logs.slice(-20)) t.diagnostic(`${r.name}: ${line}`);
    };

    const a = await start('operator-a');
    await t.test('in-cluster config, chart RBAC: /readyz answers 200', async () => {
      try {
        await waitFor('/readyz of operator-a', () => get200(a, '/readyz'), 120_000);
        assert.equal(
          await waitFor('operator-a to hold the Lease', async () =>
            (await holder()) === a.name ? a.name : undefined,
          ),
          a.name,
        );
        // RBAC refusals name the user ("... is forbidden: User ..."); an Event refused because
        // another test's namespace is being deleted is not the chart's RBAC.
        const refused = a.logs.filter((l) => /forbidden: User|"code":"403"/.test(l));
        assert.deepEqual(refused, [], 'the chart RBAC refused the operator something');
      } catch (error) {
        diagnose(a);
        throw error;
      }
    });

    await t.test('the seed policy is enforced', async () => {
      const seeds = [
        ...example('workloads/checkout.yaml'),
        ...example('policies/checkout-one-per-node.yaml'),
      ]
        .filter((d) => d['kind'] !== 'Namespace')
        .map((d) => ({ ...d, metadata: { ...(d['metadata'] as object), namespace } }));
      await c.apply(list(...seeds));
      try {
        await waitEnforced(c, namespace, 'checkout-one-per-node', 1);
      } catch (error) {
        diagnose(a);
        throw error;
      }
      const terms = affinityOf(await get(c, 'deployment', namespace, 'checkout'))?.[
        'podAntiAffinity'
      ]?.[REQ];
      assert.ok(
        Array.isArray(terms) && terms.some((x) => JSON.stringify(x).includes(HOSTNAME)),
        JSON.stringify(terms),
      );
    });

    await t.test('/metrics is served: leader, reconciles', async () => {
      const body = await get200(a, '/metrics');
      assert.ok(body !== undefined);
      assert.equal(metricValue(body, 'leader_election_master_status', { name: leaseName }), 1);
      assert.match(body, /^placement_/m);
    });

    const b = await start('operator-b');
    await t.test(
      'two containers: exactly one leader; SIGKILL of it, the other takes over',
      async () => {
        try {
          await waitFor('/readyz of operator-b (standing by)', () => get200(b, '/readyz'), 120_000);
          assert.equal(await holder(), a.name);
          assert.deepEqual([await leaderMetric(a), await leaderMetric(b)], [1, 0]);
          await killContainer(a.container.getId());
          await waitFor(
            'operator-b to take the Lease',
            async () => ((await holder()) === b.name ? true : undefined),
            60_000,
          );
          await waitFor(
            'operator-b to report itself leader',
            async () => ((await leaderMetric(b)) === 1 ? true : undefined),
            30_000,
          );
        } catch (error) {
          diagnose(a);
          diagnose(b);
          throw error;
        }
      },
    );

    await t.test('SIGTERM (container stop): the Lease is released within 3 s', async () => {
      assert.equal(await holder(), b.name);
      const started = Date.now();
      // `docker stop`: SIGTERM, SIGKILL after the grace period (testcontainers counts in ms).
      const stopping = b.container.stop({ timeout: 10_000 });
      await waitFor(
        'the Lease to have no holder',
        async () => ((await holder()) === '' ? true : undefined),
        10_000,
      ).catch((error: unknown) => {
        diagnose(b);
        throw error;
      });
      const elapsed = Date.now() - started;
      await stopping;
      replicas.splice(replicas.indexOf(b), 1);
      t.diagnostic(`Lease released ${String(elapsed)} ms after the stop began`);
      assert.ok(elapsed <= RELEASE_WITHIN_MS, `released after ${String(elapsed)} ms`);
    });
  },
);
