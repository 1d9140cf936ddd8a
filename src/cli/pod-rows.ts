/**
 * Trimmed pods (src/kube/transforms.ts's trimPod) in a compact form that crosses between
 * threads cheaply. A structured clone of 75,000 pod objects takes the receiving thread 0.36 s
 * to rebuild, as long as parsing them; as rows it takes a fraction of that. Each pod is a row
 * of numbers: its strings by index into one list (the namespaces and node names that recur,
 * once), and its labels, owners, affinity and the other values the replicas of a template
 * share by index into a list of those values, each sent once. The strings travel as one
 * string and where each ends: one copy, where a list of 300,000 strings is 300,000 objects
 * to rebuild.
 */
import type { Pod } from '../api/core.ts';

/**
 * A row's columns, in trimPod's key order (metadata's, then spec's, then status): what each
 * holds, and how.
 * - `unique`: a string of its own (by index into the strings);
 * - `common`: a string that recurs (namespaces, node names), held once;
 * - `value`: a value the replicas of a template share (by identity), sent once.
 */
const COLUMNS = [
  { of: 'metadata', key: 'name', kind: 'unique' },
  { of: 'metadata', key: 'namespace', kind: 'common' },
  { of: 'metadata', key: 'uid', kind: 'unique' },
  { of: 'metadata', key: 'labels', kind: 'value' },
  { of: 'metadata', key: 'annotations', kind: 'value' },
  { of: 'metadata', key: 'ownerReferences', kind: 'value' },
  { of: 'metadata', key: 'deletionTimestamp', kind: 'unique' },
  { of: 'metadata', key: 'resourceVersion', kind: 'unique' },
  { of: 'spec', key: 'nodeName', kind: 'common' },
  { of: 'spec', key: 'affinity', kind: 'value' },
  { of: 'spec', key: 'nodeSelector', kind: 'value' },
  { of: 'spec', key: 'tolerations', kind: 'value' },
  { of: 'spec', key: 'topologySpreadConstraints', kind: 'value' },
  { of: 'pod', key: 'status', kind: 'value' },
] as const;
const WIDTH = COLUMNS.length;
const ABSENT = -1;

/** Pods as rows: what a worker thread posts. */
export interface PodRows {
  readonly rows: Int32Array<ArrayBuffer>;
  /** The strings, one after the other, and where each ends. */
  readonly text: string;
  readonly ends: Int32Array<ArrayBuffer>;
  readonly values: readonly unknown[];
}

type Fields = Readonly<Record<string, unknown>>;
const fields = (o: object): Fields => o as Fields;

/** The rows of trimmed pods (see trimPod). */
export function podRows(pods: readonly Pod[]): PodRows {
  const rows = new Int32Array(pods.length * WIDTH);
  const strings: string[] = [];
  const values: unknown[] = [];
  const recurring = new Map<string, number>();
  const valueIds = new Map<unknown, number>();
  const encode = {
    unique: (s: unknown): number => strings.push(s as string) - 1,
    common: (s: unknown): number => {
      let id = recurring.get(s as string);
      if (id === undefined) recurring.set(s as string, (id = strings.push(s as string) - 1));
      return id;
    },
    // Shared values are one object for many pods (transforms.ts): known by identity.
    value: (v: unknown): number => {
      let id = valueIds.get(v);
      if (id === undefined) valueIds.set(v, (id = values.push(v) - 1));
      return id;
    },
  };
  let r = 0;
  for (const pod of pods) {
    const of = { metadata: fields(pod.metadata), spec: fields(pod.spec), pod: fields(pod) };
    for (const { of: part, key, kind } of COLUMNS) {
      const v = of[part][key];
      rows[r++] = v === undefined ? ABSENT : encode[kind](v);
    }
  }
  const ends = new Int32Array(strings.length);
  let end = 0;
  strings.forEach((str, i) => (ends[i] = end += str.length));
  return { rows, text: strings.join(''), ends, values };
}

/** The pods of `podRows`, field for field as trimPod made them (absent fields absent). */
export function podsOfRows({ rows, text, ends, values }: PodRows): Pod[] {
  const pods: Pod[] = [];
  const strings: string[] = [];
  let start = 0;
  for (const end of ends) {
    strings.push(text.slice(start, end));
    start = end;
  }
  for (let r = 0; r < rows.length; r += WIDTH) {
    const of: Record<(typeof COLUMNS)[number]['of'], Record<string, unknown>> = {
      metadata: {},
      spec: {},
      pod: {},
    };
    COLUMNS.forEach(({ of: part, key, kind }, c) => {
      const id = rows[r + c] ?? ABSENT;
      if (id !== ABSENT) of[part][key] = kind === 'value' ? values[id] : strings[id];
    });
    const { status } = of.pod;
    const { metadata, spec } = of;
    pods.push(
      (status === undefined ? { metadata, spec } : { metadata, spec, status }) as unknown as Pod,
    );
  }
  return pods;
}
