import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';

import { createProgram } from '../../src/cli/index.js';

/** Value options whose absence means "none" (no file, no extra output, another flag decides): no default to show. */
const ABSENT_MEANS_NONE = new Set([
  'export-backbone --samples',
  'train --resume',
  'evaluate --run',
  'predict --output-file',
  'batch-predict --input-dir',
  'batch-predict --file-list',
  'build-engine --calibration-dir',
  'build-engine --run',
  'build-engine --keep-float',
  'build-engine --verify-images',
  'bench --models-dir',
  'bench --image-path',
  'bench --eval-split',
  'bench --json',
  'bench --markdown',
  'bench --plot',
  'robustness --json',
  'robustness --markdown',
]);

function* valueOptions(cmd: Command, prefix = ''): Generator<{ where: string; option: Option }> {
  for (const option of cmd.options) {
    // Boolean flags and options the user must give have no default to show.
    if ((option.required || option.optional) && !option.mandatory) {
      yield { where: `${prefix}${cmd.name()} ${option.long}`.replace(/^trt-flowers /, ''), option };
    }
  }
  for (const sub of cmd.commands) yield* valueOptions(sub, prefix ? `${prefix}${cmd.name()} ` : `${cmd.name()} `);
}

describe('CLI help', () => {
  it('every value option shows its default (or says what its absence means)', () => {
    const missing: string[] = [];
    for (const { where, option } of valueOptions(createProgram())) {
      if (ABSENT_MEANS_NONE.has(where)) continue;
      const shown =
        option.defaultValue !== undefined || /\bdefault\b|\belse\b|\bor TRT_FLOWERS_/i.test(option.description);
      if (!shown) missing.push(`${where}: ${option.description}`);
    }
    expect(missing).toEqual([]);
  });

  it('shows the defaults a user asked about in --help', () => {
    const program = createProgram();
    const help = (name: string, sub?: string): string => {
      let cmd = program.commands.find((c) => c.name() === name)!;
      if (sub) cmd = cmd.commands.find((c) => c.name() === sub)!;
      // Commander wraps long descriptions: compare with the whitespace collapsed.
      return cmd.helpInformation().replace(/\s+/g, ' ');
    };
    expect(help('predict')).toMatch(
      /--threads <n> intra-op threads of the backend \(default: libtorch min\(cores, 4\)/,
    );
    expect(help('batch-predict')).toMatch(
      /--threads <n> intra-op threads of the backend \(default: libtorch min\(cores, 4\)/,
    );
    expect(help('evaluate')).toMatch(/--batch-size <n> images per forward \(default: the config's data\.batch_size\)/);
    expect(help('data', 'split')).toMatch(/--out <file> split manifest JSON to write \(default: "split\.json"\)/);
  });
});
