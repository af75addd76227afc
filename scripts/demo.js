#!/usr/bin/env node
// The longest pipeline that exists today, on real photos: a pretrained TorchScript backbone -> a short training run
// (trt-flowers train on a subset: epochs, validation, checkpoints, plots, test metrics) -> ONNX export verified
// against libtorch -> predict one held-out photo with both backends through the Engine API -> an INT8 engine ->
// a short bench of the engines built. Options: --data-dir DIR (or TRT_FLOWERS_DATA), --weights FILE (or TRT_FLOWERS_WEIGHTS), --epochs N,
// --per-class N, --size PX.
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
  `[${elapsed()}] run ${result.runDir}: ${result.status}, best epoch ${result.bestEpoch}, ` +
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
