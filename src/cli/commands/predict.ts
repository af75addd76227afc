import type { Command } from 'commander';
import cliProgress from 'cli-progress';

import { writeFileAtomic } from '../../util/fs.js';
import type { EngineLoadOptions } from '../../engine/Engine.js';
import { TTA_MODES } from '../../engine/tta.js';
import type { BatchFormat } from '../../predict/predict.js';
import { pyJson } from '../../predict/pyjson.js';
import { resolveProgressMode, type ProgressMode } from '../../train/progress.js';
import { withInterrupt } from '../interrupt.js';
import { parseChoice, parseInteger } from '../parse.js';

interface EngineFlags {
  modelPath: string;
  device: string;
  backend: string;
  threads?: number;
  tta: string;
}

function engineOptions(flags: EngineFlags, batchSize?: number): EngineLoadOptions {
  return {
    backend: flags.backend as EngineLoadOptions['backend'],
    device: flags.device,
    tta: parseChoice('--tta', flags.tta, TTA_MODES),
    ...(flags.threads ? { threads: flags.threads } : {}),
    ...(batchSize ? { batchSize } : {}),
  };
}

function addEngineOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--model-path <file>', 'TorchScript .pt, .onnx or TensorRT .engine')
    .option('--device <device>', 'auto | cpu | cuda | cuda:N', 'auto')
    .option('--backend <name>', 'auto | libtorch | onnxruntime | tensorrt', 'auto')
    .option(
      '--threads <n>',
      'intra-op threads of the backend (default: libtorch min(cores, 4); ONNX Runtime the cores shared by its workers)',
      parseInteger('--threads', 1, 256),
    )
    .option(
      '--tta <mode>',
      'test-time augmentation: none | flip (each image and its mirror, averaged; 2x the work) | crops (the image ' +
        'and five 87.5% crops, averaged; 6x)',
      'none',
    );
}

export function registerPredictCommands(program: Command): void {
  addEngineOptions(
    program
      .command('predict')
      .description('classify one image and print {"image_path", "predicted_class", "confidence", "all_probabilities"}')
      .requiredOption('--image-path <file>', 'image (JPEG, PNG, WebP, TIFF, BMP, ...)'),
  )
    .option('--output-file <file>', 'also write the JSON here')
    .action(async (flags: EngineFlags & { imagePath: string; outputFile?: string }) => {
      const [{ Engine }, { toRecord }] = await Promise.all([
        import('../../engine/Engine.js'),
        import('../../predict/predict.js'),
      ]);
      await using engine = await Engine.load(flags.modelPath, engineOptions(flags));
      const [prediction] = await engine.infer([flags.imagePath]);
      const text = `${pyJson(toRecord(flags.imagePath, prediction!))}\n`;
      process.stdout.write(text);
      if (flags.outputFile) await writeFileAtomic(flags.outputFile, text);
    });

  addEngineOptions(
    program
      .command('batch-predict')
      .description('classify every image of a folder (recursive) or a file list; results streamed to a file')
      .option('--input-dir <dir>', 'folder of images, searched recursively')
      .option('--file-list <file>', 'text file with one image path per line'),
  )
    .requiredOption('--output-file <file>', 'results: a JSON array (one record per line) or CSV')
    .option('--format <format>', 'json | csv', 'json')
    .option('--batch-size <n>', 'images per backend call', parseInteger('--batch-size', 1, 4096), 32)
    .option('--progress <mode>', 'auto | bar | plain | json | none', 'auto')
    .action(
      async (
        flags: EngineFlags & {
          inputDir?: string;
          fileList?: string;
          outputFile: string;
          format: string;
          batchSize: number;
          progress: ProgressMode;
        },
      ) => {
        parseChoice('--format', flags.format, ['json', 'csv']);
        parseChoice('--progress', flags.progress, ['auto', 'bar', 'plain', 'json', 'none']);
        const [{ Engine }, { batchPredict, collectInputs }] = await Promise.all([
          import('../../engine/Engine.js'),
          import('../../predict/predict.js'),
        ]);
        const images = await collectInputs({
          ...(flags.inputDir ? { inputDir: flags.inputDir } : {}),
          ...(flags.fileList ? { fileList: flags.fileList } : {}),
        });
        if (images.length === 0)
          throw new RangeError('no images found (supported: jpg, jpeg, png, bmp, tif, tiff, webp)');
        await using engine = await Engine.load(flags.modelPath, engineOptions(flags, flags.batchSize));
        const progress = batchProgress(resolveProgressMode(flags.progress), images.length);
        const summary = await withInterrupt((signal) =>
          batchPredict({
            engine,
            images,
            outputFile: flags.outputFile,
            format: flags.format as BatchFormat,
            batchSize: flags.batchSize,
            signal,
            onProgress: progress.update,
          }),
        ).finally(progress.stop);
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        if (summary.cancelled) process.exitCode = 130;
      },
    );
}

/** Progress of a batch job: a bar on a terminal, a plain or JSON line every few seconds otherwise. */
function batchProgress(
  mode: ProgressMode,
  total: number,
): { update: (done: number, total: number, failed: number) => void; stop: () => void } {
  const started = performance.now();
  const rate = (done: number): number => done / Math.max(1e-9, (performance.now() - started) / 1000);
  if (mode === 'none') return { update() {}, stop() {} };
  if (mode === 'bar') {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'predict {bar} {value}/{total} | {ips} img/s | {failed} failed | ETA {eta_formatted}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { ips: '0.0', failed: 0 });
    return {
      update: (done, _t, failed) => bar.update(done, { ips: rate(done).toFixed(1), failed }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, t, failed) {
      const now = performance.now();
      if (now - last < 5000 && done !== t) return;
      last = now;
      const ips = rate(done);
      process.stderr.write(
        mode === 'json'
          ? `${JSON.stringify({ type: 'progress', done, total: t, failed, imagesPerSecond: ips })}\n`
          : `predicted ${done}/${t} (${failed} failed), ${ips.toFixed(1)} img/s\n`,
      );
    },
    stop() {},
  };
}
