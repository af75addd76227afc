import type { Command } from 'commander';

import { BACKBONE_ARCHS, exportBackbone, type BackboneArch } from '../../export/backbone.js';
import { parseInteger } from '../parse.js';

export function registerExportBackboneCommand(program: Command): void {
  program
    .command('export-backbone')
    .description('write a scripted TorchScript classifier returning (logits, embedding)')
    .requiredOption('--arch <arch>', `architecture: ${BACKBONE_ARCHS.join(' | ')}`)
    .requiredOption('--out <file>', 'output TorchScript file (.pt)')
    .option('--weights <file>', 'torchvision-keyed .safetensors with pretrained weights')
    .option('--num-classes <n>', 'classes of the new head', parseInteger('--num-classes', 2, 100_000), 5)
    .option(
      '--embedding-size <n>',
      'projection size of the embedding (0: pooled features)',
      parseInteger('--embedding-size', 0, 65_536),
      0,
    )
    .option('--seed <n>', 'seed of the random initialisation', parseInteger('--seed', 0, 2 ** 31 - 1), 0)
    .option('--python <path>', 'Python with torch (default: TRT_FLOWERS_PYTHON or /usr/bin/python3)')
    .action(
      async (opts: {
        arch: string;
        out: string;
        weights?: string;
        numClasses: number;
        embeddingSize: number;
        seed: number;
        python?: string;
      }) => {
        const result = await exportBackbone({
          arch: opts.arch as BackboneArch,
          out: opts.out,
          numClasses: opts.numClasses,
          embeddingSize: opts.embeddingSize,
          seed: opts.seed,
          ...(opts.weights ? { weights: opts.weights } : {}),
          ...(opts.python ? { python: opts.python } : {}),
        });
        process.stdout.write(`${JSON.stringify(result)}\n`);
      },
    );
}
