/**
 * The MutatingAdmissionPolicy the operator applies: its spec around the CEL program (the
 * objects it matches, the requests it leaves alone: the operator's own writes and a
 * Deployment's ReplicaSets), and the policy and binding objects.
 */
import { lit } from './admission-cel.ts';
import { ADMISSION_KINDS } from './admission-target.ts';
import type { JsonValue } from './canonical.ts';
import { FIELD_MANAGER } from '../api/cluster.ts';

/** The spec for a CEL program of `variables` whose JSON Patch, while `variables.active`, is `patches`. */
export function admissionSpec(
  variables: readonly { name: string; expression: string }[],
  patches: readonly string[],
): JsonValue {
  return {
    failurePolicy: 'Ignore',
    reinvocationPolicy: 'IfNeeded',
    matchConstraints: {
      resourceRules: [
        {
          apiGroups: ['apps'],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: Object.values(ADMISSION_KINDS),
        },
      ],
    },
    matchConditions: [
      {
        name: 'not-the-operator',
        expression: `request.?options.?fieldManager.orValue('') != ${lit(FIELD_MANAGER)}`,
      },
      {
        name: 'not-a-deployments-replicaset',
        expression:
          "request.kind.kind != 'ReplicaSet' || !has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(r, r.kind == 'Deployment' && has(r.controller) && r.controller)",
      },
    ],
    variables: [...variables],
    mutations: [
      {
        patchType: 'JSONPatch',
        jsonPatch: { expression: `variables.active ? ${patches.join(' + ')} : []` },
      },
    ],
  };
}

/** The name of the operator's MutatingAdmissionPolicy and of its binding. */
export const ADMISSION_POLICY_NAME = 'placement.dev-injection';

/** The MutatingAdmissionPolicy and its binding for `spec`, named `name`. */
export function admissionObjects(
  spec: JsonValue,
  name = ADMISSION_POLICY_NAME,
): readonly [JsonValue, JsonValue] {
  const apiVersion = 'admissionregistration.k8s.io/v1';
  const labels = { 'app.kubernetes.io/managed-by': FIELD_MANAGER };
  return [
    { apiVersion, kind: 'MutatingAdmissionPolicy', metadata: { name, labels }, spec },
    {
      apiVersion,
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name, labels },
      spec: { policyName: name },
    },
  ];
}
