/** The engine builder's entry point: picks the backend and the output file, then hands over to that builder. */

import { BackendUnavailableError } from '../errors.js';
import type { Precision } from '../engine/backend.js';
import { tensorrtStatus, type TensorRTStatus } from '../engine/tensorrt.js';
import type { BuildBackend, BuildEngineOptions, BuildEngineResult, GraphOptimization } from './options.js';
import { buildOnnxRuntimeEngine } from './onnxruntime.js';

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
    const { buildTensorRTEngine } = await import('./tensorrt.js');
    return buildTensorRTEngine({ ...options, out }, started, log);
  }
  return buildOnnxRuntimeEngine({ ...options, out, graphOptimization }, started, log);
}
