import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { packageRoot } from '../util/paths.js';
import { BackendUnavailableError, DisposedError, InferenceError, ModelLoadError } from '../errors.js';
import type { Backend, BackendOutput, WorkerDecode } from './backend.js';

const require = createRequire(import.meta.url);

/** The onnxruntime-node entry point and version, or a BackendUnavailableError saying how to get it. */
export function onnxRuntimeModule(): { path: string; version: string } {
  try {
    const path = require.resolve('onnxruntime-node');
    const version = (require('onnxruntime-node/package.json') as { version: string }).version;
    return { path, version };
  } catch (err) {
    throw new BackendUnavailableError(
      'ONNX Runtime is not installed: run `npm install onnxruntime-node` (it ships the CPU runtime for linux-x64)',
      { cause: err },
    );
  }
}

interface Pending {
  resolve: (out: BackendOutput | null) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  pending: Map<number, Pending>;
}

type Job = { pending: Pending } & (
  | { data: Float32Array; shape: readonly [number, number, number, number] }
  | { images: readonly (string | Uint8Array)[]; decode: WorkerDecode }
);

export interface OnnxRuntimeOptions {
  device: string;
  /** Intra-op threads per session. Defaults to the cores divided among the workers. */
  threads?: number;
  /** Sessions, one per worker thread. Defaults to 1. */
  workers?: number;
  /** ONNX Runtime graph optimisation level. Defaults to 'all'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Where ONNX Runtime writes the optimised graph (engine building and fusion checks). */
  optimizedModelFilePath?: string;
}

/**
 * An ONNX model run by onnxruntime-node. InferenceSession.run() computes on the thread that calls it, so every
 * session lives in a worker thread (workers/ort-worker.cjs) and the event loop only posts batches and receives
 * outputs.
 */
export class OnnxRuntimeBackend implements Backend {
  readonly name = 'onnxruntime' as const;
  readonly precision = 'fp32' as const;
  readonly maxBatchSize: number | undefined;
  readonly versions: Record<string, string>;
  /** Every worker loaded the addon's decoder: runImages() decodes JPEGs on the session's thread. */
  readonly decodesImages: boolean;
  readonly #slots: Slot[];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  #disposing: Promise<void> | undefined;
  #failure: Error | undefined;

  private constructor(
    slots: Slot[],
    readonly device: string,
    version: string,
    readonly outputNames: string[],
    maxBatchSize: number | undefined,
    decodesImages: boolean,
  ) {
    this.#slots = slots;
    this.decodesImages = decodesImages;
    this.versions = { onnxruntime: version };
    this.maxBatchSize = maxBatchSize;
    for (const slot of slots) this.#attach(slot);
  }

  static async load(path: string, options: OnnxRuntimeOptions & { staticBatch?: number }): Promise<OnnxRuntimeBackend> {
    const ort = onnxRuntimeModule();
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new RangeError(`Expected integer between 1 and 64 for \`workers\` but received ${String(workers)}`);
    }
    const threads = options.threads || Math.max(1, Math.floor(os.availableParallelism() / workers));
    const device = options.device === 'auto' ? 'cpu' : options.device;
    const providers = device === 'cpu' ? ['cpu'] : device.startsWith('cuda') ? ['cuda'] : undefined;
    if (!providers) throw new RangeError(`Expected 'cpu' or 'cuda' for \`device\` but received '${device}'`);
    const started = await Promise.allSettled(
      Array.from({ length: workers }, () =>
        startWorker(path, ort.path, threads, providers, {
          ...(options.graphOptimizationLevel ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
          ...(options.optimizedModelFilePath ? { optimizedModelFilePath: options.optimizedModelFilePath } : {}),
        }),
      ),
    );
    const slots = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.slot] : []));
    const decodes = started.every((s) => s.status === 'fulfilled' && s.value.decodes);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      const message = String((failed.reason as Error).message ?? failed.reason);
      if (providers[0] === 'cuda') {
        throw new BackendUnavailableError(
          `ONNX Runtime cannot use CUDA here (${message}): onnxruntime-node's CUDA provider needs its CUDA ` +
            'binaries (installed by its install script) and a GPU; use --device cpu',
        );
      }
      throw new ModelLoadError(`cannot load ONNX model '${path}': ${shorten(message)}`);
    }
    const first = started[0] as PromiseFulfilledResult<{ slot: Slot; outputs: string[] }>;
    return new OnnxRuntimeBackend(slots, device, ort.version, first.value.outputs, options.staticBatch, decodes);
  }

  run(data: Float32Array, shape: readonly [number, number, number, number]): Promise<BackendOutput> {
    if (this.#closed) return Promise.reject(new DisposedError('this ONNX Runtime session'));
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<BackendOutput>((resolve, reject) => {
      this.#queue.push({ data, shape, pending: { resolve: resolve as Pending['resolve'], reject } });
      this.#pump();
    });
  }

  /**
   * Decodes a batch of JPEGs (paths or bytes) on the session's worker thread and runs it: one hop from the event
   * loop and back. Resolves with null, having run nothing, when an image is not for the native decoder (not a
   * readable JPEG within the limits, or one for sharp): the caller then preprocesses the batch its own way.
   */
  runImages(images: readonly (string | Uint8Array)[], decode: WorkerDecode): Promise<BackendOutput | null> {
    if (this.#closed) return Promise.reject(new DisposedError('this ONNX Runtime session'));
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.decodesImages) return Promise.resolve(null);
    return new Promise<BackendOutput | null>((resolve, reject) => {
      this.#queue.push({ images, decode, pending: { resolve, reject } });
      this.#pump();
    });
  }

  /** Refuses new runs, waits for the queued and running ones, then stops the workers. Every call returns the same promise. */
  dispose(): Promise<void> {
    this.#disposing ??= this.#close();
    return this.#disposing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Jobs already queued or running finish first.
    while (this.#queue.length > 0 || this.#slots.some((s) => s.busy)) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void slot.worker.terminate().then(() => resolve()), 2000);
            slot.worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            slot.worker.postMessage({ type: 'close' });
          }),
      ),
    );
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.busy) continue;
      const job = this.#queue.shift() as Job;
      const id = this.#nextId++;
      slot.busy = true;
      slot.pending.set(id, job.pending);
      // Structured clone copies the input, so the caller's array stays usable.
      if ('images' in job) slot.worker.postMessage({ id, images: job.images, decode: job.decode });
      else slot.worker.postMessage({ id, data: job.data, shape: [...job.shape] });
    }
  }

  #attach(slot: Slot): void {
    slot.worker.on('message', (msg: WorkerReply) => {
      if (typeof msg.id !== 'number') return;
      const pending = slot.pending.get(msg.id);
      slot.pending.delete(msg.id);
      slot.busy = false;
      if (pending) {
        if (msg.error !== undefined) pending.reject(new InferenceError(`ONNX Runtime: ${shorten(msg.error)}`));
        else if (msg.fallback !== undefined) pending.resolve(null);
        else {
          try {
            pending.resolve(toOutput((msg.outputs ?? {}) as Record<string, OrtOutput>, this.outputNames));
          } catch (err) {
            pending.reject(err as Error);
          }
        }
      }
      this.#pump();
    });
    const fail = (err: Error): void => {
      this.#failure ??= new InferenceError(`the ONNX Runtime worker stopped: ${err.message}`, { cause: err });
      for (const p of slot.pending.values()) p.reject(this.#failure);
      slot.pending.clear();
      for (const job of this.#queue.splice(0)) job.pending.reject(this.#failure);
      slot.busy = false;
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => {
      if (!this.#closed) fail(new Error(`exit code ${code}`));
    });
  }
}

interface WorkerReply {
  id?: number;
  type?: string;
  error?: string;
  fallback?: number;
  decodes?: boolean;
  message?: string;
  inputs?: string[];
  outputs?: Record<string, OrtOutput> | string[];
}

interface OrtOutput {
  data: Float32Array;
  dims: number[];
}

function startWorker(
  modelPath: string,
  ortPath: string,
  threads: number,
  executionProviders: string[],
  extra: Record<string, string> = {},
): Promise<{ slot: Slot; outputs: string[]; decodes: boolean }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(join(packageRoot, 'workers', 'ort-worker.cjs'), {
      workerData: { modelPath, ortPath, threads, executionProviders, addonRoot: packageRoot, ...extra },
    });
    const onMessage = (msg: WorkerReply): void => {
      if (msg.type === 'ready') {
        worker.off('message', onMessage);
        worker.off('error', onError);
        resolve({
          slot: { worker, busy: false, pending: new Map() },
          outputs: msg.outputs as string[],
          decodes: msg.decodes === true,
        });
      } else if (msg.type === 'fatal') {
        worker.off('error', onError);
        void worker.terminate();
        reject(new Error(msg.message ?? 'unknown error'));
      }
    };
    const onError = (err: Error): void => {
      void worker.terminate();
      reject(err);
    };
    worker.on('message', onMessage);
    worker.once('error', onError);
  });
}

function toOutput(outputs: Record<string, OrtOutput>, names: string[]): BackendOutput {
  const logits = outputs.logits ?? outputs[names[0] as string];
  const embedding = outputs.embedding ?? outputs[names[1] as string] ?? logits;
  if (!logits || !embedding || logits.dims.length !== 2 || embedding.dims.length !== 2) {
    throw new InferenceError(
      `the ONNX model must output logits [N, C] (and optionally embedding [N, D]); it has ${names.join(', ')}`,
    );
  }
  return {
    logits: logits.data,
    embedding: embedding.data,
    batchSize: logits.dims[0] as number,
    numClasses: logits.dims[1] as number,
    embeddingSize: embedding.dims[1] as number,
  };
}

/** ONNX Runtime messages repeat the file path and long status prefixes; keep the part that says what is wrong. */
function shorten(message: string): string {
  return (message.replace(/^\s*Error:\s*/, '').split('\n')[0] ?? '').slice(0, 500);
}
