// GPU tier: runs only where the addon was built against a CUDA libtorch and a device is present.
import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { tinyModelPath } from '../helpers.js';

const cuda = (() => {
  try {
    return loadAddon().runtimeInfo().cudaAvailable;
  } catch {
    return false;
  }
})();

describe.skipIf(!cuda)('CUDA', () => {
  const shape = [8, 3, 64, 64] as const;
  const make = (seed: number) => Float32Array.from({ length: 8 * 3 * 64 * 64 }, (_, i) => Math.sin(i * seed) * 0.5);
  const batch = { query: make(1), positive: make(1.01), negative: make(7), shape, labels: new Int32Array(8).fill(1) };

  it('forward on cuda matches cpu', async () => {
    await using cpu = await TorchModel.load(tinyModelPath);
    await using gpu = await TorchModel.load(tinyModelPath, { device: 'cuda' });
    expect(gpu.info.device).toBe('cuda:0');
    const a = await cpu.forward(batch.query, shape);
    const b = await gpu.forward(batch.query, shape);
    const diff = a.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - (b.logits[i] as number))), 0);
    expect(diff).toBeLessThan(1e-3);
  });

  it('AMP training steps with the dynamic loss scaler lower the loss', async () => {
    await using model = await TorchModel.load(tinyModelPath, { device: 'cuda' });
    await using trainer = new Trainer(model, { amp: true, optimizer: 'adam', learningRate: 3e-3 });
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await trainer.step(batch);
      if (!r.skipped) losses.push(r.loss);
      expect(r.scale).toBeGreaterThan(0);
    }
    expect(losses.length).toBeGreaterThan(10);
    expect(losses.at(-1) as number).toBeLessThan(losses[0] as number);
  });
});
