import { existsSync } from 'node:fs';
import path from 'node:path';

import type { Command } from 'commander';

import { withInterrupt } from '../interrupt.js';
import { parseInteger, parseNumber } from '../parse.js';

interface ExportOnnxFlags {
  checkpointPath: string;
  outputPath: string;
  opset?: number;
  staticBatch?: number | boolean;
  verifyImages?: string;
  verify: boolean;
  verifyCount: number;
  tolerance: number;
  dataDir?: string;
  python?: string;
  json?: boolean;
}

/** Photos for the verification: --verify-images, else the checkpoint's run data, else --data-dir / TRT_FLOWERS_DATA. */
async function verificationImages(flags: ExportOnnxFlags): Promise<string | undefined> {
  if (flags.verifyImages) return flags.verifyImages;
  const [{ resolveDataDir }, { DEFAULT_DOWNLOAD_DIR, runDataDir }] = await Promise.all([
    import('../../data/fetch.js'),
    import('../../train/data-source.js'),
  ]);
  const runDir = path.join(path.dirname(path.resolve(flags.checkpointPath)), '..', '..');
  const fromRun = await runDataDir(runDir);
  if (fromRun && !flags.dataDir) return fromRun;
  try {
    return resolveDataDir({ flag: flags.dataDir });
  } catch {
    return existsSync(DEFAULT_DOWNLOAD_DIR) ? DEFAULT_DOWNLOAD_DIR : undefined;
  }
}

export function registerExportOnnxCommand(program: Command): void {
  program
    .command('export-onnx')
    .description('export a TorchScript checkpoint to ONNX and verify it against libtorch on real photos')
    .requiredOption('--checkpoint-path <file>', 'TorchScript checkpoint (e.g. runs/<id>/checkpoints/best/model.pt)')
    .option('--output-path <file>', 'output .onnx file', 'models/flower_classifier.onnx')
    .option(
      '--opset <n>',
      'ONNX opset (default: the highest the installed torch exports)',
      parseInteger('--opset', 13, 30),
    )
    .option('--static-batch [n]', 'a fixed batch size (default 1) instead of a dynamic batch axis')
    .option(
      '--verify-images <dir>',
      "real photos to verify with (default: the checkpoint's training data, or --data-dir)",
    )
    .option('--verify-count <n>', 'photos taken from the folder', parseInteger('--verify-count', 1, 100_000), 32)
    .option('--tolerance <x>', 'largest accepted |logit difference|', parseNumber('--tolerance', 0, 1), 1e-4)
    .option('--no-verify', 'skip the libtorch vs ONNX Runtime comparison')
    .option('--data-dir <dir>', 'tf_flowers folder (or TRT_FLOWERS_DATA)')
    .option('--python <path>', 'Python with torch and onnx (default: TRT_FLOWERS_PYTHON or /usr/bin/python3)')
    .option('--json', 'print the report as JSON')
    .action(async (flags: ExportOnnxFlags) => {
      const staticBatch =
        flags.staticBatch === undefined || flags.staticBatch === false
          ? undefined
          : flags.staticBatch === true
            ? 1
            : parseInteger('--static-batch', 1, 4096)(String(flags.staticBatch));
      const { exportOnnx } = await import('../../export/onnx.js');
      const images = flags.verify ? await verificationImages(flags) : undefined;
      const report = await withInterrupt((signal) =>
        exportOnnx({
          checkpoint: flags.checkpointPath,
          out: flags.outputPath,
          verify: flags.verify,
          verifyCount: flags.verifyCount,
          tolerance: flags.tolerance,
          signal,
          ...(flags.opset ? { opset: flags.opset } : {}),
          ...(staticBatch ? { staticBatch } : {}),
          ...(images ? { verifyImages: images } : {}),
          ...(flags.python ? { python: flags.python } : {}),
          onLog: flags.json ? undefined : (line) => process.stderr.write(`${line}\n`),
        }),
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const v = report.verification;
      process.stdout.write(
        [
          `wrote ${report.out} (${(report.bytes / 1e6).toFixed(1)} MB, opset ${report.opset}, ` +
            `${report.dynamic_batch ? 'dynamic batch' : `static batch ${report.static_batch}`}, ` +
            `${report.metadata.classes.length} classes, ${report.image_size}px)`,
          v
            ? `verified on ${v.images} photos: max |logit diff| ${v.max_abs_diff_logits.toExponential(2)} ` +
              `(tolerance ${v.tolerance}), max |embedding diff| ${v.max_abs_diff_embedding.toExponential(2)}, ` +
              `top-1 agreement ${(v.top1_agreement * 100).toFixed(1)}%`
            : 'not verified (--no-verify)',
          `report: ${report.report}`,
        ].join('\n') + '\n',
      );
    });
}
