#!/usr/bin/env node
// The longest pipeline that exists today, on real photos: a pretrained TorchScript backbone -> a short training run
// (trt-flowers train: the head phase on cached backbone features of every train photo, optionally fine-tune epochs,
// validation, checkpoints, test metrics) -> ONNX export verified against libtorch -> predict one held-out photo with
// both backends through the Engine API -> an INT8 engine -> a short bench of the engines built. Options: --data-dir
// DIR (or TRT_FLOWERS_DATA), --weights FILE (or TRT_FLOWERS_WEIGHTS), --head-epochs N (6), --epochs N (fine-tune
// epochs after it, 0), --per-class N (0: every photo), --size PX (224).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import {
  buildEngine,
  Engine,
  exportOnnx,
  formatBenchTable,
  loadTrainConfig,
  pyJson,
  readSplitManifest,
  runBench,
  toRecord,
  train,
  writeBenchReports,
} from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    weights: { type: 'string' },
    'head-epochs': { type: 'string', default: '6' },
    epochs: { type: 'string' },
    'per-class': { type: 'string' },
    size: { type: 'string' },
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
// Pretrained: the head phase over every photo at 224 px. Without weights the head alone cannot classify (the
// features mean nothing yet): a short fine-tune of the whole network on a subset instead.
const size = Number(args.size ?? (weights ? 224 : 128));
const perClass = Number(args['per-class'] ?? (weights ? 0 : 40));
const epochs = Number(args.epochs ?? (weights ? 0 : 2));
const headEpochs = weights ? Number(args['head-epochs']) : 0;
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

// 1 + 2. Backbone export and a short real training run, through the same code as `trt-flowers train`.
const { config, raw } = loadTrainConfig({
  overrides: [
    'model.arch=mobilenet_v2',
    `model.weights=${weights ?? 'null'}`,
    `model.freeze_bn=${weights ? 'true' : 'false'}`,
    `model.learning_rate=${weights ? 0.0001 : 0.0003}`,
    `model.warmup_epochs=${weights ? 0.3 : 0.5}`,
    `model.head_epochs=${headEpochs}`,
    'model.head_learning_rate=0.001',
    `data.image_size=${size}`,
    `trainer.max_epochs=${epochs}`,
    `trainer.limit_per_class=${perClass}`,
    `trainer.runs_dir=${join(root, 'runs')}`,
    'trainer.progress=plain',
  ],
});
console.log(
  `[${elapsed()}] training MobileNetV2 (${weights ? 'ImageNet-pretrained' : 'random init: no --weights'}) on ` +
    `${perClass > 0 ? `${perClass} photos per class` : 'every photo'} from ${dataDir}`,
);
const trainStart = performance.now();
const result = await train({ config, rawConfig: raw, dataDir });
console.log(
  `[${elapsed()}] run ${result.runDir} (${((performance.now() - trainStart) / 1000).toFixed(0)} s): ${result.status}, ` +
    `best ${result.bestEpoch === 0 ? 'after the head phase' : `epoch ${result.bestEpoch}`}, ` +
    `val_loss ${result.bestValLoss?.toFixed(4)}, test accuracy ${result.test?.report.accuracy.toFixed(4)} ` +
    `on ${result.test?.report.count} photos; plots in ${join(result.runDir, 'plots')}`,
);

// 3. Export the best checkpoint to ONNX, verified against libtorch on real photos (trt-flowers export-onnx).
const best = join(result.runDir, 'checkpoints', 'best', 'model.pt');
const onnxPath = join(root, 'models', 'demo', 'flower_classifier.onnx');
const exported = await exportOnnx({
  checkpoint: best,
  out: onnxPath,
  verifyImages: (result.test?.paths ?? []).slice(0, 16).map((p) => join(dataDir, p)),
});
const v = exported.verification;
console.log(
  `[${elapsed()}] exported ${onnxPath} (opset ${exported.opset}): max |logit diff| vs libtorch ` +
    `${v.max_abs_diff_logits.toExponential(2)}, top-1 agreement ${(v.top1_agreement * 100).toFixed(0)}% on ${v.images} photos`,
);

// 4. Predict a test photo the model never trained on, with both backends (trt-flowers predict).
const photo = join(dataDir, result.test?.paths[0] ?? '');
for (const file of [best, onnxPath]) {
  const engine = await Engine.load(file);
  try {
    const [p] = await engine.infer([photo]);
    console.log(`${engine.info.backend.padEnd(11)} ${pyJson(toRecord(photo, p))}`);
  } finally {
    await engine.dispose();
  }
}
// 5. An INT8 engine for ONNX Runtime (trt-flowers build-engine --precision int8): entropy calibration on the run's
// train split, a whole-graph Q/DQ model, its accuracy on the test split next to the FP32 model's.
const split = await readSplitManifest(join(result.runDir, 'split.json'));
const built = await buildEngine({
  model: onnxPath,
  out: join(root, 'models', 'demo', 'flower_classifier.int8.onnx'),
  precision: 'int8',
  backend: 'onnxruntime',
  calibration: { dataDir, splitFile: join(result.runDir, 'split.json') },
  calibrationCount: 200,
  evaluate: {
    name: 'test',
    images: split.test.map((item) => join(dataDir, item.path)),
    labels: split.test.map((item) => item.label),
  },
});
const ev = built.evaluation;
console.log(
  `[${elapsed()}] built ${built.file} (int8, ${built.calibration.images} calibration photos): test accuracy ` +
    `${(ev.engine_accuracy * 100).toFixed(1)}% vs FP32 ${(ev.fp32_accuracy * 100).toFixed(1)}% on ${ev.images} photos`,
);

// 6. A short benchmark of the engines the demo built (trt-flowers bench): libtorch, ONNX Runtime, and any INT8 model
// beside the ONNX one. Few iterations to stay quick; `npx trt-flowers bench --iterations 1000` for real figures.
const demoModels = join(root, 'models', 'demo');
const int8 = readdirSync(demoModels)
  .filter((f) => /\.int8\.onnx$/.test(f))
  .map((f) => join(demoModels, f));
const bench = await runBench({
  models: [best, onnxPath, ...int8],
  images: dataDir,
  imageCount: 32,
  iterations: 50,
  warmupMs: 200,
  durationS: 1,
  batches: [1, 8],
  command: 'npm run demo (step 6)',
  onLog: (line) => console.log(`  [bench] ${line}`),
});
await writeBenchReports(bench, {
  json: join(demoModels, 'bench.json'),
  markdown: join(demoModels, 'bench.md'),
  plot: join(demoModels, 'bench.png'),
});
console.log(
  `[${elapsed()}] bench (reports in ${join(demoModels, 'bench.{json,md,png}')}):\n${formatBenchTable(bench)}`,
);
console.log(`[${elapsed()}] demo finished`);
