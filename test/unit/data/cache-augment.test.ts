import { describe, expect, it } from 'vitest';

import { augmentInto, drawAugmentParams } from '../../../src/data/augment.js';
import { DecodedCache } from '../../../src/data/cache.js';
import { normalizeInto } from '../../../src/data/preprocess.js';
import { Rng } from '../../../src/data/rng.js';

describe('DecodedCache', () => {
  it('decodes once, shares concurrent requests, and evicts least recently used beyond its bound', async () => {
    const cache = new DecodedCache({ maxBytes: 250 });
    let decodes = 0;
    const decode = (n: number) => async (): Promise<Uint8Array> => {
      decodes++;
      await new Promise((r) => setTimeout(r, 5));
      return new Uint8Array(100).fill(n);
    };
    const [a, b] = await Promise.all([cache.get('a', decode(1)), cache.get('a', decode(1))]);
    expect(a).toBe(b);
    expect(decodes).toBe(1);
    await cache.get('b', decode(2));
    await cache.get('a', decode(1)); // a becomes most recent
    await cache.get('c', decode(3)); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.bytes).toBe(200);
    await cache.get('a', decode(1));
    expect(decodes).toBe(3);
    await cache.get('b', decode(2));
    expect(decodes).toBe(4);
  });

  it('stores nothing with a zero bound', async () => {
    const cache = new DecodedCache({ maxBytes: 0 });
    await cache.get('a', async () => new Uint8Array(10));
    expect(cache.size).toBe(0);
  });
});

describe('augmentInto', () => {
  const size = 8;
  const src = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 7) % 256);
  const identity = { x: 0, y: 0, width: size, height: size, flip: false, brightness: 1, contrast: 1, saturation: 1 };

  it('with identity parameters equals plain normalisation', () => {
    const a = new Float32Array(3 * size * size);
    const b = new Float32Array(3 * size * size);
    augmentInto(src, size, identity, a, 0);
    normalizeInto(src, b, 0);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i] as number, 4);
  });

  it('flips horizontally', () => {
    const a = new Float32Array(3 * size * size);
    const b = new Float32Array(3 * size * size);
    augmentInto(src, size, identity, a, 0);
    augmentInto(src, size, { ...identity, flip: true }, b, 0);
    expect(b[0]).toBeCloseTo(a[size - 1] as number, 4);
    expect(b[size * size + 3 * size + 2]).toBeCloseTo(a[size * size + 3 * size + size - 3] as number, 4);
  });

  it('draws seeded parameters inside the configured ranges', () => {
    const p = drawAugmentParams(224, new Rng(1), { cropScale: [0.5, 1], brightness: 0.2 });
    expect(p).toEqual(drawAugmentParams(224, new Rng(1), { cropScale: [0.5, 1], brightness: 0.2 }));
    for (let s = 0; s < 50; s++) {
      const q = drawAugmentParams(224, new Rng(s), { cropScale: [0.5, 1], brightness: 0.2 });
      expect(q.x + q.width).toBeLessThanOrEqual(224 + 1e-9);
      expect(q.y + q.height).toBeLessThanOrEqual(224 + 1e-9);
      expect((q.width * q.height) / 224 ** 2).toBeGreaterThanOrEqual(0.5 - 1e-9);
      expect(q.brightness).toBeGreaterThanOrEqual(0.8);
      expect(q.brightness).toBeLessThanOrEqual(1.2);
    }
  });

  it('refuses an output without room', () => {
    expect(() => augmentInto(src, size, identity, new Float32Array(10), 0)).toThrow(RangeError);
  });
});
