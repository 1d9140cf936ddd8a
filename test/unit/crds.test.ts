// The CRDs in crds/ are hand-written YAML: these checks keep their structure (names,
// versions, columns, status subresource), keep the two kinds' spec schemas in step,
// keep enums and defaults equal to src/api, and keep every input a CEL rule can reach
// bounded, so the API server's cost estimate stays within its budget. What the API
// server accepts and refuses is proven in test/integration/crds.test.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';

import { SELECTOR_OPERATORS } from '../../src/api/core.ts';
import {
  API_VERSION,
  DEFAULT_TARGET_KINDS,
  GROUP,
  SPREAD_CONSTRAINTS,
  TARGET_KINDS,
  VERSION,
  type PlacementPolicy,
} from '../../src/api/policy.ts';
import { compilePolicy } from '../../src/engine/policy-compile.ts';
import { REPO_ROOT } from '../cluster/paths.ts';

/** The parts of an OpenAPI v3 schema (JSONSchemaProps) these checks read. */
interface Schema {
  description?: string;
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns?: PrinterColumn[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const CRD_DIR = join(REPO_ROOT, 'crds');
const EXAMPLES_DIR = join(REPO_ROOT, 'examples', 'policies');

const loadCrd = (file: string): Crd => parse(readFileSync(join(CRD_DIR, file), 'utf8')) as Crd;

const namespaced = loadCrd('placement.dev_placementpolicies.yaml');
const cluster = loadCrd('placement.dev_clusterplacementpolicies.yaml');
const exception = loadCrd('placement.dev_placementexceptions.yaml');

function rootSchema(crd: Crd): Schema {
  const version = crd.spec.versions[0];
  assert.ok(version, `${crd.metadata.name} has a version`);
  return version.schema.openAPIV3Schema;
}

/** The schema at a dotted path of property names; `[]` steps into list items. */
function at(schema: Schema, path: string): Schema {
  let here = schema;
  for (const step of path.split('.')) {
    const next = step === '[]' ? here.items : here.properties?.[step];
    assert.ok(next, `schema has ${path} (stuck at ${step})`);
    here = next;
  }
  return here;
}

/** Every schema node under `schema`, with its path. */
function* walk(schema: Schema, path: string): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    yield* walk(child, `${path}.${name}`);
  }
  if (schema.items) yield* walk(schema.items, `${path}[]`);
  if (schema.additionalProperties) yield* walk(schema.additionalProperties, `${path}{}`);
}

const AFFINITY_TERM_LISTS = [
  'spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.[]',
  'spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.[].podAffinityTerm',
  'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.[]',
  'spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.[].podAffinityTerm',
];
const NODE_SELECTOR_TERMS = [
  'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.[]',
  'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.[].preference',
];

void describe('CRD structure', () => {
  const cases: {
    name: string;
    crd: Crd;
    want: { name: string; kind: string; plural: string; short: string; scope: string };
  }[] = [
    {
      name: 'PlacementPolicy is namespaced, short name pp',
      crd: namespaced,
      want: {
        name: 'placementpolicies.placement.dev',
        kind: 'PlacementPolicy',
        plural: 'placementpolicies',
        short: 'pp',
        scope: 'Namespaced',
      },
    },
    {
      name: 'ClusterPlacementPolicy is cluster-scoped, short name cpp',
      crd: cluster,
      want: {
        name: 'clusterplacementpolicies.placement.dev',
        kind: 'ClusterPlacementPolicy',
        plural: 'clusterplacementpolicies',
        short: 'cpp',
        scope: 'Cluster',
      },
    },
  ];
  for (const { name, crd, want } of cases) {
    void test(name, () => {
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(crd.kind, 'CustomResourceDefinition');
      assert.equal(crd.metadata.name, want.name);
      assert.equal(crd.spec.group, GROUP);
      assert.equal(crd.spec.scope, want.scope);
      assert.deepEqual(crd.spec.names, {
        kind: want.kind,
        listKind: `${want.kind}List`,
        plural: want.plural,
        singular: want.kind.toLowerCase(),
        shortNames: [want.short],
        categories: ['placement'],
      });
    });

    void test(`${want.kind}: one version, ${VERSION}, served and stored, with a status subresource`, () => {
      assert.equal(crd.spec.versions.length, 1);
      const [version] = crd.spec.versions;
      assert.equal(version?.name, VERSION);
      assert.equal(version.served, true);
      assert.equal(version.storage, true);
      assert.deepEqual(version.subresources, { status: {} });
    });

    void test(`${want.kind}: printer columns`, () => {
      assert.deepEqual(crd.spec.versions[0]?.additionalPrinterColumns, [
        { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
        { name: 'Matched', type: 'integer', jsonPath: '.status.matched' },
        { name: 'Enforced', type: 'integer', jsonPath: '.status.enforced' },
        { name: 'Pending', type: 'integer', jsonPath: '.status.pending' },
        { name: 'Exempted', type: 'integer', jsonPath: '.status.exempted' },
        { name: 'Violations', type: 'integer', jsonPath: '.status.violations' },
        {
          name: 'Ready',
          type: 'string',
          jsonPath: '.status.conditions[?(@.type=="Ready")].status',
        },
        { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ]);
    });

    void test(`${want.kind}: spec is required, status is the operator's`, () => {
      const root = rootSchema(crd);
      assert.deepEqual(root.required, ['spec']);
      const status = at(root, 'status');
      const conditions = at(status, 'conditions');
      assert.equal(conditions['x-kubernetes-list-type'], 'map');
      assert.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
      assert.deepEqual(at(conditions, '[]').required, [
        'type',
        'status',
        'lastTransitionTime',
        'reason',
        'message',
      ]);
      const sample = at(status, 'violationSample');
      assert.equal(sample.maxItems, 20);
      assert.deepEqual(Object.keys(at(sample, '[]').properties ?? {}), [
        'pod',
        'node',
        'rule',
        'source',
        'message',
      ]);
      for (const field of [
        'matched',
        'enforced',
        'pending',
        'exempted',
        'violations',
        'observedGeneration',
      ]) {
        assert.equal(at(status, field).type, 'integer', `status.${field}`);
      }
      assert.equal(at(status, 'workloads.auditOnly').type, 'integer');
      assert.equal(at(status, 'lastAuditTime').type, 'string');
    });
  }
});

void describe('CRD schemas', () => {
  const spec = (crd: Crd): Schema => at(rootSchema(crd), 'spec');

  void test('both kinds share one spec schema, but for namespaces in targets and exceptions', () => {
    const withoutTargets = (crd: Crd): Schema => {
      const copy = structuredClone(spec(crd));
      delete copy.properties?.['targets'];
      delete copy.properties?.['exceptions'];
      return copy;
    };
    assert.deepEqual(withoutTargets(namespaced), withoutTargets(cluster));
    assert.deepEqual(
      at(spec(namespaced), 'exceptions.allowed'),
      at(spec(cluster), 'exceptions.allowed'),
    );
    assert.equal(at(spec(cluster), 'exceptions.allowed').default, false);
    assert.deepEqual(
      at(spec(cluster), 'exceptions.namespaceSelector'),
      at(spec(cluster), 'targets.selector'),
    );
    const { description: _e, ...exceptionNamespaces } = at(spec(cluster), 'exceptions.namespaces');
    const { description: _t, ...targetNamespaces } = at(spec(cluster), 'targets.namespaces');
    assert.deepEqual(exceptionNamespaces, targetNamespaces);
    for (const field of ['kinds', 'selector']) {
      assert.deepEqual(
        at(spec(namespaced), `targets.${field}`),
        at(spec(cluster), `targets.${field}`),
      );
    }
    assert.deepEqual(
      at(spec(cluster), 'targets.namespaceSelector'),
      at(spec(cluster), 'targets.selector'),
    );
  });

  void test('a namespaced policy refuses namespaceSelector and namespaces by a rule, not by pruning', () => {
    // An undeclared field is pruned, which a client without strict field validation
    // sees as success: the fields are declared so that the CEL rules can refuse them.
    for (const field of ['targets', 'exceptions']) {
      const node = at(spec(namespaced), field);
      assert.ok(node.properties?.['namespaceSelector'], field);
      assert.ok(node.properties['namespaces'], field);
      assert.deepEqual(
        node['x-kubernetes-validations']?.map((v) => v.rule),
        ['!has(self.namespaceSelector)', '!has(self.namespaces)'],
        field,
      );
    }
    assert.equal(at(spec(cluster), 'targets')['x-kubernetes-validations'], undefined);
  });

  void test('enums and defaults are those of src/api', () => {
    const s = spec(namespaced);
    assert.deepEqual(at(s, 'mode').enum, ['Enforce', 'Audit']);
    assert.equal(at(s, 'mode').default, 'Enforce');
    assert.equal(at(s, 'priority').default, 0);
    assert.deepEqual(at(s, 'targets.kinds.[]').enum, TARGET_KINDS);
    assert.deepEqual(at(s, 'targets.kinds').default, DEFAULT_TARGET_KINDS);
    assert.deepEqual(at(s, 'targets').default, {}, 'kinds get their default without targets');
    assert.deepEqual(at(s, 'spreadAcross.[].mode').enum, ['Required', 'Preferred']);
    assert.equal(at(s, 'spreadAcross.[].mode').default, 'Preferred');
    assert.equal(at(s, 'spreadAcross.[].weight').default, 100);
    assert.deepEqual(at(s, 'spreadAcross.[].constraint').enum, SPREAD_CONSTRAINTS);
    assert.equal(at(s, 'spreadAcross.[].constraint').default, 'PodAntiAffinity');
    assert.equal(at(s, 'spreadAcross.[].maxSkew').minimum, 1);
    assert.equal(at(s, 'spreadAcross.[].maxSkew').default, undefined, 'defaulted by the engine');
    assert.deepEqual(at(s, 'audit').default, {}, 'audit gets its defaults without audit');
    assert.equal(at(s, 'audit.enabled').default, true);
    assert.deepEqual(at(s, 'audit.remediation').enum, ['None', 'Evict']);
    assert.equal(at(s, 'audit.remediation').default, 'None');
    assert.equal(at(s, 'audit.maxEvictionsPerMinute').default, 1);
    assert.equal(at(s, 'audit.maxEvictionsPerMinute').minimum, 0);
  });

  void test('every label selector allows the label selector operators, node selectors add Gt and Lt', () => {
    const labelSelectors = [
      'targets.selector',
      ...AFFINITY_TERM_LISTS.flatMap((t) => [`${t}.labelSelector`, `${t}.namespaceSelector`]),
    ].map((p) => p.replace(/^spec\./, ''));
    for (const crd of [namespaced, cluster]) {
      for (const path of labelSelectors) {
        assert.deepEqual(
          at(spec(crd), `${path}.matchExpressions.[].operator`).enum,
          SELECTOR_OPERATORS,
          path,
        );
      }
      for (const path of NODE_SELECTOR_TERMS.map((p) => p.replace(/^spec\./, ''))) {
        assert.deepEqual(at(spec(crd), `${path}.matchExpressions.[].operator`).enum, [
          ...SELECTOR_OPERATORS,
          'Gt',
          'Lt',
        ]);
      }
    }
  });

  void test('a required node affinity holds exactly one nodeSelectorTerm', () => {
    const terms = at(
      spec(namespaced),
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms',
    );
    assert.equal(terms.minItems, 1);
    assert.equal(terms.maxItems, 1);
  });

  void test('every weight is bounded to 1..100', () => {
    for (const [path, node] of walk(spec(namespaced), 'spec')) {
      if (!path.endsWith('.weight')) continue;
      assert.equal(node.minimum, 1, path);
      assert.equal(node.maximum, 100, path);
    }
  });

  for (const crd of [namespaced, cluster]) {
    const kind = crd.spec.names.kind;

    void test(`${kind}: every list, map and string of spec is bounded, so CEL cost is`, () => {
      const unbounded: string[] = [];
      for (const [path, node] of walk(spec(crd), 'spec')) {
        if (node.type === 'array' && node.maxItems === undefined) unbounded.push(path);
        if (node.additionalProperties && node.maxProperties === undefined) unbounded.push(path);
        if (node.type === 'string' && node.maxLength === undefined && node.enum === undefined) {
          unbounded.push(path);
        }
      }
      assert.deepEqual(unbounded, []);
    });

    void test(`${kind}: every CEL rule says what is wrong`, () => {
      const root = rootSchema(crd);
      let rules = 0;
      for (const [path, node] of walk(root, '')) {
        for (const v of node['x-kubernetes-validations'] ?? []) {
          rules++;
          assert.ok((v.message ?? v.messageExpression ?? '') !== '', `${path}: ${v.rule}`);
        }
      }
      assert.ok(rules > 0);
    });
  }
});

void describe('PlacementException CRD', () => {
  const root = rootSchema(exception);
  const spec = at(root, 'spec');

  void test('is namespaced, short name pex, one served and stored version with status', () => {
    assert.equal(exception.metadata.name, 'placementexceptions.placement.dev');
    assert.equal(exception.spec.group, GROUP);
    assert.equal(exception.spec.scope, 'Namespaced');
    assert.deepEqual(exception.spec.names, {
      kind: 'PlacementException',
      listKind: 'PlacementExceptionList',
      plural: 'placementexceptions',
      singular: 'placementexception',
      shortNames: ['pex'],
      categories: ['placement'],
    });
    assert.equal(exception.spec.versions.length, 1);
    const [version] = exception.spec.versions;
    assert.equal(version?.name, VERSION);
    assert.equal(version.served && version.storage, true);
    assert.deepEqual(version.subresources, { status: {} });
  });

  void test('printer columns: the policy, Accepted and the workloads exempted', () => {
    assert.deepEqual(exception.spec.versions[0]?.additionalPrinterColumns, [
      { name: 'Policy-Kind', type: 'string', jsonPath: '.spec.policyRef.kind' },
      { name: 'Policy', type: 'string', jsonPath: '.spec.policyRef.name' },
      {
        name: 'Accepted',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Accepted")].status',
      },
      { name: 'Exempted', type: 'integer', jsonPath: '.status.exempted' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  void test('a policy, workloads and a reason are required; enums are those of src/api', () => {
    assert.deepEqual(root.required, ['spec']);
    assert.deepEqual(spec.required, ['policyRef', 'workloads', 'reason']);
    assert.deepEqual(at(spec, 'policyRef').required, ['kind', 'name']);
    assert.deepEqual(at(spec, 'policyRef.kind').enum, [
      'ClusterPlacementPolicy',
      'PlacementPolicy',
    ]);
    assert.deepEqual(at(spec, 'workloads.kinds.[]').enum, TARGET_KINDS);
    assert.equal(at(spec, 'workloads.kinds').default, undefined, 'default: every kind');
    assert.deepEqual(
      at(spec, 'workloads.selector'),
      {
        ...at(at(rootSchema(namespaced), 'spec'), 'targets.selector'),
        description: at(spec, 'workloads.selector').description,
      },
      'the selector of targets, word for word but for the description',
    );
    assert.deepEqual(
      at(spec, 'workloads')['x-kubernetes-validations']?.map((v) => v.rule),
      ['has(self.selector) || has(self.names)'],
    );
  });

  void test('status: Accepted with a reason, and the workloads exempted', () => {
    const status = at(root, 'status');
    assert.equal(at(status, 'conditions')['x-kubernetes-list-type'], 'map');
    assert.equal(at(status, 'exempted').type, 'integer');
    assert.equal(at(status, 'workloads').maxItems, 20);
  });

  void test('every list, map and string of spec is bounded, and every CEL rule says what is wrong', () => {
    const unbounded: string[] = [];
    for (const [path, node] of walk(spec, 'spec')) {
      if (node.type === 'array' && node.maxItems === undefined) unbounded.push(path);
      if (node.additionalProperties && node.maxProperties === undefined) unbounded.push(path);
      if (node.type === 'string' && node.maxLength === undefined && node.enum === undefined)
        unbounded.push(path);
      for (const v of node['x-kubernetes-validations'] ?? [])
        assert.ok((v.message ?? v.messageExpression ?? '') !== '', `${path}: ${v.rule}`);
    }
    assert.deepEqual(unbounded, []);
  });
});

void describe('examples/policies', () => {
  const files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml'));

  void test('holds the seed scenarios', () => {
    assert.ok(files.length >= 5, files.join(', '));
  });

  for (const file of files) {
    void test(`${file}: placement policies that compilePolicy accepts`, () => {
      const docs = parseAllDocuments(readFileSync(join(EXAMPLES_DIR, file), 'utf8'));
      assert.ok(docs.length > 0);
      for (const doc of docs) {
        assert.deepEqual(doc.errors, []);
        const policy = doc.toJS() as PlacementPolicy;
        assert.equal(policy.apiVersion, API_VERSION);
        assert.ok(['PlacementPolicy', 'ClusterPlacementPolicy'].includes(policy.kind));
        assert.equal(
          policy.metadata.namespace !== undefined,
          policy.kind === 'PlacementPolicy',
          `${policy.metadata.name}: a namespace exactly when namespaced`,
        );
        const compiled = compilePolicy(policy);
        assert.equal(
          compiled.kind,
          'ok',
          compiled.kind === 'invalid' ? compiled.errors.map((e) => e.message).join('\n') : '',
        );
      }
    });
  }
});
