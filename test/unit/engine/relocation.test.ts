// fitsElsewhere: whether a pod in breach could be placed on another node without a violation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Node, Pod } from '../../../src/api/core.ts';
import {
  buildIndex,
  fitsElsewhere,
  nodeFacts,
  type PodConstraints,
} from '../../../src/engine/index.ts';
import {
  HOSTNAME,
  ZONE,
  labelsIn,
  namespace,
  node,
  nodeInZone,
  pod,
  snapshotOf,
  term,
} from '../builders.ts';

const NS = 'shop';
const db = (at: string): Pod => pod('db-0', { ns: NS, labels: { app: 'db' }, node: at });
/** A web pod that must share a zone with a db pod. */
const webNearDb = (at: string): Pod =>
  pod('web-0', {
    ns: NS,
    labels: { app: 'web' },
    node: at,
    affinity: [term(labelsIn({ app: 'db' }), ZONE)],
  });
/** A web pod that must not share a node with a db pod. */
const webAwayFromDb = (at: string): Pod =>
  pod('web-0', {
    ns: NS,
    labels: { app: 'web' },
    node: at,
    anti: [term(labelsIn({ app: 'db' }), HOSTNAME)],
  });
const cordoned = (n: Node): Node => ({ ...n, spec: { unschedulable: true } });

interface Case {
  readonly name: string;
  readonly nodes: readonly Node[];
  readonly pods: readonly Pod[];
  readonly key?: string;
  readonly constraints?: PodConstraints;
  readonly limit?: number;
  readonly want: boolean;
}

const ZONES = [nodeInZone('a1', 'a'), nodeInZone('a2', 'a'), nodeInZone('b1', 'b')];

const CASES: readonly Case[] = [
  {
    name: 'affinity broken in zone b: the other node of zone a fits',
    nodes: ZONES,
    pods: [db('a1'), webNearDb('b1')],
    want: true,
  },
  {
    name: 'affinity broken, but the pod may only go to zone b',
    nodes: ZONES,
    pods: [db('a1'), webNearDb('b1')],
    constraints: { nodeSelector: { [ZONE]: 'b' } },
    want: false,
  },
  {
    name: 'affinity broken, no db pod anywhere: nowhere fits',
    nodes: ZONES,
    pods: [webNearDb('b1')],
    want: false,
  },
  {
    name: 'anti-affinity broken on n1: the free node n2 fits',
    nodes: [node('n1'), node('n2')],
    pods: [db('n1'), webAwayFromDb('n1')],
    want: true,
  },
  {
    name: 'anti-affinity broken, the only other node is cordoned',
    nodes: [node('n1'), cordoned(node('n2'))],
    pods: [db('n1'), webAwayFromDb('n1')],
    want: false,
  },
  {
    name: 'a cordoned node is tried when the pod tolerates it',
    nodes: [node('n1'), cordoned(node('n2'))],
    pods: [db('n1'), webAwayFromDb('n1')],
    constraints: {
      tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists' }],
    },
    want: true,
  },
  {
    name: 'no node may be tried',
    nodes: [node('n1'), node('n2')],
    pods: [db('n1'), webAwayFromDb('n1')],
    limit: 0,
    want: false,
  },
  {
    name: 'a pod the index does not hold',
    nodes: ZONES,
    pods: [db('a1')],
    key: `${NS}/web-0`,
    want: false,
  },
];

void describe('fitsElsewhere', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const index = buildIndex(
        snapshotOf({ nodes: c.nodes, namespaces: [namespace(NS)], pods: c.pods }),
        [],
      );
      const before = index.describe();
      const got = fitsElsewhere(
        index,
        c.key ?? `${NS}/web-0`,
        c.nodes.map(nodeFacts),
        c.constraints ?? {},
        c.limit,
      );
      assert.equal(got, c.want);
      assert.equal(index.describe(), before, 'the index is left as it was found');
    });
  }
});
