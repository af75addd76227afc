import { describe, expect, it } from 'vitest';

import { argmax, runPaired, type PairedBatch } from '../../../src/engine/compare.js';
import type { Engine, TensorInput } from '../../../src/engine/Engine.js';

/** An engine stand-in: 1×1 "images" whose value is the photo's number; logits [x, -x], embedding [2x]. */
function fakeEngine(scale: number): Engine {
  return {
    info: { classes: ['a', 'b'], preprocessing: { size: 1 } },
    async preprocess(images: readonly string[]): Promise<TensorInput> {
      const data = new Float32Array(images.length * 3);
      images.forEach((f, i) => {
        if (f.startsWith('bad')) throw new Error(`cannot decode ${f}`);
        data.fill(Number(f), i * 3, i * 3 + 3);
      });
      return { data, shape: [images.length, 3, 1, 1] };
    },
    async run(input: TensorInput) {
      const n = input.shape[0];
      const logits = new Float32Array(n * 2);
      const embedding = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const x = (input.data[i * 3] as number) * scale;
        logits.set([x, -x], i * 2);
        embedding[i] = 2 * x;
      }
      return { logits, embedding };
    },
  } as unknown as Engine;
}

describe('comparing two engines', () => {
  it('argmax takes the first of equal maxima', () => {
    expect(argmax([1, 3, 2])).toBe(1);
    expect(argmax(Float32Array.of(5, 5, 1))).toBe(0);
    expect(argmax([-2, -1, -1])).toBe(1);
    expect(argmax([7])).toBe(0);
  });

  it('runs batches through both engines and maps rows back to the photos', async () => {
    const batches: PairedBatch[] = [];
    const { skipped } = await runPaired(
      fakeEngine(1),
      fakeEngine(-1),
      ['1', '2', '3', '4', '5'],
      { batchSize: 2 },
      (b) => batches.push(b),
    );
    expect(skipped).toBe(0);
    expect(batches.map((b) => b.indices)).toEqual([[0, 1], [2, 3], [4]]);
    expect([...batches[1]!.a.logits]).toEqual([3, -3, 4, -4]);
    expect([...batches[1]!.b.logits]).toEqual([-3, 3, -4, 4]);
    expect([...batches[2]!.a.embedding]).toEqual([10]);
    expect(batches.every((b) => b.msA >= 0 && b.msB >= 0)).toBe(true);
  });

  it('rejects with an unreadable photo, or skips and counts it when asked', async () => {
    const images = ['1', 'bad-a', '3', 'bad-b', 'bad-c'];
    await expect(runPaired(fakeEngine(1), fakeEngine(1), images, { batchSize: 2 }, () => undefined)).rejects.toThrow(
      /cannot decode bad-a/,
    );
    const seen: number[][] = [];
    const rows: number[] = [];
    const { skipped } = await runPaired(
      fakeEngine(1),
      fakeEngine(1),
      images,
      { batchSize: 2, skipUnreadable: true },
      (b) => {
        seen.push(b.indices);
        rows.push(...b.a.logits.filter((_, i) => i % 2 === 0));
      },
    );
    expect(skipped).toBe(3);
    expect(seen).toEqual([[0], [2]]);
    expect(rows).toEqual([1, 3]);
  });
});
