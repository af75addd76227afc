import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { defaultPython } from '../../src/util/python.js';
import { hasFlowers, tinyModelPath } from '../helpers.js';
import { photoTripletBatch } from './train-helpers.js';

const SIZE = 48;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-ema-'));

/**
 * The moving average written out in Python from the weights saved after each step (what the native trainer must
 * hold): e_1 = w_1, then e_n = d_n e_(n-1) + (1 - d_n) w_n with d_n = min(decay, (1 + n) / (10 + n)). Prints the
 * largest difference to the model saved with the average swapped in, over the trainable parameters, and how many
 * trainable parameters differ between the last weights and the average.
 */
const CHECK = `
import sys, torch
decay, ema_file, *steps = sys.argv[1:]
decay = float(decay)
ws = [dict(torch.jit.load(f).named_parameters()) for f in steps]
names = [n for n, p in ws[0].items() if p.requires_grad]
e = {n: ws[0][n].detach().double().clone() for n in names}
for i, w in enumerate(ws[1:], start=2):
    d = min(decay, (1 + i) / (10 + i))
    for n in names:
        e[n] = d * e[n] + (1 - d) * w[n].detach().double()
got = dict(torch.jit.load(ema_file).named_parameters())
print(max(float((got[n].double() - e[n]).abs().max()) for n in names))
print(sum(1 for n in names if not torch.equal(got[n], ws[-1][n])))
`;

describe.skipIf(!hasFlowers)('the weights moving average (Trainer emaDecay, libtorch CPU)', () => {
  let batch: Awaited<ReturnType<typeof photoTripletBatch>>;

  beforeAll(async () => {
    batch = await photoTripletBatch(SIZE);
  });

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('averages the weights of every step, swaps in and out exactly, and is refused to train or save while in', async () => {
    const decay = 0.5;
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { optimizer: 'adam', learningRate: 1e-2, emaDecay: decay });
    // Nothing to swap before the first step.
    expect(await trainer.swapEma()).toBe(false);
    const snapshots: string[] = [];
    for (let i = 0; i < 4; i++) {
      await trainer.step(batch);
      const file = join(tmp, `step-${i}.pt`);
      await model.save(file);
      snapshots.push(file);
    }
    expect(trainer.emaUpdates).toBe(4);
    await model.setTraining(false);
    const weights = (await model.forward(batch.query, batch.shape)).logits;
    expect(await trainer.swapEma()).toBe(true);
    expect(trainer.emaSwappedIn).toBe(true);
    const averaged = (await model.forward(batch.query, batch.shape)).logits;
    expect(averaged).not.toEqual(weights);
    const emaFile = join(tmp, 'ema.pt');
    await model.save(emaFile);
    await expect(trainer.step(batch)).rejects.toThrow(/moving average is swapped in/);
    await expect(trainer.saveState(join(tmp, 'no.pt'))).rejects.toThrow(/swap it back/);
    expect(await trainer.swapEma()).toBe(true);
    expect(trainer.emaSwappedIn).toBe(false);
    // Back: the very same weights (bit for bit).
    expect((await model.forward(batch.query, batch.shape)).logits).toEqual(weights);
    const [maxDiff, differing] = execFileSync(defaultPython(), ['-c', CHECK, String(decay), emaFile, ...snapshots], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .map(Number);
    expect(maxDiff).toBeLessThan(1e-6);
    expect(differing).toBeGreaterThan(0);
  });

  it('the average resumes with the trainer state; a trainer without emaDecay keeps none', async () => {
    const stateFile = join(tmp, 'state.pt');
    const modelFile = join(tmp, 'resume.pt');
    await using a = await TorchModel.load(tinyModelPath);
    await using ta = new Trainer(a, { optimizer: 'adamw', learningRate: 1e-2, emaDecay: 0.9 });
    await ta.step(batch);
    await ta.step(batch);
    await a.save(modelFile);
    await ta.saveState(stateFile);
    await ta.step(batch);
    await ta.swapEma();
    await a.setTraining(false);
    const expected = (await a.forward(batch.query, batch.shape)).logits;

    await using b = await TorchModel.load(modelFile);
    await using tb = new Trainer(b, { optimizer: 'adamw', learningRate: 1e-2, emaDecay: 0.9 });
    await tb.loadState(stateFile);
    expect(tb.emaUpdates).toBe(2);
    await tb.step(batch);
    expect(tb.emaUpdates).toBe(3);
    await tb.swapEma();
    await b.setTraining(false);
    const got = (await b.forward(batch.query, batch.shape)).logits;
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 4));

    await using c = await TorchModel.load(modelFile);
    await using tc = new Trainer(c, { optimizer: 'adamw', learningRate: 1e-2 });
    await tc.loadState(stateFile);
    expect(tc.emaUpdates).toBe(0);
    await tc.step(batch);
    expect(await tc.swapEma()).toBe(false);
  });

  it('head-only steps leave the average alone; bad decays are refused', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { optimizer: 'adam', learningRate: 1e-2, emaDecay: 0.99 });
    const { features, dim } = await model.pooledFeatures(batch.query, batch.shape);
    await trainer.headStep({
      query: features,
      positive: features,
      negative: features,
      shape: [5, dim],
      labels: batch.labels,
    });
    expect(trainer.emaUpdates).toBe(0);
    expect(await trainer.swapEma()).toBe(false);
    for (const emaDecay of [1, -0.1, Number.NaN]) {
      expect(() => new Trainer(model, { emaDecay })).toThrow(/emaDecay/);
    }
  });
});
