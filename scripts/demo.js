#!/usr/bin/env node
// The longest pipeline that exists today, on real photos: a pretrained TorchScript backbone -> a short training run
// (trt-flowers train on a subset: epochs, validation, checkpoints, plots, test metrics) -> reload the best model ->
// predict one held-out photo. Options: --data-dir DIR (or TRT_FLOWERS_DATA), --weights FILE (or
// TRT_FLOWERS_WEIGHTS), --epochs N, --per-class N, --size PX.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { loadTrainConfig, preprocessBatch, TorchModel, train } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    weights: { type: 'string' },
    epochs: { type: 'string', default: '2' },
    'per-class': { type: 'string', default: '40' },
    size: { type: 'string', default: '128' },
  },
});

const sharedData = resolve(root, '../shared/data/flower_photos');
const dataDir = args['data-dir'] ?? process.env.TRT_FLOWERS_DATA ?? (existsSync(sharedData) ? sharedData : undefined);
if (!dataDir || !existsSync(dataDir)) {
  console.error(
    'demo: no photos found. Point at a tf_flowers folder (daisy/ dandelion/ roses/ sunflowers/ tulips/) with ' +
      '--data-dir DIR or TRT_FLOWERS_DATA=DIR (or fetch it: npx trt-flowers data fetch).',
  );
  process.exit(1);
}
const sharedWeights = resolve(
  root,
  '../shared/models/mobilenet_v2_imagenet/mobilenet_v2_imagenet_fp32_torchvision.safetensors',
);
const weights =
  args.weights ?? process.env.TRT_FLOWERS_WEIGHTS ?? (existsSync(sharedWeights) ? sharedWeights : undefined);
const size = Number(args.size);
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

// 1 + 2. Backbone export and a short real training run, through the same code as `trt-flowers train`.
const { config, raw } = loadTrainConfig({
  overrides: [
    'model.arch=mobilenet_v2',
    `model.weights=${weights ?? 'null'}`,
    `model.freeze_bn=${weights ? 'true' : 'false'}`,
    'model.learning_rate=0.0003',
    'model.warmup_epochs=0.5',
    `data.image_size=${size}`,
    'data.batch_size=8',
    `trainer.max_epochs=${Number(args.epochs)}`,
    `trainer.limit_per_class=${Number(args['per-class'])}`,
    `trainer.runs_dir=${join(root, 'runs')}`,
    'trainer.progress=plain',
  ],
});
console.log(
  `[${elapsed()}] training MobileNetV2 (${weights ? 'ImageNet-pretrained' : 'random init: no --weights'}) on ` +
    `${args['per-class']} photos per class from ${dataDir}`,
);
const result = await train({ config, rawConfig: raw, dataDir });
console.log(
  `[${elapsed()}] run ${result.runDir}: ${result.status}, best epoch ${result.bestEpoch + 1}, ` +
    `val_loss ${result.bestValLoss?.toFixed(4)}, test accuracy ${result.test?.report.accuracy.toFixed(4)} ` +
    `on ${result.test?.report.count} photos; plots in ${join(result.runDir, 'plots')}`,
);

// 3 + 4. Reload the best checkpoint and predict a test photo it never trained on.
const best = join(result.runDir, 'checkpoints', 'best', 'model.pt');
const model = await TorchModel.load(best);
const photo = join(dataDir, result.test?.paths[0] ?? '');
const input = await preprocessBatch([photo], { size });
const { logits } = await model.forward(input, [1, 3, size, size]);
await model.dispose();
const classes = config.data.classes;
const max = Math.max(...logits);
const exp = Array.from(logits, (v) => Math.exp(v - max));
const sum = exp.reduce((a, b) => a + b, 0);
const probabilities = Object.fromEntries(
  classes.map((c, i) => [c, Number((exp[i] / sum).toFixed(4))]).sort((a, b) => b[1] - a[1]),
);
const [predicted, confidence] = Object.entries(probabilities)[0];
console.log(
  JSON.stringify({ image_path: photo, predicted_class: predicted, confidence, all_probabilities: probabilities }),
);
console.log(`[${elapsed()}] demo finished`);
