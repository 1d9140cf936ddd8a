// The continuous audit's world for its tests: in-memory sources, as informers would tell of
// changes, and fakes for what the audit tells (Events, metrics, evictions, logs). The quiet
// time after changes runs on a fake clock that moves only when a test moves it (and lasts an
// hour unless a test says otherwise): each test calls evaluate() itself, except where the
// quiet time is what is tested.
import assert from 'node:assert/strict';
import type { Affinity, Labels, Namespace, Node, Pod } from '../../../src/api/core.ts';
import type { PlacementPolicy, PlacementPolicySpec, PolicyRef } from '../../../src/api/policy.ts';
import type { EvictionOutcome } from '../../../src/audit/ports.ts';
import {
  ContinuousAudit,
  type ContinuousAuditDeps,
  type ContinuousAuditOptions,
} from '../../../src/audit/continuous-audit.ts';
import { compilePolicy, comparePolicies, type CompiledPolicy } from '../../../src/engine/index.ts';
import type {
  EvictionResultLabel as EvictionMetric,
  NamespacedPolicyLabel,
  PlacementMetrics,
  PolicyLabel,
} from '../../../src/metrics/index.ts';
import type { Rule } from '../../../src/api/rules.ts';
import { MemorySource } from '../../support/memory-source.ts';
import { FakeClock, flush } from '../controller/fake-clock.ts';
import {
  ZONE,
  cachedDeployment,
  labelsIn,
  namespace,
  namespacedPolicy,
  nodeInZone,
  pod,
  term,
  type PodOptions,
} from '../builders.ts';
import type { EventTarget, Workload } from '../../../src/api/cluster.ts';

export const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';
export const HOUR = 3_600_000;

// ------------------------------------------------------------------------ fakes

/** The policy informers, as the audit hears them: that something changed. */
export class FakeSignal {
  private readonly handlers = new Set<() => void>();

  addHandler(handler: () => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  fire(): void {
    for (const h of this.handlers) h();
  }
}

export interface Recorded {
  readonly target: EventTarget;
  readonly type: string;
  readonly reason: string;
  readonly message: string;
  /** Whether the recorder may drop it as a repeat of an identical recent event. */
  readonly deduplicate: boolean;
}

export class FakeMetrics implements PlacementMetrics {
  readonly violations = new Map<PolicyLabel, Partial<Record<Rule, number>>>();
  readonly crossNamespace = new Map<PolicyLabel, Partial<Record<Rule, number>>>();
  readonly evictions: EvictionMetric[] = [];
  audits = 0;
  readonly #onAudit: (() => void)[] = [];

  setPolicyWorkloads(): void {
    // not the audit's
  }
  setViolations(policy: PolicyLabel, counts: Readonly<Partial<Record<Rule, number>>>) {
    this.violations.set(policy, { ...counts });
  }
  setCrossNamespaceViolations(
    policy: NamespacedPolicyLabel,
    counts: Readonly<Partial<Record<Rule, number>>>,
  ) {
    this.crossNamespace.set(policy, { ...counts });
  }
  forgetPolicy(policy: PolicyLabel): void {
    this.violations.delete(policy);
    this.crossNamespace.delete(policy);
  }
  auditFinished(): void {
    this.audits++;
    for (const resolve of this.#onAudit.splice(0)) resolve();
  }
  /** Resolves when the next audit pass has finished. */
  nextAudit(): Promise<void> {
    return new Promise((resolve) => {
      this.#onAudit.push(resolve);
    });
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
    // not the audit's
  }
}

export interface Eviction {
  readonly pod: string;
  readonly dryRun: boolean;
  readonly uid: string | undefined;
}

/** The Eviction API: an eviction that goes through deletes the pod (its replacement is not made). */
export class FakeEvictor {
  readonly calls: Eviction[] = [];
  /** When each call came (Date.now()), by position in `calls`. */
  readonly times: number[] = [];
  /** What evictions return. */
  outcome: (pod: string) => EvictionOutcome = () => ({ kind: 'evicted' });
  private readonly pods: MemorySource<Pod>;

  constructor(pods: MemorySource<Pod>) {
    this.pods = pods;
  }

  evict(namespace: string, name: string, dryRun: boolean, uid?: string) {
    const pod = `${namespace}/${name}`;
    this.calls.push({ pod, dryRun, uid });
    this.times.push(Date.now());
    const outcome = this.outcome(pod);
    if (outcome.kind === 'evicted' && !dryRun) this.pods.delete(pod);
    return Promise.resolve(outcome);
  }
}

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

/** Everything the audit reads and tells, in memory. */
export class World {
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
  /** The audit's quiet-time timer runs on this. */
  readonly clock = new FakeClock();

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
      clock: this.clock,
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

  /**
   * Whether a pass waits for the quiet time after the changes so far (a policy change is heard
   * a macrotask late: looked at after it).
   */
  async passScheduled(): Promise<boolean> {
    await flush();
    return this.clock.pending() > 0;
  }

  /** Lets `ms` of quiet time pass and returns once the pass that started then has finished. */
  async quietFor(ms: number): Promise<void> {
    assert.ok(await this.passScheduled(), 'a pass waits for the quiet time');
    const finished = this.metrics.nextAudit();
    this.clock.advance(ms);
    assert.equal(this.clock.pending(), 0, `the quiet time is over after ${ms} ms`);
    await finished;
  }

  logged(message: string): LogLine[] {
    return this.logs.filter((l) => l.message === message);
  }
}

export function compiled(policy: PlacementPolicy): CompiledPolicy {
  const c = compilePolicy(policy);
  if (c.kind === 'invalid') throw new Error(c.errors.map((e) => e.message).join('; '));
  return c.policy;
}

export const withUid = (p: Pod): Pod => ({
  ...p,
  metadata: { ...p.metadata, uid: `uid-${p.metadata.namespace}-${p.metadata.name}` },
});

export const placed = (name: string, o: PodOptions): Pod => withUid(pod(name, o));

export const deployment = cachedDeployment;

/** The ReplicaSet `<deployment>-<hash>` a Deployment owns. */
export const replicaSet = (d: Workload, hash: string): Workload => ({
  ...d,
  kind: 'ReplicaSet',
  name: `${d.name}-${hash}`,
  uid: `uid-${d.name}-${hash}`,
  ownerReferences: [{ kind: 'Deployment', name: d.name, controller: true }],
});

export const rsOwner = (name: string) => ({ kind: 'ReplicaSet', name, controller: true });

export const affinityTo = (matchLabels: Labels, key: string = ZONE): Affinity => ({
  podAffinity: { [REQUIRED]: [term(labelsIn(matchLabels), key)] },
});

/** `web` pods in `shop` must share a zone with a `db` pod; bare pods are targeted too. */
export const webNearDb = (spec: PlacementPolicySpec = {}): PlacementPolicy =>
  namespacedPolicy('shop', 'web-near-db', {
    targets: { kinds: ['Deployment', 'Pod'], selector: labelsIn({ app: 'web' }) },
    affinity: affinityTo({ app: 'db' }),
    ...spec,
  });
export const WEB_NEAR_DB: PolicyRef = 'PlacementPolicy/shop/web-near-db';

/** A shop with two nodes per zone, a db pod in zone a and a web pod next to it. */
export function shop(): World {
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

export const relabelNode = (w: World, name: string, zone: string): void => {
  w.nodes.set(nodeInZone(name, zone));
};

export const summaryOf = (audit: ContinuousAudit, ref: string) => {
  const s = audit.summary(ref);
  assert.ok(s, `a summary for ${ref}`);
  return s;
};
