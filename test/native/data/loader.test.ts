import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { CAMELCASE_DATA_CODE, parseDataConfig, parseDataSection } from '../../../src/data/config.js';
import { indexDataset } from '../../../src/data/indexer.js';
import { DataLoader, type DataLoaderOptions } from '../../../src/data/loader.js';
import { createSplit, type SplitManifest } from '../../../src/data/split.js';
import { CancelledError } from '../../../src/errors.js';
import { CLASSES, flowerDir, hasFlowers, photos } from '../../helpers.js';

const size = 64;
let dir: string;
let split: SplitManifest;

beforeAll(async () => {
  if (!hasFlowers) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'loader-'));
  for (const cls of CLASSES) {
    await mkdir(path.join(dir, cls));
    for (const file of photos(cls, 8)) await copyFile(file, path.join(dir, cls, path.basename(file)));
  }
  split = createSplit(await indexDataset(dir), { seed: 7, ratios: [0.75, 0.125, 0.125] });
});
afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

const loader = (o: Partial<DataLoaderOptions> = {}): DataLoader =>
  new DataLoader({ root: dir, split, batchSize: 4, imageSize: size, concurrency: 2, ...o });

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe.skipIf(!hasFlowers)(`DataLoader on real photos (${flowerDir})`, () => {
  it('yields triplet batches the native step takes: shapes, labels, finite values', async () => {
    const l = loader();
    expect(split.train).toHaveLength(30);
    const batches = await collect(l.epoch(0));
    expect(batches).toHaveLength(l.batchesPerEpoch);
    expect(batches.map((b) => b.shape[0])).toEqual([4, 4, 4, 4, 4, 4, 4, 2]);
    const b = batches[0]!;
    expect(b.shape).toEqual([4, 3, size, size]);
    for (const t of [b.query, b.positive, b.negative]) {
      expect(t).toBeInstanceOf(Float32Array);
      expect(t.length).toBe(4 * 3 * size * size);
      expect(t.every(Number.isFinite)).toBe(true);
    }
    expect(b.labels).toBeInstanceOf(Int32Array);
    expect([...b.labels]).toEqual(b.paths.map((p) => CLASSES.indexOf(p.split('/')[0] as (typeof CLASSES)[number])));
    expect(new Set(batches.flatMap((x) => x.paths)).size).toBe(30); // every train image is a query once
  });

  it('is reproducible: the same seed and epoch give identical tensors, another epoch differs', async () => {
    const [a, b, c] = await Promise.all([
      collect(loader().epoch(1)),
      collect(loader().epoch(1)),
      collect(loader().epoch(2)),
    ]);
    expect(a.map((x) => x.paths)).toEqual(b.map((x) => x.paths));
    expect(Buffer.from(a[0]!.query.buffer).equals(Buffer.from(b[0]!.query.buffer))).toBe(true);
    expect(Buffer.from(a[3]!.negative.buffer).equals(Buffer.from(b[3]!.negative.buffer))).toBe(true);
    expect(a.map((x) => x.paths)).not.toEqual(c.map((x) => x.paths));
  });

  it('resumes mid-epoch with startBatch: the same batches as an uninterrupted epoch', async () => {
    const full = await collect(loader().epoch(4));
    const resumed = await collect(loader().epoch(4, { startBatch: 5 }));
    expect(resumed.map((b) => b.index)).toEqual([5, 6, 7]);
    expect(resumed.map((b) => b.paths)).toEqual(full.slice(5).map((b) => b.paths));
    expect(Buffer.from(resumed[0]!.positive.buffer).equals(Buffer.from(full[5]!.positive.buffer))).toBe(true);
  });

  it('decodes each photo once: later epochs come from the decoded cache', async () => {
    const l = loader();
    await collect(l.epoch(0));
    const first = l.decodeCount;
    expect(first).toBeLessThanOrEqual(30);
    await collect(l.epoch(1));
    await collect(l.evaluate('train'));
    expect(l.decodeCount).toBe(first);
    expect(l.cache.bytes).toBe(first * size * size * 3);
  });

  it('evaluates a split in order, unaugmented and repeatable', async () => {
    const l = loader();
    const [a, b] = [
      await collect(l.evaluate('val', { batchSize: 3 })),
      await collect(loader({ augment: false }).evaluate('val', { batchSize: 3 })),
    ];
    expect(a.flatMap((x) => x.paths)).toEqual(split.val.map((i) => i.path));
    expect(a[0]!.shape).toEqual([3, 3, size, size]);
    expect([...a[0]!.labels]).toEqual(split.val.slice(0, 3).map((i) => i.label));
    expect(Buffer.from(a[0]!.images.buffer).equals(Buffer.from(b[0]!.images.buffer))).toBe(true);
  });

  it('evaluates at evalImageSize, trains at imageSize, and the head phase can ask for the training size', async () => {
    const l = loader({ evalImageSize: 80 });
    const [val] = await collect(l.evaluate('val', { batchSize: 2 }));
    expect(val!.shape).toEqual([2, 3, 80, 80]);
    expect(val!.images.length).toBe(2 * 3 * 80 * 80);
    const [train] = await collect(l.epoch(0));
    expect(train!.shape).toEqual([4, 3, size, size]);
    const [asTrained] = await collect(l.evaluate('val', { batchSize: 2, imageSize: size }));
    expect(asTrained!.shape).toEqual([2, 3, size, size]);
    // The same photos at the training size as a loader without evalImageSize gives them.
    const [plain] = await collect(loader().evaluate('val', { batchSize: 2 }));
    expect(Buffer.from(asTrained!.images.buffer).equals(Buffer.from(plain!.images.buffer))).toBe(true);
    // Every size is its own cache entry: 80 px is not the 64 px image resampled.
    const { decodeResized, normalizeInto } = await import('../../../src/data/preprocess.js');
    const hwc = await decodeResized(path.join(dir, split.val[0]!.path), { size: 80 });
    const expected = new Float32Array(3 * 80 * 80);
    normalizeInto(hwc, expected, 0);
    expect(Buffer.from(val!.images.buffer, 0, expected.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('stops on AbortSignal with CancelledError', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = async (): Promise<void> => {
      for await (const b of loader({ cacheMiB: 0 }).epoch(0, { signal: controller.signal })) {
        seen.push(b.index);
        if (b.index === 1) controller.abort();
      }
    };
    await expect(run()).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([0, 1]);
  });

  it('prepares batches while a slow step runs: total time is about max(step, preprocessing), not the sum', async () => {
    const batchesFor = (l: DataLoader) => l.epoch(0);
    // Preprocessing alone (no cache, so every batch decodes 12 photos), after a warm-up pass (the first decode loads
    // the native JPEG decoder and warms the file cache).
    await collect(batchesFor(loader({ cacheMiB: 0, prefetch: 0 })));
    // The faster of two passes: one scheduling hiccup on a loaded machine must not inflate it.
    const passes: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      await collect(batchesFor(loader({ cacheMiB: 0, prefetch: 0 })));
      passes.push(performance.now() - t);
    }
    const prep = Math.min(...passes);
    const n = loader().batchesPerEpoch;
    const stepMs = Math.max(100, Math.ceil((1.5 * prep) / n)); // the step is slower than preprocessing
    const step = (): Promise<void> => new Promise((r) => setTimeout(r, stepMs));

    const run = async (prefetch: number): Promise<{ total: number; waits: number[] }> => {
      const waits: number[] = [];
      const it = batchesFor(loader({ cacheMiB: 0, prefetch }));
      const start = performance.now();
      for (;;) {
        const w = performance.now();
        const r = await it.next();
        waits.push(performance.now() - w);
        if (r.done) break;
        await step(); // stands in for the native trainer.step on its worker thread
      }
      return { total: performance.now() - start, waits: waits.slice(1, -1) };
    };
    const serial = await run(0);
    const overlapped = await run(2);
    const steps = n * stepMs;
    // Serial pays both (at least half of the preprocessing measured alone: a second pass over the same files can run
    // faster than the first); overlapped pays the steps plus the first batch only.
    expect(serial.total).toBeGreaterThan(steps + 0.5 * prep);
    expect(overlapped.total).toBeLessThan(serial.total);
    expect(overlapped.total).toBeLessThan(steps + 0.5 * prep + 100);
    expect(overlapped.total).toBeGreaterThanOrEqual(steps);
    // After the first batch the consumer (the step) barely waits for data: the typical wait is a small fraction of a
    // step (the median, so one scheduling hiccup on a loaded machine does not decide the test).
    const sorted = [...overlapped.waits].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length / 2)] as number).toBeLessThan(stepMs / 4);
  });

  it('fromConfig indexes, writes the split once and reuses it', async () => {
    const splitFile = path.join(dir, '..', `${path.basename(dir)}-split.json`);
    try {
      const config = parseDataSection({ image_size: size, seed: 3, augment: false, batch_size: 6 });
      const a = await DataLoader.fromConfig(dir, config, { splitFile, batchSize: 5 });
      const b = await DataLoader.fromConfig(dir, config, { splitFile });
      expect(b.split).toEqual(a.split);
      expect(a.split.seed).toBe(3);
      expect(b.batchSize).toBe(6);
      const [first] = await collect(a.evaluate('test'));
      expect(first?.shape).toEqual([5, 3, size, size]);
    } finally {
      await rm(splitFile, { force: true });
    }
  });

  it('fromConfig still takes the camelCase DataConfig: the same loader, one DeprecationWarning', async () => {
    const splitFile = path.join(dir, '..', `${path.basename(dir)}-camel-split.json`);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const raw = { image_size: size, seed: 3, cache_mib: 1, augment: { crop_scale: [0.5, 1] } };
      const snake = await DataLoader.fromConfig(dir, parseDataSection(raw), { splitFile });
      expect(warn).not.toHaveBeenCalled();
      const legacy = parseDataConfig(raw);
      expect(legacy.imageSize).toBe(size);
      const camel = await DataLoader.fromConfig(dir, legacy, { splitFile });
      await DataLoader.fromConfig(dir, legacy, { splitFile });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toEqual({ type: 'DeprecationWarning', code: CAMELCASE_DATA_CODE });
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/^DataLoader.fromConfig was given a camelCase data section/);
      expect([camel.imageSize, camel.batchSize, camel.cache.maxBytes]).toEqual([size, 16, 1024 * 1024]);
      expect(camel.split).toEqual(snake.split);
      expect(camel.triplets(0)).toEqual(snake.triplets(0));
      // Same augmentation (crop_scale included): the same first training batch.
      const [s0] = await collect(snake.epoch(0));
      const [c0] = await collect(camel.epoch(0));
      expect(c0?.query).toEqual(s0?.query);
    } finally {
      warn.mockRestore();
      await rm(splitFile, { force: true });
    }
  });

  it('validates its options with messages that name them', () => {
    expect(() => loader({ batchSize: 0 })).toThrow(/`batchSize` but received 0/);
    expect(() => loader({ concurrency: 1.5 })).toThrow(RangeError);
  });
});
