// The native augmentation (addon.augmentImage, used by the data pipeline) against the TypeScript reference.
import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { augmentAsync, augmentInto, drawAugmentParams } from '../../src/data/augment.js';
import { decodeResized } from '../../src/data/preprocess.js';
import { Rng } from '../../src/data/rng.js';
import { hasFlowers, photos, ticksDuring } from '../helpers.js';

const SIZE = 96;
const augment = loadAddon().augmentImage;

describe.skipIf(!hasFlowers || !augment)('native augmentation', () => {
  it('matches the TypeScript implementation value for value on real photos, flips and jitter included', async () => {
    const rng = new Rng(7, 'augment-test');
    const files = [...photos('roses', 2), ...photos('sunflowers', 2)];
    const config = {
      brightness: 0.4,
      contrast: 0.4,
      saturation: 0.4,
      flipProbability: 0.5,
      cropScale: [0.3, 1] as [number, number],
    };
    let flips = 0;
    for (const file of files) {
      const hwc = await decodeResized(file, { size: SIZE });
      for (let k = 0; k < 4; k++) {
        const params = drawAugmentParams(SIZE, rng, config);
        if (params.flip) flips++;
        const ts = new Float32Array(3 * SIZE * SIZE + 5);
        const native = new Float32Array(3 * SIZE * SIZE + 5);
        augmentInto(hwc, SIZE, params, ts, 5, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]);
        await augmentAsync(hwc, SIZE, params, native, 5, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]);
        expect(native[0]).toBe(0);
        expect(Array.from(native)).toEqual(Array.from(ts));
      }
    }
    expect(flips).toBeGreaterThan(0);
  });

  it('runs off the event loop', async () => {
    const hwc = new Uint8Array(224 * 224 * 3).map((_, i) => (i * 31) % 256);
    const params = drawAugmentParams(224, new Rng(1), {});
    const out = new Float32Array(64 * 3 * 224 * 224);
    const { ticks } = await ticksDuring(() =>
      Promise.all(Array.from({ length: 64 }, (_, i) => augmentAsync(hwc, 224, params, out, i * 3 * 224 * 224))),
    );
    expect(ticks).toBeGreaterThan(1);
  });

  it('rejects bad arguments with clear errors', () => {
    const hwc = new Uint8Array(8 * 8 * 3);
    const params = drawAugmentParams(8, new Rng(1), {});
    const out = new Float32Array(3 * 8 * 8);
    const mean = [0.5, 0.5, 0.5] as const;
    const a = augment as NonNullable<typeof augment>;
    expect(() => a(hwc.subarray(1), 8, params, out, 0, mean, mean)).toThrow(/Expected 192 source bytes, got 191/);
    expect(() => a(hwc, 8, params, out, 1, mean, mean)).toThrow(/No room for 192 values at 1/);
    expect(() => a(hwc, 8, { ...params, x: Number.NaN }, out, 0, mean, mean)).toThrow(/finite number for `params.x`/);
    expect(() => a(hwc, 8, params, out, 0, [1, 2] as unknown as typeof mean, mean)).toThrow(/3 numbers for `mean`/);
    expect(() => a(hwc, 8, params, new Uint8Array(192) as unknown as Float32Array, 0, mean, mean)).toThrow(
      /Float32Array for `out`/,
    );
  });
});
