import type { Command } from 'commander';

import { parseInteger } from '../parse.js';

interface ExportTritonFlags {
  modelPath: string;
  out: string;
  name?: string;
  version: number;
  maxBatch?: number;
  maxQueueDelayUs: number;
  instances: number;
  json?: boolean;
}

export function registerExportTritonCommand(program: Command): void {
  program
    .command('export-triton')
    .description(
      'write a Triton / KServe model repository: config.pbtxt, version folder, labels, and a preprocessing ensemble ' +
        'that takes encoded images',
    )
    .requiredOption('--model-path <file>', '.onnx, TensorRT .engine/.plan or TorchScript .pt (with its metadata)')
    .requiredOption('--out <dir>', 'repository folder (other models and versions in it are kept)')
    .option('--name <name>', "model name in the repository (default: the model file's name)")
    .option('--version <n>', 'version folder', parseInteger('--version', 1, 2 ** 31 - 1), 1)
    .option(
      '--max-batch <n>',
      "max_batch_size (default: the engine's largest batch, else 16)",
      parseInteger('--max-batch', 1, 1 << 20),
    )
    .option(
      '--max-queue-delay-us <n>',
      'dynamic_batching max_queue_delay_microseconds',
      parseInteger('--max-queue-delay-us', 0, 60_000_000),
      5000,
    )
    .option('--instances <n>', 'instance_group count', parseInteger('--instances', 1, 1024), 1)
    .option('--json', 'print the report as JSON')
    .action(async (flags: ExportTritonFlags) => {
      const { exportTritonRepository } = await import('../../serve/triton/export.js');
      const report = await exportTritonRepository({
        modelPath: flags.modelPath,
        out: flags.out,
        version: flags.version,
        maxQueueDelayUs: flags.maxQueueDelayUs,
        instances: flags.instances,
        ...(flags.name ? { name: flags.name } : {}),
        ...(flags.maxBatch ? { maxBatch: flags.maxBatch } : {}),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const m = report.models;
      process.stdout.write(
        `wrote ${report.repository}: ${m.classifier} version ${report.version} (FP32 input), ${m.preprocess} ` +
          `(Python backend), ${m.ensemble} (encoded images in)\n${report.files.map((f) => `  ${f}`).join('\n')}\n`,
      );
    });
}
