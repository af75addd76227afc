// The native JPEG fast path (libjpeg-turbo decode + resize) against sharp, its typed errors and BAD CALLs.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { decodeResized, jpegFastPathAvailable, normalizeInto, preprocessInto } from '../../src/data/preprocess.js';
import { InvalidImageError } from '../../src/errors.js';
import { CLASSES, hasFlowers, photos } from '../helpers.js';

const addon = loadAddon();
const native = addon.decodeJpegResized;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-jpeg-'));
// Calls with deliberately wrong arguments go through an untyped view of the function.
type Loose = (...args: unknown[]) => unknown;

type Mode = 'fill' | 'center-crop';

/** What the sharp path gives for the same bytes. */
const viaSharp = (bytes: Buffer, size: number, resize: Mode = 'fill'): Promise<Uint8Array> =>
  decodeResized(bytes, { size, resize, jpeg: 'sharp' });

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs((a[i] as number) - (b[i] as number));
  return sum / a.length;
}

/** A smooth colour pattern with some texture, width×height RGB. */
function pattern(width: number, height: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = 128 + 100 * Math.sin(x / 17) * Math.cos(y / 23);
      px[i + 1] = (255 * x) / width;
      px[i + 2] = ((x * 7 + y * 13) % 64) + 96;
    }
  }
  return px;
}

const jpegOf = (width: number, height: number): Sharp =>
  sharp(pattern(width, height), { raw: { width, height, channels: 3 } });

/** Rejection code of a native call, or 'resolved'. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return String((err as { code?: string }).code);
  }
}

describe.skipIf(!native)('native JPEG fast path', () => {
  const decode = native as NonNullable<typeof native>;

  it('is what decodeResized uses', () => {
    expect(jpegFastPathAvailable()).toBe(true);
  });

  it.skipIf(!hasFlowers).each(['fill', 'center-crop'] as const)(
    'matches sharp on 20 real photos at 224 (%s)',
    async (mode) => {
      const files = CLASSES.flatMap((c) => photos(c, 4));
      expect(files.length).toBe(20);
      const diffs: number[] = [];
      for (const file of files) {
        const bytes = readFileSync(file);
        const ours = await decode(bytes, 224, mode, 50_000_000).catch((e: { code?: string }) => e);
        const theirs = await viaSharp(bytes, 224, mode);
        const auto = await decodeResized(file, { size: 224, resize: mode, jpeg: 'auto' });
        if (ours instanceof Uint8Array) {
          expect(ours.length).toBe(224 * 224 * 3);
          diffs.push(meanAbsDiff(ours, theirs));
          expect(auto).toEqual(ours); // decodeResized took the fast path
        } else {
          // A photo with a non-sRGB ICC profile: left to sharp, which converts it.
          expect(ours.code).toBe('ERR_UNSUPPORTED_JPEG');
          expect(auto).toEqual(theirs);
        }
      }
      expect(diffs.length).toBeGreaterThanOrEqual(10);
      expect(Math.max(...diffs)).toBeLessThan(3);
      expect(diffs.reduce((a, b) => a + b, 0) / diffs.length).toBeLessThan(1);
    },
  );

  it.each([
    ['enlarging both axes', 150, 100, 224, 'fill'],
    ['enlarging one axis', 320, 213, 224, 'fill'],
    ['reducing, DCT-scaled by 8', 1900, 1300, 100, 'fill'],
    ['reducing, DCT-scaled by 2, box pre-shrink of the long side', 1200, 420, 128, 'fill'],
    ['cropping a wide image', 500, 333, 224, 'center-crop'],
    ['cropping a tall image, enlarged', 120, 200, 160, 'center-crop'],
    ['cropping, DCT-scaled by 4', 1000, 1400, 200, 'center-crop'],
  ] as const)('matches sharp when %s', async (_what, w, h, size, mode) => {
    const bytes = await jpegOf(w, h).jpeg({ quality: 90 }).toBuffer();
    const ours = await decode(bytes, size, mode, 50_000_000);
    expect(meanAbsDiff(ours, await viaSharp(bytes, size, mode))).toBeLessThan(1.5);
  });

  it('decodes grayscale (3 equal channels) and progressive JPEGs like sharp', async () => {
    const grey = await jpegOf(200, 150).toColourspace('b-w').jpeg({ quality: 92 }).toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await decode(grey, 64, 'fill', 50_000_000);
    expect(g[0]).toBe(g[1]);
    expect(g[1]).toBe(g[2]);
    expect(meanAbsDiff(g, await viaSharp(grey, 64))).toBeLessThan(1.5);

    const progressive = await jpegOf(400, 300).jpeg({ quality: 85, progressive: true }).toBuffer();
    expect((await sharp(progressive).metadata()).isProgressive).toBe(true);
    const p = await decode(progressive, 128, 'center-crop', 50_000_000);
    expect(meanAbsDiff(p, await viaSharp(progressive, 128, 'center-crop'))).toBeLessThan(1.5);
  });

  it.each([2, 3, 4, 5, 6, 7, 8])('applies EXIF orientation %i like sharp', async (orientation) => {
    const bytes = await jpegOf(96, 64).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer();
    expect((await sharp(bytes).metadata()).orientation).toBe(orientation);
    for (const mode of ['fill', 'center-crop'] as const) {
      const ours = await decode(bytes, 48, mode, 50_000_000);
      expect(meanAbsDiff(ours, await viaSharp(bytes, 48, mode)), mode).toBeLessThan(2);
    }
  });

  it('transforms an embedded non-sRGB ICC profile (Display P3) to sRGB as sharp does', async () => {
    // Saturated blocks, where P3 and sRGB values are far apart.
    const [w, h] = [96, 64];
    const px = Buffer.alloc(w * h * 3);
    const colours = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [255, 255, 0],
      [0, 255, 255],
      [255, 0, 255],
    ];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) px.set(colours[(Math.floor(x / 16) + Math.floor(y / 32) * 3) % 6]!, (y * w + x) * 3);
    }
    const p3 = await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .withIccProfile('p3')
      .jpeg({ quality: 95 })
      .toBuffer();
    expect((await sharp(p3).metadata()).icc?.length).toBeGreaterThan(0);
    const ours = await decode(p3, 48, 'fill', 50_000_000);
    const untransformed = await sharp(p3, { ignoreIcc: true })
      .resize(48, 48, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    // The fast path transforms after the resize (sharp before it): where saturated blocks meet, the blend of P3
    // values is transformed rather than the blend of sRGB ones. 1.9 levels on average here, the worst case; 0.2 on
    // tf_flowers' profiled photos.
    expect(meanAbsDiff(ours, await viaSharp(p3, 48))).toBeLessThan(2.5);
    expect(meanAbsDiff(ours, new Uint8Array(untransformed))).toBeGreaterThan(5);
  });

  it.skipIf(!hasFlowers)(
    'preprocessInto (one native job to normalised floats) equals decode + normalizeInto',
    async () => {
      const files = CLASSES.flatMap((c) => photos(c, 3));
      const size = 160;
      const per = 3 * size * size;
      const mean = [0.5, 0.4, 0.3] as const;
      const std = [0.2, 0.25, 0.3] as const;
      const fused = new Float32Array(files.length * per + 7);
      const reference = new Float32Array(files.length * per + 7);
      for (const [i, f] of files.entries()) {
        await preprocessInto(f, fused, 7 + i * per, { size, mean, std });
        normalizeInto(await decodeResized(f, { size }), reference, 7 + i * per, { mean, std });
      }
      expect(fused).toEqual(reference);
      // A JPEG the fast path leaves to sharp (CMYK) still arrives, normalised the same way.
      const cmyk = await jpegOf(64, 48).toColourspace('cmyk').jpeg().toBuffer();
      const a = new Float32Array(3 * 32 * 32);
      const b = new Float32Array(3 * 32 * 32);
      await preprocessInto(cmyk, a, 0, { size: 32 });
      normalizeInto(await viaSharp(cmyk, 32), b, 0);
      expect(a).toEqual(b);
      await expect(preprocessInto(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2]), a, 0, { size: 32 })).rejects.toThrow(
        InvalidImageError,
      );
      await expect(preprocessInto(cmyk, a, 1, { size: 32 })).rejects.toThrow(/room for 3072 values at offset 1/);
    },
  );

  it.skipIf(!hasFlowers)(
    'decodeImagesIntoSync writes what preprocessInto writes, in order, up to the first image it cannot do',
    async () => {
      const sync = addon.decodeImagesIntoSync!;
      const files = CLASSES.flatMap((c) => photos(c, 2));
      const size = 64;
      const per = 3 * size * size;
      const mean = [0.5, 0.4, 0.3] as const;
      const std = [0.2, 0.25, 0.3] as const;
      const reference = new Float32Array(files.length * per + 5);
      for (const [i, f] of files.entries()) await preprocessInto(f, reference, 5 + i * per, { size, mean, std });
      const out = new Float32Array(files.length * per + 5);
      const items = files.map((f, i) => (i % 2 ? readFileSync(f) : f));
      expect(sync(items, 1e8, size, 'fill', 1e8, out, 5, mean, std)).toBe(files.length);
      expect(out).toEqual(reference);
      // Stops at: a PNG, a truncated JPEG, CMYK, a missing file, a file over the limit, a folder.
      const png = await jpegOf(40, 30).png().toBuffer();
      const cmyk = await jpegOf(40, 30).toColourspace('cmyk').jpeg().toBuffer();
      const truncated = readFileSync(files[0]!).subarray(0, 3000);
      for (const bad of [png, truncated, cmyk, join(tmp, 'missing.jpg'), tmp]) {
        expect(sync([files[0]!, bad, files[1]!], 1e8, size, 'fill', 1e8, out, 0, mean, std)).toBe(1);
      }
      expect(sync([files[0]!], 100, size, 'fill', 1e8, out, 0, mean, std)).toBe(0);
      expect(sync([files[0]!], 1e8, size, 'fill', 100, out, 0, mean, std)).toBe(0);
      // Bad arguments throw.
      const loose = sync as unknown as Loose;
      expect(() => loose('x.jpg', 1e8, size, 'fill', 1e8, out, 0, mean, std)).toThrow(TypeError);
      expect(() => loose([42], 1e8, size, 'fill', 1e8, out, 0, mean, std)).toThrow(TypeError);
      expect(() => sync(files, 1e8, size, 'fill', 1e8, new Float32Array(per), 0, mean, std)).toThrow(RangeError);
      expect(() => sync([files[0]!], 1e8, size, 'fill', 1e8, out, 0, mean, [0, 1, 1])).toThrow(RangeError);
    },
  );

  it('leaves CMYK to sharp (ERR_UNSUPPORTED_JPEG), and decodeResized then gives sharp pixels', async () => {
    const cmyk = await jpegOf(64, 48).toColourspace('cmyk').jpeg().toBuffer();
    expect(await codeOf(decode(cmyk, 32, 'fill', 50_000_000))).toBe('ERR_UNSUPPORTED_JPEG');
    expect(await decodeResized(cmyk, { size: 32, jpeg: 'auto' })).toEqual(await viaSharp(cmyk, 32));
  });

  it('rejects truncated, empty and garbage JPEGs with ERR_INVALID_IMAGE, and decodeResized names the file', async () => {
    const good = await jpegOf(300, 200).jpeg({ quality: 90 }).toBuffer();
    const cases: [string, Buffer][] = [
      ['truncated', good.subarray(0, Math.floor(good.length * 0.6))],
      ['header only', good.subarray(0, 200)],
      ['empty', Buffer.alloc(0)],
      ['signature only', Buffer.from([0xff, 0xd8, 0xff])],
      ['garbage after FF D8 FF', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(500, 0x42)])],
      ['not a JPEG', Buffer.from('hello, world')],
    ];
    for (const [what, bytes] of cases) {
      expect(await codeOf(decode(bytes, 64, 'fill', 50_000_000)), what).toBe('ERR_INVALID_IMAGE');
    }
    const file = join(tmp, 'truncated.jpg');
    writeFileSync(file, cases[0]![1]);
    const err = await decodeResized(file, { size: 64, jpeg: 'auto' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidImageError);
    expect((err as InvalidImageError).path).toBe(file);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/premature end|invalid JPEG/i);
  });

  it('enforces maxPixels from the header, before decoding', async () => {
    const small = await jpegOf(64, 48).jpeg().toBuffer();
    await expect(decode(small, 32, 'fill', 64 * 48)).resolves.toHaveLength(32 * 32 * 3);
    const err = await decode(small, 32, 'fill', 64 * 48 - 1).catch((e: Error) => e);
    expect((err as { code?: string }).code).toBe('ERR_INVALID_IMAGE');
    expect((err as Error).message).toMatch(/64x48 pixels exceeds the pixel limit/);

    // A header that claims 30000x30000 (the bytes behind it are a 64x48 image): refused from the header alone.
    const bomb = Buffer.from(small);
    const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    bomb.writeUInt16BE(30000, sof + 5);
    bomb.writeUInt16BE(30000, sof + 7);
    const started = performance.now();
    const bombErr = await decode(bomb, 32, 'fill', 50_000_000).catch((e: Error) => e);
    expect((bombErr as Error).message).toMatch(/30000x30000 pixels exceeds the pixel limit/);
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(decodeResized(bomb, { size: 32, jpeg: 'auto' })).rejects.toThrow(/pixel limit/);
  });

  it('answers randomly corrupted JPEGs with pixels or a typed error, never a crash', async () => {
    const good = await jpegOf(160, 120).jpeg({ quality: 80 }).toBuffer();
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 60; i++) {
      const bad = Buffer.from(good);
      for (let k = 0; k < 1 + (i % 8); k++) bad[3 + rand(bad.length - 3)] = rand(256);
      const result = await decode(bad, 32, i % 2 ? 'fill' : 'center-crop', 50_000_000).catch((e: unknown) => e);
      if (result instanceof Uint8Array) {
        expect(result.length).toBe(32 * 32 * 3);
      } else {
        expect(['ERR_INVALID_IMAGE', 'ERR_UNSUPPORTED_JPEG']).toContain((result as { code?: string }).code);
      }
    }
  });

  it('BAD CALL: wrong types and out-of-range values throw TypeError / RangeError synchronously', async () => {
    const raw = decode as unknown as Loose;
    const ok = await jpegOf(32, 32).jpeg().toBuffer();
    for (const data of ['a.jpg', 42, undefined, null, {}, new Float32Array(4), new Uint16Array(4)]) {
      expect(() => raw(data, 32, 'fill', 10_000), String(data)).toThrow(TypeError);
    }
    for (const size of ['224', undefined, {}]) expect(() => raw(ok, size, 'fill', 10_000)).toThrow(TypeError);
    for (const size of [0, -1, 1.5, NaN, Infinity, 100_000])
      expect(() => raw(ok, size, 'fill', 10_000)).toThrow(RangeError);
    for (const mode of [5, undefined, null]) expect(() => raw(ok, 32, mode, 10_000)).toThrow(TypeError);
    for (const mode of ['cover', 'FILL', '']) expect(() => raw(ok, 32, mode, 10_000)).toThrow(RangeError);
    expect(() => raw(ok, 32, 'fill')).toThrow(TypeError);
    for (const max of [0, -5, 0.5]) expect(() => raw(ok, 32, 'fill', max)).toThrow(RangeError);
    try {
      raw(ok, 0, 'fill', 10_000);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
      expect((err as Error).message).toMatch(/`size`/);
    }
    // A view into a larger buffer decodes its own bytes only.
    const padded = Buffer.concat([Buffer.alloc(7, 1), ok, Buffer.alloc(5, 2)]);
    const view = new Uint8Array(padded.buffer, padded.byteOffset + 7, ok.length);
    expect(await decode(view, 16, 'fill', 10_000)).toEqual(await decode(ok, 16, 'fill', 10_000));

    const into = addon.decodeJpegInto as unknown as Loose;
    const out = new Float32Array(3 * 16 * 16);
    const m = [0.5, 0.5, 0.5];
    expect(() => into(ok, 16, 'fill', 10_000, new Uint8Array(768), 0, m, m)).toThrow(TypeError);
    expect(() => into(ok, 16, 'fill', 10_000, out, 1, m, m)).toThrow(RangeError);
    expect(() => into(ok, 16, 'fill', 10_000, out, -1, m, m)).toThrow(RangeError);
    expect(() => into(ok, 16, 'fill', 10_000, out, 0, [1, 2], m)).toThrow(TypeError);
    expect(() => into(ok, 16, 'fill', 10_000, out, 0, m, [1, 0, 1])).toThrow(RangeError);
    expect(await codeOf(into(Buffer.from('not a jpeg'), 16, 'fill', 10_000, out, 0, m, m) as Promise<void>)).toBe(
      'ERR_INVALID_IMAGE',
    );
  });

  it('decodeJpegFileInto: one job from a path, the same floats as from the bytes; what it leaves comes back', async () => {
    const fileInto = addon.decodeJpegFileInto as NonNullable<typeof addon.decodeJpegFileInto>;
    const into = addon.decodeJpegInto as NonNullable<typeof addon.decodeJpegInto>;
    const m = [0.485, 0.456, 0.406] as const;
    const s = [0.229, 0.224, 0.225] as const;
    const jpeg = join(tmp, 'file-into.jpg');
    writeFileSync(jpeg, await jpegOf(333, 250).jpeg({ quality: 85 }).toBuffer());
    const fromFile = new Float32Array(2 * 3 * 64 * 64).fill(-7);
    const fromBytes = new Float32Array(3 * 64 * 64);
    // Into the second image of a batch: the first stays untouched.
    expect(await fileInto(jpeg, 1 << 20, 64, 'fill', 1e6, fromFile, 3 * 64 * 64, m, s)).toBeUndefined();
    await into(readFileSync(jpeg), 64, 'fill', 1e6, fromBytes, 0, m, s);
    expect(fromFile.subarray(3 * 64 * 64)).toEqual(fromBytes);
    expect(fromFile.subarray(0, 3 * 64 * 64).every((v) => v === -7)).toBe(true);
    // Not for the fast path: the bytes come back (a PNG; a CMYK JPEG for sharp).
    const png = join(tmp, 'file-into.png');
    const pngBytes = await jpegOf(40, 30).png().toBuffer();
    writeFileSync(png, pngBytes);
    expect(await fileInto(png, 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s)).toEqual(pngBytes);
    const cmyk = join(tmp, 'file-into-cmyk.jpg');
    const cmykBytes = await jpegOf(40, 30).toColourspace('cmyk').jpeg().toBuffer();
    writeFileSync(cmyk, cmykBytes);
    expect(await fileInto(cmyk, 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s)).toEqual(cmykBytes);
    // Not readable as a regular file within the limit: null (the caller reads it again to say why).
    expect(await fileInto(join(tmp, 'missing.jpg'), 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s)).toBeNull();
    expect(await fileInto(tmp, 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s)).toBeNull();
    expect(await fileInto(jpeg, 100, 64, 'fill', 1e6, fromBytes, 0, m, s)).toBeNull();
    // A corrupt JPEG: ERR_INVALID_IMAGE; preprocessInto names the file, and its errors for unreadable files stay.
    const bad = join(tmp, 'file-into-truncated.jpg');
    writeFileSync(bad, readFileSync(jpeg).subarray(0, 400));
    expect(await codeOf(fileInto(bad, 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s))).toBe('ERR_INVALID_IMAGE');
    await expect(preprocessInto(bad, fromBytes, 0, { size: 64 })).rejects.toThrow(/file-into-truncated\.jpg/);
    await expect(preprocessInto(tmp, fromBytes, 0, { size: 64 })).rejects.toThrow(/a directory, not a regular file/);
    await expect(preprocessInto(jpeg, fromBytes, 0, { size: 64, maxFileBytes: 100 })).rejects.toThrow(
      /larger than the limit of 100 bytes/,
    );
    // preprocessInto from the PNG's path decodes it with sharp.
    await preprocessInto(png, fromBytes, 0, { size: 64 });
    const viaBytes = new Float32Array(3 * 64 * 64);
    await preprocessInto(pngBytes, viaBytes, 0, { size: 64 });
    expect(fromBytes).toEqual(viaBytes);
    const loose = addon.decodeJpegFileInto as unknown as Loose;
    expect(() => loose(42, 1 << 20, 64, 'fill', 1e6, fromBytes, 0, m, s)).toThrow(TypeError);
    expect(() => loose(jpeg, 1 << 20, 64, 'fill', 1e6, fromBytes, 1, m, s)).toThrow(RangeError);
    expect(() => loose(jpeg, 0, 64, 'fill', 1e6, fromBytes, 0, m, s)).toThrow(RangeError);
  });

  it('decodeResized refuses an unknown `jpeg` choice, and TRT_FLOWERS_JPEG=sharp forces sharp', async () => {
    const ok = await jpegOf(300, 200).jpeg().toBuffer();
    await expect(decodeResized(ok, { jpeg: 'turbo' as never })).rejects.toThrow(RangeError);
    const fast = await decode(ok, 100, 'fill', 50_000_000);
    const slow = await viaSharp(ok, 100);
    expect(fast).not.toEqual(slow); // close, not identical: tells the two paths apart
    const before = process.env.TRT_FLOWERS_JPEG;
    try {
      delete process.env.TRT_FLOWERS_JPEG;
      expect(await decodeResized(ok, { size: 100 })).toEqual(fast);
      process.env.TRT_FLOWERS_JPEG = 'sharp';
      expect(await decodeResized(ok, { size: 100 })).toEqual(slow);
      expect(await decodeResized(ok, { size: 100, jpeg: 'auto' })).toEqual(fast); // the option wins
    } finally {
      if (before === undefined) delete process.env.TRT_FLOWERS_JPEG;
      else process.env.TRT_FLOWERS_JPEG = before;
    }
  });

  it('keeps the event loop ticking during a batch of decodes', async () => {
    const big = await jpegOf(2400, 1600).jpeg({ quality: 90 }).toBuffer();
    await decode(big, 1024, 'fill', 50_000_000); // warm-up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    try {
      await Promise.all(Array.from({ length: 8 }, () => decode(big, 1024, 'fill', 50_000_000)));
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThan(40);
    // A blocked loop would give 0-3 ticks; a free one about one per millisecond (timers are coarse under load).
    expect(ticks).toBeGreaterThan(ms / 10);
  });
});
