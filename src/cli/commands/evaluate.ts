import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from 'commander';
import YAML from 'yaml';

import { loadTrainConfig, parseRunConfig, type TrainConfig } from '../../config/index.js';
import type { RawConfig } from '../../config/load.js';
import type { SplitName } from '../../data/split.js';
import { withInterrupt } from '../interrupt.js';
import { parseChoice, parseInteger } from '../parse.js';

interface EvaluateFlags {
  model: string;
  split: SplitName;
  run?: string;
  dataDir?: string;
  device?: string;
  batchSize?: number;
  json?: boolean;
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate a TorchScript model on a split: losses, accuracy, F1, per-class precision/recall')
    .argument('[overrides...]', 'config overrides (ignored with --run)')
    .requiredOption('--model <file>', 'TorchScript model (.pt)')
    .option('--split <name>', 'train | val | test', 'test')
    .option('--run <runDir>', "use a training run's config and split.json")
    .option(
      '--data-dir <dir>',
      "tf_flowers folder (else the --run's own, config data.root, TRT_FLOWERS_DATA, or a download)",
    )
    .option('--device <device>', 'auto | cpu | cuda', 'auto')
    .option(
      '--batch-size <n>',
      "images per forward (default: the config's data.batch_size)",
      parseInteger('--batch-size', 1, 4096),
    )
    .option('--json', 'print JSON')
    .action(async (overrides: string[], flags: EvaluateFlags) => {
      parseChoice('--split', flags.split, ['train', 'val', 'test']);
      let config: TrainConfig;
      if (flags.run) {
        const text = await fs.readFile(path.join(flags.run, 'config.yaml'), 'utf8');
        config = parseRunConfig(YAML.parse(text) as RawConfig);
      } else {
        config = loadTrainConfig({ overrides }).config;
      }
      const [
        { runtimeInfo },
        { resolveTrainingData, runDataDir },
        { evaluateSplit },
        { evalOptionsOf },
        { openEvalData },
        { TorchModel },
      ] = await Promise.all([
        import('../../binding/runtime.js'),
        import('../../train/data-source.js'),
        import('../../train/evaluate.js'),
        import('../../train/options.js'),
        import('../../train/run.js'),
        import('../../torch/TorchModel.js'),
      ]);
      await withInterrupt(async (signal) => {
        // A run's photos are where it was trained from (params.json) unless a flag says otherwise.
        const dataDir = await resolveTrainingData(
          flags.dataDir ?? (flags.run ? await runDataDir(flags.run) : undefined),
          config,
          signal,
        );
        const splitFile = flags.run ? path.join(flags.run, 'split.json') : undefined;
        const loader = await openEvalData(config, dataDir, splitFile, signal);
        const device =
          flags.device === 'auto' || !flags.device ? (runtimeInfo().cudaAvailable ? 'cuda' : 'cpu') : flags.device;
        await using model = await TorchModel.load(flags.model, { device });
        const r = await evaluateSplit(model, loader, flags.split, {
          ...evalOptionsOf(config),
          signal,
          ...(flags.batchSize ? { batchSize: flags.batchSize } : {}),
        });
        const classes = config.data.classes;
        const out = {
          model: flags.model,
          split: flags.split,
          images: r.report.count,
          loss: r.losses.loss,
          ce: r.losses.ce,
          contrastive: r.losses.contrastive,
          accuracy: r.report.accuracy,
          f1_micro: r.report.f1Micro,
          f1_macro: r.report.f1Macro,
          per_class: Object.fromEntries(
            r.report.perClass.map((c, i) => [
              classes[i],
              { precision: c.precision, recall: c.recall, f1: c.f1, support: c.support },
            ]),
          ),
          confusion: r.report.confusion,
          images_per_second: r.imagesPerSecond,
        };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        const lines = [
          `${flags.split}: ${out.images} images, accuracy ${out.accuracy.toFixed(4)}, F1 micro ${out.f1_micro.toFixed(4)}, ` +
            `F1 macro ${out.f1_macro.toFixed(4)}, loss ${out.loss.toFixed(4)} (ce ${out.ce.toFixed(4)}, contrastive ${out.contrastive.toFixed(4)})`,
          `${'class'.padEnd(12)} precision  recall  f1      support`,
          ...classes.map((c, i) => {
            const m = r.report.perClass[i];
            return `${c.padEnd(12)} ${m?.precision.toFixed(4)}     ${m?.recall.toFixed(4)}  ${m?.f1.toFixed(4)}  ${m?.support}`;
          }),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });
}
