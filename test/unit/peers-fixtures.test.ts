// The fixtures of the known differences from the descheduler's
// RemovePodsViolatingInterPodAntiAffinity (test/fixtures/peers, docs/benchmarks.md): the
// audit CLI finds, in each, the pods kube-scheduler's InterPodAffinity filter would refuse
// where they run. `npm run bench` runs the descheduler on the same files.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { EXIT, run } from '../../src/cli/kubectl-placement.ts';

const DIR = fileURLToPath(new URL('../fixtures/peers/', import.meta.url));
const { '//': _about, ...expected } = JSON.parse(
  readFileSync(`${DIR}expected.json`, 'utf8'),
) as Record<string, { engine: string[]; descheduler: string[][] }>;

void test('every fixture has its expectation', () => {
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
    .sort();
  assert.deepEqual(files, Object.keys(expected).sort());
});

for (const [name, want] of Object.entries(expected)) {
  void test(`${name}: the pods in breach of anti-affinity, as kube-scheduler judges them`, () => {
    let stdout = '';
    let stderr = '';
    const code = run(['audit', '-f', `${DIR}${name}.yaml`, '-o', 'json'], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      readFile: (p) => readFileSync(p),
    });
    assert.equal(stderr, '');
    assert.equal(code, want.engine.length > 0 ? EXIT.violations : EXIT.ok);
    const report = JSON.parse(stdout) as { violations: { pod: string; rule: string }[] };
    const pods = [...new Set(report.violations.map((v) => v.pod))].sort();
    assert.deepEqual(pods, want.engine);
    for (const v of report.violations)
      assert.ok(['podAntiAffinity', 'symmetricAntiAffinity'].includes(v.rule), v.rule);
  });
}
