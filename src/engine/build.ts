import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { packageRoot } from '../binding/loader.js';
import { readSplitManifest } from '../data/split.js';
import { decodeResized, normalizeInto } from '../data/preprocess.js';
import { writeFileAtomic } from '../data/fsutil.js';
import { BackendUnavailableError, CancelledError, DataError, ExportError, ModelLoadError } from '../errors.js';
import { sha256File } from '../export/onnx.js';
import { runPythonStep } from '../export/python.js';
import { runtimeInfo } from '../runtime.js';
import type { Precision } from './backend.js';
import { tensorRange, type CalibrationMethod, type Range, type TensorStats } from './calibration.js';
import { argmax, runPaired } from './compare.js';
import { Engine } from './Engine.js';
import { listImages, spread } from './files.js';
import { parseMetadataJson, type ModelMetadata } from './metadata.js';
import { onnxRuntimeModule, OnnxRuntimeBackend } from './onnxruntime.js';
import { tensorrtStatus, type TensorRTSidecar, type TensorRTStatus } from './tensorrt.js';
import type { Int8Mode } from './tensorrt-plan.js';
import {
  calibrationModel,
  cpuNeedsReducedRange,
  decodeModel,
  encodeModel,
  metadataProps,
  opsetOf,
  planQuantization,
  prepareForQuantization,
  quantizeModel,
  setMetadataProps,
  type QuantizationPlan,
  type QuantizeReport,
} from './quantize.js';

export type BuildBackend = 'auto' | 'onnxruntime' | 'tensorrt';
export type GraphOptimization = 'basic' | 'extended';

/** Options of buildEngine. */
export interface BuildEngineOptions {
  /** The FP32 ONNX model (from export-onnx). */
  model: string;
  /**
   * Output engine file: an .onnx for ONNX Runtime, an .engine (or .plan) for TensorRT. Defaults to
   * `<model>.<precision>.onnx`, or `<model>.<precision>.engine` for TensorRT.
   */
  out?: string;
  /**
   * 'auto' uses TensorRT when the addon has it and a GPU is present, else ONNX Runtime (the log says which and why).
   * Defaults to 'auto'.
   */
  backend?: BuildBackend;
  precision: Precision;
  /**
   * Calibration photos (int8): a folder (searched recursively; `calibrationCount` taken evenly), a list of files,
   * or a training run's split: { dataDir, splitFile } (its train split).
   */
  calibration?: string | readonly string[] | { dataDir: string; splitFile: string };
  /** Calibration photos used. Defaults to 500. */
  calibrationCount?: number;
  /** How activation ranges are chosen. Defaults to 'entropy'. */
  method?: CalibrationMethod;
  /** Percentile for method 'percentile'. Defaults to 99.99. */
  percentile?: number;
  /** Nodes kept in float: names, 'first-conv', 'classifier'. Defaults to none. */
  keepFloat?: readonly string[];
  /** Photos on which the built engine is compared with the FP32 model (top-1 agreement, logit cosine). */
  verifyImages?: readonly string[];
  /**
   * A labelled split (e.g. the training run's test split) on which the engine's and the FP32 model's accuracy are
   * measured side by side; labels index the model's classes.
   */
  evaluate?: { images: readonly string[]; labels: readonly number[]; name: string };
  /** Run the ONNX checker (Python onnx) on the Q/DQ model. Defaults to true. */
  check?: boolean;
  /**
   * 7-bit int8 weights, for x86 CPUs without VNNI (their uint8 x int8 kernels saturate with full-range weights).
   * Defaults to 'auto': detected from /proc/cpuinfo.
   */
  reduceRange?: boolean | 'auto';
  /** Intra-op threads for calibration. Defaults to the cores. */
  threads?: number;
  /** TensorRT: the batch the engine is tuned for (the profile's kOPT). Defaults to 8 (at most maxBatch). */
  batch?: number;
  /** TensorRT: the largest batch the engine runs (kMAX). Defaults to the larger of 32 and `batch`. */
  maxBatch?: number;
  /** TensorRT: the smallest batch the engine runs (kMIN); smaller batches are padded. Defaults to 1. */
  minBatch?: number;
  /** TensorRT: the CUDA device that builds (and will run) the engine, 'cuda' or 'cuda:N'. Defaults to 'cuda'. */
  device?: string;
  /** TensorRT: builder workspace limit in MiB. Defaults to TensorRT's own limit (the device's memory). */
  workspaceMiB?: number;
  /**
   * TensorRT: timing cache file reused across builds (read when present, updated after each build), or false for
   * none. Defaults to `tensorrt.timing.cache` in the output folder.
   */
  timingCache?: string | false;
  /** TensorRT: builder optimisation level 0..5. Defaults to TensorRT's (3). */
  optimizationLevel?: number;
  /**
   * ONNX Runtime fp32: 'extended' writes ONNX Runtime's fastest graph, which uses its own com.microsoft operators
   * (FusedConv and the like) that only ONNX Runtime runs; 'basic' keeps standard ONNX operators only (constant
   * folding and Conv+BatchNorm style fusions), a model any ONNX runtime or TensorRT takes. Defaults to 'extended'.
   */
  graphOptimization?: GraphOptimization;
  /**
   * TensorRT INT8: 'qdq' builds from our calibrator's symmetric Q/DQ model (TensorRT 10 and 11); 'calibrator' is
   * TensorRT 10's legacy IInt8EntropyCalibrator2 fed by our preprocessing, with its calibration cache. Defaults to
   * 'qdq'.
   */
  int8Mode?: Int8Mode;
  /** TensorRT 'calibrator' mode: ignore an existing `<base>.calibration.cache` and calibrate again. Defaults to false. */
  recalibrate?: boolean;
  signal?: AbortSignal;
  onLog?: (line: string) => void;
}

/** The JSON sidecar written beside every engine (<out>.json). */
export interface EngineSidecar {
  format: 'trt-flowers-engine/1';
  backend: 'onnxruntime' | 'tensorrt';
  precision: Precision;
  file: string;
  input: { name: string; shape: [number | 'batch', number, number, number]; minBatch: number; maxBatch: number | null };
  classes: string[];
  preprocessing: ModelMetadata['preprocessing'];
  source_model: string;
  source_sha256: string;
  calibration: {
    method: CalibrationMethod;
    percentile: number | null;
    images: number;
    skipped: number;
    source: string;
    tensors: number;
    table: string;
    tensorrt_cache: string;
  } | null;
  quantization: QuantizeReport | null;
  /**
   * The operator domains the engine uses ('' is standard ONNX) and whether it stays a standard ONNX model; an
   * engine with com.microsoft operators runs on ONNX Runtime only. null for TensorRT plans.
   */
  operators: OperatorSummary | null;
  verification: { images: number; top1_agreement: number; min_logit_cosine: number; mean_logit_cosine: number } | null;
  /** Accuracy of the engine and of the FP32 model on a labelled split. */
  evaluation?: {
    split: string;
    images: number;
    skipped: number;
    fp32_accuracy: number;
    engine_accuracy: number;
    top1_agreement: number;
  } | null;
  versions: Record<string, string>;
  /** TensorRT engines: the TensorRT version and GPU that built the plan (a plan loads only there), profile, switches. */
  tensorrt?: TensorRTSidecar;
  built_at: string;
  seconds: number;
}

export interface BuildEngineResult extends EngineSidecar {
  sidecar: string;
}

/** What a written ONNX engine needs of the runtime that loads it. */
export interface OperatorSummary {
  /** Operator domains used, '' (standard ONNX) first. */
  domains: string[];
  /** True when every node is a standard ONNX operator ('' or 'ai.onnx'). */
  portable: boolean;
  /** 'any ONNX runtime', or 'onnxruntime' when the model uses ONNX Runtime's own operators. */
  runtime: 'any' | 'onnxruntime';
  /** The non-standard operators, as 'domain:OpType'. */
  custom_ops: string[];
}

/** The operator domains of a decoded ONNX model. */
export function operatorSummary(model: ReturnType<typeof decodeModel>): OperatorSummary {
  const domains = new Set<string>();
  const custom = new Set<string>();
  for (const node of model.graph?.node ?? []) {
    const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
    domains.add(domain);
    if (domain !== '') custom.add(`${domain}:${node.opType ?? '?'}`);
  }
  const sorted = [...domains].sort();
  const portable = custom.size === 0;
  return { domains: sorted, portable, runtime: portable ? 'any' : 'onnxruntime', custom_ops: [...custom].sort() };
}

/** The sidecar path of an engine file. */
export function sidecarPath(engineFile: string): string {
  return `${engineFile}.json`;
}

/**
 * Picks the backend for 'auto' and says why: TensorRT when the addon has it and CUDA sees a GPU (asked through
 * TensorRT's own CUDA runtime, not libtorch's, which may be a CPU build), else ONNX Runtime.
 */
export function chooseBackend(
  requested: BuildBackend,
  status: TensorRTStatus = tensorrtStatus(),
): { backend: 'onnxruntime' | 'tensorrt'; reason: string } {
  if (requested === 'tensorrt') {
    if (!status.compiled) {
      throw new BackendUnavailableError(
        'TensorRT engines need the addon built with TensorRT (install TensorRT 10 or 11, set TENSORRT_ROOT and run ' +
          '`npm run build:native` on a machine with an NVIDIA GPU); use --backend onnxruntime on this machine',
      );
    }
    if (!status.usable) throw new BackendUnavailableError(`TensorRT engines need a CUDA GPU: ${status.reason}`);
    return { backend: 'tensorrt', reason: `requested; ${status.reason}` };
  }
  if (requested === 'onnxruntime') return { backend: 'onnxruntime', reason: 'requested' };
  if (status.usable) return { backend: 'tensorrt', reason: status.reason };
  return { backend: 'onnxruntime', reason: `${status.reason}: ONNX Runtime on the CPU` };
}

/**
 * `<model>.<precision>.onnx`, or `.engine` for TensorRT; an fp32 model with ONNX Runtime's own operators (graph
 * optimisation 'extended') is `<model>.fp32.ort.onnx`, so its name says that only ONNX Runtime runs it.
 */
export function defaultOutput(
  model: string,
  precision: Precision,
  backend: 'onnxruntime' | 'tensorrt',
  graphOptimization: GraphOptimization = 'extended',
): string {
  const ortOnly = backend === 'onnxruntime' && precision === 'fp32' && graphOptimization === 'extended';
  return model.replace(
    /(\.onnx)?$/i,
    `.${precision}${ortOnly ? '.ort' : ''}.${backend === 'tensorrt' ? 'engine' : 'onnx'}`,
  );
}

/** An FP32 ONNX model read for building: the decoded model, its metadata_props and trt-flowers metadata. */
export interface SourceModel {
  model: ReturnType<typeof decodeModel>;
  props: Record<string, string>;
  metadata: ModelMetadata;
  /** The file's sha256 (hex). */
  sha: string;
  /** The batch of a static-batch export, else null. */
  staticBatch: number | null;
}

/**
 * Reads and decodes the FP32 ONNX model an engine is built from, with its trt-flowers metadata. Rejects with
 * ModelLoadError (missing, corrupt, or exported without trt-flowers metadata).
 */
export async function readSourceModel(modelPath: string): Promise<SourceModel> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(modelPath);
  } catch {
    throw new ModelLoadError(`model file '${modelPath}' not found`);
  }
  const model = decodeModel(bytes, `'${modelPath}'`);
  const props = metadataProps(model);
  if (!props.trt_flowers) {
    throw new ModelLoadError(
      `'${modelPath}' has no trt-flowers metadata (classes, preprocessing): export it with \`trt-flowers export-onnx\``,
    );
  }
  const metadata = parseMetadataJson(props.trt_flowers, modelPath);
  if (metadata.engine !== undefined) {
    const what = metadata.portable === false ? ", with ONNX Runtime's own operators," : '';
    throw new ModelLoadError(
      `'${modelPath}' is already a built ${String(metadata.precision ?? '')} ${String(metadata.engine)} engine${what} ` +
        'not an exported model: build engines from the FP32 model of `trt-flowers export-onnx`',
    );
  }
  const sha = await sha256File(modelPath);
  const staticBatch = typeof metadata.static_batch === 'number' ? metadata.static_batch : null;
  return { model, props, metadata, sha, staticBatch };
}

/**
 * Builds an inference engine from an FP32 ONNX model. ONNX Runtime (CPU): fp32 writes the graph-optimised model,
 * int8 calibrates on real photos and writes a Q/DQ model, a calibration table (JSON) and a TensorRT calibration
 * cache. Every engine gets a JSON sidecar. Writes are atomic. Rejects with ModelLoadError (corrupt model),
 * DataError (no usable calibration photos), BackendUnavailableError, RangeError, CancelledError.
 */
export async function buildEngine(options: BuildEngineOptions): Promise<BuildEngineResult> {
  const started = performance.now();
  const log = options.onLog ?? (() => undefined);
  const precision = options.precision;
  if (!['fp32', 'fp16', 'int8'].includes(precision)) {
    throw new RangeError(`Expected fp32, fp16 or int8 for precision but received '${String(precision)}'`);
  }
  const { backend, reason } = chooseBackend(options.backend ?? 'auto');
  log(`backend: ${backend} (${reason})`);
  const graphOptimization = options.graphOptimization ?? 'extended';
  if (graphOptimization !== 'basic' && graphOptimization !== 'extended') {
    throw new RangeError(
      `Expected basic or extended for graphOptimization but received '${String(graphOptimization as unknown)}'`,
    );
  }
  const out = options.out ?? defaultOutput(options.model, precision, backend, graphOptimization);
  if (backend === 'tensorrt') {
    const { buildTensorRTEngine } = await import('./build-tensorrt.js');
    return buildTensorRTEngine({ ...options, out }, started, log);
  }
  if (precision === 'fp16') {
    throw new RangeError(
      'fp16 engines are built by TensorRT on a CUDA GPU; ONNX Runtime on CPU has no fast fp16 kernels. Use ' +
        '--precision fp32 or int8 here',
    );
  }
  if (!out.toLowerCase().endsWith('.onnx')) {
    throw new RangeError(`ONNX Runtime engines are .onnx files: expected --output-path ending in .onnx, got '${out}'`);
  }
  const { model, props, metadata, sha, staticBatch } = await readSourceModel(options.model);
  const ort = onnxRuntimeModule();
  const versions: Record<string, string> = { onnxruntime: ort.version, libtorch: runtimeInfo().torchVersion };
  const size = metadata.preprocessing.size;
  const dir = path.dirname(path.resolve(out));
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(out)}.building-${process.pid}.onnx`);

  let calibration: EngineSidecar['calibration'] = null;
  let quantization: QuantizeReport | null = null;
  let operators: OperatorSummary;
  let verification: EngineSidecar['verification'] = null;
  let evaluation: NonNullable<EngineSidecar['evaluation']> | null = null;
  const base = out.replace(/\.onnx$/i, '');
  try {
    if (precision === 'fp32') {
      log(`optimising the graph with ONNX Runtime (level: ${graphOptimization})`);
      const be = await OnnxRuntimeBackend.load(options.model, {
        device: 'cpu',
        graphOptimizationLevel: graphOptimization,
        optimizedModelFilePath: tmp,
      });
      await be.dispose();
      // ONNX Runtime's optimised graph does not keep metadata_props: put them back.
      const optimized = decodeModel(await fs.readFile(tmp), 'the optimised model');
      operators = operatorSummary(optimized);
      if (!operators.portable) {
        log(
          `ONNX Runtime only: the optimised graph uses ${operators.custom_ops.join(', ')} ` +
            '(--graph-optimization basic keeps standard ONNX operators)',
        );
      }
      setMetadataProps(optimized, {
        ...props,
        trt_flowers: JSON.stringify({
          ...metadata,
          precision: 'fp32',
          engine: 'onnxruntime',
          graph_optimization: graphOptimization,
          portable: operators.portable,
          runtime: operators.runtime,
          op_domains: operators.domains,
        }),
      });
      await fs.writeFile(tmp, encodeModel(optimized));
    } else {
      const { prep, plan, stats, used, skipped, source, method, percentile, ranges } = await calibrateRanges(
        model,
        metadata,
        staticBatch,
        options,
        log,
      );
      const reduceRange =
        options.reduceRange === undefined || options.reduceRange === 'auto'
          ? cpuNeedsReducedRange(await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => ''))
          : options.reduceRange;
      if (reduceRange) log('7-bit weights: this CPU has no VNNI (AVX2 uint8 x int8 sums would saturate)');
      quantization = { ...quantizeModel(model, plan, ranges, { reduceRange }), ...prep };
      calibration = calibrationSummary(base, { method, percentile, used, skipped, source, ranges });
      operators = operatorSummary(model);
      const engineMeta = {
        ...metadata,
        precision: 'int8',
        engine: 'onnxruntime',
        portable: operators.portable,
        runtime: operators.runtime,
        op_domains: operators.domains,
        calibration: { method, images: used },
        source_model_sha256: sha,
      };
      setMetadataProps(model, {
        ...props,
        trt_flowers: JSON.stringify(engineMeta),
        precision: 'int8',
      });
      model.producerName = 'trt-flowers';
      await fs.writeFile(tmp, encodeModel(model));
      if (options.check !== false) {
        log('running the ONNX checker');
        await runPythonStep('check_onnx.py', [tmp], options.signal ? { signal: options.signal } : {});
      }
      await writeCalibrationFiles(calibration, { method, percentile, used, ranges, stats });
    }

    if (options.verifyImages && options.verifyImages.length > 0) {
      log(`comparing with the FP32 model on ${options.verifyImages.length} photos`);
      await using reference = await Engine.load(options.model, { backend: 'onnxruntime', device: 'cpu' });
      await using built = await Engine.load(tmp, { backend: 'onnxruntime', device: 'cpu' });
      verification = await agreement(reference, built, options.verifyImages);
    } else if (!options.evaluate) {
      // Always prove the engine loads and runs.
      await using built = await Engine.load(tmp, { backend: 'onnxruntime', device: 'cpu' });
      void built;
    }
    if (options.evaluate) {
      log(`measuring accuracy on the ${options.evaluate.name} split (${options.evaluate.images.length} photos)`);
      await using reference = await Engine.load(options.model, { backend: 'onnxruntime', device: 'cpu' });
      await using built = await Engine.load(tmp, { backend: 'onnxruntime', device: 'cpu' });
      evaluation = await splitAccuracy(reference, built, options.evaluate);
    }
    await fs.rename(tmp, out);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  const sidecar: EngineSidecar = {
    format: 'trt-flowers-engine/1',
    backend: 'onnxruntime',
    precision,
    file: path.resolve(out),
    input: {
      name: 'input',
      shape: [staticBatch ?? 'batch', 3, size, size],
      minBatch: staticBatch ?? 1,
      maxBatch: staticBatch,
    },
    classes: metadata.classes,
    preprocessing: metadata.preprocessing,
    source_model: path.resolve(options.model),
    source_sha256: sha,
    calibration,
    quantization,
    operators,
    verification,
    evaluation,
    versions,
    built_at: new Date().toISOString(),
    seconds: (performance.now() - started) / 1000,
  };
  const sidecarFile = sidecarPath(out);
  await writeFileAtomic(sidecarFile, `${JSON.stringify(sidecar, null, 2)}\n`);
  return { ...sidecar, sidecar: path.resolve(sidecarFile) };
}

function statSummary(s: TensorStats): { observed_min: number; observed_max: number } {
  return { observed_min: s.min, observed_max: s.max };
}

/** The calibrated activation ranges of a model, and what produced them. */
export interface CalibratedRanges {
  prep: { identitiesRemoved: number; reduceMeansRewritten: number };
  plan: QuantizationPlan;
  stats: Record<string, TensorStats>;
  used: number;
  skipped: number;
  source: string;
  method: CalibrationMethod;
  percentile: number;
  ranges: Map<string, Range>;
}

/**
 * Rewrites `model` for quantisation (in place), plans its Q/DQ pairs and calibrates the range of every planned
 * tensor on real photos with ONNX Runtime (CPU). Shared by the ONNX Runtime and TensorRT INT8 builds. Rejects with
 * RangeError (opset < 13), DataError (no usable photos), CancelledError.
 */
export async function calibrateRanges(
  model: ReturnType<typeof decodeModel>,
  metadata: ModelMetadata,
  staticBatch: number | null,
  options: BuildEngineOptions,
  log: (line: string) => void,
): Promise<CalibratedRanges> {
  if (opsetOf(model) < 13) {
    throw new RangeError(
      `INT8 needs an ONNX model of opset 13 or later ('${options.model}' is opset ${opsetOf(model)}): re-export it with --opset 13 or later`,
    );
  }
  const prep = prepareForQuantization(model);
  const plan = planQuantization(model, options.keepFloat ?? []);
  log(
    `Q/DQ plan: ${plan.calibrated.length} tensors calibrated, ${plan.shared.size} sharing their input's scale, ` +
      `${plan.weighted.length} weighted layers in int8${plan.keptFloat.length ? `, kept in float: ${plan.keptFloat.join(', ')}` : ''}`,
  );
  const { images, source } = await calibrationImages(options);
  const method = options.method ?? 'entropy';
  const percentile = options.percentile ?? 99.99;
  const { stats, used, skipped } = await collectStats({
    modelBytes: calibrationModel(encodeModel(model), plan.calibrated, false),
    names: plan.calibrated,
    images,
    metadata,
    staticBatch,
    threads: options.threads ?? os.availableParallelism(),
    log,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (used === 0) {
    throw new DataError(`no usable calibration photos in ${source} (${skipped} could not be decoded)`);
  }
  log(`computing ${method} ranges for ${plan.calibrated.length} tensors`);
  const ranges = new Map<string, Range>();
  for (const name of plan.calibrated) {
    const s = stats[name];
    if (!s) throw new Error(`no statistics for '${name}'`);
    ranges.set(name, tensorRange(s, method, percentile));
    await new Promise((resolve) => setImmediate(resolve)); // entropy search is CPU work: let the loop turn
  }
  return { prep, plan, stats, used, skipped, source, method, percentile, ranges };
}

/** The sidecar's calibration entry for an engine whose files start with `base`. */
export function calibrationSummary(
  base: string,
  c: Pick<CalibratedRanges, 'method' | 'percentile' | 'used' | 'skipped' | 'source' | 'ranges'>,
): NonNullable<EngineSidecar['calibration']> {
  return {
    method: c.method,
    percentile: c.method === 'percentile' ? c.percentile : null,
    images: c.used,
    skipped: c.skipped,
    source: c.source,
    tensors: c.ranges.size,
    table: path.resolve(`${base}.calibration.json`),
    tensorrt_cache: path.resolve(`${base}.calibration.cache`),
  };
}

/** Writes the calibration table (JSON) and the TensorRT calibration cache named in `summary`. */
export async function writeCalibrationFiles(
  summary: NonNullable<EngineSidecar['calibration']>,
  c: Pick<CalibratedRanges, 'method' | 'percentile' | 'used' | 'ranges' | 'stats'>,
): Promise<void> {
  await writeFileAtomic(
    summary.table,
    `${JSON.stringify(
      {
        method: c.method,
        percentile: c.method === 'percentile' ? c.percentile : null,
        images: c.used,
        tensors: Object.fromEntries(
          [...c.ranges].map(([k, r]) => [k, { min: r.min, max: r.max, ...statSummary(c.stats[k]!) }]),
        ),
      },
      null,
      1,
    )}\n`,
  );
  await writeFileAtomic(summary.tensorrt_cache, tensorRtCache(c.ranges));
}

/**
 * TensorRT's calibration cache: a header line, then `tensor: <float32 scale as big-endian hex>` per tensor, the
 * scale being the symmetric int8 one (threshold / 127).
 */
export function tensorRtCache(ranges: ReadonlyMap<string, Range>): string {
  const lines = ['TRT-8600-EntropyCalibration2'];
  const buf = Buffer.alloc(4);
  for (const [name, r] of ranges) {
    const scale = Math.max(Math.abs(r.min), Math.abs(r.max)) / 127;
    buf.writeFloatBE(scale > 0 ? scale : 1 / 127, 0);
    lines.push(`${name}: ${buf.toString('hex')}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function calibrationImages(options: BuildEngineOptions): Promise<{ images: string[]; source: string }> {
  const count = options.calibrationCount ?? 500;
  const c = options.calibration;
  if (c === undefined) {
    throw new DataError(
      'INT8 needs calibration photos: pass --calibration-dir DIR (a folder of real photos) or --data-dir with a ' +
        "training run's split (--run RUN_DIR)",
    );
  }
  if (typeof c === 'string') return { images: spread(await listImages(c), count), source: `'${c}'` };
  if (Array.isArray(c)) return { images: spread(c as string[], count), source: 'the given files' };
  const { dataDir, splitFile } = c as { dataDir: string; splitFile: string };
  const split = await readSplitManifest(splitFile);
  const train = split.train.map((item) => path.join(dataDir, item.path));
  return { images: spread(train, count), source: `the train split of ${splitFile}` };
}

interface CollectOptions {
  modelBytes: Uint8Array;
  names: string[];
  images: string[];
  metadata: ModelMetadata;
  staticBatch: number | null;
  threads: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Preprocesses the calibration photos once and runs the two statistics passes in a worker thread. */
async function collectStats(
  o: CollectOptions,
): Promise<{ stats: Record<string, TensorStats>; used: number; skipped: number }> {
  const { size, resize } = o.metadata.preprocessing;
  const per = 3 * size * size;
  const batch = o.staticBatch ?? 8;
  const tensors: Float32Array[] = [];
  let skipped = 0;
  let pending: Float32Array[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    // A static-batch model needs full batches: repeat the last photos to fill the final one.
    while (o.staticBatch && pending.length < o.staticBatch) pending.push(pending[pending.length - 1]!);
    const data = new Float32Array(pending.length * per);
    pending.forEach((p, i) => data.set(p, i * per));
    tensors.push(data);
    pending = [];
  };
  let next = 0;
  const decoded: (Float32Array | null)[] = new Array(o.images.length).fill(null);
  const work = async (): Promise<void> => {
    while (next < o.images.length) {
      if (o.signal?.aborted) throw new CancelledError();
      const i = next++;
      try {
        const hwc = await decodeResized(o.images[i]!, { size, resize });
        const out = new Float32Array(per);
        normalizeInto(hwc, out, 0, o.metadata.preprocessing);
        decoded[i] = out;
      } catch {
        skipped++;
      }
    }
  };
  o.log(`preprocessing ${o.images.length} calibration photos (${size}px)`);
  await Promise.all(Array.from({ length: 4 }, work));
  for (const d of decoded) {
    if (!d) continue;
    pending.push(d);
    if (pending.length === batch) flush();
  }
  flush();
  const used = decoded.filter((d) => d !== null).length;
  if (used === 0) return { stats: {}, used, skipped };

  const tmpModel = path.join(os.tmpdir(), `trt-flowers-calibration-${process.pid}-${Date.now()}.onnx`);
  await fs.writeFile(tmpModel, o.modelBytes);
  const worker = new Worker(path.join(packageRoot, 'workers', 'calibrate-worker.cjs'), {
    workerData: {
      ortPath: onnxRuntimeModule().path,
      modelPath: tmpModel,
      names: o.names,
      bins: 2048,
      threads: o.threads,
    },
  });
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let fatal: Error | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: { type?: string; id?: number; error?: string; message?: string }) => {
      if (msg.type === 'ready') return resolve();
      if (msg.type === 'fatal')
        return reject(new ModelLoadError(`ONNX Runtime cannot load the calibration model: ${msg.message}`));
      const w = waiting.get(msg.id ?? -1);
      if (!w) return;
      waiting.delete(msg.id!);
      if (msg.error) w.reject(new ExportError(`calibration failed: ${msg.error}`));
      else w.resolve(msg);
    });
    worker.on('error', (err) => {
      fatal = err;
      reject(err);
      for (const w of waiting.values()) w.reject(err);
    });
  });
  const call = (message: Record<string, unknown>): Promise<unknown> => {
    if (fatal) return Promise.reject(fatal);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  };
  try {
    await ready;
    for (const phase of ['minmax', 'hist'] as const) {
      const t0 = performance.now();
      for (const [i, data] of tensors.entries()) {
        if (o.signal?.aborted) throw new CancelledError();
        await call({ phase, data, shape: [data.length / per, 3, size, size] });
        if (i % 8 === 7 || i === tensors.length - 1) {
          o.log(
            `calibration ${phase === 'minmax' ? 'pass 1/2 (ranges)' : 'pass 2/2 (histograms)'}: ${Math.min(used, (i + 1) * batch)}/${used} photos`,
          );
        }
      }
      o.log(`pass ${phase} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const reply = (await call({ type: 'stats' })) as { stats: Record<string, TensorStats> };
    return { stats: reply.stats, used, skipped };
  } finally {
    await worker.terminate();
    await fs.rm(tmpModel, { force: true });
  }
}

/** Accuracy of a reference and a built engine on labelled photos (unreadable photos skipped and counted). */
async function splitAccuracy(
  reference: Engine,
  built: Engine,
  split: NonNullable<BuildEngineOptions['evaluate']>,
): Promise<NonNullable<EngineSidecar['evaluation']>> {
  let images = 0;
  let refCorrect = 0;
  let builtCorrect = 0;
  let agree = 0;
  const k = reference.info.classes.length;
  const { skipped } = await runPaired(
    reference,
    built,
    split.images,
    { batchSize: 32, skipUnreadable: true },
    ({ indices, a: ra, b: rb }) => {
      for (const [j, i] of indices.entries()) {
        const pa = argmax(ra.logits.subarray(j * k, (j + 1) * k));
        const pb = argmax(rb.logits.subarray(j * k, (j + 1) * k));
        images++;
        if (pa === split.labels[i]) refCorrect++;
        if (pb === split.labels[i]) builtCorrect++;
        if (pa === pb) agree++;
      }
    },
  );
  return {
    split: split.name,
    images,
    skipped,
    fp32_accuracy: images ? refCorrect / images : 0,
    engine_accuracy: images ? builtCorrect / images : 0,
    top1_agreement: images ? agree / images : 0,
  };
}

/** Top-1 agreement and logit cosine similarity of two engines on the same photos. */
export async function agreement(
  a: Engine,
  b: Engine,
  images: readonly string[],
): Promise<NonNullable<EngineSidecar['verification']>> {
  const k = a.info.classes.length;
  let agree = 0;
  let minCos = 1;
  let sumCos = 0;
  // One batch: the engines split it by their own batch size.
  await runPaired(a, b, images, { batchSize: images.length }, ({ a: ra, b: rb }) => {
    for (let n = 0; n < images.length; n++) {
      const x = ra.logits.subarray(n * k, (n + 1) * k);
      const y = rb.logits.subarray(n * k, (n + 1) * k);
      let dot = 0;
      let nx = 0;
      let ny = 0;
      for (let i = 0; i < k; i++) {
        dot += x[i]! * y[i]!;
        nx += x[i]! * x[i]!;
        ny += y[i]! * y[i]!;
      }
      const cos = dot / Math.sqrt(nx * ny || 1);
      minCos = Math.min(minCos, cos);
      sumCos += cos;
      if (argmax(x) === argmax(y)) agree++;
    }
  });
  return {
    images: images.length,
    top1_agreement: agree / images.length,
    min_logit_cosine: minCos,
    mean_logit_cosine: sumCos / images.length,
  };
}
