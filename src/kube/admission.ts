import { HttpMethod, type KubeConfig } from '@kubernetes/client-node';

import { FIELD_MANAGER } from '../api/cluster.ts';
import { requestJson } from './client.ts';
import { apiFailure } from './failure.ts';
import { isRecord } from './json.ts';

/** Where the API server serves MutatingAdmissionPolicy (GA in Kubernetes 1.36). */
const GROUP_PATH = '/apis/admissionregistration.k8s.io/v1';
const RESOURCES = {
  MutatingAdmissionPolicy: 'mutatingadmissionpolicies',
  MutatingAdmissionPolicyBinding: 'mutatingadmissionpolicybindings',
} as const;

/**
 * Whether the API server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy
 * and its binding (discovery). Older servers answer without them.
 */
export async function mutatingAdmissionPolicyServed(
  kc: KubeConfig,
  signal: AbortSignal,
): Promise<boolean> {
  let list: unknown;
  try {
    list = await requestJson(kc, HttpMethod.GET, GROUP_PATH, {}, signal);
  } catch (error) {
    if (apiFailure(error).status === 404) return false;
    throw error;
  }
  return servesMutatingAdmissionPolicy(list);
}

/**
 * Whether a discovery document of admissionregistration.k8s.io/v1 (an APIResourceList)
 * lists both MutatingAdmissionPolicy and its binding. Before Kubernetes 1.36 the group
 * version is served with only the webhook and validating-policy resources.
 */
export function servesMutatingAdmissionPolicy(list: unknown): boolean {
  const names = new Set(
    (isRecord(list) && Array.isArray(list.resources) ? list.resources : []).map((r: unknown) =>
      isRecord(r) ? r.name : undefined,
    ),
  );
  return Object.values(RESOURCES).every((r) => names.has(r));
}

type AdmissionKind = keyof typeof RESOURCES;

/** Writes and removes the operator's MutatingAdmissionPolicy and binding. */
export class KubeAdmissionWriter {
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  /** Server-side apply of each object (field manager placement-operator, taking ownership). */
  async apply(objects: readonly unknown[], signal: AbortSignal): Promise<void> {
    for (const o of objects) {
      const { kind, name } = kindAndName(o);
      await requestJson(
        this.#kc,
        HttpMethod.PATCH,
        `${GROUP_PATH}/${RESOURCES[kind]}/${name}`,
        { fieldManager: FIELD_MANAGER, force: 'true' },
        signal,
        { text: JSON.stringify(o), contentType: 'application/apply-patch+yaml' },
      );
    }
  }

  /** Deletes the binding, then the policy; one already gone is fine. */
  async remove(name: string, signal: AbortSignal): Promise<void> {
    for (const kind of ['MutatingAdmissionPolicyBinding', 'MutatingAdmissionPolicy'] as const) {
      try {
        await requestJson(
          this.#kc,
          HttpMethod.DELETE,
          `${GROUP_PATH}/${RESOURCES[kind]}/${name}`,
          {},
          signal,
        );
      } catch (error) {
        if (apiFailure(error).status !== 404) throw error;
      }
    }
  }
}

function kindAndName(o: unknown): { kind: AdmissionKind; name: string } {
  const kind = isRecord(o) ? o.kind : undefined;
  const name = isRecord(o) && isRecord(o.metadata) ? o.metadata.name : undefined;
  if (
    (kind !== 'MutatingAdmissionPolicy' && kind !== 'MutatingAdmissionPolicyBinding') ||
    typeof name !== 'string'
  )
    throw new Error(`not an admission policy object: ${JSON.stringify(o).slice(0, 200)}`);
  return { kind, name };
}
