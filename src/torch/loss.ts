import { loadAddon } from '../binding/loader.js';
import type { NativeLossValues, NativeLossWeights, NativeTripletIndices } from '../binding/types.js';
import { callNative } from '../errors.js';

/**
 * The training objective over precomputed outputs of N images (logits [N, numClasses] and embeddings [N, D],
 * row-major): computed by the same native function as the training step's loss, in float64, off the event loop.
 * Throws TypeError / RangeError for arrays of the wrong size, labels or indices out of range, or bad weights.
 */
export async function tripletLossFromOutputs(
  logits: Float32Array,
  numClasses: number,
  embedding: Float32Array,
  labels: Int32Array,
  triplets: Readonly<NativeTripletIndices>,
  weights: Readonly<NativeLossWeights>,
): Promise<NativeLossValues> {
  const addon = loadAddon();
  return callNative(() => addon.tripletLossFromOutputs(logits, numClasses, embedding, labels, triplets, weights));
}
