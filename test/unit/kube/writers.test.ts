import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiException } from '@kubernetes/client-node';

import type { Affinity } from '../../../src/api/core.ts';
import type { WorkloadKind } from '../../../src/api/policy.ts';
import { affinityPatch, failedWrite } from '../../../src/kube/writers.ts';
import type { Workload } from '../../../src/api/cluster.ts';

const term = (app: string) => ({
  labelSelector: { matchLabels: { app } },
  topologyKey: 'kubernetes.io/hostname',
});
const OWNER: Affinity = {
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
};
const ANTI: Affinity = {
  podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('web')] },
};

const workload = (
  kind: WorkloadKind,
  affinity: Affinity | undefined,
  applied?: string,
): Workload => ({
  kind,
  namespace: 'shop',
  name: 'web',
  uid: 'u',
  resourceVersion: '77',
  generation: 1,
  annotations: applied === undefined ? {} : { 'placement.dev/applied': applied },
  ownerReferences: [],
  selector: undefined,
  templateLabels: {},
  affinity,
  rolledOut: true,
  replicas: 1,
});

interface Case {
  readonly name: string;
  readonly workload: Workload;
  readonly affinity: Affinity | undefined;
  readonly annotation: string | undefined;
  readonly patch: unknown;
}

const CASES: readonly Case[] = [
  {
    name: 'adds a rule next to the owner’s, sending only the new part',
    workload: workload('Deployment', OWNER),
    affinity: { ...OWNER, ...ANTI },
    annotation: 'A',
    patch: {
      metadata: { resourceVersion: '77', annotations: { 'placement.dev/applied': 'A' } },
      spec: { template: { spec: { affinity: ANTI } } },
    },
  },
  {
    name: 'CronJob: the template under the job template',
    workload: workload('CronJob', undefined),
    affinity: ANTI,
    annotation: 'A',
    patch: {
      metadata: { resourceVersion: '77', annotations: { 'placement.dev/applied': 'A' } },
      spec: { jobTemplate: { spec: { template: { spec: { affinity: ANTI } } } } },
    },
  },
  {
    name: 'reverting to no affinity deletes it, and the annotation',
    workload: workload('StatefulSet', ANTI, 'A'),
    affinity: undefined,
    annotation: undefined,
    patch: {
      metadata: { resourceVersion: '77', annotations: { 'placement.dev/applied': null } },
      spec: { template: { spec: { affinity: null } } },
    },
  },
  {
    name: 'taking out an injected rule leaves the owner’s',
    workload: workload('DaemonSet', { ...OWNER, ...ANTI }, 'A'),
    affinity: OWNER,
    annotation: undefined,
    patch: {
      metadata: { resourceVersion: '77', annotations: { 'placement.dev/applied': null } },
      spec: { template: { spec: { affinity: { podAntiAffinity: null } } } },
    },
  },
  {
    name: 'only the annotation changed',
    workload: workload('ReplicaSet', ANTI, 'A'),
    affinity: ANTI,
    annotation: 'B',
    patch: { metadata: { resourceVersion: '77', annotations: { 'placement.dev/applied': 'B' } } },
  },
  {
    name: 'nothing changed: no write',
    workload: workload('Deployment', ANTI, 'A'),
    affinity: ANTI,
    annotation: 'A',
    patch: undefined,
  },
];

for (const c of CASES) {
  void test(`affinityPatch: ${c.name}`, () => {
    assert.deepEqual(
      affinityPatch({
        workload: c.workload,
        affinity: c.affinity,
        appliedAnnotation: c.annotation,
      }),
      c.patch,
    );
  });
}

const status = (code: number, reason: string, message: string, causes: unknown[] = []) =>
  new ApiException(
    code,
    'x',
    JSON.stringify({ kind: 'Status', code, reason, message, details: { causes } }),
    {},
  );

const FAILURES: readonly { name: string; error: unknown; result: unknown }[] = [
  {
    name: '409 is a conflict',
    error: status(409, 'Conflict', 'the object has been modified'),
    result: { kind: 'conflict' },
  },
  { name: '404 is gone', error: status(404, 'NotFound', 'not found'), result: { kind: 'gone' } },
  {
    name: '429 is retryable',
    error: status(429, 'TooManyRequests', 'slow down'),
    result: {
      kind: 'failed',
      retryable: true,
      message: 'patch Deployment shop/web: HTTP 429: slow down',
    },
  },
  {
    name: '500 is retryable',
    error: status(500, 'InternalError', 'etcd'),
    result: {
      kind: 'failed',
      retryable: true,
      message: 'patch Deployment shop/web: HTTP 500: etcd',
    },
  },
  {
    name: '422 is not, and says why',
    error: status(422, 'Invalid', 'spec.template.spec.affinity...topologyKey: Required value'),
    result: {
      kind: 'failed',
      retryable: false,
      message:
        'patch Deployment shop/web: HTTP 422: spec.template.spec.affinity...topologyKey: Required value',
    },
  },
  {
    name: '422 naming fields is invalid: the fields are kept',
    error: status(422, 'Invalid', 'metadata.annotations: Too long', [
      { reason: 'FieldValueTooLong', message: 'Too long', field: 'metadata.annotations' },
      { reason: 'FieldValueTooLong', message: 'Too long', field: 'metadata.annotations' },
    ]),
    result: {
      kind: 'failed',
      retryable: false,
      invalid: ['metadata.annotations'],
      message: 'patch Deployment shop/web: HTTP 422: metadata.annotations: Too long',
    },
  },
  {
    name: "422 from an admission policy names no field: not invalid, it may pass once it's gone",
    error: status(422, 'Invalid', 'denied request: no anti-affinity', [
      { message: "ValidatingAdmissionPolicy 'x' with binding 'x' denied request" },
    ]),
    result: {
      kind: 'failed',
      retryable: false,
      message: 'patch Deployment shop/web: HTTP 422: denied request: no anti-affinity',
    },
  },
  {
    name: '403 is neither retryable nor invalid',
    error: status(403, 'Forbidden', 'exceeded quota', [{ field: 'spec' }]),
    result: {
      kind: 'failed',
      retryable: false,
      message: 'patch Deployment shop/web: HTTP 403: exceeded quota',
    },
  },
  {
    name: 'a network error is retryable',
    error: new TypeError('fetch failed', {
      cause: new Error('connect ECONNREFUSED 127.0.0.1:6443'),
    }),
    result: {
      kind: 'failed',
      retryable: true,
      message: 'patch Deployment shop/web: fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
    },
  },
];

for (const c of FAILURES) {
  void test(`failedWrite: ${c.name}`, () => {
    assert.deepEqual(failedWrite(c.error, 'patch Deployment shop/web'), c.result);
  });
}
