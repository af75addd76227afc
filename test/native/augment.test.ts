// The native augmentation (addon.augmentImage, used by the data pipeline) against the TypeScript reference.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { augmentAsync, augmentInto, drawAugmentParams, POLICY_OPS } from '../../src/data/augment.js';
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
  it('the policy draws one op per image after everything else, and every op runs', async () => {
    const plain = drawAugmentParams(SIZE, new Rng(5, 'augment', 1, 2), { eraseProbability: 1 });
    const trivial = drawAugmentParams(SIZE, new Rng(5, 'augment', 1, 2), {
      eraseProbability: 1,
      policy: 'trivial',
      policyMagnitude: 0.5,
    });
    const { op: _op, magnitude: _m, ...rest } = trivial;
    expect(rest).toEqual(plain);
    const seen = new Map<string, number>();
    const rng = new Rng(11, 'policy');
    for (let i = 0; i < 1400; i++) {
      const p = drawAugmentParams(SIZE, rng, { policy: 'trivial', policyMagnitude: 0.5 });
      const op = p.op ?? 'identity';
      seen.set(op, (seen.get(op) ?? 0) + 1);
      if (p.op !== undefined) {
        expect(Math.abs(p.magnitude!)).toBeLessThanOrEqual(0.5);
      } else {
        expect(p.magnitude).toBeUndefined();
      }
    }
    // Uniform over the 14 ops: 100 each expected, all within 4 standard deviations.
    expect([...seen.keys()].sort()).toEqual([...POLICY_OPS].sort());
    for (const count of seen.values()) expect(Math.abs(count - 100)).toBeLessThan(40);

    const hwc = await decodeResized(photos('daisy', 1)[0]!, { size: SIZE });
    const identity = { x: 0, y: 0, width: SIZE, height: SIZE, flip: false, brightness: 1, contrast: 1, saturation: 1 };
    const base = new Float32Array(3 * SIZE * SIZE);
    await augmentAsync(hwc, SIZE, identity, base, 0);
    for (const op of POLICY_OPS.filter((o) => o !== 'identity')) {
      const out = new Float32Array(3 * SIZE * SIZE);
      await augmentAsync(hwc, SIZE, { ...identity, op, magnitude: 0.8 }, out, 0);
      expect(out.every(Number.isFinite), op).toBe(true);
      const moved = out.reduce((s, v, i) => s + Math.abs(v - base[i]!), 0) / out.length;
      expect(moved, op).toBeGreaterThan(0.005);
      // Deterministic.
      const again = new Float32Array(3 * SIZE * SIZE);
      await augmentAsync(hwc, SIZE, { ...identity, op, magnitude: 0.8 }, again, 0);
      expect(Array.from(again)).toEqual(Array.from(out));
    }
    // 'identity' is the one-pass path, value for value; the TypeScript fallback refuses the others.
    const same = new Float32Array(3 * SIZE * SIZE);
    await augmentAsync(hwc, SIZE, { ...identity, op: 'identity', magnitude: 0.8 }, same, 0);
    expect(Array.from(same)).toEqual(Array.from(base));
    expect(() => augmentInto(hwc, SIZE, { ...identity, op: 'rotate', magnitude: 0.1 }, same, 0)).toThrow(
      /policy augmentation run in the native addon/,
    );
    const a = augment as NonNullable<typeof augment>;
    const mean = [0.5, 0.5, 0.5] as const;
    await expect(async () => a(hwc, SIZE, { ...identity, op: 'cutout' }, same, 0, mean, mean)).rejects.toThrow(
      /Unknown augmentation op 'cutout' \(known: identity, rotate/,
    );
    await expect(async () =>
      a(hwc, SIZE, { ...identity, op: 'rotate', magnitude: 2 }, same, 0, mean, mean),
    ).rejects.toThrow(/params.magnitude. between/);
  });

  it("the policy's pixel ops are PIL's ImageOps and ImageEnhance (within 2 grey levels) on a real photo", async () => {
    const hwc = await decodeResized(photos('tulips', 1)[0]!, { size: SIZE });
    const tmp = mkdtempSync(join(tmpdir(), 'policy-pil-'));
    try {
      writeFileSync(join(tmp, 'in.rgb'), hwc);
      const cases: [string, number][] = [];
      for (const op of ['brightness', 'color', 'contrast', 'sharpness', 'posterize', 'solarize']) {
        for (const m of [-0.8, 0.4, 1]) cases.push([op, m]);
      }
      cases.push(['autocontrast', 0.5], ['equalize', 0.5]);
      const script = [
        'import json, sys',
        'from PIL import Image, ImageEnhance, ImageOps',
        `im = Image.frombytes('RGB', (${SIZE}, ${SIZE}), open(sys.argv[1] + '/in.rgb', 'rb').read())`,
        'for i, (op, m) in enumerate(json.loads(sys.argv[2])):',
        '    f = 1 + 0.9 * m',
        "    if op in ('brightness', 'color', 'contrast', 'sharpness'):",
        "        r = getattr(ImageEnhance, {'color': 'Color'}.get(op, op.capitalize()))(im).enhance(f)",
        "    elif op == 'posterize': r = ImageOps.posterize(im, 8 - round(4 * abs(m)))",
        "    elif op == 'solarize': r = ImageOps.solarize(im, 256 * (1 - abs(m)))",
        '    else: r = getattr(ImageOps, op)(im)',
        "    open(f'{sys.argv[1]}/{i}.rgb', 'wb').write(r.tobytes())",
        '',
      ].join('\n');
      writeFileSync(join(tmp, 'pil.py'), script);
      execFileSync('/usr/bin/python3', [join(tmp, 'pil.py'), tmp, JSON.stringify(cases)]);
      const identity = {
        x: 0,
        y: 0,
        width: SIZE,
        height: SIZE,
        flip: false,
        brightness: 1,
        contrast: 1,
        saturation: 1,
      };
      const plane = SIZE * SIZE;
      for (const [i, [op, magnitude]] of cases.entries()) {
        const out = new Float32Array(3 * plane);
        // Mean 0 and std 1/255: the output is the augmented image's bytes.
        await augmentAsync(hwc, SIZE, { ...identity, op, magnitude }, out, 0, [0, 0, 0], [1 / 255, 1 / 255, 1 / 255]);
        const pil = readFileSync(join(tmp, `${i}.rgb`));
        let worst = 0;
        for (let p = 0; p < plane; p++) {
          for (let c = 0; c < 3; c++)
            worst = Math.max(worst, Math.abs(Math.round(out[c * plane + p]!) - pil[p * 3 + c]!));
        }
        expect(worst, `${op} ${magnitude}`).toBeLessThanOrEqual(
          ['posterize', 'solarize', 'autocontrast', 'equalize'].includes(op) ? 0 : 2,
        );
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
