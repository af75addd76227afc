/** Calibration for INT8 engines: activation statistics of the FP32 model on real photos, ranges, table and cache files. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { packageRoot } from '../util/paths.js';
import { readSplitManifest } from '../data/split.js';
import { decodeResized, normalizeInto } from '../data/preprocess.js';
import { writeFileAtomic } from '../util/fs.js';
import { CancelledError, DataError, ExportError, ModelLoadError } from '../errors.js';
import { decodeModel, encodeModel, opsetOf } from '../onnx/model.js';
import { tensorRange, type CalibrationMethod, type Range, type TensorStats } from './calibration.js';
import { listImages, spread } from '../data/files.js';
import { type ModelMetadata } from '../data/metadata.js';
import { onnxRuntimeModule } from '../engine/onnxruntime.js';
import { calibrationModel, planQuantization, prepareForQuantization, type QuantizationPlan } from './quantize.js';
import type { BuildEngineOptions, EngineSidecar } from './options.js';

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
