import { canonicalJson, type JsonValue } from './canonical.ts';
import { PREFERRED_TERMS as PREFERRED, REQUIRED_TERMS as REQUIRED } from './term.ts';
import { APPLIED_ANNOTATION } from '../api/cluster.ts';

/**
 * What Kubernetes allows for all of an object's annotations together, keys included
 * (apimachinery's TotalAnnotationSizeLimitB); a bigger write is refused with 422.
 */
export const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** The lists of an Affinity that policy terms are appended to. */
export const SLOTS = {
  'podAffinity.required': ['podAffinity', REQUIRED],
  'podAffinity.preferred': ['podAffinity', PREFERRED],
  'podAntiAffinity.required': ['podAntiAffinity', REQUIRED],
  'podAntiAffinity.preferred': ['podAntiAffinity', PREFERRED],
  'nodeAffinity.preferred': ['nodeAffinity', PREFERRED],
} as const;
export type Slot = keyof typeof SLOTS;
export const SLOT_NAMES = Object.keys(SLOTS) as Slot[];

/** Node requirements added to every required nodeSelectorTerm (the terms are ORed, so each must carry them). */
export interface NodeRequirements {
  readonly matchExpressions: readonly JsonValue[];
  readonly matchFields: readonly JsonValue[];
}

/** Requirements one nodeSelectorTerm (by position) already held: its owner's, not added there. */
export interface TermAlreadyHad {
  readonly term: number;
  readonly matchExpressions?: readonly JsonValue[];
  readonly matchFields?: readonly JsonValue[];
}

export interface NodeRecord extends NodeRequirements {
  /** Whether the injection created the one nodeSelectorTerm (the owner had none). */
  readonly createdTerm: boolean;
  /**
   * Terms that already held some of the requirements: those were not added to them again,
   * and their copies stay when the injection is taken out. Absent when every term got all.
   */
  readonly alreadyThere?: readonly TermAlreadyHad[];
}

/** What was injected, as stored in the `placement.dev/applied` annotation. */
export interface AppliedRecord {
  /** Policy ref → the generation whose terms these are. */
  readonly policies: Readonly<Record<string, number>>;
  readonly slots: Readonly<Partial<Record<Slot, readonly JsonValue[]>>>;
  readonly node?: NodeRecord;
  /**
   * topologySpreadConstraints appended to the pod spec's list (`spreadAcross` with
   * TopologySpread); absent when none was.
   */
  readonly topologySpreadConstraints?: readonly JsonValue[];
  /** Containers (paths under the pod spec) that did not exist before the injection. */
  readonly created: readonly string[];
}

/** Where a pod spec holds its spread constraints, as `created` names the list. */
export const SPREAD_PATH = 'topologySpreadConstraints';

/** The containers an injection may create, as `created` names them. */
export const CREATABLE_PATHS: ReadonlySet<string> = new Set([
  'affinity',
  ...SLOT_NAMES.flatMap((s) => {
    const [group, field] = SLOTS[s];
    return [`affinity.${group}`, `affinity.${group}.${field}`];
  }),
  `affinity.nodeAffinity.${REQUIRED}`,
  `affinity.nodeAffinity.${REQUIRED}.nodeSelectorTerms`,
  SPREAD_PATH,
]);

export const serializeRecord = (record: AppliedRecord): string => canonicalJson(record);

/** One thing wrong with a record, at a field path inside it (`created[0]`, `node.matchFields`). */
interface RecordProblem {
  readonly field: string;
  readonly problem: string;
}

export type RecordParse =
  | { readonly kind: 'none' }
  | { readonly kind: 'ok'; readonly record: AppliedRecord }
  | { readonly kind: 'invalid'; readonly problem: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value as a message shows it: JSON, cut short (a record can hold 256 KiB). */
function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const POLICY_REF = /^(PlacementPolicy\/[^/]+\/[^/]+|ClusterPlacementPolicy\/[^/]+)$/;

/** Checks a record field by field; every problem is reported, each naming its field. */
function recordProblems(value: unknown): RecordProblem[] {
  const problems: RecordProblem[] = [];
  const fail = (field: string, problem: string): void => {
    problems.push({ field, problem });
  };
  if (!isObj(value)) {
    fail('(record)', `${shown(value)} is not an object`);
    return problems;
  }
  const allowed = ['policies', 'slots', 'node', SPREAD_PATH, 'created'];
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(key, 'is not a field of the record');
  }
  const objectAt = (field: string, v: unknown): v is Obj => {
    if (v === undefined) fail(field, 'is missing');
    else if (!isObj(v)) fail(field, `${shown(v)} is not an object`);
    return isObj(v);
  };
  /** A list of JSON objects: terms and requirements are objects, whatever else they hold. */
  const objectsAt = (field: string, v: unknown): void => {
    if (v === undefined) fail(field, 'is missing');
    else if (!Array.isArray(v)) fail(field, `${shown(v)} is not a list`);
    else
      v.forEach((item, i) => {
        if (!isObj(item)) fail(`${field}[${i}]`, `${shown(item)} is not an object`);
      });
  };

  if (objectAt('policies', value.policies)) {
    for (const [ref, generation] of Object.entries(value.policies)) {
      const field = `policies[${JSON.stringify(ref)}]`;
      if (!POLICY_REF.test(ref)) {
        fail(field, 'is not a policy (PlacementPolicy/NS/NAME or ClusterPlacementPolicy/NAME)');
      }
      if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
        fail(field, `${shown(generation)} is not a generation (a whole number, 0 or more)`);
      }
    }
  }
  if (objectAt('slots', value.slots)) {
    for (const [slot, terms] of Object.entries(value.slots)) {
      const field = `slots[${JSON.stringify(slot)}]`;
      if (!(slot in SLOTS)) fail(field, `is not one of ${SLOT_NAMES.join(', ')}`);
      else objectsAt(field, terms);
    }
  }
  if (value.node !== undefined && objectAt('node', value.node)) {
    const node = value.node;
    for (const key of Object.keys(node)) {
      if (!['matchExpressions', 'matchFields', 'createdTerm', 'alreadyThere'].includes(key))
        fail(`node.${key}`, 'is not a field of the record');
    }
    objectsAt('node.matchExpressions', node.matchExpressions);
    objectsAt('node.matchFields', node.matchFields);
    if (node.createdTerm === undefined) fail('node.createdTerm', 'is missing');
    else if (typeof node.createdTerm !== 'boolean')
      fail('node.createdTerm', `${shown(node.createdTerm)} is not true or false`);
    if (node.alreadyThere !== undefined) alreadyThereProblems(node.alreadyThere, fail, objectsAt);
  }
  if (value[SPREAD_PATH] !== undefined) objectsAt(SPREAD_PATH, value[SPREAD_PATH]);
  if (!Array.isArray(value.created)) {
    fail(
      'created',
      value.created === undefined ? 'is missing' : `${shown(value.created)} is not a list`,
    );
  } else {
    value.created.forEach((path, i) => {
      if (typeof path !== 'string') fail(`created[${i}]`, `${shown(path)} is not a string`);
      else if (!CREATABLE_PATHS.has(path))
        fail(`created[${i}]`, `${shown(path)} is not a container an injection creates`);
    });
  }
  return problems;
}

function alreadyThereProblems(
  list: unknown,
  fail: (field: string, problem: string) => void,
  objectsAt: (field: string, v: unknown) => void,
): void {
  if (!Array.isArray(list)) {
    fail('node.alreadyThere', `${shown(list)} is not a list`);
    return;
  }
  list.forEach((entry, i) => {
    const field = `node.alreadyThere[${i}]`;
    if (!isObj(entry)) {
      fail(field, `${shown(entry)} is not an object`);
      return;
    }
    for (const key of Object.keys(entry)) {
      if (!['term', 'matchExpressions', 'matchFields'].includes(key))
        fail(`${field}.${key}`, 'is not a field of the record');
    }
    if (typeof entry.term !== 'number' || !Number.isSafeInteger(entry.term) || entry.term < 0)
      fail(`${field}.term`, `${shown(entry.term)} is not a position (a whole number, 0 or more)`);
    for (const key of ['matchExpressions', 'matchFields'] as const) {
      if (entry[key] !== undefined) objectsAt(`${field}.${key}`, entry[key]);
    }
  });
}

/**
 * Reads the annotation into a record, checking every field: what the operator takes out of a
 * workload is decided by it, so a record it did not write (by hand, or cut short) must not be
 * half-read. A record that cannot be read means the operator cannot know what it injected,
 * and the workload must not be touched until a person looks.
 */
export function parseRecord(text: string | undefined): RecordParse {
  if (text === undefined) return { kind: 'none' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', problem: 'is not valid JSON' };
  }
  const problems = recordProblems(value);
  if (problems.length > 0) {
    return {
      kind: 'invalid',
      problem: `is not a valid record: ${problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}`,
    };
  }
  return { kind: 'ok', record: value as AppliedRecord };
}

/** UTF-8 bytes of a text, as the API server measures annotation sizes. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** What a record takes of a workload's annotation allowance, its key included. */
export const recordBytes = (text: string): number =>
  utf8Bytes(APPLIED_ANNOTATION) + utf8Bytes(text);
