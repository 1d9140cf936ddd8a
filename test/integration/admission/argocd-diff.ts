// Argo CD's Server-Side Diff, for one object, as gitops-engine's pkg/diff computes it
// (serverSideDiff and removeWebhookMutation, Argo CD 3.1 and later), so that tests can say
// what Argo CD would show on a real API server:
//
// 1. The predicted live state is the answer of a server-side apply of the Git manifest in
//    dry-run mode, with the application controller's field manager (argocd-controller),
//    conflicts forced and managedFields shown (gitops-engine's server-side diff dry-run
//    applier sets ForceConflicts and ShowManagedFields).
// 2. Unless the Application's compare-options carry IncludeMutationWebhook=true, mutations
//    made by admission are taken out: only the fields that the managedFields of the
//    predicted state give to argocd-controller are kept from it, and they are merged onto
//    the live object (fields of other managers, and fields owned by nobody, which is how
//    admission changes appear, keep their live value).
// 3. managedFields are removed from both sides, and the two are compared as JSON.
//
// The managed-field sets are walked as the API server writes them (fieldsV1): `f:name` a
// field, `k:{...}` an item of a keyed list, `v:...` an item of a set, `.` the node itself;
// a node with no children owns the whole value (a scalar, or an atomic list such as an
// affinity term list).
import { canonicalJson } from '../../../src/engine/canonical.ts';
import type { Json, JsonObject } from '../operator/support.ts';

export const ARGO_MANAGER = 'argocd-controller';

interface ManagedFieldsEntry {
  manager: string;
  operation: string;
  fieldsV1?: FieldSet;
}
type FieldSet = { [key: string]: FieldSet };

export interface Managed extends JsonObject {
  metadata: JsonObject & { managedFields?: Json };
}

const isObject = (v: Json | undefined): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The managedFields entries of an object. */
export function managedFields(o: Managed): ManagedFieldsEntry[] {
  return (o.metadata.managedFields ?? []) as unknown as ManagedFieldsEntry[];
}

/** The union of the field sets of every entry of `manager`. */
export function fieldsOf(o: Managed, manager: string): FieldSet {
  const union = (a: FieldSet, b: FieldSet): FieldSet => {
    const out: FieldSet = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? union(out[k] ?? {}, v) : v;
    return out;
  };
  return managedFields(o)
    .filter((e) => e.manager === manager)
    .reduce<FieldSet>((acc, e) => union(acc, e.fieldsV1 ?? {}), {});
}

/** Whether any manager's set reaches the path (given as fieldsV1 keys). */
export function ownersOf(o: Managed, path: readonly string[]): string[] {
  return managedFields(o)
    .filter((e) => {
      let node: FieldSet | undefined = e.fieldsV1;
      for (const key of path) node = node?.[key];
      return node !== undefined;
    })
    .map((e) => e.manager)
    .sort();
}

/** The list item a `k:{...}` or `v:...` key names, and its index. */
function itemFor(list: Json[], key: string): number {
  if (key.startsWith('k:')) {
    const want = JSON.parse(key.slice(2)) as JsonObject;
    return list.findIndex(
      (item) =>
        isObject(item) &&
        Object.entries(want).every(([f, v]) => canonicalJson(item[f] ?? null) === canonicalJson(v)),
    );
  }
  if (key.startsWith('v:')) {
    const want = canonicalJson(JSON.parse(key.slice(2)) as Json);
    return list.findIndex((item) => canonicalJson(item) === want);
  }
  return -1;
}

const childKeys = (set: FieldSet): string[] => Object.keys(set).filter((k) => k !== '.');

/**
 * `live` with the parts of `predicted` that `set` names laid over it (structured merge:
 * maps field by field, keyed list items by key, atomic values whole).
 */
function overlay(
  live: Json | undefined,
  predicted: Json | undefined,
  set: FieldSet,
): Json | undefined {
  if (Object.keys(set).length === 0) {
    return predicted === undefined ? live : structuredClone(predicted);
  }
  const keys = childKeys(set);
  if (keys.length === 0) {
    // The node itself only (`.`): its presence, none of its content.
    if (live !== undefined) return live;
    return Array.isArray(predicted) ? [] : isObject(predicted) ? {} : predicted;
  }
  if (Array.isArray(predicted)) {
    const out = Array.isArray(live) ? structuredClone(live) : [];
    for (const key of keys) {
      const p = itemFor(predicted, key);
      if (p < 0) continue;
      const l = itemFor(out, key);
      const merged = overlay(l < 0 ? undefined : out[l], predicted[p], set[key] ?? {});
      if (merged === undefined) continue;
      if (l < 0) out.push(merged);
      else out[l] = merged;
    }
    return out;
  }
  if (isObject(predicted)) {
    const out: JsonObject = isObject(live) ? structuredClone(live) : {};
    for (const key of keys) {
      if (!key.startsWith('f:')) continue;
      const field = key.slice(2);
      const merged = overlay(out[field], predicted[field], set[key] ?? {});
      if (merged !== undefined) out[field] = merged;
    }
    return out;
  }
  return live;
}

export type CompareMode = 'default' | 'IncludeMutationWebhook';

/**
 * The predicted live state Argo CD compares with the live one: the dry-run answer as is
 * (IncludeMutationWebhook=true), or, by default, the live object with only argocd-controller's
 * fields taken from the dry-run answer. Both sides without managedFields.
 */
export function argoCompare(
  predicted: Managed,
  live: Managed,
  mode: CompareMode,
): { predicted: JsonObject; live: JsonObject } {
  const strip = (o: Managed): JsonObject => {
    const c = structuredClone<Managed>(o);
    delete c.metadata.managedFields;
    return c;
  };
  if (mode === 'IncludeMutationWebhook') return { predicted: strip(predicted), live: strip(live) };
  const argo = fieldsOf(predicted, ARGO_MANAGER);
  if (childKeys(argo).length === 0) {
    throw new Error(`the dry-run answer has no managed fields of ${ARGO_MANAGER}`);
  }
  const kept = overlay(strip(live), strip(predicted), argo) as JsonObject;
  return { predicted: kept, live: strip(live) };
}

/** JSON pointers of every leaf where `a` and `b` differ (lists compared item by item). */
export function differences(a: Json | undefined, b: Json | undefined, at = ''): string[] {
  if (
    canonicalJson(a ?? null) === canonicalJson(b ?? null) &&
    (a === undefined) === (b === undefined)
  ) {
    return [];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      out.push(...differences(a[i], b[i], `${at}/${String(i)}`));
    }
    return out;
  }
  if (isObject(a) && isObject(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      out.push(
        ...differences(a[k], b[k], `${at}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`),
      );
    }
    return out;
  }
  return [at === '' ? '/' : at];
}

/** What Argo CD's Server-Side Diff shows for one object: the paths that differ (none: Synced). */
export function serverSideDiff(predicted: Managed, live: Managed, mode: CompareMode): string[] {
  const { predicted: p, live: l } = argoCompare(predicted, live, mode);
  return differences(l, p);
}
