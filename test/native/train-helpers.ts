import { Command } from 'commander';
import { vi } from 'vitest';

import { registerDataCommand } from '../../src/cli/commands/data.js';
import { loadTrainConfig } from '../../src/config/index.js';
import { preprocessBatch } from '../../src/data/preprocess.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { CLASSES, photos, tinyModelPath } from '../helpers.js';

/** A progress reporter that prints nothing. */
export const quiet: ProgressReporter = { step() {}, epoch() {}, message() {}, close() {} };

/** A short training config on the tiny fixture (32 px, batch 8, 2 epochs), runs under `runsDir`, plus overrides. */
export function tinyTrainConfig(runsDir: string, extra: readonly string[] = []): ReturnType<typeof loadTrainConfig> {
  return loadTrainConfig({
    overrides: [
      `model.checkpoint=${tinyModelPath}`,
      'model.arch=tiny',
      'data.image_size=32',
      'data.batch_size=8',
      'data.prefetch=1',
      'trainer.max_epochs=2',
      'trainer.threads=2',
      `trainer.runs_dir=${runsDir}`,
      'trainer.progress=none',
      ...extra,
    ],
  });
}

/** Runs `trt-flowers data ...` in-process and returns what it printed. */
export async function runDataCli(...args: string[]): Promise<string> {
  const program = new Command('trt-flowers').exitOverride();
  registerDataCommand(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'trt-flowers', 'data', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

/**
 * One triplet batch of real photos at `size` px: per class a query, a positive of the same class and a negative of
 * the next class, labels 0..4.
 */
export async function photoTripletBatch(size: number): Promise<{
  query: Float32Array;
  positive: Float32Array;
  negative: Float32Array;
  shape: readonly [number, number, number, number];
  labels: Int32Array;
}> {
  const q = CLASSES.map((c) => photos(c, 1)[0] as string);
  const p = CLASSES.map((c) => photos(c, 1, 1)[0] as string);
  const n = CLASSES.map((_, i) => photos(CLASSES[(i + 1) % 5] as string, 1, 2)[0] as string);
  const [query, positive, negative] = (await Promise.all([q, p, n].map((f) => preprocessBatch(f, { size })))) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  return { query, positive, negative, shape: [5, 3, size, size], labels: Int32Array.from([0, 1, 2, 3, 4]) };
}
