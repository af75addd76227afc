import fs from 'node:fs/promises';
import path from 'node:path';

import { parse as parseYaml } from 'yaml';

import { DEFAULT_CLASSES, inferenceImageSize, type ResizeMode } from './section.js';
import { IMAGENET_MEAN, IMAGENET_STD } from './preprocess.js';
import { ModelLoadError } from '../errors.js';

/** How an image becomes the model's input: what the model was trained with. */
export interface Preprocessing {
  /** Input height and width. */
  size: number;
  /** RGB mean subtracted after scaling to [0, 1]. */
  mean: [number, number, number];
  /** RGB standard deviation. */
  std: [number, number, number];
  /** 'fill' stretches to size×size; 'center-crop' resizes the shorter side and crops the centre. */
  resize: ResizeMode;
  /**
   * Resampling kernel, by libvips' (sharp's) names. 'linear' is an antialiased triangle filter whose support widens
   * with the downscale factor, as in PIL's `Image.resize(..., BILINEAR)`; OpenCV's `INTER_LINEAR` and torch's
   * `interpolate(mode='bilinear', antialias=False)` are not antialiased and give other pixels (and probabilities).
   */
  kernel: ResizeKernel;
  /** How an image is decoded before resizing, for a client that preprocesses by itself. */
  decoder: DecoderConventions;
}

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
export const RESIZE_KERNELS: readonly ResizeKernel[] = [
  'nearest',
  'linear',
  'cubic',
  'mitchell',
  'lanczos2',
  'lanczos3',
];

/** The decoding conventions of trt-flowers' preprocessing (fixed by its implementation, recorded for clients). */
export interface DecoderConventions {
  /** 'exif': the EXIF orientation is applied before resizing. */
  orientation: 'exif';
  /** Every colour model and embedded ICC profile is converted to 8-bit sRGB. */
  color: 'srgb-8bit';
  /** An alpha channel is dropped, not composited over a background. */
  alpha: 'dropped';
  /**
   * JPEGs are decoded by the IDCT at 1/2, 1/4 or 1/8 scale while the shorter side stays at least `size` (one step
   * less when the shrink factor's integer part equals the scale), as libvips' shrink-on-load does; then resized.
   */
  jpeg_shrink_on_load: 'dct-1/2-1/4-1/8';
  /** The tensor: [N, 3, size, size] float32, RGB planes, each value (v / 255 - mean[c]) / std[c]. */
  layout: 'NCHW-RGB';
  value: '(v / 255 - mean) / std';
}

export const DECODER_CONVENTIONS: Readonly<DecoderConventions> = Object.freeze({
  orientation: 'exif',
  color: 'srgb-8bit',
  alpha: 'dropped',
  jpeg_shrink_on_load: 'dct-1/2-1/4-1/8',
  layout: 'NCHW-RGB',
  value: '(v / 255 - mean) / std',
});

/**
 * What a model file says about itself. Stored as the extra file trt_flowers.json in TorchScript archives, as
 * metadata_props (key `trt_flowers`, plus `classes` and `preprocessing` on their own) in ONNX files, and beside a
 * TensorRT engine. Keys are snake_case as in the files.
 */
export interface ModelMetadata {
  format: 'trt-flowers/1';
  classes: string[];
  preprocessing: Preprocessing;
  arch?: string;
  embedding_size?: number;
  /** Training run that produced the weights. */
  run_id?: string;
  /** sha256 of the checkpoint an export was made from. */
  source_sha256?: string;
  [key: string]: unknown;
}

/** Where a model's metadata came from. */
export type MetadataSource = 'embedded' | 'run-config' | 'defaults';

export const METADATA_FORMAT = 'trt-flowers/1';

export function defaultPreprocessing(size = 224): Preprocessing {
  return {
    size,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    resize: 'fill',
    kernel: 'linear',
    decoder: { ...DECODER_CONVENTIONS },
  };
}

/** Validates parsed metadata; throws ModelLoadError naming `where` and the bad key. */
export function parseMetadata(raw: unknown, where: string): ModelMetadata {
  const fail = (what: string): never => {
    throw new ModelLoadError(`${where}: invalid trt-flowers metadata: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected a JSON object');
  const m = raw as Record<string, unknown>;
  const classes = m.classes;
  if (!Array.isArray(classes) || classes.length < 1 || !classes.every((c) => typeof c === 'string' && c.length > 0)) {
    return fail('`classes` must be a non-empty list of names');
  }
  if (new Set(classes).size !== classes.length) fail('`classes` has duplicates');
  const p = (m.preprocessing ?? {}) as Record<string, unknown>;
  if (typeof p !== 'object' || Array.isArray(p)) fail('`preprocessing` must be an object');
  const size = p.size ?? 224;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 8 || size > 4096) {
    fail(`\`preprocessing.size\` must be an integer between 8 and 4096, got ${JSON.stringify(size)}`);
  }
  const triple = (key: 'mean' | 'std', fallback: readonly number[]): [number, number, number] => {
    const v = p[key] ?? fallback;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return fail(`\`preprocessing.${key}\` must be three numbers`);
    }
    if (key === 'std' && v.some((x: number) => x <= 0)) fail('`preprocessing.std` must be positive');
    return [v[0], v[1], v[2]];
  };
  const resize = p.resize ?? 'fill';
  if (resize !== 'fill' && resize !== 'center-crop') {
    fail(`\`preprocessing.resize\` must be 'fill' or 'center-crop', got ${JSON.stringify(resize)}`);
  }
  // Files written before the kernel was recorded were all preprocessed with 'linear'.
  const kernel = p.kernel ?? 'linear';
  if (!(RESIZE_KERNELS as readonly unknown[]).includes(kernel)) {
    fail(`\`preprocessing.kernel\` must be one of ${RESIZE_KERNELS.join(', ')}, got ${JSON.stringify(kernel)}`);
  }
  return {
    ...m,
    format: METADATA_FORMAT,
    classes: classes as string[],
    preprocessing: {
      size: size as number,
      mean: triple('mean', IMAGENET_MEAN),
      std: triple('std', IMAGENET_STD),
      resize: resize as ResizeMode,
      kernel: kernel as ResizeKernel,
      decoder: { ...DECODER_CONVENTIONS },
    },
  };
}

export function parseMetadataJson(text: string, where: string): ModelMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${where}: trt-flowers metadata is not valid JSON (${(err as Error).message})`);
  }
  return parseMetadata(raw, where);
}

/**
 * Metadata for a checkpoint written before metadata was embedded: from the run's config.yaml when the file sits in
 * runs/<id>/checkpoints/{best,last}/ or runs/<id>/, else undefined.
 */
export async function metadataFromRunDir(modelPath: string): Promise<ModelMetadata | undefined> {
  const dir = path.dirname(path.resolve(modelPath));
  for (const candidate of [path.join(dir, '..', '..'), dir]) {
    const file = path.join(candidate, 'config.yaml');
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      continue;
    }
    try {
      const cfg = parseYaml(text) as {
        data?: { classes?: string[]; image_size?: number; eval_image_size?: number; resize?: ResizeMode };
        model?: { arch?: string; embedding_size?: number };
      };
      if (!cfg?.data?.classes) continue;
      return parseMetadata(
        {
          classes: cfg.data.classes,
          preprocessing: {
            ...defaultPreprocessing(inferenceImageSize({ image_size: 224, ...cfg.data })),
            resize: cfg.data.resize ?? 'fill',
          },
          ...(cfg.model?.arch ? { arch: cfg.model.arch } : {}),
          run_id: path.basename(path.resolve(candidate)),
        },
        file,
      );
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Metadata for a model that carries none: the tf_flowers classes when it has 5 outputs, else class_0.. */
export function defaultMetadata(numClasses: number): ModelMetadata {
  const classes =
    numClasses === DEFAULT_CLASSES.length
      ? [...DEFAULT_CLASSES]
      : Array.from({ length: numClasses }, (_, i) => `class_${i}`);
  return { format: METADATA_FORMAT, classes, preprocessing: defaultPreprocessing() };
}

/** The metadata a training run embeds in its checkpoints. */
export function trainingMetadata(
  config: {
    data: { classes: readonly string[]; image_size: number; eval_image_size?: number; resize: ResizeMode };
    model: { arch: string; embedding_size: number };
  },
  runId: string,
): ModelMetadata {
  return {
    format: METADATA_FORMAT,
    classes: [...config.data.classes],
    // What the model is used at: its evaluation size (data.eval_image_size), which may differ from the training crops'.
    preprocessing: { ...defaultPreprocessing(inferenceImageSize(config.data)), resize: config.data.resize },
    arch: config.model.arch,
    embedding_size: config.model.embedding_size,
    run_id: runId,
  };
}
