import type { TrainConfig } from '../config/index.js';
import type { TrainerOptions } from '../torch/Trainer.js';
import type { ScheduleOptions } from './schedule.js';

/**
 * The one place where the training config (snake_case, as in the YAML files) becomes the options of the parts that
 * train: the native Trainer, the learning-rate schedule and the validation losses. Values were checked by the config
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
    amp: config.trainer.amp && device === 'cuda',
  };
}

/** The loss weights and margin, shared by the training step and the validation losses. */
export function lossOptionsOf(config: TrainConfig): { ceWeight: number; contrastiveWeight: number; margin: number } {
  const m = config.model;
  return { ceWeight: m.ce_weight, contrastiveWeight: m.contrastive_weight, margin: m.margin };
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
  seed: number;
} {
  return { numClasses: config.data.classes.length, ...lossOptionsOf(config), seed: config.trainer.seed };
}
