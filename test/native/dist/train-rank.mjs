// One rank of the data-parallel equality test. With WORLD_SIZE set it joins the group, attaches the trainer and takes
// its half of every batch; without it, it trains alone on the whole batch. The batches are the same pseudo-random
// images in every process. It saves the model to DIST_TEST_OUT and prints each step's `skipped` as one JSON line.
// DIST_TEST_POISON_STEP=k: rank 1 puts an infinite pixel into step k's batch (the loss scaler must skip on all).
import { TorchModel } from '../../../dist/torch/TorchModel.js';
import { Trainer } from '../../../dist/torch/Trainer.js';
import { ProcessGroup } from '../../../dist/dist/ProcessGroup.js';
import { manualSeed, setThreads } from '../../../dist/binding/runtime.js';

const steps = Number(process.env.DIST_TEST_STEPS ?? 4);
const batch = Number(process.env.DIST_TEST_BATCH ?? 8);
const size = 32;
const poison = Number(process.env.DIST_TEST_POISON_STEP ?? -1);
setThreads(1);
manualSeed(1);

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;

const model = await TorchModel.load(process.env.DIST_TEST_MODEL);
const trainer = new Trainer(model, {
  optimizer: process.env.DIST_TEST_OPTIMIZER ?? 'adamw',
  learningRate: Number(process.env.DIST_TEST_LR ?? 0.01),
  weightDecay: 0.01,
  gradScaler: poison >= 0,
  initScale: 1024,
});
const pg = process.env.WORLD_SIZE ? await ProcessGroup.init() : undefined;
const rank = pg?.rank ?? 0;
const world = pg?.worldSize ?? 1;
let buckets = [];
if (pg) buckets = await pg.attach(trainer, { bucketBytes: 16 << 10, firstBucketBytes: 4 << 10 });
const per = batch / world;
const image = 3 * size * size;
const skipped = [];
for (let s = 0; s < steps; s++) {
  const full = [0, 1, 2].map(() => Float32Array.from({ length: batch * image }, random));
  const labels = Int32Array.from({ length: batch }, (_, i) => (i + s) % 5);
  const [q, p, n] = full.map((a) => a.slice(rank * per * image, (rank + 1) * per * image));
  if (s === poison && rank === 1) q[0] = Infinity;
  const r = await trainer.step({
    query: q,
    positive: p,
    negative: n,
    shape: [per, 3, size, size],
    labels: labels.slice(rank * per, (rank + 1) * per),
  });
  skipped.push(r.skipped);
}
await model.save(process.env.DIST_TEST_OUT);
const stats = pg?.syncStats();
await pg?.destroy();
console.log(JSON.stringify({ rank, skipped, buckets, stats }));
