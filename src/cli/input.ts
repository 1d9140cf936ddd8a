// What the CLI reads: Lists and YAML streams of nodes, namespaces, pods, workloads,
// policies and exceptions, checked at the boundary into the engine's types, each error
// naming the file, the object and the field. Long because every kind it accepts has its own
// few lines of checks; they share the reader and the error shape.
import { createRequire } from 'node:module';
import type { Namespace, Node, Pod } from '../api/core.ts';
import type { PlacementException } from '../api/exception.ts';
import { API_VERSION, type PlacementPolicy } from '../api/policy.ts';
import type { ClusterSnapshot, WorkloadObject } from '../engine/index.ts';
import { trimNamespace, trimNode, trimPod } from '../kube/transforms.ts';
import {
  JsonSyntaxError,
  lineAndColumn,
  readJsonItems,
  readJsonList,
  type MoreBytes,
} from './json-list.ts';
import type { PartRead } from './list-worker.ts';
import {
  defaultThreads,
  endWarmWorkers,
  idleCores,
  PARALLEL_BYTES,
  splitItems,
  warmWorkers,
} from './parallel-list.ts';
import { podRows, podsOfRows } from './pod-rows.ts';
import type { ArrivingInput } from './read-bytes.ts';

/** Input that cannot be read: the message names the file, the object and the field. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

const WORKLOAD_KINDS = new Set([
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'CronJob',
]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the CLI judges: the engine's snapshot, built one item at a time. */
interface Collected {
  nodes: Node[];
  namespaces: Namespace[];
  pods: Pod[];
  policies: PlacementPolicy[];
  workloads: WorkloadObject[];
  exceptions: PlacementException[];
}

/** How parseList reads. */
export interface ParseOptions {
  /**
   * How many threads read the items of pretty-printed JSON (see parallel-list.ts); by
   * default one per core, fewer for small input, so that each has enough to do.
   */
  readonly threads?: number;
}

/**
 * Reads a Kubernetes `List` into a snapshot, or throws InputError. JSON (what `kubectl get -o
 * json` prints) is read item by item, each item kept in the trimmed form the operator's caches
 * hold; YAML may hold several documents, each a List, whose items are read together.
 */
export function parseList(
  input: string | Uint8Array | ArrivingInput,
  file: string,
  options: ParseOptions = {},
): ClusterSnapshot {
  if (typeof input !== 'string' && !(input instanceof Uint8Array))
    return parseArriving(input, file, options);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const text = (): string => (typeof input === 'string' ? input : Buffer.from(bytes).toString());
  const snapshot = emptySnapshot();
  if (!startsAsJson(bytes)) {
    readYaml(text(), file, snapshot);
    return snapshot;
  }
  const threads = options.threads ?? defaultThreads(bytes.length, idleCores());
  const jsonProblem = readJson(bytes, file, snapshot, threads);
  if (jsonProblem === undefined) return snapshot;
  return readFlowYaml(text, file, jsonProblem);
}

/**
 * YAML's flow style starts with `{` too (`{kind: List, items: [...]}`): not JSON, but a List
 * all the same. When YAML cannot read it either, the JSON error (with its line and column) is
 * the one that helps. A List whose first item was read as JSON is JSON, broken further on:
 * YAML is not tried (the `yaml` library's tree of a 200 MB List fills Node's default heap).
 */
function readFlowYaml(text: () => string, file: string, jsonProblem: JsonProblem): ClusterSnapshot {
  if (jsonProblem.item !== undefined && jsonProblem.item > 0) throw jsonProblem.error;
  const asYaml = emptySnapshot();
  try {
    readYaml(text(), file, asYaml);
  } catch {
    throw jsonProblem.error;
  }
  return asYaml;
}

/**
 * Reads a List that is still arriving (from a pipe): on one thread, its items are parsed as
 * they come, while the writer (kubectl) writes the rest. When other threads are to read it,
 * or it is not JSON, it is read whole first. How many threads may read is decided once, here.
 */
function parseArriving(input: ArrivingInput, file: string, options: ParseOptions): ClusterSnapshot {
  const whole = (): Uint8Array => {
    while (input.more(Infinity));
    return input.bytes();
  };
  input.more(2 ** 20);
  if (!startsAsJson(input.bytes())) return parseList(whole(), file, options);
  const idle = options.threads ?? idleCores();
  if (idle > 1) {
    // Once the input is large enough for a second thread, the workers start, and load their
    // code while the rest arrives (see parallel-list.ts).
    input.more(PARALLEL_BYTES);
    if (input.bytes().length >= PARALLEL_BYTES) warmWorkers(idle - 1);
    const bytes = whole();
    return parseList(bytes, file, {
      threads: options.threads ?? defaultThreads(bytes.length, idle),
    });
  }
  const snapshot = emptySnapshot();
  const more = (atLeast: number): Uint8Array | undefined =>
    input.more(atLeast) ? input.bytes() : undefined;
  const jsonProblem = readJson(input.bytes(), file, snapshot, 1, more);
  if (jsonProblem === undefined) return snapshot;
  return readFlowYaml(() => Buffer.from(whole()).toString(), file, jsonProblem);
}

const emptySnapshot = (): Collected => ({
  nodes: [],
  namespaces: [],
  pods: [],
  policies: [],
  workloads: [],
  exceptions: [],
});

/** 3 when the bytes start with a UTF-8 byte order mark, else 0. */
const bomLength = (bytes: Uint8Array): number =>
  bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;

/** JSON starts with `{` (after white space and a byte order mark); YAML Lists start otherwise. */
export function startsAsJson(bytes: Uint8Array): boolean {
  let i = bomLength(bytes);
  while (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09) i++;
  return bytes[i] === 0x7b;
}

/** JSON that does not parse: the error to report, and the item it lies in, if any. */
interface JsonProblem {
  readonly error: InputError;
  readonly item: number | undefined;
}

/**
 * Reads JSON into `snapshot`, on `threads` threads; a syntax error is returned (not thrown) so
 * YAML can try.
 */
function readJson(
  bytes: Uint8Array,
  file: string,
  snapshot: Collected,
  threads: number,
  more?: MoreBytes,
): JsonProblem | undefined {
  const bom = bomLength(bytes);
  let body = bytes.subarray(bom);
  const moreBody: MoreBytes | undefined =
    more &&
    ((atLeast) => {
      const next = more(atLeast);
      if (next !== undefined) body = next.subarray(bom);
      return next && body;
    });
  const split =
    threads > 1
      ? splitItems(body, threads, (part) => {
          addPart(snapshot, part);
        })
      : undefined;
  let read;
  try {
    read = readJsonList(
      body,
      (item, i) => {
        addItem(snapshot, item, `${file}: items[${i}]`);
      },
      split,
      moreBody,
    );
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, column } = lineAndColumn(body, err.offset);
    return {
      item: err.item,
      error: new InputError(
        `${file}: not valid JSON or YAML: ${err.message} at line ${line} column ${column}${err.item === undefined ? '' : ` (in items[${err.item}])`}`,
      ),
    };
  } finally {
    split?.close();
    endWarmWorkers();
  }
  checkList(read.members, read.hasItems, file);
  return undefined;
}

/**
 * What a worker thread does with its part of a List's items (see parallel-list.ts): reads
 * them from `bytes` (the part, from its first item) up to `stop`, checks and trims each as
 * addItem does, and gives the pods as rows. Throws as addItem does (the main thread then
 * reads the part again, for the message).
 */
export function readListPart(
  bytes: Uint8Array,
  separator: Uint8Array,
  stop: number | undefined,
): PartRead {
  const part = emptySnapshot();
  const read = readJsonItems(bytes, 0, separator, stop, (item, i) => {
    addItem(part, item, `items[${i}]`);
  });
  return { ...part, pods: podRows(part.pods), count: read.index, next: read.next, done: read.done };
}

/** Adds what a worker read, after what is already there. */
function addPart(snapshot: Collected, part: PartRead): void {
  const append = <T>(to: T[], from: readonly T[]): void => {
    for (const x of from) to.push(x);
  };
  append(snapshot.nodes, part.nodes);
  append(snapshot.namespaces, part.namespaces);
  append(snapshot.pods, podsOfRows(part.pods));
  append(snapshot.policies, part.policies);
  append(snapshot.workloads, part.workloads);
  append(snapshot.exceptions, part.exceptions);
}

/**
 * The `yaml` library, loaded on the first YAML input: JSON input, the common case and the
 * large one, does not pay for loading it.
 */
let yaml: typeof import('yaml') | undefined;
const yamlLibrary = (): typeof import('yaml') =>
  (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/**
 * The documents of a YAML text, each with the name messages give it (the file, or the file and
 * the document's number when there are several); throws InputError naming the first that does
 * not parse, or saying that there is none (`expected` says what was wanted).
 */
function yamlDocuments(
  text: string,
  file: string,
  expected: string,
): { where: string; value: unknown }[] {
  const docs = yamlLibrary()
    .parseAllDocuments(text)
    .filter((d) => d.contents !== null);
  if (docs.length === 0) throw new InputError(`${file}: no document found; expected ${expected}`);
  return docs.map((doc, d) => {
    const where = docs.length === 1 ? file : `${file}: document ${d + 1}`;
    const problem = doc.errors[0];
    if (problem !== undefined) {
      throw new InputError(
        `${where}: not valid JSON or YAML: ${problem.message.split('\n')[0] ?? ''}`,
      );
    }
    return { where, value: doc.toJS() as unknown };
  });
}

function readYaml(text: string, file: string, snapshot: Collected): void {
  yamlDocuments(text, file, 'a Kubernetes List').forEach(({ where, value: list }) => {
    const items = isObject(list) ? list.items : undefined;
    checkList(isObject(list) ? list : {}, Array.isArray(items), where);
    (items as Json[]).forEach((item, i) => {
      addItem(snapshot, item, `${where}: items[${i}]`);
    });
  });
}

/**
 * Reads the items of a List (each with its `kind`) into a snapshot, or throws InputError;
 * `file` names where they came from in messages.
 */
export function snapshotOf(items: readonly unknown[], file: string): ClusterSnapshot {
  const snapshot = emptySnapshot();
  items.forEach((item, i) => {
    addItem(snapshot, item, `${file}: items[${i}]`);
  });
  return snapshot;
}

const POLICY_KINDS = new Set(['PlacementPolicy', 'ClusterPlacementPolicy']);

/** A policy file as JSON (one object), else undefined: the YAML reader takes the rest. */
function asJson(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // the YAML parser says what is wrong
  }
}

/**
 * Reads the policies of a file as `kubectl apply -f` takes them: one or more YAML or JSON
 * documents, each a PlacementPolicy, a ClusterPlacementPolicy or a List of them. Throws
 * InputError naming the file, the document and the field.
 */
export function parsePolicies(text: string, file: string): PlacementPolicy[] {
  const json = asJson(text);
  const docs =
    json === undefined ? yamlDocuments(text, file, 'policies') : [{ where: file, value: json }];
  const out: PlacementPolicy[] = [];
  docs.forEach(({ where, value }) => {
    if (!isObject(value)) throw new InputError(`${where}: expected an object`);
    const isList = typeof value.kind === 'string' && value.kind.endsWith('List');
    const items = isList && Array.isArray(value.items) ? value.items : [value];
    items.forEach((item, i) => {
      const at = isList ? `${where}: items[${i}]` : where;
      if (!isObject(item)) throw new InputError(`${at}: not an object`);
      const kind = item.kind;
      if (typeof kind !== 'string' || !POLICY_KINDS.has(kind)) {
        const found = typeof kind === 'string' ? `kind ${kind}` : 'no kind';
        throw new InputError(
          `${at}: expected a PlacementPolicy or ClusterPlacementPolicy, found ${found}`,
        );
      }
      if (item.apiVersion !== API_VERSION) {
        throw new InputError(
          `${at} (${kind}): apiVersion must be ${API_VERSION}, found ${JSON.stringify(item.apiVersion ?? null)}`,
        );
      }
      const meta = readMeta(item, `${at} (${kind})`, kind === 'PlacementPolicy');
      const name = `${at} (${kind} ${meta.namespace === undefined ? '' : `${meta.namespace}/`}${meta.name})`;
      out.push(readPolicy(item, name));
    });
  });
  return out;
}

/** A List: a kind ending in `List` and an items array. */
function checkList(
  list: JsonObject | Record<string, unknown>,
  hasItems: boolean,
  where: string,
): void {
  const kind = list['kind'];
  if (typeof kind !== 'string' || !kind.endsWith('List') || !hasItems) {
    const found = typeof kind === 'string' ? `kind ${kind}` : 'no kind';
    throw new InputError(`${where}: expected a Kubernetes List with items, found ${found}`);
  }
}

/** Checks one item and adds it, trimmed to what the engine reads, to the snapshot. */
function addItem(snapshot: Collected, item: unknown, where: string): void {
  if (!isObject(item)) throw new InputError(`${where}: not an object`);
  const kind = item.kind;
  if (typeof kind !== 'string' || kind === '') throw new InputError(`${where}: kind is missing`);
  const meta = readMeta(
    item,
    `${where} (${kind})`,
    kind === 'Pod' ||
      kind === 'PlacementPolicy' ||
      kind === 'PlacementException' ||
      WORKLOAD_KINDS.has(kind),
  );
  const name = `${where} (${kind} ${meta.namespace === undefined ? '' : `${meta.namespace}/`}${meta.name})`;
  if (kind === 'Node') snapshot.nodes.push(trimmed(trimNode(item), name));
  else if (kind === 'Namespace') snapshot.namespaces.push(trimmed(trimNamespace(item), name));
  else if (kind === 'Pod') snapshot.pods.push(trimmed(trimPod(readPod(item, name)), name));
  else if (kind === 'PlacementPolicy' || kind === 'ClusterPlacementPolicy')
    snapshot.policies.push(readPolicy(item, name));
  else if (kind === 'PlacementException') snapshot.exceptions.push(readException(item, name));
  else if (WORKLOAD_KINDS.has(kind)) snapshot.workloads.push(item as unknown as WorkloadObject);
}

/** The trimmed object; readMeta has checked what trimming needs, so this cannot be absent. */
function trimmed<T>(value: T | undefined, where: string): T {
  if (value === undefined) throw new InputError(`${where}: metadata is incomplete`);
  return value;
}

/** Checks metadata: a name, string labels; namespaced kinds default to `default` as kubectl does. */
function readMeta(
  item: JsonObject,
  where: string,
  namespaced: boolean,
): { name: string; namespace?: string } {
  const meta = item.metadata;
  if (!isObject(meta)) throw new InputError(`${where}: metadata is missing`);
  if (typeof meta.name !== 'string' || meta.name === '')
    throw new InputError(`${where}: metadata.name is missing`);
  for (const field of ['labels', 'annotations'] as const) {
    const map = meta[field];
    if (map === undefined || map === null) continue;
    if (!isObject(map))
      throw new InputError(`${where} ${meta.name}: metadata.${field} must be a map of strings`);
    for (const [k, v] of Object.entries(map)) {
      if (typeof v !== 'string')
        throw new InputError(`${where} ${meta.name}: metadata.${field}[${k}] must be a string`);
    }
  }
  if (namespaced && meta.namespace === undefined) meta.namespace = 'default';
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    throw new InputError(`${where} ${meta.name}: metadata.namespace must be a string`);
  }
  return meta.namespace === undefined
    ? { name: meta.name }
    : { name: meta.name, namespace: meta.namespace };
}

function readPod(item: JsonObject, where: string): Pod {
  const spec = item.spec ?? {};
  if (!isObject(spec)) throw new InputError(`${where}: spec must be an object`);
  if (spec.nodeName !== undefined && spec.nodeName !== null && typeof spec.nodeName !== 'string') {
    throw new InputError(`${where}: spec.nodeName must be a string`);
  }
  checkAffinityShape(spec.affinity, `${where}: spec.affinity`);
  item.spec = spec;
  return item as unknown as Pod;
}

function readPolicy(item: JsonObject, where: string): PlacementPolicy {
  const spec = item.spec ?? {};
  if (!isObject(spec)) throw new InputError(`${where}: spec must be an object`);
  checkAffinityShape(spec.affinity, `${where}: spec.affinity`);
  item.spec = spec;
  return item as unknown as PlacementPolicy;
}

/** Checks the structure of an exception; what its fields mean is checked by the engine. */
function readException(item: JsonObject, where: string): PlacementException {
  const spec = item.spec;
  if (!isObject(spec)) throw new InputError(`${where}: spec must be an object`);
  const ref = spec.policyRef;
  if (!isObject(ref) || typeof ref.kind !== 'string' || typeof ref.name !== 'string')
    throw new InputError(`${where}: spec.policyRef needs a string kind and name`);
  const workloads = spec.workloads ?? {};
  if (!isObject(workloads)) throw new InputError(`${where}: spec.workloads must be an object`);
  for (const key of ['kinds', 'names']) {
    listAt(workloads, key, `${where}: spec.workloads`).forEach((v, i) => {
      if (typeof v !== 'string')
        throw new InputError(`${where}: spec.workloads.${key}[${i}] must be a string`);
    });
  }
  checkSelector(workloads.selector, `${where}: spec.workloads.selector`);
  if (spec.reason !== undefined && typeof spec.reason !== 'string')
    throw new InputError(`${where}: spec.reason must be a string`);
  return item as unknown as PlacementException;
}

/**
 * Checks the structure of an affinity (lists where lists belong, strings where strings
 * belong), so the engine can trust it; the meaning of selectors is checked by the engine.
 */
function checkAffinityShape(affinity: Json | undefined, where: string): void {
  if (affinity === undefined || affinity === null) return;
  if (!isObject(affinity)) throw new InputError(`${where} must be an object`);
  for (const kind of ['podAffinity', 'podAntiAffinity'] as const) {
    const rules = affinity[kind];
    if (rules === undefined || rules === null) continue;
    if (!isObject(rules)) throw new InputError(`${where}.${kind} must be an object`);
    const required = listAt(
      rules,
      'requiredDuringSchedulingIgnoredDuringExecution',
      `${where}.${kind}`,
    );
    required.forEach((t, i) => {
      checkTerm(t, `${where}.${kind}.requiredDuringSchedulingIgnoredDuringExecution[${i}]`);
    });
    const preferred = listAt(
      rules,
      'preferredDuringSchedulingIgnoredDuringExecution',
      `${where}.${kind}`,
    );
    preferred.forEach((w, i) => {
      const field = `${where}.${kind}.preferredDuringSchedulingIgnoredDuringExecution[${i}]`;
      if (!isObject(w) || typeof w.weight !== 'number')
        throw new InputError(`${field}.weight must be a number`);
      checkTerm(w.podAffinityTerm, `${field}.podAffinityTerm`);
    });
  }
}

function listAt(obj: JsonObject, key: string, where: string): Json[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InputError(`${where}.${key} must be a list`);
  return v;
}

function checkTerm(term: Json | undefined, where: string): void {
  if (!isObject(term)) throw new InputError(`${where} must be an object`);
  if (typeof term.topologyKey !== 'string')
    throw new InputError(`${where}.topologyKey must be a string`);
  for (const key of ['namespaces', 'matchLabelKeys', 'mismatchLabelKeys']) {
    listAt(term, key, where).forEach((v, i) => {
      if (typeof v !== 'string') throw new InputError(`${where}.${key}[${i}] must be a string`);
    });
  }
  for (const key of ['labelSelector', 'namespaceSelector'])
    checkSelector(term[key], `${where}.${key}`);
}

function checkSelector(sel: Json | undefined, where: string): void {
  if (sel === undefined || sel === null) return;
  if (!isObject(sel)) throw new InputError(`${where} must be an object`);
  const labels = sel.matchLabels;
  if (labels !== undefined && labels !== null) {
    if (!isObject(labels)) throw new InputError(`${where}.matchLabels must be a map of strings`);
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string')
        throw new InputError(`${where}.matchLabels[${k}] must be a string`);
    }
  }
  listAt(sel, 'matchExpressions', where).forEach((e, i) => {
    const field = `${where}.matchExpressions[${i}]`;
    if (!isObject(e) || typeof e.key !== 'string' || typeof e.operator !== 'string') {
      throw new InputError(`${field} needs a string key and operator`);
    }
    listAt(e, 'values', field).forEach((v, j) => {
      if (typeof v !== 'string') throw new InputError(`${field}.values[${j}] must be a string`);
    });
  });
}
