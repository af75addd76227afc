import sharp, { type Metadata } from 'sharp';

import { decodeBmp, isBmp } from './bmp.js';

/** Formats the pipeline decodes. Anything else sharp recognises (SVG, GIF, HEIF, PDF...) is refused. */
export const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'tiff', 'bmp']);

/** The format of encoded bytes from their signature, or undefined for anything the pipeline does not decode. */
export function sniffFormat(b: Uint8Array): 'jpeg' | 'png' | 'webp' | 'tiff' | 'bmp' | undefined {
  const at = (i: number, ...bytes: number[]): boolean => bytes.every((v, k) => b[i + k] === v);
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'tiff';
  if (isBmp(b)) return 'bmp';
  return undefined;
}

/** What the index keeps about a readable image (dimensions as stored, before EXIF orientation). */
export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  channels: number;
  space: string;
  orientation: number;
}

export type ProbeResult = ({ ok: true } & ImageInfo) | { ok: false; reason: string };

/** Options of probeImage. */
export interface ProbeOptions {
  /** Largest accepted image in pixels. Defaults to 50,000,000. */
  maxPixels?: number;
  /** Fully decode every image (slow) instead of header + structure checks. Defaults to false. */
  deep?: boolean;
}

/** True when a JPEG has its end-of-image marker after the start of its last scan (catches truncation). */
function jpegComplete(buf: Buffer): boolean {
  const eoi = buf.lastIndexOf(Buffer.from([0xff, 0xd9]));
  const sos = buf.lastIndexOf(Buffer.from([0xff, 0xda]));
  return eoi > 0 && eoi > sos;
}

/** True when a PNG has an IEND chunk after its last IDAT chunk. */
function pngComplete(buf: Buffer): boolean {
  const iend = buf.lastIndexOf('IEND', buf.length, 'latin1');
  return iend > 0 && iend > buf.lastIndexOf('IDAT', buf.length, 'latin1');
}

/**
 * Checks that bytes are a usable image without decoding the pixels when it can: header metadata, pixel limit and an
 * end-of-data check for JPEG and PNG; WebP and TIFF (rare here) are fully decoded. Never throws for bad input.
 */
export async function probeImage(bytes: Buffer, options: ProbeOptions = {}): Promise<ProbeResult> {
  const maxPixels = options.maxPixels ?? 50_000_000;
  if (bytes.length === 0) return { ok: false, reason: 'empty file (0 bytes)' };
  const sniffed = sniffFormat(bytes);
  if (sniffed === 'bmp') {
    try {
      const raw = decodeBmp(bytes, maxPixels);
      return {
        ok: true,
        format: 'bmp',
        width: raw.width,
        height: raw.height,
        channels: raw.channels,
        space: 'srgb',
        orientation: 1,
      };
    } catch (err) {
      return { ok: false, reason: `invalid BMP: ${(err as Error).message}` };
    }
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    return { ok: false, reason: `not a readable image: ${(err as Error).message}` };
  }
  const format: string | undefined = meta.format;
  if (!format || !ACCEPTED_FORMATS.has(format) || format !== sniffed) {
    return { ok: false, reason: `unsupported image format '${format}'` };
  }
  const { width, height } = meta;
  if (!width || !height) return { ok: false, reason: 'image has no dimensions' };
  if (width * height > maxPixels) {
    return { ok: false, reason: `image of ${width}x${height} pixels exceeds the limit of ${maxPixels} pixels` };
  }
  if (format === 'jpeg' && !jpegComplete(bytes))
    return { ok: false, reason: 'truncated JPEG (no end-of-image marker)' };
  if (format === 'png' && !pngComplete(bytes)) return { ok: false, reason: 'truncated PNG (no IEND chunk)' };
  if (options.deep || (format !== 'jpeg' && format !== 'png')) {
    try {
      await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated' })
        .resize(8, 8, { fit: 'fill' })
        .raw()
        .toBuffer();
    } catch (err) {
      return { ok: false, reason: `cannot decode: ${(err as Error).message}` };
    }
  }
  return {
    ok: true,
    format,
    width,
    height,
    channels: meta.channels ?? 3,
    space: meta.space ?? 'srgb',
    orientation: meta.orientation ?? 1,
  };
}
