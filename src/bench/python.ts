/** The Python PyTorch eager reference (scripts/bench_infer_python.py), run as a child process. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { Preprocessing } from '../data/metadata.js';
import { runPythonStep } from '../util/python.js';
import type { BenchMode } from './types.js';

export interface PythonBenchOptions {
  model: string;
  arch?: string | undefined;
  preprocessing: Preprocessing;
  photos: readonly string[];
  batches: readonly number[];
  modes: readonly BenchMode[];
  iterations: number;
  warmupMs: number;
  durationS: number;
  threads: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string | undefined;
  /** Photos to classify, with the class index in the model's class order. */
  evalItems?: readonly [string, number][];
  python?: string | undefined;
  signal?: AbortSignal | undefined;
  onLog?: ((line: string) => void) | undefined;
}

export interface PythonBenchRun {
  batch: number;
  mode: BenchMode;
  warmup_iterations: number;
  warmup_ms: number;
  wall_ms: number;
  latencies_ms: number[];
  /** CPU share other processes used during the timed phase (Linux), or null. */
  other_cpu_percent: number | null;
}

export interface PythonBenchOutput {
  impl: 'python-eager';
  model: string;
  arch: string;
  size: number;
  threads: number;
  torch: string;
  torchvision: string;
  pillow: string;
  python: string;
  /** Eager vs TorchScript logits on up to 4 photos (the script stops above 1e-3). */
  max_abs_diff_vs_torchscript: number;
  results: PythonBenchRun[];
  predictions: number[] | null;
  eval_ms: number | null;
}

/** Runs scripts/bench_infer_python.py. Rejects with ExportError (the script's own message) or CancelledError. */
export async function runPythonBench(o: PythonBenchOptions): Promise<PythonBenchOutput> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trt-flowers-bench-'));
  try {
    const images = path.join(dir, 'images.json');
    await fs.writeFile(images, JSON.stringify(o.photos));
    const args = [
      '--model',
      o.model,
      '--images',
      images,
      '--batch',
      o.batches.join(','),
      '--modes',
      o.modes.join(','),
      '--iterations',
      String(o.iterations),
      '--warmup-ms',
      String(o.warmupMs),
      '--duration-s',
      String(o.durationS),
      '--threads',
      String(o.threads),
      '--size',
      String(o.preprocessing.size),
      '--mean',
      o.preprocessing.mean.join(','),
      '--std',
      o.preprocessing.std.join(','),
      '--resize',
      o.preprocessing.resize,
    ];
    if (o.device && o.device !== 'cpu') args.push('--device', o.device);
    if (o.arch && ['tiny', 'mobilenet_v2', 'rexnet_150'].includes(o.arch)) args.push('--arch', o.arch);
    if (o.evalItems?.length) {
      const evalList = path.join(dir, 'eval.json');
      await fs.writeFile(evalList, JSON.stringify(o.evalItems));
      args.push('--eval-list', evalList);
    }
    return await runPythonStep<PythonBenchOutput>('bench_infer_python.py', args, {
      ...(o.python ? { python: o.python } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      onStderr: (line) => {
        if (line.trim()) o.onLog?.(line);
      },
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
