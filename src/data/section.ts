import fs from 'node:fs/promises';

import YAML from 'yaml';

import { ConfigError } from '../errors.js';
import { DEFAULT_MAX_FILE_BYTES } from '../util/fs.js';
import { defaultsOf, parseSection, type SectionOf, type SectionSpec } from '../util/schema.js';

/** The five tf_flowers classes, in label order. */
export const DEFAULT_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'] as const;

/** File extensions the indexer accepts (compared lower-case). */
export const SUPPORTED_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'] as const;

/** Public URL and checksum of the tf_flowers archive (from TensorFlow Datasets' url_checksums). */
export const TF_FLOWERS_URL = 'https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz';
export const TF_FLOWERS_SHA256 = '4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c';

/** How images are resized to the model input. */
export type ResizeMode = 'fill' | 'center-crop';

/** `data.augment`: training-time augmentation, never applied to evaluation batches. `augment: false` turns it off. */
export const AUGMENT_SPEC = {
  enabled: { type: 'bool', default: true, doc: 'turns every augmentation on or off' },
  crop_scale: {
    type: 'tuple',
    names: ['low', 'high'],
    min: 0.01,
    max: 1,
    ordered: true,
    default: [0.6, 1],
    doc: 'random resized crop: area range, as fractions of the image',
  },
  crop_ratio: {
    type: 'tuple',
    names: ['low', 'high'],
    min: 0.1,
    max: 10,
    ordered: true,
    default: [3 / 4, 4 / 3],
    doc: 'random resized crop: aspect-ratio range (width / height)',
  },
  flip_probability: { type: 'number', min: 0, max: 1, default: 0.5, doc: 'probability of a horizontal flip' },
  brightness: { type: 'number', min: 0, max: 1, default: 0.1, doc: 'brightness jitter: factor in [1 - b, 1 + b]' },
  contrast: { type: 'number', min: 0, max: 1, default: 0.1, doc: 'contrast jitter: factor in [1 - c, 1 + c]' },
  saturation: { type: 'number', min: 0, max: 1, default: 0.1, doc: 'saturation jitter: factor in [1 - s, 1 + s]' },
  downscale_probability: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0,
    doc: 'probability of shrinking the crop and enlarging it back (small, upscaled real-world photos)',
  },
  downscale: {
    type: 'tuple',
    names: ['low', 'high'],
    min: 0.05,
    max: 1,
    ordered: true,
    default: [0.25, 0.75],
    doc: 'downscale: the size it is shrunk to, as a fraction of the side',
  },
  jpeg_probability: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0,
    doc: 'probability of JPEG-compressing the crop and decoding it again (compression artefacts)',
  },
  jpeg_quality: {
    type: 'tuple',
    names: ['low', 'high'],
    min: 1,
    max: 100,
    ordered: true,
    default: [30, 90],
    doc: 'JPEG artefacts: the quality range, drawn uniformly and rounded',
  },
  erase_probability: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0,
    doc: 'probability of random erasing: a box of the input set to the mean colour',
  },
  erase_scale: {
    type: 'tuple',
    names: ['low', 'high'],
    min: 0.001,
    max: 1,
    ordered: true,
    default: [0.02, 0.2],
    doc: 'random erasing: the box area range, as fractions of the image (aspect ratio 0.3-3.3)',
  },
  policy: {
    type: 'enum',
    values: ['none', 'trivial'],
    default: 'none',
    doc:
      'trivial: one op per image drawn uniformly (TrivialAugment) from identity, rotate, shear_x, shear_y, ' +
      'translate_x, translate_y, brightness, color, contrast, sharpness, posterize, solarize, autocontrast, ' +
      'equalize, at a uniform magnitude in [0, policy_magnitude]',
  },
  policy_magnitude: {
    type: 'number',
    min: 0,
    max: 1,
    default: 1,
    doc:
      "the policy's largest magnitude; at 1: rotate 30 degrees, shear 0.3, translate 0.3 of the side, " +
      'enhance factors 1 +- 0.9, posterize to 4 bits, solarize every pixel',
  },
} as const satisfies SectionSpec;

/** `data`: the data set and the pipeline from photos to batches (configs/data.yaml). */
export const DATA_SPEC = {
  root: {
    type: 'string',
    optional: true,
    doc: 'folder holding one sub-folder per class; unset: --data-dir, else TRT_FLOWERS_DATA',
  },
  classes: {
    type: 'strings',
    minItems: 2,
    unique: true,
    items: 'class names',
    default: DEFAULT_CLASSES,
    doc: 'class folder names, in label order',
  },
  image_size: { type: 'int', min: 8, max: 4096, default: 224, doc: 'model input height and width' },
  eval_image_size: {
    type: 'int',
    min: 0,
    max: 4096,
    default: 0,
    doc:
      'input size of validation, test and the trained model (what inference uses); 0: image_size. Random crops ' +
      'show the training step objects larger than a whole photo does, so a size above image_size (e.g. 224 for ' +
      '160) often classifies better at the same training cost',
  },
  resize: {
    type: 'enum',
    values: ['fill', 'center-crop'],
    default: 'fill',
    doc: "'fill' stretches to size x size (the original behaviour); 'center-crop' resizes the shorter side, then crops",
  },
  max_pixels: {
    type: 'int',
    min: 1,
    max: 2 ** 40,
    default: 50_000_000,
    doc: 'largest accepted image in pixels (decompression-bomb guard)',
  },
  max_file_bytes: {
    type: 'int',
    min: 1,
    max: 2 ** 31,
    default: DEFAULT_MAX_FILE_BYTES,
    doc: 'largest image file read, in bytes (a FIFO, a device or a bigger file is refused without being read)',
  },
  split: {
    type: 'tuple',
    names: ['train', 'val', 'test'],
    min: 0,
    max: 1,
    default: [0.7, 0.15, 0.15],
    doc: 'train / val / test fractions, summing to 1',
    check: (v) => {
      const sum = v.reduce((a, b) => a + b, 0);
      return Math.abs(sum - 1) > 1e-6 ? `fractions must sum to 1 but sum to ${Number(sum.toPrecision(12))}` : undefined;
    },
  },
  seed: {
    type: 'int',
    min: 0,
    max: 2 ** 32 - 1,
    default: 42,
    doc: 'seed of the split, the triplet sampler and augmentation',
  },
  concurrency: { type: 'int', min: 1, max: 64, default: 4, doc: 'images decoded at once' },
  prefetch: { type: 'int', min: 0, max: 64, default: 2, doc: 'batches prepared ahead of the consumer' },
  cache_mib: {
    type: 'number',
    min: 0,
    max: 2 ** 20,
    default: 1024,
    doc: 'memory bound of the decoded-image cache in MiB; 0: off',
  },
  balanced: {
    type: 'bool',
    default: false,
    doc: 'sample triplet queries so that every class is equally frequent',
  },
  batch_size: {
    type: 'int',
    min: 1,
    max: 4096,
    default: 16,
    doc: 'triplets per training step (images per step: 3x), and images per evaluation batch',
  },
  augment: { type: 'section', spec: AUGMENT_SPEC, shorthand: 'enabled', doc: 'training augmentation' },
  url: { type: 'string', default: TF_FLOWERS_URL, doc: 'archive URL for `data fetch`' },
  sha256: {
    type: 'string',
    default: TF_FLOWERS_SHA256,
    lowercase: true,
    pattern: /^[0-9a-f]{64}$/,
    patternDoc: '64 hex digits',
    doc: 'expected sha256 of the archive',
  },
} as const satisfies SectionSpec;

/** The `data` section as typed object: the keys of the YAML (snake_case), with every default filled in. */
export type DataSection = SectionOf<typeof DATA_SPEC>;
/** `data.augment` as typed object. */
export type AugmentSection = SectionOf<typeof AUGMENT_SPEC>;

/** The keys of the YAML `data` section. */
export const DATA_KEYS: readonly string[] = Object.keys(DATA_SPEC);
/** The keys of `data.augment`. */
export const AUGMENT_KEYS: readonly string[] = Object.keys(AUGMENT_SPEC);

/** Validates a raw `data` section (from YAML or an object) and fills defaults. Throws ConfigError naming the key. */
export function parseDataSection(raw: unknown = {}): DataSection {
  return parseSection('data', DATA_SPEC, raw);
}

/** Every default of the `data` section (a fresh object each call). */
export function defaultDataSection(): DataSection {
  return defaultsOf('data', DATA_SPEC);
}

/** Reads a YAML file whose top level is either the data section itself or has a `data:` key, and validates it. */
export async function loadDataSection(file: string): Promise<DataSection> {
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
  return parseDataSection(section);
}

/** The input size a trained model is evaluated and used at: data.eval_image_size, or data.image_size when 0. */
export function inferenceImageSize(d: { image_size: number; eval_image_size?: number }): number {
  return d.eval_image_size && d.eval_image_size > 0 ? d.eval_image_size : d.image_size;
}
