import { InvalidArgumentError, type Command } from 'commander';

import type { BenchMode, BenchOptions } from '../../bench/types.js';
import { withInterrupt } from '../interrupt.js';
import type { TtaMode } from '../../engine/Engine.js';
import { commandLine, parseChoice, parseInteger, parseNumber, parseTtaList } from '../parse.js';

interface BenchFlags {
  modelPath: string[];
  modelsDir?: string;
  iterations: number;
  warmupMs: number;
  durationS: number;
  batch: number[];
  mode: BenchMode[];
  tta: TtaMode[];
  decode: string;
  threads?: number;
  device: string;
  images?: string;
  imagePath?: string;
  imageCount: number;
  evalSplit?: string;
  run?: string;
  evalLimit: number;
  baseline?: string;
  python?: boolean;
  percentiles: string;
  latencies: boolean;
  json?: string;
  markdown?: string;
  plot?: string;
}

function parseList<T>(flag: string, item: (s: string) => T): (value: string) => T[] {
  return (value: string) => {
    const parts = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (parts.length === 0)
      throw new InvalidArgumentError(`${flag} expects a comma-separated list, received '${value}'`);
    return parts.map(item);
  };
}

const batchItem = parseInteger('--batch', 1, 4096);
const modeItem = (s: string): BenchMode => {
  if (s !== 'model' && s !== 'e2e') throw new InvalidArgumentError(`--mode expects model and/or e2e, received '${s}'`);
  return s;
};

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      'trtexec-style benchmark of every engine of the given models, side by side: latency percentiles and ' +
        'throughput, model-only and end-to-end, ratios to a baseline, optional accuracy; table, JSON, Markdown, PNG',
    )
    .option(
      '--model-path <file>',
      'TorchScript .pt, .onnx or TensorRT .engine (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--models-dir <dir>', 'benchmark every model file in this folder')
    .option(
      '--iterations <n>',
      'at least this many timed iterations per configuration',
      parseInteger('--iterations', 1, 10_000_000),
      100,
    )
    .option('--warmup-ms <ms>', 'warm-up time per configuration', parseNumber('--warmup-ms', 0, 3_600_000), 200)
    .option(
      '--duration-s <s>',
      'at least this many seconds of timed runs per configuration',
      parseNumber('--duration-s', 0, 86_400),
      3,
    )
    .option('--batch <list>', 'batch sizes, e.g. 1,16,32', parseList('--batch', batchItem), [1])
    .option(
      '--mode <list>',
      'model (preprocessed batch) and/or e2e (image files to probabilities)',
      parseList('--mode', modeItem),
      ['model', 'e2e'] as BenchMode[],
    )
    .option(
      '--threads <n>',
      'intra-op threads of every backend (default: the logical CPU count)',
      parseInteger('--threads', 1, 256),
    )
    .option(
      '--tta <list>',
      'test-time augmentation, a list of none, flip (each image and its mirror, averaged: 2x the work) and crops ' +
        '(the image and five 87.5% crops, averaged: 6x); every engine runs once per mode, end to end and in the ' +
        'accuracy pass',
      parseTtaList,
      ['none'],
    )
    .option(
      '--decode <place>',
      'where end-to-end calls decode: auto (ONNX Runtime: on its session thread for calls of 1-2 images) | pool | ' +
        'worker',
      'auto',
    )
    .option('--device <device>', 'auto (CPU, plus CUDA where there is a GPU) | cpu | cuda', 'auto')
    .option(
      '--images <dir>',
      'photos for the e2e runs and the model input (default: TRT_FLOWERS_DATA or ../shared/data/flower_photos)',
    )
    .option('--image-path <file>', 'one image for the e2e runs (the single-image form)')
    .option('--image-count <n>', 'photos taken evenly from --images', parseInteger('--image-count', 1, 1_000_000), 100)
    .option(
      '--eval-split <name>',
      "accuracy on: train | val | test (a run's split.json) | all (class folders of --images)",
    )
    .option('--run <dir>', 'training run whose split.json --eval-split uses (default: the run a model file lives in)')
    .option(
      '--eval-limit <n>',
      'at most this many labelled photos, evenly spread (0: all)',
      parseInteger('--eval-limit', 0, 10_000_000),
      0,
    )
    .option('--baseline <label>', 'engine the ratios are relative to (label or part of it; default: libtorch fp32)')
    .option('--python', 'also time the TorchScript model in Python PyTorch eager with PIL preprocessing')
    .option('--percentiles <method>', 'linear | nearest-rank', 'linear')
    .option('--no-latencies', 'leave the individual latencies out of the JSON report')
    .option('--json <file>', 'write the JSON report')
    .option('--markdown <file>', 'write the Markdown report')
    .option('--plot <file.png>', 'write the chart (PNG, and an SVG beside it)')
    .action(async (flags: BenchFlags) => {
      parseChoice('--device', flags.device, ['auto', 'cpu', 'cuda']);
      if (flags.evalSplit !== undefined) parseChoice('--eval-split', flags.evalSplit, ['train', 'val', 'test', 'all']);
      parseChoice('--percentiles', flags.percentiles, ['linear', 'nearest-rank']);
      if (flags.images && flags.imagePath) throw new RangeError('give --images or --image-path, not both');
      if (flags.plot && !/\.png$/i.test(flags.plot))
        throw new RangeError(`--plot expects a .png file, received '${flags.plot}'`);
      const options: BenchOptions = {
        models: flags.modelPath,
        ...(flags.modelsDir ? { modelsDir: flags.modelsDir } : {}),
        iterations: flags.iterations,
        warmupMs: flags.warmupMs,
        durationS: flags.durationS,
        batches: flags.batch,
        modes: flags.mode,
        tta: flags.tta,
        decode: parseChoice('--decode', flags.decode, ['auto', 'pool', 'worker']),
        ...(flags.threads ? { threads: flags.threads } : {}),
        device: flags.device as BenchOptions['device'],
        ...(flags.imagePath ? { images: [flags.imagePath] } : flags.images ? { images: flags.images } : {}),
        imageCount: flags.imageCount,
        ...(flags.evalSplit ? { evalSplit: flags.evalSplit as BenchOptions['evalSplit'] } : {}),
        ...(flags.run ? { run: flags.run } : {}),
        evalLimit: flags.evalLimit,
        ...(flags.baseline ? { baseline: flags.baseline } : {}),
        python: flags.python === true,
        percentileMethod: flags.percentiles as BenchOptions['percentileMethod'],
        keepLatencies: flags.latencies,
        command: commandLine(),
        onLog: (line) => process.stderr.write(`[bench] ${line}\n`),
      };
      const [{ runBench }, { formatTable, writeReports }] = await Promise.all([
        import('../../bench/run.js'),
        import('../../bench/report.js'),
      ]);
      const report = await withInterrupt((signal) => runBench({ ...options, signal }));
      process.stdout.write(`${formatTable(report)}\n`);
      if (report.notes.length) process.stdout.write(`${report.notes.map((n) => `note: ${n}`).join('\n')}\n`);
      const written = await writeReports(report, {
        ...(flags.json ? { json: flags.json } : {}),
        ...(flags.markdown ? { markdown: flags.markdown } : {}),
        ...(flags.plot ? { plot: flags.plot } : {}),
      });
      process.stderr.write(
        `[bench] done in ${report.wallSeconds.toFixed(1)} s${written.length ? `; wrote ${written.join(', ')}` : ''}\n`,
      );
      const failed =
        report.engines.some((e) => e.status === 'failed') || report.results.some((r) => r.status === 'failed');
      if (failed) process.exitCode = 1;
    });
}
