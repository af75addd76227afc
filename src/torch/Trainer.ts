import { loadAddon } from '../binding/loader.js';
import type {
  NativeEvalResult,
  NativeLearningRateScale,
  NativeStepResult,
  NativeTrainer,
  NativeTrainerOptions,
} from '../binding/types.js';
import { callNative, DisposedError } from '../errors.js';
import type { TorchModel } from './TorchModel.js';

/** Options of the native trainer. */
export interface TrainerOptions extends NativeTrainerOptions {}

/** One triplet batch: query, positive and negative images, each [B, 3, H, W], and the B query labels. */
export interface TripletBatch {
  query: Float32Array;
  positive: Float32Array;
  negative: Float32Array;
  shape: readonly [number, number, number, number];
  labels: Int32Array;
}

/** One triplet batch of pooled features: query, positive and negative rows, each [B, D], and the B query labels. */
export interface FeatureTripletBatch {
  query: Float32Array;
  positive: Float32Array;
  negative: Float32Array;
  shape: readonly [number, number];
  labels: Int32Array;
}

/**
 * The libtorch training step: loss = ceWeight * CE(query logits) + contrastiveWeight * (CosineEmbeddingLoss(q, p,
 * +1) + CosineEmbeddingLoss(q, n, -1)); Adam, AdamW or SGD; gradient clipping; fp16 autocast with dynamic loss
 * scaling on CUDA.
 */
export class Trainer implements AsyncDisposable {
  #native: NativeTrainer | undefined;
  readonly model: TorchModel;

  /** Throws TypeError / RangeError naming the bad option. */
  constructor(model: TorchModel, options: TrainerOptions = {}) {
    const addon = loadAddon();
    this.model = model;
    this.#native = new addon.Trainer(model.native, options);
  }

  /** One forward/backward/optimizer step (train mode). */
  async step(batch: TripletBatch): Promise<NativeStepResult> {
    const t = this.native;
    return callNative(() => t.step(batch.query, batch.positive, batch.negative, batch.shape, batch.labels));
  }

  /**
   * One step of the head alone on pooled features (TorchModel.pooledFeatures), each part [B, D]: only the head's
   * parameters are updated, and gradients are not averaged over data-parallel ranks.
   */
  async headStep(batch: FeatureTripletBatch): Promise<NativeStepResult> {
    const t = this.native;
    return callNative(() => t.headStep(batch.query, batch.positive, batch.negative, batch.shape, batch.labels));
  }

  /** The same losses without gradients, in eval mode, plus the query logits. */
  async evaluate(batch: TripletBatch): Promise<NativeEvalResult> {
    const t = this.native;
    return callNative(() => t.evaluate(batch.query, batch.positive, batch.negative, batch.shape, batch.labels));
  }

  get learningRate(): number {
    return this.native.learningRate;
  }

  /** Applies from the next step. */
  set learningRate(lr: number) {
    this.native.setLearningRate(lr);
  }

  get stepCount(): number {
    return this.native.stepCount;
  }

  /**
   * Each trainable parameter's learning-rate factor (`layerDecay`^depth), in the model's order: the parameter
   * learns at `learningRate` times its scale. All 1 without `layerDecay`.
   */
  learningRateScales(): NativeLearningRateScale[] {
    return this.native.learningRateScales();
  }

  /** The optimizer's parameter groups: one per distinct learning-rate factor, so 1 without `layerDecay`. */
  get parameterGroupCount(): number {
    return this.native.parameterGroupCount;
  }

  /**
   * Exchanges the model's trainable weights with their moving average (`emaDecay`), so that evaluation and
   * TorchModel.save see the average; call it again to swap back before the next step. Resolves false, changing
   * nothing, when there is no average yet (off, or no full step taken).
   */
  async swapEma(): Promise<boolean> {
    const t = this.native;
    return callNative(() => t.swapEma());
  }

  /**
   * Runs `fn` with the moving average swapped in and swaps the weights back afterwards, also when it throws.
   * Resolves undefined without calling `fn` when there is no average yet.
   */
  async withAverage<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (!(await this.swapEma())) return undefined;
    try {
      return await fn();
    } finally {
      await this.swapEma();
    }
  }

  /** Full steps averaged so far (0 without `emaDecay`). */
  get emaUpdates(): number {
    return this.native.emaUpdates;
  }

  /** Whether the moving average is swapped in now. */
  get emaSwappedIn(): boolean {
    return this.native.emaSwappedIn;
  }

  /** Optimizer and loss-scaler state for exact resume; atomic write. */
  async saveState(path: string): Promise<void> {
    const t = this.native;
    return callNative(() => t.saveState(path));
  }

  async loadState(path: string): Promise<void> {
    const t = this.native;
    return callNative(() => t.loadState(path));
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** The addon's trainer, for data-parallel attachment (src/dist). Throws DisposedError. */
  get nativeTrainer(): NativeTrainer {
    return this.native;
  }

  private get native(): NativeTrainer {
    if (!this.#native) throw new DisposedError('this Trainer');
    return this.#native;
  }

  /** Waits for calls in flight, then frees the optimizer state. Calls made after it started throw DisposedError. */
  async dispose(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = undefined;
    await callNative(() => native.dispose());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
