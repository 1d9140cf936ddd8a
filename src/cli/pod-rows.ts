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

/** The string fields of a row, in order. */
const STRINGS = ['name', 'namespace', 'uid', 'resourceVersion', 'deletionTimestamp', 'nodeName'];
/** The shared values of a row, in order, after the strings. */
const VALUES = [
  'labels',
  'annotations',
  'ownerReferences',
  'affinity',
  'nodeSelector',
  'tolerations',
  'topologySpreadConstraints',
  'status',
];
const WIDTH = STRINGS.length + VALUES.length;
const ABSENT = -1;

/** Pods as rows: what a worker thread posts. */
export interface PodRows {
  readonly rows: Int32Array<ArrayBuffer>;
  /** The strings, one after the other, and where each ends. */
  readonly text: string;
  readonly ends: Int32Array<ArrayBuffer>;
  readonly values: readonly unknown[];
}

/** The rows of trimmed pods (see trimPod). */
export function podRows(pods: readonly Pod[]): PodRows {
  const rows = new Int32Array(pods.length * WIDTH);
  const strings: string[] = [];
  const values: unknown[] = [];
  const recurring = new Map<string, number>();
  const valueIds = new Map<unknown, number>();
  const unique = (s: string | undefined): number =>
    s === undefined ? ABSENT : strings.push(s) - 1;
  const common = (s: string | undefined): number => {
    if (s === undefined) return ABSENT;
    let id = recurring.get(s);
    if (id === undefined) recurring.set(s, (id = strings.push(s) - 1));
    return id;
  };
  // Shared values are one object for many pods (transforms.ts): known by identity.
  const value = (v: unknown): number => {
    if (v === undefined) return ABSENT;
    let id = valueIds.get(v);
    if (id === undefined) valueIds.set(v, (id = values.push(v) - 1));
    return id;
  };
  let r = 0;
  for (const { metadata: m, spec: s, status } of pods) {
    rows[r++] = unique(m.name);
    rows[r++] = common(m.namespace);
    rows[r++] = unique(m.uid);
    rows[r++] = unique(m.resourceVersion);
    rows[r++] = unique(m.deletionTimestamp);
    rows[r++] = common(s.nodeName);
    rows[r++] = value(m.labels);
    rows[r++] = value(m.annotations);
    rows[r++] = value(m.ownerReferences);
    rows[r++] = value(s.affinity);
    rows[r++] = value(s.nodeSelector);
    rows[r++] = value(s.tolerations);
    rows[r++] = value(s.topologySpreadConstraints);
    rows[r++] = value(status);
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
  const str = (id: number | undefined): string | undefined =>
    id === undefined || id === ABSENT ? undefined : strings[id];
  const val = (id: number | undefined): unknown =>
    id === undefined || id === ABSENT ? undefined : values[id];
  for (let r = 0; r < rows.length; r += WIDTH) {
    const metadata: Record<string, unknown> = {};
    const spec: Record<string, unknown> = {};
    // The key order of trimPod: metadata's, then spec's.
    put(metadata, 'name', str(rows[r]));
    put(metadata, 'namespace', str(rows[r + 1]));
    put(metadata, 'uid', str(rows[r + 2]));
    put(metadata, 'labels', val(rows[r + 6]));
    put(metadata, 'annotations', val(rows[r + 7]));
    put(metadata, 'ownerReferences', val(rows[r + 8]));
    put(metadata, 'deletionTimestamp', str(rows[r + 4]));
    put(metadata, 'resourceVersion', str(rows[r + 3]));
    put(spec, 'nodeName', str(rows[r + 5]));
    put(spec, 'affinity', val(rows[r + 9]));
    put(spec, 'nodeSelector', val(rows[r + 10]));
    put(spec, 'tolerations', val(rows[r + 11]));
    put(spec, 'topologySpreadConstraints', val(rows[r + 12]));
    const status = val(rows[r + 13]);
    pods.push(
      (status === undefined ? { metadata, spec } : { metadata, spec, status }) as unknown as Pod,
    );
  }
  return pods;
}

function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) target[key] = value;
}
