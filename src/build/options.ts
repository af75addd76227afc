/** What the engine builder takes (BuildEngineOptions) and writes beside every engine (EngineSidecar). */

import path from 'node:path';

import { type OperatorSummary } from '../onnx/model.js';
import type { Precision } from '../engine/backend.js';
import { type CalibrationMethod } from './calibration.js';
import { type ModelMetadata } from '../data/metadata.js';
import { type TensorRTSidecar } from '../engine/tensorrt.js';
import type { Int8Mode } from '../engine/tensorrt-plan.js';
import { type QuantizeReport } from './quantize.js';

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

/** The sidecar fields every backend fills the same way: what the engine was built from. */
export function sourceFields(
  modelPath: string,
  metadata: ModelMetadata,
  sha: string,
): Pick<EngineSidecar, 'classes' | 'preprocessing' | 'source_model' | 'source_sha256'> {
  return {
    classes: metadata.classes,
    preprocessing: metadata.preprocessing,
    source_model: path.resolve(modelPath),
    source_sha256: sha,
  };
}

/** The sidecar path of an engine file. */
export function sidecarPath(engineFile: string): string {
  return `${engineFile}.json`;
}
