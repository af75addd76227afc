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
  /** Fully decode the image (see decodeCheck) after the header and structure checks. Defaults to false. */
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
 * A decoder message on one line, each part once: libvips repeats its messages (one per pass over the image) and
 * prefixes every line with the loader's name.
 */
export function oneLine(message: string): string {
  const parts: string[] = [];
  for (const raw of message.split('\n')) {
    const line = raw.trim();
    if (line && !parts.includes(line)) parts.push(line);
  }
  return parts.join('; ');
}

/**
 * Fully decodes an image whose header passed probeImage and returns why it cannot be used, or undefined when it
 * decodes cleanly. For JPEG, libjpeg's corrupt-data warnings ("Corrupt JPEG data: ...", "Premature end of JPEG
 * file") count as failures: libjpeg pads what it cannot decode with grey and carries on, so those photos would
 * otherwise be trained on. Other formats fail on decoder errors only (libpng and libtiff warn about harmless
 * things). The image is decoded at 1/8 scale where the format allows (JPEG's DCT scaling still reads every
 * entropy-coded byte).
 */
export async function decodeCheck(bytes: Buffer, format: string, maxPixels = 50_000_000): Promise<string | undefined> {
  try {
    await sharp(bytes, { limitInputPixels: maxPixels, failOn: format === 'jpeg' ? 'warning' : 'error' })
      .resize(8, 8, { fit: 'fill', kernel: 'nearest' })
      .raw()
      .toBuffer();
    return undefined;
  } catch (err) {
    // sharp words a warning as "Warning treated as error ..." and adds libvips' warning text when it still has it.
    const message = oneLine((err as Error).message).replace(/^Warning treated as error due to failOn setting(; )?/, '');
    return `cannot decode: ${message || 'corrupt JPEG data (libjpeg warned while decoding)'}`;
  }
}

/**
 * Checks that bytes are a usable image without decoding the pixels: header metadata, pixel limit and an
 * end-of-data check for JPEG and PNG (BMP is decoded: it is cheap); `deep` adds the full decode of decodeCheck.
 * Never throws for bad input.
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
    return { ok: false, reason: `not a readable image: ${oneLine((err as Error).message)}` };
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
  if (options.deep) {
    const failure = await decodeCheck(bytes, format, maxPixels);
    if (failure) return { ok: false, reason: failure };
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
