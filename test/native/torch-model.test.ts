import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { manualSeed, setJitOptimize } from '../../src/binding/runtime.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { hasFlowers, tinyModelPath } from '../helpers.js';
import { photoTripletBatch } from './train-helpers.js';

const SIZE = 64;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-model-'));

describe.skipIf(!hasFlowers)('TorchModel and Trainer on real photos (libtorch CPU)', () => {
  let query: Float32Array;
  let positive: Float32Array;
  let negative: Float32Array;
  const shape = [5, 3, SIZE, SIZE] as const;
  const labels = Int32Array.from([0, 1, 2, 3, 4]);

  beforeAll(async () => {
    // One query, positive and negative per class from the real photos.
    ({ query, positive, negative } = await photoTripletBatch(SIZE));
  });

  afterAll(() => undefined);

  it('forward gives [N, 5] logits and [N, D] embeddings, finite, and deterministic in eval mode', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    expect(model.info.device).toBe('cpu');
    expect(model.info.parameterCount).toBeGreaterThan(1000);
    const a = await model.forward(query, shape);
    expect(a.batchSize).toBe(5);
    expect(a.numClasses).toBe(5);
    expect(a.logits).toHaveLength(25);
    expect(a.embedding).toHaveLength(5 * a.embeddingSize);
    expect(a.logits.every(Number.isFinite)).toBe(true);
    expect(a.embedding.every(Number.isFinite)).toBe(true);
    const b = await model.forward(query, shape);
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits));
  });

  it('the TorchScript optimizer switch changes speed, not results', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    const on = await model.forward(query, shape);
    setJitOptimize(false);
    try {
      const off = await model.forward(query, shape);
      const diff = on.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - (off.logits[i] as number))), 0);
      expect(diff).toBeLessThan(1e-5);
    } finally {
      setJitOptimize(true);
    }
  });

  it('inference loading freezes and optimises the module: same outputs, forward only', async () => {
    await using plain = await TorchModel.load(tinyModelPath);
    await using frozen = await TorchModel.load(tinyModelPath, { inference: true });
    expect(frozen.info).toMatchObject({ inferenceOnly: true, inferenceOptimized: true, inferenceNote: null });
    expect(plain.info).toMatchObject({ inferenceOnly: false, inferenceOptimized: false });
    expect(frozen.info.parameterCount).toBe(plain.info.parameterCount);
    const a = await plain.forward(query, shape);
    const b = await frozen.forward(query, shape);
    expect(b.embeddingSize).toBe(a.embeddingSize);
    const diff = (x: Float32Array, y: Float32Array): number =>
      x.reduce((m, v, i) => Math.max(m, Math.abs(v - (y[i] as number))), 0);
    expect(diff(a.logits, b.logits)).toBeLessThan(1e-4);
    expect(diff(a.embedding, b.embedding)).toBeLessThan(1e-4);
    // Other batch sizes after the first call.
    const one = await frozen.forward(query.subarray(0, 3 * SIZE * SIZE), [1, 3, SIZE, SIZE]);
    expect(diff(one.logits, a.logits.subarray(0, 5))).toBeLessThan(1e-4);
    await expect(frozen.setTraining(true)).rejects.toThrow(/inference only/);
    await expect(frozen.save(join(tmp, 'frozen.pt'))).rejects.toThrow(/inference only/);
    await expect(TorchModel.load(tinyModelPath, { inference: 'yes' as unknown as boolean })).rejects.toThrow(
      /Expected a boolean for `inference`/,
    );
    await frozen.setTraining(false);
    expect(frozen.info.training).toBe(false);
  });

  it('train mode and eval mode differ (BatchNorm batch statistics)', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    const evalOut = await model.forward(query, shape);
    await model.setTraining(true);
    expect(model.info.training).toBe(true);
    const trainOut = await model.forward(query, shape);
    const diff = evalOut.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - (trainOut.logits[i] as number))), 0);
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('a few training steps lower the loss on a fixed batch', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { optimizer: 'adam', learningRate: 3e-3 });
    const batch = { query, positive, negative, shape, labels };
    const before = await trainer.evaluate(batch);
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await trainer.step(batch);
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.loss).toBeCloseTo(r.ce + r.contrastive, 5);
      expect(r.contrastive).toBeCloseTo(r.positiveLoss + r.negativeLoss, 5);
      expect(r.gradNorm).toBeGreaterThan(0);
      losses.push(r.loss);
    }
    expect(trainer.stepCount).toBe(12);
    expect(losses.at(-1) as number).toBeLessThan((losses[0] as number) * 0.7);
    const after = await trainer.evaluate(batch);
    expect(after.ce).toBeLessThan(before.ce);
    expect(after.logits).toHaveLength(25);
  });

  it('SGD and AdamW step too; learning-rate changes apply', async () => {
    for (const optimizer of ['sgd', 'adamw'] as const) {
      await using model = await TorchModel.load(tinyModelPath);
      await using trainer = new Trainer(model, { optimizer, learningRate: 0.01, weightDecay: 1e-4, gradClipNorm: 1 });
      const r = await trainer.step({ query, positive, negative, shape, labels });
      expect(r.gradNorm).toBeGreaterThan(0);
      trainer.learningRate = 0.005;
      expect(trainer.learningRate).toBe(0.005);
      await trainer.step({ query, positive, negative, shape, labels });
    }
  });

  it('save -> load gives identical logits, and the write is atomic', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { optimizer: 'adam', learningRate: 1e-2 });
    await trainer.step({ query, positive, negative, shape, labels });
    await model.setTraining(false);
    const out = join(tmp, 'trained.pt');
    await model.save(out);
    await using reloaded = await TorchModel.load(out);
    const a = await model.forward(query, shape);
    const b = await reloaded.forward(query, shape);
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits));
    expect(Array.from(b.embedding)).toEqual(Array.from(a.embedding));
    // A failed save leaves the old file as it was and no temporary file behind.
    const before = readFileSync(out);
    await expect(model.save(join(tmp, 'missing-dir', 'x.pt'))).rejects.toMatchObject({ code: 'ERR_SAVE' });
    expect(readFileSync(out).equals(before)).toBe(true);
  });

  it('optimizer state saves and resumes exactly', async () => {
    const stateFile = join(tmp, 'state.pt');
    const modelFile = join(tmp, 'resume.pt');
    const batch = { query, positive, negative, shape, labels };
    // Run A: 2 steps, checkpoint, 2 more steps.
    await using a = await TorchModel.load(tinyModelPath);
    await using ta = new Trainer(a, { optimizer: 'adam', learningRate: 1e-2 });
    await ta.step(batch);
    await ta.step(batch);
    await a.save(modelFile);
    await ta.saveState(stateFile);
    const a3 = await ta.step(batch);
    const a4 = await ta.step(batch);
    // Run B: resume from the checkpoint, 2 steps: the same losses.
    await using b = await TorchModel.load(modelFile);
    await using tb = new Trainer(b, { optimizer: 'adam', learningRate: 1e-2 });
    await tb.loadState(stateFile);
    expect(tb.stepCount).toBe(2);
    const b3 = await tb.step(batch);
    const b4 = await tb.step(batch);
    expect(b3.loss).toBeCloseTo(a3.loss, 5);
    expect(b4.loss).toBeCloseTo(a4.loss, 5);
  });

  it('channels-last training takes the same steps as contiguous, and its checkpoint loads and predicts alike', async () => {
    const batch = { query, positive, negative, shape, labels };
    await using a = await TorchModel.load(tinyModelPath);
    await using b = await TorchModel.load(tinyModelPath);
    await using ta = new Trainer(a, { optimizer: 'adam', learningRate: 1e-2 });
    await using tb = new Trainer(b, { optimizer: 'adam', learningRate: 1e-2, channelsLast: true });
    for (let i = 0; i < 3; i++) {
      // The same dropout masks on both sides.
      manualSeed(100 + i);
      const ra = await ta.step(batch);
      manualSeed(100 + i);
      const rb = await tb.step(batch);
      expect(rb.loss).toBeCloseTo(ra.loss, 4);
      expect(rb.gradNorm).toBeCloseTo(ra.gradNorm, 3);
    }
    expect((await tb.evaluate(batch)).loss).toBeCloseTo((await ta.evaluate(batch)).loss, 4);
    const file = join(tmp, 'channels-last.pt');
    await b.save(file);
    await using c = await TorchModel.load(file);
    // Evaluation of the reloaded channels-last checkpoint: the contiguous model's numbers.
    await using tc = new Trainer(c, { optimizer: 'adam', learningRate: 1e-2 });
    expect((await tc.evaluate(batch)).loss).toBeCloseTo((await ta.evaluate(batch)).loss, 4);
  });

  it('the dynamic loss scaler skips steps whose gradients overflow and backs off', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    // scale 3e38 x loss weight 1000: the scaled gradients overflow float32.
    const trainer = new Trainer(model, { gradScaler: true, initScale: 3.0e38, ceWeight: 1000, backoffFactor: 0.5 });
    const batch = { query, positive, negative, shape, labels };
    const r = await trainer.step(batch);
    expect(r.skipped).toBe(true);
    expect(r.scale / 1.5e38).toBeCloseTo(1, 5);
    await trainer.dispose();
    // With a sane scale, steps go through.
    await using t2 = new Trainer(model, { gradScaler: true, initScale: 1024, growthInterval: 1 });
    const ok = await t2.step(batch);
    expect(ok.skipped).toBe(false);
    expect(ok.scale).toBe(2048);
  });

  it('keeps the JS inputs intact (zero-copy read, no writes)', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    const copy = query.slice();
    await model.forward(query, shape);
    expect(Array.from(query)).toEqual(Array.from(copy));
  });

  it('writes nothing when the target file exists and the model is disposed midway', async () => {
    const out = join(tmp, 'keep.pt');
    writeFileSync(out, 'old');
    const model = await TorchModel.load(tinyModelPath);
    await model.dispose();
    await expect(model.save(out)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expect(readFileSync(out, 'utf8')).toBe('old');
  });
});
