import sharp from 'sharp';

import { InvalidImageError } from '../errors.js';

/** How an image becomes a model input. */
export interface PreprocessOptions {
  /** Output height and width in pixels. Defaults to 224. */
  size?: number;
  /** Per-channel RGB mean subtracted after scaling to [0, 1]. Defaults to ImageNet's (0.485, 0.456, 0.406). */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation. Defaults to ImageNet's (0.229, 0.224, 0.225). */
  std?: readonly [number, number, number];
  /** Largest accepted input in pixels (decompression-bomb guard). Defaults to 50 megapixels. */
  maxPixels?: number;
  /** Images decoded at once. Defaults to 4. */
  concurrency?: number;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * Decodes one image (path or encoded bytes), auto-orients it, converts it to 3-channel sRGB, resizes it to
 * size×size and writes it normalised, CHW float32, into `out` at element `offset`.
 */
export async function preprocessInto(
  input: string | Buffer,
  out: Float32Array,
  offset: number,
  options: PreprocessOptions = {},
): Promise<void> {
  const size = options.size ?? 224;
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  const plane = size * size;
  let data: Buffer;
  try {
    data = await sharp(input, { limitInputPixels: options.maxPixels ?? 50_000_000, failOn: 'error' })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .resize(size, size, { fit: 'fill' })
      .raw()
      .toBuffer();
  } catch (err) {
    const where = typeof input === 'string' ? `'${input}'` : 'the image buffer';
    throw new InvalidImageError(`cannot decode ${where}: ${(err as Error).message}`, {
      cause: err,
      ...(typeof input === 'string' ? { path: input } : {}),
    });
  }
  for (let c = 0; c < 3; c++) {
    const m = mean[c] as number;
    const s = 255 * (std[c] as number);
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = ((data[i * 3 + c] as number) - 255 * m) / s;
  }
}

/** Preprocesses a batch into one [N, 3, size, size] Float32Array, several images in flight. */
export async function preprocessBatch(
  inputs: readonly (string | Buffer)[],
  options: PreprocessOptions = {},
): Promise<Float32Array> {
  const size = options.size ?? 224;
  const per = 3 * size * size;
  const out = new Float32Array(inputs.length * per);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const i = next++;
      await preprocessInto(inputs[i] as string | Buffer, out, i * per, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return out;
}
