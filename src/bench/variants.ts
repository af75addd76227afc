/**
 * The photo variants of the robustness report: the same photo downscaled, recompressed, cropped and rotated, each
 * made with sharp from the photo's decoded pixels (EXIF orientation applied first), deterministically: the same
 * photo gives the same bytes on every run with the same sharp/libvips.
 */
import sharp, { type Sharp } from 'sharp';

import { InvalidImageError } from '../errors.js';
import { VARIANT_JPEG_QUALITY, type RobustnessVariant } from './variant-names.js';

/** Decoded sRGB pixels of a photo, upright. */
interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

async function decodeUpright(input: string | Buffer): Promise<Pixels> {
  try {
    const { data, info } = await sharp(input, { failOn: 'error' })
      .rotate() // EXIF orientation
      .flatten({ background: '#ffffff' }) // no alpha in a JPEG: transparent parts on white
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels };
  } catch (err) {
    const name = typeof input === 'string' ? `'${input}'` : 'the image';
    throw new InvalidImageError(`cannot decode ${name}: ${(err as Error).message}`, { cause: err });
  }
}

const fromPixels = (p: Pixels): Sharp =>
  sharp(p.data, { raw: { width: p.width, height: p.height, channels: p.channels } });

const jpeg = (img: Sharp, quality: number): Promise<Buffer> =>
  img.jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false, progressive: false }).toBuffer();

/**
 * The largest axis-aligned rectangle inside a w x h rectangle rotated by `degrees` (centred on it): width and
 * height, rounded down.
 */
export function largestUprightRect(w: number, h: number, degrees: number): { width: number; height: number } {
  const a = (Math.abs(degrees) * Math.PI) / 180;
  const sin = Math.abs(Math.sin(a));
  const cos = Math.abs(Math.cos(a));
  const long = Math.max(w, h);
  const short = Math.min(w, h);
  let wr: number;
  let hr: number;
  if (short <= 2 * sin * cos * long || Math.abs(sin - cos) < 1e-10) {
    // Half-constrained: two corners of the rectangle touch the longer sides of the rotated one.
    const x = 0.5 * short;
    [wr, hr] = w >= h ? [x / sin, x / cos] : [x / cos, x / sin];
  } else {
    const cos2 = cos * cos - sin * sin;
    [wr, hr] = [(w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2];
  }
  // Rounded down (an exact size stays as it is): no pixel outside the rotated photo is kept.
  return { width: Math.max(1, Math.floor(wr + 1e-9)), height: Math.max(1, Math.floor(hr + 1e-9)) };
}

/** The central `fraction` of a w x h image: left, top, width, height (odd remainders to the right and bottom). */
export function centerCropBox(
  w: number,
  h: number,
  fraction: number,
): { left: number; top: number; width: number; height: number } {
  const width = Math.max(1, Math.round(w * fraction));
  const height = Math.max(1, Math.round(h * fraction));
  return { left: Math.floor((w - width) / 2), top: Math.floor((h - height) / 2), width, height };
}

async function variantOf(p: Pixels, variant: Exclude<RobustnessVariant, 'original'>): Promise<Buffer> {
  switch (variant) {
    case 'downscale-240':
      return jpeg(
        fromPixels(p).resize({ width: 240, withoutEnlargement: true, kernel: 'lanczos3' }),
        VARIANT_JPEG_QUALITY,
      );
    case 'jpeg-q50':
      return jpeg(fromPixels(p), 50);
    case 'center-crop-70':
      return jpeg(fromPixels(p).extract(centerCropBox(p.width, p.height, 0.7)), VARIANT_JPEG_QUALITY);
    case 'rotate-10': {
      const rotated = await fromPixels(p)
        .rotate(10, { background: '#000000' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const inner = largestUprightRect(p.width, p.height, 10);
      const left = Math.floor((rotated.info.width - inner.width) / 2);
      const top = Math.floor((rotated.info.height - inner.height) / 2);
      const img = sharp(rotated.data, {
        raw: { width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels },
      }).extract({ left, top, width: inner.width, height: inner.height });
      return jpeg(img, VARIANT_JPEG_QUALITY);
    }
  }
}

/**
 * The encoded JPEG bytes of each requested variant of one photo ('original' is the file itself and is not made).
 * The photo is decoded once. Throws InvalidImageError for a photo that does not decode.
 */
export async function makeVariants(
  input: string | Buffer,
  variants: readonly RobustnessVariant[],
): Promise<Map<RobustnessVariant, Buffer>> {
  const out = new Map<RobustnessVariant, Buffer>();
  const made = variants.filter((v): v is Exclude<RobustnessVariant, 'original'> => v !== 'original');
  if (made.length === 0) return out;
  const pixels = await decodeUpright(input);
  for (const v of made) out.set(v, await variantOf(pixels, v));
  return out;
}
