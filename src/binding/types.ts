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
}

export interface NativeForwardResult {
  logits: Float32Array;
  embedding: Float32Array;
  batchSize: number;
  numClasses: number;
  embeddingSize: number;
}

export interface NativeModelInfo {
  path: string;
  device: string;
  parameterCount: number;
  training: boolean;
  /** The project's metadata JSON stored in the TorchScript archive (extra file trt_flowers.json), or null. */
  metadata: string | null;
}

export interface NativeModel {
  /** async; rejects with ERR_INFERENCE, ERR_INVALID_ARG_TYPE, ERR_DISPOSED. */
  forward(input: Float32Array, shape: readonly number[]): Promise<NativeForwardResult>;
  /** async. */
  setTraining(training: boolean): Promise<void>;
  /** async, atomic write; rejects with ERR_SAVE. */
  save(path: string): Promise<void>;
  /** sync; the JSON text written into the archive by later saves (null: none). */
  setMetadata(metadata: string | null): void;
  /** sync; jobs in flight keep the model alive until they end. */
  dispose(): void;
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
  amp?: boolean;
  gradScaler?: boolean;
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

export interface NativeTrainer {
  /** async; one optimizer step. */
  step(
    query: Float32Array,
    positive: Float32Array,
    negative: Float32Array,
    shape: readonly number[],
    labels: Int32Array,
  ): Promise<NativeStepResult>;
  /** async; losses and query logits without gradients, in eval mode. */
  evaluate(
    query: Float32Array,
    positive: Float32Array,
    negative: Float32Array,
    shape: readonly number[],
    labels: Int32Array,
  ): Promise<NativeEvalResult>;
  /** sync; applies from the next step. */
  setLearningRate(lr: number): void;
  readonly learningRate: number;
  readonly stepCount: number;
  /** async, atomic write. */
  saveState(path: string): Promise<void>;
  /** async. */
  loadState(path: string): Promise<void>;
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeAddon {
  runtimeInfo(): NativeRuntimeInfo;
  setThreads(n: number): void;
  manualSeed(seed: number): void;
  setJitOptimize(enabled: boolean): void;
  loadModel(path: string, device?: string): Promise<NativeModel>;
  Trainer: new (model: NativeModel, options?: NativeTrainerOptions) => NativeTrainer;
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
}
