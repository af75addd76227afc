import type { TrainConfig } from '../config/index.js';
import { CancelledError } from '../errors.js';
import type { DataLoader } from '../data/loader.js';
import type { Triplet } from '../data/triplets.js';
import type { SplitName } from '../data/split.js';
import { TorchModel } from '../torch/TorchModel.js';
import type { Trainer } from '../torch/Trainer.js';
import type { Tracker } from '../track/Tracker.js';
import type { TrainState } from './checkpoint.js';
import { evaluateSplit, type SplitEvalOptions, type SplitEvaluation } from './evaluate.js';
import type { ProgressReporter } from './progress.js';
import { learningRateAt } from './schedule.js';

/** The pooled backbone features of a split, row-major [count, dim], in split order. */
export interface SplitFeatures {
  features: Float32Array;
  labels: Int32Array;
  count: number;
  dim: number;
  seconds: number;
}

/**
 * Runs the backbone once over a split (evaluation batches: no augmentation) and keeps its pooled features: what the
 * head phase trains on, so every head epoch costs a few matrix products instead of a pass through the backbone.
 */
export async function extractFeatures(
  model: TorchModel,
  loader: DataLoader,
  split: SplitName,
  options: { signal?: AbortSignal; batchSize?: number } = {},
): Promise<SplitFeatures> {
  const started = performance.now();
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let dim = 0;
  // The features of the training step's size: the head phase trains for the fine-tune that follows it.
  for await (const batch of loader.evaluate(split, {
    imageSize: split === 'train' ? loader.imageSize : loader.evalImageSize,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  })) {
    const out = await model.pooledFeatures(batch.images, batch.shape);
    dim = out.dim;
    parts.push(out.features);
    labels.push(...batch.labels);
  }
  const features = new Float32Array(labels.length * dim);
  let offset = 0;
  for (const part of parts) {
    features.set(part, offset);
    offset += part.length;
  }
  return {
    features,
    labels: Int32Array.from(labels),
    count: labels.length,
    dim,
    seconds: (performance.now() - started) / 1000,
  };
}

/** One head epoch's training metrics (weighted by queries). */
export interface HeadEpochResult {
  /** 0-based head epoch. */
  epoch: number;
  loss: number;
  ce: number;
  contrastive: number;
  accuracy: number;
  steps: number;
  seconds: number;
  learningRate: number;
}

/** Options of trainHead(). */
export interface HeadPhaseOptions {
  /** Head epochs in all. */
  epochs: number;
  /** Head epochs already done (resume). Defaults to 0. */
  startEpoch?: number;
  /** Peak learning rate; it follows a cosine from it to 0 over the head epochs. */
  learningRate: number;
  /** Triplets per step. */
  batchSize: number;
  signal?: AbortSignal;
  /** Called after each head epoch (for logging and checkpoints). */
  onEpoch?: (r: HeadEpochResult) => Promise<void> | void;
}

/** The learning rate of head step `t` of `total`: the run's cosine schedule from `peak` to 0, without warm-up. */
export function headLearningRate(peak: number, t: number, total: number): number {
  return learningRateAt({ kind: 'cosine', learningRate: peak, epochs: total }, t);
}

/**
 * The head phase: epochs of triplet steps of the model's head alone (Trainer.headStep) on the train split's cached
 * pooled features. Each head epoch has its own seeded triplets (the loader's sampler on the 'head' stream, so the
 * fine-tune epochs keep the triplets they have without a head phase). Throws CancelledError when the signal fires
 * between steps; the epochs done so far are kept (onEpoch was called for each).
 */
export async function trainHead(
  trainer: Trainer,
  loader: DataLoader,
  cached: SplitFeatures,
  options: HeadPhaseOptions,
): Promise<void> {
  const { dim } = cached;
  const size = options.batchSize;
  const stepsPerEpoch = Math.ceil(cached.count / size);
  const totalSteps = options.epochs * stepsPerEpoch;
  for (let epoch = options.startEpoch ?? 0; epoch < options.epochs; epoch++) {
    const started = performance.now();
    const triplets = loader.triplets(epoch, 'head');
    const sums = { images: 0, loss: 0, ce: 0, contrastive: 0, correct: 0 };
    let lr = options.learningRate;
    for (let step = 0; step * size < triplets.length; step++) {
      if (options.signal?.aborted) throw new CancelledError();
      const chunk = triplets.slice(step * size, (step + 1) * size);
      // The rows of the chunk's queries, positives or negatives, gathered into one [B, D] batch.
      const gather = (role: keyof Triplet): Float32Array => {
        const out = new Float32Array(chunk.length * dim);
        chunk.forEach((t, i) => out.set(cached.features.subarray(t[role] * dim, (t[role] + 1) * dim), i * dim));
        return out;
      };
      lr = headLearningRate(options.learningRate, epoch * stepsPerEpoch + step, totalSteps);
      trainer.learningRate = lr;
      const r = await trainer.headStep({
        query: gather('query'),
        positive: gather('positive'),
        negative: gather('negative'),
        shape: [chunk.length, dim],
        labels: Int32Array.from(chunk, (t) => cached.labels[t.query]!),
      });
      const n = chunk.length;
      sums.images += n;
      sums.loss += r.loss * n;
      sums.ce += r.ce * n;
      sums.contrastive += r.contrastive * n;
      sums.correct += r.correct;
    }
    await options.onEpoch?.({
      epoch,
      loss: sums.loss / Math.max(sums.images, 1),
      ce: sums.ce / Math.max(sums.images, 1),
      contrastive: sums.contrastive / Math.max(sums.images, 1),
      accuracy: sums.correct / Math.max(sums.images, 1),
      steps: stepsPerEpoch,
      seconds: (performance.now() - started) / 1000,
      learningRate: lr,
    });
  }
}

/** What runHeadPhase needs of the training run. */
export interface HeadPhaseContext {
  model: TorchModel;
  trainer: Trainer;
  loader: DataLoader;
  config: TrainConfig;
  state: TrainState;
  tracker: Tracker;
  progress: ProgressReporter;
  evalOptions: SplitEvalOptions;
}

/**
 * The head phase of a run (model.head_epochs > 0): pooled features of the train split once, then the head epochs
 * on them, each logged (split 'head'); at the end the whole model is validated once and the result printed and
 * returned. When the signal stops it, `checkpoint()` is called (the epochs done are in state.headEpochs) and the
 * result is null.
 */
export async function runHeadPhase(
  ctx: HeadPhaseContext,
  signal: AbortSignal | undefined,
  checkpoint: () => Promise<void>,
): Promise<SplitEvaluation | null> {
  const { model, trainer, loader, config, state, tracker, progress } = ctx;
  const m = config.model;
  if (!model.hasHead) {
    throw new RangeError(
      `model.head_epochs=${m.head_epochs} needs a model with pooled() and head() methods, which ` +
        `${model.info.path} lacks: export the backbone again with this version of trt-flowers export-backbone ` +
        '(or start without model.checkpoint), or set model.head_epochs=0',
    );
  }
  const started = performance.now();
  let val: SplitEvaluation;
  try {
    // The backbone is not trained in this phase: an inference copy of it (frozen, BatchNorm folded, about 3x
    // faster on the CPU) extracts the features.
    const backbone = await TorchModel.load(model.info.path, { device: model.info.device, inference: true });
    let cached: SplitFeatures;
    try {
      cached = await extractFeatures(backbone, loader, 'train', signal ? { signal } : {});
    } finally {
      await backbone.dispose();
    }
    progress.message(
      `head phase: pooled features of ${cached.count} train images (${cached.dim}-d) in ` +
        `${cached.seconds.toFixed(1)} s; ${m.head_epochs} epochs of the head alone, learning rate ` +
        `${m.head_learning_rate} (cosine)`,
    );
    await model.setTraining(true);
    await trainHead(trainer, loader, cached, {
      epochs: m.head_epochs,
      startEpoch: state.headEpochs ?? 0,
      learningRate: m.head_learning_rate,
      batchSize: loader.batchSize,
      ...(signal ? { signal } : {}),
      onEpoch: async (r) => {
        state.headEpochs = r.epoch + 1;
        state.globalStep += r.steps;
        await tracker.logMetrics(
          { loss: r.loss, ce: r.ce, contrastive: r.contrastive, accuracy: r.accuracy, lr: r.learningRate },
          state.globalStep,
          { epoch: r.epoch + 1, split: 'head' },
        );
        progress.message(
          `head epoch ${r.epoch + 1}/${m.head_epochs}: loss ${r.loss.toFixed(4)}, accuracy ` +
            `${r.accuracy.toFixed(4)} (${r.seconds.toFixed(1)} s)`,
        );
      },
    });
    val = await evaluateSplit(model, loader, 'val', { ...ctx.evalOptions, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (err instanceof CancelledError) {
      await checkpoint();
      return null;
    }
    throw err;
  }
  await model.setTraining(true);
  progress.message(
    `head phase done in ${((performance.now() - started) / 1000).toFixed(1)} s: val accuracy ` +
      `${val.report.accuracy.toFixed(4)}, F1 macro ${val.report.f1Macro.toFixed(4)}, loss ${val.losses.loss.toFixed(4)}`,
  );
  await tracker.logMetrics(
    { accuracy: val.report.accuracy, f1_macro: val.report.f1Macro, loss: val.losses.loss },
    state.globalStep,
    { epoch: m.head_epochs, split: 'head_val' },
  );
  return val;
}
