// Each case is a cluster and the violations kube-scheduler's InterPodAffinity filter implies
// for its placed pods: a pod is in breach when the filter would refuse its own node to it
// now, with every other placed pod where it is. Expectations come from the filter's rules
// (filtering.go: satisfyPodAffinity, satisfyPodAntiAffinity, satisfyExistingPodsAntiAffinity).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Pod } from '../../../src/api/core.ts';

import {
  HOSTNAME,
  ZONE,
  audit,
  exprs,
  labelsIn,
  namespace,
  node,
  nodeInZone,
  pod,
  sortTuples,
  term,
  tuplesOf,
  weighted,
  type Cluster,
  type PodOptions,
  type Tuple,
} from '../builders.ts';

const affinity = (p: string, term: number): Tuple => ({
  pod: p,
  rule: 'podAffinity',
  source: 'pod',
  term,
});
const anti = (p: string, term: number): Tuple => ({
  pod: p,
  rule: 'podAntiAffinity',
  source: 'pod',
  term,
});
const symmetric = (p: string, term: number): Tuple => ({
  pod: p,
  rule: 'symmetricAntiAffinity',
  source: 'pod',
  term,
});

const NAMESPACES = [
  namespace('default'),
  namespace('ns1'),
  namespace('ns2'),
  namespace('ns3', { team: 'shop' }),
];
const TWO_NODES = [node('n1'), node('n2')];
/** n1 and n2 in zone a, n3 in zone b. */
const ZONED = [nodeInZone('n1', 'a'), nodeInZone('n2', 'a'), nodeInZone('n3', 'b')];
/** A node with a hostname but no zone label. */
const NO_ZONE = [node('n1')];

const web = { app: 'web' };

// ---- scenes: the node sets, pods and terms the cases are built from ----

/** `pods` on n1 and n2, no zones. */
const onTwoNodes = (...pods: Pod[]): Cluster => ({ nodes: TWO_NODES, pods });
/** `pods` on n1, n2 (zone a) and n3 (zone b). */
const inZones = (...pods: Pod[]): Cluster => ({ nodes: ZONED, pods });
/** `pods` on n1, which has no zone label. */
const onUnzonedNode = (...pods: Pod[]): Cluster => ({ nodes: NO_ZONE, pods });
/** A pod labelled app=`app` on `node`, with no rules of its own. */
const placed = (app: string, node: string): Pod => pod(app, { node, labels: { app } });
/** web on n1 in namespace `ns`, with `rules`. */
const webIn = (ns: string, rules: Pick<PodOptions, 'affinity' | 'anti'>): Pod =>
  pod('web', { ns, node: 'n1', labels: web, ...rules });
/** A term over the pods labelled app=`app` in the namespaces labelled team=shop, by host. */
const shopTerm = (app: string) =>
  term(labelsIn({ app }), HOSTNAME, { namespaceSelector: labelsIn({ team: 'shop' }) });
/** A term over the pods labelled app=`app`, by host. */
const hostTerm = (app: string) => term(labelsIn({ app }), HOSTNAME);

interface Case {
  readonly name: string;
  readonly cluster: Cluster;
  readonly want: readonly Tuple[];
}

const cases: Case[] = [
  // ---- topology keys ----
  {
    name: 'affinity: a node without the topology key is in no domain, so the term is violated',
    cluster: onUnzonedNode(
      placed('db', 'n1'),
      pod('web', { node: 'n1', labels: web, affinity: [term(labelsIn({ app: 'db' }), ZONE)] }),
    ),
    want: [affinity('default/web', 0)],
  },
  {
    name: 'affinity: the first-pod exception needs every topology key on the node',
    cluster: onUnzonedNode(
      pod('web', { node: 'n1', labels: web, affinity: [term(labelsIn(web), ZONE)] }),
    ),
    want: [affinity('default/web', 0)],
  },
  {
    name: 'anti-affinity: a node without the topology key is in no domain, so nothing is violated',
    cluster: onUnzonedNode(
      pod('web-1', { node: 'n1', labels: web, anti: [term(labelsIn(web), ZONE)] }),
      pod('web-2', { node: 'n1', labels: web, anti: [term(labelsIn(web), ZONE)] }),
    ),
    want: [],
  },

  // ---- namespaces ----
  {
    name: 'namespaceSelector {} selects pods in every namespace',
    cluster: onTwoNodes(
      webIn('ns1', {
        anti: [term(labelsIn({ app: 'db' }), HOSTNAME, { namespaceSelector: {} })],
      }),
      pod('db', { ns: 'ns2', node: 'n1', labels: { app: 'db' } }),
    ),
    want: [anti('ns1/web', 0), symmetric('ns2/db', 0)],
  },
  {
    name: 'namespaceSelector null is not used: the term covers its own namespace only',
    cluster: onTwoNodes(
      webIn('ns1', {
        anti: [term(labelsIn({ app: 'db' }), HOSTNAME, { namespaceSelector: null })],
      }),
      pod('db', { ns: 'ns2', node: 'n1', labels: { app: 'db' } }),
      pod('db', { ns: 'ns1', node: 'n1', labels: { app: 'db' } }),
    ),
    want: [anti('ns1/web', 0), symmetric('ns1/db', 0)],
  },
  {
    name: 'neither namespaces nor namespaceSelector: the term covers its own namespace only',
    cluster: onTwoNodes(
      webIn('ns1', {
        anti: [hostTerm('db')],
      }),
      pod('db', { ns: 'ns2', node: 'n1', labels: { app: 'db' } }),
    ),
    want: [],
  },
  {
    name: 'explicit namespaces replace the own namespace',
    cluster: onTwoNodes(
      webIn('ns1', {
        anti: [term(labelsIn({ app: 'db' }), HOSTNAME, { namespaces: ['ns2'] })],
      }),
      pod('db', { ns: 'ns1', node: 'n1', labels: { app: 'db' } }),
      pod('db', { ns: 'ns2', node: 'n1', labels: { app: 'db' } }),
    ),
    want: [anti('ns1/web', 0), symmetric('ns2/db', 0)],
  },
  {
    name: 'namespaces and namespaceSelector together select the union of both',
    cluster: onTwoNodes(
      webIn('ns1', {
        anti: [
          term(labelsIn({ app: 'db' }), HOSTNAME, {
            namespaces: ['ns2'],
            namespaceSelector: labelsIn({ team: 'shop' }),
          }),
        ],
      }),
      pod('db', { ns: 'ns1', node: 'n1', labels: { app: 'db' } }),
      pod('db', { ns: 'ns2', node: 'n1', labels: { app: 'db' } }),
      pod('db', { ns: 'ns3', node: 'n1', labels: { app: 'db' } }),
    ),
    want: [anti('ns1/web', 0), symmetric('ns2/db', 0), symmetric('ns3/db', 0)],
  },
  {
    name: 'namespaceSelector matches namespace labels, not pod labels',
    cluster: onTwoNodes(
      webIn('ns1', {
        affinity: [shopTerm('cache')],
      }),
      // ns1 has no team label; the pod's own team label does not count.
      pod('cache', { ns: 'ns1', node: 'n1', labels: { app: 'cache', team: 'shop' } }),
    ),
    want: [affinity('ns1/web', 0)],
  },
  {
    name: 'affinity is met by a pod in a namespace that the namespaceSelector picks',
    cluster: onTwoNodes(
      webIn('ns1', {
        affinity: [shopTerm('cache')],
      }),
      pod('cache', { ns: 'ns3', node: 'n1', labels: { app: 'cache' } }),
    ),
    want: [],
  },

  // ---- symmetry ----
  {
    name: 'symmetric anti-affinity across namespaces: the matched pod is in breach too',
    cluster: onTwoNodes(
      pod('a', { ns: 'ns1', node: 'n1', labels: { app: 'a' } }),
      pod('b', {
        ns: 'ns2',
        node: 'n1',
        labels: { app: 'b' },
        anti: [term(labelsIn({ app: 'a' }), HOSTNAME, { namespaceSelector: {} })],
      }),
    ),
    want: [symmetric('ns1/a', 0), anti('ns2/b', 0)],
  },
  {
    name: 'symmetric anti-affinity: a carrier in another domain is no breach',
    cluster: onTwoNodes(
      pod('a', { ns: 'ns1', node: 'n1', labels: { app: 'a' } }),
      pod('b', {
        ns: 'ns2',
        node: 'n2',
        labels: { app: 'b' },
        anti: [term(labelsIn({ app: 'a' }), HOSTNAME, { namespaceSelector: {} })],
      }),
    ),
    want: [],
  },
  {
    name: 'symmetric anti-affinity: carriers of one identical term are reported once',
    cluster: onTwoNodes(
      placed('cache', 'n1'),
      pod('web-1', {
        node: 'n1',
        labels: web,
        anti: [hostTerm('cache')],
      }),
      pod('web-2', {
        node: 'n1',
        labels: web,
        anti: [hostTerm('cache')],
      }),
    ),
    want: [symmetric('default/cache', 0), anti('default/web-1', 0), anti('default/web-2', 0)],
  },
  {
    name: 'symmetric anti-affinity names the term index in the carrier',
    cluster: onTwoNodes(
      placed('cache', 'n1'),
      pod('web', {
        node: 'n1',
        labels: web,
        anti: [hostTerm('db'), hostTerm('cache')],
      }),
    ),
    want: [symmetric('default/cache', 1), anti('default/web', 1)],
  },

  // ---- the first pod of a self-affine group ----
  {
    name: 'self-affinity: the first pod of its group may run alone',
    cluster: onTwoNodes(
      pod('web-1', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
    ),
    want: [],
  },
  {
    name: 'self-affinity: two pods of the group on one node satisfy each other',
    cluster: onTwoNodes(
      pod('web-1', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
      pod('web-2', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
    ),
    want: [],
  },
  {
    name: 'self-affinity: another matching pod in another domain ends the first-pod exception',
    cluster: onTwoNodes(
      pod('web-1', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
      pod('web-2', { node: 'n2', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
    ),
    want: [affinity('default/web-1', 0), affinity('default/web-2', 0)],
  },
  {
    name: 'self-affinity: a matching pod without terms in another domain ends the exception too',
    cluster: onTwoNodes(
      pod('web-1', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
      pod('web-2', { node: 'n2', labels: web }),
    ),
    want: [affinity('default/web-1', 0)],
  },
  {
    name: 'self-affinity: a matching pod on a node without the topology key is counted nowhere',
    cluster: {
      nodes: [node('n1'), node('bare', {})],
      pods: [
        pod('web-1', { node: 'n1', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
        pod('web-2', { node: 'bare', labels: web, affinity: [term(labelsIn(web), HOSTNAME)] }),
      ],
    },
    want: [affinity('default/web-2', 0)],
  },
  {
    // web-2 is counted in zone a (its node has no hostname): the scheduler's affinity counts
    // are not empty for web-1, so web-1 is no first pod and its hostname term is unmet.
    name: 'self-affinity: a matching pod counted in the same domain of one key ends the exception',
    cluster: {
      nodes: [nodeInZone('n1', 'a'), node('n2', { [ZONE]: 'a' })],
      pods: [
        pod('web-1', {
          node: 'n1',
          labels: web,
          affinity: [term(labelsIn(web), ZONE), term(labelsIn(web), HOSTNAME)],
        }),
        pod('web-2', {
          node: 'n2',
          labels: web,
          affinity: [term(labelsIn(web), ZONE), term(labelsIn(web), HOSTNAME)],
        }),
      ],
    },
    want: [affinity('default/web-1', 1), affinity('default/web-2', 1)],
  },
  {
    name: 'affinity: a pod that does not match its own term gets no first-pod exception',
    cluster: onTwoNodes(
      pod('web', {
        node: 'n1',
        labels: web,
        affinity: [hostTerm('db')],
      }),
    ),
    want: [affinity('default/web', 0)],
  },

  // ---- several terms ----
  {
    name: 'affinity: only pods matching ALL terms count, so two half-matches satisfy nothing',
    cluster: inZones(
      placed('db', 'n1'),
      pod('cache', { node: 'n2', labels: { tier: 'cache' } }),
      pod('web', {
        node: 'n1',
        labels: web,
        affinity: [hostTerm('db'), term(labelsIn({ tier: 'cache' }), ZONE)],
      }),
    ),
    want: [affinity('default/web', 0), affinity('default/web', 1)],
  },
  {
    name: 'affinity: a pod matching all terms satisfies those whose domain it shares',
    cluster: inZones(
      pod('db-cache', { node: 'n2', labels: { app: 'db', tier: 'cache' } }),
      pod('web', {
        node: 'n1',
        labels: web,
        affinity: [hostTerm('db'), term(labelsIn({ tier: 'cache' }), ZONE)],
      }),
    ),
    want: [affinity('default/web', 0)],
  },
  {
    name: 'affinity: a pod matching all terms in every domain satisfies them all',
    cluster: inZones(
      pod('db-cache', { node: 'n1', labels: { app: 'db', tier: 'cache' } }),
      pod('web', {
        node: 'n1',
        labels: web,
        affinity: [hostTerm('db'), term(labelsIn({ tier: 'cache' }), ZONE)],
      }),
    ),
    want: [],
  },
  {
    name: 'anti-affinity: each term is judged on its own',
    cluster: onTwoNodes(
      placed('db', 'n1'),
      pod('web', {
        node: 'n1',
        labels: web,
        anti: [hostTerm('db'), hostTerm('cache')],
      }),
    ),
    want: [symmetric('default/db', 0), anti('default/web', 0)],
  },

  // ---- operators against pods without the label ----
  {
    name: 'NotIn selects a pod that lacks the label',
    cluster: onTwoNodes(
      pod('web', {
        node: 'n1',
        labels: web,
        anti: [term(exprs(['tier', 'NotIn', ['frontend']]), HOSTNAME)],
      }),
      pod('batch', { node: 'n1', labels: { app: 'batch' } }),
      pod('frontend', { node: 'n1', labels: { tier: 'frontend' } }),
    ),
    want: [symmetric('default/batch', 0), anti('default/web', 0)],
  },
  {
    name: 'DoesNotExist selects a pod that lacks the label',
    cluster: onTwoNodes(
      pod('web', {
        node: 'n1',
        labels: web,
        anti: [term(exprs(['gpu', 'DoesNotExist']), HOSTNAME)],
      }),
      placed('plain', 'n1'),
      pod('trainer', { node: 'n1', labels: { gpu: 'a100' } }),
    ),
    want: [symmetric('default/plain', 0), anti('default/web', 0)],
  },
  {
    name: 'In does not select a pod that lacks the label',
    cluster: onTwoNodes(
      pod('web', {
        node: 'n1',
        labels: web,
        anti: [term(exprs(['tier', 'In', ['cache']]), HOSTNAME)],
      }),
      placed('plain', 'n1'),
    ),
    want: [],
  },

  // ---- matchLabelKeys / mismatchLabelKeys ----
  {
    name: "matchLabelKeys narrows the term to pods with the pod's own value",
    cluster: onTwoNodes(
      pod('web-a', {
        node: 'n1',
        labels: { app: 'web', version: 'v1' },
        anti: [term(labelsIn(web), HOSTNAME, { matchLabelKeys: ['version'] })],
      }),
      pod('web-b', { node: 'n1', labels: { app: 'web', version: 'v2' } }),
      pod('web-c', { node: 'n1', labels: { app: 'web', version: 'v1' } }),
    ),
    want: [anti('default/web-a', 0), symmetric('default/web-c', 0)],
  },
  {
    name: "mismatchLabelKeys excludes pods with the pod's own value",
    cluster: onTwoNodes(
      pod('a', {
        node: 'n1',
        labels: { tenant: 't1' },
        anti: [term(exprs(['tenant', 'Exists']), HOSTNAME, { mismatchLabelKeys: ['tenant'] })],
      }),
      pod('b', { node: 'n1', labels: { tenant: 't1' } }),
      pod('c', { node: 'n1', labels: { tenant: 't2' } }),
    ),
    want: [anti('default/a', 0), symmetric('default/c', 0)],
  },
  {
    name: 'matchLabelKeys that the API server merged at creation are not merged again',
    // Created as version=v1 (the API server appended `version In (v1)`), relabelled v2 since:
    // the scheduler reads the stored selector, which still selects v1.
    cluster: onTwoNodes(
      pod('x', {
        node: 'n1',
        labels: { app: 'web', version: 'v2' },
        anti: [
          term(
            {
              matchLabels: web,
              matchExpressions: [{ key: 'version', operator: 'In', values: ['v1'] }],
            },
            HOSTNAME,
            { matchLabelKeys: ['version'] },
          ),
        ],
      }),
      pod('y', { node: 'n1', labels: { app: 'web', version: 'v1' } }),
      pod('z', { node: 'n1', labels: { app: 'web', version: 'v2' } }),
    ),
    want: [anti('default/x', 0), symmetric('default/y', 0)],
  },
  {
    name: 'labelSelector null selects nothing, matchLabelKeys notwithstanding (anti-affinity)',
    cluster: onTwoNodes(
      pod('a', {
        node: 'n1',
        labels: web,
        anti: [term(null, HOSTNAME, { matchLabelKeys: ['app'] })],
      }),
      pod('b', { node: 'n1', labels: web }),
    ),
    want: [],
  },
  {
    name: 'labelSelector null selects nothing, matchLabelKeys notwithstanding (affinity)',
    cluster: onTwoNodes(
      pod('a', {
        node: 'n1',
        labels: web,
        affinity: [term(null, HOSTNAME, { matchLabelKeys: ['app'] })],
      }),
      pod('b', { node: 'n1', labels: web }),
    ),
    want: [affinity('default/a', 0)],
  },

  // ---- pods that are not placed ----
  {
    name: 'finished and unbound pods are not neighbours for anti-affinity',
    cluster: onTwoNodes(
      pod('web', { node: 'n1', labels: web, anti: [term(labelsIn(web), HOSTNAME)] }),
      pod('web-done', {
        node: 'n1',
        labels: web,
        phase: 'Succeeded',
        anti: [term(labelsIn(web), HOSTNAME)],
      }),
      pod('web-failed', {
        node: 'n1',
        labels: web,
        phase: 'Failed',
        anti: [term(labelsIn(web), HOSTNAME)],
      }),
      pod('web-new', { labels: web, anti: [term(labelsIn(web), HOSTNAME)] }),
    ),
    want: [],
  },
  {
    // kube-scheduler keeps a pod being deleted in its cache until it is gone.
    name: 'a pod being deleted is still a neighbour, but is not judged itself',
    cluster: onTwoNodes(
      pod('web', { node: 'n1', labels: web, anti: [term(labelsIn(web), HOSTNAME)] }),
      pod('web-old', {
        node: 'n1',
        labels: web,
        deleting: true,
        anti: [term(labelsIn(web), HOSTNAME)],
      }),
    ),
    want: [anti('default/web', 0), symmetric('default/web', 0)],
  },
  {
    name: 'finished and unbound pods cannot satisfy affinity; a pod being deleted still does',
    cluster: onTwoNodes(
      pod('cache', {
        node: 'n1',
        labels: { app: 'cache' },
        affinity: [hostTerm('db')],
      }),
      pod('db-done', { node: 'n1', labels: { app: 'db' }, phase: 'Succeeded' }),
      pod('db-failed', { node: 'n1', labels: { app: 'db' }, phase: 'Failed' }),
      pod('db-new', { labels: { app: 'db' } }),
      pod('cache-2', {
        node: 'n2',
        labels: { app: 'cache' },
        affinity: [hostTerm('db')],
      }),
      pod('db-old', { node: 'n2', labels: { app: 'db' }, deleting: true }),
    ),
    want: [affinity('default/cache', 0)],
  },
  {
    name: 'terminating, finished and unbound pods are not judged',
    cluster: onTwoNodes(
      placed('db', 'n1'),
      pod('a', {
        node: 'n1',
        deleting: true,
        affinity: [hostTerm('none')],
      }),
      pod('b', {
        node: 'n1',
        phase: 'Succeeded',
        anti: [hostTerm('db')],
      }),
      pod('c', { node: 'n1', phase: 'Failed', anti: [hostTerm('db')] }),
      pod('d', { affinity: [hostTerm('none')] }),
    ),
    want: [],
  },

  // ---- zones ----
  {
    name: 'zone anti-affinity is broken by a pod on another node of the same zone',
    cluster: inZones(
      pod('web-1', { node: 'n1', labels: web, anti: [term(labelsIn(web), ZONE)] }),
      pod('web-2', { node: 'n2', labels: web, anti: [term(labelsIn(web), ZONE)] }),
      pod('web-3', { node: 'n3', labels: web, anti: [term(labelsIn(web), ZONE)] }),
    ),
    want: [
      anti('default/web-1', 0),
      symmetric('default/web-1', 0),
      anti('default/web-2', 0),
      symmetric('default/web-2', 0),
    ],
  },
  {
    name: 'zone affinity is met by a pod on another node of the same zone only',
    cluster: inZones(
      placed('db', 'n2'),
      pod('web-a', { node: 'n1', labels: web, affinity: [term(labelsIn({ app: 'db' }), ZONE)] }),
      pod('web-b', { node: 'n3', labels: web, affinity: [term(labelsIn({ app: 'db' }), ZONE)] }),
    ),
    want: [affinity('default/web-b', 0)],
  },

  // ---- self and preferred ----
  {
    name: 'a pod is never its own neighbour: a term matching itself alone on a node is met',
    cluster: onTwoNodes(
      pod('web', { node: 'n1', labels: web, anti: [term(labelsIn(web), HOSTNAME)] }),
    ),
    want: [],
  },
  {
    name: 'preferred terms never make a violation',
    cluster: onTwoNodes(
      pod('web-1', {
        node: 'n1',
        labels: web,
        preferredAnti: [weighted(100, term(labelsIn(web), HOSTNAME))],
        preferred: [weighted(100, hostTerm('db'))],
      }),
      pod('web-2', {
        node: 'n1',
        labels: web,
        preferredAnti: [weighted(100, term(labelsIn(web), HOSTNAME))],
      }),
    ),
    want: [],
  },
];

void describe('judgePod', () => {
  for (const c of cases) {
    void test(c.name, () => {
      const report = audit({ namespaces: NAMESPACES, ...c.cluster });
      assert.deepEqual(tuplesOf(report.violations), sortTuples(c.want));
      assert.equal(report.summary.violations, c.want.length);
    });
  }
});

void describe('preferred score', () => {
  void test("is the scheduler's raw sum over the pod's own preferred terms", () => {
    const report = audit({
      nodes: TWO_NODES,
      pods: [
        pod('web', {
          node: 'n1',
          labels: web,
          preferred: [weighted(30, hostTerm('db'))],
          preferredAnti: [weighted(50, term(labelsIn(web), HOSTNAME))],
        }),
        pod('web-2', { node: 'n1', labels: web }),
        pod('web-3', { node: 'n2', labels: web }),
        pod('db-1', { node: 'n1', labels: { app: 'db' } }),
        pod('db-2', { node: 'n1', labels: { app: 'db' } }),
      ],
    });
    // +30 × two db pods on n1, −50 × one other web pod on n1; the affinity is met, the
    // anti-affinity is not.
    assert.deepEqual(report.preferred.get('default/web'), {
      score: 10,
      satisfiedWeight: 30,
      totalWeight: 80,
    });
    assert.equal(report.preferred.has('default/web-2'), false, 'only pods with preferred terms');
    assert.deepEqual(report.violations, []);
  });

  void test('counts nothing on a node without the topology key', () => {
    const report = audit({
      nodes: NO_ZONE,
      pods: [
        pod('web', {
          node: 'n1',
          labels: web,
          preferred: [weighted(30, term(labelsIn({ app: 'db' }), ZONE))],
          preferredAnti: [weighted(50, term(labelsIn(web), ZONE))],
        }),
        pod('web-2', { node: 'n1', labels: web }),
        placed('db', 'n1'),
      ],
    });
    assert.deepEqual(report.preferred.get('default/web'), {
      score: 0,
      satisfiedWeight: 50,
      totalWeight: 80,
    });
  });
});

void describe('violation messages', () => {
  void test('name the field of the term and the topology domain', () => {
    const report = audit({
      nodes: NO_ZONE,
      pods: [
        pod('web', { node: 'n1', labels: web, affinity: [term(labelsIn({ app: 'db' }), ZONE)] }),
      ],
    });
    const [v] = report.violations;
    assert.ok(v !== undefined);
    assert.equal(v.node, 'n1');
    assert.equal(
      v.message,
      'spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]: ' +
        `node n1 has no label ${ZONE}, so no pod can satisfy this podAffinity term there`,
    );
  });

  void test('symmetric violations name the carrier pod', () => {
    const report = audit({
      nodes: TWO_NODES,
      pods: [
        pod('a', { node: 'n1', labels: { app: 'a' } }),
        pod('b', { node: 'n1', anti: [hostTerm('a')] }),
      ],
    });
    const sym = report.violations.find((v) => v.rule === 'symmetricAntiAffinity');
    assert.ok(sym !== undefined);
    assert.match(
      sym.message,
      /pod default\/b in kubernetes\.io\/hostname=n1 has a required podAntiAffinity term/,
    );
  });
});
