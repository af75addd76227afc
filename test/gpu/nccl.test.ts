// GPU tier: data-parallel training through NCCL, world size 1 (one GPU still runs every collective through NCCL).
// Runs only where the addon was built against a CUDA libtorch with c10d's NCCL and a device is present; elsewhere
// the suite is skipped with the reason printed.
import { performance } from 'node:perf_hooks';

import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { ProcessGroup, distributedAvailable } from '../../src/index.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { tinyModelPath } from '../helpers.js';
import { freePort } from '../native/dist/spawn.js';

const skipReason = (() => {
  try {
    if (!loadAddon().runtimeInfo().cudaAvailable) return 'no CUDA device visible to the addon';
    const d = distributedAvailable();
    if (!d.backends.includes('nccl')) return `the addon has no NCCL backend (${d.note || d.backends.join(', ')})`;
    return '';
  } catch (err) {
    return `the addon does not load: ${(err as Error).message.split('\n')[0]}`;
  }
})();
if (skipReason) console.log(`test/gpu/nccl.test.ts skipped: ${skipReason}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

describe.skipIf(skipReason !== '')('data-parallel over NCCL (world size 1)', () => {
  const shape = [8, 3, 64, 64] as const;
  const make = (seed: number) => Float32Array.from({ length: 8 * 3 * 64 * 64 }, (_, i) => Math.sin(i * seed) * 0.5);
  const batch = { query: make(1), positive: make(1.01), negative: make(7), shape, labels: new Int32Array(8).fill(1) };
  const trainerOptions = { amp: true, optimizer: 'adam', learningRate: 3e-3 } as const;
  const WARMUP = 5;
  const TIMED = 30;

  it('collectives on CPU arrays go through the GPU and come back', async () => {
    await using pg = await ProcessGroup.init({ port: await freePort(), rank: 0, worldSize: 1, device: 'cuda' }, {});
    expect(pg.backend).toBe('nccl');
    expect(pg.device).toBe('cuda:0');
    expect([...(await pg.allReduce(new Float32Array([1.5, -2]), 'sum'))]).toEqual([1.5, -2]);
    expect([...(await pg.allReduce(new Float32Array([3, 4]), 'avg'))]).toEqual([3, 4]);
    expect([...(await pg.broadcast(new Float32Array([7, 8, 9]), 0))]).toEqual([7, 8, 9]);
    await pg.barrier();
  });

  it('AMP training through NCCL follows the single-process run; prints the step-time overhead', async () => {
    // The same weights and batches with and without the group: with one rank the averaged gradient is the local one.
    const timeSteps = async (step: () => Promise<{ loss: number; skipped: boolean }>) => {
      const losses: number[] = [];
      const ms: number[] = [];
      for (let i = 0; i < WARMUP + TIMED; i++) {
        const started = performance.now();
        const r = await step();
        if (i >= WARMUP) ms.push(performance.now() - started);
        if (!r.skipped) losses.push(r.loss);
      }
      return { losses, ms: median(ms) };
    };

    await using plainModel = await TorchModel.load(tinyModelPath, { device: 'cuda' });
    await using plain = new Trainer(plainModel, trainerOptions);
    const alone = await timeSteps(() => plain.step(batch));

    await using pg = await ProcessGroup.init({ port: await freePort(), rank: 0, worldSize: 1, device: 'cuda' }, {});
    await using model = await TorchModel.load(tinyModelPath, { device: pg.device });
    await using trainer = new Trainer(model, trainerOptions);
    const buckets = await pg.attach(trainer);
    expect(buckets.length).toBeGreaterThan(0);
    const together = await timeSteps(() => pg.exclusive(() => trainer.step(batch)));

    const stats = pg.syncStats();
    expect(stats.steps).toBe(WARMUP + TIMED);
    expect(stats.buckets).toBe((WARMUP + TIMED) * buckets.length);
    expect(together.losses.length).toBe(alone.losses.length);
    for (const [i, loss] of together.losses.entries()) {
      expect(Number.isFinite(loss)).toBe(true);
      expect(Math.abs(loss - (alone.losses[i] as number))).toBeLessThan(1e-2 * Math.max(1, Math.abs(loss)));
    }
    expect(together.losses.at(-1) as number).toBeLessThan(together.losses[0] as number);
    const overhead = together.ms / alone.ms - 1;
    console.log(
      `NCCL world size 1, AMP, batch ${shape.join('x')}: step ${together.ms.toFixed(2)} ms against ` +
        `${alone.ms.toFixed(2)} ms alone (median of ${TIMED}): overhead ${(overhead * 100).toFixed(1)}%, ` +
        `${buckets.length} bucket(s), averaging ${((stats.seconds / stats.steps) * 1000).toFixed(2)} ms/step`,
    );
    // The tiny fixture's step is a few ms, so the fixed cost of a collective weighs far more than on a real model
    // (the 5% is for RexNet-150): bound it loosely here, measure the real one with the README recipe.
    expect(overhead).toBeLessThan(0.5);
  });
});
