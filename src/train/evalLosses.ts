import type { NativeLossValues, NativeTripletIndices } from '../binding/types.js';
import { Rng } from '../data/rng.js';
import { tripletLossFromOutputs } from '../torch/loss.js';

/** Validation losses from one forward pass over a split: the native training step's own loss function. */
export type EvalLosses = NativeLossValues;

/**
 * The seeded (query, positive, negative) pairs of a split: every image is a query once, with a positive of its class
 * (itself when its class has one image) and, when there is another class, a negative drawn from one. Deterministic
 * for a given seed.
 */
export function validationTriplets(labels: Int32Array, seed: number): NativeTripletIndices {
  const n = labels.length;
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const rng = new Rng(seed, 'val-triplets');
  const positive = new Int32Array(n);
  const negAnchor: number[] = [];
  const negative: number[] = [];
  for (let i = 0; i < n; i++) {
    const same = byClass.get(labels[i] as number) as number[];
    const others = same.length > 1 ? same.filter((j) => j !== i) : same;
    positive[i] = others[rng.int(others.length)] as number;
    const otherClasses = [...byClass.keys()].filter((c) => c !== labels[i]);
    if (otherClasses.length) {
      const pool = byClass.get(otherClasses[rng.int(otherClasses.length)] as number) as number[];
      negAnchor.push(i);
      negative.push(pool[rng.int(pool.length)] as number);
    }
  }
  return {
    anchor: Int32Array.from({ length: n }, (_, i) => i),
    positive,
    negAnchor: Int32Array.from(negAnchor),
    negative: Int32Array.from(negative),
  };
}

/**
 * Cross-entropy over every image, plus the cosine-embedding loss over the split's seeded triplets
 * (validationTriplets), computed by the native loss of the training step.
 */
export async function evalLosses(
  logits: Float32Array,
  embedding: Float32Array,
  labels: Int32Array,
  numClasses: number,
  options: { ceWeight: number; contrastiveWeight: number; margin: number; labelSmoothing?: number; seed: number },
): Promise<EvalLosses> {
  const { ceWeight, contrastiveWeight, margin } = options;
  return tripletLossFromOutputs(logits, numClasses, embedding, labels, validationTriplets(labels, options.seed), {
    ceWeight,
    contrastiveWeight,
    margin,
    ...(options.labelSmoothing ? { labelSmoothing: options.labelSmoothing } : {}),
  });
}
