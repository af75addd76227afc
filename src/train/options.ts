import type { TrainConfig } from '../config/index.js';
import type { ExportBackboneOptions } from '../torch/backbone.js';
import type { TrainerOptions } from '../torch/Trainer.js';
import type { ScheduleOptions } from './schedule.js';

/**
 * The one place where the training config (snake_case, as in the YAML files) becomes the options of the parts that
 * train: the backbone export, the native Trainer, the learning-rate schedule and the validation losses (the data
 * section's own mapping, to the indexer, split and DataLoader, is src/data/options.ts). Values were checked by the config
 * schema; the native side checks its own again.
 */
export function trainerOptionsOf(config: TrainConfig, device: string): TrainerOptions {
  const m = config.model;
  return {
    optimizer: m.optimizer,
    learningRate: m.learning_rate,
    weightDecay: m.weight_decay,
    momentum: m.momentum,
    gradClipNorm: m.grad_clip_norm,
    ...lossOptionsOf(config),
    amp: config.trainer.amp && device.startsWith('cuda'),
    ...(config.trainer.memory_format === 'channels_last' ? { channelsLast: true } : {}),
    ...(m.ema_decay > 0 ? { emaDecay: m.ema_decay } : {}),
    ...(m.layer_decay < 1 ? { layerDecay: m.layer_decay } : {}),
  };
}

/** The loss weights and margin, shared by the training step and the validation losses. */
export function lossOptionsOf(config: TrainConfig): {
  ceWeight: number;
  contrastiveWeight: number;
  margin: number;
  labelSmoothing: number;
} {
  const m = config.model;
  return {
    ceWeight: m.ce_weight,
    contrastiveWeight: m.contrastive_weight,
    margin: m.margin,
    labelSmoothing: m.label_smoothing,
  };
}

export function scheduleOf(config: TrainConfig): ScheduleOptions {
  const m = config.model;
  return {
    kind: m.scheduler,
    learningRate: m.learning_rate,
    epochs: config.trainer.max_epochs,
    warmupEpochs: m.warmup_epochs,
    minLearningRate: m.min_learning_rate,
    stepSize: m.step_size,
    gamma: m.gamma,
  };
}

/** What evaluateSplit needs of the config: classes, loss options and the seed of the validation triplets. */
export function evalOptionsOf(config: TrainConfig): {
  numClasses: number;
  ceWeight: number;
  contrastiveWeight: number;
  margin: number;
  labelSmoothing: number;
  seed: number;
} {
  return { numClasses: config.data.classes.length, ...lossOptionsOf(config), seed: config.trainer.seed };
}

/** The backbone a new run exports (into `out`) when no model.checkpoint is given. */
export function backboneOptionsOf(config: TrainConfig, out: string): ExportBackboneOptions {
  const m = config.model;
  return {
    arch: m.arch,
    out,
    numClasses: config.data.classes.length,
    embeddingSize: m.embedding_size,
    dropout: m.dropout,
    freezeBn: m.freeze_bn,
    seed: config.trainer.seed,
    ...(m.weights ? { weights: m.weights } : {}),
  };
}
