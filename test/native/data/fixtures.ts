/** Generates odd and broken images with sharp (never committed; written into a temp folder by the tests). */
import { crc32, deflateSync } from 'node:zlib';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp, { type Sharp } from 'sharp';

import { encodeBmp } from '../../unit/data/bmp-encode.js';

export const COLOUR = { r: 200, g: 100, b: 50 } as const;

/** A PNG chunk with its CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The header of a huge PNG and its first two rows (a decompression bomb that must never get to decode). */
export function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(2 * (1 + width * 3)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const solid = (channels: 3 | 4 = 3, width = 64, height = 48): Sharp =>
  sharp({ create: { width, height, channels, background: { ...COLOUR, alpha: 1 } } });

const noise = (width: number, height: number): Sharp =>
  sharp(Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 2654435761) >>> 24)), {
    raw: { width, height, channels: 3 },
  });

/** Left half red, right half blue, stored landscape with EXIF orientation 6 (display rotated 90° clockwise). */
async function exifRotated(): Promise<Buffer> {
  const w = 64;
  const h = 48;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** What each generated file is and how the pipeline must treat it. */
export interface Case {
  file: string;
  /** Expected colour after preprocessing (fill resize), or null when the file must be excluded. */
  expect: { r: number; g: number; b: number; tolerance: number } | null;
  /** Part of the exclusion reason. */
  reason?: RegExp;
}

/** Writes every case into `dir/<class>/` and returns them. */
export async function writeCases(dir: string, className = 'daisy'): Promise<Case[]> {
  const d = path.join(dir, className);
  await mkdir(d, { recursive: true });
  const goodJpeg = await noise(64, 48).jpeg().toBuffer();
  const corrupt = Buffer.from(goodJpeg);
  corrupt.fill(0x5a, 2, 200); // header segments overwritten
  const png = await noise(200, 200).png({ compressionLevel: 0 }).toBuffer();
  const rgba = Buffer.alloc(16 * 16 * 4);
  for (let i = 0; i < 256; i++) rgba.set([COLOUR.r, COLOUR.g, COLOUR.b, 255], i * 4);
  const files: [string, Buffer | Promise<Buffer>][] = [
    ['corrupt.jpg', corrupt],
    ['truncated.png', png.subarray(0, Math.floor(png.length * 0.6))],
    ['text.jpg', Buffer.from('this is not an image, just text named .jpg\n')],
    ['empty.jpg', Buffer.alloc(0)],
    ['bomb.png', hugePngHeader(30000, 30000)],
    ['vector.png', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
    ['cmyk.jpg', solid().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer()],
    ['rgba16.png', solid(4).toColourspace('rgb16').png().toBuffer()],
    [
      'grey.jpg',
      sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 90, g: 90, b: 90 } } })
        .toColourspace('b-w')
        .jpeg({ quality: 95 })
        .toBuffer(),
    ],
    ['rotated.JPEG', exifRotated()],
    ['bitmap.bmp', Promise.resolve(encodeBmp(rgba, 16, 16, 32))],
    [
      'bitmap24.BMP',
      Promise.resolve(
        encodeBmp(
          Buffer.from(Array.from({ length: 5 * 3 * 3 }, (_, i) => [COLOUR.r, COLOUR.g, COLOUR.b][i % 3] as number)),
          5,
          3,
          24,
        ),
      ),
    ],
    ['image.tif', solid().tiff().toBuffer()],
    ['image.webp', solid().webp({ lossless: true }).toBuffer()],
    ['notes.txt', Buffer.from('ignored: unsupported extension')],
  ];
  for (const [name, data] of files) await writeFile(path.join(d, name), await data);
  const c = (file: string): string => `${className}/${file}`;
  return [
    { file: c('corrupt.jpg'), expect: null, reason: /not a readable image/ },
    { file: c('truncated.png'), expect: null, reason: /truncated PNG|cannot decode/ },
    { file: c('text.jpg'), expect: null, reason: /unsupported image format/ },
    { file: c('empty.jpg'), expect: null, reason: /empty file/ },
    { file: c('bomb.png'), expect: null, reason: /30000x30000 pixels exceeds the limit/ },
    { file: c('vector.png'), expect: null, reason: /unsupported image format 'svg'/ },
    // CMYK goes through sharp's CMYK profile both ways: a lossy round trip, hence the wider tolerance.
    { file: c('cmyk.jpg'), expect: { ...COLOUR, tolerance: 32 } },
    { file: c('rgba16.png'), expect: { ...COLOUR, tolerance: 1 } },
    { file: c('grey.jpg'), expect: { r: 90, g: 90, b: 90, tolerance: 3 } },
    { file: c('rotated.JPEG'), expect: null }, // checked separately (top red, bottom blue)
    { file: c('bitmap.bmp'), expect: { ...COLOUR, tolerance: 0 } },
    { file: c('bitmap24.BMP'), expect: { ...COLOUR, tolerance: 0 } },
    { file: c('image.tif'), expect: { ...COLOUR, tolerance: 0 } },
    { file: c('image.webp'), expect: { ...COLOUR, tolerance: 0 } },
  ];
}
