/**
 * Running the same photos through two engines side by side: the loop shared by the ONNX export's verification and
 * the engine build's agreement and accuracy checks.
 */
import type { Engine } from './Engine.js';

/** Index of the largest value of a row (the first one on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

/** One batch of photos run through both engines. */
export interface PairedBatch {
  /** Positions in `images` of the batch's photos, in the order of the output rows. */
  indices: number[];
  a: { logits: Float32Array; embedding: Float32Array };
  b: { logits: Float32Array; embedding: Float32Array };
  /** Milliseconds each engine's run took. */
  msA: number;
  msB: number;
}

export interface PairedRunOptions {
  /** Photos preprocessed and run at once. */
  batchSize: number;
  /**
   * Preprocess photos one by one and leave out (and count) those that cannot be read, instead of rejecting with
   * the first one. Defaults to false.
   */
  skipUnreadable?: boolean;
}

/**
 * Preprocesses photos as engine `a` expects, `batchSize` at a time, runs each batch through `a` and then `b`, and
 * hands both outputs to `onBatch`. Returns how many photos were skipped as unreadable (with `skipUnreadable`).
 */
export async function runPaired(
  a: Engine,
  b: Engine,
  images: readonly string[],
  options: PairedRunOptions,
  onBatch: (batch: PairedBatch) => void,
): Promise<{ skipped: number }> {
  const { batchSize, skipUnreadable = false } = options;
  let skipped = 0;
  for (let start = 0; start < images.length; start += batchSize) {
    const chunk = images.slice(start, start + batchSize);
    let indices: number[];
    let input: Awaited<ReturnType<Engine['preprocess']>>;
    if (skipUnreadable) {
      indices = [];
      const tensors: Float32Array[] = [];
      for (const [i, f] of chunk.entries()) {
        try {
          tensors.push((await a.preprocess([f])).data);
          indices.push(start + i);
        } catch {
          skipped++;
        }
      }
      if (indices.length === 0) continue;
      const per = tensors[0]!.length;
      const data = new Float32Array(indices.length * per);
      tensors.forEach((t, i) => data.set(t, i * per));
      const size = a.info.preprocessing.size;
      input = { data, shape: [indices.length, 3, size, size] };
    } else {
      indices = chunk.map((_, i) => start + i);
      input = await a.preprocess(chunk);
    }
    let t = performance.now();
    const outA = await a.run(input);
    const msA = performance.now() - t;
    t = performance.now();
    const outB = await b.run(input);
    const msB = performance.now() - t;
    onBatch({ indices, a: outA, b: outB, msA, msB });
  }
  return { skipped };
}
