import { describe, expect, it } from 'vitest';

import { evalLosses, validationTriplets } from '../../src/train/evalLosses.js';
import { tripletLossFromOutputs } from '../../src/torch/loss.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { tinyModelPath } from '../helpers.js';

const wave = (n: number, f: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * f));
const emptyTriplets = () => ({
  anchor: new Int32Array(0),
  positive: new Int32Array(0),
  negAnchor: new Int32Array(0),
  negative: new Int32Array(0),
});

/** Written out from the definitions (torch.nn.CrossEntropyLoss, CosineEmbeddingLoss), in float64. */
function reference(
  logits: Float32Array,
  emb: Float32Array,
  labels: Int32Array,
  c: number,
  t: ReturnType<typeof validationTriplets>,
  margin: number,
  smoothing = 0,
) {
  const n = labels.length;
  const d = emb.length / n;
  let ce = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * c, (i + 1) * c));
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    // Label smoothing: the target is (1 - s) on the label plus s / C on every class.
    const mean = row.reduce((s, v) => s + (logSum - v), 0) / c;
    ce += (1 - smoothing) * (logSum - (row[labels[i] as number] as number)) + smoothing * mean;
  }
  const cos = (a: number, b: number) => {
    let [dot, na, nb] = [0, 0, 0];
    for (let k = 0; k < d; k++) {
      const [x, y] = [emb[a * d + k] as number, emb[b * d + k] as number];
      [dot, na, nb] = [dot + x * y, na + x * x, nb + y * y];
    }
    return dot / Math.sqrt((na + 1e-12) * (nb + 1e-12));
  };
  const mean = (v: number[]) => (v.length ? v.reduce((s, x) => s + x, 0) / v.length : 0);
  const pos = mean(Array.from(t.anchor, (a, i) => 1 - cos(a, t.positive[i] as number)));
  const neg = mean(Array.from(t.negAnchor, (a, i) => Math.max(0, cos(a, t.negative[i] as number) - margin)));
  return { ce: ce / n, positiveLoss: pos, negativeLoss: neg };
}

describe('one definition of the loss: the training step and a split evaluation use the same native function', () => {
  it('over a triplet batch, the outputs-based loss equals the trainer step loss', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { margin: 0.1, ceWeight: 0.5, contrastiveWeight: 2 });
    const shape = [4, 3, 32, 32] as const;
    const n = 4 * 3 * 32 * 32;
    const [q, p, neg] = [wave(n, 0.01), wave(n, 0.011), wave(n, 0.3)];
    const labels = Int32Array.from([0, 1, 2, 3]);
    const native = await trainer.evaluate({ query: q, positive: p, negative: neg, shape, labels });
    const outs = [await model.forward(q, shape), await model.forward(p, shape), await model.forward(neg, shape)];
    const d = outs[0]!.embeddingSize;
    const embedding = new Float32Array(12 * d);
    outs.forEach((o, i) => embedding.set(o.embedding, i * 4 * d));
    // CE over the queries only: pass the query rows' logits and labels four times the same way the step does.
    const logits = new Float32Array(12 * 5);
    for (let i = 0; i < 3; i++) logits.set(outs[0]!.logits, i * 20);
    const all = Int32Array.from([...labels, ...labels, ...labels]);
    const triplets = {
      anchor: Int32Array.from([0, 1, 2, 3]),
      positive: Int32Array.from([4, 5, 6, 7]),
      negAnchor: Int32Array.from([0, 1, 2, 3]),
      negative: Int32Array.from([8, 9, 10, 11]),
    };
    const weights = { margin: 0.1, ceWeight: 0.5, contrastiveWeight: 2 };
    const fromOutputs = await tripletLossFromOutputs(logits, 5, embedding, all, triplets, weights);
    expect(fromOutputs.ce).toBeCloseTo(native.ce, 5);
    expect(fromOutputs.positiveLoss).toBeCloseTo(native.positiveLoss, 5);
    expect(fromOutputs.negativeLoss).toBeCloseTo(native.negativeLoss, 5);
    expect(fromOutputs.loss).toBeCloseTo(native.loss, 5);
    expect(fromOutputs.loss).toBeCloseTo(0.5 * fromOutputs.ce + 2 * fromOutputs.contrastive, 10);
  });

  it('matches the written-out definitions in float64 on a split with seeded triplets', async () => {
    const [n, c, d] = [40, 5, 16];
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % c);
    const logits = wave(n * c, 0.37).map((v) => 3 * v);
    const emb = wave(n * d, 0.23);
    const t = validationTriplets(labels, 7);
    const got = await evalLosses(logits, emb, labels, c, { ceWeight: 1, contrastiveWeight: 1, margin: 0.2, seed: 7 });
    const want = reference(logits, emb, labels, c, t, 0.2);
    expect(got.ce).toBeCloseTo(want.ce, 12);
    expect(got.positiveLoss).toBeCloseTo(want.positiveLoss, 12);
    expect(got.negativeLoss).toBeCloseTo(want.negativeLoss, 12);
    expect(got.contrastive).toBeCloseTo(want.positiveLoss + want.negativeLoss, 12);
    // Label smoothing changes the cross-entropy as torch.nn.CrossEntropyLoss(label_smoothing=s) defines it.
    const o = { ceWeight: 1, contrastiveWeight: 1, margin: 0.2, seed: 7 };
    const smoothed = await evalLosses(logits, emb, labels, c, { ...o, labelSmoothing: 0.1 });
    expect(smoothed.ce).toBeCloseTo(reference(logits, emb, labels, c, t, 0.2, 0.1).ce, 12);
    expect(Math.abs(smoothed.ce - got.ce)).toBeGreaterThan(1e-5);
    expect(smoothed.positiveLoss).toBe(got.positiveLoss);
  });

  it('label smoothing: the trainer step and the outputs-based loss agree, and bad values are refused', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    await using trainer = new Trainer(model, { labelSmoothing: 0.2 });
    const shape = [4, 3, 32, 32] as const;
    const n = 4 * 3 * 32 * 32;
    const [q, p, neg] = [wave(n, 0.01), wave(n, 0.011), wave(n, 0.3)];
    const labels = Int32Array.from([0, 1, 2, 3]);
    const native = await trainer.evaluate({ query: q, positive: p, negative: neg, shape, labels });
    const out = await model.forward(q, shape);
    const none = await tripletLossFromOutputs(out.logits, 5, out.embedding, labels, emptyTriplets(), {
      ceWeight: 1,
      contrastiveWeight: 1,
      margin: 0,
    });
    const smoothed = await tripletLossFromOutputs(out.logits, 5, out.embedding, labels, emptyTriplets(), {
      ceWeight: 1,
      contrastiveWeight: 1,
      margin: 0,
      labelSmoothing: 0.2,
    });
    expect(smoothed.ce).toBeCloseTo(native.ce, 5);
    expect(Math.abs(none.ce - native.ce)).toBeGreaterThan(1e-4);
    expect(() => new Trainer(model, { labelSmoothing: 1 })).toThrow(
      /labelSmoothing must be a finite number between 0\.0+ and 0\.990*/,
    );
  });

  it('is deterministic per seed and finite with single-image classes', async () => {
    const logits = Float32Array.from([2, 0, 0, 0, 2, 0, 0, 0, 2]);
    const emb = Float32Array.from([1, 0, 0, 1, -1, 0]);
    const labels = Int32Array.from([0, 1, 2]);
    const o = { ceWeight: 1, contrastiveWeight: 1, margin: 0, seed: 1 };
    const a = await evalLosses(logits, emb, labels, 3, o);
    expect(a).toEqual(await evalLosses(logits, emb, labels, 3, o));
    expect(validationTriplets(labels, 1)).toEqual(validationTriplets(labels, 1));
    expect(a.positiveLoss).toBeCloseTo(0, 10); // each image is its own positive (up to the norm epsilon)
    expect(Number.isFinite(a.loss)).toBe(true);
    expect(a.loss).toBeCloseTo(a.ce + a.contrastive, 10);
    // One class only: no negatives, and the negative part is 0 rather than NaN.
    const one = await evalLosses(logits, emb, Int32Array.from([0, 0, 0]), 3, o);
    expect(one.negativeLoss).toBe(0);
    expect(Number.isFinite(one.loss)).toBe(true);
  });

  it('refuses arrays of the wrong size, out-of-range labels or indices and bad weights, naming them', async () => {
    const logits = new Float32Array(6);
    const emb = new Float32Array(4);
    const labels = Int32Array.from([0, 1]);
    const t = {
      anchor: Int32Array.of(0),
      positive: Int32Array.of(1),
      negAnchor: Int32Array.of(),
      negative: Int32Array.of(),
    };
    const w = { ceWeight: 1, contrastiveWeight: 1, margin: 0 };
    await expect(tripletLossFromOutputs(new Float32Array(5), 3, emb, labels, t, w)).rejects.toThrow(/logits must hold/);
    await expect(tripletLossFromOutputs(logits, 3, emb, Int32Array.from([0, 3]), t, w)).rejects.toThrow(
      /labels must be between 0 and 2/,
    );
    await expect(
      tripletLossFromOutputs(logits, 3, emb, labels, { ...t, positive: Int32Array.of(2) }, w),
    ).rejects.toThrow(/positive indices must be between 0 and 1/);
    await expect(tripletLossFromOutputs(logits, 3, emb, labels, t, { ...w, margin: 2 })).rejects.toThrow(RangeError);
    await expect(tripletLossFromOutputs(logits, 3, emb, labels, t, { ...w, ceWeight: NaN })).rejects.toThrow(
      /ceWeight/,
    );
  });
});
