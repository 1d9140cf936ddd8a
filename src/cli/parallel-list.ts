/**
 * Reads the items of a large pretty-printed List on several threads. Parsing and trimming are
 * half the CLI's time at 150,000 pods (2 s of CPU); the machine's other cores take a share
 * each. The items are cut at item boundaries (kubectl's separator, see json-list.ts) into one
 * part per thread: this thread reads the first, a worker thread (list-worker.ts) each of the
 * others, from a copy of its bytes. A worker hands back its items checked and trimmed, the
 * pods as rows (pod-rows.ts), and they join the snapshot in the List's order.
 *
 * The call stays synchronous: this thread reads its own part and then waits (Atomics.wait)
 * for each worker in turn. A worker that cannot read its part (a bad item, broken JSON,
 * anything at all) says only that; this thread then reads that part and the rest itself, so
 * the error reported is the one a single thread reports, word for word.
 */
import { availableParallelism, loadavg } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { ItemsRead, ItemsSplit } from './json-list.ts';
import type { PartRead } from './list-worker.ts';

/** Below this many bytes per thread, starting a worker costs more than it saves. */
const BYTES_PER_THREAD = 16 * 2 ** 20;

/** The least input that more than one thread reads. */
export const PARALLEL_BYTES = 2 * BYTES_PER_THREAD;

/**
 * The cores that other processes leave idle, by the 1-minute load average (at least one: this
 * thread's). A core that others keep busy gives a worker no time of its own: it then costs CPU
 * and memory and saves nothing (at 150,000 pods and a load of 7 to 9 on two cores, one thread
 * ran in 7.6-10.6 s and 650-680 MiB, two in 9.8-11.9 s and 930-960 MiB).
 */
export const idleCores = (load = loadavg()[0] ?? 0): number =>
  Math.max(1, Math.round(availableParallelism() - load));

/** The threads to read `length` bytes with: at most `idle`, each with enough to do. */
export const defaultThreads = (length: number, idle: number): number =>
  Math.max(1, Math.min(idle, Math.floor(length / BYTES_PER_THREAD)));

/**
 * The code a worker starts from: a few lines that cannot fail to load, which then load
 * list-worker.ts. Whatever happens after (a module that does not load, an exception), the
 * thread's end sets `done`, so the main thread never waits for an answer that cannot come.
 * They run as a script or as a module alike (a worker takes `--input-type=module` from the
 * process), so they neither `require` nor `import` statically.
 */
const BOOT = `
const { workerData } = process.getBuiltinModule('node:worker_threads');
process.once('exit', () => {
  Atomics.store(workerData.done, 0, 1);
  Atomics.notify(workerData.done, 0);
});
import(workerData.module).catch(() => undefined);
`;

/** What a worker is started with (see list-worker.ts); its part comes later, on `port`. */
export interface WorkerInput {
  /** The URL of list-worker.ts (or .js, compiled). */
  readonly module: string;
  readonly port: MessagePort;
  /** Set to 1 when the worker has posted what it read (or has ended without). */
  readonly done: Int32Array;
}

/** The part a worker reads, posted to it once the input is whole. */
export interface PartInput {
  /** The part's bytes, from its first item to the end of its last (or of the input). */
  readonly bytes: Uint8Array;
  readonly separator: Uint8Array;
  /** Where the part's last item ends (the offset of the separator after it); none for the last part. */
  readonly stop: number | undefined;
}

/** A worker thread, started and given the port its part comes on, or ready to be. */
interface Started {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly done: Int32Array;
  readonly module: string;
}

interface Part extends Started {
  readonly start: number;
}

/** The workers' module: the source or, compiled, the JavaScript beside this file. */
const LIST_WORKER = new URL(
  import.meta.url.endsWith('.ts') ? './list-worker.ts' : './list-worker.js',
  import.meta.url,
);

/** Starts a worker running `module`; undefined when no thread is to be had. */
function startWorker(module: URL): Started | undefined {
  const { port1, port2 } = new MessageChannel();
  const input: WorkerInput = {
    module: module.href,
    port: port2,
    done: new Int32Array(new SharedArrayBuffer(4)),
  };
  let worker: Worker;
  try {
    worker = new Worker(BOOT, { eval: true, workerData: input, transferList: [port2] });
  } catch {
    return undefined;
  }
  // What a worker throws after it has answered concerns no one: the part is read either way.
  worker.on('error', () => undefined);
  worker.unref();
  return { worker, port: port1, done: input.done, module: module.href };
}

/**
 * Workers started before their parts are known (see warmWorkers), oldest first. A worker takes
 * about a quarter of a second to start and load its modules at 150,000 pods' load: started
 * while the input is still being read, it is ready when its part is.
 */
const warm: Started[] = [];

/**
 * Starts workers, up to `count` in all, for a List whose bytes are still arriving
 * (read-bytes.ts calls it as the input grows): splitItems takes them before it starts others.
 * Returns how many are waiting for a part.
 */
export function warmWorkers(count: number): number {
  while (warm.length < count) {
    const started = startWorker(LIST_WORKER);
    if (started === undefined) break;
    warm.push(started);
  }
  return warm.length;
}

/** Ends the workers that warmWorkers started and no part took. */
export function endWarmWorkers(): void {
  for (const started of warm.splice(0)) endWorker(started);
}

const endWorker = (started: Started): void => {
  started.port.close();
  void started.worker.terminate();
};

/**
 * Splits the items of `bytes` over `threads` threads (see readJsonList's `split`); `take`
 * receives each worker's items, in order. `close` ends the workers, whatever happened.
 * `workerModule` is what the workers run (list-worker.ts; tests give others).
 */
export function splitItems(
  bytes: Uint8Array,
  threads: number,
  take: (part: PartRead) => void,
  workerModule: URL = LIST_WORKER,
): ItemsSplit & { readonly close: () => void } {
  const parts: Part[] = [];
  const claim = (first: number, separator: Uint8Array): number | undefined => {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const share = (bytes.length - first) / threads;
    const cuts: number[] = [];
    for (let k = 1; k < threads; k++) {
      const cut = text.indexOf(separator, Math.max(first + k * share, (cuts.at(-1) ?? 0) + 1));
      if (cut < 0) break;
      cuts.push(cut);
    }
    if (cuts.length === 0) return undefined;
    cuts.forEach((cut, k) => {
      const start = cut + separator.length - 1;
      const next = cuts[k + 1];
      const end = next === undefined ? bytes.length : next + 1;
      const warmIndex = warm.findIndex((w) => w.module === workerModule.href);
      const started = warmIndex >= 0 ? warm.splice(warmIndex, 1)[0] : startWorker(workerModule);
      if (started === undefined) return; // no thread to be had: this thread reads that part
      const part: PartInput = {
        // A copy (a Buffer's slice would share the input, which the transfer would detach).
        bytes: new Uint8Array(bytes.subarray(start, end)),
        separator,
        stop: next === undefined ? undefined : next - start,
      };
      started.port.postMessage(part, [part.bytes.buffer as ArrayBuffer]);
      parts.push({ ...started, start });
    });
    return cuts[0];
  };
  const rest = (next: number, index: number): ItemsRead => {
    let at = next;
    let count = index;
    for (const part of parts) {
      if (part.start !== at) break; // a worker that did not start: read on from there here
      while (Atomics.load(part.done, 0) === 0) Atomics.wait(part.done, 0, 0, 1000);
      const answer = receiveMessageOnPort(part.port)?.message as PartRead | undefined;
      const last = part === parts.at(-1);
      if (answer === undefined || answer.done !== last) break;
      take(answer);
      count += answer.count;
      at = part.start + answer.next;
      if (last) return { next: at, done: true, index: count };
    }
    return { next: at, done: false, index: count };
  };
  const close = (): void => {
    parts.forEach(endWorker);
  };
  return { claim, rest, close };
}
