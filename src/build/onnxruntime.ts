/** ONNX Runtime engines (CPU): the graph-optimised FP32 model or a calibrated whole-graph Q/DQ INT8 model. */
import fs from 'node:fs/promises';
import path from 'node:path';

import { writeFileAtomic } from '../util/fs.js';
import { decodeModel, encodeModel, operatorSummary, setMetadataProps, type OperatorSummary } from '../onnx/model.js';
import { runPythonStep } from '../util/python.js';
import { runtimeInfo } from '../binding/runtime.js';
import { Engine } from '../engine/Engine.js';
import { onnxRuntimeModule, OnnxRuntimeBackend } from '../engine/onnxruntime.js';
import { cpuNeedsReducedRange, quantizeModel, type QuantizeReport } from './quantize.js';
import {
  sidecarPath,
  sourceFields,
  type BuildEngineOptions,
  type BuildEngineResult,
  type EngineSidecar,
} from './options.js';
import { readSourceModel } from './source.js';
import { calibrateRanges, calibrationSummary, writeCalibrationFiles } from './calibrate.js';
import { agreement, splitAccuracy } from './verify.js';

/**
 * Builds an ONNX Runtime engine (CPU); called by buildEngine once the backend is ONNX Runtime. fp32 writes the
 * graph-optimised model, int8 calibrates on real photos and writes a Q/DQ model, a calibration table (JSON) and a
 * TensorRT calibration cache. Rejections as buildEngine's.
 */
export async function buildOnnxRuntimeEngine(
  options: BuildEngineOptions & { out: string },
  started: number,
  log: (line: string) => void,
): Promise<BuildEngineResult> {
  const { out, precision } = options;
  const graphOptimization = options.graphOptimization ?? 'extended';
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
    ...sourceFields(options.model, metadata, sha),
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
