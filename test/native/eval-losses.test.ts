import { describe, expect, it } from 'vitest';

import { cosine, crossEntropy, evalLosses } from '../../src/train/evalLosses.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { tinyModelPath } from '../helpers.js';

const wave = (n: number, f: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * f));

describe('validation losses in TypeScript match the native training losses', () => {
  it('cross-entropy and the cosine-embedding terms agree with libtorch on the same triplets', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { margin: 0.1 });
    const shape = [4, 3, 32, 32] as const;
    const n = 4 * 3 * 32 * 32;
    const q = wave(n, 0.01);
    const p = wave(n, 0.011);
    const neg = wave(n, 0.3);
    const labels = Int32Array.from([0, 1, 2, 3]);
    const native = await trainer.evaluate({ query: q, positive: p, negative: neg, shape, labels });
    const [fq, fp, fn] = [
      await model.forward(q, shape),
      await model.forward(p, shape),
      await model.forward(neg, shape),
    ];
    expect(crossEntropy(fq.logits, labels, 5)).toBeCloseTo(native.ce, 4);
    const dim = fq.embeddingSize;
    // Row i of q beside row i of p (or n): one [2, dim] matrix per pair.
    const cos = (a: Float32Array, b: Float32Array, i: number) => {
      const pair = new Float32Array(2 * dim);
      pair.set(a.subarray(i * dim, (i + 1) * dim), 0);
      pair.set(b.subarray(i * dim, (i + 1) * dim), dim);
      return cosine(pair, dim, 0, 1);
    };
    const pos = [0, 1, 2, 3].reduce((s, i) => s + (1 - cos(fq.embedding, fp.embedding, i)), 0) / 4;
    const negative = [0, 1, 2, 3].reduce((s, i) => s + Math.max(0, cos(fq.embedding, fn.embedding, i) - 0.1), 0) / 4;
    expect(pos).toBeCloseTo(native.positiveLoss, 4);
    expect(negative).toBeCloseTo(native.negativeLoss, 4);
  });

  it('evalLosses is deterministic per seed and finite with single-image classes', () => {
    const logits = Float32Array.from([2, 0, 0, 0, 2, 0, 0, 0, 2]);
    const emb = Float32Array.from([1, 0, 0, 1, -1, 0]);
    const labels = Int32Array.from([0, 1, 2]);
    const o = { ceWeight: 1, contrastiveWeight: 1, margin: 0, seed: 1 };
    const a = evalLosses(logits, emb, labels, 3, o);
    expect(a).toEqual(evalLosses(logits, emb, labels, 3, o));
    expect(a.positiveLoss).toBe(0); // each image is its own positive
    expect(Number.isFinite(a.loss)).toBe(true);
    expect(a.loss).toBeCloseTo(a.ce + a.contrastive, 10);
  });
});
