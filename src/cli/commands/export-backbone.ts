import type { Command } from 'commander';

import { BACKBONE_ARCHS, exportBackbone, type BackboneArch } from '../../torch/backbone.js';
import { parseInteger, parseNumber } from '../parse.js';

export function registerExportBackboneCommand(program: Command): void {
  program
    .command('export-backbone')
    .description('write a scripted TorchScript classifier returning (logits, embedding)')
    .requiredOption('--arch <arch>', `architecture: ${BACKBONE_ARCHS.join(' | ')}`)
    .requiredOption('--out <file>', 'output TorchScript file (.pt)')
    .option(
      '--weights <file>',
      'pretrained .safetensors (torchvision keys: mobilenet_v2; timm keys: rexnet_150; default: none (random initialisation))',
    )
    .option('--timm', 'rexnet_150 from the timm package with its pretrained weights (needs timm)')
    .option('--num-classes <n>', 'classes of the new head', parseInteger('--num-classes', 2, 100_000), 5)
    .option(
      '--embedding-size <n>',
      'projection size of the embedding (0: pooled features)',
      parseInteger('--embedding-size', 0, 65_536),
      0,
    )
    .option('--dropout <p>', 'dropout before the classifier, in [0, 1)', parseNumber('--dropout', 0, 0.999_999), 0.2)
    .option(
      '--freeze-bn',
      'BatchNorms keep their running statistics in train mode too (weight/bias still train); for pretrained weights',
    )
    .option(
      '--verify-imagenet <dir>',
      'classify the images in <dir> with the pretrained ImageNet head first; fail on a wrong top-1 ' +
        '(default: the samples/ beside the weights file, when there are some)',
    )
    .option('--no-verify-imagenet', 'skip the ImageNet check')
    .option('--seed <n>', 'seed of the random initialisation', parseInteger('--seed', 0, 2 ** 31 - 1), 0)
    .option('--python <path>', 'Python with torch (default: TRT_FLOWERS_PYTHON or /usr/bin/python3)')
    .action(
      async (opts: {
        arch: string;
        out: string;
        weights?: string;
        timm?: boolean;
        numClasses: number;
        embeddingSize: number;
        dropout: number;
        freezeBn?: boolean;
        verifyImagenet?: string | boolean;
        seed: number;
        python?: string;
      }) => {
        const result = await exportBackbone({
          arch: opts.arch as BackboneArch,
          out: opts.out,
          numClasses: opts.numClasses,
          embeddingSize: opts.embeddingSize,
          dropout: opts.dropout,
          seed: opts.seed,
          freezeBn: opts.freezeBn === true,
          timm: opts.timm === true,
          ...(opts.weights ? { weights: opts.weights } : {}),
          ...(typeof opts.verifyImagenet === 'string' || opts.verifyImagenet === false
            ? { verifyImagenet: opts.verifyImagenet }
            : {}),
          ...(opts.python ? { python: opts.python } : {}),
        });
        process.stdout.write(`${JSON.stringify(result)}\n`);
      },
    );
}
