import sharp, { type Sharp } from 'sharp';

import { optionalAddonFunction } from '../binding/loader.js';
import type { NativeAddon } from '../binding/types.js';
import { BackendUnavailableError, InvalidImageError } from '../errors.js';
import { decodeBmp } from './bmp.js';
import type { ResizeMode } from './section.js';
import { DEFAULT_MAX_FILE_BYTES, readRegularFile } from '../util/fs.js';
import { oneLine, sniffFormat } from './probe.js';

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
  /**
   * Largest image file read from a path, in bytes: a FIFO, a device, a folder or a bigger file is refused with
   * InvalidImageError without being read whole. Buffers are taken as they are. Defaults to 64 MiB.
   */
  maxFileBytes?: number;
  /** Images decoded at once. Defaults to 4. */
  concurrency?: number;
  /** 'fill' stretches to size×size (the original behaviour); 'center-crop' resizes the shorter side and crops the centre. Defaults to 'fill'. */
  resize?: ResizeMode;
  /**
   * Resampling kernel. 'linear' is an antialiased triangle filter like PIL's bilinear resize (torchvision's default
   * for PIL images), and cheaper than sharp's 'lanczos3'. Defaults to 'linear'.
   */
  kernel?: 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
  /**
   * JPEG decoder. 'auto' decodes JPEGs with the native addon's libjpeg-turbo fast path when the addon has it and
   * the kernel is 'linear' (same pixels as sharp within a grey level, about 3x less CPU), and with sharp otherwise;
   * 'native' is 'auto' that throws BackendUnavailableError when the fast path is missing; 'sharp' always uses sharp.
   * JPEGs the fast path leaves aside (CMYK, ICC profiles other than sRGB) and every other format go to sharp.
   * Defaults to the TRT_FLOWERS_JPEG environment variable, else 'auto'.
   */
  jpeg?: JpegDecoderChoice;
}

export type JpegDecoderChoice = 'auto' | 'native' | 'sharp';

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
  return new InvalidImageError(`cannot decode ${where(input)}: ${oneLine((err as Error).message)}`, {
    cause: err,
    ...(typeof input === 'string' ? { path: input } : {}),
  });
}

type NativeJpegDecoder = NonNullable<NativeAddon['decodeJpegResized']>;
let nativeJpeg: NativeJpegDecoder | null | undefined;

/** The addon's JPEG fast path, loaded on first use; null when the addon cannot load or was built without libjpeg. */
function nativeJpegDecoder(): NativeJpegDecoder | null {
  // No usable addon, or one built without libjpeg: sharp decodes everything.
  if (nativeJpeg === undefined) nativeJpeg = optionalAddonFunction('decodeJpegResized');
  return nativeJpeg;
}

type NativeJpegInto = NonNullable<NativeAddon['decodeJpegInto']>;
let nativeInto: NativeJpegInto | null | undefined;

function nativeJpegInto(): NativeJpegInto | null {
  if (nativeInto === undefined) nativeInto = optionalAddonFunction('decodeJpegInto');
  return nativeInto;
}

type NativeJpegFileInto = NonNullable<NativeAddon['decodeJpegFileInto']>;
let nativeFileInto: NativeJpegFileInto | null | undefined;

function nativeJpegFileInto(): NativeJpegFileInto | null {
  if (nativeFileInto === undefined) nativeFileInto = optionalAddonFunction('decodeJpegFileInto');
  return nativeFileInto;
}

/** True when JPEGs can take the native libjpeg-turbo fast path (the addon loads and was built with libjpeg). */
export function jpegFastPathAvailable(): boolean {
  return nativeJpegDecoder() !== null;
}

const JPEG_CHOICES: readonly JpegDecoderChoice[] = ['auto', 'native', 'sharp'];

function jpegChoice(option: JpegDecoderChoice | undefined): JpegDecoderChoice {
  const value = option ?? process.env.TRT_FLOWERS_JPEG ?? 'auto';
  if (!(JPEG_CHOICES as readonly string[]).includes(value)) {
    const what = option === undefined ? 'the TRT_FLOWERS_JPEG environment variable' : '`jpeg`';
    throw new RangeError(`Expected one of auto, native, sharp for ${what} but received '${String(value)}'`);
  }
  return value as JpegDecoderChoice;
}

const isJpeg = (b: Uint8Array): boolean => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * The fast path's answer, or null when sharp should decode the image instead: a JPEG the fast path does not handle
 * (ERR_UNSUPPORTED_JPEG) or anything else but corrupt data, which sharp then words in its own way.
 */
async function viaFastPath<T>(call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_INVALID_IMAGE') throw err;
    return null;
  }
}

/**
 * A sharp pipeline over encoded bytes, their signature checked first, so only JPEG, PNG, WebP, TIFF and BMP reach a
 * decoder (never SVG, PDF, GIF...: a renamed file cannot pick the loader). BMP is decoded here, since libvips has no
 * BMP loader.
 */
function open(bytes: Buffer, maxPixels: number): Sharp {
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
 * alpha) to 8-bit sRGB, then the configured resize. JPEGs take the native fast path when it is there (see
 * `jpeg`). Throws InvalidImageError naming the file; BackendUnavailableError for `jpeg: 'native'` without the
 * fast path.
 */
export async function decodeResized(input: string | Buffer, options: PreprocessOptions = {}): Promise<Uint8Array> {
  const plan = decodePlan(options);
  return decodeBytes(input, await readInput(input, plan.maxFileBytes), plan);
}

/** The default pixel limit of a decode (width x height of the encoded image). */
export const DEFAULT_MAX_PIXELS = 50_000_000;

interface DecodePlan {
  size: number;
  maxPixels: number;
  maxFileBytes: number;
  native: NativeJpegDecoder | null;
  options: PreprocessOptions;
}

function decodePlan(options: PreprocessOptions): DecodePlan {
  const choice = jpegChoice(options.jpeg);
  if (choice === 'native' && !nativeJpegDecoder()) {
    throw new BackendUnavailableError(
      "`jpeg: 'native'` needs the native addon built with libjpeg (apt-get install libjpeg62-turbo-dev, then " +
        '`npm run build:native`)',
    );
  }
  return {
    size: options.size ?? 224,
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    native: choice === 'sharp' || (options.kernel ?? 'linear') !== 'linear' ? null : nativeJpegDecoder(),
    options,
  };
}

/**
 * True when preprocessInto would take the native JPEG decoder for these options (the addon has it, the kernel is
 * 'linear', TRT_FLOWERS_JPEG / `jpeg` does not ask for sharp): another thread's native decode then gives the same
 * floats.
 */
export function nativeJpegApplies(options: PreprocessOptions = {}): boolean {
  return decodePlan(options).native !== null && nativeJpegFileInto() !== null;
}

async function readInput(input: string | Buffer, maxFileBytes: number): Promise<Buffer> {
  try {
    return typeof input === 'string' ? await readRegularFile(input, maxFileBytes) : input;
  } catch (err) {
    throw new InvalidImageError(`cannot read ${where(input)}: ${(err as Error).message}`, {
      cause: err,
      path: input as string,
    });
  }
}

/** The native fast path for JPEGs, else sharp, over bytes already read. */
async function decodeBytes(input: string | Buffer, bytes: Buffer, plan: DecodePlan): Promise<Uint8Array> {
  const { size, maxPixels, options } = plan;
  const fit = options.resize === 'center-crop' ? 'cover' : 'fill';
  try {
    const native = plan.native;
    if (native && isJpeg(bytes)) {
      const hwc = await viaFastPath(() => native(bytes, size, options.resize ?? 'fill', maxPixels));
      if (hwc) return hwc;
    }
    return await decodeWithSharp(bytes, size, fit, maxPixels, options.kernel ?? 'linear');
  } catch (err) {
    throw invalid(input, err);
  }
}

async function decodeWithSharp(
  bytes: Buffer,
  size: number,
  fit: 'cover' | 'fill',
  maxPixels: number,
  kernel: NonNullable<PreprocessOptions['kernel']>,
): Promise<Uint8Array> {
  const data = await open(bytes, maxPixels)
    .rotate()
    .resize(size, size, { fit, position: 'centre', kernel })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer();
  if (data.length !== size * size * 3) throw new Error(`decoded ${data.length} bytes, expected ${size * size * 3}`);
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
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
  const plan = decodePlan(options);
  const per = 3 * plan.size * plan.size;
  if (!Number.isInteger(offset) || offset < 0 || offset + per > out.length) {
    throw new RangeError(`Expected room for ${per} values at offset ${offset} in an output of ${out.length}`);
  }
  const [mean, std] = [options.mean ?? IMAGENET_MEAN, options.std ?? IMAGENET_STD];
  const mode = options.resize ?? 'fill';
  const fileInto = plan.native && typeof input === 'string' ? nativeJpegFileInto() : null;
  let read: Buffer | undefined;
  if (fileInto) {
    // A path: read, decode and normalise in one pool job (no hop per file operation). What it leaves comes back as
    // bytes (not a JPEG, a JPEG for sharp), or as null when the file is not a readable regular file within the
    // limit: read below, which says why.
    const answer = await viaFastPath(() =>
      fileInto(input as string, plan.maxFileBytes, plan.size, mode, plan.maxPixels, out, offset, mean, std),
    ).catch((err: unknown) => {
      throw invalid(input, err);
    });
    if (answer === undefined) return;
    if (answer) read = answer;
  }
  const bytes = read ?? (await readInput(input, plan.maxFileBytes));
  // Bytes the file job gave back were already refused by the fast path: straight to sharp.
  const into = plan.native && !read ? nativeJpegInto() : null;
  if (into && isJpeg(bytes)) {
    // One pool job from the encoded bytes to the normalised planar floats in `out`: no JavaScript per pixel. A JPEG
    // it leaves (CMYK, a profile it cannot transform) goes to sharp below.
    const done = await viaFastPath(() =>
      into(bytes, plan.size, mode, plan.maxPixels, out, offset, mean, std).then(() => true),
    ).catch((err: unknown) => {
      throw invalid(input, err);
    });
    if (done) return;
  }
  normalizeInto(
    await decodeBytes(input, bytes, { ...plan, native: into || read ? null : plan.native }),
    out,
    offset,
    options,
  );
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
