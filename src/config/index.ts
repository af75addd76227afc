import { join } from 'node:path';

import { dataSectionOf, isCamelCaseData, toDataSection, type DataConfig } from '../data/config.js';
import { DATA_SPEC, type DataSection } from '../data/section.js';
import { ConfigError } from '../errors.js';
import { parseSection, type SectionOf, type SectionSpec } from '../util/schema.js';
import { applyOverrides, composeConfig, defaultConfigDir, type RawConfig } from './load.js';
import { MODEL_SPEC, TRAINER_SPEC } from './sections.js';

export type ModelConfig = SectionOf<typeof MODEL_SPEC>;
export type TrainerConfig = SectionOf<typeof TRAINER_SPEC>;

/** The resolved configuration of a training run: every section with the keys of the YAML (snake_case). */
export interface TrainConfig {
  /** The data set and pipeline, `batch_size` included. */
  data: DataSection;
  model: ModelConfig;
  trainer: TrainerConfig;
  /** MLflow experiment name (used when MLFLOW_TRACKING_URI is set). */
  experiment: string;
}

/**
 * A TrainConfig whose data section is in the earlier camelCase form (imageSize, batchSize, ...).
 * @deprecated Use TrainConfig (its data section is snake_case, as in the YAML); withDataSection converts.
 */
export type CamelCaseTrainConfig = Omit<TrainConfig, 'data'> & { data: DataConfig & { batchSize: number } };

/** The schema of each section; `experiment` is a plain string. */
export const SECTION_SPECS: Readonly<Record<'data' | 'model' | 'trainer', SectionSpec>> = {
  data: DATA_SPEC,
  model: MODEL_SPEC,
  trainer: TRAINER_SPEC,
};

/** The schema of a section, or undefined for `experiment` (a string) and unknown sections. */
export function sectionSpec(section: string): SectionSpec | undefined {
  return Object.hasOwn(SECTION_SPECS, section) ? SECTION_SPECS[section as keyof typeof SECTION_SPECS] : undefined;
}

/** Known keys per section, for override checking and "did you mean" hints. */
export function knownKeys(section: string): readonly string[] | undefined {
  if (section === 'experiment') return [];
  const spec = sectionSpec(section);
  return spec ? Object.keys(spec) : undefined;
}

/** Validates a composed raw config. Unknown sections and keys are errors. */
export function parseTrainConfig(raw: RawConfig): TrainConfig {
  for (const key of Object.keys(raw)) {
    if (!knownKeys(key))
      throw new ConfigError(`Unknown config section \`${key}\`; known: data, model, trainer, experiment`);
  }
  const experiment = raw.experiment ?? 'flower_classifier';
  if (typeof experiment !== 'string' || !experiment) {
    throw new ConfigError(`Expected a non-empty string for \`experiment\` but received ${JSON.stringify(experiment)}`);
  }
  const config = {
    data: parseSection('data', DATA_SPEC, raw.data),
    model: parseSection('model', MODEL_SPEC, raw.model),
    trainer: parseSection('trainer', TRAINER_SPEC, raw.trainer),
    experiment,
  };
  if (config.trainer.max_epochs === 0 && config.model.head_epochs === 0) {
    throw new ConfigError(
      '`trainer.max_epochs` is 0 and `model.head_epochs` is 0: nothing would be trained. Set trainer.max_epochs to ' +
        'at least 1, or model.head_epochs to at least 1 for a run that trains the head alone',
    );
  }
  return config;
}

/**
 * Validates the config.yaml of a run folder. A run written by train() without its raw config before the data
 * section took the YAML's casing holds the camelCase form (imageSize, batchSize, ...): it is read as such.
 */
export function parseRunConfig(raw: RawConfig): TrainConfig {
  if (raw && typeof raw === 'object' && isCamelCaseData(raw.data)) {
    raw = { ...raw, data: toDataSection(raw.data as Partial<DataConfig>) };
  }
  return parseTrainConfig(raw);
}

/**
 * The config with its data section in the snake_case form: as it is, or converted from the camelCase form (one
 * DeprecationWarning per process naming `where`).
 */
export function withDataSection(config: TrainConfig | CamelCaseTrainConfig, where: string): TrainConfig {
  const data = dataSectionOf(config.data, where);
  return data === config.data ? (config as TrainConfig) : { ...config, data };
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
  const raw = applyOverrides(composeConfig(file), options.overrides ?? [], (section) =>
    section === 'experiment' ? {} : sectionSpec(section),
  );
  return { config: parseTrainConfig(raw), raw };
}
