/**
 * TensorRT through the native addon: the Backend over a deserialized plan (runs on the libuv pool, one execution
 * context and CUDA stream per concurrent run), the plan sidecar reader, and the builder call. Every entry point
 * answers BackendUnavailableError with the way out when the addon was built without TensorRT.
 */
import fs from 'node:fs/promises';

import { loadAddon } from '../binding/loader.js';
import type {
  NativeAddon,
  NativeTensorRTBuildOptions,
  NativeTensorRTBuildResult,
  NativeTensorRTEngine,
  NativeTensorRTEngineInfo,
  NativeTensorRTGpu,
  NativeTensorRTInfo,
} from '../binding/types.js';
import {
  BackendUnavailableError,
  CancelledError,
  DisposedError,
  ExportError,
  InferenceError,
  ModelLoadError,
  fromNativeError,
} from '../errors.js';
import type { Backend, BackendOutput, Precision } from './backend.js';
import { parseMetadata, type ModelMetadata } from '../data/metadata.js';
import { checkPlanCompatibility, type BatchProfile, type OnnxVariant, type PlanStamp } from './tensorrt-plan.js';

/** The TensorRT part of the addon's exports. */
export type TensorRTNative = Required<Pick<NativeAddon, 'tensorrtInfo' | 'loadTensorRTEngine' | 'buildTensorRTEngine'>>;

const NOT_COMPILED =
  'this build of the trt-flowers addon has no TensorRT: install TensorRT 10 or 11 and the CUDA toolkit, set ' +
  'TENSORRT_ROOT to its folder and run `npm run build:native` on a machine with an NVIDIA GPU';

/** The addon's TensorRT entry points; BackendUnavailableError saying how to get them when it has none. */
export function tensorrtNative(addon: Partial<NativeAddon> = loadAddon()): TensorRTNative {
  if (!addon.tensorrtInfo || !addon.loadTensorRTEngine || !addon.buildTensorRTEngine) {
    throw new BackendUnavailableError(NOT_COMPILED);
  }
  return addon as TensorRTNative;
}

/** Whether TensorRT can run here, and why not. Never throws. */
export interface TensorRTStatus {
  compiled: boolean;
  /** Compiled in and at least one CUDA GPU visible. */
  usable: boolean;
  /** TensorRT library version, '' when not compiled in. */
  version: string;
  gpus: NativeTensorRTGpu[];
  reason: string;
}

export function tensorrtStatus(addon?: Partial<NativeAddon>): TensorRTStatus {
  let native: TensorRTNative;
  try {
    native = tensorrtNative(addon ?? loadAddon());
  } catch {
    return { compiled: false, usable: false, version: '', gpus: [], reason: 'this build of the addon has no TensorRT' };
  }
  let info: NativeTensorRTInfo;
  try {
    info = native.tensorrtInfo();
  } catch (err) {
    return {
      compiled: true,
      usable: false,
      version: '',
      gpus: [],
      reason: `TensorRT is not usable: ${(err as Error).message}`,
    };
  }
  if (info.gpus.length === 0) {
    return {
      compiled: true,
      usable: false,
      version: info.libraryVersion,
      gpus: [],
      reason: `TensorRT ${info.libraryVersion} is compiled in but no CUDA GPU is visible${info.cudaError ? ` (${info.cudaError})` : ''}`,
    };
  }
  const first = info.gpus[0] as NativeTensorRTGpu;
  return {
    compiled: true,
    usable: true,
    version: info.libraryVersion,
    gpus: info.gpus,
    reason: `TensorRT ${info.libraryVersion} is compiled in and a GPU is present (${first.name})`,
  };
}

/** The TensorRT section of a plan's sidecar (`<plan>.json`). Keys are snake_case as in the file. */
export interface TensorRTSidecar {
  version: string;
  gpu: string;
  compute_capability: string;
  cuda: string;
  profile: BatchProfile;
  /** Which ONNX model TensorRT parsed. */
  onnx: OnnxVariant;
  onnx_file: string;
  precision_plan: string;
  strongly_typed: boolean;
  workspace_bytes: number | null;
  timing_cache: string | null;
  plan_bytes: number;
  layers: number;
}

/** What Engine.load needs from a plan's sidecar. */
export interface PlanSidecarInfo {
  metadata: ModelMetadata;
  stamp: PlanStamp;
  precision: Precision;
  sourceModel: string | undefined;
  profile: BatchProfile;
}

/**
 * Reads `<plan>.json` beside a TensorRT plan: the classes and preprocessing, the precision, and the TensorRT version
 * and GPU the plan was built with. Undefined when there is no sidecar; ModelLoadError when it is not a TensorRT
 * engine sidecar.
 */
export async function readPlanSidecar(plan: string): Promise<PlanSidecarInfo | undefined> {
  const file = `${plan}.json`;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return parsePlanSidecar(text, file);
}

export function parsePlanSidecar(text: string, file: string): PlanSidecarInfo {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ModelLoadError(`${file} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || raw.format !== 'trt-flowers-engine/1') {
    throw new ModelLoadError(`${file} is not a trt-flowers engine sidecar (format 'trt-flowers-engine/1')`);
  }
  if (raw.backend !== 'tensorrt') {
    throw new ModelLoadError(`${file} describes a ${String(raw.backend)} engine, not a TensorRT plan`);
  }
  const t = raw.tensorrt as Partial<TensorRTSidecar> | undefined;
  if (!t || typeof t.version !== 'string' || typeof t.gpu !== 'string' || typeof t.compute_capability !== 'string') {
    throw new ModelLoadError(`${file} does not record the TensorRT version and GPU the plan was built with`);
  }
  const precision = raw.precision;
  if (precision !== 'fp32' && precision !== 'fp16' && precision !== 'int8') {
    throw new ModelLoadError(`${file}: unknown precision ${JSON.stringify(precision)}`);
  }
  const profile = t.profile as BatchProfile | undefined;
  const metadata = parseMetadata(
    {
      classes: raw.classes,
      preprocessing: raw.preprocessing,
      precision,
      engine: 'tensorrt',
      ...(profile && profile.min === profile.max ? { static_batch: profile.max } : {}),
    },
    file,
  );
  return {
    metadata,
    stamp: { tensorrtVersion: t.version, gpuName: t.gpu, computeCapability: t.compute_capability },
    precision,
    sourceModel: typeof raw.source_model === 'string' ? raw.source_model : undefined,
    profile: profile ?? { min: 1, opt: 1, max: 1 },
  };
}

export interface TensorRTBackendOptions {
  /** 'auto' or 'cuda' (device 0), or 'cuda:N'. */
  device: string;
  /** Replay each batch size as a CUDA graph after its first run. Defaults to false. */
  cudaGraph?: boolean;
  /** Execution contexts that may run at once, each with its own CUDA stream and buffers. Defaults to 2. */
  contexts?: number;
  /** The precision the plan was built with (from its sidecar). Defaults to 'fp32'. */
  precision?: Precision;
  /** Where the plan was built (from its sidecar): checked against this machine before deserializing. */
  stamp?: PlanStamp;
  sourceModel?: string;
  /** The addon (tests pass a fake). Defaults to the loaded addon. */
  native?: TensorRTNative;
}

/** A TensorRT plan run by the native addon on the libuv pool. */
export class TensorRTBackend implements Backend {
  readonly name = 'tensorrt' as const;
  readonly precision: Precision;
  readonly maxBatchSize: number;
  readonly minBatchSize: number;
  readonly versions: Record<string, string>;
  /** TensorRT's warnings while deserializing the plan. */
  readonly warnings: string[];
  #engine: NativeTensorRTEngine | undefined;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  private constructor(
    engine: NativeTensorRTEngine,
    readonly device: string,
    precision: Precision,
    versions: Record<string, string>,
  ) {
    this.#engine = engine;
    const info = engine.info;
    this.precision = precision;
    this.maxBatchSize = info.maxBatch;
    this.minBatchSize = info.minBatch;
    this.versions = versions;
    this.warnings = [...info.warnings];
  }

  static async load(path: string, options: TensorRTBackendOptions): Promise<TensorRTBackend> {
    const native = options.native ?? tensorrtNative();
    const device = options.device === 'auto' ? 'cuda' : options.device;
    const m = /^cuda(?::(\d+))?$/.exec(device);
    if (!m) {
      throw new BackendUnavailableError(
        `TensorRT runs on CUDA GPUs: expected 'auto', 'cuda' or 'cuda:N' for \`device\` but received '${device}'`,
      );
    }
    const info = native.tensorrtInfo();
    if (info.gpus.length === 0) {
      throw new BackendUnavailableError(
        `TensorRT needs a CUDA GPU and none is visible${info.cudaError ? ` (${info.cudaError})` : ''}`,
      );
    }
    const index = Number(m[1] ?? 0);
    const gpu = info.gpus[index];
    if (!gpu) throw new RangeError(`device '${device}' does not exist: ${info.gpus.length} CUDA device(s) found`);
    if (options.stamp) {
      checkPlanCompatibility(
        path,
        options.stamp,
        {
          tensorrtVersion: info.libraryVersion,
          device: `cuda:${index}`,
          gpuName: gpu.name,
          computeCapability: gpu.computeCapability,
        },
        options.sourceModel,
      );
    }
    const stack = new Error().stack;
    let engine: NativeTensorRTEngine;
    try {
      engine = await native.loadTensorRTEngine(path, `cuda:${index}`, {
        cudaGraph: options.cudaGraph ?? false,
        contexts: options.contexts ?? 2,
      });
    } catch (err) {
      throw fromNativeError(err, stack);
    }
    return new TensorRTBackend(engine, `cuda:${index}`, options.precision ?? 'fp32', {
      tensorrt: info.libraryVersion,
      cuda: info.cudaRuntimeVersion,
      gpu: gpu.name,
    });
  }

  /** The native engine's description (batch range, I/O names, memory, CUDA graph state). */
  get info(): NativeTensorRTEngineInfo {
    if (!this.#engine) throw new DisposedError('this TensorRT engine');
    return this.#engine.info;
  }

  async run(data: Float32Array, shape: readonly [number, number, number, number]): Promise<BackendOutput> {
    const engine = this.#engine;
    if (!engine) throw new DisposedError('this TensorRT engine');
    const n = shape[0];
    // A profile whose minimum batch is above n: pad with zeros and drop the padded rows.
    const padded = n < this.minBatchSize;
    const input = padded ? new Float32Array((data.length / n) * this.minBatchSize) : data;
    if (padded) input.set(data);
    const runShape = padded ? [this.minBatchSize, shape[1], shape[2], shape[3]] : [...shape];
    const stack = new Error().stack;
    this.#inFlight++;
    try {
      const out = await engine.infer(input, runShape);
      if (!padded) return out;
      return {
        ...out,
        batchSize: n,
        logits: out.logits.slice(0, n * out.numClasses),
        embedding: out.embedding.slice(0, n * out.embeddingSize),
      };
    } catch (err) {
      const mapped = fromNativeError(err, stack);
      throw isUntyped(mapped) ? new InferenceError(`TensorRT: ${mapped.message}`, { cause: err }) : mapped;
    } finally {
      if (--this.#inFlight === 0) for (const wake of this.#idle.splice(0)) wake();
    }
  }

  /** Waits for runs in flight, then frees the engine, its contexts and GPU buffers. Idempotent. */
  async dispose(): Promise<void> {
    const engine = this.#engine;
    if (!engine) return;
    this.#engine = undefined;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    engine.dispose();
  }
}

/** Options of buildTensorRTPlan: the native options without the cancel flag and raw log callback. */
export interface TensorRTPlanBuild extends Omit<NativeTensorRTBuildOptions, 'cancel' | 'onLog' | 'logSeverity'> {
  signal?: AbortSignal;
  /** TensorRT's messages, prefixed with their severity. */
  onLog?: (line: string) => void;
  /** Most verbose severity passed to onLog: 'error', 'warning', 'info' or 'verbose'. Defaults to 'warning'. */
  logLevel?: 'error' | 'warning' | 'info' | 'verbose';
}

const SEVERITY = ['internal error', 'error', 'warning', 'info', 'verbose'];

/** A native failure with no more specific class (ERR_NATIVE). */
function isUntyped(err: Error): boolean {
  return (err as { code?: string }).code === 'ERR_NATIVE';
}

/**
 * Builds and writes a TensorRT plan (on the libuv pool; minutes for a large network). Rejects with CancelledError
 * when the signal aborts, ExportError when TensorRT cannot build the network, ModelLoadError (ONNX unparsable or not
 * a classifier), RangeError (a switch this TensorRT lacks), BackendUnavailableError, SaveError.
 */
export async function buildTensorRTPlan(
  options: TensorRTPlanBuild,
  native: TensorRTNative = tensorrtNative(),
): Promise<NativeTensorRTBuildResult> {
  const { signal, onLog, logLevel, ...rest } = options;
  if (signal?.aborted) throw new CancelledError('the TensorRT build was cancelled');
  const cancel = new Int32Array(1);
  const abort = (): void => {
    Atomics.store(cancel, 0, 1);
  };
  signal?.addEventListener('abort', abort, { once: true });
  const stack = new Error().stack;
  try {
    return await native.buildTensorRTEngine({
      ...rest,
      cancel,
      logSeverity: ['error', 'warning', 'info', 'verbose'].indexOf(logLevel ?? 'warning') + 1,
      ...(onLog
        ? { onLog: (severity: number, message: string) => onLog(`TensorRT ${SEVERITY[severity] ?? 'log'}: ${message}`) }
        : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw new CancelledError('the TensorRT build was cancelled');
    const mapped = fromNativeError(err, stack);
    if (mapped instanceof InferenceError || isUntyped(mapped)) {
      throw new ExportError(`TensorRT could not build the engine: ${mapped.message}`, { cause: err });
    }
    throw mapped;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}
