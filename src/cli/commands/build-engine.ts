import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from 'commander';

import type { BuildBackend, GraphOptimization } from '../../build/options.js';
import type { CalibrationMethod } from '../../build/calibration.js';
import type { Precision } from '../../engine/backend.js';
import type { Int8Mode } from '../../engine/tensorrt-plan.js';
import { withInterrupt } from '../interrupt.js';
import { parseChoice, parseInteger, parseNumber } from '../parse.js';

interface BuildFlags {
  modelPath: string;
  outputPath?: string;
  backend: string;
  precision: string;
  calibrationDir?: string;
  run?: string;
  dataDir?: string;
  calibrationImages: number;
  method: string;
  percentile: number;
  keepFloat?: string;
  reduceRange: string;
  graphOptimization: string;
  verifyImages?: string;
  verifyCount: number;
  check: boolean;
  evaluate: boolean;
  json?: boolean;
  batch?: number;
  maxBatch?: number;
  device?: string;
  workspace?: number;
  timingCache?: string | false;
  int8Mode: string;
  recalibrate?: boolean;
  optLevel?: number;
}

export function registerBuildEngineCommand(program: Command): void {
  program
    .command('build-engine')
    .description(
      'build an inference engine (ONNX Runtime fp32/int8 on CPU; TensorRT where compiled in) from an ONNX model',
    )
    .option('--model-path <file>', 'FP32 ONNX model from export-onnx', 'models/flower_classifier.onnx')
    .option(
      '--output-path <file>',
      'engine file (default: beside the model, <model>.<precision>.onnx; <model>.fp32.ort.onnx for the ONNX ' +
        'Runtime-only fp32 graph; .engine for TensorRT)',
    )
    .option('--backend <name>', 'auto | onnxruntime | tensorrt', 'auto')
    .option('--precision <p>', 'fp32 | fp16 | int8', 'fp32')
    .option('--calibration-dir <dir>', 'int8: folder of real photos (recursive)')
    .option('--run <runDir>', "int8: calibrate on a training run's train split (with its data folder or --data-dir)")
    .option('--data-dir <dir>', 'tf_flowers folder (or TRT_FLOWERS_DATA)')
    .option(
      '--calibration-images <n>',
      'photos used for calibration',
      parseInteger('--calibration-images', 1, 100_000),
      500,
    )
    .option('--method <m>', 'entropy | max | percentile', 'entropy')
    .option('--percentile <p>', 'for --method percentile', parseNumber('--percentile', 50, 100), 99.99)
    .option('--keep-float <nodes>', "comma-separated nodes kept in float: names, 'first-conv', 'classifier'")
    .option(
      '--graph-optimization <level>',
      "fp32 on ONNX Runtime: extended (fastest; ONNX Runtime's own com.microsoft operators, runs on ONNX Runtime " +
        'only) | basic (standard ONNX operators only)',
      'extended',
    )
    .option('--reduce-range <mode>', 'auto | on | off: 7-bit weights for x86 CPUs without VNNI', 'auto')
    .option(
      '--verify-images <dir>',
      'photos to compare the engine with the FP32 model on (default: from the calibration source)',
    )
    .option('--verify-count <n>', 'photos for that comparison', parseInteger('--verify-count', 0, 10_000), 32)
    .option('--no-evaluate', "skip the test-split accuracy comparison (with a training run's split)")
    .option('--no-check', 'skip the ONNX checker (Python onnx) on the Q/DQ model')
    .option('--json', 'print the sidecar as JSON')
    .option(
      '--batch <n>',
      'TensorRT: batch the engine is tuned for (profile kOPT; default 8)',
      parseInteger('--batch', 1, 4096),
    )
    .option(
      '--max-batch <n>',
      'TensorRT: largest batch the engine runs (profile kMAX; default max(32, --batch))',
      parseInteger('--max-batch', 1, 4096),
    )
    .option('--device <device>', "TensorRT: 'cuda' or 'cuda:N'", 'cuda')
    .option(
      '--workspace <MiB>',
      "TensorRT: builder workspace limit (default: TensorRT's)",
      parseInteger('--workspace', 1, 1 << 20),
    )
    .option(
      '--timing-cache <file>',
      'TensorRT: timing cache reused across builds (default: tensorrt.timing.cache beside the engine)',
    )
    .option('--no-timing-cache', 'TensorRT: build without a timing cache')
    .option(
      '--int8-mode <mode>',
      "TensorRT int8: qdq (our calibrator's Q/DQ model) | calibrator (TensorRT 10's legacy entropy calibrator)",
      'qdq',
    )
    .option('--recalibrate', 'TensorRT --int8-mode calibrator: ignore an existing calibration cache')
    .option(
      '--opt-level <n>',
      "TensorRT: builder optimisation level 0..5 (default: TensorRT's, 3)",
      parseInteger('--opt-level', 0, 5),
    )
    .action(async (flags: BuildFlags) => {
      parseChoice('--precision', flags.precision, ['fp32', 'fp16', 'int8']);
      parseChoice('--backend', flags.backend, ['auto', 'onnxruntime', 'tensorrt']);
      parseChoice('--method', flags.method, ['entropy', 'max', 'percentile']);
      parseChoice('--reduce-range', flags.reduceRange, ['auto', 'on', 'off']);
      parseChoice('--int8-mode', flags.int8Mode, ['qdq', 'calibrator']);
      parseChoice('--graph-optimization', flags.graphOptimization, ['basic', 'extended']);
      const [{ resolveDataDir }, { readSplitManifest }, { buildEngine }, { listImages, spread }, { runDataDir }] =
        await Promise.all([
          import('../../data/fetch.js'),
          import('../../data/split.js'),
          import('../../build/build.js'),
          import('../../data/files.js'),
          import('../../train/data-source.js'),
        ]);
      let calibration: string | { dataDir: string; splitFile: string } | undefined;
      if (flags.precision === 'int8') {
        // The train split of the model's own run when it can be found (no test photo in calibration), else a folder.
        const run = flags.run ?? (await modelRunDir(flags.modelPath));
        if (flags.calibrationDir) calibration = flags.calibrationDir;
        else if (run) {
          const dataDir = flags.dataDir ?? (await runDataDir(run)) ?? resolveDataDir({});
          calibration = { dataDir, splitFile: path.join(run, 'split.json') };
        } else {
          calibration = await defaultDataDir(flags.dataDir);
        }
      }
      // With a training run's split, the engine's accuracy is measured on its test split next to the FP32 model's.
      let evaluate: { images: string[]; labels: number[]; name: string } | undefined;
      if (calibration && typeof calibration === 'object' && flags.evaluate) {
        const split = await readSplitManifest(calibration.splitFile);
        evaluate = {
          name: 'test',
          images: split.test.map((item) => path.join(calibration.dataDir, item.path)),
          labels: split.test.map((item) => item.label),
        };
      }
      const verifySource =
        flags.verifyImages ?? (typeof calibration === 'string' ? calibration : await defaultDataDir(flags.dataDir));
      const verifyImages =
        flags.verifyCount > 0 && verifySource && !evaluate
          ? spread(await listImages(verifySource), flags.verifyCount)
          : [];
      const result = await withInterrupt((signal) =>
        buildEngine({
          model: flags.modelPath,
          ...(flags.outputPath ? { out: flags.outputPath } : {}),
          backend: flags.backend as BuildBackend,
          precision: flags.precision as Precision,
          calibrationCount: flags.calibrationImages,
          method: flags.method as CalibrationMethod,
          percentile: flags.percentile,
          keepFloat: flags.keepFloat
            ? flags.keepFloat
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : [],
          reduceRange: flags.reduceRange === 'auto' ? 'auto' : flags.reduceRange === 'on',
          graphOptimization: flags.graphOptimization as GraphOptimization,
          check: flags.check,
          verifyImages,
          signal,
          ...(evaluate ? { evaluate } : {}),
          ...(calibration ? { calibration } : {}),
          ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
          ...(flags.maxBatch !== undefined ? { maxBatch: flags.maxBatch } : {}),
          ...(flags.device ? { device: flags.device } : {}),
          ...(flags.workspace !== undefined ? { workspaceMiB: flags.workspace } : {}),
          ...(flags.timingCache !== undefined ? { timingCache: flags.timingCache } : {}),
          ...(flags.optLevel !== undefined ? { optimizationLevel: flags.optLevel } : {}),
          int8Mode: flags.int8Mode as Int8Mode,
          recalibrate: flags.recalibrate === true,
          onLog: flags.json ? undefined : (line) => process.stderr.write(`${line}\n`),
        }),
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const v = result.verification;
      process.stdout.write(
        [
          `wrote ${result.file} (${result.backend} ${result.precision}) in ${result.seconds.toFixed(1)} s`,
          result.operators && !result.operators.portable
            ? `runs on ONNX Runtime only: it uses ${result.operators.custom_ops.join(', ')}`
            : '',
          result.calibration
            ? `calibration: ${result.calibration.method} on ${result.calibration.images} photos ` +
              `(${result.calibration.skipped} skipped); table ${result.calibration.table}; TensorRT cache ${result.calibration.tensorrt_cache}`
            : '',
          v
            ? `vs FP32 on ${v.images} photos: top-1 agreement ${(v.top1_agreement * 100).toFixed(1)}%, logit cosine ` +
              `mean ${v.mean_logit_cosine.toFixed(4)} (min ${v.min_logit_cosine.toFixed(4)})`
            : '',
          result.tensorrt
            ? `TensorRT ${result.tensorrt.version} on ${result.tensorrt.gpu} (compute ${result.tensorrt.compute_capability}): ` +
              `batch ${result.tensorrt.profile.min}..${result.tensorrt.profile.max}, ${result.tensorrt.precision_plan}`
            : '',
          result.evaluation
            ? `accuracy on the ${result.evaluation.split} split (${result.evaluation.images} photos): ` +
              `${result.precision} ${(result.evaluation.engine_accuracy * 100).toFixed(2)}%, FP32 ` +
              `${(result.evaluation.fp32_accuracy * 100).toFixed(2)}%, top-1 agreement ` +
              `${(result.evaluation.top1_agreement * 100).toFixed(1)}%`
            : '',
          `sidecar: ${result.sidecar}`,
        ]
          .filter(Boolean)
          .join('\n') + '\n',
      );
    });
}

/** runs/<run_id> of the model's metadata when that folder has a split.json. */
async function modelRunDir(model: string): Promise<string | undefined> {
  try {
    const { readOnnxInfo } = await import('../../onnx/model.js');
    const info = readOnnxInfo(await fs.readFile(model), model);
    const runId = (JSON.parse(info.props.trt_flowers ?? '{}') as { run_id?: unknown }).run_id;
    if (typeof runId !== 'string') return undefined;
    const dir = path.join('runs', runId);
    return existsSync(path.join(dir, 'split.json')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** --data-dir, TRT_FLOWERS_DATA, or ./data/flower_photos when present. */
async function defaultDataDir(flag: string | undefined): Promise<string | undefined> {
  const [{ resolveDataDir }, { DEFAULT_DOWNLOAD_DIR }] = await Promise.all([
    import('../../data/fetch.js'),
    import('../../train/data-source.js'),
  ]);
  try {
    return resolveDataDir({ flag });
  } catch {
    return existsSync(DEFAULT_DOWNLOAD_DIR) ? DEFAULT_DOWNLOAD_DIR : undefined;
  }
}
