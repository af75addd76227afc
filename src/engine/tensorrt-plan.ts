/**
 * The decisions of a TensorRT build and load that need no TensorRT: the batch profile, how each precision is
 * reached on each TensorRT major version, and whether a plan built elsewhere can load here. The native builder
 * only checks what it is told against the TensorRT it was compiled with (native/tensorrt/rules.cc).
 */
import { ModelLoadError } from '../errors.js';
import type { Precision } from './backend.js';

/** kMIN / kOPT / kMAX of the input's batch dimension. */
export interface BatchProfile {
  min: number;
  opt: number;
  max: number;
}

/** Largest batch a profile may ask for (every execution context allocates buffers for it). */
export const MAX_PROFILE_BATCH = 4096;

export interface BatchProfileRequest {
  /** The batch TensorRT tunes for (kOPT), `--batch`. Defaults to 8, or maxBatch when that is smaller. */
  batch?: number | undefined;
  /** The largest batch the engine accepts (kMAX), `--max-batch`. Defaults to the larger of 32 and batch. */
  maxBatch?: number | undefined;
  /** The smallest batch (kMIN). Defaults to 1. */
  minBatch?: number | undefined;
  /** The batch an ONNX model was exported with when it is static; the profile is then exactly that batch. */
  staticBatch?: number | null | undefined;
}

/** The optimisation profile of a build. Throws RangeError naming the flag and the value received. */
export function chooseBatchProfile(request: BatchProfileRequest): BatchProfile {
  const check = (value: number | undefined, flag: string): number | undefined => {
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || value < 1 || value > MAX_PROFILE_BATCH) {
      throw new RangeError(
        `Expected integer between 1 and ${MAX_PROFILE_BATCH} for ${flag} but received ${String(value)}`,
      );
    }
    return value;
  };
  const batch = check(request.batch, '--batch');
  const maxBatch = check(request.maxBatch, '--max-batch');
  const minBatch = check(request.minBatch, '`minBatch`');
  const fixed = request.staticBatch ?? undefined;
  if (fixed !== undefined) {
    for (const [value, flag] of [
      [batch, '--batch'],
      [maxBatch, '--max-batch'],
      [minBatch, '`minBatch`'],
    ] as const) {
      if (value !== undefined && value !== fixed) {
        throw new RangeError(
          `the ONNX model was exported with a static batch of ${fixed}, so ${flag} must be ${fixed} (received ` +
            `${value}); re-export it with a dynamic batch for other sizes`,
        );
      }
    }
    return { min: fixed, opt: fixed, max: fixed };
  }
  const max = maxBatch ?? Math.max(32, batch ?? 8);
  const opt = batch ?? Math.min(8, max);
  const min = minBatch ?? 1;
  if (opt > max) throw new RangeError(`--batch (${opt}) must not be larger than --max-batch (${max})`);
  if (min > opt) throw new RangeError(`the minimum batch (${min}) must not be larger than --batch (${opt})`);
  return { min, opt, max };
}

/**
 * How INT8 is reached: 'qdq' builds from our calibrator's symmetric Q/DQ ONNX model (TensorRT 10 and 11);
 * 'calibrator' is TensorRT 10's legacy implicit quantization with IInt8EntropyCalibrator2 fed by our preprocessing.
 */
export type Int8Mode = 'qdq' | 'calibrator';

/** Which ONNX model TensorRT parses. */
export type OnnxVariant = 'fp32' | 'fp16' | 'qdq';

/** The precision switches of one build, as the native builder takes them. */
export interface PrecisionPlan {
  precision: Precision;
  /** The model handed to TensorRT's ONNX parser. */
  onnx: OnnxVariant;
  /** NetworkDefinitionCreationFlag::kSTRONGLY_TYPED (TensorRT 10; every network is strongly typed in 11). */
  stronglyTyped: boolean;
  /** BuilderFlag::kFP16 (TensorRT 10 only). */
  fp16: boolean;
  /** BuilderFlag::kINT8 (TensorRT 10 only). */
  int8: boolean;
  /** IInt8EntropyCalibrator2 (TensorRT 10 only). */
  legacyCalibrator: boolean;
  /** One line saying how the precision is reached, for logs and the sidecar. */
  description: string;
}

/**
 * How `precision` is built on TensorRT `major`. TensorRT 10: FP16 by BuilderFlag::kFP16 on the FP32 model (weak
 * typing), INT8 from the Q/DQ model in a strongly typed network (or the legacy calibrator with kINT8). TensorRT 11
 * removed the precision flags and implicit calibration: FP16 comes from an FP16 ONNX model, INT8 from the Q/DQ
 * model. Throws RangeError for a combination the version lacks.
 */
export function choosePrecisionPlan(precision: Precision, major: number, int8Mode: Int8Mode = 'qdq'): PrecisionPlan {
  if (!Number.isInteger(major) || major < 10) {
    throw new RangeError(
      `trt-flowers builds with TensorRT 10 or 11; this addon was compiled against TensorRT ${major}`,
    );
  }
  if (!['fp32', 'fp16', 'int8'].includes(precision)) {
    throw new RangeError(`Expected fp32, fp16 or int8 for precision but received '${String(precision)}'`);
  }
  if (int8Mode !== 'qdq' && int8Mode !== 'calibrator') {
    throw new RangeError(`Expected qdq or calibrator for --int8-mode but received '${String(int8Mode)}'`);
  }
  const base = { precision, stronglyTyped: false, fp16: false, int8: false, legacyCalibrator: false };
  const strong = major >= 11;
  if (precision === 'fp32') {
    return {
      ...base,
      onnx: 'fp32',
      stronglyTyped: strong,
      description: `fp32 from the FP32 ONNX model (TensorRT ${major}${strong ? ', strongly typed' : ''})`,
    };
  }
  if (precision === 'fp16') {
    if (strong) {
      return {
        ...base,
        onnx: 'fp16',
        stronglyTyped: true,
        description: `fp16 from an FP16 ONNX model (TensorRT ${major} has no FP16 builder flag)`,
      };
    }
    return {
      ...base,
      onnx: 'fp32',
      fp16: true,
      description: `fp16 by BuilderFlag::kFP16 (TensorRT ${major}, weakly typed)`,
    };
  }
  if (int8Mode === 'calibrator') {
    if (strong) {
      throw new RangeError(
        `TensorRT ${major} removed implicit INT8 calibration (IInt8EntropyCalibrator2): use --int8-mode qdq, which ` +
          "builds from our calibrator's Q/DQ model",
      );
    }
    return {
      ...base,
      onnx: 'fp32',
      int8: true,
      legacyCalibrator: true,
      description: `int8 by BuilderFlag::kINT8 and IInt8EntropyCalibrator2 (TensorRT ${major}, legacy, deprecated)`,
    };
  }
  return {
    ...base,
    onnx: 'qdq',
    stronglyTyped: true,
    description: `int8 from the symmetric Q/DQ ONNX model (TensorRT ${major}, strongly typed, explicit quantization)`,
  };
}

/** What a plan's sidecar records about where it was built. */
export interface PlanStamp {
  /** TensorRT library version that built the plan, "10.16.0". */
  tensorrtVersion: string;
  /** GPU name as CUDA reports it, "NVIDIA H100 80GB HBM3". */
  gpuName: string;
  /** "9.0". */
  computeCapability: string;
}

/** The TensorRT and GPU a plan would load on. */
export interface LoadTarget {
  tensorrtVersion: string;
  /** The device the plan is loaded on, "cuda:0". */
  device: string;
  gpuName: string;
  computeCapability: string;
}

/** [major, minor, patch] of "10.16.0" (missing parts are 0); throws RangeError for anything else. */
export function parseTensorRTVersion(version: string): [number, number, number] {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*$/.exec(version.trim());
  if (!m) throw new RangeError(`'${version}' is not a TensorRT version`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/**
 * Refuses a plan built by another TensorRT version or for another GPU, before TensorRT is asked to deserialize it
 * (TensorRT plans are tied to both: another version refuses them, another GPU may run them slowly or fail). Throws
 * ModelLoadError naming what differs and how to get a plan that loads.
 */
export function checkPlanCompatibility(plan: string, built: PlanStamp, here: LoadTarget, sourceModel?: string): void {
  const rebuild =
    `rebuild it on this machine: trt-flowers build-engine --backend tensorrt --model-path ` +
    `${sourceModel ?? '<the FP32 .onnx model>'} --output-path ${plan}`;
  const b = parseTensorRTVersion(built.tensorrtVersion);
  const h = parseTensorRTVersion(here.tensorrtVersion);
  if (b[0] !== h[0] || b[1] !== h[1] || b[2] !== h[2]) {
    throw new ModelLoadError(
      `'${plan}' is a TensorRT ${built.tensorrtVersion} plan but this machine runs TensorRT ${here.tensorrtVersion}: ` +
        `a TensorRT plan loads only with the TensorRT version that built it; ${rebuild}`,
    );
  }
  if (built.computeCapability !== here.computeCapability || built.gpuName !== here.gpuName) {
    throw new ModelLoadError(
      `'${plan}' was built for ${built.gpuName} (compute capability ${built.computeCapability}) but ${here.device} ` +
        `is ${here.gpuName} (compute capability ${here.computeCapability}): TensorRT plans are tuned for one GPU ` +
        `model; ${rebuild}`,
    );
  }
}
