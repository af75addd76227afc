import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { readMetrics } from '../../src/track/metricsLog.js';
import { headLearningRate } from '../../src/train/head.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { train } from '../../src/train/train.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { CLASSES, hasFlowers, photos, tinyModelPath, photoFolder } from '../helpers.js';
import { quiet, tinyTrainConfig } from './train-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-head-'));
const dataDir = join(tmp, 'flowers');

beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 10);
});

/** Real photos as one normalised NCHW batch at `size` px. */
async function photoBatch(n: number, size: number): Promise<Float32Array> {
  const out = new Float32Array(n * 3 * size * size);
  const files = CLASSES.flatMap((c) => photos(c, Math.ceil(n / CLASSES.length))).slice(0, n);
  for (const [i, f] of files.entries()) {
    const { data } = await sharp(f).resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer({
      resolveWithObject: true,
    });
    const plane = size * size;
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) out[i * 3 * plane + ch * plane + p] = (data[p * 3 + ch]! / 255 - 0.45) / 0.225;
    }
  }
  return out;
}

describe.skipIf(!hasFlowers)('training the head alone on pooled features', () => {
  it('pooledFeatures gives [N, D] in eval mode and keeps the training flag', async () => {
    const model = await TorchModel.load(tinyModelPath);
    try {
      expect(model.hasHead).toBe(true);
      const images = await photoBatch(4, 32);
      await model.setTraining(true);
      const a = await model.pooledFeatures(images, [4, 3, 32, 32]);
      expect(model.info.training).toBe(true);
      expect(a.batchSize).toBe(4);
      expect(a.dim).toBe(64);
      expect(a.features).toHaveLength(4 * 64);
      // Eval mode: BatchNorm uses running statistics, so an image's features do not depend on its batch.
      const one = await model.pooledFeatures(images.subarray(0, 3 * 32 * 32), [1, 3, 32, 32]);
      for (let k = 0; k < 64; k++) expect(one.features[k]).toBeCloseTo(a.features[k]!, 5);
      await expect(
        model.pooledFeatures(images, [4, 3, 32] as unknown as [number, number, number, number]),
      ).rejects.toThrow(/\[N, C, H, W\]/);
      // A copy loaded for inference (frozen, BatchNorm folded) keeps pooled(): the same features, to rounding.
      const frozen = await TorchModel.load(tinyModelPath, { inference: true });
      try {
        expect(frozen.info.inferenceOptimized).toBe(true);
        expect(frozen.hasHead).toBe(false);
        const b = await frozen.pooledFeatures(images, [4, 3, 32, 32]);
        for (let k = 0; k < a.features.length; k++) expect(b.features[k]).toBeCloseTo(a.features[k]!, 4);
      } finally {
        await frozen.dispose();
      }
    } finally {
      await model.dispose();
    }
  });

  it('headStep updates the head only: the backbone features stay bit-identical, a full step changes them', async () => {
    const model = await TorchModel.load(tinyModelPath);
    const trainer = new Trainer(model, { learningRate: 0.01, weightDecay: 0.1 });
    try {
      const images = await photoBatch(6, 32);
      const shape = [6, 3, 32, 32] as const;
      const before = await model.pooledFeatures(images, shape);
      const logitsBefore = (await model.forward(images, shape)).logits;
      const f = before.features;
      const d = before.dim;
      const rows = (idx: number[]) => Float32Array.from(idx.flatMap((i) => [...f.subarray(i * d, (i + 1) * d)]));
      const batch = {
        query: rows([0, 1, 2]),
        positive: rows([0, 1, 2]),
        negative: rows([3, 4, 5]),
        shape: [3, d] as const,
        labels: Int32Array.from([0, 1, 2]),
      };
      await model.setTraining(true);
      for (let i = 0; i < 3; i++) {
        const r = await trainer.headStep(batch);
        expect(Number.isFinite(r.loss)).toBe(true);
        expect(r.count).toBe(3);
      }
      expect(trainer.stepCount).toBe(3);
      await model.setTraining(false);
      const after = await model.pooledFeatures(images, shape);
      expect(after.features).toEqual(before.features);
      const logitsAfter = (await model.forward(images, shape)).logits;
      expect(Math.max(...logitsAfter.map((v, i) => Math.abs(v - logitsBefore[i]!)))).toBeGreaterThan(1e-4);
      // A full step trains the backbone too (so the check above can fail).
      await model.setTraining(true);
      const third = 3 * 32 * 32;
      await trainer.step({
        query: images.slice(0, 3 * third),
        positive: images.slice(0, 3 * third),
        negative: images.slice(3 * third),
        shape: [3, 3, 32, 32],
        labels: Int32Array.from([0, 1, 2]),
      });
      await model.setTraining(false);
      const full = await model.pooledFeatures(images, shape);
      expect(full.features).not.toEqual(before.features);
      // Bad shapes are refused with the reason.
      await expect(
        trainer.headStep({ ...batch, shape: [3, 3, 32, 32] as unknown as [number, number] }),
      ).rejects.toThrow(/\[N, D\]/);
      await expect(trainer.headStep({ ...batch, shape: [3, d + 1] })).rejects.toThrow(/elements/);
    } finally {
      await trainer.dispose();
      await model.dispose();
    }
  });

  it('a model without pooled()/head() is refused with what to do', async () => {
    // TorchScript compiles from source, so the module is defined in a file.
    const plain = join(tmp, 'no-head.pt');
    const script = join(tmp, 'no_head.py');
    writeFileSync(
      script,
      [
        'import sys, torch',
        'class M(torch.nn.Module):',
        '    def __init__(self):',
        '        super().__init__()',
        '        self.l = torch.nn.Linear(3, 5)',
        '    def forward(self, x):',
        '        f = x.mean((2, 3))',
        '        return self.l(f), f',
        'torch.jit.script(M()).save(sys.argv[1])',
        '',
      ].join('\n'),
    );
    execFileSync('/usr/bin/python3', [script, plain]);
    const model = await TorchModel.load(plain);
    try {
      expect(model.hasHead).toBe(false);
      await expect(model.pooledFeatures(new Float32Array(3 * 8 * 8), [1, 3, 8, 8])).rejects.toThrow(
        /no pooled\(\) and head\(\) methods.*export-backbone.*head_epochs=0/,
      );
    } finally {
      await model.dispose();
    }
    const { config, raw } = tinyTrainConfig(join(tmp, 'runs-nohead'), [
      `model.checkpoint=${plain}`,
      'model.head_epochs=2',
    ]);
    await expect(train({ config, rawConfig: raw, dataDir, progress: quiet })).rejects.toThrow(
      /model\.head_epochs=2 needs a model with pooled\(\) and head\(\).*model\.head_epochs=0/,
    );
  });

  it('the head learning rate follows a cosine to 0', () => {
    expect(headLearningRate(0.01, 0, 10)).toBeCloseTo(0.01, 12);
    expect(headLearningRate(0.01, 5, 10)).toBeCloseTo(0.005, 12);
    expect(headLearningRate(0.01, 10, 10)).toBeCloseTo(0, 12);
  });

  it('a run with model.head_epochs logs the head epochs, then fine-tunes; the same seed gives the same run', async () => {
    const run = async (name: string) => {
      const { config, raw } = tinyTrainConfig(join(tmp, name), [
        'model.head_epochs=3',
        'model.head_learning_rate=0.01',
        'trainer.max_epochs=1',
      ]);
      const messages: string[] = [];
      const progress: ProgressReporter = { ...quiet, message: (m) => void messages.push(m) };
      const result = await train({ config, rawConfig: raw, dataDir, progress });
      return { result, messages };
    };
    const a = await run('runs-head-a');
    expect(a.result.status).toBe('completed');
    expect(a.messages.filter((m) => /^head epoch \d\/3: loss/.test(m))).toHaveLength(3);
    expect(a.messages.some((m) => /^head phase: pooled features of 35 train images \(64-d\)/.test(m))).toBe(true);
    expect(a.messages.some((m) => /^head phase done in .* val accuracy/.test(m))).toBe(true);
    const rows = await readMetrics(a.result.runDir);
    const head = rows.filter((r) => r.split === 'head' && r.name === 'loss');
    expect(head.map((r) => r.epoch)).toEqual([1, 2, 3]);
    // 35 train images in batches of 8: 5 head steps per epoch, counted before the fine-tune's steps.
    expect(head.map((r) => r.step)).toEqual([5, 10, 15]);
    const train1 = rows.filter((r) => r.split === 'train' && r.name === 'loss');
    expect(train1[0]!.step).toBe(16);
    const state = JSON.parse(readFileSync(join(a.result.runDir, 'checkpoints', 'last', 'state.json'), 'utf8')) as {
      headEpochs: number;
    };
    expect(state.headEpochs).toBe(3);
    const b = await run('runs-head-b');
    const rowsB = await readMetrics(b.result.runDir);
    const values = (rs: typeof rows) =>
      rs.filter((r) => ['head', 'head_val', 'train', 'val'].includes(r.split ?? '')).map((r) => [r.name, r.value]);
    expect(values(rowsB)).toEqual(values(rows));
  });

  it('trainer.max_epochs=0 trains the head alone: its model is the best checkpoint (epoch 0) and is tested', async () => {
    const { config, raw } = tinyTrainConfig(join(tmp, 'runs-head-only'), [
      'model.head_epochs=2',
      'model.head_learning_rate=0.01',
      'trainer.max_epochs=0',
    ]);
    const messages: string[] = [];
    const epochs: number[] = [];
    const progress: ProgressReporter = {
      ...quiet,
      message: (m) => void messages.push(m),
      epoch: (e) => void epochs.push(e.epoch),
    };
    const result = await train({ config, rawConfig: raw, dataDir, progress });
    expect(result).toMatchObject({ status: 'completed', epochs: 0, bestEpoch: 0 });
    expect(epochs).toEqual([]);
    expect(result.test?.report.count).toBeGreaterThan(0);
    expect(messages.some((m) => m.startsWith('test (best: the head phase)'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(result.runDir, 'summary.json'), 'utf8')) as { best_epoch: number };
    expect(summary.best_epoch).toBe(0);
    expect(existsSync(join(result.runDir, 'checkpoints', 'best', 'model.pt'))).toBe(true);
    // Nothing to train at all is a config error naming both keys.
    expect(() => tinyTrainConfig(join(tmp, 'runs-none'), ['trainer.max_epochs=0'])).toThrow(
      /trainer\.max_epochs` is 0 and `model\.head_epochs` is 0/,
    );
  });
});
