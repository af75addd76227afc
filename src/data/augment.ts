import { optionalAddonFunction } from '../binding/loader.js';
import { BackendUnavailableError } from '../errors.js';
import type { NativeAddon, NativeAugmentParams } from '../binding/types.js';
import { DEFAULT_AUGMENT, type AugmentOptions } from './options.js';
import { IMAGENET_MEAN, IMAGENET_STD } from './preprocess.js';
import type { Rng } from './rng.js';

/** The random draws for one image, so a test can check them and a caller can log them. */
export type AugmentParams = NativeAugmentParams;

/**
 * The ops of `data.augment.policy: trivial` (TrivialAugment: one per image, drawn uniformly), as the addon names
 * them; the signed ones take the magnitude's sign as their direction.
 */
export const POLICY_OPS = [
  'identity',
  'rotate',
  'shear_x',
  'shear_y',
  'translate_x',
  'translate_y',
  'brightness',
  'color',
  'contrast',
  'sharpness',
  'posterize',
  'solarize',
  'autocontrast',
  'equalize',
] as const;

/** One op of POLICY_OPS. */
export type PolicyOp = (typeof POLICY_OPS)[number];

/** Draws the parameters of one augmentation from `rng` (random resized crop, flip, colour jitter). */
export function drawAugmentParams(size: number, rng: Rng, config: Partial<AugmentOptions> = {}): AugmentParams {
  const c = { ...DEFAULT_AUGMENT, ...config };
  let box = { x: 0, y: 0, width: size, height: size };
  const [logLo, logHi] = [Math.log(c.cropRatio[0]), Math.log(c.cropRatio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = size * size * rng.uniform(c.cropScale[0], c.cropScale[1]);
    const ratio = Math.exp(rng.uniform(logLo, logHi));
    const width = Math.sqrt(area * ratio);
    const height = Math.sqrt(area / ratio);
    if (width <= size && height <= size) {
      box = { x: rng.uniform(0, size - width), y: rng.uniform(0, size - height), width, height };
      break;
    }
  }
  const jitter = (amount: number): number => (amount > 0 ? rng.uniform(1 - amount, 1 + amount) : 1);
  const params: AugmentParams = {
    ...box,
    flip: rng.next() < c.flipProbability,
    brightness: jitter(c.brightness),
    contrast: jitter(c.contrast),
    saturation: jitter(c.saturation),
  };
  // The degradations draw only when they are on, after everything above: a configuration without them draws the
  // same numbers as before they existed.
  if (c.downscaleProbability > 0 && rng.next() < c.downscaleProbability) {
    params.downscale = rng.uniform(c.downscale[0], c.downscale[1]);
  }
  if (c.jpegProbability > 0 && rng.next() < c.jpegProbability) {
    params.jpegQuality = Math.round(rng.uniform(c.jpegQuality[0], c.jpegQuality[1]));
  }
  if (c.eraseProbability > 0 && rng.next() < c.eraseProbability) {
    const area = size * size * rng.uniform(c.eraseScale[0], c.eraseScale[1]);
    const ratio = Math.exp(rng.uniform(Math.log(0.3), Math.log(1 / 0.3)));
    const width = Math.min(size, Math.max(1, Math.round(Math.sqrt(area * ratio))));
    const height = Math.min(size, Math.max(1, Math.round(Math.sqrt(area / ratio))));
    params.eraseX = Math.floor(rng.uniform(0, size - width + 1));
    params.eraseY = Math.floor(rng.uniform(0, size - height + 1));
    params.eraseWidth = width;
    params.eraseHeight = height;
  }
  if (c.policy === 'trivial') {
    // Three draws whatever the op, after the rest: the crop, jitter and degradations draw as without the policy.
    const op = POLICY_OPS[Math.min(POLICY_OPS.length - 1, Math.floor(rng.next() * POLICY_OPS.length))] as PolicyOp;
    const magnitude = rng.uniform(0, c.policyMagnitude);
    const negative = rng.next() < 0.5;
    if (op !== 'identity') {
      params.op = op;
      params.magnitude = negative ? -magnitude : magnitude;
    }
  }
  return params;
}

/**
 * Whether `params` degrade the crop (downscale or JPEG round trip) or carry a policy op: the addon's augmentImage
 * does those parts.
 */
export function needsNative(params: AugmentParams): boolean {
  return (
    (params.downscale !== undefined && params.downscale < 1) ||
    (params.jpegQuality ?? 0) > 0 ||
    (params.op !== undefined && params.op !== 'identity')
  );
}

/** Sets the erased box of one normalised CHW image at `offset` to 0 (the mean colour). */
function erase(size: number, params: AugmentParams, out: Float32Array, offset: number): void {
  const w = params.eraseWidth ?? 0;
  const h = params.eraseHeight ?? 0;
  if (w <= 0 || h <= 0) return;
  const x0 = Math.max(0, Math.min(size, params.eraseX ?? 0));
  const x1 = Math.max(0, Math.min(size, x0 + w));
  const y0 = Math.max(0, Math.min(size, params.eraseY ?? 0));
  const y1 = Math.max(0, Math.min(size, y0 + h));
  for (let c = 0; c < 3; c++) {
    for (let y = y0; y < y1; y++) {
      const row = offset + c * size * size + y * size;
      out.fill(0, row + x0, row + x1);
    }
  }
}

/**
 * Applies `params` to a size×size HWC uint8 image (bilinear resample of the crop box back to size×size, optional
 * flip, brightness, contrast around the mean grey, saturation around each pixel's grey) and writes the result
 * normalised, CHW float32, into `out` at `offset`. One pass, no intermediate images.
 */
export function augmentInto(
  src: Uint8Array,
  size: number,
  params: AugmentParams,
  out: Float32Array,
  offset: number,
  mean: readonly [number, number, number] = IMAGENET_MEAN,
  std: readonly [number, number, number] = IMAGENET_STD,
): void {
  const plane = size * size;
  if (src.length !== plane * 3) throw new RangeError(`Expected ${plane * 3} source bytes, got ${src.length}`);
  if (needsNative(params)) {
    throw new RangeError(
      'downscale, JPEG and policy augmentation run in the native addon (augmentAsync); build it with ' +
        '`npm run build:native`',
    );
  }
  if (offset < 0 || offset + 3 * plane > out.length)
    throw new RangeError(`No room for ${3 * plane} values at ${offset}`);
  let grey = 0;
  for (let i = 0; i < src.length; i += 3) {
    grey += 0.299 * (src[i] as number) + 0.587 * (src[i + 1] as number) + 0.114 * (src[i + 2] as number);
  }
  const { brightness: bf, contrast: cf, saturation: sf } = params;
  const meanGrey = (grey / plane) * bf;
  const scaleX = params.width / size;
  const scaleY = params.height / size;
  // Per-column source taps, computed once per image (the flip is folded in here).
  const xa = new Int32Array(size);
  const xb = new Int32Array(size);
  const xf = new Float32Array(size);
  for (let ox = 0; ox < size; ox++) {
    const tx = params.flip ? size - 1 - ox : ox;
    const sx = Math.min(size - 1, Math.max(0, params.x + (tx + 0.5) * scaleX - 0.5));
    const x0 = Math.floor(sx);
    xa[ox] = x0 * 3;
    xb[ox] = Math.min(size - 1, x0 + 1) * 3;
    xf[ox] = sx - x0;
  }
  const [kr, kg, kb] = [0, 1, 2].map((ch) => 1 / (255 * (std[ch] as number))) as [number, number, number];
  const [mr, mg, mb] = [0, 1, 2].map((ch) => (mean[ch] as number) / (std[ch] as number)) as [number, number, number];
  const o0 = offset;
  const o1 = offset + plane;
  const o2 = offset + 2 * plane;
  const px = (v: number): number => src[v] as number;
  for (let oy = 0; oy < size; oy++) {
    const sy = Math.min(size - 1, Math.max(0, params.y + (oy + 0.5) * scaleY - 0.5));
    const y0 = Math.floor(sy);
    const row0 = y0 * size * 3;
    const row1 = Math.min(size - 1, y0 + 1) * size * 3;
    const fy = sy - y0;
    for (let ox = 0; ox < size; ox++) {
      const fx = xf[ox] as number;
      const a = row0 + (xa[ox] as number);
      const b = row0 + (xb[ox] as number);
      const c = row1 + (xa[ox] as number);
      const d = row1 + (xb[ox] as number);
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      // Bilinear sample, brightness (clamped), contrast around the mean grey (clamped).
      let r = (px(a) * w00 + px(b) * w01 + px(c) * w10 + px(d) * w11) * bf;
      let g = (px(a + 1) * w00 + px(b + 1) * w01 + px(c + 1) * w10 + px(d + 1) * w11) * bf;
      let bl = (px(a + 2) * w00 + px(b + 2) * w01 + px(c + 2) * w10 + px(d + 2) * w11) * bf;
      r = (clamp(r) - meanGrey) * cf + meanGrey;
      g = (clamp(g) - meanGrey) * cf + meanGrey;
      bl = (clamp(bl) - meanGrey) * cf + meanGrey;
      r = clamp(r);
      g = clamp(g);
      bl = clamp(bl);
      // Saturation around the pixel's grey.
      const grey = 0.299 * r + 0.587 * g + 0.114 * bl;
      const i = oy * size + ox;
      out[o0 + i] = clamp((r - grey) * sf + grey) * kr - mr;
      out[o1 + i] = clamp((g - grey) * sf + grey) * kg - mg;
      out[o2 + i] = clamp((bl - grey) * sf + grey) * kb - mb;
    }
  }
  erase(size, params, out, offset);
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

type NativeAugment = NonNullable<NativeAddon['augmentImage']>;
let nativeAugment: NativeAugment | null | undefined;

/**
 * augmentInto off the event loop: the addon's native twin (same arithmetic, value for value) on the libuv pool, so
 * a batch's images are augmented in parallel while the event loop keeps turning; the TypeScript implementation
 * when the addon cannot load. `src` and `out` must stay untouched until the promise settles.
 */
export async function augmentAsync(...args: Parameters<typeof augmentInto>): Promise<void> {
  const [src, size, params, out, offset, mean = IMAGENET_MEAN, std = IMAGENET_STD] = args;
  if (nativeAugment === undefined) nativeAugment = optionalAddonFunction('augmentImage');
  if (nativeAugment === null) {
    if (needsNative(params)) {
      throw new BackendUnavailableError(
        'data.augment downscale_probability / jpeg_probability / policy need the native addon, which did not ' +
          'load here (`npm run build:native`); set them to 0 and none to train without it',
      );
    }
    augmentInto(src, size, params, out, offset, mean, std);
    return;
  }
  await nativeAugment(src, size, params, out, offset, mean, std);
}
