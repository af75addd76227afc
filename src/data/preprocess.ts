import fs from 'node:fs/promises';

import sharp, { type Sharp } from 'sharp';

import { InvalidImageError } from '../errors.js';
import { decodeBmp } from './bmp.js';
import type { ResizeMode } from './config.js';
import { sniffFormat } from './probe.js';

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
  /** 'fill' stretches to size×size (the original behaviour); 'center-crop' resizes the shorter side and crops the centre. Defaults to 'fill'. */
  resize?: ResizeMode;
  /**
   * Resampling kernel. 'linear' is an antialiased triangle filter like PIL's bilinear resize (torchvision's default
   * for PIL images), and cheaper than sharp's 'lanczos3'. Defaults to 'linear'.
   */
  kernel?: 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

// One libvips thread per image: several images in flight use the 2 cores better than threads inside one small
// image, and keep the sum of threads within the cores (scripts/bench-preprocess.ts measures both). Process-wide.
sharp.concurrency(1);
// Each photo is decoded once (later epochs use the decoded cache), so libvips' operation cache only costs memory.
sharp.cache(false);

/** Sets libvips threads per image (process-wide; this module sets 1 on import). Returns the value in effect. */
export function setDecodeThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new RangeError(`Expected integer between 1 and 64 for \`threads\` but received ${String(threads)}`);
  }
  return sharp.concurrency(threads);
}

const where = (input: string | Buffer): string => (typeof input === 'string' ? `'${input}'` : 'the image buffer');

function invalid(input: string | Buffer, err: unknown): InvalidImageError {
  return new InvalidImageError(`cannot decode ${where(input)}: ${(err as Error).message}`, {
    cause: err,
    ...(typeof input === 'string' ? { path: input } : {}),
  });
}

/**
 * A sharp pipeline over any supported input. The bytes are read here and their signature checked first, so only
 * JPEG, PNG, WebP, TIFF and BMP reach a decoder (never SVG, PDF, GIF...: a renamed file cannot pick the loader).
 * BMP is decoded here, since libvips has no BMP loader.
 */
async function open(input: string | Buffer, maxPixels: number): Promise<Sharp> {
  const bytes = typeof input === 'string' ? await fs.readFile(input) : input;
  const format = sniffFormat(bytes);
  if (!format) {
    throw new Error(
      bytes.length === 0 ? 'empty file (0 bytes)' : 'unsupported image format (not JPEG, PNG, WebP, TIFF or BMP)',
    );
  }
  if (format === 'bmp') {
    const raw = decodeBmp(bytes, maxPixels);
    return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
  }
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' });
}

/**
 * Decodes one image to size×size×3 sRGB uint8 (HWC): EXIF auto-orient, any colour model (grayscale, CMYK, 16-bit,
 * alpha) to 8-bit sRGB, then the configured resize. Throws InvalidImageError naming the file.
 */
export async function decodeResized(input: string | Buffer, options: PreprocessOptions = {}): Promise<Uint8Array> {
  const size = options.size ?? 224;
  const fit = options.resize === 'center-crop' ? 'cover' : 'fill';
  try {
    const image = await open(input, options.maxPixels ?? 50_000_000);
    const data = await image
      .rotate()
      .resize(size, size, { fit, position: 'centre', kernel: options.kernel ?? 'linear' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
    if (data.length !== size * size * 3) throw new Error(`decoded ${data.length} bytes, expected ${size * size * 3}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  } catch (err) {
    throw invalid(input, err);
  }
}

const lutCache = new Map<string, Float32Array[]>();

/** Per-channel 256-entry tables: byte value to (v / 255 - mean) / std. */
export function normalizationTables(
  mean: readonly [number, number, number] = IMAGENET_MEAN,
  std: readonly [number, number, number] = IMAGENET_STD,
): Float32Array[] {
  const key = `${mean.join(',')}/${std.join(',')}`;
  let luts = lutCache.get(key);
  if (!luts) {
    luts = [0, 1, 2].map((c) => {
      const t = new Float32Array(256);
      for (let v = 0; v < 256; v++) t[v] = (v / 255 - (mean[c] as number)) / (std[c] as number);
      return t;
    });
    lutCache.set(key, luts);
  }
  return luts;
}

/** Writes an HWC uint8 RGB image normalised as CHW float32 into `out` at element `offset`. */
export function normalizeInto(
  hwc: Uint8Array,
  out: Float32Array,
  offset: number,
  options: Pick<PreprocessOptions, 'mean' | 'std'> = {},
): void {
  const plane = hwc.length / 3;
  if (offset < 0 || offset + 3 * plane > out.length) {
    throw new RangeError(`Expected room for ${3 * plane} values at offset ${offset} in an output of ${out.length}`);
  }
  const [r, g, b] = normalizationTables(options.mean, options.std) as [Float32Array, Float32Array, Float32Array];
  const o1 = offset + plane;
  const o2 = offset + 2 * plane;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    out[offset + i] = r[hwc[j] as number] as number;
    out[o1 + i] = g[hwc[j + 1] as number] as number;
    out[o2 + i] = b[hwc[j + 2] as number] as number;
  }
}

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
  normalizeInto(await decodeResized(input, options), out, offset, options);
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
