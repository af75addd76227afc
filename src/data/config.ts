/**
 * The `data` section's earlier, camelCase form (DataConfig: imageSize, maxPixels, cacheMiB, augment.cropScale, ...),
 * kept working beside the snake_case DataSection that every part now takes, with converters both ways. Public
 * functions that are given a camelCase object convert it and warn once per process (DeprecationWarning, code
 * CAMELCASE_DATA_CODE).
 */
import { augmentOptionsOf, DEFAULT_AUGMENT, type AugmentOptions } from './options.js';
import { loadDataSection, parseDataSection, type DataSection, type ResizeMode } from './section.js';

export * from './section.js';
export { DEFAULT_AUGMENT, type AugmentOptions };

/** @deprecated The augmentation options are AugmentOptions (the config section is AugmentSection). */
export type AugmentConfig = AugmentOptions;

/**
 * The `data` section in camelCase.
 * @deprecated Use DataSection (snake_case, the keys of the YAML; parseDataSection, loadDataSection). toDataSection
 * converts.
 */
export interface DataConfig {
  /** Folder holding one sub-folder per class. Defaults to unset (see resolveDataDir). */
  root?: string;
  /** Class folder names, in label order. Defaults to daisy, dandelion, roses, sunflowers, tulips. */
  classes: string[];
  /** Model input height and width. Defaults to 224. */
  imageSize: number;
  /** 'fill' stretches to size×size; 'center-crop' resizes the shorter side then crops. Defaults to 'fill'. */
  resize: ResizeMode;
  /** Largest accepted image in pixels (decompression-bomb guard). Defaults to 50,000,000. */
  maxPixels: number;
  /** Largest image file read, in bytes. Defaults to 64 MiB. */
  maxFileBytes: number;
  /** Train / val / test fractions; they must sum to 1. Defaults to [0.7, 0.15, 0.15]. */
  split: [number, number, number];
  /** Seed of the split, the triplet sampler and augmentation. Defaults to 42. */
  seed: number;
  /** Images decoded at once. Defaults to 4. */
  concurrency: number;
  /** Batches prepared ahead of the consumer. Defaults to 2. */
  prefetch: number;
  /** Memory bound of the decoded-image cache in MiB (0 turns it off). Defaults to 1024. */
  cacheMiB: number;
  /** Sample triplet queries so that every class is equally frequent. Defaults to false. */
  balanced: boolean;
  /** Training augmentation. */
  augment: AugmentOptions;
  /** Archive URL for `data fetch`. Defaults to TensorFlow's flower_photos.tgz. */
  url: string;
  /** Expected sha256 of the archive. Defaults to the published tf_flowers checksum. */
  sha256: string;
  /** Triplets per training step (TrainConfig's data section carried it). Defaults to 16. */
  batchSize?: number;
}

/** The DeprecationWarning code of a camelCase data section given to a public function. */
export const CAMELCASE_DATA_CODE = 'TRT_FLOWERS_DEP_CAMELCASE_DATA';

/** camelCase key -> snake_case key, for the keys whose spelling differs. */
const RENAMED: Readonly<Record<string, string>> = {
  imageSize: 'image_size',
  maxPixels: 'max_pixels',
  maxFileBytes: 'max_file_bytes',
  cacheMiB: 'cache_mib',
  batchSize: 'batch_size',
};
const RENAMED_AUGMENT: Readonly<Record<string, string>> = {
  cropScale: 'crop_scale',
  cropRatio: 'crop_ratio',
  flipProbability: 'flip_probability',
  downscaleProbability: 'downscale_probability',
  jpegProbability: 'jpeg_probability',
  jpegQuality: 'jpeg_quality',
  eraseProbability: 'erase_probability',
  eraseScale: 'erase_scale',
  policyMagnitude: 'policy_magnitude',
};

/** Whether `data` is written in the camelCase form (it has a key only that form spells so). */
export function isCamelCaseData(data: unknown): boolean {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return false;
  if (Object.keys(data).some((k) => k in RENAMED)) return true;
  const augment = (data as { augment?: unknown }).augment;
  return !!augment && typeof augment === 'object' && Object.keys(augment).some((k) => k in RENAMED_AUGMENT);
}

/**
 * Converts a camelCase data section (a whole DataConfig or part of one) to the snake_case DataSection, validating
 * every value and filling the defaults. Unknown keys are ConfigErrors, as in the YAML.
 */
export function toDataSection(config: Partial<DataConfig> | Record<string, unknown>): DataSection {
  const rename = (obj: object, names: Readonly<Record<string, string>>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(obj).map(([k, v]) => [names[k] ?? k, v]));
  const raw = rename(config, RENAMED);
  if (raw.augment && typeof raw.augment === 'object') raw.augment = rename(raw.augment, RENAMED_AUGMENT);
  return parseDataSection(raw);
}

/** Converts a DataSection to the camelCase DataConfig (batch_size becomes batchSize). */
export function toDataConfig(d: DataSection): DataConfig & { batchSize: number } {
  return {
    ...(d.root !== undefined ? { root: d.root } : {}),
    classes: [...d.classes],
    imageSize: d.image_size,
    resize: d.resize,
    maxPixels: d.max_pixels,
    maxFileBytes: d.max_file_bytes,
    split: [...d.split],
    seed: d.seed,
    concurrency: d.concurrency,
    prefetch: d.prefetch,
    cacheMiB: d.cache_mib,
    balanced: d.balanced,
    augment: augmentOptionsOf(d.augment),
    url: d.url,
    sha256: d.sha256,
    batchSize: d.batch_size,
  };
}

const warned = new Set<string>();

/** Warns once per process that `where` was given a camelCase data section. */
export function warnCamelCaseData(where: string): void {
  if (warned.has(CAMELCASE_DATA_CODE)) return;
  warned.add(CAMELCASE_DATA_CODE);
  process.emitWarning(
    `${where} was given a camelCase data section (imageSize, maxPixels, cacheMiB, augment.cropScale, ...); ` +
      'it is converted, but pass the snake_case form of the YAML (image_size, max_pixels, cache_mib, ' +
      'augment.crop_scale, ...: parseDataSection, or toDataSection to convert)',
    { type: 'DeprecationWarning', code: CAMELCASE_DATA_CODE },
  );
}

/**
 * The DataSection of what a public function was given: a DataSection as it is, a camelCase DataConfig converted
 * (with one DeprecationWarning per process naming `where`).
 */
export function dataSectionOf(data: DataSection | DataConfig, where: string): DataSection {
  if (!isCamelCaseData(data)) return data as DataSection;
  warnCamelCaseData(where);
  return toDataSection(data as DataConfig);
}

/**
 * Validates a raw `data` section (from YAML: snake_case keys) into the camelCase DataConfig.
 * @deprecated Use parseDataSection, which returns the snake_case DataSection.
 */
export function parseDataConfig(raw: unknown = {}): DataConfig {
  const { batchSize: _batch, ...config } = toDataConfig(parseDataSection(raw));
  return config;
}

/**
 * Every default of the `data` section, camelCase.
 * @deprecated Use defaultDataSection().
 */
export const DEFAULT_DATA_CONFIG: DataConfig = parseDataConfig({});

/**
 * Reads a data config YAML file into the camelCase DataConfig.
 * @deprecated Use loadDataSection.
 */
export async function loadDataConfig(file: string): Promise<DataConfig> {
  const { batchSize: _batch, ...config } = toDataConfig(await loadDataSection(file));
  return config;
}
