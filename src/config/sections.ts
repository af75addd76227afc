import type { SectionSpec } from '../util/schema.js';

/** `model`: the backbone and the optimisation of its weights (configs/model.yaml). */
export const MODEL_SPEC = {
  arch: { type: 'enum', values: ['rexnet_150', 'mobilenet_v2', 'tiny'], default: 'rexnet_150', doc: 'backbone' },
  weights: {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'torchvision-keyed .safetensors with pretrained weights (mobilenet_v2); null: random init',
  },
  checkpoint: {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'start from this TorchScript file instead of exporting a new backbone',
  },
  embedding_size: {
    type: 'int',
    min: 0,
    max: 65536,
    default: 0,
    doc: 'projection size of the embedding; 0: pooled features',
  },
  dropout: { type: 'number', min: 0, max: 0.95, default: 0.2, doc: 'dropout before the classifier' },
  freeze_bn: { type: 'bool', default: false, doc: 'keep BatchNorm in eval mode while training' },
  optimizer: { type: 'enum', values: ['adamw', 'adam', 'sgd'], default: 'adamw', doc: 'optimizer' },
  learning_rate: { type: 'number', min: 1e-8, max: 10, default: 0.001, doc: 'peak learning rate' },
  weight_decay: { type: 'number', min: 0, max: 1, default: 0.0001, doc: 'weight decay' },
  momentum: { type: 'number', min: 0, max: 1, default: 0.9, doc: 'SGD momentum' },
  scheduler: { type: 'enum', values: ['cosine', 'step', 'constant'], default: 'cosine', doc: 'learning-rate schedule' },
  warmup_epochs: { type: 'number', min: 0, max: 1000, default: 1, doc: 'linear warm-up (cosine)' },
  step_size: { type: 'int', min: 1, max: 10000, default: 10, doc: 'epochs between decays (step)' },
  gamma: { type: 'number', min: 0, max: 1, default: 0.1, doc: 'decay factor (step)' },
  min_learning_rate: { type: 'number', min: 0, max: 10, default: 0, doc: 'floor of the cosine schedule' },
  grad_clip_norm: { type: 'number', min: 0, max: 1e6, default: 0, doc: 'clip the gradient L2 norm; 0: off' },
  ce_weight: { type: 'number', min: 0, max: 1000, default: 1, doc: 'weight of the cross-entropy loss' },
  contrastive_weight: { type: 'number', min: 0, max: 1000, default: 1, doc: 'weight of the cosine-embedding loss' },
  margin: { type: 'number', min: -1, max: 1, default: 0, doc: 'CosineEmbeddingLoss margin for negatives' },
  label_smoothing: {
    type: 'number',
    min: 0,
    max: 0.99,
    default: 0,
    doc: 'label smoothing of the cross-entropy (training and validation losses)',
  },
  ema_decay: {
    type: 'number',
    min: 0,
    max: 0.99999,
    default: 0,
    doc:
      'exponential moving average of the weights over the fine-tune steps (e.g. 0.998), validated beside the ' +
      'weights every epoch and saved as the best checkpoint when its val_loss is lower; 0: off',
  },
  layer_decay: {
    type: 'number',
    min: 0,
    max: 1,
    default: 1,
    doc:
      'layer-wise learning-rate decay of the fine-tune (e.g. 0.75): the head learns at the scheduled rate, the ' +
      'last backbone block at rate * layer_decay, the one before at rate * layer_decay^2, down to the stem; 1: off',
    check: (v) => (v > 0 ? undefined : 'must be greater than 0 (1 turns layer-wise decay off), received 0'),
  },
  head_epochs: {
    type: 'int',
    min: 0,
    max: 10000,
    default: 0,
    doc: 'epochs of the head alone on cached backbone features before the fine-tune; 0: off',
  },
  head_learning_rate: {
    type: 'number',
    min: 1e-8,
    max: 10,
    default: 0.001,
    doc: 'learning rate of the head epochs (cosine down to 0)',
  },
} as const satisfies SectionSpec;

/** `trainer`: the loop (configs/train.yaml). */
export const TRAINER_SPEC = {
  max_epochs: {
    type: 'int',
    min: 0,
    max: 100000,
    default: 25,
    doc: 'fine-tune epochs at most; 0: only the head phase (model.head_epochs)',
  },
  patience: {
    type: 'int',
    min: 0,
    max: 100000,
    default: 10,
    doc: 'epochs without val_loss improvement before stopping; 0: off',
  },
  min_delta: { type: 'number', min: 0, max: 1e6, default: 0, doc: 'smallest val_loss decrease that counts' },
  device: { type: 'enum', values: ['auto', 'cpu', 'cuda'], default: 'auto', doc: 'auto: cuda when available' },
  amp: { type: 'bool', default: true, doc: 'fp16 autocast + dynamic loss scaling on CUDA (ignored on CPU)' },
  memory_format: {
    type: 'enum',
    values: ['contiguous', 'channels_last'],
    default: 'contiguous',
    doc: 'channels_last: NHWC convolutions (faster on CPUs with oneDNN); one process only',
  },
  threads: { type: 'int', min: 0, max: 1024, default: 0, doc: 'libtorch threads; 0: min(cores, 4)' },
  limit_per_class: {
    type: 'int',
    min: 0,
    max: 1e9,
    default: 0,
    doc: 'use at most this many images per class (smoke runs); 0: all',
  },
  limit_train_batches: { type: 'int', min: 0, max: 1e9, default: 0, doc: 'train batches per epoch at most; 0: all' },
  seed: { type: 'int', min: 0, max: 2 ** 31 - 1, default: 42, doc: 'seed of libtorch (dropout) and the sampler' },
  runs_dir: { type: 'string', default: 'runs', doc: 'where run folders go' },
  progress: {
    type: 'enum',
    values: ['auto', 'bar', 'plain', 'json', 'none'],
    default: 'auto',
    doc: 'auto: bar on a terminal, plain lines otherwise',
  },
  evaluate_test: { type: 'bool', default: true, doc: 'evaluate the best model on the test split at the end' },
} as const satisfies SectionSpec;

/** `data` (configs/data.yaml) is described in the data room, which reads it: src/data/section.ts. */
export { AUGMENT_SPEC, DATA_SPEC } from '../data/section.js';
