/**
 * A worker thread of parallel-list.ts: reads the items of one part of a List, checks and trims
 * them as the CLI does, and posts them back (the pods as rows, see pod-rows.ts). It posts
 * `undefined` when anything goes wrong: the main thread then reads the part itself, and
 * reports what is wrong in its own words.
 */
import { workerData } from 'node:worker_threads';
import type { Namespace, Node } from '../api/core.ts';
import type { PlacementException } from '../api/exception.ts';
import type { PlacementPolicy } from '../api/policy.ts';
import type { WorkloadObject } from '../engine/index.ts';
import type { PartInput, WorkerInput } from './parallel-list.ts';
import type { PodRows } from './pod-rows.ts';

/** What a worker read: its items, how many, and how far (`next`, relative to its part). */
export interface PartRead {
  readonly count: number;
  readonly next: number;
  /** Whether the part ended with the List's items (the last part). */
  readonly done: boolean;
  readonly nodes: Node[];
  readonly namespaces: Namespace[];
  readonly pods: PodRows;
  readonly policies: PlacementPolicy[];
  readonly workloads: WorkloadObject[];
  readonly exceptions: PlacementException[];
}

const { port, done } = workerData as WorkerInput;
// The modules load while the main thread still reads the input (see warmWorkers); the part
// comes when the input is whole.
const loaded = import('./input.ts');
loaded.catch(() => undefined); // a failure to load is answered below, once the part is here
const input = await new Promise<PartInput>((resolve) => {
  port.once('message', resolve);
});
let answer: PartRead | undefined;
try {
  // Loaded above, not imported, so that a failure to load is answered too.
  const { readListPart } = await loaded;
  answer = readListPart(input.bytes, input.separator, input.stop);
  // The part's bytes (half the input) are given back now, not when the thread ends: the
  // main thread may still be reading its own part, with the whole input in memory.
  (input.bytes.buffer as ArrayBuffer).transfer(0);
} catch {
  answer = undefined;
}
port.postMessage(
  answer,
  answer === undefined ? [] : [answer.pods.rows.buffer, answer.pods.ends.buffer],
);
port.close();
// The main thread may read the answer now (the thread's end would tell it too, a little later:
// see parallel-list.ts's BOOT).
Atomics.store(done, 0, 1);
Atomics.notify(done, 0);
