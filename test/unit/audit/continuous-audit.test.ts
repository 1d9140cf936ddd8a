// The continuous audit driven by in-memory sources: what informers would tell it, one change
// at a time. Timers are kept out of the way (a debounce of an hour) and each test calls
// evaluate() itself, except where the debounce is what is tested.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import type {
  Affinity,
  Labels,
  Namespace,
  Node,
  Pod,
  PodAffinityTerm,
} from '../../../src/api/core.ts';
import type {
  PlacementPolicy,
  PlacementPolicySpec,
  PolicyAudit as AuditSpec,
  PolicyRef,
} from '../../../src/api/policy.ts';
import type { EvictionOutcome } from '../../../src/audit/ports.ts';
import {
  ContinuousAudit,
  CROSS_NAMESPACE_FINDING,
  type ContinuousAuditDeps,
  type ContinuousAuditOptions,
} from '../../../src/audit/continuous-audit.ts';
import { compilePolicy, comparePolicies, type CompiledPolicy } from '../../../src/engine/index.ts';
import type { EventTarget, Workload } from '../../../src/kube/types.ts';
import type {
  EvictionOutcome as EvictionMetric,
  NamespacedPolicyLabel,
  PlacementMetrics,
  PolicyLabel,
  ViolationRule,
} from '../../../src/metrics/index.ts';
import { MemorySource } from '../../support/memory-source.ts';
import {
  HOSTNAME,
  ZONE,
  clusterPolicy,
  labelsIn,
  namespace,
  namespacedPolicy,
  node,
  nodeInZone,
  pod,
  term,
  type PodOptions,
} from '../builders.ts';

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
const HOUR = 3_600_000;

// ------------------------------------------------------------------------ fakes

/** The policy informers, as the audit hears them: that something changed. */
class FakeSignal {
  private readonly handlers = new Set<() => void>();

  addHandler(handler: () => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  fire(): void {
    for (const h of this.handlers) h();
  }
}

interface Recorded {
  readonly target: EventTarget;
  readonly type: string;
  readonly reason: string;
  readonly message: string;
  /** Whether the recorder may drop it as a repeat of an identical recent event. */
  readonly deduplicate: boolean;
}

class FakeMetrics implements PlacementMetrics {
  readonly violations = new Map<PolicyLabel, Partial<Record<ViolationRule, number>>>();
  readonly crossNamespace = new Map<PolicyLabel, Partial<Record<ViolationRule, number>>>();
  readonly evictions: EvictionMetric[] = [];
  audits = 0;

  setPolicyWorkloads(): void {
    // not the audit's
  }
  setViolations(policy: PolicyLabel, counts: Readonly<Partial<Record<ViolationRule, number>>>) {
    this.violations.set(policy, { ...counts });
  }
  setCrossNamespaceViolations(
    policy: NamespacedPolicyLabel,
    counts: Readonly<Partial<Record<ViolationRule, number>>>,
  ) {
    this.crossNamespace.set(policy, { ...counts });
  }
  forgetPolicy(policy: PolicyLabel): void {
    this.violations.delete(policy);
    this.crossNamespace.delete(policy);
  }
  auditFinished(): void {
    this.audits++;
  }
  workloadWritten(): void {
    // not the audit's
  }
  workloadReverted(): void {
    // not the audit's
  }
  evicted(result: EvictionMetric): void {
    this.evictions.push(result);
  }
  setRolloutsHeldBack(): void {
    // not the audit's
  }
  setRolloutBudget(): void {
    // not the audit's
  }
  setSettling(): void {
    // not the audit's
  }
  setInjectionMode(): void {
    // not observed here
  }
}

interface Eviction {
  readonly pod: string;
  readonly dryRun: boolean;
  readonly uid: string | undefined;
}

/** The Eviction API: an eviction that goes through deletes the pod (its replacement is not made). */
class FakeEvictor {
  readonly calls: Eviction[] = [];
  /** What evictions return. */
  outcome: (pod: string) => EvictionOutcome = () => ({ kind: 'evicted' });
  private readonly pods: MemorySource<Pod>;

  constructor(pods: MemorySource<Pod>) {
    this.pods = pods;
  }

  evict(namespace: string, name: string, dryRun: boolean, uid?: string) {
    const pod = `${namespace}/${name}`;
    this.calls.push({ pod, dryRun, uid });
    const outcome = this.outcome(pod);
    if (outcome.kind === 'evicted' && !dryRun) this.pods.delete(pod);
    return Promise.resolve(outcome);
  }
}

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

/** Everything the audit reads and tells, in memory. */
class World {
  readonly pods = new MemorySource<Pod>((p) => `${p.metadata.namespace}/${p.metadata.name}`);
  readonly nodes = new MemorySource<Node>((n) => n.metadata.name);
  readonly namespaces = new MemorySource<Namespace>((n) => n.metadata.name);
  readonly deployments = new MemorySource<Workload>((w) => `${w.kind}/${w.namespace}/${w.name}`);
  readonly replicaSets = new MemorySource<Workload>((w) => `${w.kind}/${w.namespace}/${w.name}`);
  policies: readonly CompiledPolicy[] = [];
  readonly policySignal = new FakeSignal();
  readonly events: Recorded[] = [];
  readonly metrics = new FakeMetrics();
  readonly evictor = new FakeEvictor(this.pods);
  readonly logs: LogLine[] = [];
  readonly changes: (readonly PolicyRef[])[] = [];
  time = Date.parse('2026-01-01T00:00:00Z');

  /** Replaces the policies, and tells the audit as the policy informers would. */
  setPolicies(...policies: readonly PlacementPolicy[]): void {
    this.policies = policies.map(compiled).sort(comparePolicies);
    this.policySignal.fire();
  }

  deps(extra: Partial<ContinuousAuditDeps> = {}): ContinuousAuditDeps {
    const log =
      (level: string) =>
      (message: string, meta: Record<string, unknown> = {}) =>
        this.logs.push({ level, message, meta });
    return {
      pods: this.pods,
      nodes: this.nodes,
      namespaces: this.namespaces,
      workloads: [this.deployments, this.replicaSets],
      policies: () => this.policies,
      policyChanges: [this.policySignal],
      events: {
        record: (target, type, reason, message, options) => {
          const deduplicate = options?.deduplicate ?? true;
          this.events.push({ target, type, reason, message, deduplicate });
        },
      },
      metrics: this.metrics,
      log: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
      evictionDryRun: false,
      onChange: (refs) => {
        this.changes.push([...refs].sort());
      },
      now: () => this.time,
      ...extra,
    };
  }

  /** An audit started on the world as it is now; stopped when the test ends. */
  audit(
    t: { after: (fn: () => Promise<void>) => void },
    extra: Partial<ContinuousAuditDeps> = {},
    options: Partial<ContinuousAuditOptions> = {},
  ): ContinuousAudit {
    const audit = new ContinuousAudit(this.deps(extra), {
      debounceMs: HOUR,
      fullCheckMs: HOUR,
      ...options,
    });
    audit.start();
    t.after(() => audit.stop());
    return audit;
  }

  logged(message: string): LogLine[] {
    return this.logs.filter((l) => l.message === message);
  }
}

function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

const withUid = (p: Pod): Pod => ({
  ...p,
  metadata: { ...p.metadata, uid: `uid-${p.metadata.namespace}-${p.metadata.name}` },
});

const placed = (name: string, o: PodOptions): Pod => withUid(pod(name, o));

function deployment(ns: string, name: string, labels: Labels, extra: Partial<Workload> = {}) {
  const w: Workload = {
    kind: 'Deployment',
    namespace: ns,
    name,
    uid: `uid-${name}`,
    resourceVersion: '1',
    generation: 1,
    annotations: {},
    ownerReferences: [],
    selector: { matchLabels: labels },
    templateLabels: labels,
    affinity: undefined,
    rolledOut: true,
    replicas: 1,
    ...extra,
  };
  return w;
}

/** The ReplicaSet `<deployment>-<hash>` a Deployment owns. */
const replicaSet = (d: Workload, hash: string): Workload => ({
  ...d,
  kind: 'ReplicaSet',
  name: `${d.name}-${hash}`,
  uid: `uid-${d.name}-${hash}`,
  ownerReferences: [{ kind: 'Deployment', name: d.name, controller: true }],
});

const rsOwner = (name: string) => ({ kind: 'ReplicaSet', name, controller: true });

const affinityTo = (matchLabels: Labels, key: string = ZONE): Affinity => ({
  podAffinity: { [REQUIRED]: [term(labelsIn(matchLabels), key)] },
});

/** `web` pods in `shop` must share a zone with a `db` pod; bare pods are targeted too. */
const webNearDb = (spec: PlacementPolicySpec = {}): PlacementPolicy =>
  namespacedPolicy('shop', 'web-near-db', {
    targets: { kinds: ['Deployment', 'Pod'], selector: labelsIn({ app: 'web' }) },
    affinity: affinityTo({ app: 'db' }),
    ...spec,
  });
const WEB_NEAR_DB: PolicyRef = 'PlacementPolicy/shop/web-near-db';

/** A shop with two nodes per zone, a db pod in zone a and a web pod next to it. */
function shop(): World {
  const w = new World();
  for (const n of [
    nodeInZone('a1', 'a'),
    nodeInZone('a2', 'a'),
    nodeInZone('b1', 'b'),
    nodeInZone('b2', 'b'),
  ])
    w.nodes.set(n);
  w.namespaces.set(namespace('shop'));
  w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1' }));
  w.pods.set(placed('web-0', { ns: 'shop', labels: { app: 'web' }, node: 'a2' }));
  w.setPolicies(webNearDb());
  return w;
}

const relabelNode = (w: World, name: string, zone: string): void => {
  w.nodes.set(nodeInZone(name, zone));
};

const summaryOf = (audit: ContinuousAudit, ref: string) => {
  const s = audit.summary(ref);
  assert.ok(s, `a summary for ${ref}`);
  return s;
};

// ------------------------------------------------------------------ judging

void describe('ContinuousAudit reports drift', () => {
  void test('a node relabelled out of the zone breaks the rule, and relabelling back clears it', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);

    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    const s = summaryOf(audit, WEB_NEAR_DB);
    assert.equal(s.violations, 1);
    assert.deepEqual(
      s.violationSample.map((v) => [v.pod, v.node, v.rule, v.source]),
      [['shop/web-0', 'a2', 'podAffinity', WEB_NEAR_DB]],
    );
    assert.match(s.violationSample[0]?.message ?? '', /topology\.kubernetes\.io\/zone=b/);
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), { podAffinity: 1 });

    relabelNode(w, 'a2', 'a');
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
    assert.deepEqual(w.metrics.violations.get(WEB_NEAR_DB), {});
  });

  void test("a pod's label, a namespace's label and a workload's template each move pods in and out", async (t) => {
    const w = shop();
    w.namespaces.set(namespace('data', { tier: 'data' }));
    w.pods.set(placed('cache-0', { ns: 'data', labels: { app: 'cache' }, node: 'a1' }));
    w.pods.set(placed('worker-0', { ns: 'shop', labels: { app: 'worker' }, node: 'a2' }));
    const cacheTerm: PodAffinityTerm = term(labelsIn({ app: 'cache' }), ZONE, {
      namespaceSelector: labelsIn({ tier: 'data' }),
    });
    const api = deployment('shop', 'api', { app: 'api' });
    w.deployments.set(api);
    w.replicaSets.set(replicaSet(api, 'abc'));
    w.pods.set(
      placed('api-abc-1', {
        ns: 'shop',
        labels: { app: 'api', 'pod-template-hash': 'abc' },
        node: 'b1',
        owner: rsOwner('api-abc'),
      }),
    );
    w.setPolicies(
      webNearDb(),
      namespacedPolicy('shop', 'near-cache', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'worker' }) },
        affinity: { podAffinity: { [REQUIRED]: [cacheTerm] } },
      }),
      namespacedPolicy('shop', 'api-near-db', {
        targets: { selector: labelsIn({ app: 'api' }) },
        affinity: affinityTo({ app: 'db' }),
      }),
    );
    const audit = w.audit(t);
    const count = async (name: string): Promise<number> => {
      await audit.evaluate();
      return summaryOf(audit, `PlacementPolicy/shop/${name}`).violations;
    };
    // The api Deployment's pod runs in zone b, away from the db: a violation from the start.
    assert.equal(await count('api-near-db'), 1);

    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db-retired' }, node: 'a1' }));
    assert.equal(await count('web-near-db'), 1, 'db pod relabelled');
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1' }));
    assert.equal(await count('web-near-db'), 0, 'db pod label back');

    w.namespaces.set(namespace('data', { tier: 'archive' }));
    assert.equal(await count('near-cache'), 1, 'namespace relabelled');
    w.namespaces.set(namespace('data', { tier: 'data' }));
    assert.equal(await count('near-cache'), 0, 'namespace label back');

    // The template no longer matches the policy's selector: its pods are not the policy's.
    w.deployments.set(
      deployment(
        'shop',
        'api',
        { app: 'api', track: 'canary' },
        {
          templateLabels: { app: 'api-v2' },
        },
      ),
    );
    assert.equal(await count('api-near-db'), 0, 'template relabelled');
    w.deployments.set(api);
    assert.equal(await count('api-near-db'), 1, 'template back');
  });

  void test('which pods count as neighbours, and which are judged', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    const dbWith = (o: Partial<PodOptions>): Pod =>
      placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1', ...o });
    // What becomes of db-0 (null: deleted), and how many violations web-0 (next to it) has.
    const variants: [string, Pod | null, number][] = [
      ['deleted', null, 1],
      ['Succeeded', dbWith({ phase: 'Succeeded' }), 1],
      ['Failed', dbWith({ phase: 'Failed' }), 1],
      ['unbound again', placed('db-0', { ns: 'shop', labels: { app: 'db' } }), 1],
      // As in kube-scheduler's cache, a pod being deleted is a neighbour until it is gone.
      ['being deleted', dbWith({ deleting: true }), 0],
    ];
    for (const [what, next, want] of variants) {
      if (next === null) w.pods.delete('shop/db-0');
      else w.pods.set(next);
      await audit.evaluate();
      assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, want, `db pod ${what}`);
      w.pods.set(dbWith({}));
      await audit.evaluate();
      assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0, `db pod back after ${what}`);
    }
    // A pod being deleted is not judged: its breach ends with it.
    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.pods.set(placed('web-0', { ns: 'shop', labels: { app: 'web' }, node: 'a2', deleting: true }));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('a node deleted takes its pods out of every domain', async (t) => {
    const w = shop();
    const audit = w.audit(t);
    w.nodes.delete('a1');
    await audit.evaluate();
    // db-0 still names a1, but a1 has no zone any more: web-0 has no db in zone a.
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.nodes.set(nodeInZone('a1', 'a'));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('a policy with audit disabled reports no violation', async (t) => {
    const w = shop();
    w.setPolicies(webNearDb({ audit: { enabled: false } }));
    relabelNode(w, 'a2', 'b');
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
    assert.deepEqual(w.events, []);
  });

  void test('a pod own terms are reported under "pod"', async (t) => {
    const w = shop();
    w.pods.set(
      placed('solo-0', {
        ns: 'shop',
        labels: { app: 'solo' },
        node: 'a1',
        anti: [term(labelsIn({ app: 'db' }), HOSTNAME)],
      }),
    );
    const audit = w.audit(t);
    await audit.evaluate();
    // solo-0 may not share a node with a db pod; db-0 is told so by symmetry.
    assert.deepEqual(w.metrics.violations.get('pod'), {
      podAntiAffinity: 1,
      symmetricAntiAffinity: 1,
    });
    assert.deepEqual(
      audit.report?.violations.map((v) => [v.pod, v.rule, v.source]),
      [
        ['shop/db-0', 'symmetricAntiAffinity', 'pod'],
        ['shop/solo-0', 'podAntiAffinity', 'pod'],
      ],
    );
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 0);
  });

  void test('changes are judged together after the quiet time', async (t) => {
    const w = shop();
    const audit = w.audit(t, {}, { debounceMs: 20 });
    const settled = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 60));
    };
    await settled();
    const first = audit.evaluations;
    assert.ok(first >= 1, 'start() judges once');
    relabelNode(w, 'a2', 'b');
    relabelNode(w, 'b1', 'a');
    relabelNode(w, 'b2', 'a');
    await settled();
    assert.equal(audit.evaluations, first + 1, 'one evaluation for the burst');
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    // A node update that changes no label (a heartbeat) judges nothing again.
    w.nodes.set(nodeInZone('a1', 'a'));
    await settled();
    assert.equal(audit.evaluations, first + 1);
  });

  void test('a new policy alone is judged after the quiet time', async (t) => {
    const w = shop();
    w.setPolicies();
    relabelNode(w, 'a2', 'b');
    const audit = w.audit(t, {}, { debounceMs: 20 });
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(audit.summary(WEB_NEAR_DB), undefined);
    w.setPolicies(webNearDb()); // nothing else changes: no pod, node or namespace event
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    assert.deepEqual(w.changes.at(-1), [WEB_NEAR_DB]);
    // A policy event that leaves the policies as they were (a status write) judges nothing.
    const evaluations = audit.evaluations;
    w.policySignal.fire();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(audit.evaluations, evaluations);
  });
});

// ------------------------------------------------------------------ telling

void describe('ContinuousAudit tells', () => {
  void test('one Event per new violation, not one per audit', async (t) => {
    const w = shop();
    w.pods.set(placed('web-1', { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(w.events.length, 1, 'web-1 breaks the rule from the start');
    const [event] = w.events;
    assert.ok(event);
    assert.deepEqual(event.target, {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: 'shop',
      name: 'web-1',
      uid: 'uid-shop-web-1',
    });
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'PlacementViolation');
    assert.match(event.message, /^podAffinity \(PlacementPolicy\/shop\/web-near-db\): /);

    // Judged again and again while it stays: nothing new.
    for (let i = 0; i < 3; i++) await audit.evaluate();
    w.pods.set(placed('other-0', { ns: 'shop', labels: { app: 'other' }, node: 'b2' }));
    await audit.evaluate();
    await audit.fullCheck();
    assert.equal(w.events.length, 1);

    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.deepEqual(
      w.events.map((e) => e.target.name),
      ['web-1', 'web-0'],
      'web-0 breaks it now: one more Event',
    );

    // Cleared, then broken again: that is a new violation.
    relabelNode(w, 'a2', 'a');
    await audit.evaluate();
    assert.equal(w.events.length, 2);
    relabelNode(w, 'a2', 'b');
    await audit.evaluate();
    assert.deepEqual(
      w.events.map((e) => e.target.name),
      ['web-1', 'web-0', 'web-0'],
    );
    // The same message again within minutes: the recorder must not drop it as a repeat.
    assert.equal(w.events[2]?.message, w.events[1]?.message);
    assert.ok(w.events.every((e) => !e.deduplicate));
  });

  void test('onChange names only the policies whose results changed', async (t) => {
    const w = shop();
    w.pods.set(placed('cache-0', { ns: 'shop', labels: { app: 'cache' }, node: 'b1' }));
    w.pods.set(placed('worker-0', { ns: 'shop', labels: { app: 'worker' }, node: 'b2' }));
    w.setPolicies(
      webNearDb(),
      namespacedPolicy('shop', 'worker-near-cache', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'worker' }) },
        affinity: affinityTo({ app: 'cache' }),
      }),
    );
    const WORKER: PolicyRef = 'PlacementPolicy/shop/worker-near-cache';
    const audit = w.audit(t);
    await audit.evaluate();
    assert.deepEqual(w.changes, [[WORKER, WEB_NEAR_DB].sort()], 'first audit: every policy');

    w.time += 60_000; // lastAuditTime moves on every audit; that alone is no change
    await audit.evaluate();
    assert.equal(w.changes.length, 1, 'nothing changed');

    relabelNode(w, 'a2', 'b'); // web-0 leaves the db's zone
    await audit.evaluate();
    assert.deepEqual(w.changes.at(-1), [WEB_NEAR_DB]);

    relabelNode(w, 'b2', 'a'); // worker-0 leaves the cache's zone
    await audit.evaluate();
    assert.deepEqual(w.changes.at(-1), [WORKER]);
    assert.equal(w.changes.length, 3);
  });

  void test('the sample is bounded, the count is not', async (t) => {
    const w = shop();
    for (let i = 1; i <= 5; i++)
      w.pods.set(placed(`web-${i}`, { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t, {}, { sampleSize: 3 });
    await audit.evaluate();
    const s = summaryOf(audit, WEB_NEAR_DB);
    assert.equal(s.violations, 5);
    assert.deepEqual(
      s.violationSample.map((v) => v.pod),
      ['shop/web-1', 'shop/web-2', 'shop/web-3'],
    );
  });
});

// -------------------------------------------------------------- feasibility

void describe('ContinuousAudit feasibility', () => {
  const mutual = (): World => {
    const w = new World();
    for (const n of [nodeInZone('a1', 'a'), nodeInZone('b1', 'b')]) w.nodes.set(n);
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'frontend', { app: 'frontend' }));
    w.deployments.set(deployment('shop', 'backend', { app: 'backend' }));
    w.setPolicies(
      namespacedPolicy('shop', 'frontend-to-backend', {
        targets: { selector: labelsIn({ app: 'frontend' }) },
        affinity: affinityTo({ app: 'backend' }, HOSTNAME),
      }),
      namespacedPolicy('shop', 'backend-to-frontend', {
        targets: { selector: labelsIn({ app: 'backend' }) },
        affinity: affinityTo({ app: 'frontend' }, HOSTNAME),
      }),
    );
    return w;
  };

  void test('mutual required affinity with no pod running is unsatisfiable', async (t) => {
    const w = mutual();
    const audit = w.audit(t);
    await audit.evaluate();
    for (const [name, other] of [
      ['frontend-to-backend', 'frontend'],
      ['backend-to-frontend', 'backend'],
    ] as const) {
      assert.match(
        summaryOf(audit, `PlacementPolicy/shop/${name}`).unsatisfiable ?? '',
        new RegExp(`Deployment shop/${other}: required podAffinity on kubernetes.io/hostname`),
      );
    }
    // One side's pod runs (placed by hand): both can start now.
    w.pods.set(
      placed('backend-x-1', {
        ns: 'shop',
        labels: { app: 'backend' },
        node: 'a1',
      }),
    );
    await audit.evaluate();
    assert.equal(
      summaryOf(audit, 'PlacementPolicy/shop/frontend-to-backend').unsatisfiable,
      undefined,
    );
    assert.equal(
      summaryOf(audit, 'PlacementPolicy/shop/backend-to-frontend').unsatisfiable,
      undefined,
    );
  });

  void test('a workload no policy targets can start first and satisfy the affinity', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    await audit.evaluate();
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);

    // The db Deployment is targeted by no policy, and nothing keeps its pods from starting.
    w.deployments.set(deployment('shop', 'db', { app: 'db' }));
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).unsatisfiable, undefined);
  });

  void test('a workload scaled or given new terms is judged again without a pod event', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 0 }));
    w.deployments.set(deployment('shop', 'db', { app: 'db' }, { replicas: 0 }));
    w.setPolicies(webNearDb());
    const audit = w.audit(t, {}, { debounceMs: 5 });
    const settled = () => new Promise((r) => setTimeout(r, 50));
    await settled();
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);
    // db is scaled up: it can start first now. Only the Deployment changes, no pod yet.
    w.deployments.set(deployment('shop', 'db', { app: 'db' }, { replicas: 1 }));
    await settled();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).unsatisfiable, undefined, 'scaled up');
    // db's own template now waits for a pod that never comes: it cannot start first.
    w.deployments.set(
      deployment(
        'shop',
        'db',
        { app: 'db' },
        {
          replicas: 1,
          affinity: { podAffinity: { [REQUIRED]: [term(labelsIn({ app: 'ghost' }), ZONE)] } },
        },
      ),
    );
    await settled();
    assert.match(summaryOf(audit, WEB_NEAR_DB).unsatisfiable ?? '', /Deployment shop\/web/);
    // A status-only update (rollout progress) judges nothing again.
    const evaluations = audit.evaluations;
    const db = w.deployments.get('Deployment/shop/db');
    assert.ok(db);
    w.deployments.set({ ...db, rolledOut: !db.rolledOut, resourceVersion: '2' });
    await settled();
    assert.equal(audit.evaluations, evaluations);
  });

  void test('required spread over more replicas than nodes', async (t) => {
    const w = new World();
    for (const n of ['n0', 'n1']) w.nodes.set({ metadata: { name: n, labels: { [HOSTNAME]: n } } });
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 3 }));
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    await audit.evaluate();
    assert.match(
      summaryOf(audit, 'PlacementPolicy/shop/one-per-node').unsatisfiable ?? '',
      /Deployment shop\/web wants 3 replicas/,
    );
    w.nodes.set({ metadata: { name: 'n2', labels: { [HOSTNAME]: 'n2' } } });
    await audit.evaluate();
    assert.equal(summaryOf(audit, 'PlacementPolicy/shop/one-per-node').unsatisfiable, undefined);
  });
});

// ---------------------------------------------------------------- remediation

void describe('ContinuousAudit remediation', () => {
  /** web Deployment with two pods in zone b, away from the db in zone a. */
  const drifted = (audit: AuditSpec): World => {
    const w = shop();
    w.pods.delete('shop/web-0');
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    w.deployments.set(web);
    w.replicaSets.set(replicaSet(web, 'h1'));
    for (const [name, node] of [
      ['web-h1-a', 'b1'],
      ['web-h1-b', 'b2'],
    ] as const)
      w.pods.set(
        placed(name, {
          ns: 'shop',
          labels: { app: 'web', 'pod-template-hash': 'h1' },
          node,
          owner: rsOwner('web-h1'),
        }),
      );
    w.setPolicies(webNearDb({ audit }));
    return w;
  };

  void test('no remediation unless the policy asks for it', async (t) => {
    const w = drifted({ remediation: 'None' });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 2);
    assert.deepEqual(w.evictor.calls, []);
  });

  void test('one pod of a workload at a time, the next after the cooldown', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: false, uid: 'uid-shop-web-h1-a' },
    ]);
    assert.deepEqual(w.metrics.evictions, ['evicted']);
    w.time += 30_000;
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 1, 'the replacement may not be up yet');
    w.time += 30_000;
    await audit.evaluate();
    assert.deepEqual(
      w.evictor.calls.map((c) => c.pod),
      ['shop/web-h1-a', 'shop/web-h1-b'],
    );
  });

  void test('maxEvictionsPerMinute across workloads', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 1 });
    w.pods.set(placed('web-bare', { ns: 'shop', labels: { app: 'web' }, node: 'b1' }));
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 1);
    w.time += 60_000;
    await audit.evaluate();
    assert.equal(w.evictor.calls.length, 2);
  });

  void test('an eviction a PodDisruptionBudget blocks is counted and tried again', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.evictor.outcome = () => ({ kind: 'blocked', message: 'Cannot evict pod: disruption budget' });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions, ['blocked', 'blocked']);
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions, ['blocked', 'blocked', 'blocked', 'blocked']);
    assert.equal(w.logged('evicted violating pod')[0]?.meta['result'], 'blocked');
    assert.match(String(w.logged('evicted violating pod')[0]?.meta['reason']), /disruption budget/);
    // Budget lifted: one pod goes.
    w.evictor.outcome = () => ({ kind: 'evicted' });
    await audit.evaluate();
    assert.deepEqual(w.metrics.evictions.slice(4), ['evicted']);
  });

  void test('dry run: evictions are asked with dryRun, logged, and counted as none', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const audit = w.audit(t, { evictor: w.evictor, evictionDryRun: true });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: true, uid: 'uid-shop-web-h1-a' },
    ]);
    assert.equal(w.logged('would evict (dry run)').length, 1);
    assert.equal(w.logged('evicted violating pod').length, 0);
    assert.deepEqual(w.metrics.evictions, [], 'placement_evictions_total counts real evictions');
  });

  void test('evictions held back are tried again without any other change', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.evictor.outcome = () => ({ kind: 'blocked', message: 'Cannot evict pod: disruption budget' });
    w.audit(
      t,
      { evictor: w.evictor, now: Date.now },
      { debounceMs: 5, evictionRetryMs: 50, evictionCooldownMs: 150 },
    );
    const waitUntil = async (what: string, ok: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!ok()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await waitUntil('blocked twice per pod', () => w.metrics.evictions.length >= 4);
    // The budget goes away; nothing the audit watches changes.
    w.evictor.outcome = () => ({ kind: 'evicted' });
    await waitUntil('one pod evicted', () => w.metrics.evictions.includes('evicted'));
    const first = Date.now();
    await waitUntil('the other one after the cooldown', () =>
      w.evictor.calls.some((c) => c.pod === 'shop/web-h1-b' && w.pods.get(c.pod) === undefined),
    );
    assert.ok(Date.now() - first >= 100, 'not before the cooldown');
    assert.deepEqual(
      w.metrics.evictions.filter((r) => r === 'evicted'),
      ['evicted', 'evicted'],
    );
  });

  void test('no eviction when the pod could not be placed anywhere else either', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.pods.delete('shop/db-0'); // no db anywhere: every node breaks the rule
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 2);
    assert.deepEqual(w.evictor.calls, []);
    assert.deepEqual(
      w.logged('not evicting: the pod would be unschedulable anyway').map((l) => l.meta['pod']),
      ['shop/web-h1-a', 'shop/web-h1-b'],
    );
    // The probe leaves the index as it was.
    await audit.fullCheck();
    assert.equal(audit.mismatches, 0);
  });

  void test('no eviction when the only nodes that would do are ones the pod may not use', async (t) => {
    // Zone a has the db, but the web pods are pinned to zone b by their template.
    const pinned = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    const web = pinned.deployments.get('Deployment/shop/web') ?? assert.fail('no web');
    pinned.deployments.set({ ...web, nodeSelector: { [ZONE]: 'b' } });
    const audit = pinned.audit(t, { evictor: pinned.evictor });
    await audit.evaluate();
    assert.deepEqual(pinned.evictor.calls, []);
    assert.equal(pinned.logged('not evicting: the pod would be unschedulable anyway').length, 2);
  });

  void test('no eviction when the nodes that would do are cordoned or tainted', async (t) => {
    const w = drifted({ remediation: 'Evict', maxEvictionsPerMinute: 10 });
    w.nodes.set({ ...nodeInZone('a1', 'a'), spec: { unschedulable: true } });
    w.nodes.set({
      ...nodeInZone('a2', 'a'),
      spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] },
    });
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, []);

    // The web pods tolerate the taint: a2 will do.
    const web = w.deployments.get('Deployment/shop/web') ?? assert.fail('no web');
    w.deployments.set({
      ...web,
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
    });
    await audit.evaluate();
    assert.deepEqual(w.evictor.calls, [
      { pod: 'shop/web-h1-a', dryRun: false, uid: 'uid-shop-web-h1-a' },
    ]);
  });
});

// ------------------------------------------------------------------ tenancy

void describe('ContinuousAudit keeps a namespaced policy in its namespace', () => {
  const EVIL: PolicyRef = 'PlacementPolicy/team-a/evil';
  /** Issue #16: team-a's policy keeps every pod of every namespace off its pods' nodes. */
  const evil = (audit: AuditSpec = { remediation: 'Evict', maxEvictionsPerMinute: 100 }) =>
    namespacedPolicy('team-a', 'evil', {
      mode: 'Audit',
      affinity: {
        podAntiAffinity: { [REQUIRED]: [term({}, HOSTNAME, { namespaceSelector: {} })] },
      },
      audit,
    });

  /** One pod of a Deployment (and its ReplicaSet) on `node`. */
  const deployed = (w: World, ns: string, app: string, node: string): void => {
    const d = deployment(ns, app, { app });
    w.deployments.set(d);
    w.replicaSets.set(replicaSet(d, 'h1'));
    w.pods.set(
      placed(`${app}-h1-x`, {
        ns,
        labels: { app, 'pod-template-hash': 'h1' },
        node,
        owner: rsOwner(`${app}-h1`),
      }),
    );
  };

  /**
   * Shared node n0: team-a's web pod and a bare debug pod of team-a, team-b's and team-c's web
   * pods. n1 holds team-b's api alone; n2 is free, so every pod there would fit elsewhere.
   */
  const tenants = (policy: PlacementPolicy = evil()): World => {
    const w = new World();
    for (const n of ['n0', 'n1', 'n2']) w.nodes.set(node(n));
    for (const ns of ['team-a', 'team-b', 'team-c']) w.namespaces.set(namespace(ns));
    deployed(w, 'team-a', 'a-web', 'n0');
    w.pods.set(placed('a-debug', { ns: 'team-a', labels: { app: 'debug' }, node: 'n0' }));
    deployed(w, 'team-b', 'b-web', 'n0');
    deployed(w, 'team-c', 'c-web', 'n0');
    deployed(w, 'team-b', 'b-api', 'n1');
    w.setPolicies(policy);
    return w;
  };

  const OUTSIDE = /team-b|team-c/;

  void test('remediation evicts only pods of workloads it targets, in its own namespace', async (t) => {
    const w = tenants();
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    // a-web breaks the term; a-debug only by symmetry (not targeted); b-web and c-web by
    // symmetry too, in namespaces the policy has no business in.
    assert.deepEqual(w.evictor.calls, [
      { pod: 'team-a/a-web-h1-x', dryRun: false, uid: 'uid-team-a-a-web-h1-x' },
    ]);
    assert.deepEqual(
      w.logged('evicted violating pod').map((l) => l.meta['pod']),
      ['team-a/a-web-h1-x'],
    );
  });

  void test('its status, placement_violations and Events show only pods of its namespace', async (t) => {
    const w = tenants();
    const audit = w.audit(t);
    await audit.evaluate();
    const s = summaryOf(audit, EVIL);
    assert.deepEqual(
      s.violationSample.map((v) => [v.pod, v.rule]),
      [
        ['team-a/a-debug', 'symmetricAntiAffinity'],
        ['team-a/a-web-h1-x', 'podAntiAffinity'],
      ],
    );
    assert.equal(s.violations, 2);
    for (const v of s.violationSample) assert.doesNotMatch(v.message, OUTSIDE, v.message);
    assert.deepEqual(w.metrics.violations.get(EVIL), {
      podAntiAffinity: 1,
      symmetricAntiAffinity: 1,
    });
    assert.deepEqual(
      w.events.map((e) => [e.target.namespace, e.target.name, e.reason]),
      [
        ['team-a', 'a-debug', 'PlacementViolation'],
        ['team-a', 'a-web-h1-x', 'PlacementViolation'],
      ],
    );
    for (const e of w.events) assert.doesNotMatch(e.message, OUTSIDE, e.message);
    assert.deepEqual(
      w.logged('pod breaks a placement rule').map((l) => l.meta['pod']),
      ['team-a/a-debug', 'team-a/a-web-h1-x'],
    );
  });

  void test('findings outside its namespace: a metric without pod names, one log line each when new', async (t) => {
    const w = tenants();
    const audit = w.audit(t);
    await audit.evaluate();
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), { symmetricAntiAffinity: 2 });
    const lines = () =>
      w
        .logged(CROSS_NAMESPACE_FINDING)
        .map((l) => [l.level, l.meta['policy'], l.meta['pod'], l.meta['rule']]);
    assert.deepEqual(lines(), [
      ['info', EVIL, 'team-b/b-web-h1-x', 'symmetricAntiAffinity'],
      ['info', EVIL, 'team-c/c-web-h1-x', 'symmetricAntiAffinity'],
    ]);
    // Judged again while they last: nothing new to say.
    for (let i = 0; i < 3; i++) await audit.evaluate();
    await audit.fullCheck();
    assert.equal(lines().length, 2);
    // team-a's web pod leaves n0: the findings end; it comes back: they are new again.
    const aWeb = w.pods.get('team-a/a-web-h1-x') ?? assert.fail('no a-web pod');
    w.pods.set({ ...aWeb, spec: { ...aWeb.spec, nodeName: 'n2' } });
    await audit.evaluate();
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), {});
    w.pods.set(aWeb);
    await audit.evaluate();
    assert.equal(lines().length, 4);
    assert.deepEqual(w.metrics.crossNamespace.get(EVIL), { symmetricAntiAffinity: 2 });
    // None of it reached the policy's status or an Event.
    assert.equal(summaryOf(audit, EVIL).violations, 2);
    assert.ok(w.events.every((e) => e.target.namespace === 'team-a'));
  });

  void test('a cluster policy keeps its reach; the cross-namespace metric is for namespaced ones', async (t) => {
    const w = tenants(
      clusterPolicy('everyone', {
        mode: 'Audit',
        targets: { namespaces: ['team-a'] },
        affinity: {
          podAntiAffinity: { [REQUIRED]: [term({}, HOSTNAME, { namespaceSelector: {} })] },
        },
        audit: { remediation: 'Evict', maxEvictionsPerMinute: 100 },
      }),
    );
    const audit = w.audit(t, { evictor: w.evictor });
    await audit.evaluate();
    const s = summaryOf(audit, 'ClusterPlacementPolicy/everyone');
    assert.deepEqual(
      s.violationSample.map((v) => v.pod),
      ['team-a/a-debug', 'team-a/a-web-h1-x', 'team-b/b-web-h1-x', 'team-c/c-web-h1-x'],
    );
    // It still evicts only what it targets.
    assert.deepEqual(
      w.evictor.calls.map((c) => c.pod),
      ['team-a/a-web-h1-x'],
    );
    assert.equal(w.metrics.crossNamespace.size, 0);
  });
});

// ------------------------------------------------------ incremental = rebuild

const NODES = ['n0', 'n1', 'n2', 'n3'] as const;
const NAMESPACES = ['a', 'b'] as const;
const PODS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'] as const;
const APPS = ['web', 'db', 'cache'] as const;

type Op =
  | { readonly op: 'node'; readonly node: number; readonly zone: string | null }
  | { readonly op: 'deleteNode'; readonly node: number }
  | { readonly op: 'namespace'; readonly ns: number; readonly env: string | null }
  | {
      readonly op: 'pod';
      readonly pod: number;
      readonly ns: number;
      readonly app: number;
      readonly node: number | null;
      readonly anti: boolean;
      readonly owned: boolean;
      readonly phase: 'Running' | 'Succeeded';
      readonly deleting: boolean;
    }
  | { readonly op: 'deletePod'; readonly pod: number; readonly ns: number }
  | { readonly op: 'template'; readonly ns: number; readonly app: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('node' as const),
    node: fc.nat(NODES.length - 1),
    zone: fc.constantFrom('za', 'zb', null),
  }),
  fc.record({ op: fc.constant('deleteNode' as const), node: fc.nat(NODES.length - 1) }),
  fc.record({
    op: fc.constant('namespace' as const),
    ns: fc.nat(NAMESPACES.length - 1),
    env: fc.constantFrom('prod', 'dev', null),
  }),
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pod' as const),
      pod: fc.nat(PODS.length - 1),
      ns: fc.nat(NAMESPACES.length - 1),
      app: fc.nat(APPS.length - 1),
      node: fc.option(fc.nat(NODES.length - 1), { nil: null, freq: 5 }),
      anti: fc.boolean(),
      owned: fc.boolean(),
      phase: fc.constantFrom('Running' as const, 'Running' as const, 'Succeeded' as const),
      deleting: fc.constantFrom(false, false, false, true),
    }),
  },
  fc.record({
    op: fc.constant('deletePod' as const),
    pod: fc.nat(PODS.length - 1),
    ns: fc.nat(NAMESPACES.length - 1),
  }),
  fc.record({
    op: fc.constant('template' as const),
    ns: fc.nat(NAMESPACES.length - 1),
    app: fc.nat(APPS.length - 1),
  }),
);

const at = <T>(list: readonly T[], i: number): T => {
  const v = list[i];
  if (v === undefined) throw new Error(`no element ${i}`);
  return v;
};

/** Two policies that reach pods through namespaces, templates and labels. */
function propertyWorld(): World {
  const w = new World();
  for (const n of NODES) w.nodes.set(nodeInZone(n, 'za'));
  for (const ns of NAMESPACES) {
    w.namespaces.set(namespace(ns));
    const d = deployment(ns, 'app', { app: 'web' });
    w.deployments.set(d);
    w.replicaSets.set(replicaSet(d, 'h'));
  }
  w.setPolicies(
    clusterPolicy('spread-prod', {
      targets: {
        kinds: ['Deployment', 'Pod'],
        namespaceSelector: labelsIn({ env: 'prod' }),
        selector: labelsIn({ app: 'web' }),
      },
      spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
    }),
    namespacedPolicy('a', 'web-near-db', {
      targets: { kinds: ['Deployment', 'Pod'], selector: labelsIn({ app: 'web' }) },
      affinity: affinityTo({ app: 'db' }),
    }),
  );
  return w;
}

function apply(w: World, o: Op): void {
  switch (o.op) {
    case 'node': {
      const name = at(NODES, o.node);
      w.nodes.set({
        metadata: {
          name,
          labels: { [HOSTNAME]: name, ...(o.zone === null ? {} : { [ZONE]: o.zone }) },
        },
      });
      return;
    }
    case 'deleteNode':
      w.nodes.delete(at(NODES, o.node));
      return;
    case 'namespace': {
      const ns = at(NAMESPACES, o.ns);
      w.namespaces.set(namespace(ns, o.env === null ? {} : { env: o.env }));
      return;
    }
    case 'pod': {
      const ns = at(NAMESPACES, o.ns);
      w.pods.set(
        placed(at(PODS, o.pod), {
          ns,
          labels: { app: at(APPS, o.app), ...(o.owned ? { 'pod-template-hash': 'h' } : {}) },
          ...(o.node === null ? {} : { node: at(NODES, o.node) }),
          ...(o.anti ? { anti: [term(labelsIn({ app: 'db' }), HOSTNAME)] } : {}),
          ...(o.owned ? { owner: rsOwner('app-h') } : {}),
          phase: o.phase,
          deleting: o.deleting,
        }),
      );
      return;
    }
    case 'deletePod':
      w.pods.delete(`${at(NAMESPACES, o.ns)}/${at(PODS, o.pod)}`);
      return;
    case 'template': {
      const ns = at(NAMESPACES, o.ns);
      w.deployments.set(deployment(ns, 'app', { app: at(APPS, o.app) }));
      return;
    }
  }
}

void test('incremental updates end where a rebuild from the final state does', async () => {
  const REFS = ['ClusterPlacementPolicy/spread-prod', 'PlacementPolicy/a/web-near-db'];
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { maxLength: 12 }),
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      async (before, during) => {
        const w = propertyWorld();
        for (const o of before) apply(w, o);
        const options = { debounceMs: HOUR, fullCheckMs: HOUR };
        const incremental = new ContinuousAudit(w.deps(), options);
        incremental.start();
        try {
          for (const [i, o] of during.entries()) {
            apply(w, o);
            if (i % 4 === 3) await incremental.evaluate(); // judged mid-way too
          }
          await incremental.evaluate();
          const rebuilt = new ContinuousAudit(w.deps(), options);
          rebuilt.start();
          await rebuilt.evaluate();
          await rebuilt.stop();
          for (const ref of REFS)
            assert.deepEqual(incremental.summary(ref), rebuilt.summary(ref), ref);
          assert.deepEqual(incremental.report?.violations, rebuilt.report?.violations);
          await incremental.fullCheck();
          assert.equal(incremental.mismatches, 0, 'the periodic check agrees');
          assert.equal(
            w.logged('incremental audit index disagreed with a rebuild; using the rebuild').length,
            0,
          );
        } finally {
          await incremental.stop();
        }
        assert.equal(w.pods.listeners, 0, 'stop() unsubscribes');
      },
    ),
    { numRuns: 300 },
  );
});

// ------------------------------------------- feasibility kept until what it read changes

void describe('ContinuousAudit keeps feasibility until what it read changes', () => {
  const unsatisfiable = async (
    audit: ContinuousAudit,
    ref: string,
  ): Promise<string | undefined> => {
    await audit.evaluate();
    return summaryOf(audit, ref).unsatisfiable;
  };

  void test('a provider pod deleted makes the policy unsatisfiable, re-created satisfiable', async (t) => {
    const w = new World();
    w.nodes.set(nodeInZone('a1', 'a'));
    w.namespaces.set(namespace('shop'));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const db = placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1' });
    w.pods.set(db); // no workload of its own: only the running pod can start web
    w.setPolicies(webNearDb());
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    const runs = audit.feasibilityRuns;

    // Pods no look-up for running pods could find leave the result as it is.
    w.pods.set(placed('cache-0', { ns: 'shop', labels: { app: 'cache' }, node: 'a1' }));
    w.pods.set(placed('db-0', { ns: 'other', labels: { app: 'db' }, node: 'a1' }));
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    assert.equal(audit.feasibilityRuns, runs, 'kept');

    w.pods.delete('shop/db-0');
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    assert.equal(audit.feasibilityRuns, runs + 1);
    w.pods.set(db);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    // Relabelled away, then finished: each takes the provider away as a deletion does.
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db-old' }, node: 'a1' }));
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
    w.pods.set(db);
    assert.equal(await unsatisfiable(audit, WEB_NEAR_DB), undefined);
    w.pods.set(placed('db-0', { ns: 'shop', labels: { app: 'db' }, node: 'a1', phase: 'Failed' }));
    assert.match((await unsatisfiable(audit, WEB_NEAR_DB)) ?? '', /Deployment shop\/web/);
  });

  void test('a workload scaled beyond the domains, and nodes that add or take domains', async (t) => {
    const w = new World();
    for (const n of ['n0', 'n1']) w.nodes.set(node(n));
    w.namespaces.set(namespace('shop'));
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    w.deployments.set(web);
    const ONE_PER_NODE: PolicyRef = 'PlacementPolicy/shop/one-per-node';
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined);
    w.deployments.set({ ...web, replicas: 3 });
    assert.match(
      (await unsatisfiable(audit, ONE_PER_NODE)) ?? '',
      /Deployment shop\/web wants 3 replicas, .* only 2 node domain/,
    );
    // A label the spread does not read: nothing to compute again.
    const runs = audit.feasibilityRuns;
    w.nodes.set(node('n0', { [HOSTNAME]: 'n0', disk: 'ssd' }));
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /wants 3 replicas/);
    assert.equal(audit.feasibilityRuns, runs, 'kept');
    w.nodes.set(node('n2'));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'a third node');
    w.nodes.set(node('n2', { [HOSTNAME]: 'n1' }));
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /only 2 node domain/);
    w.nodes.set(node('n2'));
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'hostname back');
    w.nodes.delete('n1');
    assert.match((await unsatisfiable(audit, ONE_PER_NODE)) ?? '', /only 2 node domain/);
    w.deployments.set({ ...web, replicas: 2 });
    assert.equal(await unsatisfiable(audit, ONE_PER_NODE), undefined, 'scaled down');
  });

  void test('a namespace relabelled brings a workload under a cluster policy', async (t) => {
    const w = new World();
    w.nodes.set(node('n0'));
    w.namespaces.set(namespace('shop', { env: 'dev' }));
    w.deployments.set(deployment('shop', 'web', { app: 'web' }, { replicas: 2 }));
    const REF: PolicyRef = 'ClusterPlacementPolicy/prod-one-per-node';
    w.setPolicies(
      clusterPolicy('prod-one-per-node', {
        targets: { namespaceSelector: labelsIn({ env: 'prod' }) },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t);
    assert.equal(await unsatisfiable(audit, REF), undefined);
    w.namespaces.set(namespace('shop', { env: 'prod' }));
    assert.match((await unsatisfiable(audit, REF)) ?? '', /Deployment shop\/web wants 2/);
    w.namespaces.set(namespace('shop', { env: 'dev' }));
    assert.equal(await unsatisfiable(audit, REF), undefined);
  });

  void test("a workload's owners, selector and own affinity are read again", async (t) => {
    const w = new World();
    w.nodes.set(node('n0'));
    w.namespaces.set(namespace('shop'));
    const web = deployment('shop', 'web', { app: 'web' }, { replicas: 2 });
    const rs = replicaSet(web, 'h');
    w.deployments.set(web);
    w.replicaSets.set(rs);
    const REF: PolicyRef = 'PlacementPolicy/shop/one-per-node';
    w.setPolicies(
      namespacedPolicy('shop', 'one-per-node', {
        targets: { kinds: ['ReplicaSet'] },
        spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
      }),
    );
    const audit = w.audit(t, {}, { debounceMs: 5 });
    const settled = () => new Promise((r) => setTimeout(r, 50));
    await settled();
    // The Deployment's ReplicaSet is the Deployment's business: not a target of its own.
    assert.equal(summaryOf(audit, REF).unsatisfiable, undefined);
    w.replicaSets.set({ ...rs, ownerReferences: [] }); // orphaned: judged without any pod event
    await settled();
    assert.match(summaryOf(audit, REF).unsatisfiable ?? '', /ReplicaSet shop\/web-h wants 2/);
    w.replicaSets.set({ ...rs, ownerReferences: [], selector: labelsIn({ app: 'nothing' }) });
    await settled();
    // The spread selects the ReplicaSet's own selector now, which its pods do not match.
    assert.equal(summaryOf(audit, REF).unsatisfiable, undefined);
  });

  void test('a policy removed or edited takes its terms off exactly the pods it targeted', async (t) => {
    const w = shop();
    relabelNode(w, 'a2', 'b'); // web-0 away from the db
    w.pods.set(placed('db-1', { ns: 'shop', labels: { app: 'db' }, node: 'a1' }));
    const dbSpread = namespacedPolicy('shop', 'db-one-per-node', {
      targets: { kinds: ['Pod'], selector: labelsIn({ app: 'db' }) },
      spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
    });
    const DB_SPREAD: PolicyRef = 'PlacementPolicy/shop/db-one-per-node';
    w.setPolicies(webNearDb(), dbSpread);
    const audit = w.audit(t);
    await audit.evaluate();
    assert.equal(summaryOf(audit, DB_SPREAD).violations, 4); // anti-affinity and symmetric, each pod
    assert.equal(summaryOf(audit, WEB_NEAR_DB).violations, 1);
    w.setPolicies(webNearDb());
    await audit.evaluate();
    assert.equal(audit.summary(DB_SPREAD), undefined);
    assert.deepEqual(
      audit.report?.violations.map((v) => [v.pod, v.source]),
      [['shop/web-0', WEB_NEAR_DB]],
    );
    // Edited: zone instead of hostname, which both db pods share too.
    w.setPolicies(
      webNearDb({ affinity: affinityTo({ app: 'db' }, HOSTNAME) }),
      namespacedPolicy('shop', 'db-one-per-node', {
        targets: { kinds: ['Pod'], selector: labelsIn({ app: 'db' }) },
        spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
      }),
    );
    await audit.evaluate();
    assert.equal(summaryOf(audit, DB_SPREAD).violations, 4); // anti-affinity and symmetric, each pod
    await audit.fullCheck();
    assert.equal(audit.mismatches, 0);
  });

  void test('the periodic check computes feasibility anew and finds the kept result right', async (t) => {
    const w = shop();
    w.deployments.set(deployment('shop', 'web', { app: 'web' }));
    const audit = w.audit(t);
    await audit.evaluate();
    const runs = audit.feasibilityRuns;
    await audit.fullCheck();
    assert.equal(audit.feasibilityRuns, runs + 1);
    assert.equal(audit.mismatches, 0);
    assert.equal(
      w.logged('kept feasibility result disagreed with a new one; using the new one').length,
      0,
    );
  });
});

// ------------------------------------------ kept feasibility = feasibility from scratch

const F_NODES = ['n0', 'n1', 'n2'] as const;
const F_APPS = ['web', 'db', 'cache'] as const;
const F_POLICIES: readonly PlacementPolicy[] = [
  webNearDb(),
  namespacedPolicy('shop', 'db-near-web', {
    targets: { selector: labelsIn({ app: 'db' }) },
    affinity: affinityTo({ app: 'web' }, HOSTNAME),
  }),
  namespacedPolicy('shop', 'one-per-node', {
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  }),
  clusterPolicy('prod-one-per-zone', {
    targets: { namespaceSelector: labelsIn({ env: 'prod' }), kinds: ['Deployment', 'ReplicaSet'] },
    spreadAcross: [{ topologyKey: ZONE, mode: 'Required' }],
  }),
];

type FeasibilityOp =
  | {
      readonly op: 'node';
      readonly node: number;
      readonly zone: string | null;
      readonly host: boolean;
    }
  | { readonly op: 'deleteNode'; readonly node: number }
  | { readonly op: 'namespace'; readonly env: string | null }
  | {
      readonly op: 'pod';
      readonly pod: number;
      readonly app: number;
      readonly ns: 'shop' | 'other';
      readonly node: number | null;
      readonly phase: 'Running' | 'Failed';
      readonly anti: boolean;
    }
  | { readonly op: 'deletePod'; readonly pod: number }
  | {
      readonly op: 'workload';
      readonly app: number;
      readonly replicas: number;
      readonly waitsFor: number | null;
      readonly orphanRs: boolean;
    }
  | { readonly op: 'deleteWorkload'; readonly app: number }
  | { readonly op: 'policies'; readonly mask: number };

const feasibilityOpArb: fc.Arbitrary<FeasibilityOp> = fc.oneof(
  fc.record({
    op: fc.constant('node' as const),
    node: fc.nat(F_NODES.length - 1),
    zone: fc.constantFrom('za', 'zb', null),
    host: fc.boolean(),
  }),
  fc.record({ op: fc.constant('deleteNode' as const), node: fc.nat(F_NODES.length - 1) }),
  fc.record({ op: fc.constant('namespace' as const), env: fc.constantFrom('prod', 'dev', null) }),
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pod' as const),
      pod: fc.nat(3),
      app: fc.nat(F_APPS.length - 1),
      ns: fc.constantFrom('shop' as const, 'shop' as const, 'other' as const),
      node: fc.option(fc.nat(F_NODES.length - 1), { nil: null, freq: 5 }),
      phase: fc.constantFrom('Running' as const, 'Running' as const, 'Failed' as const),
      anti: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('deletePod' as const), pod: fc.nat(3) }),
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('workload' as const),
      app: fc.nat(F_APPS.length - 1),
      replicas: fc.nat(3),
      waitsFor: fc.option(fc.nat(F_APPS.length - 1), { nil: null }),
      orphanRs: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('deleteWorkload' as const), app: fc.nat(F_APPS.length - 1) }),
  fc.record({ op: fc.constant('policies' as const), mask: fc.nat(2 ** F_POLICIES.length - 1) }),
);

function applyFeasibilityOp(w: World, o: FeasibilityOp): void {
  switch (o.op) {
    case 'node': {
      const name = at(F_NODES, o.node);
      const labels: Labels = {
        ...(o.host ? { [HOSTNAME]: name } : {}),
        ...(o.zone === null ? {} : { [ZONE]: o.zone }),
      };
      w.nodes.set({ metadata: { name, labels } });
      return;
    }
    case 'deleteNode':
      w.nodes.delete(at(F_NODES, o.node));
      return;
    case 'namespace':
      w.namespaces.set(namespace('shop', o.env === null ? {} : { env: o.env }));
      return;
    case 'pod':
      for (const ns of ['shop', 'other']) if (ns !== o.ns) w.pods.delete(`${ns}/p${o.pod}`);
      w.pods.set(
        placed(`p${o.pod}`, {
          ns: o.ns,
          labels: { app: at(F_APPS, o.app) },
          ...(o.node === null ? {} : { node: at(F_NODES, o.node) }),
          ...(o.anti ? { anti: [term(labelsIn({ app: 'web' }), HOSTNAME)] } : {}),
          phase: o.phase,
        }),
      );
      return;
    case 'deletePod':
      for (const ns of ['shop', 'other']) w.pods.delete(`${ns}/p${o.pod}`);
      return;
    case 'workload': {
      const app = at(F_APPS, o.app);
      const d = deployment(
        'shop',
        app,
        { app },
        {
          replicas: o.replicas,
          ...(o.waitsFor === null ? {} : { affinity: affinityTo({ app: at(F_APPS, o.waitsFor) }) }),
        },
      );
      const rs = replicaSet(d, 'h');
      w.deployments.set(d);
      w.replicaSets.set(o.orphanRs ? { ...rs, ownerReferences: [] } : rs);
      return;
    }
    case 'deleteWorkload': {
      const app = at(F_APPS, o.app);
      w.deployments.delete(`Deployment/shop/${app}`);
      w.replicaSets.delete(`ReplicaSet/shop/${app}-h`);
      return;
    }
    case 'policies':
      // Compiled anew each time: a new array of new objects, as after a policy event.
      w.setPolicies(...F_POLICIES.filter((_, i) => (o.mask & (1 << i)) !== 0));
      return;
  }
}

void test('kept feasibility and policies adopted in place end where an audit from scratch does, after every pass', async () => {
  const refs = F_POLICIES.map((p) => compiled(p).ref);
  await fc.assert(
    fc.asyncProperty(fc.array(feasibilityOpArb, { minLength: 1, maxLength: 20 }), async (ops) => {
      const w = new World();
      for (const n of F_NODES) w.nodes.set(nodeInZone(n, 'za'));
      w.namespaces.set(namespace('shop'));
      w.namespaces.set(namespace('other'));
      w.setPolicies(...F_POLICIES);
      const options = { debounceMs: HOUR, fullCheckMs: HOUR };
      const kept = new ContinuousAudit(w.deps(), options);
      kept.start();
      try {
        for (const o of ops) {
          applyFeasibilityOp(w, o);
          await kept.evaluate();
          const scratch = new ContinuousAudit(w.deps(), { ...options, fromScratch: true });
          scratch.start();
          await scratch.evaluate();
          await scratch.stop();
          for (const ref of refs) assert.deepEqual(kept.summary(ref), scratch.summary(ref), ref);
          assert.deepEqual(kept.report?.violations, scratch.report?.violations);
        }
        await kept.fullCheck();
        assert.equal(kept.mismatches, 0, 'the periodic check agrees');
      } finally {
        await kept.stop();
      }
    }),
    { numRuns: 300 },
  );
});
