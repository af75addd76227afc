/**
 * A small BMP decoder: libvips (sharp) does not read BMP. Handles uncompressed 8-bit (palette), 24-bit and 32-bit
 * (BI_RGB or BI_BITFIELDS) bitmaps, bottom-up or top-down, with any of the Windows info headers. Everything else
 * (RLE, 1/4/16-bit, OS/2 headers) is refused with a clear reason.
 */

/** Decoded pixels, ready for `sharp(data, { raw: { width, height, channels } })`. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** True when the bytes start with the BMP signature "BM". */
export const isBmp = (buf: Uint8Array): boolean => buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d;

const BI_RGB = 0;
const BI_BITFIELDS = 3;

function maskShift(mask: number): { shift: number; max: number } {
  if (mask === 0) return { shift: 0, max: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

/** Header fields only (cheap: used by the index probe). Throws Error with the reason on a malformed header. */
export function readBmpHeader(buf: Buffer): { width: number; height: number; bitsPerPixel: number; topDown: boolean } {
  if (!isBmp(buf)) throw new Error('not a BMP file (no "BM" signature)');
  if (buf.length < 26) throw new Error('truncated BMP header');
  const headerSize = buf.readUInt32LE(14);
  if (headerSize < 40 || headerSize > 124) throw new Error(`unsupported BMP info header of ${headerSize} bytes`);
  if (buf.length < 14 + headerSize) throw new Error('truncated BMP header');
  const width = buf.readInt32LE(18);
  const rawHeight = buf.readInt32LE(22);
  const bitsPerPixel = buf.readUInt16LE(28);
  if (width <= 0 || rawHeight === 0) throw new Error(`invalid BMP dimensions ${width}x${rawHeight}`);
  return { width, height: Math.abs(rawHeight), bitsPerPixel, topDown: rawHeight < 0 };
}

/** Decodes a whole BMP. `maxPixels` is checked before any pixel memory is allocated. */
export function decodeBmp(buf: Buffer, maxPixels = Number.MAX_SAFE_INTEGER): RawImage {
  const { width, height, bitsPerPixel: bpp, topDown } = readBmpHeader(buf);
  if (width * height > maxPixels) {
    throw new Error(`image of ${width}x${height} pixels exceeds the limit of ${maxPixels} pixels`);
  }
  const headerSize = buf.readUInt32LE(14);
  const dataOffset = buf.readUInt32LE(10);
  const compression = buf.readUInt32LE(30);
  if (bpp !== 8 && bpp !== 24 && bpp !== 32) throw new Error(`unsupported BMP bit depth ${bpp}`);
  if (compression !== BI_RGB && !(compression === BI_BITFIELDS && bpp === 32)) {
    throw new Error(`unsupported BMP compression ${compression}`);
  }
  const stride = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset + stride * height > buf.length) {
    throw new Error(`truncated BMP: ${buf.length} bytes, pixel data needs ${dataOffset + stride * height}`);
  }
  let masks = [0x00ff0000, 0x0000ff00, 0x000000ff, 0];
  if (bpp === 32 && compression === BI_BITFIELDS) {
    const at = 54; // right after a 40-byte header, or inside a V2+ header at the same offset
    if (buf.length < at + 16) throw new Error('truncated BMP colour masks');
    masks = [buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), 0];
    if (headerSize >= 56) masks[3] = buf.readUInt32LE(at + 12);
  }
  let palette: Buffer | undefined;
  if (bpp === 8) {
    const colours = buf.readUInt32LE(46) || 256;
    const at = 14 + headerSize;
    if (colours > 256 || at + colours * 4 > dataOffset) throw new Error('invalid BMP palette');
    palette = buf.subarray(at, at + colours * 4);
  }
  const hasAlpha = bpp === 32 && masks[3] !== 0;
  const channels: 3 | 4 = hasAlpha ? 4 : 3;
  const out = Buffer.alloc(width * height * channels);
  const fields = masks.map(maskShift);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    let o = y * width * channels;
    for (let x = 0; x < width; x++, o += channels) {
      if (bpp === 24) {
        const p = row + x * 3;
        out[o] = buf[p + 2] as number;
        out[o + 1] = buf[p + 1] as number;
        out[o + 2] = buf[p] as number;
      } else if (bpp === 8) {
        const index = buf[row + x] as number;
        if (!palette || index * 4 + 2 >= palette.length) throw new Error(`BMP palette index ${index} out of range`);
        out[o] = palette[index * 4 + 2] as number;
        out[o + 1] = palette[index * 4 + 1] as number;
        out[o + 2] = palette[index * 4] as number;
      } else {
        const v = buf.readUInt32LE(row + x * 4);
        for (let c = 0; c < channels; c++) {
          const f = fields[c] as { shift: number; max: number };
          out[o + c] = f.max === 0 ? 0 : Math.round((((v >>> f.shift) & f.max) * 255) / f.max);
        }
      }
    }
  }
  return { data: out, width, height, channels };
}
