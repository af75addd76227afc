import { Command } from 'commander';
import { vi } from 'vitest';

import { registerDataCommand } from '../../src/cli/commands/data.js';
import { loadTrainConfig } from '../../src/config/index.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { tinyModelPath } from '../helpers.js';

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
