/**
 * Preprocessing throughput, file path to normalised CHW float32 tensor, on the real photos.
 *
 *   npm run bench:preprocess -- [--data-dir ../shared/data/flower_photos] [--images 300] [--runs 5]
 *     [--jpeg both|native|sharp] [--in-flight 1,2,4,8] [--no-python] [--python /usr/bin/python3]
 *
 * For each setting (JPEG decoder × images in flight × libvips threads per image): one warm-up pass, then `runs` timed
 * passes over the same photos; reports the median and the spread in images/s, and the native/sharp ratio at each
 * in-flight count (both run in the same process, interleaved with nothing else). Also times the decoded-cache path
 * (what every epoch after the first costs). The baseline, in the same run on the same photos: the original project's
 * Python pipeline (PIL open -> RGB -> torchvision Resize((size, size)) -> ToTensor -> Normalize,
 * scripts/bench_preprocess_python.py) in 1 and 2 processes, and the CPU cost of ours relative to it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import { augmentInto, drawAugmentParams } from '../data/augment.js';
import { DEFAULT_AUGMENT } from '../data/options.js';
import { DEFAULT_CLASSES } from '../data/section.js';
import { loadAddon } from '../binding/loader.js';
import {
  decodeResized,
  jpegFastPathAvailable,
  normalizeInto,
  preprocessBatch,
  type JpegDecoderChoice,
} from '../data/preprocess.js';
import { Rng } from '../data/rng.js';
import { defaultPython, scriptsDir } from '../util/python.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
};
const root = path.resolve(arg('data-dir', process.env.TRT_FLOWERS_DATA ?? '../shared/data/flower_photos'));
const count = Number(arg('images', '300'));
const runs = Number(arg('runs', '5'));
const size = Number(arg('size', '224'));
const jpegArg = arg('jpeg', 'both');
if (!['both', 'native', 'sharp'].includes(jpegArg))
  throw new RangeError(`--jpeg: both, native or sharp, not ${jpegArg}`);
const inFlights = arg('in-flight', '1,2,4,8').split(',').map(Number);
const withPython = !process.argv.includes('--no-python');

// The same photos every time: evenly spaced over each class's sorted listing.
const files: string[] = [];
for (const c of DEFAULT_CLASSES) {
  const names = fs.readdirSync(path.join(root, c)).sort();
  const take = Math.ceil(count / DEFAULT_CLASSES.length);
  for (let i = 0; i < take; i++) files.push(path.join(root, c, names[Math.floor((i * names.length) / take)] as string));
}
files.length = Math.min(files.length, count);

interface Rate {
  median: number;
  min: number;
  max: number;
  /** Process CPU time (all threads, libvips' included) per image, median of the runs. */
  cpuMs: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function timed(fn: () => Promise<void>): Promise<Rate> {
  await fn(); // warm-up: file cache, libvips init, JIT
  const rates: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await fn();
    rates.push(files.length / ((performance.now() - t) / 1000));
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000 / files.length);
  }
  return { median: median(rates), min: Math.min(...rates), max: Math.max(...rates), cpuMs: median(cpu) };
}

// Wall-clock rates depend on what else runs on the machine; CPU time per image much less so, and
// cores / cpuMs is the rate the pipeline reaches when it has the cores to itself.
const cores = os.availableParallelism();
const fmt = (r: Rate): string =>
  `${r.median.toFixed(0).padStart(5)} img/s  (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)})  ` +
  `${r.cpuMs.toFixed(2)} CPU-ms/img -> ${((cores * 1000) / r.cpuMs).toFixed(0)} img/s on ${cores} idle cores`;

console.log(`${files.length} photos from ${root}, ${size}x${size}, ${os.availableParallelism()} cores, ${runs} runs`);
console.log(`sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}\n`);

if (jpegArg !== 'sharp' && !jpegFastPathAvailable()) {
  throw new Error('the native JPEG fast path is not available: build the addon with libjpeg (npm run build:native)');
}
const decoders: JpegDecoderChoice[] = jpegArg === 'both' ? ['sharp', 'native'] : [jpegArg as JpegDecoderChoice];
if (decoders.includes('native')) {
  // How many of the photos the fast path takes (the rest, e.g. non-sRGB ICC profiles, go to sharp).
  const decode = loadAddon().decodeJpegResized!;
  let fast = 0;
  for (const f of files) {
    if (
      await decode(fs.readFileSync(f), size, 'fill', 50_000_000).then(
        () => true,
        () => false,
      )
    )
      fast++;
  }
  console.log(`native fast path: ${fast} of ${files.length} photos (the others go to sharp)\n`);
}

const results = new Map<string, Rate>();
for (const jpeg of decoders) {
  // libvips threads per image only matter to sharp; the native path runs one libuv-pool thread per image.
  for (const threads of jpeg === 'sharp' ? [1, 2] : [1]) {
    sharp.concurrency(threads);
    for (const inFlight of inFlights) {
      const r = await timed(async () => {
        for (let i = 0; i < files.length; i += 32) {
          await preprocessBatch(files.slice(i, i + 32), { size, concurrency: inFlight, jpeg });
        }
      });
      if (threads === 1) results.set(`${jpeg}/${inFlight}`, r);
      console.log(`path -> tensor   jpeg ${jpeg.padEnd(6)}  threads ${threads}  in flight ${inFlight}  ${fmt(r)}`);
    }
  }
}
if (decoders.length === 2) {
  console.log('');
  for (const inFlight of inFlights) {
    const n = results.get(`native/${inFlight}`) as Rate;
    const s = results.get(`sharp/${inFlight}`) as Rate;
    console.log(
      `in flight ${inFlight}: native ${n.median.toFixed(0)} img/s vs sharp ${s.median.toFixed(0)} img/s = ` +
        `${(n.median / s.median).toFixed(2)}x wall, ${(s.cpuMs / n.cpuMs).toFixed(2)}x less CPU per image`,
    );
  }
  console.log('');
}
sharp.concurrency(1);
const lanczos = await timed(async () => {
  for (let i = 0; i < files.length; i += 32) {
    await preprocessBatch(files.slice(i, i + 32), { size, concurrency: 4, kernel: 'lanczos3', jpeg: 'sharp' });
  }
});
console.log(`path -> tensor   jpeg sharp   threads 1  in flight 4  ${fmt(lanczos)}  (sharp's default lanczos3 kernel)`);

const decoded = await Promise.all(files.map((f) => decodeResized(f, { size })));
const out = new Float32Array(3 * size * size * 32);
const cached = await timed(async () => {
  for (const [i, hwc] of decoded.entries()) normalizeInto(hwc, out, (i % 32) * 3 * size * size);
});
console.log(`\ncached uint8 -> tensor (epochs after the first)  ${fmt(cached)}`);
const augmented = await timed(async () => {
  for (const [i, hwc] of decoded.entries()) {
    const params = drawAugmentParams(size, new Rng(i), DEFAULT_AUGMENT);
    augmentInto(hwc, size, params, out, (i % 32) * 3 * size * size);
  }
});
console.log(`cached uint8 -> augmented tensor (training epochs)  ${fmt(augmented)}`);

interface PythonRate {
  processes: number;
  median: number;
  min: number;
  max: number;
  cpu_ms: number;
}

/** The Python PIL pipeline over the same files, in its own processes (one after the other with ours, never beside). */
async function pythonBaseline(): Promise<PythonRate[]> {
  const script = path.join(scriptsDir, 'bench_preprocess_python.py');
  const child = spawn(arg('python', defaultPython()), [script, '--size', String(size), '--runs', String(runs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stdin.end(files.join('\n'));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`the Python baseline exited with ${code}: ${stdout.slice(0, 300)}`);
  return (JSON.parse(stdout.trim().split('\n').at(-1) as string) as { runs: PythonRate[] }).runs;
}

if (withPython) {
  const py = await pythonBaseline();
  console.log('\nbaseline: Python PIL -> torchvision Resize -> ToTensor -> Normalize, same photos');
  for (const r of py) {
    const rate: Rate = { median: r.median, min: r.min, max: r.max, cpuMs: r.cpu_ms };
    console.log(`path -> tensor   python PIL   processes ${r.processes}          ${fmt(rate)}`);
  }
  const pil = py[0] as PythonRate;
  for (const [key, r] of results) {
    const [jpeg, inFlight] = key.split('/');
    console.log(
      `jpeg ${jpeg} in flight ${inFlight}: ${(pil.cpu_ms / r.cpuMs).toFixed(2)}x less CPU per image than PIL ` +
        `(${r.cpuMs.toFixed(2)} vs ${pil.cpu_ms.toFixed(2)} ms)`,
    );
  }
}
