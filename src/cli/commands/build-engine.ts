import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from 'commander';

import { resolveDataDir } from '../../data/fetch.js';
import { buildEngine, type BuildBackend } from '../../engine/build.js';
import type { CalibrationMethod } from '../../engine/calibration.js';
import type { Precision } from '../../engine/backend.js';
import { listImages, spread } from '../../engine/files.js';
import { readOnnxInfo } from '../../engine/metadata.js';
import { DEFAULT_DOWNLOAD_DIR, runDataDir } from '../../train/data-source.js';
import { withInterrupt } from '../interrupt.js';
import { parseInteger, parseNumber } from '../parse.js';

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
  verifyImages?: string;
  verifyCount: number;
  check: boolean;
  json?: boolean;
}

export function registerBuildEngineCommand(program: Command): void {
  program
    .command('build-engine')
    .description('build an inference engine (ONNX Runtime fp32/int8 on CPU; TensorRT where compiled in) from an ONNX model')
    .option('--model-path <file>', 'FP32 ONNX model from export-onnx', 'models/flower_classifier.onnx')
    .option('--output-path <file>', 'engine file (default: <model>.<precision>.onnx beside the model)')
    .option('--backend <name>', 'auto | onnxruntime | tensorrt', 'auto')
    .option('--precision <p>', 'fp32 | fp16 | int8', 'fp32')
    .option('--calibration-dir <dir>', 'int8: folder of real photos (recursive)')
    .option('--run <runDir>', "int8: calibrate on a training run's train split (with its data folder or --data-dir)")
    .option('--data-dir <dir>', 'tf_flowers folder (or TRT_FLOWERS_DATA)')
    .option('--calibration-images <n>', 'photos used for calibration', parseInteger('--calibration-images', 1, 100_000), 500)
    .option('--method <m>', 'entropy | max | percentile', 'entropy')
    .option('--percentile <p>', 'for --method percentile', parseNumber('--percentile', 50, 100), 99.99)
    .option('--keep-float <nodes>', "comma-separated nodes kept in float: names, 'first-conv', 'classifier'")
    .option('--reduce-range <mode>', 'auto | on | off: 7-bit weights for x86 CPUs without VNNI', 'auto')
    .option('--verify-images <dir>', 'photos to compare the engine with the FP32 model on (default: from the calibration source)')
    .option('--verify-count <n>', 'photos for that comparison', parseInteger('--verify-count', 0, 10_000), 32)
    .option('--no-check', 'skip the ONNX checker (Python onnx) on the Q/DQ model')
    .option('--json', 'print the sidecar as JSON')
    .action(async (flags: BuildFlags) => {
      if (!['fp32', 'fp16', 'int8'].includes(flags.precision)) {
        throw new RangeError(`Expected fp32, fp16 or int8 for --precision but received '${flags.precision}'`);
      }
      if (!['auto', 'onnxruntime', 'tensorrt'].includes(flags.backend)) {
        throw new RangeError(`Expected auto, onnxruntime or tensorrt for --backend but received '${flags.backend}'`);
      }
      if (!['entropy', 'max', 'percentile'].includes(flags.method)) {
        throw new RangeError(`Expected entropy, max or percentile for --method but received '${flags.method}'`);
      }
      if (!['auto', 'on', 'off'].includes(flags.reduceRange)) {
        throw new RangeError(`Expected auto, on or off for --reduce-range but received '${flags.reduceRange}'`);
      }
      const out = flags.outputPath ?? flags.modelPath.replace(/(\.onnx)?$/i, `.${flags.precision}.onnx`);
      let calibration: string | { dataDir: string; splitFile: string } | undefined;
      if (flags.precision === 'int8') {
        // The train split of the model's own run when it can be found (no test photo in calibration), else a folder.
        const run = flags.run ?? (await modelRunDir(flags.modelPath));
        if (flags.calibrationDir) calibration = flags.calibrationDir;
        else if (run) {
          const dataDir = flags.dataDir ?? (await runDataDir(run)) ?? resolveDataDir({});
          calibration = { dataDir, splitFile: path.join(run, 'split.json') };
        } else {
          calibration = defaultDataDir(flags.dataDir);
        }
      }
      const verifySource =
        flags.verifyImages ?? (typeof calibration === 'string' ? calibration : defaultDataDir(flags.dataDir));
      const verifyImages =
        flags.verifyCount > 0 && verifySource ? spread(await listImages(verifySource), flags.verifyCount) : [];
      const result = await withInterrupt((signal) =>
        buildEngine({
          model: flags.modelPath,
          out,
          backend: flags.backend as BuildBackend,
          precision: flags.precision as Precision,
          calibrationCount: flags.calibrationImages,
          method: flags.method as CalibrationMethod,
          percentile: flags.percentile,
          keepFloat: flags.keepFloat ? flags.keepFloat.split(',').map((s) => s.trim()).filter(Boolean) : [],
          reduceRange: flags.reduceRange === 'auto' ? 'auto' : flags.reduceRange === 'on',
          check: flags.check,
          verifyImages,
          signal,
          ...(calibration ? { calibration } : {}),
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
          result.calibration
            ? `calibration: ${result.calibration.method} on ${result.calibration.images} photos ` +
              `(${result.calibration.skipped} skipped); table ${result.calibration.table}; TensorRT cache ${result.calibration.tensorrt_cache}`
            : '',
          v
            ? `vs FP32 on ${v.images} photos: top-1 agreement ${(v.top1_agreement * 100).toFixed(1)}%, logit cosine ` +
              `mean ${v.mean_logit_cosine.toFixed(4)} (min ${v.min_logit_cosine.toFixed(4)})`
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
function defaultDataDir(flag: string | undefined): string | undefined {
  try {
    return resolveDataDir({ flag });
  } catch {
    return existsSync(DEFAULT_DOWNLOAD_DIR) ? DEFAULT_DOWNLOAD_DIR : undefined;
  }
}
