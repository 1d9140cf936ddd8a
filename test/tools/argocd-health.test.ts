// The Argo CD health check for PlacementPolicy / ClusterPlacementPolicy
// (examples/argocd/health.lua), run by Argo CD's own Lua runtime against sample objects:
// hack/tools/argocd-lua, gopher-lua and gopher-json at the versions Argo CD pins, with the
// libraries Argo CD opens for a resource.customizations health script (package, base,
// table, os.time/os.date; no string, math or io). Each sample goes in as JSON, as Argo CD
// decodes the live object, and the status and message it returns are compared with the case.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { REPO_ROOT } from '../cluster/paths.ts';
import { argocdLuaBinary } from './pinned.ts';

const SCRIPT = join(REPO_ROOT, 'examples', 'argocd', 'health.lua');
const SOURCE = readFileSync(SCRIPT, 'utf8');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const dir = mkdtempSync(join(tmpdir(), 'argocd-health-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a health script on `obj` as Argo CD would. */
function runScript(script: string, obj: Json): Ran {
  return spawnSync(argocdLuaBinary(), [script], {
    input: JSON.stringify(obj),
    encoding: 'utf8',
    timeout: 10_000,
  });
}

/** Runs the health script with `obj` set; returns the health it reported. */
function health(obj: Json): { status: string; message: string } {
  const ran = runScript(SCRIPT, obj);
  assert.equal(ran.status, 0, `argocd-lua ${SCRIPT}: ${ran.stderr}`);
  return JSON.parse(ran.stdout) as { status: string; message: string };
}

/** Writes a throwaway script and runs it. */
function runSnippet(name: string, lua: string): Ran {
  const file = join(dir, name);
  writeFileSync(file, lua);
  return runScript(file, { metadata: { name: 'x' } });
}

// ---------------------------------------------------------------------------------------
// Sample objects, shaped as src/controller/policy-status.ts writes them (conditions: policy-conditions.ts).

type ConditionType = 'Ready' | 'Degraded' | 'Unsatisfiable';
const cond = (
  type: ConditionType,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message = '',
): Json => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-11-25T12:00:00Z',
  observedGeneration: 3,
});
const healthyRest = [
  cond('Degraded', 'False', 'AsExpected'),
  cond('Unsatisfiable', 'False', 'Satisfiable'),
];

const policy = (
  status: Json | undefined,
  generation: number | null = 3,
  kind = 'PlacementPolicy',
): Json => ({
  apiVersion: 'placement.dev/v1alpha1',
  kind,
  metadata: {
    name: 'spread-web',
    ...(kind === 'PlacementPolicy' ? { namespace: 'shop' } : {}),
    ...(generation === null ? {} : { generation }),
  },
  spec: { targets: { selector: { matchLabels: { app: 'web' } } } },
  ...(status === undefined ? {} : { status }),
});
const withConditions = (conditions: Json[], observedGeneration: number | null = 3): Json => ({
  ...(observedGeneration === null ? {} : { observedGeneration }),
  conditions,
  matched: 3,
  enforced: 2,
  pending: 1,
  violations: 0,
});

interface Case {
  readonly name: string;
  readonly obj: Json;
  readonly status: 'Healthy' | 'Progressing' | 'Degraded';
  readonly message: string | RegExp;
}

const CASES: readonly Case[] = [
  {
    name: 'no status yet: Progressing',
    obj: policy(undefined),
    status: 'Progressing',
    message: 'Waiting for placement-operator to report status',
  },
  {
    name: 'status without conditions: Progressing',
    obj: policy({ conditions: [] }),
    status: 'Progressing',
    message: /report status/,
  },
  {
    name: 'status older than the spec, even if Ready=True: Progressing',
    obj: policy(withConditions([cond('Ready', 'True', 'Enforced', 'all 3'), ...healthyRest], 2), 3),
    status: 'Progressing',
    message: 'Waiting for placement-operator to observe generation 3',
  },
  {
    name: 'status without observedGeneration: Progressing',
    obj: policy(withConditions([cond('Ready', 'True', 'Enforced')], null)),
    status: 'Progressing',
    message: /observe generation 3/,
  },
  {
    name: 'Ready=True (Enforced): Healthy, with its message',
    obj: policy(
      withConditions([
        cond('Ready', 'True', 'Enforced', 'all 3 workload(s) carry the rules'),
        ...healthyRest,
      ]),
    ),
    status: 'Healthy',
    message: 'all 3 workload(s) carry the rules',
  },
  {
    name: 'Ready=True in Audit mode (Auditing): Healthy',
    obj: policy(
      withConditions([
        cond('Ready', 'True', 'Auditing', 'audit only: 1 of 3 workload(s) lack the rules'),
        ...healthyRest,
      ]),
    ),
    status: 'Healthy',
    message: /^audit only/,
  },
  {
    name: 'Ready=True with an empty message: Healthy, "Ready"',
    obj: policy(withConditions([cond('Ready', 'True', 'Enforced')])),
    status: 'Healthy',
    message: 'Ready',
  },
  {
    name: 'Ready=False, RolloutPending: Progressing, with its message',
    obj: policy(
      withConditions([
        cond(
          'Ready',
          'False',
          'RolloutPending',
          '2 of 3 workload(s) carry the rules (1 waiting for the rollout budget)',
        ),
        ...healthyRest,
      ]),
    ),
    status: 'Progressing',
    message: '2 of 3 workload(s) carry the rules (1 waiting for the rollout budget)',
  },
  {
    name: 'Ready=False, RolloutInProgress: Progressing while the rollouts it started run',
    obj: policy(
      withConditions([
        cond(
          'Ready',
          'False',
          'RolloutInProgress',
          '1 of 2 workload(s) still rolling out the rules',
        ),
        ...healthyRest,
      ]),
    ),
    status: 'Progressing',
    message: '1 of 2 workload(s) still rolling out the rules',
  },
  {
    name: 'Degraded=True (RolloutHeldBack): Degraded, naming the held-back write',
    obj: policy(
      withConditions([
        cond('Ready', 'False', 'RolloutHeldBack', '1 workload(s) not written'),
        cond(
          'Degraded',
          'True',
          'RolloutHeldBack',
          'Deployment shop/checkout-redis: at most 2 of 3 pods can run',
        ),
        cond('Unsatisfiable', 'False', 'Satisfiable', ''),
      ]),
    ),
    status: 'Degraded',
    message: 'Deployment shop/checkout-redis: at most 2 of 3 pods can run',
  },
  {
    name: 'Degraded=True (WorkloadBlocked): Degraded, with the Degraded message',
    obj: policy(
      withConditions([
        cond('Ready', 'False', 'WorkloadBlocked', '1 workload(s) cannot be changed safely'),
        cond(
          'Degraded',
          'True',
          'WorkloadBlocked',
          'Deployment shop/web: template owned by another policy',
        ),
        cond('Unsatisfiable', 'False', 'Satisfiable'),
      ]),
    ),
    status: 'Degraded',
    message: 'Deployment shop/web: template owned by another policy',
  },
  {
    name: 'Unsatisfiable=True while Ready=True: Degraded, with the Unsatisfiable message',
    obj: policy(
      withConditions([
        cond('Ready', 'True', 'Enforced', 'all 3'),
        cond('Degraded', 'False', 'AsExpected'),
        cond('Unsatisfiable', 'True', 'CannotBeMet', '5 replicas, one per zone, over 3 zones'),
      ]),
    ),
    status: 'Degraded',
    message: '5 replicas, one per zone, over 3 zones',
  },
  {
    name: 'Unsatisfiable and Degraded both True: Unsatisfiable named first',
    obj: policy(
      withConditions([
        cond('Ready', 'False', 'WorkloadBlocked'),
        cond('Degraded', 'True', 'WorkloadBlocked', 'blocked'),
        cond('Unsatisfiable', 'True', 'CannotBeMet', 'cannot be met'),
      ]),
    ),
    status: 'Degraded',
    message: 'cannot be met',
  },
  {
    name: 'InvalidSpec (Ready=False, Degraded=True): Degraded',
    obj: policy(
      withConditions([
        cond(
          'Ready',
          'False',
          'InvalidSpec',
          'spec.spreadAcross[0].topologyKey: must not be empty',
        ),
        cond(
          'Degraded',
          'True',
          'InvalidSpec',
          'spec.spreadAcross[0].topologyKey: must not be empty',
        ),
      ]),
    ),
    status: 'Degraded',
    message: 'spec.spreadAcross[0].topologyKey: must not be empty',
  },
  {
    name: 'Degraded=True with no message: the condition type',
    obj: policy(
      withConditions([
        cond('Ready', 'False', 'WorkloadBlocked'),
        cond('Degraded', 'True', 'WorkloadBlocked'),
      ]),
    ),
    status: 'Degraded',
    message: 'Degraded',
  },
  {
    name: 'Ready=False for another reason, nothing Degraded: Degraded',
    obj: policy(
      withConditions([
        cond('Ready', 'False', 'SomethingElse', 'cannot list workloads'),
        ...healthyRest,
      ]),
    ),
    status: 'Degraded',
    message: 'cannot list workloads',
  },
  {
    name: 'Ready=Unknown: Progressing',
    obj: policy(
      withConditions([cond('Ready', 'Unknown', 'Reconciling', 'first reconcile'), ...healthyRest]),
    ),
    status: 'Progressing',
    message: 'first reconcile',
  },
  {
    name: 'no Ready condition yet: Progressing',
    obj: policy(withConditions([...healthyRest])),
    status: 'Progressing',
    message: 'Waiting for the Ready condition',
  },
  {
    name: 'ClusterPlacementPolicy (no namespace), Ready=True: Healthy',
    obj: policy(
      withConditions([
        cond('Ready', 'True', 'Enforced', 'all 40 workload(s) carry the rules'),
        ...healthyRest,
      ]),
      3,
      'ClusterPlacementPolicy',
    ),
    status: 'Healthy',
    message: 'all 40 workload(s) carry the rules',
  },
  {
    name: 'no metadata.generation: judged on the conditions',
    obj: policy(withConditions([cond('Ready', 'True', 'Enforced', 'ok')], 1), null),
    status: 'Healthy',
    message: 'ok',
  },
];

void describe('examples/argocd/health.lua', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const got = health(c.obj);
      assert.equal(got.status, c.status, `message: ${got.message}`);
      if (typeof c.message === 'string') assert.equal(got.message, c.message);
      else assert.match(got.message, c.message);
    });
  }

  void test('keeps to Lua 5.1 syntax, which gopher-lua (Argo CD) runs', () => {
    const code = SOURCE.split('\n')
      .filter((line) => !line.trim().startsWith('--'))
      .join('\n');
    for (const [what, pattern] of [
      ['goto', /\bgoto\b/],
      ['integer division //', /\/\//],
      ['bitwise operators', /[^~]~[^=]|<<|>>|&/],
      ['<const> / <close>', /<(const|close)>/],
    ] as const) {
      assert.doesNotMatch(code, pattern, what);
    }
  });

  void test('the condition reasons it names are ones the operator writes', () => {
    const statusSource = ['policy-conditions.ts', 'policy-status.ts']
      .map((file) => readFileSync(join(REPO_ROOT, 'src', 'controller', file), 'utf8'))
      .join('\n');
    for (const reason of SOURCE.matchAll(/reason == "(\w+)"/g)) {
      // Written as a string literal: `reason: 'X'` or a condition helper's `'X'` argument.
      assert.match(statusSource, new RegExp(`'${reason[1] ?? ''}'`), reason[1]);
    }
    for (const type of ['Ready', 'Degraded', 'Unsatisfiable']) {
      assert.match(SOURCE, new RegExp(`"${type}"`), type);
    }
  });
});

void describe("Argo CD's Lua runtime (hack/tools/argocd-lua)", () => {
  void test('opens only the libraries Argo CD opens for a custom health script', () => {
    const ran = runSnippet(
      'libs.lua',
      'return { status = "Healthy", message = type(table.insert) .. " " .. type(os.time) .. " " .. type(string) .. " " .. type(math) .. " " .. type(io) .. " " .. type(os.exit) }',
    );
    assert.equal(ran.status, 0, ran.stderr);
    assert.deepEqual(JSON.parse(ran.stdout), {
      status: 'Healthy',
      message: 'function function nil nil nil nil',
    });
  });

  void test("a status outside Argo CD's health codes becomes Unknown", () => {
    const ran = runSnippet('invalid.lua', 'return { status = "Fine", message = "x" }');
    assert.equal(ran.status, 0, ran.stderr);
    assert.deepEqual(JSON.parse(ran.stdout), {
      status: 'Unknown',
      message: 'Lua returned an invalid health status',
    });
  });

  void test('a script that returns no table is an error, as in Argo CD', () => {
    const ran = runSnippet('string.lua', 'return "Healthy"');
    assert.equal(ran.status, 1);
    assert.match(ran.stderr, /expect table output from Lua script, not string/);
  });
});
