import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { render } from '../../hack/gen-api-docs.ts';

void test('docs/api.md is generated from the CRDs and up to date', () => {
  const onDisk = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'api.md'), 'utf8');
  assert.equal(onDisk, render(), 'run `hack/node hack/gen-api-docs.ts`');
  for (const kind of ['PlacementPolicy', 'ClusterPlacementPolicy'])
    assert.match(onDisk, new RegExp(`## ${kind} \\(`));
  assert.match(onDisk, /`spreadAcross\[\]\.topologyKey`/);
});
