/**
 * `trt-flowers bench`: every engine of the given model files, side by side, measured as trtexec does (see timing.ts),
 * model-only and end-to-end, with accuracy on a labelled split and the ratios to a baseline engine.
 */
import os from 'node:os';
import path from 'node:path';

import { throwIfAborted } from '../util/fs.js';
import { jpegFastPathAvailable } from '../data/preprocess.js';
import type { BackendName, Precision } from '../engine/backend.js';
import {
  detectBackend,
  Engine,
  TTA_MODES,
  type DecodePlace,
  type EngineInfo,
  type TensorInput,
  type TtaMode,
} from '../engine/Engine.js';
import { BackendUnavailableError, CancelledError, DataError } from '../errors.js';
import { runtimeInfo } from '../binding/runtime.js';
import { assignLabels, computeRatios, pickBaseline } from './compare.js';
import {
  checkPhotos,
  collectModels,
  collectPhotos,
  loadEvalSet,
  readBuildSidecar,
  runFolderOf,
  type EvalSet,
} from './inputs.js';
import { foreignLoadMeter, machineInfo } from './machine.js';
import { runPythonBench, type PythonBenchOutput } from './python.js';
import { summarize, throughput, type PercentileMethod } from './stats.js';
import { timeCalls } from './timing.js';
import {
  BENCH_MODES,
  type BenchEngine,
  type BenchMode,
  type BenchOptions,
  type BenchReport,
  type BenchResult,
} from './types.js';

/** Options with their defaults applied and checked. */
interface Settings {
  iterations: number;
  warmupMs: number;
  durationS: number;
  batches: number[];
  modes: BenchMode[];
  threads: number;
  device: 'auto' | 'cpu' | 'cuda';
  imageCount: number;
  evalLimit: number;
  percentileMethod: PercentileMethod;
  keepLatencies: boolean;
  tta: TtaMode[];
  decode: DecodePlace;
}

function int(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected integer between ${min} and ${max} for \`${name}\` but received ${String(value)}`);
  }
  return value;
}

function num(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`Expected a number between ${min} and ${max} for \`${name}\` but received ${String(value)}`);
  }
  return value;
}

function decodePlaceOf(value: unknown): DecodePlace {
  if (value === undefined) return 'auto';
  if (value !== 'auto' && value !== 'pool' && value !== 'worker') {
    throw new RangeError(`Expected 'auto', 'pool' or 'worker' for \`decode\` but received ${String(value)}`);
  }
  return value;
}

function settingsOf(o: BenchOptions): Settings {
  const batches = [...(o.batches ?? [1])];
  if (batches.length === 0) throw new RangeError('Expected at least one batch size for `batches` but received none');
  batches.forEach((b, i) => int(b, `batches[${i}]`, 1, 4096));
  const modes = [...(o.modes ?? BENCH_MODES)];
  if (modes.length === 0 || modes.some((m) => !BENCH_MODES.includes(m))) {
    throw new RangeError(`Expected 'model' and/or 'e2e' for \`modes\` but received ${JSON.stringify(o.modes)}`);
  }
  const device = o.device ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(device)) {
    throw new RangeError(`Expected 'auto', 'cpu' or 'cuda' for \`device\` but received ${String(device)}`);
  }
  const method = o.percentileMethod ?? 'linear';
  if (method !== 'linear' && method !== 'nearest-rank') {
    throw new RangeError(`Expected 'linear' or 'nearest-rank' for \`percentileMethod\` but received ${String(method)}`);
  }
  if (o.evalSplit !== undefined && !['train', 'val', 'test', 'all'].includes(o.evalSplit)) {
    throw new RangeError(`Expected train, val, test or all for \`evalSplit\` but received ${String(o.evalSplit)}`);
  }
  return {
    iterations: int(o.iterations ?? 100, 'iterations', 1, 10_000_000),
    warmupMs: num(o.warmupMs ?? 200, 'warmupMs', 0, 3_600_000),
    durationS: num(o.durationS ?? 3, 'durationS', 0, 86_400),
    batches: [...new Set(batches)],
    modes: [...new Set(modes)],
    threads: int(o.threads ?? os.availableParallelism(), 'threads', 1, 256),
    device,
    imageCount: int(o.imageCount ?? 100, 'imageCount', 1, 1_000_000),
    evalLimit: int(o.evalLimit ?? 0, 'evalLimit', 0, 10_000_000),
    percentileMethod: method,
    keepLatencies: o.keepLatencies ?? true,
    tta: ttaModesOf(o.tta),
    decode: decodePlaceOf(o.decode),
  };
}

/** A list of test-time augmentation modes, checked, without repeats. Defaults to ['none']. */
export function ttaModesOf(modes: readonly string[] | undefined): TtaMode[] {
  const list = [...(modes ?? ['none'])];
  if (list.length === 0 || list.some((m) => !TTA_MODES.includes(m as TtaMode))) {
    throw new RangeError(
      `Expected a list of 'none', 'flip' and 'crops' for \`tta\` but received ${JSON.stringify(modes)}`,
    );
  }
  return [...new Set(list)] as TtaMode[];
}

/** One engine to load: a file, the backend that runs it and a device. */
interface Plan {
  file: string;
  backend: BackendName;
  device: string;
  tta: TtaMode;
}

/** A result before the engine labels are final. */
type PendingResult = Omit<BenchResult, 'engine'> & { owner: BenchEngine };

const MODE_NAMES: Record<BenchMode, string> = { model: 'model-only', e2e: 'end-to-end' };

/** Guesses a precision from a file name (x.int8.onnx, y_fp16.engine), for engines that cannot be loaded here. */
function precisionFromName(file: string): BenchEngine['precision'] {
  const m = /(?:^|[._-])(fp32|fp16|int8)(?:[._-]|$)/i.exec(path.basename(file));
  return m ? (m[1]?.toLowerCase() as BenchEngine['precision']) : 'unknown';
}

/** A fixed, deterministic input when no photos are available: x[i] = 1.5 sin(0.37 i). */
function syntheticInput(batch: number, size: number): TensorInput {
  const data = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = 1.5 * Math.sin(0.37 * i);
  return { data, shape: [batch, 3, size, size] };
}

const cycle = <T>(items: readonly T[], start: number, count: number): T[] =>
  Array.from({ length: count }, (_, k) => items[(start + k) % items.length] as T);

const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** What one bench run shares between its engines. */
interface BenchRun {
  options: BenchOptions;
  s: Settings;
  log: (line: string) => void;
  photos: { files: string[]; from: string | null };
  evalImagesDir: string | undefined;
  maxBatch: number;
  engines: BenchEngine[];
  pending: PendingResult[];
  notes: string[];
  /** The labelled photos, loaded with the first engine that runs (its classes and run folder name them). */
  evalSet?: EvalSet;
}

/** The engines to load: one per model file and device (libtorch on the CPU and on CUDA where both are there). */
async function planEngines(
  models: readonly string[],
  device: Settings['device'],
  engines: BenchEngine[],
): Promise<Plan[]> {
  const plans: Plan[] = [];
  for (const file of models) {
    let backend: BackendName;
    try {
      backend = await detectBackend(file);
    } catch (err) {
      engines.push(failedEngine(file, 'unknown', '-', 'failed', err));
      continue;
    }
    if (backend === 'libtorch') {
      let cuda = false;
      try {
        cuda = runtimeInfo().cudaAvailable;
      } catch {
        cuda = false; // the addon does not load: Engine.load says why
      }
      const devices = device === 'cpu' ? ['cpu'] : device === 'cuda' ? ['cuda'] : cuda ? ['cpu', 'cuda'] : ['cpu'];
      for (const device of devices) plans.push({ file, backend, device, tta: 'none' });
    } else if (backend === 'onnxruntime') {
      plans.push({ file, backend, device: device === 'cuda' ? 'cuda' : 'cpu', tta: 'none' });
    } else {
      plans.push({ file, backend, device: 'cuda', tta: 'none' });
    }
  }

  return plans;
}

/** Loads one engine, measures its accuracy (when asked) and every batch and mode, then frees it. */
async function benchEngine(run: BenchRun, plan: Plan): Promise<void> {
  const { options, s, log, photos, evalImagesDir, maxBatch, engines, pending } = run;
  const signal = options.signal;
  throwIfAborted(signal);
  const name = `${plan.backend} ${plan.device} ${path.basename(plan.file)}`;
  log(`loading ${plan.file} (${plan.backend}, ${plan.device}, ${s.threads} threads)`);
  const loadStart = performance.now();
  let engine: Engine;
  try {
    engine = await Engine.load(plan.file, {
      backend: plan.backend,
      device: plan.device,
      tta: plan.tta,
      threads: s.threads,
      decode: s.decode,
      // Batches up to this size go to the backend whole (timed batches and the accuracy pass alike).
      batchSize: Math.max(32, maxBatch),
      workers: 1,
    });
  } catch (err) {
    const status = err instanceof BackendUnavailableError ? 'unavailable' : 'failed';
    log(`${name}: ${status}: ${(err as Error).message}`);
    const failed = failedEngine(plan.file, plan.backend, plan.device, status, err);
    const build = await readBuildSidecar(plan.file);
    if (build) {
      failed.build = build;
      if (['fp32', 'fp16', 'int8'].includes(build.precision)) failed.precision = build.precision as Precision;
    }
    engines.push(failed);
    return;
  }
  try {
    const info = engine.info;
    const entry: BenchEngine = {
      ...loadedEngineFields(info),
      loadMs: performance.now() - loadStart,
      inputShape: [...info.inputShape],
      preprocessing: info.preprocessing,
      classes: info.classes,
      ...(typeof info.metadata.arch === 'string' ? { arch: info.metadata.arch } : {}),
      versions: info.versions,
    };
    const build = await readBuildSidecar(plan.file);
    if (build) entry.build = build;
    engines.push(entry);
    log(`${entry.label}: loaded in ${fmtMs(entry.loadMs ?? 0)} ms, input ${info.inputShape.join('x')}`);

    if (options.evalSplit && !run.evalSet) {
      // Loaded with the first engine that runs: its classes and run folder name the labelled photos.
      run.evalSet = await loadEvalSet({
        split: options.evalSplit,
        runDir:
          options.run ??
          runFolderOf(plan.file, typeof info.metadata.run_id === 'string' ? info.metadata.run_id : undefined),
        imagesDir: evalImagesDir,
        classes: info.classes,
        limit: s.evalLimit,
      });
      log(`accuracy on ${run.evalSet.items.length} photos: ${run.evalSet.split} split from ${run.evalSet.source}`);
    }
    if (run.evalSet) entry.accuracy = await evaluate(engine, run.evalSet, maxBatch, entry.label, log, signal);

    for (const batch of s.batches) {
      const input =
        photos.files.length > 0
          ? await engine.preprocess(cycle(photos.files, 0, batch))
          : syntheticInput(batch, info.preprocessing.size);
      for (const mode of s.modes) {
        if (mode === 'e2e' && photos.files.length === 0) continue;
        // run() is never augmented: the model-only figures of a tta engine would repeat its plain twin's.
        if (mode === 'model' && plan.tta !== 'none') continue;
        const call =
          mode === 'model'
            ? () => engine.run(input)
            : (i: number) => engine.infer(cycle(photos.files, (i * batch) % photos.files.length, batch));
        pending.push(await measure(entry, batch, mode, call, s, log, signal));
      }
    }
  } finally {
    await engine.dispose();
  }
}

/** The fields of a report entry that name a loaded engine: its label ("backend precision device") and where it ran. */
export function loadedEngineFields(
  info: EngineInfo,
): Pick<BenchEngine, 'label' | 'backend' | 'precision' | 'device' | 'model' | 'status' | 'tta'> {
  return {
    label: `${info.backend} ${info.precision} ${info.device}${info.tta !== 'none' ? ` tta=${info.tta}` : ''}`,
    backend: info.backend,
    precision: info.precision,
    device: info.device,
    model: info.path,
    ...(info.tta !== 'none' ? { tta: info.tta } : {}),
    status: 'ok',
  };
}

/** Times the first libtorch model in Python PyTorch eager with PIL preprocessing: the baseline of the same run. */
async function benchPython(run: BenchRun): Promise<void> {
  const { options, s, log, photos, engines, pending, notes, evalSet } = run;
  const signal = options.signal;
  let python: PythonBenchOutput | undefined;
  const torchEngine = engines.find((e) => e.backend === 'libtorch' && e.status === 'ok');
  if (!torchEngine?.preprocessing) {
    notes.push('--python: no TorchScript model loaded, so no Python eager reference was timed.');
  } else if (photos.files.length === 0) {
    notes.push('--python: no photos, so no Python eager reference was timed.');
  } else {
    const classes = evalSet ? torchEngine.classes : undefined;
    const evalItems =
      evalSet && classes
        ? evalSet.items.map((it): [string, number] => [it.path, classes.indexOf(it.label)])
        : undefined;
    log(`timing ${torchEngine.model} in Python PyTorch eager with PIL preprocessing`);
    // The reference runs where the first libtorch engine ran: a CUDA bench compares GPU with GPU.
    const pythonDevice = torchEngine.device;
    const entry: BenchEngine = {
      label: `python-eager fp32 ${pythonDevice}`,
      backend: 'python-eager',
      precision: 'fp32',
      device: pythonDevice,
      model: torchEngine.model,
      status: 'ok',
      preprocessing: torchEngine.preprocessing,
      ...(torchEngine.arch ? { arch: torchEngine.arch } : {}),
    };
    try {
      python = await runPythonBench({
        model: torchEngine.model,
        arch: torchEngine.arch,
        preprocessing: torchEngine.preprocessing,
        photos: photos.files,
        batches: s.batches,
        modes: s.modes,
        iterations: s.iterations,
        warmupMs: s.warmupMs,
        durationS: s.durationS,
        threads: s.threads,
        device: pythonDevice,
        ...(evalItems ? { evalItems } : {}),
        python: options.pythonPath,
        signal,
        onLog: log,
      });
      entry.arch = python.arch;
      entry.versions = {
        torch: python.torch,
        torchvision: python.torchvision,
        pillow: python.pillow,
        python: python.python,
      };
      for (const r of python.results) {
        pending.push(
          toResult(
            entry,
            r.batch,
            r.mode,
            {
              latenciesMs: r.latencies_ms,
              wallMs: r.wall_ms,
              warmupIterations: r.warmup_iterations,
              warmupMs: r.warmup_ms,
            },
            s,
            r.other_cpu_percent,
          ),
        );
      }
      notes.push(
        `python-eager: ${python.arch} built as plain PyTorch modules (scripts/export_backbone.py) with the weights of ` +
          `${path.basename(python.model)}; its logits match the TorchScript file's to ` +
          `${python.max_abs_diff_vs_torchscript.toExponential(1)}. Preprocessing with PIL + torchvision transforms, ` +
          'one image after the other.',
      );
      if (evalSet && classes && python.predictions) {
        const predicted = python.predictions.map((k) => classes[k] ?? `class_${k}`);
        entry.accuracy = accuracyOf(evalSet, predicted);
      }
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      entry.status = 'failed';
      entry.reason = (err as Error).message;
      log(`python-eager: failed: ${entry.reason}`);
    }
    engines.push(entry);
  }
}

/** Notes on how the figures were measured: a busy machine, what CPU and CUDA latencies include. */
function measurementNotes(engines: readonly BenchEngine[], results: readonly BenchResult[]): string[] {
  const notes: string[] = [];
  const busy = results.filter((r) => (r.otherCpuPercent ?? 0) > 10);
  if (busy.length > 0) {
    notes.push(
      `Other processes used more than 10% of the CPU while ${busy.length} row(s) were measured (` +
        busy
          .map((r) => `${r.engine} batch ${r.batch} ${MODE_NAMES[r.mode]}: ${r.otherCpuPercent?.toFixed(0)}%`)
          .join('; ') +
        '): those figures are skewed; rerun on a quiet machine.',
    );
  }
  if (engines.some((e) => e.status === 'ok' && e.device === 'cpu')) {
    notes.push(
      'CPU engines copy nothing between host and device, so there is no copy/compute split to report; ' +
        'latency is the whole call as awaited from Node (for ONNX Runtime, the hand-off to its worker thread included).',
    );
  }
  if (engines.some((e) => e.status === 'ok' && e.device.startsWith('cuda'))) {
    notes.push(
      'CUDA engines: the Engine API does not report the host-to-device / compute / device-to-host split yet, so ' +
        'their latency is the whole call, copies included.',
    );
  }
  return notes;
}

/**
 * Benchmarks every engine of the given model files. Engines run one after the other (each disposed before the
 * next loads, so thread pools never overlap); an engine that cannot load (a TensorRT plan without TensorRT, a
 * CUDA device that is not there) becomes an 'unavailable' entry, one that fails a 'failed' entry, and the run
 * goes on. Rejects with TypeError / RangeError (bad options), ModelLoadError / DataError (no model, missing
 * photos or split), CancelledError.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const s = settingsOf(options);
  const log = options.onLog ?? (() => undefined);
  const startedAt = new Date();
  const t0 = performance.now();
  const machine = await machineInfo();
  const models = await collectModels(options.models, options.modelsDir);
  const collected = await collectPhotos(options.images, s.imageCount);
  const checked = await checkPhotos(collected.files);
  const photos = { ...collected, files: checked.ok };
  // A folder named with --images holds the labelled photos too; a single file does not.
  const namedDir =
    typeof options.images === 'string' && collected.from !== collected.files[0]
      ? (photos.from ?? undefined)
      : undefined;
  const evalImagesDir = namedDir ?? (options.evalSplit === 'all' ? (photos.from ?? undefined) : undefined);
  const notes: string[] = [];
  if (checked.bad.length > 0) {
    const list = checked.bad.map((b) => `${b.path} (${b.reason})`).join('; ');
    notes.push(`${checked.bad.length} photos could not be decoded and were left out: ${list}`);
    log(`left out ${checked.bad.length} photos that do not decode: ${list}`);
  }
  if (collected.files.length > 0 && photos.files.length === 0) {
    throw new DataError('none of the photos decodes: give --images DIR with JPEG, PNG, WebP, TIFF or BMP files');
  }
  if (photos.files.length === 0) {
    notes.push('No photos found (give --images DIR): model-only runs used a fixed synthetic input; e2e was skipped.');
  }
  const maxBatch = Math.max(...s.batches);
  const engines: BenchEngine[] = [];
  const pending: PendingResult[] = [];
  const run: BenchRun = { options, s, log, photos, evalImagesDir, maxBatch, engines, pending, notes };
  for (const plan of await planEngines(models, s.device, engines)) {
    for (const tta of s.tta) await benchEngine(run, { ...plan, tta });
  }
  if (options.python) await benchPython(run);
  assignLabels(engines);
  const results: BenchResult[] = pending.map(({ owner, ...r }) => ({ engine: owner.label, ...r }));
  const baseline = pickBaseline(engines, options.baseline);
  if (options.baseline && baseline && !baseline.label.toLowerCase().includes(options.baseline.toLowerCase())) {
    notes.push(`Baseline '${options.baseline}' matches no engine that ran; ratios are relative to ${baseline.label}.`);
  }
  computeRatios(results, baseline?.label ?? null);
  if (baseline?.accuracy?.predictions) {
    const ref = baseline.accuracy.predictions;
    for (const e of engines) {
      const p = e.accuracy?.predictions;
      if (!e.accuracy || !p || p.length !== ref.length) continue;
      e.accuracy.agreementWithBaseline = p.filter((c, i) => c === ref[i]).length / p.length;
    }
  }
  notes.push(...measurementNotes(engines, results));
  return {
    format: 'trt-flowers-bench/1',
    startedAt: startedAt.toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    command: options.command ?? null,
    settings: {
      iterations: s.iterations,
      warmupMs: s.warmupMs,
      durationS: s.durationS,
      batches: s.batches,
      modes: s.modes,
      threads: s.threads,
      percentileMethod: s.percentileMethod,
      images: photos.files.length,
      imagesFrom: photos.from,
      jpegDecoder:
        (process.env.TRT_FLOWERS_JPEG ?? 'auto') === 'sharp' || !jpegFastPathAvailable()
          ? 'sharp'
          : 'native libjpeg-turbo (sharp for other formats)',
      decode: s.decode,
      evalSplit: options.evalSplit ?? null,
    },
    machine,
    loadAverageAtEnd: [os.loadavg()[0] ?? 0, os.loadavg()[1] ?? 0, os.loadavg()[2] ?? 0],
    baseline: baseline?.label ?? null,
    engines,
    results,
    notes,
  };
}

function failedEngine(
  file: string,
  backend: BenchEngine['backend'] | 'unknown',
  device: string,
  status: 'unavailable' | 'failed',
  err: unknown,
): BenchEngine {
  return {
    label: '',
    backend: backend === 'unknown' ? 'libtorch' : backend,
    precision: precisionFromName(file),
    device,
    model: path.resolve(file),
    status,
    reason: (err as Error)?.message ?? String(err),
  };
}

export function accuracyOf(set: EvalSet, predicted: string[]): NonNullable<BenchEngine['accuracy']> {
  const correct = predicted.filter((c, i) => c === set.items[i]?.label).length;
  return {
    split: set.split,
    source: set.source,
    images: set.items.length,
    correct,
    accuracy: correct / set.items.length,
    agreementWithBaseline: null,
    predictions: predicted,
  };
}

/** Top-1 accuracy of an engine on a labelled set, `max(64, maxBatch)` photos per call; logs one line. */
export async function evaluate(
  engine: Engine,
  set: EvalSet,
  maxBatch: number,
  label: string,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<NonNullable<BenchEngine['accuracy']>> {
  const predicted: string[] = [];
  const step = Math.max(64, maxBatch);
  const start = performance.now();
  for (let i = 0; i < set.items.length; i += step) {
    throwIfAborted(signal);
    const out = await engine.infer(
      set.items.slice(i, i + step).map((it) => it.path),
      signal ? { signal } : {},
    );
    predicted.push(...out.map((p) => p.predictedClass));
  }
  const acc = accuracyOf(set, predicted);
  log(
    `${label}: accuracy ${(acc.accuracy * 100).toFixed(2)}% (${acc.correct}/${acc.images}) in ` +
      `${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
  return acc;
}

function toResult(
  owner: BenchEngine,
  batch: number,
  mode: BenchMode,
  t: { latenciesMs: number[]; wallMs: number; warmupIterations: number; warmupMs: number },
  s: Settings,
  otherCpuPercent?: number | null,
): PendingResult {
  const latency = summarize(t.latenciesMs, s.percentileMethod);
  const tp = throughput(t.latenciesMs.length, batch, t.wallMs);
  return {
    owner,
    batch,
    mode,
    status: 'ok',
    iterations: t.latenciesMs.length,
    warmupIterations: t.warmupIterations,
    warmupMs: t.warmupMs,
    wallMs: t.wallMs,
    latencyMs: latency,
    imagesPerSecond: tp.imagesPerSecond,
    batchesPerSecond: tp.batchesPerSecond,
    phases: null,
    ...(typeof otherCpuPercent === 'number' ? { otherCpuPercent } : {}),
    ...(s.keepLatencies ? { latenciesMs: t.latenciesMs.map((x) => Math.round(x * 1e4) / 1e4) } : {}),
  };
}

async function measure(
  owner: BenchEngine,
  batch: number,
  mode: BenchMode,
  call: (i: number) => Promise<unknown>,
  s: Settings,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<PendingResult> {
  const what = `${owner.label} batch ${batch} ${MODE_NAMES[mode]}`;
  log(`${what}: warm-up ${s.warmupMs} ms, then at least ${s.iterations} iterations and ${s.durationS} s`);
  try {
    const meter = foreignLoadMeter();
    let otherCpuPercent: number | undefined;
    const t = await timeCalls(call, {
      warmupMs: s.warmupMs,
      iterations: s.iterations,
      durationMs: s.durationS * 1000,
      ...(signal ? { signal } : {}),
      onProgress: (done, ms) => log(`${what}: ${done} iterations, ${(ms / 1000).toFixed(0)} s`),
      onTimedStart: meter.start,
      onTimedEnd: () => (otherCpuPercent = meter.stop()),
    });
    const r = toResult(owner, batch, mode, t, s, otherCpuPercent);
    log(
      `${what}: ${r.iterations} iterations in ${(r.wallMs / 1000).toFixed(1)} s, p50 ${fmtMs(r.latencyMs?.median ?? 0)} ms, ` +
        `p99 ${fmtMs(r.latencyMs?.p99 ?? 0)} ms, ${(r.imagesPerSecond ?? 0).toFixed(1)} images/s`,
    );
    return r;
  } catch (err) {
    if (err instanceof CancelledError || signal?.aborted) throw err;
    log(`${what}: failed: ${(err as Error).message}`);
    return {
      owner,
      batch,
      mode,
      status: 'failed',
      reason: (err as Error).message,
      iterations: 0,
      warmupIterations: 0,
      warmupMs: 0,
      wallMs: 0,
      phases: null,
    };
  }
}
