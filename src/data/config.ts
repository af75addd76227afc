import fs from 'node:fs/promises';

import YAML from 'yaml';

import { ConfigError } from '../errors.js';
import { DEFAULT_MAX_FILE_BYTES } from '../util/fs.js';
import { describeJson } from '../util/describe.js';

/** The five tf_flowers classes, in label order. */
export const DEFAULT_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'] as const;

/** File extensions the indexer accepts (compared lower-case). */
export const SUPPORTED_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'] as const;

/** Public URL and checksum of the tf_flowers archive (from TensorFlow Datasets' url_checksums). */
export const TF_FLOWERS_URL = 'https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz';
export const TF_FLOWERS_SHA256 = '4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c';

/** How images are resized to the model input. */
export type ResizeMode = 'fill' | 'center-crop';

/** Training-time augmentation. Never applied to evaluation batches. */
export interface AugmentConfig {
  /** Turns every augmentation on or off. Defaults to true. */
  enabled: boolean;
  /** Random resized crop area range, as fractions of the image. Defaults to [0.6, 1]. */
  cropScale: [number, number];
  /** Random resized crop aspect-ratio range (width / height). Defaults to [3/4, 4/3]. */
  cropRatio: [number, number];
  /** Probability of a horizontal flip. Defaults to 0.5. */
  flipProbability: number;
  /** Brightness jitter: factor drawn from [1 - b, 1 + b]. Defaults to 0.1. */
  brightness: number;
  /** Contrast jitter: factor drawn from [1 - c, 1 + c]. Defaults to 0.1. */
  contrast: number;
  /** Saturation jitter: factor drawn from [1 - s, 1 + s]. Defaults to 0.1. */
  saturation: number;
}

/** The `data` section of the configuration (configs/data.yaml). */
export interface DataConfig {
  /** Folder holding one sub-folder per class. Defaults to unset (see resolveDataDir). */
  root?: string;
  /** Class folder names, in label order. Defaults to daisy, dandelion, roses, sunflowers, tulips. */
  classes: string[];
  /** Model input height and width. Defaults to 224. */
  imageSize: number;
  /** 'fill' stretches to size×size (the original behaviour); 'center-crop' resizes the shorter side then crops. Defaults to 'fill'. */
  resize: ResizeMode;
  /** Largest accepted image in pixels (decompression-bomb guard). Defaults to 50,000,000. */
  maxPixels: number;
  /** Largest image file read, in bytes (a FIFO, a device or a huge file is refused without being read). Defaults to 64 MiB. */
  maxFileBytes: number;
  /** Train / val / test fractions; they must sum to 1. Defaults to [0.7, 0.15, 0.15]. */
  split: [number, number, number];
  /** Seed of the split, the triplet sampler and augmentation. Defaults to 42. */
  seed: number;
  /** Images decoded at once by sharp. Defaults to 4. */
  concurrency: number;
  /** Batches prepared ahead of the consumer. Defaults to 2. */
  prefetch: number;
  /** Memory bound of the decoded-image cache in MiB (0 turns it off). Defaults to 1024. */
  cacheMiB: number;
  /** Sample triplet queries so that every class is equally frequent. Defaults to false. */
  balanced: boolean;
  /** Training augmentation. */
  augment: AugmentConfig;
  /** Archive URL for `data fetch`. Defaults to TensorFlow's flower_photos.tgz. */
  url: string;
  /** Expected sha256 of the archive. Defaults to the published tf_flowers checksum. */
  sha256: string;
}

export const DEFAULT_AUGMENT: AugmentConfig = {
  enabled: true,
  cropScale: [0.6, 1],
  cropRatio: [3 / 4, 4 / 3],
  flipProbability: 0.5,
  brightness: 0.1,
  contrast: 0.1,
  saturation: 0.1,
};

export const DEFAULT_DATA_CONFIG: DataConfig = {
  classes: [...DEFAULT_CLASSES],
  imageSize: 224,
  resize: 'fill',
  maxPixels: 50_000_000,
  maxFileBytes: DEFAULT_MAX_FILE_BYTES,
  split: [0.7, 0.15, 0.15],
  seed: 42,
  concurrency: 4,
  prefetch: 2,
  cacheMiB: 1024,
  balanced: false,
  augment: DEFAULT_AUGMENT,
  url: TF_FLOWERS_URL,
  sha256: TF_FLOWERS_SHA256,
};

/** The keys of the YAML `data` section (snake_case, as in the original project's configs). */
export const DATA_KEYS = [
  'root',
  'classes',
  'image_size',
  'resize',
  'max_pixels',
  'max_file_bytes',
  'split',
  'seed',
  'concurrency',
  'prefetch',
  'cache_mib',
  'balanced',
  'augment',
  'url',
  'sha256',
];
export const AUGMENT_KEYS = [
  'enabled',
  'crop_scale',
  'crop_ratio',
  'flip_probability',
  'brightness',
  'contrast',
  'saturation',
];

function num(key: string, v: unknown, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const kind = integer ? 'integer' : 'number';
    throw new ConfigError(
      `Expected ${kind} between ${min} and ${max} for \`data.${key}\` but received ${describeJson(v)}`,
    );
  }
  return v;
}

function range(key: string, v: unknown, min: number, max: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) {
    throw new ConfigError(`Expected [low, high] for \`data.${key}\` but received ${describeJson(v)}`);
  }
  const lo = num(`${key}[0]`, v[0], min, max);
  const hi = num(`${key}[1]`, v[1], lo, max);
  return [lo, hi];
}

function parseAugment(raw: unknown): AugmentConfig {
  if (raw === undefined) return { ...DEFAULT_AUGMENT };
  if (typeof raw === 'boolean') return { ...DEFAULT_AUGMENT, enabled: raw };
  if (typeof raw !== 'object' || raw === null) {
    throw new ConfigError(`Expected an object or boolean for \`data.augment\` but received ${describeJson(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!AUGMENT_KEYS.includes(key)) {
      throw new ConfigError(`Unknown key \`data.augment.${key}\`; known keys: ${AUGMENT_KEYS.join(', ')}`);
    }
  }
  const d = DEFAULT_AUGMENT;
  if (r.enabled !== undefined && typeof r.enabled !== 'boolean') {
    throw new ConfigError(`Expected boolean for \`data.augment.enabled\` but received ${describeJson(r.enabled)}`);
  }
  return {
    enabled: (r.enabled as boolean | undefined) ?? d.enabled,
    cropScale: r.crop_scale === undefined ? d.cropScale : range('augment.crop_scale', r.crop_scale, 0.01, 1),
    cropRatio: r.crop_ratio === undefined ? d.cropRatio : range('augment.crop_ratio', r.crop_ratio, 0.1, 10),
    flipProbability:
      r.flip_probability === undefined ? d.flipProbability : num('augment.flip_probability', r.flip_probability, 0, 1),
    brightness: r.brightness === undefined ? d.brightness : num('augment.brightness', r.brightness, 0, 1),
    contrast: r.contrast === undefined ? d.contrast : num('augment.contrast', r.contrast, 0, 1),
    saturation: r.saturation === undefined ? d.saturation : num('augment.saturation', r.saturation, 0, 1),
  };
}

/** Validates a raw `data` section (from YAML or an object) and fills defaults. Throws ConfigError naming the key. */
export function parseDataConfig(raw: unknown = {}): DataConfig {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`Expected an object for \`data\` but received ${describeJson(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!DATA_KEYS.includes(key))
      throw new ConfigError(`Unknown key \`data.${key}\`; known keys: ${DATA_KEYS.join(', ')}`);
  }
  const d = DEFAULT_DATA_CONFIG;
  const str = (key: string, v: unknown): string => {
    if (typeof v !== 'string' || v.length === 0) {
      throw new ConfigError(`Expected a non-empty string for \`data.${key}\` but received ${describeJson(v)}`);
    }
    return v;
  };
  let classes = d.classes;
  if (r.classes !== undefined) {
    if (!Array.isArray(r.classes) || r.classes.length < 2 || r.classes.some((c) => typeof c !== 'string' || !c)) {
      throw new ConfigError(
        `Expected at least two class names for \`data.classes\` but received ${describeJson(r.classes)}`,
      );
    }
    if (new Set(r.classes).size !== r.classes.length) throw new ConfigError('`data.classes` has a repeated name');
    classes = r.classes as string[];
  }
  let split = d.split;
  if (r.split !== undefined) {
    if (!Array.isArray(r.split) || r.split.length !== 3) {
      throw new ConfigError(
        `Expected [train, val, test] fractions for \`data.split\` but received ${describeJson(r.split)}`,
      );
    }
    split = [num('split[0]', r.split[0], 0, 1), num('split[1]', r.split[1], 0, 1), num('split[2]', r.split[2], 0, 1)];
    if (Math.abs(split[0] + split[1] + split[2] - 1) > 1e-6) {
      throw new ConfigError(`\`data.split\` fractions must sum to 1 but sum to ${split[0] + split[1] + split[2]}`);
    }
  }
  if (r.resize !== undefined && r.resize !== 'fill' && r.resize !== 'center-crop') {
    throw new ConfigError(
      `Expected 'fill' or 'center-crop' for \`data.resize\` but received ${describeJson(r.resize)}`,
    );
  }
  if (r.balanced !== undefined && typeof r.balanced !== 'boolean') {
    throw new ConfigError(`Expected boolean for \`data.balanced\` but received ${describeJson(r.balanced)}`);
  }
  const sha = r.sha256 === undefined ? d.sha256 : str('sha256', r.sha256).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha))
    throw new ConfigError(`Expected 64 hex digits for \`data.sha256\` but received ${describeJson(sha)}`);
  return {
    ...(r.root !== undefined ? { root: str('root', r.root) } : {}),
    classes,
    imageSize: r.image_size === undefined ? d.imageSize : num('image_size', r.image_size, 8, 4096, true),
    resize: (r.resize as ResizeMode | undefined) ?? d.resize,
    maxPixels: r.max_pixels === undefined ? d.maxPixels : num('max_pixels', r.max_pixels, 1, 2 ** 40, true),
    maxFileBytes:
      r.max_file_bytes === undefined ? d.maxFileBytes : num('max_file_bytes', r.max_file_bytes, 1, 2 ** 31, true),
    split,
    seed: r.seed === undefined ? d.seed : num('seed', r.seed, 0, 2 ** 32 - 1, true),
    concurrency: r.concurrency === undefined ? d.concurrency : num('concurrency', r.concurrency, 1, 64, true),
    prefetch: r.prefetch === undefined ? d.prefetch : num('prefetch', r.prefetch, 0, 64, true),
    cacheMiB: r.cache_mib === undefined ? d.cacheMiB : num('cache_mib', r.cache_mib, 0, 1 << 20),
    balanced: (r.balanced as boolean | undefined) ?? d.balanced,
    augment: parseAugment(r.augment),
    url: r.url === undefined ? d.url : str('url', r.url),
    sha256: sha,
  };
}

/** Reads a YAML file whose top level is either the data section itself or has a `data:` key. */
export async function loadDataConfig(file: string): Promise<DataConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read data config '${file}': ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`'${file}' is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const section = doc && typeof doc === 'object' && 'data' in doc ? (doc as { data: unknown }).data : doc;
  // batch_size sits in data.yaml for the trainer; the data pipeline itself takes it per loader.
  const { batch_size: _batch, ...rest } = (section ?? {}) as Record<string, unknown>;
  return parseDataConfig(rest);
}
