import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { runRobustness } from '../../src/bench/robustness.js';
import { runBench } from '../../src/bench/run.js';
import { Engine, flipHorizontally, TTA_CROP_FRACTION, zoomedCrops } from '../../src/engine/Engine.js';
import { CLASSES, hasFlowers, photos, tinyModelPath, photoFolder } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-tta-'));
const dataDir = join(tmp, 'flowers');

beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 2);
});

describe('flipHorizontally', () => {
  it('mirrors every row of every plane, and twice is the identity', () => {
    const shape = [2, 3, 2, 4] as const;
    const data = Float32Array.from({ length: 2 * 3 * 2 * 4 }, (_, i) => i);
    const out = flipHorizontally(data, shape);
    expect([...out.subarray(0, 8)]).toEqual([3, 2, 1, 0, 7, 6, 5, 4]);
    expect([...out.subarray(40, 48)]).toEqual([43, 42, 41, 40, 47, 46, 45, 44]);
    expect(flipHorizontally(out, shape)).toEqual(data);
  });
});

describe('zoomedCrops', () => {
  it('with fraction 1 every view is the image itself', () => {
    const shape = [2, 3, 5, 5] as const;
    const data = Float32Array.from({ length: 2 * 3 * 25 }, (_, i) => Math.sin(i));
    const views = zoomedCrops(data, shape, 1);
    expect(views).toHaveLength(5);
    for (const v of views) for (let i = 0; i < data.length; i++) expect(v[i]).toBeCloseTo(data[i]!, 6);
  });

  it('enlarges the centre and the four corners: a linear ramp stays linear, over the crop', () => {
    // Plane value = x + 100 y: bilinear interpolation reproduces it exactly inside the crop.
    const s = 8;
    const shape = [1, 1, s, s] as const;
    const data = Float32Array.from({ length: s * s }, (_, i) => (i % s) + 100 * Math.floor(i / s));
    const views = zoomedCrops(data, shape, 0.5); // side 4: offsets 2 (centre), 0 and 4 (corners)
    const at = (v: Float32Array, x: number, y: number): number => v[y * s + x]!;
    // Output pixel x samples source x' = (x + 0.5) * 0.5 - 0.5, clamped to [0, 3], plus the offset.
    const src = (x: number): number => Math.min(Math.max((x + 0.5) * 0.5 - 0.5, 0), 3);
    const offsets = [
      [2, 2],
      [0, 0],
      [4, 0],
      [0, 4],
      [4, 4],
    ];
    for (const [k, [ox, oy]] of offsets.entries()) {
      for (const [x, y] of [
        [0, 0],
        [3, 5],
        [7, 7],
      ]) {
        expect(at(views[k]!, x!, y!)).toBeCloseTo(src(x!) + ox! + 100 * (src(y!) + oy!), 4);
      }
    }
  });

  it('refuses non-square images and fractions outside (0, 1]', () => {
    expect(() => zoomedCrops(new Float32Array(6), [1, 1, 2, 3], 0.875)).toThrow(/square/);
    expect(() => zoomedCrops(new Float32Array(4), [1, 1, 2, 2], 0)).toThrow(/fraction/);
    expect(() => zoomedCrops(new Float32Array(4), [1, 1, 2, 2], 1.5)).toThrow(/fraction/);
  });
});

describe.skipIf(!hasFlowers)('test-time augmentation (flip, crops)', () => {
  it("infer with tta 'flip' averages the logits of each image and its mirror", async () => {
    const files = CLASSES.map((c) => photos(c, 1)[0]!);
    const plain = await Engine.load(tinyModelPath, { threads: 1 });
    const flipped = await Engine.load(tinyModelPath, { threads: 1, tta: 'flip' });
    try {
      expect(plain.info.tta).toBe('none');
      expect(flipped.info.tta).toBe('flip');
      const batch = await plain.preprocess(files);
      const a = await plain.run(batch);
      const b = await plain.run({ data: flipHorizontally(batch.data, batch.shape), shape: batch.shape });
      const tta = await flipped.infer(files, { logits: true });
      const k = plain.info.classes.length;
      for (const [i, p] of tta.entries()) {
        for (let j = 0; j < k; j++) {
          expect(p.logits![j]).toBeCloseTo((a.logits[i * k + j]! + b.logits[i * k + j]!) / 2, 5);
        }
      }
      // The mirror changes the outputs, so the average is not the plain result (the check above can fail).
      const none = await plain.infer(files, { logits: true });
      const diff = Math.max(...none.flatMap((p, i) => [...p.logits!].map((v, j) => Math.abs(v - tta[i]!.logits![j]!))));
      expect(diff).toBeGreaterThan(1e-5);
      // Per call: 'none' on the flip engine is the plain result, 'flip' on the plain engine the averaged one.
      const off = await flipped.infer(files, { logits: true, tta: 'none' });
      expect(off.map((p) => [...p.logits!])).toEqual(none.map((p) => [...p.logits!]));
      const on = await plain.infer(files, { logits: true, tta: 'flip' });
      expect(on.map((p) => [...p.logits!])).toEqual(tta.map((p) => [...p.logits!]));
      await expect(plain.infer(files, { tta: 'multi' as never })).rejects.toThrow(
        /'none', 'flip' or 'crops' for `options.tta`/,
      );
    } finally {
      await plain.dispose();
      await flipped.dispose();
    }
    await expect(Engine.load(tinyModelPath, { tta: 'both' as never })).rejects.toThrow(
      /'none', 'flip' or 'crops' for `tta`/,
    );
  });

  it("infer with tta 'crops' averages the image and its five zoomed crops", async () => {
    const files = CLASSES.map((c) => photos(c, 1)[0]!);
    const plain = await Engine.load(tinyModelPath, { threads: 1 });
    const crops = await Engine.load(tinyModelPath, { threads: 1, tta: 'crops' });
    try {
      expect(crops.info.tta).toBe('crops');
      const batch = await plain.preprocess(files);
      const views = [batch.data, ...zoomedCrops(batch.data, batch.shape, TTA_CROP_FRACTION)];
      const outs = await Promise.all(views.map((data) => plain.run({ data, shape: batch.shape })));
      const tta = await crops.infer(files, { logits: true, embeddings: true });
      const k = plain.info.classes.length;
      const d = plain.info.embeddingSize;
      for (const [i, p] of tta.entries()) {
        for (let j = 0; j < k; j++) {
          const mean = outs.reduce((sum, o) => sum + o.logits[i * k + j]!, 0) / outs.length;
          expect(p.logits![j]).toBeCloseTo(mean, 5);
        }
        const mean0 = outs.reduce((sum, o) => sum + o.embedding[i * d]!, 0) / outs.length;
        expect(p.embedding![0]).toBeCloseTo(mean0, 5);
      }
      const none = await plain.infer(files, { logits: true });
      const diff = Math.max(...none.flatMap((p, i) => [...p.logits!].map((v, j) => Math.abs(v - tta[i]!.logits![j]!))));
      expect(diff).toBeGreaterThan(1e-5);
      // A preprocessed tensor is augmented the same way as the images it came from.
      const fromTensor = await plain.infer(batch, { logits: true, tta: 'crops' });
      expect(fromTensor.map((p) => [...p.logits!])).toEqual(tta.map((p) => [...p.logits!]));
      const ac = new AbortController();
      ac.abort();
      await expect(crops.infer(files, { signal: ac.signal })).rejects.toThrow();
    } finally {
      await plain.dispose();
      await crops.dispose();
    }
  });

  it('bench runs every engine once per mode; a tta engine is timed end to end only', async () => {
    const report = await runBench({
      models: [tinyModelPath],
      images: photos('daisy', 4),
      iterations: 5,
      warmupMs: 20,
      durationS: 0.2,
      threads: 1,
      tta: ['none', 'flip'],
    });
    expect(report.engines.map((e) => [e.label, e.tta ?? 'none'])).toEqual([
      ['libtorch fp32 cpu', 'none'],
      ['libtorch fp32 cpu tta=flip', 'flip'],
    ]);
    const rows = report.results.filter((r) => r.status === 'ok').map((r) => [r.engine, r.mode]);
    expect(rows).toEqual([
      ['libtorch fp32 cpu', 'model'],
      ['libtorch fp32 cpu', 'e2e'],
      ['libtorch fp32 cpu tta=flip', 'e2e'],
    ]);
    await expect(runBench({ models: [tinyModelPath], tta: ['mirror' as never] })).rejects.toThrow(
      /'none', 'flip' and 'crops' for `tta`/,
    );
  });

  it('robustness measures each model per mode, side by side', async () => {
    const report = await runRobustness({
      models: [tinyModelPath],
      split: 'all',
      dataDir,
      variants: ['original'],
      threads: 1,
      tta: ['none', 'flip'],
    });
    expect(report.models.map((m) => m.label)).toEqual(['libtorch fp32 cpu', 'libtorch fp32 cpu tta=flip']);
    expect(report.results.map((r) => [r.model, r.variant, r.images])).toEqual([
      ['libtorch fp32 cpu', 'original', 10],
      ['libtorch fp32 cpu tta=flip', 'original', 10],
    ]);
  });
});
