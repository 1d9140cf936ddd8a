// Not a clusterTest: it installs the CRDs itself, the thing under test, on a cluster it selects.
// The CRDs in crds/ on a real API server: it installs them, refuses every policy that
// cannot work with a message naming the field, and accepts good ones (every file in
// examples/policies among them) with their defaults filled in.
//
//   hack/node --test test/integration/crds.test.ts
//
// Uses KUBECONFIG_TEST when set (npm test's shared cluster), else starts a local control
// plane. Bad policies are sent twice: by server-side apply with kubectl's default strict
// field validation, and by a plain create with --validate=false (fieldValidation=Ignore,
// the most a client can let through): the refusal must come from the schema and its CEL
// rules, not from the client. Server-side apply refuses any undeclared field by itself; a
// plain create prunes it and succeeds, which is why refusals are declared rules.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';

import type { PolicyKind } from '../../src/api/policy.ts';
import { API_VERSION } from '../../src/api/policy.ts';
import { compilePolicy } from '../../src/engine/policy-compile.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { selectTestCluster } from '../cluster/select.ts';
import { kubectlFor, type Kubectl, type Outcome } from './crd-kubectl.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const CRD_FILES = [
  'placement.dev_placementpolicies.yaml',
  'placement.dev_clusterplacementpolicies.yaml',
];
const EXAMPLES_DIR = join(REPO_ROOT, 'examples', 'policies');
const FIELD_MANAGER = 'crds-test';
/** On every object this file creates, so that cleanup finds exactly those. */
const TEST_LABEL = { 'placement.dev/test': 'crds' };
const NAMESPACE = `crds-test-${process.pid}`;

const HOSTNAME = 'kubernetes.io/hostname';
const ZONE = 'topology.kubernetes.io/zone';
const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';
const PREF = 'preferredDuringSchedulingIgnoredDuringExecution';
const BOTH: readonly PolicyKind[] = ['PlacementPolicy', 'ClusterPlacementPolicy'];

// ---------------------------------------------------------------------------------------
// Policies that cannot work. `field` is the path the refusal must name; `engine` says
// whether compilePolicy (the same rules in TypeScript, for policies read from files)
// refuses it too, naming the same field, or does not check that rule ('gap').

interface BadCase {
  name: string;
  spec: JsonObject;
  field: string;
  message: RegExp;
  kinds?: readonly PolicyKind[];
  engine: 'same-field' | 'gap';
  /** Where a plain create words it differently from server-side apply. */
  plain?: { field: string; message: RegExp };
}

const expr = (key: string, operator: string, values?: string[]): JsonObject => ({
  key,
  operator,
  ...(values === undefined ? {} : { values }),
});
const selector = (...matchExpressions: JsonObject[]): JsonObject => ({ matchExpressions });
const targetsSelector = (...e: JsonObject[]): JsonObject => ({
  targets: { selector: selector(...e) },
});
const podTerm = (extra: JsonObject = {}): JsonObject => ({
  labelSelector: { matchLabels: { app: 'web' } },
  topologyKey: HOSTNAME,
  ...extra,
});
const podRules = (kind: 'podAffinity' | 'podAntiAffinity', rules: JsonObject): JsonObject => ({
  affinity: { [kind]: rules },
});
const nodeRequired = (...terms: JsonObject[]): JsonObject => ({
  affinity: { nodeAffinity: { [REQ]: { nodeSelectorTerms: terms } } },
});
const nodeExpr = (e: JsonObject): JsonObject => nodeRequired({ matchExpressions: [e] });

const TARGET_EXPR = 'spec.targets.selector.matchExpressions[0]';
const ANTI_REQ = `spec.affinity.podAntiAffinity.${REQ}[0]`;
const AFF_PREF = `spec.affinity.podAffinity.${PREF}[0]`;
const NODE_TERMS = `spec.affinity.nodeAffinity.${REQ}.nodeSelectorTerms`;
const NODE_EXPR = `${NODE_TERMS}[0].matchExpressions[0]`;

const BAD: BadCase[] = [
  {
    name: 'unknown operator in the target selector',
    spec: targetsSelector(expr('app', 'Inn', ['web'])),
    field: `${TARGET_EXPR}.operator`,
    message: /Unsupported value: "Inn": supported values: "In", "NotIn", "Exists", "DoesNotExist"/,
    engine: 'same-field',
  },
  {
    name: 'unknown operator in a pod anti-affinity term',
    spec: podRules('podAntiAffinity', {
      [REQ]: [podTerm({ labelSelector: selector(expr('app', 'in', ['web'])) })],
    }),
    field: `${ANTI_REQ}.labelSelector.matchExpressions[0].operator`,
    message: /Unsupported value: "in"/,
    engine: 'same-field',
  },
  {
    name: 'Gt is a node selector operator, not a label selector one',
    spec: targetsSelector(expr('tier', 'Gt', ['1'])),
    field: `${TARGET_EXPR}.operator`,
    message: /Unsupported value: "Gt"/,
    engine: 'same-field',
  },
  {
    name: 'unknown node selector operator',
    spec: nodeExpr(expr('cpu-count', 'Gte', ['4'])),
    field: `${NODE_EXPR}.operator`,
    message: /Unsupported value: "Gte": supported values: .*"Gt", "Lt"/,
    engine: 'gap',
  },
  {
    name: 'In without values in the target selector',
    spec: targetsSelector(expr('app', 'In')),
    field: `${TARGET_EXPR}.values`,
    message: /Required value: values must be non-empty when operator is In/,
    engine: 'same-field',
  },
  {
    name: 'NotIn with an empty values list in a preferred pod affinity term',
    spec: podRules('podAffinity', {
      [PREF]: [
        {
          weight: 10,
          podAffinityTerm: podTerm({ labelSelector: selector(expr('app', 'NotIn', [])) }),
        },
      ],
    }),
    field: `${AFF_PREF}.podAffinityTerm.labelSelector.matchExpressions[0].values`,
    message: /Required value: values must be non-empty when operator is NotIn/,
    engine: 'same-field',
  },
  {
    name: 'Exists with values in the target selector',
    spec: targetsSelector(expr('app', 'Exists', ['web'])),
    field: `${TARGET_EXPR}.values`,
    message: /Forbidden: values must be empty when operator is Exists/,
    engine: 'same-field',
  },
  {
    name: "DoesNotExist with values in a term's namespaceSelector",
    spec: podRules('podAntiAffinity', {
      [REQ]: [podTerm({ namespaceSelector: selector(expr('env', 'DoesNotExist', ['prod'])) })],
    }),
    field: `${ANTI_REQ}.namespaceSelector.matchExpressions[0].values`,
    message: /Forbidden: values must be empty when operator is DoesNotExist/,
    engine: 'same-field',
  },
  {
    name: 'In without values in a node selector',
    spec: nodeExpr(expr('disk', 'In')),
    field: `${NODE_EXPR}.values`,
    message: /Required value: values must be non-empty when operator is In/,
    engine: 'gap',
  },
  {
    name: 'Exists with values in a preferred node selector',
    spec: {
      affinity: {
        nodeAffinity: {
          [PREF]: [{ weight: 5, preference: { matchExpressions: [expr('ssd', 'Exists', ['y'])] } }],
        },
      },
    },
    field: `spec.affinity.nodeAffinity.${PREF}[0].preference.matchExpressions[0].values`,
    message: /Forbidden: values must be empty when operator is Exists/,
    engine: 'gap',
  },
  {
    name: 'Gt without values',
    spec: nodeExpr(expr('cpu-count', 'Gt')),
    field: `${NODE_EXPR}.values`,
    message: /values must hold exactly one integer when operator is Gt/,
    engine: 'gap',
  },
  {
    name: 'Lt with two values',
    spec: nodeExpr(expr('cpu-count', 'Lt', ['4', '8'])),
    field: `${NODE_EXPR}.values`,
    message: /values must hold exactly one integer when operator is Lt/,
    engine: 'gap',
  },
  {
    name: 'Gt with a value that is not an integer',
    spec: nodeExpr(expr('cpu-count', 'Gt', ['four'])),
    field: `${NODE_EXPR}.values`,
    message: /values must hold exactly one integer when operator is Gt/,
    engine: 'gap',
  },
  {
    name: 'two required nodeSelectorTerms',
    spec: nodeRequired(
      { matchExpressions: [expr('disk', 'In', ['ssd'])] },
      { matchExpressions: [expr('gpu', 'Exists')] },
    ),
    field: NODE_TERMS,
    message: /Too many: 2: must have at most 1 item/,
    engine: 'gap',
  },
  {
    name: 'matchFields on a node field other than metadata.name',
    spec: nodeRequired({ matchFields: [expr('spec.unschedulable', 'In', ['false'])] }),
    field: `${NODE_TERMS}[0].matchFields[0].key`,
    message: /Unsupported value: "spec.unschedulable": supported values: "metadata.name"/,
    engine: 'gap',
  },
  {
    name: 'empty topologyKey in spreadAcross',
    spec: { spreadAcross: [{ topologyKey: '' }] },
    field: 'spec.spreadAcross[0].topologyKey',
    message: /should be at least 1 chars long/,
    engine: 'same-field',
  },
  {
    name: 'empty topologyKey in a required pod affinity term',
    spec: podRules('podAffinity', { [REQ]: [podTerm({ topologyKey: '' })] }),
    field: `spec.affinity.podAffinity.${REQ}[0].topologyKey`,
    message: /should be at least 1 chars long/,
    engine: 'same-field',
  },
  {
    name: 'topologyKey that is not a label key',
    spec: { spreadAcross: [{ topologyKey: 'kubernetes.io/host name' }] },
    field: 'spec.spreadAcross[0].topologyKey',
    message: /should match/,
    engine: 'gap',
  },
  {
    name: 'spreadAcross weight 0',
    spec: { spreadAcross: [{ topologyKey: ZONE, weight: 0 }] },
    field: 'spec.spreadAcross[0].weight',
    message: /should be greater than or equal to 1/,
    engine: 'same-field',
  },
  {
    name: 'spreadAcross maxSkew with the anti-affinity constraint',
    spec: { spreadAcross: [{ topologyKey: ZONE, maxSkew: 2 }] },
    field: 'spec.spreadAcross[0].maxSkew',
    message: /maxSkew is allowed with constraint TopologySpread only/,
    engine: 'same-field',
  },
  {
    name: 'spreadAcross maxSkew 0',
    spec: { spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', maxSkew: 0 }] },
    field: 'spec.spreadAcross[0].maxSkew',
    message: /should be greater than or equal to 1/,
    engine: 'same-field',
  },
  {
    name: 'spreadAcross minDomains with mode Preferred',
    spec: { spreadAcross: [{ topologyKey: ZONE, constraint: 'TopologySpread', minDomains: 2 }] },
    field: 'spec.spreadAcross[0].minDomains',
    message: /minDomains is allowed with constraint TopologySpread and mode Required only/,
    engine: 'same-field',
  },
  {
    name: 'spreadAcross constraint not one of the two',
    spec: { spreadAcross: [{ topologyKey: ZONE, constraint: 'Topology' }] },
    field: 'spec.spreadAcross[0].constraint',
    message: /Unsupported value: "Topology"/,
    engine: 'same-field',
  },
  {
    name: 'preferred pod affinity weight 101',
    spec: podRules('podAffinity', { [PREF]: [{ weight: 101, podAffinityTerm: podTerm() }] }),
    field: `${AFF_PREF}.weight`,
    message: /should be less than or equal to 100/,
    engine: 'same-field',
  },
  {
    name: 'preferred node affinity weight 0',
    spec: {
      affinity: {
        nodeAffinity: {
          [PREF]: [{ weight: 0, preference: { matchExpressions: [expr('ssd', 'Exists')] } }],
        },
      },
    },
    field: `spec.affinity.nodeAffinity.${PREF}[0].weight`,
    message: /should be greater than or equal to 1/,
    engine: 'gap',
  },
  {
    name: 'unknown target kind',
    spec: { targets: { kinds: ['Deploymnet'] } },
    field: 'spec.targets.kinds[0]',
    message: /Unsupported value: "Deploymnet": supported values: "Deployment", "StatefulSet"/,
    engine: 'same-field',
  },
  {
    name: 'unknown mode',
    spec: { mode: 'Sometimes' },
    field: 'spec.mode',
    message: /Unsupported value: "Sometimes": supported values: "Enforce", "Audit"/,
    engine: 'same-field',
  },
  {
    name: 'unknown spread mode',
    spec: { spreadAcross: [{ topologyKey: ZONE, mode: 'Always' }] },
    field: 'spec.spreadAcross[0].mode',
    message: /Unsupported value: "Always": supported values: "Required", "Preferred"/,
    engine: 'same-field',
  },
  {
    // Server-side apply refuses a duplicate list-map key while building its typed patch,
    // before validation, in its own words; a plain create says "Duplicate value".
    name: 'the same topologyKey spread twice',
    spec: { spreadAcross: [{ topologyKey: ZONE }, { topologyKey: ZONE, mode: 'Required' }] },
    field: 'spec.spreadAcross',
    message: /duplicate entries for key \[topologyKey="topology\.kubernetes\.io\/zone"\]/,
    plain: { field: 'spec.spreadAcross[1]', message: /Duplicate value/ },
    engine: 'gap',
  },
  {
    name: 'unknown remediation',
    spec: { audit: { remediation: 'Delete' } },
    field: 'spec.audit.remediation',
    message: /Unsupported value: "Delete": supported values: "None", "Evict"/,
    engine: 'gap',
  },
  {
    name: 'negative maxEvictionsPerMinute',
    spec: { audit: { maxEvictionsPerMinute: -1 } },
    field: 'spec.audit.maxEvictionsPerMinute',
    message: /should be greater than or equal to 0/,
    engine: 'gap',
  },
  {
    name: 'matchLabelKeys without a labelSelector',
    spec: podRules('podAntiAffinity', {
      [REQ]: [{ topologyKey: HOSTNAME, matchLabelKeys: ['pod-template-hash'] }],
    }),
    field: `${ANTI_REQ}.labelSelector`,
    message: /matchLabelKeys and mismatchLabelKeys need a labelSelector/,
    engine: 'gap',
  },
  {
    name: 'a key in both matchLabelKeys and mismatchLabelKeys',
    spec: podRules('podAntiAffinity', {
      [REQ]: [podTerm({ matchLabelKeys: ['tenant'], mismatchLabelKeys: ['tenant'] })],
    }),
    field: `${ANTI_REQ}.mismatchLabelKeys`,
    message: /a key may not be in both matchLabelKeys and mismatchLabelKeys/,
    engine: 'gap',
  },
  {
    name: 'namespaceSelector on a namespaced PlacementPolicy',
    kinds: ['PlacementPolicy'],
    spec: { targets: { namespaceSelector: { matchLabels: { env: 'prod' } } } },
    field: 'spec.targets.namespaceSelector',
    message: /Forbidden: namespaceSelector is not allowed on a namespaced PlacementPolicy/,
    engine: 'same-field',
  },
  {
    name: 'an empty namespaceSelector on a namespaced PlacementPolicy',
    kinds: ['PlacementPolicy'],
    spec: { targets: { namespaceSelector: {} } },
    field: 'spec.targets.namespaceSelector',
    message: /Forbidden: namespaceSelector is not allowed on a namespaced PlacementPolicy/,
    engine: 'same-field',
  },
  {
    name: 'namespaces on a namespaced PlacementPolicy',
    kinds: ['PlacementPolicy'],
    spec: { targets: { namespaces: ['other'] } },
    field: 'spec.targets.namespaces',
    message: /Forbidden: namespaces is not allowed on a namespaced PlacementPolicy/,
    engine: 'same-field',
  },
  {
    name: 'exceptions from other namespaces on a namespaced PlacementPolicy',
    kinds: ['PlacementPolicy'],
    spec: { exceptions: { allowed: true, namespaces: ['other'] } },
    field: 'spec.exceptions.namespaces',
    message: /Forbidden: namespaces is not allowed on a namespaced PlacementPolicy/,
    engine: 'same-field',
  },
  {
    name: 'an exceptions namespaceSelector on a namespaced PlacementPolicy',
    kinds: ['PlacementPolicy'],
    spec: { exceptions: { allowed: true, namespaceSelector: {} } },
    field: 'spec.exceptions.namespaceSelector',
    message: /Forbidden: namespaceSelector is not allowed on a namespaced PlacementPolicy/,
    engine: 'same-field',
  },
  {
    name: 'namespaces to accept exceptions from, without allowing exceptions',
    kinds: ['ClusterPlacementPolicy'],
    spec: { exceptions: { namespaces: ['team-a'] } },
    field: 'spec.exceptions.allowed',
    message:
      /namespaces and namespaceSelector choose where exceptions may come from; they need allowed: true/,
    engine: 'gap',
  },
  {
    name: 'unknown operator in the namespaceSelector of a ClusterPlacementPolicy',
    kinds: ['ClusterPlacementPolicy'],
    spec: { targets: { namespaceSelector: selector(expr('env', 'Equals', ['prod'])) } },
    field: 'spec.targets.namespaceSelector.matchExpressions[0].operator',
    message: /Unsupported value: "Equals"/,
    engine: 'same-field',
  },
  {
    name: 'a namespace name that cannot exist, on a ClusterPlacementPolicy',
    kinds: ['ClusterPlacementPolicy'],
    spec: { targets: { namespaces: ['Prod_1'] } },
    field: 'spec.targets.namespaces[0]',
    message: /should match/,
    engine: 'gap',
  },
];

// ---------------------------------------------------------------------------------------
// Policies that work. `want` is the whole spec the API server stores, defaults included.

interface GoodCase {
  name: string;
  kind: PolicyKind;
  spec: JsonObject;
  want: JsonObject;
}

const DEFAULT_AUDIT: JsonObject = { enabled: true, remediation: 'None', maxEvictionsPerMinute: 1 };
const DEFAULTS: JsonObject = {
  mode: 'Enforce',
  priority: 0,
  targets: { kinds: ['Deployment', 'StatefulSet'] },
  audit: DEFAULT_AUDIT,
  allowBlockedRollouts: false,
};

const GOOD: GoodCase[] = [
  ...BOTH.map((kind): GoodCase => ({
    name: `${kind}: an empty spec gets every default`,
    kind,
    spec: {},
    want: DEFAULTS,
  })),
  {
    name: 'a spread gets mode Preferred and weight 100',
    kind: 'PlacementPolicy',
    spec: { spreadAcross: [{ topologyKey: ZONE }, { topologyKey: HOSTNAME, mode: 'Required' }] },
    want: {
      ...DEFAULTS,
      spreadAcross: [
        { topologyKey: ZONE, mode: 'Preferred', weight: 100, constraint: 'PodAntiAffinity' },
        { topologyKey: HOSTNAME, mode: 'Required', weight: 100, constraint: 'PodAntiAffinity' },
      ],
    },
  },
  {
    name: 'a TopologySpread spread keeps maxSkew and minDomains as given; no maxSkew default',
    kind: 'ClusterPlacementPolicy',
    spec: {
      spreadAcross: [
        { topologyKey: ZONE, constraint: 'TopologySpread' },
        {
          topologyKey: HOSTNAME,
          constraint: 'TopologySpread',
          mode: 'Required',
          maxSkew: 2,
          minDomains: 3,
        },
      ],
    },
    want: {
      ...DEFAULTS,
      spreadAcross: [
        { topologyKey: ZONE, mode: 'Preferred', weight: 100, constraint: 'TopologySpread' },
        {
          topologyKey: HOSTNAME,
          mode: 'Required',
          weight: 100,
          constraint: 'TopologySpread',
          maxSkew: 2,
          minDomains: 3,
        },
      ],
    },
  },
  {
    name: 'explicit values are kept, kinds that are only audited included',
    kind: 'PlacementPolicy',
    spec: {
      mode: 'Audit',
      priority: -5,
      targets: { kinds: ['CronJob', 'Job', 'Pod'], selector: { matchLabels: { app: 'batch' } } },
      audit: { enabled: false, remediation: 'Evict', maxEvictionsPerMinute: 0 },
    },
    want: {
      mode: 'Audit',
      priority: -5,
      targets: { kinds: ['CronJob', 'Job', 'Pod'], selector: { matchLabels: { app: 'batch' } } },
      audit: { enabled: false, remediation: 'Evict', maxEvictionsPerMinute: 0 },
      allowBlockedRollouts: false,
    },
  },
  {
    name: 'every label selector operator, used as the API allows',
    kind: 'ClusterPlacementPolicy',
    spec: {
      targets: {
        selector: selector(
          expr('app', 'In', ['web', 'api']),
          expr('tier', 'NotIn', ['batch']),
          expr('team', 'Exists'),
          expr('legacy', 'DoesNotExist', []),
        ),
        namespaceSelector: { matchLabels: { env: 'prod' } },
        namespaces: ['payments', 'shop'],
      },
    },
    want: {
      ...DEFAULTS,
      targets: {
        kinds: ['Deployment', 'StatefulSet'],
        selector: selector(
          expr('app', 'In', ['web', 'api']),
          expr('tier', 'NotIn', ['batch']),
          expr('team', 'Exists'),
          expr('legacy', 'DoesNotExist', []),
        ),
        namespaceSelector: { matchLabels: { env: 'prod' } },
        namespaces: ['payments', 'shop'],
      },
    },
  },
  ...BOTH.map((kind): GoodCase => ({
    name: `${kind}: exceptions: {} means none allowed`,
    kind,
    spec: { exceptions: {} },
    want: { ...DEFAULTS, exceptions: { allowed: false } },
  })),
  {
    name: 'a cluster policy accepts exceptions from the namespaces it names and selects',
    kind: 'ClusterPlacementPolicy',
    spec: {
      exceptions: {
        allowed: true,
        namespaces: ['team-a'],
        namespaceSelector: { matchLabels: { 'placement.example/exceptions': 'allowed' } },
      },
    },
    want: {
      ...DEFAULTS,
      exceptions: {
        allowed: true,
        namespaces: ['team-a'],
        namespaceSelector: { matchLabels: { 'placement.example/exceptions': 'allowed' } },
      },
    },
  },
  ...BOTH.map((kind): GoodCase => {
    const affinity: JsonObject = {
      nodeAffinity: {
        [REQ]: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                expr('cpu-count', 'Gt', ['4']),
                expr('cpu-count', 'Lt', ['-1']),
                expr('example.com/ssd', 'Exists'),
              ],
              matchFields: [expr('metadata.name', 'NotIn', ['node-0'])],
            },
          ],
        },
        [PREF]: [{ weight: 1, preference: { matchExpressions: [expr(ZONE, 'In', ['zone-a'])] } }],
      },
      podAffinity: {
        [REQ]: [
          podTerm({
            namespaces: ['shop'],
            namespaceSelector: {},
            matchLabelKeys: ['pod-template-hash'],
            mismatchLabelKeys: ['tenant'],
          }),
        ],
      },
      podAntiAffinity: {
        [PREF]: [{ weight: 100, podAffinityTerm: podTerm({ topologyKey: ZONE }) }],
      },
    };
    return {
      name: `${kind}: the whole v1.Affinity shape, boundaries included`,
      kind,
      spec: { affinity },
      want: { ...DEFAULTS, affinity },
    };
  }),
];

// ---------------------------------------------------------------------------------------

interface PolicyObject {
  apiVersion: string;
  kind: PolicyKind;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: JsonObject;
}

function policyObject(kind: PolicyKind, name: string, spec: JsonObject): PolicyObject {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      ...(kind === 'PlacementPolicy' ? { namespace: NAMESPACE } : {}),
      labels: TEST_LABEL,
    },
    spec,
  };
}

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 50)
    .replace(/^-+|-+$/g, '');

const resource = (kind: PolicyKind): string =>
  kind === 'PlacementPolicy'
    ? 'placementpolicies.placement.dev'
    : 'clusterplacementpolicies.placement.dev';

/** Server-side apply with strict field validation, as `kubectl apply --server-side` does. */
const apply = (kube: Kubectl, object: PolicyObject): Promise<Outcome> =>
  kube.run(
    ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--validate=strict', '-f', '-'],
    JSON.stringify(object),
  );

/** A plain create with fieldValidation=Ignore: unknown fields are dropped without a word. */
const createIgnoringUnknownFields = (kube: Kubectl, object: PolicyObject): Promise<Outcome> =>
  kube.run(['create', '--validate=false', '-f', '-'], JSON.stringify(object));

async function readBack(kube: Kubectl, object: PolicyObject): Promise<PolicyObject> {
  const ns = object.metadata.namespace;
  const args = ['get', resource(object.kind), object.metadata.name, '-o', 'json'];
  return JSON.parse(await kube.must(ns === undefined ? args : [...args, '-n', ns])) as PolicyObject;
}

/** Every field of `want` is in `got` with the same value: nothing was pruned or changed. */
function assertKeeps(got: Json | undefined, want: Json, path: string): void {
  if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
    assert.ok(got !== null && typeof got === 'object' && !Array.isArray(got), `${path} is kept`);
    for (const [key, value] of Object.entries(want)) assertKeeps(got[key], value, `${path}.${key}`);
  } else if (Array.isArray(want)) {
    assert.ok(Array.isArray(got) && got.length === want.length, `${path} is kept`);
    want.forEach((value, i) => {
      assertKeeps(got[i], value, `${path}[${i}]`);
    });
  } else {
    assert.deepEqual(got, want, path);
  }
}

/** The defaults compilePolicy applies to what was submitted are those the API server stored. */
function assertEngineDefaultsAgree(submitted: PolicyObject, stored: PolicyObject): void {
  const compiled = compilePolicy(submitted);
  if (compiled.kind !== 'ok') {
    assert.fail(`compilePolicy refuses ${submitted.metadata.name}: ${compiled.errors.join('; ')}`);
  }
  const spec = stored.spec as {
    mode: string;
    priority: number;
    targets: { kinds: string[] };
    audit: { enabled: boolean };
    spreadAcross?: { topologyKey: string; mode: string; weight: number; maxSkew?: number }[];
  };
  const policy = compiled.policy;
  assert.equal(spec.mode, policy.mode);
  assert.equal(spec.priority, policy.priority);
  assert.deepEqual(spec.targets.kinds, [...policy.kinds]);
  assert.equal(spec.audit.enabled, policy.auditEnabled);
  // maxSkew has no server default (it belongs to TopologySpread only): the engine's is 1.
  assert.deepEqual(
    (spec.spreadAcross ?? []).map((x) => ({ maxSkew: 1, ...x })),
    policy.spread,
  );
}

async function installCrds(kube: Kubectl): Promise<void> {
  for (const file of CRD_FILES) {
    await kube.must([
      'apply',
      '--server-side',
      '--force-conflicts',
      `--field-manager=${FIELD_MANAGER}`,
      '-f',
      join(REPO_ROOT, 'crds', file),
    ]);
  }
  const started = Date.now();
  // Served: both kinds can be listed (Established alone comes before discovery catches up;
  // and `kubectl wait` fails outright on a CRD whose status has no conditions yet).
  for (;;) {
    const listed = await Promise.all(
      ['pp', 'cpp'].map((short) => kube.run(['get', short, '-A', '-o', 'name'])),
    );
    if (listed.every((o) => o.kind === 'ok')) break;
    if (Date.now() - started > 60_000) assert.fail('CRDs not served 60 s after Established');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

void test('placement.dev CRDs on a real API server', { timeout: 900_000 }, async (t) => {
  const cluster = await selectTestCluster({ nodes: 1, name: 'crds' });
  const kube = kubectlFor(cluster);
  t.after(async () => {
    // Only what this file created: an existing or shared cluster keeps the rest, CRDs too.
    await kube.run(['delete', 'namespace', NAMESPACE, '--wait=false', '--ignore-not-found']);
    await kube.run([
      'delete',
      'clusterplacementpolicies.placement.dev',
      '-l',
      'placement.dev/test=crds',
      '--wait=false',
    ]);
    await cluster.stop();
  });

  await t.test('installs both CRDs; they become Established and served', async () => {
    await installCrds(kube);
  });
  await kube.must(['create', 'namespace', NAMESPACE]);

  await t.test('prints the columns Mode, Matched, ..., Exempted, Ready, Age', async () => {
    await kube.must(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify(policyObject('PlacementPolicy', 'columns', {})),
    );
    const header =
      (await kube.must(['get', 'pp', 'columns', '-n', NAMESPACE])).split('\n')[0] ?? '';
    assert.deepEqual(header.split(/\s+/).filter(Boolean), [
      'NAME',
      'MODE',
      'MATCHED',
      'ENFORCED',
      'PENDING',
      'EXEMPTED',
      'VIOLATIONS',
      'READY',
      'AGE',
    ]);
  });

  await t.test('refuses what cannot work, naming the field', { concurrency: 4 }, async (t) => {
    const runs = BAD.flatMap((c) => (c.kinds ?? BOTH).map((kind) => ({ c, kind })));
    await Promise.all(
      runs.map(({ c, kind }) =>
        t.test(`${kind}: ${c.name}`, async () => {
          const object = policyObject(kind, `bad-${slug(c.name)}`, c.spec);
          const paths = [
            { how: 'server-side apply', send: apply, field: c.field, message: c.message },
            { how: 'plain create', send: createIgnoringUnknownFields, ...(c.plain ?? c) },
          ];
          for (const { how, send, field, message } of paths) {
            const outcome = await send(kube, object);
            assert.equal(outcome.kind, 'refused', `${how}: accepted`);
            assert.ok(
              outcome.stderr.includes(`${field}: `),
              `${how}: names ${field}:\n${outcome.stderr}`,
            );
            assert.match(outcome.stderr, message, `${how}:\n${outcome.stderr}`);
          }
          const compiled = compilePolicy(object);
          const fields = compiled.kind === 'invalid' ? compiled.errors.map((e) => e.field) : [];
          if (c.engine === 'same-field') {
            assert.ok(
              fields.includes(c.field),
              `compilePolicy names ${c.field}: ${fields.join(', ')}`,
            );
          }
        }),
      ),
    );
    const gaps = BAD.filter((c) => c.engine === 'gap').map((c) => c.name);
    t.diagnostic(`refused by the API server, not checked by compilePolicy: ${gaps.join('; ')}`);
  });

  await t.test('stores no refused policy', async () => {
    const names = [
      await kube.must(['get', 'pp', '-n', NAMESPACE, '-o', 'name']),
      await kube.must(['get', 'cpp', '-o', 'name']),
    ].join('');
    assert.doesNotMatch(names, /\/bad-/);
  });

  await t.test(
    'an undeclared field: refused by strict or server-side apply, else lost',
    async () => {
      // Why the namespaced schema declares namespaceSelector and namespaces only to refuse
      // them: an undeclared field is pruned by a plain create or update that does not ask
      // for strict field validation, and the client sees success.
      const object = policyObject('PlacementPolicy', 'undeclared-field', {
        targets: { namespaceSelectr: { matchLabels: { env: 'prod' } } },
      });
      const ssa = await apply(kube, object);
      assert.equal(ssa.kind, 'refused');
      assert.match(ssa.stderr, /\.spec\.targets\.namespaceSelectr: field not declared in schema/);
      const strict = await kube.run(['create', '-f', '-'], JSON.stringify(object));
      assert.equal(strict.kind, 'refused');
      assert.match(strict.stderr, /unknown field "spec\.targets\.namespaceSelectr"/);
      const plain = await createIgnoringUnknownFields(kube, object);
      assert.equal(plain.kind, 'ok', 'a plain create succeeds');
      const stored = await readBack(kube, object);
      assert.deepEqual(stored.spec['targets'], { kinds: ['Deployment', 'StatefulSet'] }, 'pruned');
    },
  );

  await t.test('accepts good policies and fills in the defaults', { concurrency: 4 }, async (t) => {
    await Promise.all(
      GOOD.map((c) =>
        t.test(c.name, async () => {
          const object = policyObject(c.kind, `crds-test-good-${slug(c.name)}`, c.spec);
          const outcome = await apply(kube, object);
          assert.equal(outcome.kind, 'ok', outcome.kind === 'refused' ? outcome.stderr : '');
          const stored = await readBack(kube, object);
          assert.deepEqual(stored.spec, c.want);
          assertEngineDefaultsAgree(object, stored);
        }),
      ),
    );
  });

  await t.test('accepts every example in examples/policies', { concurrency: 4 }, async (t) => {
    const files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 0);
    await Promise.all(
      files.map((file) =>
        t.test(file, async () => {
          const text = readFileSync(join(EXAMPLES_DIR, file), 'utf8');
          for (const doc of parseAllDocuments(text)) {
            const example = doc.toJS() as PolicyObject;
            // Into this file's namespace and names, so a shared cluster's own `shop` or
            // `prod-spread-across-zones` is never touched; the spec is applied as written.
            const object = policyObject(
              example.kind,
              `crds-test-${example.metadata.name}`,
              example.spec,
            );
            const outcome = await apply(kube, object);
            assert.equal(outcome.kind, 'ok', outcome.kind === 'refused' ? outcome.stderr : '');
            const stored = await readBack(kube, object);
            assertKeeps(stored.spec, example.spec, `${file}: spec`);
            assertEngineDefaultsAgree(object, stored);
            assert.equal(stored.spec['mode'], example.spec['mode'] ?? 'Enforce');
            assert.equal(stored.spec['priority'], example.spec['priority'] ?? 0);
            assert.deepEqual(stored.spec['audit'], example.spec['audit'] ?? DEFAULT_AUDIT);
          }
        }),
      ),
    );
  });
});
