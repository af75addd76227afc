/**
 * `trt-flowers robustness`: models on a labelled split as it is and on changed copies of it (downscaled,
 * recompressed, cropped, rotated): accuracy, macro F1, per-class accuracy and confusion counts per model x variant,
 * and each model's differences to a baseline model in points.
 */
import { existsSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import { mapLimit, throwIfAborted } from '../util/fs.js';
import { decodeResized } from '../data/preprocess.js';
import { Engine, type TtaMode } from '../engine/Engine.js';
import { BackendUnavailableError, CancelledError, DataError, ModelLoadError } from '../errors.js';
import { classificationReport } from '../track/metrics.js';
import { assignLabels } from './compare.js';
import { collectModels, loadEvalSet, runFolderOf, type EvalSet, type LabelledImage } from './inputs.js';
import {
  computeDiffs,
  type RobustnessModel,
  type RobustnessReport,
  type RobustnessResult,
} from './robustness-report.js';
import { evaluate, loadedEngineFields, ttaModesOf } from './run.js';
import { parseVariants, ROBUSTNESS_VARIANTS, VARIANT_DESCRIPTIONS, type RobustnessVariant } from './variant-names.js';
import { makeVariants } from './variants.js';

/** Options of runRobustness. */
export interface RobustnessOptions {
  /** Model files: TorchScript .pt, .onnx (FP32 or INT8), TensorRT .engine/.plan; anything Engine.load opens. */
  models: readonly string[];
  /** 'train' | 'val' | 'test' of a run's split.json, or 'all' (the class sub-folders of `dataDir`). Defaults to 'test'. */
  split?: 'train' | 'val' | 'test' | 'all';
  /** The training run whose split.json names the photos. Defaults to the run the first model lives in. */
  run?: string;
  /**
   * With split 'all': the folder with one sub-folder per class. Otherwise the folder the split's paths are relative
   * to. Defaults to the run's data folder (its params.json), else TRT_FLOWERS_DATA or ../shared/data/flower_photos.
   */
  dataDir?: string;
  /** The variants, in report order. Defaults to all: original, downscale-240, jpeg-q50, center-crop-70, rotate-10. */
  variants?: readonly string[];
  /** At most this many photos, spread evenly over the split. Defaults to 0: all. */
  limit?: number;
  /** Largest batch sent to an engine at once. Defaults to 32. */
  batch?: number;
  /** Intra-op threads of every backend. Defaults to the logical CPU count. */
  threads?: number;
  /**
   * Test-time augmentation: every model is measured once per mode ('flip': each photo and its mirror; 'crops': the
   * photo and five zoomed crops). Defaults to ['none'].
   */
  tta?: readonly TtaMode[];
  /** 'auto' (libtorch on CUDA where it sees a GPU, ONNX Runtime on the CPU, TensorRT on CUDA), 'cpu', 'cuda'. Defaults to 'auto'. */
  device?: 'auto' | 'cpu' | 'cuda';
  /** Label (or part of one) of the model the others are compared with. Defaults to the first model that runs. */
  baseline?: string;
  /** A difference to the baseline larger than this many accuracy points is flagged. Defaults to 1. */
  tolerancePoints?: number;
  /** Folder the temporary variant folder is made in. Defaults to the system's temporary folder. */
  tempDir?: string;
  /** Photos changed at once while the variants are made. Defaults to min(4, threads). */
  concurrency?: number;
  /** The command line, for the report. Defaults to none. */
  command?: string;
  signal?: AbortSignal;
  /** Progress lines. Defaults to none. */
  onLog?: (line: string) => void;
}

function int(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected integer between ${min} and ${max} for \`${name}\` but received ${String(value)}`);
  }
  return value;
}

/** Options checked, defaults applied. */
function settingsOf(o: RobustnessOptions) {
  if (!Array.isArray(o.models) || o.models.length === 0) {
    throw new ModelLoadError('no model to measure: give --model-path FILE (repeatable)');
  }
  const split = o.split ?? 'test';
  if (!['train', 'val', 'test', 'all'].includes(split)) {
    throw new RangeError(`Expected train, val, test or all for \`split\` but received ${String(split)}`);
  }
  const device = o.device ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(device)) {
    throw new RangeError(`Expected 'auto', 'cpu' or 'cuda' for \`device\` but received ${String(device)}`);
  }
  const tolerance = o.tolerancePoints ?? 1;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0 || tolerance > 100) {
    throw new RangeError(
      `Expected a number between 0 and 100 for \`tolerancePoints\` but received ${String(tolerance)}`,
    );
  }
  const threads = int(o.threads ?? os.availableParallelism(), 'threads', 1, 256);
  return {
    split,
    device,
    tolerance,
    threads,
    variants: parseVariants(o.variants ?? ROBUSTNESS_VARIANTS),
    limit: int(o.limit ?? 0, 'limit', 0, 10_000_000),
    batch: int(o.batch ?? 32, 'batch', 1, 4096),
    concurrency: int(o.concurrency ?? Math.min(4, threads), 'concurrency', 1, 64),
    tta: ttaModesOf(o.tta),
  };
}

/** A name for a photo's variant file that is unique within its class folder: its index, then its own name. */
const variantName = (index: number, file: string): string =>
  `${String(index).padStart(6, '0')}-${path.basename(file, path.extname(file)).replace(/[^\w.-]/g, '_')}.jpg`;

/**
 * Writes every variant of every photo under `dir`/<variant>/<class>/ and returns the labelled set of each variant
 * (same photos, same order, same labels). A photo that does not decode is left out of all of them.
 */
async function writeVariants(
  dir: string,
  set: EvalSet,
  variants: readonly RobustnessVariant[],
  concurrency: number,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<{ sets: Map<RobustnessVariant, EvalSet>; leftOut: { path: string; reason: string }[] }> {
  const made = variants.filter((v) => v !== 'original');
  for (const v of made) {
    for (const cls of new Set(set.items.map((it) => it.label))) {
      await fs.mkdir(path.join(dir, v, cls.replace(/[^\w.-]/g, '_')), { recursive: true });
    }
  }
  let done = 0;
  let lastLog = performance.now();
  const files = await mapLimit(
    set.items,
    concurrency,
    async (item, i): Promise<Map<RobustnessVariant, string> | { reason: string } | undefined> => {
      if (signal?.aborted) return undefined;
      const out = new Map<RobustnessVariant, string>([['original', item.path]]);
      if (made.length > 0) {
        let bytes: Map<RobustnessVariant, Buffer>;
        try {
          bytes = await makeVariants(item.path, made);
        } catch (err) {
          return { reason: (err as Error).message };
        }
        for (const [v, data] of bytes) {
          const file = path.join(dir, v, item.label.replace(/[^\w.-]/g, '_'), variantName(i, item.path));
          await fs.writeFile(file, data);
          out.set(v, file);
        }
      } else {
        // Only the files as they are: still leave out those that do not decode, as the variants would.
        const reason = await decodeResized(item.path, { size: 16 }).then(
          () => undefined,
          (err: Error) => err.message,
        );
        if (reason !== undefined) return { reason };
      }
      done++;
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`variants: ${done}/${set.items.length} photos`);
      }
      return out;
    },
  );
  // Checked once every photo in flight is written: the folder is removed next, with nothing still writing to it.
  throwIfAborted(signal);
  const leftOut = set.items.flatMap((it, i) => {
    const f = files[i];
    return f && !(f instanceof Map) ? [{ path: it.path, reason: f.reason }] : [];
  });
  const sets = new Map<RobustnessVariant, EvalSet>();
  for (const v of variants) {
    const items: LabelledImage[] = set.items.flatMap((it, i) => {
      const f = files[i];
      const p = f instanceof Map ? f.get(v) : undefined;
      return p ? [{ path: p, label: it.label }] : [];
    });
    sets.set(v, { split: set.split, source: set.source, items });
  }
  return { sets, leftOut };
}

/** The run folder and labelled photos, with messages in the command's own flags. */
async function loadSet(
  o: RobustnessOptions,
  s: ReturnType<typeof settingsOf>,
  firstModel: string,
  classes: readonly string[],
  runId: string | undefined,
): Promise<EvalSet> {
  let runDir: string | undefined;
  if (s.split !== 'all') {
    if (o.run) {
      if (!(await fs.stat(o.run).catch(() => undefined))?.isDirectory()) {
        throw new DataError(`run folder '${o.run}' not found`);
      }
      if (!existsSync(path.join(o.run, 'split.json'))) {
        throw new DataError(`'${o.run}' has no split.json: give --run runs/<id> (a training run's folder)`);
      }
      runDir = o.run;
    } else {
      runDir = runFolderOf(firstModel, runId);
    }
  } else if (o.dataDir && !(await fs.stat(o.dataDir).catch(() => undefined))?.isDirectory()) {
    throw new DataError(`data folder '${o.dataDir}' not found`);
  }
  const set = await loadEvalSet({
    split: s.split,
    runDir,
    imagesDir: o.dataDir,
    classes,
    limit: s.limit,
    flags: { split: '--split', images: '--data-dir' },
  });
  if (set.items.length === 0) throw new DataError(`no photos in the ${s.split} split (${set.source})`);
  return set;
}

/** Accuracy, macro F1, per-class figures and confusion counts of predicted class names against the labels. */
function scoreOf(
  variant: RobustnessVariant,
  set: EvalSet,
  predicted: readonly string[],
  classes: readonly string[],
  seconds: number,
): RobustnessResult {
  const index = (name: string): number => classes.indexOf(name);
  const yTrue = Int32Array.from(set.items, (it) => index(it.label));
  const yPred = Int32Array.from(predicted, index);
  const r = classificationReport(yTrue, yPred, classes.length);
  return {
    model: '',
    variant,
    images: r.count,
    correct: yTrue.filter((t, i) => t === yPred[i]).length,
    accuracy: r.accuracy,
    f1Macro: r.f1Macro,
    perClass: classes.map((cls, c) => {
      const m = r.perClass[c];
      const support = m?.support ?? 0;
      const correct = r.confusion[c]?.[c] ?? 0;
      return {
        class: cls,
        support,
        correct,
        accuracy: support > 0 ? correct / support : null,
        precision: m?.precision ?? 0,
        f1: m?.f1 ?? 0,
      };
    }),
    confusion: r.confusion,
    seconds,
  };
}

/** Backend and precision from a file name (x.int8.onnx, y_fp16.engine), for a model that cannot be loaded. */
function guessKind(file: string): Pick<RobustnessModel, 'backend' | 'precision'> {
  const ext = path.extname(file).toLowerCase();
  const backend = ext === '.onnx' ? 'onnxruntime' : ext === '.engine' || ext === '.plan' ? 'tensorrt' : 'libtorch';
  const m = /(?:^|[._-])(fp32|fp16|int8)(?:[._-]|$)/i.exec(path.basename(file));
  return { backend, precision: (m?.[1]?.toLowerCase() as RobustnessModel['precision']) ?? 'unknown' };
}

const deviceFor = (device: 'auto' | 'cpu' | 'cuda', file: string): string | undefined => {
  if (device !== 'auto') return device;
  // ONNX Runtime runs on the CPU here; TensorRT always on CUDA; libtorch chooses (CUDA where it sees a GPU).
  return /\.onnx$/i.test(file) ? 'cpu' : /\.(engine|plan)$/i.test(file) ? 'cuda' : undefined;
};

/**
 * Measures every model on every variant of a labelled split. The variants are made once, before the first model
 * runs, into a temporary folder that is removed at the end (also on error, cancel or exit). Models run one after
 * the other, each disposed before the next loads. A model that cannot load becomes an 'unavailable' (backend or
 * device missing) or 'failed' entry and the run goes on; if none runs, the first error is thrown. Rejects with
 * TypeError / RangeError (bad options, unknown variant), ModelLoadError (missing model), DataError (missing run,
 * split or photos, an empty split), BackendUnavailableError, CancelledError.
 */
export async function runRobustness(options: RobustnessOptions): Promise<RobustnessReport> {
  const s = settingsOf(options);
  const log = options.onLog ?? (() => undefined);
  const signal = options.signal;
  const startedAt = new Date();
  const t0 = performance.now();
  const files = await collectModels(options.models);
  const models: RobustnessModel[] = [];
  // Labels are final only once every model has loaded (two models may share one): results keep their owner.
  const pending: { owner: RobustnessModel; result: RobustnessResult }[] = [];
  const notes: string[] = [];
  let set: EvalSet | undefined;
  let classes: string[] = [];
  let sets = new Map<RobustnessVariant, EvalSet>();
  let leftOut: { path: string; reason: string }[] = [];
  let firstError: unknown;
  let tmp: string | undefined;
  // A second Ctrl-C exits the process at once: remove the variants then too.
  const onExit = (): void => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  try {
    for (const [file, tta] of files.flatMap((f) => s.tta.map((t) => [f, t] as const))) {
      throwIfAborted(signal);
      log(`loading ${file}${tta !== 'none' ? ` (tta ${tta})` : ''}`);
      let engine: Engine;
      const device = deviceFor(s.device, file);
      try {
        engine = await Engine.load(file, {
          ...(device ? { device } : {}),
          tta,
          threads: s.threads,
          batchSize: s.batch,
          workers: 1,
        });
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        const status = err instanceof BackendUnavailableError ? 'unavailable' : 'failed';
        log(`${path.basename(file)}: ${status}: ${(err as Error).message}`);
        firstError ??= err;
        models.push({
          label: '',
          ...guessKind(file),
          device: device ?? 'auto',
          model: file,
          ...(tta !== 'none' ? { tta } : {}),
          status,
          reason: (err as Error).message,
        });
        continue;
      }
      try {
        const info = engine.info;
        const entry: RobustnessModel = loadedEngineFields(info);
        models.push(entry);
        assignLabels(models);
        if (!set) {
          // The first model that runs names the classes and (by its folder or metadata) the run.
          classes = [...info.classes];
          const runId = typeof info.metadata.run_id === 'string' ? info.metadata.run_id : undefined;
          set = await loadSet(options, s, file, classes, runId);
          log(`${set.items.length} photos: the ${set.split} split from ${set.source}`);
          if (s.variants.some((v) => v !== 'original')) {
            tmp = await fs.mkdtemp(path.join(options.tempDir ?? os.tmpdir(), 'trt-flowers-robustness-'));
            log(`making ${s.variants.filter((v) => v !== 'original').join(', ')} of each photo in ${tmp}`);
          }
          ({ sets, leftOut } = await writeVariants(tmp ?? '', set, s.variants, s.concurrency, log, signal));
          if (leftOut.length > 0) {
            notes.push(
              `${leftOut.length} photo${leftOut.length === 1 ? '' : 's'} of the split did not decode and ` +
                'were left out of every variant.',
            );
            log(`left out ${leftOut.length} photos that do not decode`);
          }
          if ((sets.get(s.variants[0] as RobustnessVariant)?.items.length ?? 0) === 0) {
            throw new DataError(`none of the ${set.items.length} photos of the ${set.split} split decodes`);
          }
        } else if (info.classes.join('\n') !== classes.join('\n')) {
          entry.status = 'failed';
          entry.reason = `its classes (${info.classes.join(', ')}) are not the first model's (${classes.join(', ')})`;
          log(`${entry.label}: ${entry.reason}`);
          continue;
        }
        for (const v of s.variants) {
          const vs = sets.get(v) as EvalSet;
          const start = performance.now();
          const acc = await evaluate(engine, vs, s.batch, `${entry.label} ${v}`, log, signal);
          const seconds = (performance.now() - start) / 1000;
          pending.push({ owner: entry, result: scoreOf(v, vs, acc.predictions ?? [], classes, seconds) });
        }
      } finally {
        await engine.dispose();
      }
    }
  } finally {
    process.off('exit', onExit);
    if (tmp) await fs.rm(tmp, { recursive: true, force: true, maxRetries: 3 });
  }
  if (!set) throw firstError;
  assignLabels(models);
  const results = pending.map(({ owner, result }) => ({ ...result, model: owner.label }));
  const ok = models.filter((m) => m.status === 'ok');
  let baseline = ok[0];
  if (options.baseline) {
    const w = options.baseline.toLowerCase();
    const hit = ok.find((m) => m.label.toLowerCase() === w) ?? ok.find((m) => m.label.toLowerCase().includes(w));
    if (hit) baseline = hit;
    else notes.push(`Baseline '${options.baseline}' matches no model that ran; differences are to ${baseline?.label}.`);
  }
  const diffs = computeDiffs(results, baseline?.label ?? null, s.tolerance);
  const flagged = diffs.filter((d) => d.flagged);
  if (flagged.length > 0) {
    notes.push(
      `${flagged.length} model x variant differ from ${baseline?.label} by more than ${s.tolerance} point(s): ` +
        flagged.map((d) => `${d.model} on ${d.variant} (${d.accuracyPoints.toFixed(1)})`).join('; '),
    );
  }
  const images = sets.get(s.variants[0] as RobustnessVariant)?.items.length ?? 0;
  return {
    format: 'trt-flowers-robustness/1',
    startedAt: startedAt.toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    command: options.command ?? null,
    split: set.split,
    source: set.source,
    images,
    classes,
    variants: s.variants.map((name) => ({ name, description: VARIANT_DESCRIPTIONS[name] })),
    settings: {
      batch: s.batch,
      threads: s.threads,
      device: s.device,
      limit: s.limit,
      tolerancePoints: s.tolerance,
    },
    models,
    results,
    baseline: baseline?.label ?? null,
    diffs,
    leftOut,
    notes,
    versions: { node: process.versions.node, sharp: sharp.versions.sharp ?? '', libvips: sharp.versions.vips },
  };
}
