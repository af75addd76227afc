/**
 * The TensorRT half of buildEngine: prepares the ONNX model the precision needs (the FP32 model, our FP16
 * conversion for TensorRT 11, or the symmetric Q/DQ model from our calibrator), builds the plan natively with an
 * optimisation profile over the batch and a shared timing cache, proves it loads and runs, compares it with the
 * FP32 model on photos, and writes the plan and its sidecar (TensorRT version and GPU included) atomically.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { decodeResized, normalizeInto } from '../data/preprocess.js';
import { mapLimit, writeFileAtomic } from '../util/fs.js';
import { DataError } from '../errors.js';
import { runPythonStep } from '../util/python.js';
import { runtimeInfo } from '../binding/runtime.js';
import { calibrateRanges, calibrationImages, calibrationSummary, writeCalibrationFiles } from './calibrate.js';
import {
  sidecarPath,
  sourceFields,
  type BuildEngineOptions,
  type BuildEngineResult,
  type EngineSidecar,
} from './options.js';
import { readSourceModel } from './source.js';
import { agreement } from './verify.js';
import { Engine } from '../engine/Engine.js';
import { convertToFloat16 } from './fp16.js';
import type { ModelMetadata } from '../data/metadata.js';
import { onnxRuntimeModule } from '../engine/onnxruntime.js';
import { encodeModel, setMetadataProps } from '../onnx/model.js';
import type { QuantizeReport } from './quantize.js';
import { quantizeForTensorRT } from './quantize-tensorrt.js';
import { buildTensorRTPlan, tensorrtNative, type TensorRTSidecar } from '../engine/tensorrt.js';
import { chooseBatchProfile, choosePrecisionPlan, parseTensorRTVersion } from '../engine/tensorrt-plan.js';

const PLAN_EXT = /\.(engine|plan|trt)$/i;

/** Builds a TensorRT engine; called by buildEngine once the backend is TensorRT. Rejections as buildEngine's. */
export async function buildTensorRTEngine(
  options: BuildEngineOptions & { out: string },
  started: number,
  log: (line: string) => void,
): Promise<BuildEngineResult> {
  const out = options.out;
  const precision = options.precision;
  if (!PLAN_EXT.test(out)) {
    throw new RangeError(
      `TensorRT engines are .engine files: expected --output-path ending in .engine or .plan, got '${out}'`,
    );
  }
  const native = tensorrtNative();
  const info = native.tensorrtInfo();
  const major = parseTensorRTVersion(info.headerVersion)[0];
  const device = options.device ?? 'cuda';
  const index = Number(/^cuda(?::(\d+))?$/.exec(device)?.[1] ?? (device === 'cuda' ? 0 : NaN));
  const gpu = info.gpus[index];
  if (!gpu)
    throw new RangeError(`Expected 'cuda' or 'cuda:N' of an existing GPU for \`device\` but received '${device}'`);

  const { model, props, metadata, sha, staticBatch } = await readSourceModel(options.model);
  const size = metadata.preprocessing.size;
  const profile = chooseBatchProfile({
    batch: options.batch,
    maxBatch: options.maxBatch,
    minBatch: options.minBatch,
    staticBatch,
  });
  const switches = choosePrecisionPlan(precision, major, options.int8Mode ?? 'qdq');
  log(
    `TensorRT ${info.libraryVersion} on ${gpu.name} (compute ${gpu.computeCapability}): ${switches.description}; ` +
      `batch ${profile.min}..${profile.max}, tuned for ${profile.opt}`,
  );

  const dir = path.dirname(path.resolve(out));
  await fs.mkdir(dir, { recursive: true });
  const base = out.replace(PLAN_EXT, '');
  const tmpPlan = path.join(dir, `.${path.basename(out)}.building-${process.pid}.engine`);
  const temporary = [tmpPlan, sidecarPath(tmpPlan)];
  const versions: Record<string, string> = {
    tensorrt: info.libraryVersion,
    cuda: info.cudaRuntimeVersion,
    cuda_driver: info.cudaDriverVersion,
    libtorch: runtimeInfo().torchVersion,
  };
  let onnxFile = options.model;
  let calibration: EngineSidecar['calibration'] = null;
  let quantization: QuantizeReport | null = null;
  let calibrator: Parameters<typeof buildTensorRTPlan>[0]['calibration'];
  try {
    if (switches.onnx === 'fp16') {
      const report = convertToFloat16(model);
      setMetadataProps(model, {
        ...props,
        trt_flowers: JSON.stringify({ ...metadata, precision: 'fp16', source_model_sha256: sha }),
        precision: 'fp16',
      });
      onnxFile = `${base}.fp16.onnx`;
      await writeFileAtomic(onnxFile, encodeModel(model));
      log(
        `FP16 ONNX model ${onnxFile}: ${report.initializersConverted} initializers and ${report.constantsConverted} ` +
          `constants in float16, ${report.castsInserted} casts` +
          (report.keptFloat.length ? `, kept in float32: ${report.keptFloat.join(', ')}` : ''),
      );
    } else if (switches.onnx === 'qdq') {
      const c = await calibrateRanges(model, metadata, staticBatch, options, log);
      versions.onnxruntime = onnxRuntimeModule().version;
      quantization = { ...quantizeForTensorRT(model, c.plan, c.ranges), ...c.prep };
      calibration = calibrationSummary(base, c);
      setMetadataProps(model, {
        ...props,
        trt_flowers: JSON.stringify({
          ...metadata,
          precision: 'int8',
          engine: 'tensorrt',
          calibration: { method: c.method, images: c.used },
          source_model_sha256: sha,
        }),
        precision: 'int8',
      });
      model.producerName = 'trt-flowers';
      onnxFile = `${base}.qdq.onnx`;
      await writeFileAtomic(onnxFile, encodeModel(model));
      if (options.check !== false) {
        log('running the ONNX checker');
        await runPythonStep('check_onnx.py', [onnxFile], options.signal ? { signal: options.signal } : {});
      }
      await writeCalibrationFiles(calibration, c);
      log(`symmetric Q/DQ model for TensorRT: ${onnxFile}`);
    } else if (switches.legacyCalibrator) {
      const { images, source } = await calibrationImages(options);
      const batchSize = staticBatch ?? Math.min(8, profile.max);
      const dataFile = `${base}.calibration-batches.${process.pid}.f32`;
      temporary.push(dataFile);
      const written = await writeCalibrationBatches(images, metadata, batchSize, dataFile, options.signal, log);
      if (written.used === 0) {
        throw new DataError(`no usable calibration photos in ${source} (${written.skipped} could not be decoded)`);
      }
      const cachePath = path.resolve(`${base}.calibration.cache`);
      calibrator = {
        dataFile,
        batchSize,
        batches: written.batches,
        cachePath,
        readCache: options.recalibrate !== true,
      };
      calibration = {
        method: 'entropy',
        percentile: null,
        images: written.used,
        skipped: written.skipped,
        source,
        tensors: 0,
        table: path.resolve(`${base}.calibration.json`),
        tensorrt_cache: cachePath,
      };
    }

    const timingCache =
      options.timingCache === false
        ? undefined
        : path.resolve(options.timingCache ?? path.join(dir, 'tensorrt.timing.cache'));
    log(`building the TensorRT engine from ${onnxFile}`);
    const built = await buildTensorRTPlan(
      {
        onnxPath: onnxFile,
        planPath: tmpPlan,
        device: `cuda:${index}`,
        minBatch: profile.min,
        optBatch: profile.opt,
        maxBatch: profile.max,
        imageSize: size,
        ...(options.workspaceMiB ? { workspaceBytes: options.workspaceMiB * 1024 * 1024 } : {}),
        ...(timingCache ? { timingCachePath: timingCache } : {}),
        ...(options.optimizationLevel !== undefined ? { optimizationLevel: options.optimizationLevel } : {}),
        stronglyTyped: switches.stronglyTyped,
        fp16: switches.fp16,
        int8: switches.int8,
        ...(calibrator ? { calibration: calibrator } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        onLog: log,
      },
      native,
    );
    log(
      `built in ${built.seconds.toFixed(1)} s: ${built.networkLayers} network layers, plan ${(built.planBytes / 1e6).toFixed(1)} MB; ` +
        `timing cache ${timingCache ? `${built.timingCacheLoaded ? 'reused' : 'new'}${built.timingCacheSaved ? `, saved to ${timingCache}` : ''}` : 'off'}`,
    );
    if (calibrator && calibration) {
      log(
        built.calibrationCacheRead
          ? `INT8 scales read from the calibration cache ${calibrator.cachePath} (--recalibrate to calibrate again)`
          : `TensorRT calibrated on ${built.calibrationBatches} batches of ${calibrator.batchSize}; cache written to ${calibrator.cachePath}`,
      );
      // The table of what TensorRT's calibrator chose, in the same form as ours.
      const ranges = parseCalibrationCache(await fs.readFile(calibrator.cachePath, 'utf8').catch(() => ''));
      calibration.tensors = Object.keys(ranges).length;
      await writeFileAtomic(
        calibration.table,
        `${JSON.stringify({ method: 'entropy (TensorRT IInt8EntropyCalibrator2)', percentile: null, images: calibration.images, tensors: ranges }, null, 1)}\n`,
      );
    }

    const tensorrt: TensorRTSidecar = {
      version: built.tensorrtVersion,
      gpu: built.gpuName,
      compute_capability: built.computeCapability,
      cuda: info.cudaRuntimeVersion,
      profile,
      onnx: switches.onnx,
      onnx_file: path.resolve(onnxFile),
      precision_plan: switches.description,
      strongly_typed: switches.stronglyTyped,
      workspace_bytes: options.workspaceMiB ? options.workspaceMiB * 1024 * 1024 : null,
      timing_cache: timingCache ?? null,
      plan_bytes: built.planBytes,
      layers: built.networkLayers,
    };
    const sidecar: EngineSidecar = {
      format: 'trt-flowers-engine/1',
      backend: 'tensorrt',
      precision,
      file: path.resolve(out),
      input: {
        name: built.inputName,
        shape: [staticBatch ?? 'batch', 3, size, size],
        minBatch: profile.min,
        maxBatch: profile.max,
      },
      ...sourceFields(options.model, metadata, sha),
      calibration,
      quantization,
      operators: null,
      verification: null,
      versions,
      tensorrt,
      built_at: new Date().toISOString(),
      seconds: 0,
    };
    // The plan must load and run (and agree with the FP32 model) before it replaces anything.
    await fs.writeFile(sidecarPath(tmpPlan), JSON.stringify(sidecar));
    if (options.verifyImages && options.verifyImages.length > 0) {
      log(`comparing with the FP32 model (ONNX Runtime, CPU) on ${options.verifyImages.length} photos`);
      await using reference = await Engine.load(options.model, { backend: 'onnxruntime', device: 'cpu' });
      await using engine = await Engine.load(tmpPlan, { backend: 'tensorrt', device: `cuda:${index}` });
      sidecar.verification = await agreement(reference, engine, options.verifyImages);
      versions.onnxruntime = reference.info.versions.onnxruntime ?? versions.onnxruntime ?? '';
    } else {
      await using engine = await Engine.load(tmpPlan, { backend: 'tensorrt', device: `cuda:${index}` });
      void engine;
    }
    await fs.rename(tmpPlan, out);
    await fs.rm(sidecarPath(tmpPlan), { force: true });
    sidecar.seconds = (performance.now() - started) / 1000;
    const sidecarFile = sidecarPath(out);
    await writeFileAtomic(sidecarFile, `${JSON.stringify(sidecar, null, 2)}\n`);
    return { ...sidecar, sidecar: path.resolve(sidecarFile) };
  } finally {
    await Promise.all(temporary.map((f) => fs.rm(f, { force: true })));
  }
}

/**
 * The activation ranges in a TensorRT calibration cache: a header line, then `tensor: <float32 scale, big-endian
 * hex>` per tensor, the scale being threshold / 127.
 */
export function parseCalibrationCache(text: string): Record<string, { min: number; max: number }> {
  const out: Record<string, { min: number; max: number }> = {};
  const buf = Buffer.alloc(4);
  for (const line of text.split('\n').slice(1)) {
    const m = /^(.*): ([0-9a-fA-F]{8})$/.exec(line.trim());
    if (!m) continue;
    buf.write(m[2] as string, 'hex');
    const amax = buf.readFloatBE(0) * 127;
    if (Number.isFinite(amax)) out[m[1] as string] = { min: -amax, max: amax };
  }
  return out;
}

/**
 * Preprocesses calibration photos as the model expects and writes them as raw float32 NCHW batches of `batchSize`
 * (the last one filled by repeating its photos) for TensorRT's legacy calibrator.
 */
async function writeCalibrationBatches(
  images: readonly string[],
  metadata: ModelMetadata,
  batchSize: number,
  file: string,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
): Promise<{ used: number; skipped: number; batches: number }> {
  const { size, resize } = metadata.preprocessing;
  const per = 3 * size * size;
  const handle = await fs.open(file, 'w');
  let used = 0;
  let skipped = 0;
  let batches = 0;
  let pending: Float32Array[] = [];
  const flush = async (): Promise<void> => {
    while (pending.length < batchSize) pending.push(pending[pending.length - 1] as Float32Array);
    const data = new Float32Array(batchSize * per);
    pending.forEach((p, i) => data.set(p, i * per));
    await handle.write(new Uint8Array(data.buffer));
    batches++;
    pending = [];
  };
  log(`preprocessing ${images.length} calibration photos (${size}px) for TensorRT's calibrator`);
  try {
    for (let start = 0; start < images.length; start += 32) {
      const group = await mapLimit(
        images.slice(start, start + 32),
        4,
        async (image) => {
          try {
            const out = new Float32Array(per);
            normalizeInto(await decodeResized(image, { size, resize }), out, 0, metadata.preprocessing);
            return out;
          } catch {
            return null;
          }
        },
        signal,
      );
      for (const t of group) {
        if (!t) {
          skipped++;
          continue;
        }
        used++;
        pending.push(t);
        if (pending.length === batchSize) await flush();
      }
    }
    if (pending.length > 0) await flush();
  } finally {
    await handle.close();
  }
  return { used, skipped, batches };
}
