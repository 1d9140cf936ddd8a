// Properties of the findings kept between passes (KeptFindings, and KeptAuditOnly below): after any sequence of
// changes (a pod's violations set anew, a namespace whose findings now travel elsewhere,
// the policies changed, a pass told nothing of what changed), each pass tells the same new
// findings in the same order as newFindings over classify from scratch, lists the same
// findings, and each source's counts and sample are those counted from scratch (tallyOf).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import type { Labels, Pod } from '../../../src/api/core.ts';
import type { Rule } from '../../../src/api/rules.ts';
import {
  auditOnlyCounts,
  newFindings,
  tallyOf,
  type Finding,
} from '../../../src/audit/findings.ts';
import { KeptAuditOnly, KeptFindings } from '../../../src/audit/kept-findings.ts';
import {
  ViolationsByPod,
  type CompiledPolicy,
  type FindingReach,
  type Violation,
  type WorkloadRef,
} from '../../../src/engine/index.ts';
import { HOSTNAME, clusterPolicy, labelsIn } from '../builders.ts';
import { compiled } from './world.ts';

const PODS = ['a/p0', 'a/p1', 'a/p10', 'b/p0', 'b/p2', 'c/x'] as const;
const NAMESPACES = ['a', 'b', 'c'] as const;
const SOURCES = ['pod', 'ClusterPlacementPolicy/c', 'PlacementPolicy/a/own'] as const;
const RULES: readonly Rule[] = ['podAntiAffinity', 'nodeAffinity', 'topologySpread'];
const REACHES: readonly FindingReach[] = ['act', 'show', 'platform'];

const violationsArb = (pod: string): fc.Arbitrary<Violation[]> =>
  fc
    .array(
      fc.record({
        rule: fc.constantFrom(...RULES),
        source: fc.constantFrom(...SOURCES),
        term: fc.nat(1),
        message: fc.constantFrom('x', 'y'),
      }),
      { maxLength: 3 },
    )
    .map((vs) => vs.map((v) => ({ pod, node: 'n0', ...v })));

type Change =
  | { kind: 'pod'; pod: string; violations: Violation[] }
  | { kind: 'namespace'; namespace: string; reach: number }
  | { kind: 'policies'; shift: number }
  | { kind: 'forget' }
  | { kind: 'pass' };

const changeArb: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(...PODS).chain((pod) =>
      fc.record({
        kind: fc.constant('pod' as const),
        pod: fc.constant(pod),
        violations: violationsArb(pod),
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('namespace' as const),
      namespace: fc.constantFrom(...NAMESPACES),
      reach: fc.nat(2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('policies' as const), shift: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'forget' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'pass' as const }) },
);

void test('findings kept between passes equal classify, newFindings and a tally from scratch', () => {
  fc.assert(
    fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
      const book = new ViolationsByPod();
      // A finding's reach: by its namespace's setting and the policies' (what classify reads).
      const reachOf = new Map<string, number>(NAMESPACES.map((n) => [n, 0]));
      let shift = 0;
      const classify = (v: Violation): Finding => {
        const ns = v.pod.slice(0, v.pod.indexOf('/'));
        const i = (reachOf.get(ns) ?? 0) + shift + SOURCES.indexOf(v.source as never);
        return { violation: v, reach: REACHES[i % REACHES.length] ?? 'show' };
      };
      const kept = new KeptFindings();
      let before = new Set<string>();
      let told: { changed: Set<string> | null; namespaces: Set<string> | 'all' } = {
        changed: null,
        namespaces: 'all',
      };
      const check = (): void => {
        const fresh = kept.update(
          { pods: book.pods(), violationsOf: (pod) => book.get(pod) },
          { changed: told.changed, pods: [], namespaces: told.namespaces },
          classify,
        );
        told = { changed: new Set(), namespaces: new Set() };
        const findings = book.all().map(classify);
        const want = newFindings(findings, before);
        before = want.keys;
        assert.deepEqual(fresh, want.fresh, 'new findings');
        assert.deepEqual(kept.all(), findings, 'every finding');
        const tally = tallyOf(findings);
        for (const source of SOURCES) {
          for (const n of [0, 1, 2, 10])
            assert.deepEqual(kept.own(source, n), tally.own(source, n), `${source}, ${n}`);
          assert.deepEqual(kept.elsewhere(source), tally.elsewhere(source), source);
        }
      };
      check();
      for (const c of changes) {
        switch (c.kind) {
          case 'pod':
            book.set(c.pod, c.violations);
            told.changed?.add(c.pod);
            break;
          case 'namespace':
            reachOf.set(c.namespace, c.reach);
            if (told.namespaces !== 'all') told.namespaces.add(c.namespace);
            break;
          case 'policies':
            shift = c.shift;
            told.namespaces = 'all';
            break;
          case 'forget':
            told.changed = null;
            break;
          case 'pass':
            check();
        }
      }
      check();
    }),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------- audit-only counts

const AUDIT_ONLY_POLICIES: readonly CompiledPolicy[] = [
  clusterPolicy('x-pods', {
    mode: 'Audit',
    targets: { kinds: ['Pod'], selector: labelsIn({ app: 'x' }) },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  }),
  clusterPolicy('team-jobs-and-pods', {
    mode: 'Audit',
    targets: { kinds: ['Job', 'Pod'], namespaceSelector: labelsIn({ team: 't' }) },
    spreadAcross: [{ topologyKey: HOSTNAME, mode: 'Required' }],
  }),
].map(compiled);

type CountChange =
  | { kind: 'pod'; name: string; ns: string; app: string; terminating: boolean }
  | { kind: 'deletePod'; name: string; ns: string }
  | { kind: 'namespace'; ns: string; team: boolean }
  | { kind: 'policies'; chosen: boolean[] }
  | { kind: 'pass' };

const countChangeArb: fc.Arbitrary<CountChange> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('pod' as const),
      name: fc.constantFrom('p0', 'p1', 'p2'),
      ns: fc.constantFrom(...NAMESPACES),
      app: fc.constantFrom('x', 'y'),
      terminating: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('deletePod' as const),
      name: fc.constantFrom('p0', 'p1', 'p2'),
      ns: fc.constantFrom(...NAMESPACES),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('namespace' as const),
      ns: fc.constantFrom(...NAMESPACES),
      team: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('policies' as const),
      chosen: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'pass' as const }) },
);

void test('audit-only counts kept between passes equal auditOnlyCounts from scratch', () => {
  fc.assert(
    fc.property(fc.array(countChangeArb, { maxLength: 30 }), (changes) => {
      const pods = new Map<string, Pod>();
      const teams = new Set<string>();
      let policies = AUDIT_ONLY_POLICIES;
      let told = { pods: new Set<string>(), namespaces: new Set<string>(), all: true };
      const kept = new KeptAuditOnly();
      const workloadOf = (pod: Pod): WorkloadRef => ({
        kind: 'Pod',
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        templateLabels: pod.metadata.labels ?? {},
        podSelector: { matchLabels: pod.metadata.labels ?? {} },
      });
      const nsLabels = (ns: string): Labels => (teams.has(ns) ? { team: 't' } : {});
      const check = (): void => {
        const got = kept.update(
          policies,
          { pods: told.pods, namespaces: told.all ? 'all' : told.namespaces },
          { list: () => [...pods.values()], get: (key) => pods.get(key) },
          workloadOf,
          nsLabels,
        );
        told = { pods: new Set(), namespaces: new Set(), all: false };
        const want = auditOnlyCounts(policies, () => [...pods.values()], workloadOf, nsLabels);
        assert.deepEqual(new Map(got), want);
      };
      check();
      for (const c of changes) {
        switch (c.kind) {
          case 'pod':
            pods.set(`${c.ns}/${c.name}`, {
              metadata: {
                name: c.name,
                namespace: c.ns,
                labels: { app: c.app },
                ...(c.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
              },
              spec: { nodeName: 'n0' },
            });
            told.pods.add(`${c.ns}/${c.name}`);
            break;
          case 'deletePod':
            pods.delete(`${c.ns}/${c.name}`);
            told.pods.add(`${c.ns}/${c.name}`);
            break;
          case 'namespace':
            if (c.team) teams.add(c.ns);
            else teams.delete(c.ns);
            told.namespaces.add(c.ns);
            break;
          case 'policies':
            policies = AUDIT_ONLY_POLICIES.filter((_, i) => c.chosen[i] === true);
            told.all = true;
            break;
          case 'pass':
            check();
        }
      }
      check();
    }),
    { numRuns: 300 },
  );
});
