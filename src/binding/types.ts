/**
 * The exact shape of what the native addon (`trt_flowers.node`) exports. Public classes wrap these; users never
 * touch raw native objects. Every method returning a Promise runs off the event loop.
 */

export interface NativeRuntimeInfo {
  torchVersion: string;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  tensorrtCompiled: boolean;
  tensorrtVersion: string;
  threads: number;
  jitOptimize: boolean;
  parallelInfo: string;
  napiVersion: number;
  /** Data-parallel training (c10d TCPStore + Gloo or NCCL) compiled in. Absent in addons built before it existed. */
  distributedCompiled?: boolean;
  /** Why it, or one of its backends, is not compiled in (empty when both are). */
  distributedNote?: string;
  /** The process-group backends compiled in ('gloo', 'nccl'). Absent in addons built before NCCL support. */
  distributedBackends?: string[];
}

export interface NativeForwardResult {
  logits: Float32Array;
  embedding: Float32Array;
  batchSize: number;
  numClasses: number;
  embeddingSize: number;
}

/** The backbone's globally pooled features of a batch, row-major [batchSize, dim]. */
export interface NativePooledFeatures {
  features: Float32Array;
  batchSize: number;
  dim: number;
}

/** One image's augmentation draws (src/data/augment.ts): crop box, flip and colour-jitter factors. */
export interface NativeAugmentParams {
  /** Crop box in source pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  flip: boolean;
  brightness: number;
  contrast: number;
  saturation: number;
  /** Shrunk to this fraction of the side and enlarged back (1 or absent: not). */
  downscale?: number;
  /** JPEG round trip at this quality (0 or absent: not). */
  jpegQuality?: number;
  /** Random erasing: this box of the output (pixels) set to 0 after the normalisation (width 0 or absent: none). */
  eraseX?: number;
  eraseY?: number;
  eraseWidth?: number;
  eraseHeight?: number;
  /** An op of the augmentation policy (POLICY_OPS; absent or 'identity': none) and its magnitude in [-1, 1]. */
  op?: string;
  magnitude?: number;
}

export interface NativeModelInfo {
  path: string;
  device: string;
  parameterCount: number;
  training: boolean;
  /** The project's metadata JSON stored in the TorchScript archive (extra file trt_flowers.json), or null. */
  metadata: string | null;
  /** Loaded with `inference`: forward only. */
  inferenceOnly: boolean;
  /** The module has the pooled() and head() methods (export-backbone writes them): the head can train alone. */
  hasHead: boolean;
  /** The module was frozen and optimised for inference (torch.jit.optimize_for_inference). */
  inferenceOptimized: boolean;
  /** Why the inference passes did not run, or null. */
  inferenceNote: string | null;
}

export interface NativeModel {
  /** async; rejects with ERR_INFERENCE, ERR_INVALID_ARG_TYPE, ERR_DISPOSED. */
  forward(input: Float32Array, shape: readonly number[]): Promise<NativeForwardResult>;
  /** async; eval mode, no gradients (the training flag is kept); rejects with RangeError without a head. */
  pooledFeatures(input: Float32Array, shape: readonly number[]): Promise<NativePooledFeatures>;
  /** async. */
  setTraining(training: boolean): Promise<void>;
  /** async, atomic write; rejects with ERR_SAVE. */
  save(path: string): Promise<void>;
  /** sync; the JSON text written into the archive by later saves (null: none). */
  setMetadata(metadata: string | null): void;
  /**
   * async; marks the model disposed at once (later calls throw ERR_DISPOSED) and settles after every call queued
   * on the model before it, its trainers' included. Idempotent.
   */
  dispose(): Promise<void>;
  readonly info: NativeModelInfo;
  readonly disposed: boolean;
}

export interface NativeTrainerOptions {
  optimizer?: 'adam' | 'adamw' | 'sgd';
  learningRate?: number;
  weightDecay?: number;
  momentum?: number;
  gradClipNorm?: number;
  ceWeight?: number;
  contrastiveWeight?: number;
  margin?: number;
  /** Label smoothing of the cross-entropy, 0..0.99. Defaults to 0. */
  labelSmoothing?: number;
  amp?: boolean;
  gradScaler?: boolean;
  /** 4-D weights and the image batch in channels-last (NHWC) order. Not with data-parallel training. Defaults to false. */
  channelsLast?: boolean;
  /**
   * Exponential moving average of the trainable weights after every full step (the decay, in [0, 1); warmed up as
   * min(decay, (1 + n) / (10 + n))). 0 turns it off. Defaults to 0.
   */
  emaDecay?: number;
  /**
   * Layer-wise learning-rate decay, in (0, 1]: each trainable parameter learns at the scheduled rate times
   * layerDecay^depth, where depth is 0 for the head (everything after the backbone's `features.<k>` blocks), 1 for
   * the last block, 2 for the one before, and so on down to the stem. Below 1 the model's parameter names must have
   * `features.<k>` segments (RangeError otherwise). 1 turns it off (one parameter group). Defaults to 1.
   */
  layerDecay?: number;
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export interface NativeStepResult {
  loss: number;
  ce: number;
  contrastive: number;
  positiveLoss: number;
  negativeLoss: number;
  correct: number;
  count: number;
  gradNorm: number;
  skipped: boolean;
  scale: number;
}

export interface NativeEvalResult extends NativeStepResult {
  logits: Float32Array;
}

/** A native trainer call on one triplet batch: query, positive and negative rows, their shape and the labels. */
export type NativeTripletCall<R> = (
  query: Float32Array,
  positive: Float32Array,
  negative: Float32Array,
  shape: readonly number[],
  labels: Int32Array,
) => Promise<R>;

/** The learning-rate factor of one trainable parameter (NativeTrainerOptions.layerDecay). */
export interface NativeLearningRateScale {
  /** The parameter's dotted name in the module, "features.2.0.weight". */
  name: string;
  /** Blocks back from the head: 0 for the head, 1 for the last feature block, ... (0 for all without layerDecay). */
  depth: number;
  /** layerDecay^depth: the parameter learns at the scheduled rate times this. */
  scale: number;
}

export interface NativeTrainer {
  /** async; one optimizer step. */
  step: NativeTripletCall<NativeStepResult>;
  /** async; one optimizer step of the head alone on pooled features, each [B, D]; no gradient averaging. */
  headStep: NativeTripletCall<NativeStepResult>;
  /** async; losses and query logits without gradients, in eval mode. */
  evaluate: NativeTripletCall<NativeEvalResult>;
  /** sync; applies from the next step. */
  setLearningRate(lr: number): void;
  readonly learningRate: number;
  readonly stepCount: number;
  /** sync; one entry per trainable parameter, in the model's order. */
  learningRateScales(): NativeLearningRateScale[];
  /** The optimizer's parameter groups: one per distinct learning-rate factor (1 without layerDecay). */
  readonly parameterGroupCount: number;
  /**
   * async; exchanges the trainable weights with their moving average (a second call swaps back); false when there is
   * none yet. Steps and saveState are refused while it is swapped in.
   */
  swapEma(): Promise<boolean>;
  /** Full steps averaged so far (0 without emaDecay). */
  readonly emaUpdates: number;
  readonly emaSwappedIn: boolean;
  /** async, atomic write. */
  saveState(path: string): Promise<void>;
  /** async. */
  loadState(path: string): Promise<void>;
  /** async; marks the trainer disposed at once and settles after the calls in flight. Idempotent. */
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeTensorRTGpu {
  index: number;
  name: string;
  /** "9.0". */
  computeCapability: string;
  totalMemory: number;
  multiprocessors: number;
}

export interface NativeTensorRTInfo {
  /** TensorRT headers the addon was compiled against, "10.16.0". */
  headerVersion: string;
  /** TensorRT library loaded now (getInferLibVersion). */
  libraryVersion: string;
  cudaRuntimeVersion: string;
  cudaDriverVersion: string;
  gpus: NativeTensorRTGpu[];
  /** Why no GPU is listed (no driver, no device), or null. */
  cudaError: string | null;
}

export interface NativeTensorRTEngineInfo {
  path: string;
  device: string;
  gpuName: string;
  computeCapability: string;
  tensorrtVersion: string;
  inputName: string;
  /** As built; -1 for the dynamic batch. */
  inputDims: number[];
  minBatch: number;
  optBatch: number;
  maxBatch: number;
  imageSize: number;
  logitsName: string;
  embeddingName: string;
  numClasses: number;
  embeddingSize: number;
  deviceMemoryBytes: number;
  planBytes: number;
  cudaGraph: boolean;
  /** Execution contexts that fell back from CUDA graphs (capture failed). */
  cudaGraphFallbacks: number;
  contexts: number;
  /** TensorRT's warnings while deserializing. */
  warnings: string[];
}

export interface NativeTensorRTEngine {
  /** async; rejects with ERR_INFERENCE, ERR_OUT_OF_RANGE (batch outside the profile), ERR_INVALID_ARG_TYPE, ERR_DISPOSED. */
  infer(input: Float32Array, shape: readonly number[]): Promise<NativeForwardResult>;
  /** sync; runs in flight keep the engine alive until they end. */
  dispose(): void;
  readonly info: NativeTensorRTEngineInfo;
  readonly disposed: boolean;
}

export interface NativeTensorRTLoadOptions {
  /** Replay each batch size as a CUDA graph after its first run. */
  cudaGraph?: boolean;
  /** Execution contexts (each with its own stream and buffers) that may run at once, 1..64. */
  contexts?: number;
}

export interface NativeTensorRTBuildOptions {
  onnxPath: string;
  planPath: string;
  /** 'cuda' or 'cuda:N'. */
  device?: string;
  minBatch: number;
  optBatch: number;
  maxBatch: number;
  /** H = W for an ONNX input with dynamic spatial size. */
  imageSize?: number;
  /** Builder workspace limit in bytes (0 or absent: TensorRT's default). */
  workspaceBytes?: number;
  /** Timing cache file, read when present and written after the build. */
  timingCachePath?: string;
  /** Builder optimisation level 0..5. */
  optimizationLevel?: number;
  stronglyTyped?: boolean;
  /** BuilderFlag::kFP16 (TensorRT 10). */
  fp16?: boolean;
  /** BuilderFlag::kINT8 (TensorRT 10). */
  int8?: boolean;
  /** TensorRT 10's IInt8EntropyCalibrator2 over raw float32 batches. */
  calibration?: { dataFile: string; batchSize: number; batches: number; cachePath: string; readCache?: boolean };
  /** Called on the event loop with TensorRT's messages (0 internal error .. 4 verbose) up to logSeverity. */
  onLog?: (severity: number, message: string) => void;
  logSeverity?: number;
  /** Set element 0 to 1 to stop the build at its next step. */
  cancel?: Int32Array;
}

export interface NativeTensorRTBuildResult {
  planPath: string;
  planBytes: number;
  tensorrtVersion: string;
  gpuName: string;
  computeCapability: string;
  inputName: string;
  inputDims: number[];
  outputNames: string[];
  timingCacheLoaded: boolean;
  timingCacheSaved: boolean;
  calibrationCacheRead: boolean;
  calibrationCacheWritten: boolean;
  calibrationBatches: number;
  networkLayers: number;
  seconds: number;
}

/** Row indices of the pairs a split's contrastive loss is taken over. */
export interface NativeTripletIndices {
  anchor: Int32Array;
  positive: Int32Array;
  negAnchor: Int32Array;
  negative: Int32Array;
}

/** Weights of the two losses and the margin of the negative pairs. */
export interface NativeLossWeights {
  ceWeight: number;
  contrastiveWeight: number;
  margin: number;
  /** Label smoothing of the cross-entropy, 0..0.99. Defaults to 0. */
  labelSmoothing?: number;
}

/** The loss and its parts, as the training step reports them. */
export interface NativeLossValues {
  loss: number;
  ce: number;
  contrastive: number;
  positiveLoss: number;
  negativeLoss: number;
}

export interface NativeProcessGroupOptions {
  masterAddr?: string;
  port?: number;
  rank?: number;
  worldSize?: number;
  timeoutMs?: number;
  useAgentStore?: boolean;
  restartCount?: number;
  interfaces?: string[];
  /** 'gloo' (CPU tensors) or 'nccl' (the tensors of CUDA device cudaDevice). */
  backend?: 'gloo' | 'nccl';
  cudaDevice?: number;
}

export interface NativeSyncStats {
  steps: number;
  /** Gradient buckets sent (all-reduces started). */
  buckets: number;
  bytes: number;
  /** Buckets whose all-reduce started before backward returned. */
  bucketsInBackward: number;
  /** Of those, the ones already finished when backward returned. */
  bucketsDoneInBackward: number;
  /** Every collective of the gradient averaging: the buckets and any found-inf agreement. */
  collectives: number;
  /** Time the steps spent averaging gradients: before, during (the hooks) and after backward. */
  seconds: number;
  /** The part of seconds inside and just before backward (packing gradients, starting all-reduces). */
  inBackwardSeconds: number;
}

/** One rank's membership of a c10d Gloo group. Collectives must be called in the same order on every rank. */
export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /**
   * async; TCPStore rendezvous and the Gloo or NCCL group. Rejects with ERR_DISTRIBUTED or ERR_BACKEND_UNAVAILABLE
   * (the backend is not compiled in, or NCCL's CUDA device is not there).
   */
  join(): Promise<void>;
  /** async; the reduced copy of data. Rejects with ERR_DISTRIBUTED (a peer failed or timed out). */
  allReduce(data: Float32Array, op?: 'sum' | 'avg' | 'max' | 'min'): Promise<Float32Array>;
  /** async; root's copy of data. */
  broadcast(data: Float32Array, root?: number): Promise<Float32Array>;
  /** async */
  barrier(): Promise<void>;
  /** async, on the model's thread; rank 0's parameters and buffers to all, then gradient averaging; bucket sizes. */
  attachTrainer(
    trainer: NativeTrainer,
    options?: { bucketBytes?: number; firstBucketBytes?: number },
  ): Promise<number[]>;
  /** sync */
  syncStats(): NativeSyncStats;
  /** async; idempotent. */
  destroy(): Promise<void>;
}

/** The decode-into arguments both JPEG-into calls end with (read once by native/napi/image_wrap.cc readDecodeInto). */
export type DecodeIntoArgs = [
  size: number,
  mode: 'fill' | 'center-crop',
  maxPixels: number,
  out: Float32Array,
  offset: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
];

export interface NativeAddon {
  runtimeInfo(): NativeRuntimeInfo;
  setThreads(n: number): void;
  manualSeed(seed: number): void;
  setJitOptimize(enabled: boolean): void;
  loadModel(path: string, device?: string, inference?: boolean): Promise<NativeModel>;
  Trainer: new (model: NativeModel, options?: NativeTrainerOptions) => NativeTrainer;
  /** Sync constructor (validates; throws TypeError / RangeError). Absent in addons built before it existed. */
  ProcessGroup?: new (options: NativeProcessGroupOptions) => NativeProcessGroup;
  /**
   * async; the training objective (the one definition the training step also uses: native/core/loss.h) over the
   * precomputed outputs of N images, in float64 on the thread pool: cross-entropy of logits [N, numClasses] against
   * labels, plus the cosine-embedding terms of the index pairs anchor[i]->positive[i] (pulled together) and
   * negAnchor[j]->negative[j] (pushed below the margin). Throws TypeError / RangeError synchronously for bad
   * arguments; rejects with RangeError for weights, labels or indices out of range.
   */
  tripletLossFromOutputs(
    logits: Float32Array,
    numClasses: number,
    embedding: Float32Array,
    labels: Int32Array,
    triplets: Readonly<NativeTripletIndices>,
    weights: Readonly<NativeLossWeights>,
  ): Promise<NativeLossValues>;
  /**
   * async; JPEG bytes to size×size×3 RGB uint8 (HWC): libjpeg-turbo decode (DCT-scaled when the image is at least
   * twice the size), EXIF orientation, then sharp's `kernel: 'linear'` resize ('fill' stretches, 'center-crop' fits
   * the shorter side and crops the centre). Throws TypeError / RangeError synchronously for bad arguments; rejects
   * with ERR_INVALID_IMAGE (corrupt, truncated, more than maxPixels pixels) or ERR_UNSUPPORTED_JPEG (a valid JPEG
   * to decode with sharp instead: CMYK, an ICC profile other than sRGB). Absent when the addon was built without
   * libjpeg.
   */
  decodeJpegResized?: (
    data: Uint8Array,
    size: number,
    mode: 'fill' | 'center-crop',
    maxPixels: number,
  ) => Promise<Uint8Array>;
  /**
   * async; decodeJpegResized, then the image normalised ((v / 255 - mean) / std per channel, bit-identical to
   * src/data/preprocess.ts normalizeInto) as CHW float32 straight into out[offset ..], in the same pool job. Same
   * errors as decodeJpegResized; RangeError for an output without room. Absent when the addon was built without
   * libjpeg.
   */
  decodeJpegInto?: (data: Uint8Array, ...into: DecodeIntoArgs) => Promise<void>;
  /**
   * async; decodeJpegInto from a file path, read in the same pool job (a regular file of at most maxFileBytes).
   * Resolves with undefined when `out` holds the image, with the file's bytes when the fast path leaves them (not a
   * JPEG, or a JPEG for sharp), with null when the file could not be read as a regular file within the limit.
   */
  decodeJpegFileInto?: (
    path: string,
    maxFileBytes: number,
    ...into: DecodeIntoArgs
  ) => Promise<Buffer | null | undefined>;
  /**
   * sync, on the calling thread (a worker that owns its batch): each image (a path or a JPEG's bytes) read, decoded
   * and normalised into out[offset + i * 3 * size * size ..] in order, until the first one it cannot do (unreadable
   * or over maxFileBytes, not a JPEG, a JPEG for sharp, corrupt). Returns how many it wrote.
   */
  decodeImagesIntoSync?: (
    images: readonly (string | Uint8Array)[],
    maxFileBytes: number,
    ...into: DecodeIntoArgs
  ) => number;
  /**
   * async; the native twin of src/data/augment.ts augmentInto: writes the augmented, normalised CHW image of `src`
   * (size×size×3 RGB bytes) into out[offset ..] on the thread pool. Throws TypeError / RangeError synchronously.
   */
  augmentImage?: (
    src: Uint8Array,
    size: number,
    params: Readonly<NativeAugmentParams>,
    out: Float32Array,
    offset: number,
    mean: readonly [number, number, number],
    std: readonly [number, number, number],
  ) => Promise<void>;
  /** sync; TensorRT and CUDA versions and the visible GPUs. Present only in addons built with TensorRT. */
  tensorrtInfo?: () => NativeTensorRTInfo;
  /**
   * async; deserializes a TensorRT plan. Rejects with ERR_MODEL_LOAD (missing, or from another TensorRT version or
   * GPU), ERR_BACKEND_UNAVAILABLE (no GPU). Present only in addons built with TensorRT.
   */
  loadTensorRTEngine?: (
    path: string,
    device?: string,
    options?: NativeTensorRTLoadOptions,
  ) => Promise<NativeTensorRTEngine>;
  /**
   * async; builds and writes a TensorRT plan from an ONNX model. Rejects with ERR_MODEL_LOAD, ERR_OUT_OF_RANGE,
   * ERR_BACKEND_UNAVAILABLE, ERR_INFERENCE (TensorRT could not build; cancelled), ERR_SAVE. Present only in addons
   * built with TensorRT.
   */
  buildTensorRTEngine?: (options: NativeTensorRTBuildOptions) => Promise<NativeTensorRTBuildResult>;
}
