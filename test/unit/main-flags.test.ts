import assert from 'node:assert/strict';
import { test } from 'node:test';

import { readConfig } from '../../src/main.ts';

const settle = (...argv: string[]): number => {
  const config = readConfig(argv, {});
  assert.notEqual(config, 'help');
  return config === 'help' ? -1 : config.settleMs;
};

void test('--policy-settle: 3 s by default, 0s to 5m, a duration with a unit', () => {
  assert.equal(settle(), 3_000);
  assert.equal(settle('--policy-settle=0s'), 0);
  assert.equal(settle('--policy-settle', '500ms'), 500);
  assert.equal(settle('--policy-settle=5m'), 300_000);
  assert.throws(
    () => settle('--policy-settle=6m'),
    /: --policy-settle: 6m is out of range \(0s-5m\)$/,
  );
  assert.throws(() => settle('--policy-settle=-1s'), /: --policy-settle: -1s is not a duration/);
});
