import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { manualSeed } from '../../src/binding/runtime.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer, type TrainerOptions } from '../../src/torch/Trainer.js';
import { defaultPython } from '../../src/util/python.js';
import { hasFlowers, tinyModelPath } from '../helpers.js';
import { photoTripletBatch } from './train-helpers.js';

const SIZE = 48;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-layer-decay-'));

/** Per trainable parameter, the largest |after - before| over its elements: {name: number}, as JSON. */
const DELTAS = `
import json, sys, torch
before, after = (dict(torch.jit.load(f).named_parameters()) for f in sys.argv[1:3])
print(json.dumps({n: float((after[n] - p).abs().max()) for n, p in before.items() if p.requires_grad}))
`;

/** A scripted classifier whose parameters have no `features.<k>` segment (conv1, fc). */
const NO_BLOCKS = `
import sys, torch
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)
    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.conv1(x), 1), 1))
torch.jit.script(Net()).save(sys.argv[1])
`;

describe.skipIf(!hasFlowers)('layer-wise learning-rate decay (Trainer layerDecay, libtorch CPU)', () => {
  let batch: Awaited<ReturnType<typeof photoTripletBatch>>;

  beforeAll(async () => {
    batch = await photoTripletBatch(SIZE);
  });

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** One step from the tiny fixture with `options`, the learning rate set to `setLr` first when given. */
  async function firstStepDeltas(
    options: TrainerOptions,
    name: string,
    setLr?: number,
  ): Promise<Record<string, number>> {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, options);
    if (setLr !== undefined) {
      trainer.learningRate = setLr;
      expect(trainer.learningRate).toBe(setLr);
    }
    await trainer.step(batch);
    const after = join(tmp, `${name}.pt`);
    await model.save(after);
    return JSON.parse(
      execFileSync(defaultPython(), ['-c', DELTAS, tinyModelPath, after], { encoding: 'utf8' }),
    ) as Record<string, number>;
  }

  it('gives the head scale 1 and each feature block 0.5^depth, decreasing toward the stem', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { layerDecay: 0.5 });
    const scales = trainer.learningRateScales();
    expect(scales.map((s) => s.name)).toEqual([
      'features.0.0.weight',
      'features.0.1.weight',
      'features.0.1.bias',
      'features.1.0.weight',
      'features.1.1.weight',
      'features.1.1.bias',
      'features.2.0.weight',
      'features.2.1.weight',
      'features.2.1.bias',
      'classifier.weight',
      'classifier.bias',
    ]);
    expect(scales.map((s) => s.depth)).toEqual([3, 3, 3, 2, 2, 2, 1, 1, 1, 0, 0]);
    for (const s of scales) expect(s.scale).toBe(0.5 ** s.depth);
    const byBlock = [0, 1, 2].map((k) => scales.find((s) => s.name.startsWith(`features.${k}.`))?.scale as number);
    expect(byBlock[0]).toBeLessThan(byBlock[1] as number);
    expect(byBlock[1]).toBeLessThan(byBlock[2] as number);
    expect(byBlock[2]).toBeLessThan(1);
    // One optimizer group per depth.
    expect(trainer.parameterGroupCount).toBe(4);
    expect(trainer.learningRate).toBe(1e-3);
  });

  it("Adam's first step moves each parameter by learningRate * its scale, also after setLearningRate", async () => {
    // Adam's first update is lr * g / (|g| + eps) elementwise: lr where the gradient is well above eps.
    const options: TrainerOptions = { optimizer: 'adam', learningRate: 1e-2, weightDecay: 0 };
    const plain = await firstStepDeltas(options, 'plain');
    const decayed = await firstStepDeltas({ ...options, layerDecay: 0.5 }, 'decayed');
    const rescheduled = await firstStepDeltas({ ...options, layerDecay: 0.5 }, 'rescheduled', 4e-3);
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { layerDecay: 0.5 });
    const scales = trainer.learningRateScales();
    expect(Object.keys(decayed).sort()).toEqual(scales.map((s) => s.name).sort());
    for (const { name, scale } of scales) {
      expect(plain[name], name).toBeCloseTo(1e-2, 5);
      expect((decayed[name] as number) / (1e-2 * scale), name).toBeCloseTo(1, 3);
      expect((rescheduled[name] as number) / (4e-3 * scale), name).toBeCloseTo(1, 3);
    }
    // The stem's block moves 8 times less than with the decay off, the head as much.
    expect((decayed['features.0.0.weight'] as number) / (plain['features.0.0.weight'] as number)).toBeCloseTo(0.125, 3);
    expect(decayed['classifier.weight']).toBe(plain['classifier.weight']);
  });

  it('layerDecay 1 is one parameter group and the same training as without it', async () => {
    const run = async (options: TrainerOptions): Promise<{ logits: Float32Array; groups: number }> => {
      manualSeed(7);
      await using model = await TorchModel.load(tinyModelPath);
      await using trainer = new Trainer(model, options);
      expect(trainer.learningRateScales().every((s) => s.depth === 0 && s.scale === 1)).toBe(true);
      for (let i = 0; i < 3; i++) await trainer.step(batch);
      await model.setTraining(false);
      return { logits: (await model.forward(batch.query, batch.shape)).logits, groups: trainer.parameterGroupCount };
    };
    const without = await run({ optimizer: 'adamw', learningRate: 1e-2 });
    const one = await run({ optimizer: 'adamw', learningRate: 1e-2, layerDecay: 1 });
    expect(without.groups).toBe(1);
    expect(one.groups).toBe(1);
    expect(one.logits).toEqual(without.logits);
  });

  it('refuses decays outside (0, 1] and a model without features.<k> blocks', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    for (const layerDecay of [0, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      let error: unknown;
      try {
        new Trainer(model, { layerDecay });
      } catch (e) {
        error = e;
      }
      expect(error, String(layerDecay)).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(/`?layerDecay`? must be|finite number for `layerDecay`/);
    }
    expect(() => new Trainer(model, { layerDecay: 0 })).toThrow(/received 0/);
    expect(() => new Trainer(model, { layerDecay: 1.5 })).toThrow(/received 1\.5/);
    expect(() => new Trainer(model, { layerDecay: '0.5' as unknown as number })).toThrow(TypeError);

    const file = join(tmp, 'no-blocks.pt');
    // torch.jit.script reads the module's source, so the script runs from a file.
    const script = join(tmp, 'no_blocks.py');
    writeFileSync(script, NO_BLOCKS);
    execFileSync(defaultPython(), [script, file]);
    await using flat = await TorchModel.load(file);
    expect(() => new Trainer(flat, { layerDecay: 0.8 })).toThrow(RangeError);
    expect(() => new Trainer(flat, { layerDecay: 0.8 })).toThrow(
      /layerDecay \(model\.layer_decay\) below 1 needs a backbone whose blocks are named `features\.<k>`.*'conv1\.weight'/,
    );
    await using plain = new Trainer(flat, { layerDecay: 1 });
    expect(plain.parameterGroupCount).toBe(1);
  });

  it('the trainer state resumes with the decay on; a state of another decay is refused', async () => {
    const options: TrainerOptions = { optimizer: 'adamw', learningRate: 1e-2, layerDecay: 0.5 };
    const stateFile = join(tmp, 'state.pt');
    const modelFile = join(tmp, 'resume.pt');
    await using a = await TorchModel.load(tinyModelPath);
    await using ta = new Trainer(a, options);
    await ta.step(batch);
    await ta.step(batch);
    await a.save(modelFile);
    await ta.saveState(stateFile);
    await ta.step(batch);
    await a.setTraining(false);
    const expected = (await a.forward(batch.query, batch.shape)).logits;

    await using b = await TorchModel.load(modelFile);
    await using tb = new Trainer(b, options);
    await tb.loadState(stateFile);
    expect(tb.stepCount).toBe(2);
    // The base rate, not the deepest group's 1e-2 * 0.5^3.
    expect(tb.learningRate).toBe(1e-2);
    await tb.step(batch);
    expect(tb.stepCount).toBe(3);
    await b.setTraining(false);
    const got = (await b.forward(batch.query, batch.shape)).logits;
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 4));

    await using c = await TorchModel.load(modelFile);
    await using tc = new Trainer(c, { optimizer: 'adamw', learningRate: 1e-2 });
    await expect(tc.loadState(stateFile)).rejects.toThrow(/saved with layerDecay 0\.5, this trainer uses 1/);
    const plainState = join(tmp, 'plain-state.pt');
    await tc.saveState(plainState);
    await using td = new Trainer(c, { ...options, layerDecay: 0.75 });
    await expect(td.loadState(plainState)).rejects.toThrow(/saved with layerDecay 1, this trainer uses 0\.75/);
    await using te = new Trainer(c, { optimizer: 'adamw', learningRate: 1e-2, layerDecay: 1 });
    await te.loadState(plainState);
    expect(te.stepCount).toBe(0);
  });
});
