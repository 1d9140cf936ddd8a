import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fakeNodeManifest, podCidrOf, POD_NETWORK_CIDR } from '../../cluster/fake-node.ts';

void test('fake node pod CIDRs: node i gets the i-th /24 of the pod network', () => {
  const cases: { name: string; index: number; cidr: string }[] = [
    { name: 'the first node', index: 0, cidr: '10.128.0.0/24' },
    { name: 'the last of the first 256', index: 255, cidr: '10.128.255.0/24' },
    { name: 'node 256 carries into the next octet', index: 256, cidr: '10.129.0.0/24' },
    { name: 'node 4,999', index: 4999, cidr: '10.147.135.0/24' },
    { name: 'the last the /9 holds', index: 32767, cidr: '10.255.255.0/24' },
  ];
  for (const c of cases) assert.equal(podCidrOf(c.index), c.cidr, c.name);
  assert.equal(POD_NETWORK_CIDR, '10.128.0.0/9');
});

void test('fake node pod CIDRs: an index outside the pod network is refused', () => {
  for (const index of [-1, 32768, 1.5]) {
    assert.throws(() => podCidrOf(index), /has no \/24 in 10\.128\.0\.0\/9/, String(index));
  }
});

void test('fake node manifest: the pod CIDR is set only for a numbered node', () => {
  const base = {
    name: 'n',
    capacity: { cpu: '1', memory: '1Gi', pods: '10' },
    kubeletVersion: 'v1.36.3',
  };
  assert.deepEqual(fakeNodeManifest({ ...base, index: 300 }).spec, {
    podCIDR: '10.129.44.0/24',
    podCIDRs: ['10.129.44.0/24'],
  });
  assert.deepEqual(fakeNodeManifest(base).spec, {});
});
