// Both sides of one verdict, "may pod P run on node N?":
// - the engine's: the cluster as listed, with P bound to N, through auditSnapshot, read for P;
// - kube-scheduler's: P created unbound with a required node affinity to N alone; it binds
//   P to N (accepted) or reports PodScheduled=False with its reasons (refused).
// A refusal must come from the InterPodAffinity filter; any other reason (resources, taints,
// a node that is not ready) means the test set the scene wrong, and fails it loudly.
import { stringify } from 'yaml';

import type {
  Affinity,
  Labels,
  Pod,
  PodAffinityRules,
  PodAffinityTerm,
} from '../../../src/api/core.ts';
import { parseList } from '../../../src/cli/input.ts';
import { auditSnapshot } from '../../../src/engine/judge-cluster.ts';
import type { Rule } from '../../../src/api/rules.ts';
import type { Violation } from '../../../src/engine/placement.ts';
import { compileSelector, selectorMatches } from '../../../src/engine/selector.ts';
import { HttpMethod, statusMessage, type KubeApi } from './kube.ts';
import { NEGATIVE_NAMESPACE_SELECTOR_DEFECT } from './worlds.ts';

export type Verdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'refused'; readonly rule: Rule; readonly detail: readonly string[] };

export const verdictText = (v: Verdict): string => (v.kind === 'ok' ? 'ok' : `refused (${v.rule})`);

export const sameVerdict = (a: Verdict, b: Verdict): boolean =>
  a.kind === 'ok' ? b.kind === 'ok' : b.kind === 'refused' && a.rule === b.rule;

/** The short code a verdict has in a seed scenario's expectations. */
export const verdictCode = (v: Verdict): 'ok' | Rule => (v.kind === 'ok' ? 'ok' : v.rule);

// ------------------------------------------------------------------ objects

interface Meta {
  name: string;
  namespace?: string;
  labels?: Labels;
  deletionTimestamp?: string;
  finalizers?: string[];
}

export interface PodJson {
  apiVersion?: string;
  kind?: string;
  metadata: Meta & { namespace: string };
  spec: { nodeName?: string; affinity?: Affinity; [field: string]: unknown };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

interface ObjectJson {
  metadata: Meta;
}

/** The cluster as the engine reads it: every node, namespace and pod, cut to what it uses. */
export interface Snapshot {
  readonly nodes: readonly ObjectJson[];
  readonly namespaces: readonly ObjectJson[];
  readonly pods: readonly PodJson[];
}

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> =>
  value === undefined ? {} : ({ [key]: value } as Record<K, V>);

const trimMeta = (m: Meta): Meta => ({
  name: m.name,
  ...optional('namespace', m.namespace),
  ...optional('labels', m.labels),
  ...optional('deletionTimestamp', m.deletionTimestamp),
  ...optional('finalizers', m.finalizers),
});

/** What the engine reads of a pod, and what a fixture needs to replay it. */
export function trimPod(pod: PodJson): PodJson {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...trimMeta(pod.metadata), namespace: pod.metadata.namespace },
    spec: {
      ...optional('nodeName', pod.spec.nodeName),
      ...optional('affinity', pod.spec.affinity),
    },
    status: { ...optional('phase', pod.status?.phase) },
  };
}

const trimObject = (kind: string, o: ObjectJson): ObjectJson & { kind: string } =>
  ({
    apiVersion: 'v1',
    kind,
    metadata: trimMeta(o.metadata),
  }) as ObjectJson & { kind: string };

/** Lists the whole cluster: other tests' objects too, since the scheduler sees them as well. */
export async function takeSnapshot(api: KubeApi): Promise<Snapshot> {
  const [nodes, namespaces, pods] = await Promise.all([
    api.get<{ items: ObjectJson[] }>('/api/v1/nodes'),
    api.get<{ items: ObjectJson[] }>('/api/v1/namespaces'),
    api.get<{ items: PodJson[] }>('/api/v1/pods'),
  ]);
  return {
    nodes: nodes.items.map((n) => trimObject('Node', n)),
    namespaces: namespaces.items.map((n) => trimObject('Namespace', n)),
    pods: pods.items.map(trimPod),
  };
}

/** The probe as the engine judges it: bound to `node` and running. */
export function bound(pod: PodJson, node: string): PodJson {
  const t = trimPod(pod);
  return { ...t, spec: { ...t.spec, nodeName: node }, status: { phase: 'Running' } };
}

const key = (pod: PodJson): string => `${pod.metadata.namespace}/${pod.metadata.name}`;

/** The snapshot with the probe bound in it, as one List: the engine's whole input. */
export function listWith(snapshot: Snapshot, probe: PodJson): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      ...snapshot.nodes,
      ...snapshot.namespaces,
      ...snapshot.pods.filter((p) => key(p) !== key(probe)),
      probe,
    ],
  };
}

const RULE_ORDER: readonly Rule[] = ['podAffinity', 'podAntiAffinity', 'symmetricAntiAffinity'];

export interface EngineVerdict {
  readonly verdict: Verdict;
  readonly violations: readonly Violation[];
}

/**
 * The engine's verdict for `probe` (already bound): its violations, if any. The scheduler
 * stops at the first failing check (affinity, then anti-affinity, then the other pods'
 * anti-affinity), so the engine's verdict is named after the first rule in that order.
 */
export function engineVerdict(snapshot: Snapshot, probe: PodJson): EngineVerdict {
  const list = listWith(snapshot, probe);
  const items = list['items'] as (ObjectJson & { kind: string })[];
  const result = auditSnapshot({
    nodes: items.filter((i) => i.kind === 'Node'),
    namespaces: items.filter((i) => i.kind === 'Namespace'),
    pods: items.filter((i) => i.kind === 'Pod') as unknown as Pod[],
    policies: [],
    workloads: [],
  });
  if (result.kind === 'invalid') {
    throw new Error(`the engine refused the snapshot: ${result.errors.map(String).join('; ')}`);
  }
  return fromViolations(result.report.violations.filter((v) => v.pod === key(probe)));
}

function fromViolations(violations: readonly Violation[]): EngineVerdict {
  const rule = RULE_ORDER.find((r) => violations.some((v) => v.rule === r));
  const verdict: Verdict =
    rule === undefined
      ? { kind: 'ok' }
      : {
          kind: 'refused',
          rule,
          detail: violations.map((v) => `${v.rule} ${v.source}#${v.term}: ${v.message}`),
        };
  return { verdict, violations };
}

// ------------------------------------------------------------------ scheduler

const SCHEDULER_REASONS: Readonly<Record<string, Rule>> = {
  "node(s) didn't match pod affinity rules": 'podAffinity',
  "node(s) didn't match pod anti-affinity rules": 'podAntiAffinity',
  "node(s) didn't satisfy existing pods anti-affinity rules": 'symmetricAntiAffinity',
};

/** Reasons the other nodes give: the probe's node affinity leaves them out. */
const PINNED_ELSEWHERE = [
  /^node\(s\) didn't satisfy plugin\(s\) \[NodeAffinity\]$/,
  /^node\(s\) didn't match Pod's node affinity\/selector$/,
];

/**
 * Reads a FailedScheduling message ("0/9 nodes are available: 1 node(s) didn't match pod
 * anti-affinity rules, 8 node(s) didn't satisfy plugin(s) [NodeAffinity]. preemption: ...")
 * into the InterPodAffinity reason of the one node the probe may use; throws for anything else.
 */
export function schedulerRule(message: string): Rule {
  const m = /^0\/\d+ nodes are available: (.*?)\.(?: |$)/.exec(message);
  if (m === null) throw new Error(`unexpected scheduler message: ${message}`);
  const rules: Rule[] = [];
  for (const item of (m[1] ?? '').split(', ')) {
    const parts = /^(\d+) (.*)$/.exec(item);
    const reason = parts?.[2] ?? '';
    const rule = SCHEDULER_REASONS[reason];
    if (rule !== undefined && parts?.[1] === '1') rules.push(rule);
    else if (!PINNED_ELSEWHERE.some((re) => re.test(reason))) {
      throw new Error(
        `the scheduler refused the probe for a reason that is not inter-pod affinity ("${item}"): ${message}`,
      );
    }
  }
  const [rule, ...more] = rules;
  if (rule === undefined || more.length > 0) {
    throw new Error(`expected one inter-pod affinity reason for the probe's node: ${message}`);
  }
  return rule;
}

const DECISION_TIMEOUT_MS = 30_000;
const POLL_MS = 40;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for kube-scheduler to bind `pod` to `node` or to report it unschedulable. */
export async function schedulerVerdict(api: KubeApi, pod: PodJson, node: string): Promise<Verdict> {
  const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;
  const deadline = Date.now() + DECISION_TIMEOUT_MS;
  for (;;) {
    const current = await api.get<PodJson>(path);
    const nodeName = current.spec.nodeName ?? '';
    if (nodeName !== '') {
      if (nodeName !== node) throw new Error(`${key(pod)} was bound to ${nodeName}, not ${node}`);
      return { kind: 'ok' };
    }
    const scheduled = current.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False') {
      const message = scheduled.message ?? '';
      if (scheduled.reason !== 'Unschedulable') {
        throw new Error(`${key(pod)}: PodScheduled=False (${scheduled.reason ?? ''}): ${message}`);
      }
      return { kind: 'refused', rule: schedulerRule(message), detail: [message] };
    }
    if (Date.now() > deadline) {
      throw new Error(`${key(pod)}: no scheduling decision after ${DECISION_TIMEOUT_MS} ms`);
    }
    await sleep(POLL_MS);
  }
}

/** Deletes a pod at once (grace period 0) and waits until the API server no longer has it. */
export async function deletePodNow(api: KubeApi, namespace: string, name: string): Promise<void> {
  const path = `/api/v1/namespaces/${namespace}/pods/${name}`;
  const res = await api.request(HttpMethod.DELETE, `${path}?gracePeriodSeconds=0`);
  if (res.status !== 200 && res.status !== 404) {
    throw new Error(`DELETE ${path}: HTTP ${res.status}: ${statusMessage(res.body)}`);
  }
  const deadline = Date.now() + DECISION_TIMEOUT_MS;
  while ((await api.request(HttpMethod.GET, path)).status !== 404) {
    if (Date.now() > deadline) throw new Error(`${namespace}/${name} still exists after delete`);
    await sleep(POLL_MS);
  }
}

// ------------------------------------------------------------------ known scheduler defects

/** A defect of the oracle itself: how the defective scheduler reads a pod, to tell it apart. */
export interface KnownDefect {
  readonly id: string;
  readonly summary: string;
  /** The pod as the defective scheduler reads it; undefined when the defect cannot touch it. */
  readonly model: (pod: PodJson) => PodJson | undefined;
}

const REQUIRED = 'requiredDuringSchedulingIgnoredDuringExecution';

/**
 * kube-scheduler 1.34-1.36 (kubernetes/kubernetes#141526, introduced by #132457, fixed by
 * #141563): PreFilter unrolls the namespaceSelector of the incoming pod's terms into their
 * namespace list but, having received the term by value, leaves the selector in place; the
 * filter then matches that selector against an empty label set. A selector that an empty
 * set satisfies (NotIn, DoesNotExist) thus selects every namespace. Existing pods' terms
 * are matched with real namespace labels and are not affected. The model: those terms of
 * the pod with `namespaceSelector: {}`.
 */
export const NEGATIVE_NAMESPACE_SELECTOR: KnownDefect = {
  id: NEGATIVE_NAMESPACE_SELECTOR_DEFECT,
  summary:
    "kube-scheduler matches a namespaceSelector of the incoming pod's own terms that an empty " +
    'label set satisfies (NotIn, DoesNotExist) against every namespace',
  model: (pod) => {
    const widens = (t: PodAffinityTerm): boolean => {
      if (t.namespaceSelector === null || t.namespaceSelector === undefined) return false;
      const selector = compileSelector(t.namespaceSelector, 'namespaceSelector');
      return (
        selector.kind === 'requirements' &&
        selector.requirements.length > 0 &&
        selectorMatches(selector, {})
      );
    };
    const widen = (rules: PodAffinityRules | undefined): PodAffinityRules | undefined => {
      const terms = rules?.[REQUIRED];
      if (rules === undefined || terms === undefined) return rules;
      return {
        ...rules,
        [REQUIRED]: terms.map((t) => (widens(t) ? { ...t, namespaceSelector: {} } : t)),
      };
    };
    const a = pod.spec.affinity;
    const required = [
      ...(a?.podAffinity?.[REQUIRED] ?? []),
      ...(a?.podAntiAffinity?.[REQUIRED] ?? []),
    ];
    if (a === undefined || !required.some(widens)) return undefined;
    const podAffinity = widen(a.podAffinity);
    const podAntiAffinity = widen(a.podAntiAffinity);
    const affinity: Affinity = {
      ...a,
      ...(podAffinity ? { podAffinity } : {}),
      ...(podAntiAffinity ? { podAntiAffinity } : {}),
    };
    return { ...pod, spec: { ...pod.spec, affinity } };
  },
};

/** The defect whose model reproduces the scheduler's verdict where the engine's differs. */
export function explainedBy(
  defects: readonly KnownDefect[],
  snapshot: Snapshot,
  sent: PodJson,
  node: string,
  scheduler: Verdict,
): KnownDefect | undefined {
  return defects.find((d) => {
    const model = d.model(sent);
    return (
      model !== undefined &&
      sameVerdict(engineVerdict(snapshot, bound(model, node)).verdict, scheduler)
    );
  });
}

// ------------------------------------------------------------------ fixtures

export interface Disagreement {
  readonly world: string;
  readonly seed: string;
  /** The probe as sent to the scheduler. */
  readonly sent: PodJson;
  readonly node: string;
  readonly snapshot: Snapshot;
  readonly engine: EngineVerdict;
  readonly scheduler: Verdict;
  /** A known scheduler defect whose model gives the scheduler's verdict. */
  readonly explainedBy: KnownDefect | undefined;
}

const comment = (text: string): string =>
  text
    .split('\n')
    .map((line) => (line === '' ? '#' : `# ${line}`))
    .join('\n');

/**
 * A fixture that replays a disagreement: one Kubernetes List (every node, namespace and pod
 * the engine read, the probe bound to its node), readable by `kubectl-placement audit -f`,
 * with the probe as sent and both verdicts in the comment above it.
 */
export function fixtureText(d: Disagreement, file: string): string {
  const probe = bound(d.sent, d.node);
  const verdictLines = (v: Verdict): string =>
    v.kind === 'ok' ? '' : `\n${v.detail.map((line) => `  - ${line}`).join('\n')}`;
  const header = [
    'kube-scheduler and the placement engine disagree about one placement.',
    `Found by test/integration/differential.test.ts, ${d.seed}, world "${d.world}".`,
    `Pod in question: ${key(probe)} on node ${d.node} (bound to it in the List below).`,
    `Engine:    ${verdictText(d.engine.verdict)}${verdictLines(d.engine.verdict)}`,
    `Scheduler: ${verdictText(d.scheduler)}${verdictLines(d.scheduler)}`,
    ...(d.explainedBy ? [`Explained by ${d.explainedBy.id}: ${d.explainedBy.summary}.`] : []),
    `Engine side again: hack/node src/cli/kubectl-placement.ts audit -f ${file}`,
    'The pod as sent to the scheduler (unbound, pinned to the node by node affinity):',
    '',
    stringify(trimForScheduler(d.sent)).trimEnd(),
  ].join('\n');
  return `${comment(header)}\n${stringify(listWith(d.snapshot, probe))}`;
}

function trimForScheduler(pod: PodJson): Omit<PodJson, 'status'> {
  const { status: _, ...rest } = trimPod(pod);
  return rest;
}

/** Reads a fixture back as the CLI does and judges the probe again: the fixture must replay. */
export function replayFixture(text: string, file: string, probe: PodJson): Verdict {
  const snapshot = parseList(text, file);
  const result = auditSnapshot(snapshot);
  if (result.kind === 'invalid')
    throw new Error(`${file}: ${result.errors.map(String).join('; ')}`);
  return fromViolations(result.report.violations.filter((v) => v.pod === key(probe))).verdict;
}
