import { Rng } from '../data/rng.js';

/** Validation losses from one forward pass over a split: the same definitions as the native training step. */
export interface EvalLosses {
  loss: number;
  ce: number;
  contrastive: number;
  positiveLoss: number;
  negativeLoss: number;
}

/** Mean cross-entropy of row-major logits [N, C] against labels. */
export function crossEntropy(logits: Float32Array, labels: Int32Array, numClasses: number): number {
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * numClasses, (i + 1) * numClasses);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    total += Math.log(sum) + max - (row[labels[i] as number] as number);
  }
  return labels.length ? total / labels.length : 0;
}

/** Cosine similarity of rows a and b of a row-major [N, dim] matrix. */
export function cosine(e: Float32Array, dim: number, a: number, b: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < dim; k++) {
    const x = e[a * dim + k] as number;
    const y = e[b * dim + k] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  // torch's cosine_similarity clamps the norm product with eps 1e-8 (CosineEmbeddingLoss uses 1e-12 per norm).
  return dot / Math.sqrt(Math.max(na * nb, 1e-24));
}

/**
 * Cross-entropy over every image, plus the cosine-embedding loss over seeded (query, positive, negative) triplets
 * drawn among the same images: every image is a query once, with a positive of its class and a negative of another.
 * Deterministic for a given seed. Classes with a single image pair it with itself.
 */
export function evalLosses(
  logits: Float32Array,
  embedding: Float32Array,
  labels: Int32Array,
  numClasses: number,
  options: { ceWeight: number; contrastiveWeight: number; margin: number; seed: number },
): EvalLosses {
  const n = labels.length;
  const dim = n ? embedding.length / n : 0;
  const ce = crossEntropy(logits, labels, numClasses);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const rng = new Rng(options.seed, 'val-triplets');
  let pos = 0;
  let neg = 0;
  let negCount = 0;
  for (let i = 0; i < n; i++) {
    const same = byClass.get(labels[i] as number) as number[];
    const others = same.length > 1 ? same.filter((j) => j !== i) : same;
    const p = others[rng.int(others.length)] as number;
    pos += 1 - cosine(embedding, dim, i, p);
    const otherClasses = [...byClass.keys()].filter((c) => c !== labels[i]);
    if (otherClasses.length) {
      const pool = byClass.get(otherClasses[rng.int(otherClasses.length)] as number) as number[];
      neg += Math.max(0, cosine(embedding, dim, i, pool[rng.int(pool.length)] as number) - options.margin);
      negCount++;
    }
  }
  const positiveLoss = n ? pos / n : 0;
  const negativeLoss = negCount ? neg / negCount : 0;
  const contrastive = positiveLoss + negativeLoss;
  return {
    loss: options.ceWeight * ce + options.contrastiveWeight * contrastive,
    ce,
    contrastive,
    positiveLoss,
    negativeLoss,
  };
}
