/**
 * Training-step throughput: the native Trainer.step (libtorch C++) against the same step in Python PyTorch
 * (scripts/bench_train_python.py), on the same TorchScript model file, in one run.
 *
 *   npx tsc -p tsconfig.build.json   # this script imports dist/
 *   node scripts/bench-train.js --model models/rexnet.pt [--batch 8] [--size 128] [--steps 10] [--warmup 3]
 *        [--threads 2] [--jit-optimize 0|1] [--channels-last] [--python-eager --arch rexnet_150 [--freeze-bn]] [--no-python] [--python /usr/bin/python3]
 *        [--device cuda [--amp] [--python-inputs host|device]]
 *
 * Both sides: the fixed input pattern x[i] = 1.5 * sin(0.37 * i) over the flat [3B, 3, size, size] batch (query,
 * positive, negative), labels i % classes, AdamW lr 1e-3 (weight decay 0), CE + the two cosine-embedding losses,
 * warm-up steps then the median of the timed steps. The two run one after the other, never side by side: two
 * torch thread pools on two cores slow both down many times over. --device cuda runs both on the GPU; --amp adds
 * fp16 autocast with dynamic loss scaling on both sides. Prints one JSON line with both and the ratio.
 */
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { defaultPython } from '../dist/util/python.js';
import { setJitOptimize, setThreads, TorchModel, Trainer } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const int = (name, fallback, lo = 1) => {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isInteger(v) || v < lo) throw new RangeError(`--${name} expects an integer >= ${lo}, received ${v}`);
  return v;
};

const modelPath = arg('model');
if (!modelPath) {
  process.stderr.write('usage: node scripts/bench-train.js --model FILE.pt [--batch 8] [--size 128] ...\n');
  process.exit(2);
}
const batch = int('batch', 8);
const size = int('size', 128);
const steps = int('steps', 10);
const warmup = int('warmup', 3, 0);
const threads = int('threads', 2);
const device = arg('device', 'cpu');
const amp = flag('amp');
// The native step with trainer.memory_format=channels_last (NHWC weights and batch); the Python side stays as the
// original project runs it (contiguous NCHW).
const channelsLast = flag('channels-last');

const pattern = (n, offset) => Float32Array.from({ length: n }, (_, i) => Math.sin((i + offset) * 0.37) * 1.5);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

async function benchNative() {
  setThreads(threads);
  setJitOptimize(arg('jit-optimize', '1') !== '0');
  const model = await TorchModel.load(resolve(modelPath), { device });
  const usedDevice = model.info.device;
  const per = batch * 3 * size * size;
  const shape = [batch, 3, size, size];
  // The same flat pattern as the Python side: query, positive and negative are consecutive slices.
  const query = pattern(per, 0);
  const positive = pattern(per, per);
  const negative = pattern(per, 2 * per);
  const probe = await model.forward(query.subarray(0, 2 * 3 * size * size), [2, 3, size, size]);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % probe.numClasses);
  const trainer = new Trainer(model, {
    optimizer: 'adamw',
    learningRate: 1e-3,
    weightDecay: 0,
    amp,
    ...(channelsLast ? { channelsLast } : {}),
  });
  const times = [];
  const losses = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const r = await trainer.step({ query, positive, negative, shape, labels });
    const dt = performance.now() - t0;
    losses.push(r.loss);
    if (i >= warmup) times.push(dt);
  }
  await trainer.dispose();
  await model.dispose();
  const sorted = [...times].sort((a, b) => a - b);
  const m = median(times);
  return {
    impl: 'native-libtorch',
    model: modelPath,
    batch_triplets: batch,
    images_per_step: 3 * batch,
    size,
    threads,
    device: usedDevice,
    amp,
    memory_format: channelsLast ? 'channels_last' : 'contiguous',
    warmup,
    steps,
    median_step_ms: round(m),
    p90_step_ms: round(sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)]),
    min_step_ms: round(sorted[0]),
    images_per_s: round((3 * batch) / (m / 1000), 2),
    first_loss: round(losses[0], 5),
    last_loss: round(losses.at(-1), 5),
  };
}

async function benchPython() {
  const args = [join(here, 'bench_train_python.py'), '--model', resolve(modelPath)];
  args.push('--batch', String(batch), '--size', String(size), '--steps', String(steps));
  args.push('--warmup', String(warmup), '--threads', String(threads), '--device', device);
  if (amp) args.push('--amp');
  if (arg('python-inputs')) args.push('--inputs', arg('python-inputs'));
  if (flag('python-eager')) {
    args.push('--eager', '--arch', arg('arch', ''));
    if (flag('freeze-bn')) args.push('--freeze-bn');
  }
  const { stdout } = await promisify(execFile)(arg('python', defaultPython()), args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

const native = await benchNative();
const python = flag('no-python') ? null : await benchPython();
const report = { native, python };
if (python) {
  report.python_over_native_step_time = round(python.median_step_ms / native.median_step_ms, 3);
  report.native_speedup = `${report.python_over_native_step_time}x (>1: native faster)`;
}
process.stdout.write(`${JSON.stringify(report)}\n`);
