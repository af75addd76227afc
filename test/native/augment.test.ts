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

  it('degradations (downscale, JPEG round trip, random erasing) are drawn only when on, and do what they say', async () => {
    const hwc = await decodeResized(photos('tulips', 1)[0]!, { size: SIZE });
    const plain = drawAugmentParams(SIZE, new Rng(3, 'augment', 0, 5), {});
    const on = drawAugmentParams(SIZE, new Rng(3, 'augment', 0, 5), {
      downscaleProbability: 1,
      jpegProbability: 1,
      eraseProbability: 1,
    });
    // Off (the default): the same draws as before the degradations existed; on: those first, then theirs.
    expect(Object.keys(plain).sort()).toEqual(
      ['brightness', 'contrast', 'flip', 'height', 'saturation', 'width', 'x', 'y'].sort(),
    );
    expect(on).toMatchObject(plain);
    expect(on.downscale).toBeGreaterThanOrEqual(0.25);
    expect(on.downscale).toBeLessThanOrEqual(0.75);
    expect(Number.isInteger(on.jpegQuality)).toBe(true);
    expect(on.eraseWidth! * on.eraseHeight!).toBeGreaterThan(0);
    expect(on.eraseX! + on.eraseWidth!).toBeLessThanOrEqual(SIZE);

    const run = async (params: typeof plain): Promise<Float32Array> => {
      const out = new Float32Array(3 * SIZE * SIZE);
      await augmentAsync(hwc, SIZE, params, out, 0);
      return out;
    };
    const identity = { x: 0, y: 0, width: SIZE, height: SIZE, flip: false, brightness: 1, contrast: 1, saturation: 1 };
    const base = await run(identity);
    const meanAbs = (a: Float32Array, b: Float32Array): number =>
      a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
    // Horizontal detail: mean |difference| of neighbouring values in the first plane.
    const detail = (a: Float32Array): number => {
      let s = 0;
      for (let i = 1; i < SIZE * SIZE; i++) if (i % SIZE !== 0) s += Math.abs(a[i]! - a[i - 1]!);
      return s;
    };
    const small = await run({ ...identity, downscale: 0.25 });
    expect(detail(small)).toBeLessThan(0.8 * detail(base)); // measured 0.65
    expect(meanAbs(small, base)).toBeGreaterThan(0.02);
    // A downscale of 1 and quality 0 are the one-pass path, value for value.
    expect(Array.from(await run({ ...identity, downscale: 1, jpegQuality: 0 }))).toEqual(Array.from(base));
    const q10 = await run({ ...identity, jpegQuality: 10 });
    const q95 = await run({ ...identity, jpegQuality: 95 });
    expect(meanAbs(q10, base)).toBeGreaterThan(3 * meanAbs(q95, base));
    expect(meanAbs(q95, base)).toBeLessThan(0.05); // under about 3 grey levels
    expect(Array.from(await run({ ...identity, jpegQuality: 10 }))).toEqual(Array.from(q10)); // deterministic

    // Erasing: the box is 0 (the mean colour) in every plane, the rest untouched; the TypeScript twin agrees.
    const box = { ...identity, eraseX: 10, eraseY: 20, eraseWidth: 30, eraseHeight: 15 };
    const erased = await run(box);
    const ts = new Float32Array(3 * SIZE * SIZE);
    augmentInto(hwc, SIZE, box, ts, 0);
    expect(Array.from(ts)).toEqual(Array.from(erased));
    let zeros = 0;
    for (let i = 0; i < erased.length; i++) {
      const p = i % (SIZE * SIZE);
      const [x, y] = [p % SIZE, Math.floor(p / SIZE)];
      const inside = x >= 10 && x < 40 && y >= 20 && y < 35;
      if (inside) zeros += erased[i] === 0 ? 1 : 0;
      else expect(erased[i]).toBe(base[i]);
    }
    expect(zeros).toBe(3 * 30 * 15);
  });

  it('refuses bad degradation parameters, and the TypeScript fallback says where they run', () => {
    const hwc = new Uint8Array(8 * 8 * 3);
    const params = drawAugmentParams(8, new Rng(1), {});
    const out = new Float32Array(3 * 8 * 8);
    const mean = [0.5, 0.5, 0.5] as const;
    const a = augment as NonNullable<typeof augment>;
    expect(() => a(hwc, 8, { ...params, jpegQuality: 101 }, out, 0, mean, mean)).toThrow(/params.jpegQuality. between/);
    expect(() => a(hwc, 8, { ...params, downscale: 0 }, out, 0, mean, mean)).toThrow(/params.downscale. between/);
    expect(() => augmentInto(hwc, 8, { ...params, jpegQuality: 50 }, out, 0)).toThrow(/native addon/);
  });
});
