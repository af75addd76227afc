import type { SplitManifest } from './split.js';
import {
  defaultDataSection,
  inferenceImageSize,
  type AugmentSection,
  type DataSection,
  type ResizeMode,
} from './section.js';

/**
 * The one place where the `data` section (snake_case, as in the YAML files) becomes the options of the parts that
 * read data: the indexer, the split, augmentation and the DataLoader. Values were checked by the section schema;
 * each part checks its own options again.
 */

/** Training-time augmentation, as drawAugmentParams and DataLoader take it. Never applied to evaluation batches. */
export interface AugmentOptions {
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
  /** Probability of shrinking the crop and enlarging it back. Defaults to 0. */
  downscaleProbability: number;
  /** The side it is shrunk to, as a fraction. Defaults to [0.25, 0.75]. */
  downscale: [number, number];
  /** Probability of a JPEG round trip of the crop. Defaults to 0. */
  jpegProbability: number;
  /** JPEG quality range. Defaults to [30, 90]. */
  jpegQuality: [number, number];
  /** Probability of random erasing. Defaults to 0. */
  eraseProbability: number;
  /** Erased box area range, as fractions of the image. Defaults to [0.02, 0.2]. */
  eraseScale: [number, number];
  /** 'trivial': one op of POLICY_OPS per image, at a uniform magnitude (TrivialAugment). Defaults to 'none'. */
  policy: 'none' | 'trivial';
  /** The policy's largest magnitude, in [0, 1]. Defaults to 1. */
  policyMagnitude: number;
}

/** Options of DataLoader. */
export interface DataLoaderOptions {
  /** Data folder the split's relative paths resolve against. */
  root: string;
  /** The split (see createSplit / loadOrCreateSplit). */
  split: SplitManifest;
  /** Triplets (or eval images) per batch. Defaults to 16. */
  batchSize?: number;
  /** Model input height and width. Defaults to 224. */
  imageSize?: number;
  /** Input size of evaluation batches (validation, test: what the trained model is used at). Defaults to imageSize. */
  evalImageSize?: number;
  /** Resize mode. Defaults to 'fill'. */
  resize?: ResizeMode;
  /** Largest accepted image in pixels. Defaults to 50,000,000. */
  maxPixels?: number;
  /** Largest image file read, in bytes; a FIFO, a device or a bigger file fails its batch. Defaults to 64 MiB. */
  maxFileBytes?: number;
  /** Images decoded at once, across all batches in preparation. Defaults to 4. */
  concurrency?: number;
  /** Batches prepared ahead of the consumer (0: prepare only on demand). Defaults to 2. */
  prefetch?: number;
  /** Decoded-image cache bound in MiB (0 disables it). Defaults to 1024. */
  cacheMiB?: number;
  /** Training augmentation, or false for none. Defaults to DEFAULT_AUGMENT. */
  augment?: Partial<AugmentOptions> | false;
  /** Class-balanced triplet queries. Defaults to false. */
  balanced?: boolean;
  /** Seed of the triplet sampler and augmentation. Defaults to the split's seed. */
  seed?: number;
  /** Drop the last incomplete training batch. Defaults to false. */
  dropLast?: boolean;
  /** Normalisation mean. Defaults to ImageNet's. */
  mean?: readonly [number, number, number];
  /** Normalisation std. Defaults to ImageNet's. */
  std?: readonly [number, number, number];
}

/** The augmentation options of `data.augment`. */
export function augmentOptionsOf(a: AugmentSection): AugmentOptions {
  return {
    enabled: a.enabled,
    cropScale: [...a.crop_scale],
    cropRatio: [...a.crop_ratio],
    flipProbability: a.flip_probability,
    brightness: a.brightness,
    contrast: a.contrast,
    saturation: a.saturation,
    downscaleProbability: a.downscale_probability,
    downscale: [...a.downscale],
    jpegProbability: a.jpeg_probability,
    jpegQuality: [...a.jpeg_quality],
    eraseProbability: a.erase_probability,
    eraseScale: [...a.erase_scale],
    policy: a.policy,
    policyMagnitude: a.policy_magnitude,
  };
}

/** The default augmentation (the defaults of `data.augment`). */
export const DEFAULT_AUGMENT: AugmentOptions = augmentOptionsOf(defaultDataSection().augment);

/** What indexDataset needs of the data section. */
export function indexOptionsOf(d: DataSection): { classes: string[]; maxPixels: number; maxFileBytes: number } {
  return { classes: [...d.classes], maxPixels: d.max_pixels, maxFileBytes: d.max_file_bytes };
}

/** What createSplit / loadOrCreateSplit need of the data section. */
export function splitOptionsOf(d: DataSection): { ratios: [number, number, number]; seed: number } {
  return { ratios: [...d.split], seed: d.seed };
}

/** The DataLoader options that the data section sets (all but the folder, the split and normalisation). */
export type LoaderSettings = Required<
  Pick<
    DataLoaderOptions,
    | 'batchSize'
    | 'imageSize'
    | 'evalImageSize'
    | 'resize'
    | 'maxPixels'
    | 'maxFileBytes'
    | 'concurrency'
    | 'prefetch'
    | 'cacheMiB'
    | 'augment'
    | 'balanced'
    | 'seed'
  >
>;

/** The DataLoader options of the data section: `new DataLoader({ root, split, ...loaderOptionsOf(data) })`. */
export function loaderOptionsOf(d: DataSection): LoaderSettings {
  return {
    batchSize: d.batch_size,
    imageSize: d.image_size,
    evalImageSize: inferenceImageSize(d),
    resize: d.resize,
    maxPixels: d.max_pixels,
    maxFileBytes: d.max_file_bytes,
    concurrency: d.concurrency,
    prefetch: d.prefetch,
    cacheMiB: d.cache_mib,
    augment: d.augment.enabled ? augmentOptionsOf(d.augment) : false,
    balanced: d.balanced,
    seed: d.seed,
  };
}

/** DataLoader's defaults: those of the data section (the seed defaults to the split's own instead). */
export const DEFAULT_LOADER_OPTIONS: Readonly<LoaderSettings> = loaderOptionsOf(defaultDataSection());
