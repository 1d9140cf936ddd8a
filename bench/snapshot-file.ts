/**
 * Writes a generated cluster as the List that `kubectl get nodes,pods,namespaces -A -o json`
 * prints, for the benchmarks that run the CLI and the descheduler on the same input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCluster, type ClusterStats } from './generate.ts';

export interface SnapshotFile {
  readonly path: string;
  readonly bytes: number;
  readonly stats: ClusterStats;
}

/** Generates `nodes` / `pods` (seeded) and writes the List of its Nodes, Namespaces and Pods. */
export function writeSnapshotList(nodes: number, pods: number, seed?: number): SnapshotFile {
  const { snapshot, stats } = generateCluster({
    nodes,
    pods,
    ...(seed === undefined ? {} : { seed }),
  });
  const items = [
    ...snapshot.nodes.map((n) => ({ apiVersion: 'v1', kind: 'Node', ...n })),
    ...snapshot.namespaces.map((n) => ({ apiVersion: 'v1', kind: 'Namespace', ...n })),
    ...snapshot.pods.map((p) => ({ apiVersion: 'v1', kind: 'Pod', ...p })),
  ];
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', metadata: {}, items }, null, 4);
  const dir = join(tmpdir(), 'placement-bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `cluster-${nodes}-${pods}-${seed ?? 'default'}.json`);
  writeFileSync(path, text);
  return { path, bytes: Buffer.byteLength(text), stats };
}

if (import.meta.main) {
  const [nodes, pods] = process.argv.slice(2).map(Number);
  const file = writeSnapshotList(nodes ?? 200, pods ?? 4000);
  console.log(file.path, file.bytes);
}
