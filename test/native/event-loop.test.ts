import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { repoRoot, ticksDuring, tinyModelPath } from '../helpers.js';

describe('native work runs off the event loop', () => {
  it('the loop keeps ticking during a long forward and a long training step', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    const shape = [16, 3, 320, 320] as const;
    const input = new Float32Array(16 * 3 * 320 * 320).fill(0.25);
    await model.forward(input, shape); // warm-up
    const fwd = await ticksDuring(async () => {
      for (let i = 0; i < 3; i++) await model.forward(input, shape);
    });
    expect(fwd.ms).toBeGreaterThan(40);
    // A blocked loop would give 0-3 ticks; a free one about one per millisecond (timers are coarse under load).
    expect(fwd.ticks).toBeGreaterThan(fwd.ms / 10);

    await using trainer = new Trainer(model, {});
    const labels = new Int32Array(16);
    const step = await ticksDuring(() =>
      trainer.step({ query: input, positive: input, negative: input, shape, labels }),
    );
    expect(step.ms).toBeGreaterThan(40);
    expect(step.ticks).toBeGreaterThan(step.ms / 10);
  });

  it('the addon loads and runs inside worker threads, two at once', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require('node-gyp-build')(workerData.root);
      (async () => {
        const model = await addon.loadModel(workerData.model, 'cpu');
        const out = await model.forward(new Float32Array(2 * 3 * 64 * 64).fill(0.1), [2, 3, 64, 64]);
        model.dispose();
        parentPort.postMessage({ logits: Array.from(out.logits), torch: addon.runtimeInfo().torchVersion });
      })().catch((e) => parentPort.postMessage({ error: e.message }));
    `;
    const run = () =>
      new Promise<{ logits: number[]; torch: string; error?: string }>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { root: repoRoot, model: tinyModelPath } });
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.error).toBeUndefined();
    expect(a.logits).toHaveLength(10);
    expect(b.logits).toEqual(a.logits);
    expect(a.torch).toBe(loadAddon().runtimeInfo().torchVersion);
    // And the main thread's addon is unaffected.
    const main = await (
      await TorchModel.load(tinyModelPath)
    ).forward(new Float32Array(2 * 3 * 64 * 64).fill(0.1), [2, 3, 64, 64]);
    expect(Array.from(main.logits).map((v) => v.toFixed(5))).toEqual(a.logits.map((v) => v.toFixed(5)));
  });

  it('a worker terminated while a native call runs does not crash the process', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require('node-gyp-build')(workerData.root);
      addon.loadModel(workerData.model, 'cpu').then((m) => {
        m.forward(new Float32Array(8 * 3 * 256 * 256), [8, 3, 256, 256]);
        parentPort.postMessage('started');
      });
    `;
    const w = new Worker(code, { eval: true, workerData: { root: repoRoot, model: tinyModelPath } });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    // The process is alive and the addon still works here.
    const m = await TorchModel.load(tinyModelPath);
    expect((await m.forward(new Float32Array(3 * 32 * 32), [1, 3, 32, 32])).logits).toHaveLength(5);
    await m.dispose();
  });
});
