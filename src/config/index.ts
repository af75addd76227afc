import { join } from 'node:path';

import { DATA_KEYS as DATA_SECTION_KEYS, parseDataConfig, type DataConfig } from '../data/config.js';
import { ConfigError } from '../errors.js';
import { applyOverrides, composeConfig, defaultConfigDir, type RawConfig } from './load.js';
import { parseSection, type SectionOf } from './schema.js';
import { MODEL_SPEC, TRAINER_SPEC } from './sections.js';

export type ModelConfig = SectionOf<typeof MODEL_SPEC>;
export type TrainerConfig = SectionOf<typeof TRAINER_SPEC>;

/** The resolved configuration of a training run. */
export interface TrainConfig {
  data: DataConfig & { batchSize: number };
  model: ModelConfig;
  trainer: TrainerConfig;
  /** MLflow experiment name (used when MLFLOW_TRACKING_URI is set). */
  experiment: string;
}

const DATA_KEYS = [...DATA_SECTION_KEYS, 'batch_size'];

/** Known keys per section, for override checking and "did you mean" hints. */
export function knownKeys(section: string): readonly string[] | undefined {
  if (section === 'model') return Object.keys(MODEL_SPEC);
  if (section === 'trainer') return Object.keys(TRAINER_SPEC);
  if (section === 'data') return DATA_KEYS;
  if (section === 'experiment') return [];
  return undefined;
}

/** Validates a composed raw config. Unknown sections and keys are errors. */
export function parseTrainConfig(raw: RawConfig): TrainConfig {
  for (const key of Object.keys(raw)) {
    if (!knownKeys(key))
      throw new ConfigError(`Unknown config section \`${key}\`; known: data, model, trainer, experiment`);
  }
  const rawData = { ...((raw.data as RawConfig | undefined) ?? {}) };
  const batch = rawData.batch_size ?? 16;
  delete rawData.batch_size;
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 4096) {
    throw new ConfigError(
      `Expected an integer between 1 and 4096 for \`data.batch_size\` but received ${JSON.stringify(batch)}`,
    );
  }
  const experiment = raw.experiment ?? 'flower_classifier';
  if (typeof experiment !== 'string' || !experiment) {
    throw new ConfigError(`Expected a non-empty string for \`experiment\` but received ${JSON.stringify(experiment)}`);
  }
  return {
    data: { ...parseDataConfig(rawData), batchSize: batch },
    model: parseSection('model', MODEL_SPEC, raw.model),
    trainer: parseSection('trainer', TRAINER_SPEC, raw.trainer),
    experiment,
  };
}

/** Options of loadTrainConfig. */
export interface LoadConfigOptions {
  /** The top config file. Defaults to the package's configs/train.yaml. */
  file?: string;
  /** `key=value` overrides, applied in order after composition. Defaults to none. */
  overrides?: readonly string[];
}

/** Composes configs/train.yaml (+ its defaults), applies overrides and validates. Throws ConfigError. */
export function loadTrainConfig(options: LoadConfigOptions = {}): { config: TrainConfig; raw: RawConfig } {
  const file = options.file ?? join(defaultConfigDir, 'train.yaml');
  const raw = applyOverrides(composeConfig(file), options.overrides ?? [], knownKeys);
  return { config: parseTrainConfig(raw), raw };
}
