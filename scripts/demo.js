#!/usr/bin/env node
// The longest pipeline that exists today, on real photos: TorchScript backbone -> a few training steps ->
// save -> reload -> predict one photo. Options: --data-dir DIR (or TRT_FLOWERS_DATA), --weights FILE
// (or TRT_FLOWERS_WEIGHTS), --steps N, --size PX, --out DIR.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { exportBackbone, preprocessBatch, TorchModel, Trainer } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    weights: { type: 'string' },
    steps: { type: 'string', default: '8' },
    size: { type: 'string', default: '160' },
    out: { type: 'string', default: join(root, 'models', 'demo') },
  },
});

const CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
const sharedData = resolve(root, '../shared/data/flower_photos');
const dataDir = args['data-dir'] ?? process.env.TRT_FLOWERS_DATA ?? (existsSync(sharedData) ? sharedData : undefined);
if (!dataDir || !existsSync(dataDir)) {
  console.error(
    'demo: no photos found. Point at a tf_flowers folder (daisy/ dandelion/ roses/ sunflowers/ tulips/) with ' +
      '--data-dir DIR or TRT_FLOWERS_DATA=DIR.',
  );
  process.exit(1);
}
const sharedWeights = resolve(
  root,
  '../shared/models/mobilenet_v2_imagenet/mobilenet_v2_imagenet_fp32_torchvision.safetensors',
);
const weights =
  args.weights ?? process.env.TRT_FLOWERS_WEIGHTS ?? (existsSync(sharedWeights) ? sharedWeights : undefined);
const steps = Number(args.steps);
const size = Number(args.size);
const outDir = resolve(args.out);
await mkdir(outDir, { recursive: true });

const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

// 1. Backbone.
const backbone = join(outDir, 'backbone.pt');
const exported = await exportBackbone({ arch: 'mobilenet_v2', out: backbone, ...(weights ? { weights } : {}) });
console.log(
  `[${elapsed()}] backbone: MobileNetV2, ${exported.parameters.toLocaleString()} parameters, ` +
    `${weights ? 'ImageNet-pretrained' : 'random init (no --weights)'} -> ${backbone}`,
);

// 2. Photos: the first images of each class, sorted by name; the last one of each class is held out.
const perClass = CLASSES.map((c) =>
  readdirSync(join(dataDir, c))
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort()
    .slice(0, 9)
    .map((f) => join(dataDir, c, f)),
);
const heldOut = perClass.map((files) => files.pop());

// 3. Train a few steps: each batch has one query per class, a positive of the same class, a negative of another.
const model = await TorchModel.load(backbone);
const trainer = new Trainer(model, { optimizer: 'adamw', learningRate: 3e-4, weightDecay: 1e-4 });
const opts = { size };
for (let step = 0; step < steps; step++) {
  const pick = (c, k) => perClass[c][k % perClass[c].length];
  const q = CLASSES.map((_, c) => pick(c, 2 * step));
  const p = CLASSES.map((_, c) => pick(c, 2 * step + 1));
  const n = CLASSES.map((_, c) => pick((c + 1 + (step % 4)) % CLASSES.length, step));
  const [query, positive, negative] = await Promise.all([q, p, n].map((files) => preprocessBatch(files, opts)));
  const r = await trainer.step({
    query,
    positive,
    negative,
    shape: [CLASSES.length, 3, size, size],
    labels: Int32Array.from(CLASSES.keys()),
  });
  console.log(
    `[${elapsed()}] step ${step + 1}/${steps}: loss ${r.loss.toFixed(4)} (ce ${r.ce.toFixed(4)}, ` +
      `contrastive ${r.contrastive.toFixed(4)}), batch accuracy ${r.correct}/${r.count}`,
  );
}

// 4. Save, reload, predict.
const trained = join(outDir, 'model.pt');
await model.setTraining(false);
await model.save(trained);
await trainer.dispose();
await model.dispose();
console.log(`[${elapsed()}] saved ${trained}`);

const reloaded = await TorchModel.load(trained);
const photo = heldOut[2];
const input = await preprocessBatch([photo], opts);
const { logits } = await reloaded.forward(input, [1, 3, size, size]);
const max = Math.max(...logits);
const exp = Array.from(logits, (v) => Math.exp(v - max));
const sum = exp.reduce((a, b) => a + b, 0);
const probabilities = Object.fromEntries(
  CLASSES.map((c, i) => [c, Number((exp[i] / sum).toFixed(4))]).sort((a, b) => b[1] - a[1]),
);
const [predicted, confidence] = Object.entries(probabilities)[0];
console.log(
  JSON.stringify({ image_path: photo, predicted_class: predicted, confidence, all_probabilities: probabilities }),
);
await reloaded.dispose();
console.log(`[${elapsed()}] demo finished`);
