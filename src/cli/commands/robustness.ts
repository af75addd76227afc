import { InvalidArgumentError, type Command } from 'commander';

import type { RobustnessOptions } from '../../bench/robustness.js';
import { parseVariants, ROBUSTNESS_VARIANTS, VARIANT_DESCRIPTIONS } from '../../bench/variant-names.js';
import { CancelledError } from '../../errors.js';
import { interruptExitCode, withInterrupt } from '../interrupt.js';
import type { TtaMode } from '../../engine/Engine.js';
import { commandLine, parseChoice, parseInteger, parseNumber, parseTtaList } from '../parse.js';

interface RobustnessFlags {
  modelPath: string[];
  run?: string;
  dataDir?: string;
  split: string;
  variants: string[];
  limit: number;
  baseline?: string;
  tolerance: number;
  batch: number;
  threads?: number;
  tta: TtaMode[];
  device: string;
  json?: string | true;
  markdown?: string;
}

const parseList = (value: string): string[] => {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0)
    throw new InvalidArgumentError(`--variants expects a comma-separated list, received '${value}'`);
  return parts;
};

/** Wraps text at `width` columns; lines after the first are indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

export function registerRobustnessCommand(program: Command): void {
  program
    .command('robustness')
    .description(
      'accuracy of models on a labelled split as it is and downscaled, recompressed, cropped and rotated: per ' +
        'variant and class, macro F1, confusion counts, differences to a baseline model; table, JSON, Markdown',
    )
    .option(
      '--model-path <file>',
      'TorchScript .pt, .onnx (FP32 or INT8) or TensorRT .engine (repeatable; the first is the baseline)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--run <dir>', 'training run whose split.json names the photos (default: the run the first model is in)')
    .option(
      '--data-dir <dir>',
      "with --split all: one sub-folder per class; else the folder the split's paths are relative to " +
        "(default: the run's data folder)",
    )
    .option('--split <name>', "test | val | train (a run's split.json) | all (class folders of --data-dir)", 'test')
    .option('--variants <list>', 'comma-separated, from the list below', parseList, [...ROBUSTNESS_VARIANTS])
    .option(
      '--limit <n>',
      'at most this many photos, evenly spread (0: all)',
      parseInteger('--limit', 0, 10_000_000),
      0,
    )
    .option('--baseline <label>', 'model the others are compared with (label or part of it; default: the first)')
    .option(
      '--tolerance <points>',
      'flag a difference to the baseline larger than this many accuracy points',
      parseNumber('--tolerance', 0, 100),
      1,
    )
    .option('--batch <n>', 'largest batch sent to an engine at once', parseInteger('--batch', 1, 4096), 32)
    .option(
      '--threads <n>',
      'intra-op threads of every backend (default: the logical CPU count)',
      parseInteger('--threads', 1, 256),
    )
    .option(
      '--tta <list>',
      'test-time augmentation, a list of none, flip (each photo and its mirror, averaged) and crops (the photo and ' +
        'five 87.5% crops, averaged); each model is measured once per mode',
      parseTtaList,
      ['none'],
    )
    .option('--device <device>', 'auto (libtorch on CUDA where there is a GPU) | cpu | cuda', 'auto')
    .option('--json [file]', 'write the JSON report (to stdout, instead of the table, without a file)')
    .option('--markdown <file>', 'write the Markdown report')
    .addHelpText(
      'after',
      [
        '',
        'Variants (each made once per photo with sharp, EXIF orientation applied first, same bytes on every run, in a',
        'temporary folder that is removed at the end):',
        ...ROBUSTNESS_VARIANTS.map((n) => `  ${n.padEnd(15)} ${wrap(VARIANT_DESCRIPTIONS[n], 82, 18)}`),
      ].join('\n'),
    )
    .action(async (flags: RobustnessFlags) => {
      parseChoice('--device', flags.device, ['auto', 'cpu', 'cuda']);
      const split = parseChoice('--split', flags.split, ['train', 'val', 'test', 'all']);
      if (flags.modelPath.length === 0) throw new RangeError('give at least one --model-path FILE');
      if (split === 'all' && !flags.dataDir) {
        throw new RangeError('--split all needs --data-dir DIR (one sub-folder per class)');
      }
      if (split === 'all' && flags.run) throw new RangeError('give --run or --split all, not both');
      const [{ runRobustness }, { formatRobustnessTable, robustnessJson, writeRobustnessReports }] = await Promise.all([
        import('../../bench/robustness.js'),
        import('../../bench/robustness-report.js'),
      ]);
      const options: RobustnessOptions = {
        models: flags.modelPath,
        split,
        ...(flags.run ? { run: flags.run } : {}),
        ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
        // Checked before any model loads: an unknown name fails at once, with the closest known one.
        variants: parseVariants(flags.variants),
        limit: flags.limit,
        ...(flags.baseline ? { baseline: flags.baseline } : {}),
        tolerancePoints: flags.tolerance,
        batch: flags.batch,
        ...(flags.threads ? { threads: flags.threads } : {}),
        tta: flags.tta,
        device: flags.device as RobustnessOptions['device'],
        command: commandLine(),
        onLog: (line) => process.stderr.write(`[robustness] ${line}\n`),
      };
      const report = await withInterrupt(async (signal) => {
        try {
          return await runRobustness({ ...options, signal });
        } catch (err) {
          // Ctrl-C / SIGTERM: the variants are removed, nothing is written; 130 / 143 as the other commands.
          if (!(err instanceof CancelledError) || !signal.aborted) throw err;
          process.stderr.write(`[robustness] interrupted: ${err.message}\n`);
          process.exitCode = interruptExitCode(signal);
          return undefined;
        }
      });
      if (!report) return;
      if (flags.json === true) process.stdout.write(robustnessJson(report));
      else {
        process.stdout.write(`${formatRobustnessTable(report)}\n`);
        if (report.notes.length) process.stdout.write(`${report.notes.map((n) => `note: ${n}`).join('\n')}\n`);
      }
      const written = await writeRobustnessReports(report, {
        ...(typeof flags.json === 'string' ? { json: flags.json } : {}),
        ...(flags.markdown ? { markdown: flags.markdown } : {}),
      });
      process.stderr.write(
        `[robustness] done in ${report.wallSeconds.toFixed(1)} s${written.length ? `; wrote ${written.join(', ')}` : ''}\n`,
      );
      if (report.models.some((m) => m.status === 'failed')) process.exitCode = 1;
    });
}
