import { describe, expect, it } from 'vitest';

import { decodeBmp, isBmp, readBmpHeader } from '../../../src/data/bmp.js';
import { encodeBmp } from './bmp-encode.js';

const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256); // 5x3, odd width: row padding

describe('decodeBmp', () => {
  it('decodes 24-bit bottom-up and top-down bitmaps with row padding', () => {
    for (const topDown of [false, true]) {
      const img = decodeBmp(encodeBmp(rgb, 5, 3, 24, topDown));
      expect(img).toMatchObject({ width: 5, height: 3, channels: 3 });
      expect([...img.data]).toEqual([...rgb]);
    }
  });

  it('decodes 32-bit BI_BITFIELDS with alpha', () => {
    const rgba = Uint8Array.from({ length: 4 * 2 * 4 }, (_, i) => (i * 53) % 256);
    const img = decodeBmp(encodeBmp(rgba, 4, 2, 32));
    expect(img.channels).toBe(4);
    expect([...img.data]).toEqual([...rgba]);
  });

  it('refuses truncated, oversized and unsupported bitmaps with a reason', () => {
    const good = encodeBmp(rgb, 5, 3);
    expect(isBmp(good)).toBe(true);
    expect(readBmpHeader(good)).toMatchObject({ width: 5, height: 3, bitsPerPixel: 24 });
    expect(() => decodeBmp(good.subarray(0, good.length - 4))).toThrow(/truncated BMP/);
    expect(() => decodeBmp(good, 10)).toThrow(/exceeds the limit of 10 pixels/);
    const rle = Buffer.from(good);
    rle.writeUInt32LE(1, 30);
    expect(() => decodeBmp(rle)).toThrow(/compression 1/);
    const bits = Buffer.from(good);
    bits.writeUInt16LE(16, 28);
    expect(() => decodeBmp(bits)).toThrow(/bit depth 16/);
    expect(() => decodeBmp(Buffer.from('BM'))).toThrow(/truncated BMP header/);
    expect(() => decodeBmp(Buffer.from('hello world, not a bitmap'))).toThrow(/not a BMP/);
  });
});
