import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import YAML from 'yaml';

import { parseRunConfig, type TrainConfig } from '../config/index.js';
import type { RawConfig } from '../config/load.js';
import { indexDataset, type DatasetIndex } from '../data/indexer.js';
import { DataLoader } from '../data/loader.js';
import { indexOptionsOf, loaderOptionsOf, splitOptionsOf } from '../data/options.js';
import { createSplit, loadOrCreateSplit, type SplitManifest } from '../data/split.js';
import { ConfigError } from '../errors.js';
import { exportBackbone } from '../torch/backbone.js';
import type { CompositeTracker } from '../track/CompositeTracker.js';
import { createTracker, resumeTracker, type RunTracking } from '../track/createTracker.js';
import type { MlflowTracker } from '../track/MlflowTracker.js';
import type { LegacyRun, RunDir } from '../track/RunDir.js';
import type { RunStatus } from '../track/Tracker.js';
import { Checkpoints } from './checkpoint.js';
import { backboneOptionsOf } from './options.js';
import type { SplitEvaluation } from './evaluate.js';

/** Everything a training run shares: its folder, trackers and configuration. */
export interface RunContext {
  run: RunDir;
  tracker: CompositeTracker;
  mlflow: MlflowTracker | undefined;
  config: TrainConfig;
  plotCurves(): Promise<void>;
  reportTest(test: SplitEvaluation): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a new run folder (config.yaml written) or reopens one to resume it. `scratch` (a data-parallel rank other
 * than 0): the run's config is read but nothing is written there; what the rank logs goes to a temporary folder,
 * deleted by close(), and never to MLflow.
 */
export async function openRun(
  options: {
    config: TrainConfig;
    rawConfig?: RawConfig;
    resume?: string;
  },
  scratch?: { rank: number },
): Promise<RunContext> {
  let config = options.config;
  let tracking: RunTracking;
  let scratchDir: string | undefined;
  if (scratch) {
    if (options.resume) config = await readRunConfig(options.resume);
    scratchDir = await fs.mkdtemp(path.join(tmpdir(), `trt-flowers-rank${scratch.rank}-`));
    tracking = await createTracker({ baseDir: scratchDir, config: options.rawConfig ?? config, mlflow: false });
    if (options.resume) {
      // The rank's loader takes the run's own split, as rank 0's does.
      await fs.copyFile(path.join(options.resume, 'split.json'), path.join(tracking.runDir.dir, 'split.json'));
    }
  } else if (options.resume) {
    config = await readRunConfig(options.resume);
    // The same reader as the trainer's resume (it also completes a checkpoint swap cut short by a crash).
    const state = await new Checkpoints(path.join(options.resume, 'checkpoints')).loadState().catch(() => undefined);
    // The MLflow run recorded in the folder goes on too (same run id).
    tracking = await resumeTracker(options.resume, {
      keepUpToStep: state?.globalStep ?? 0,
      upgrade: upgradeEarlierRun,
      mlflow: { experimentName: config.experiment },
    });
  } else {
    tracking = await createTracker({
      baseDir: config.trainer.runs_dir,
      config: options.rawConfig ?? config,
      mlflow: { experimentName: config.experiment },
    });
    await tracking.tracker.logParams(flatten(options.rawConfig ?? {}));
    await tracking.tracker.logArtifact(tracking.runDir.configPath, 'config.yaml');
  }
  const { runDir: run, tracker, mlflow } = tracking;
  const plots = async (): Promise<typeof import('../track/plots.js')> => import('../track/plots.js');
  /** Stores rendered charts with the run (MLflow: under plots/). */
  const logPlots = async (files: readonly { svg: string; png: string }[]): Promise<void> => {
    for (const f of files) {
      for (const file of [f.png, f.svg]) await tracker.logArtifact(file, `plots/${path.basename(file)}`);
    }
  };
  return {
    run,
    tracker,
    mlflow,
    config,
    async plotCurves() {
      const { renderLossCurves, renderAccuracyCurves } = await plots();
      const { readMetrics } = await import('../track/metricsLog.js');
      const rows = await readMetrics(run.dir);
      await logPlots([
        await renderLossCurves(rows, path.join(run.plotsDir, 'loss'), { title: 'Loss' }),
        await renderAccuracyCurves(rows, path.join(run.plotsDir, 'accuracy'), { title: 'Accuracy and F1' }),
      ]);
    },
    async reportTest(test) {
      const { renderConfusionMatrix } = await plots();
      const classes = config.data.classes;
      await logPlots([
        await renderConfusionMatrix(
          test.report.confusion,
          classes,
          path.join(run.plotsDir, 'confusion_test'),
          'Test confusion matrix',
        ),
      ]);
      const metrics: Record<string, number> = {
        loss: test.losses.loss,
        ce: test.losses.ce,
        contrastive: test.losses.contrastive,
        accuracy: test.report.accuracy,
        f1_micro: test.report.f1Micro,
        f1_macro: test.report.f1Macro,
      };
      await tracker.logMetrics(metrics, 0, { split: 'test' });
      await run.setSummary({
        test: {
          ...metrics,
          per_class: Object.fromEntries(test.report.perClass.map((c, i) => [classes[i], c])),
          confusion: test.report.confusion,
        },
      });
    },
    async close() {
      await mlflow?.close(5000);
      if (scratchDir) await fs.rm(scratchDir, { recursive: true, force: true });
    },
  };
}

/** The configuration a run folder was started with (its config.yaml). Throws ConfigError. */
async function readRunConfig(dir: string): Promise<TrainConfig> {
  const raw = await fs.readFile(path.join(dir, 'config.yaml'), 'utf8').catch((err: Error) => {
    throw new ConfigError(`cannot resume ${dir}: ${err.message}`, { cause: err });
  });
  return parseRunConfig(YAML.parse(raw) as RawConfig);
}

/** Indexes the data folder as the config says (DataError when it has no usable image). */
export async function indexTrainingData(
  config: TrainConfig,
  dataDir: string,
  signal?: AbortSignal,
): Promise<DatasetIndex> {
  return indexDataset(dataDir, { ...indexOptionsOf(config.data), ...(signal ? { signal } : {}) });
}

/**
 * Loads or creates the run's split (split.json) over the index of the data folder (made here unless given) and
 * returns the loader.
 */
export async function prepareData(
  ctx: RunContext,
  dataDir: string,
  signal?: AbortSignal,
  index?: DatasetIndex,
): Promise<DataLoader> {
  return openEvalData(ctx.config, dataDir, path.join(ctx.run.dir, 'split.json'), signal, index);
}

/**
 * Indexes the data folder and returns a loader over the split stored in `splitFile` (created there when missing
 * or made from other data), or over a fresh split with the config's seed when no file is given.
 */
export async function openEvalData(
  config: TrainConfig,
  dataDir: string,
  splitFile: string | undefined,
  signal?: AbortSignal,
  index?: DatasetIndex,
): Promise<DataLoader> {
  index ??= await indexTrainingData(config, dataDir, signal);
  const splitOptions = splitOptionsOf(config.data);
  let split = splitFile ? await loadOrCreateSplit(splitFile, index, splitOptions) : createSplit(index, splitOptions);
  if (config.trainer.limit_per_class > 0) split = limitPerClass(split, config.trainer.limit_per_class);
  if (split.train.length === 0 || split.val.length === 0) {
    throw new ConfigError(
      `the split of ${dataDir} has ${split.train.length} train and ${split.val.length} val images: need at least one of each`,
    );
  }
  return new DataLoader({ root: dataDir, split, ...loaderOptionsOf(config.data) });
}

/** At most n images per class in each part of the split (smoke runs, CI), keeping the split's order. */
export function limitPerClass(split: SplitManifest, n: number): SplitManifest {
  const take = (items: SplitManifest['train'], share: number): SplitManifest['train'] => {
    const per = new Map<number, number>();
    const cap = Math.max(1, Math.round(n * share));
    return items.filter((it) => {
      const c = per.get(it.label) ?? 0;
      per.set(it.label, c + 1);
      return c < cap;
    });
  };
  const [tr, va, te] = split.ratios;
  return { ...split, train: take(split.train, tr), val: take(split.val, va), test: take(split.test, te) };
}

/** The TorchScript file to start from: model.checkpoint, or a backbone exported into the run folder. */
export async function prepareModel(ctx: RunContext, python?: string): Promise<string> {
  const m = ctx.config.model;
  if (m.checkpoint) return m.checkpoint;
  const out = path.join(ctx.run.dir, 'backbone.pt');
  const result = await exportBackbone({ ...backboneOptionsOf(ctx.config, out), ...(python ? { python } : {}) });
  await ctx.tracker.logParams({ backbone: result });
  return out;
}

/** Writes the final summary and closes the trackers' run. `bestEpoch` counts from 1 (null: none yet). */
export async function finishRun(
  ctx: RunContext,
  result: { status: string; epochs: number; bestEpoch: number | null; bestValLoss: number | null; bestEma?: boolean },
): Promise<void> {
  const bestModel = new Checkpoints(ctx.run.checkpointsDir).bestModel;
  await ctx.run.setSummary({
    result: result.status,
    epochs: result.epochs,
    best_epoch: result.bestEpoch,
    best_val_loss: result.bestValLoss,
    best_model: bestModel,
    ...(result.bestEma !== undefined ? { best_weight_average: result.bestEma } : {}),
  });
  const done = result.status !== 'interrupted';
  // An interrupted run uploads its model when it is resumed and ends.
  await endRun(ctx, done ? 'FINISHED' : 'KILLED', done && result.bestEpoch !== null ? [bestModel] : []);
}

/**
 * Brings a run folder an earlier version wrote into today's form: epochs counted from 0 in metrics.jsonl and
 * summary.json's camelCase training fields (bestEpoch from 0).
 */
function upgradeEarlierRun({ summary, rows }: LegacyRun): void {
  for (const r of rows) if (r.epoch !== undefined) r.epoch += 1;
  const renames: Record<string, string> = { bestValLoss: 'best_val_loss', bestModel: 'best_model' };
  for (const [old, now] of Object.entries(renames)) {
    if (old in summary) summary[now] = summary[old];
    delete summary[old];
  }
  if ('bestEpoch' in summary) {
    const e = summary.bestEpoch;
    summary.best_epoch = typeof e === 'number' && e >= 0 ? e + 1 : null;
    delete summary.bestEpoch;
  }
  const test = summary.test as Record<string, unknown> | undefined;
  if (test && typeof test === 'object' && 'perClass' in test) {
    test.per_class = test.perClass;
    delete test.perClass;
  }
}

/**
 * Ends the run: the run folder first (its summary.json is then final), then MLflow, which gets summary.json and
 * `files` (paths inside the run folder, stored under the same relative paths) before its end status.
 */
export async function endRun(ctx: RunContext, status: RunStatus, files: readonly string[] = []): Promise<void> {
  const local = ctx.run.finish(status);
  if (ctx.mlflow) {
    await local.catch(() => undefined);
    for (const file of [ctx.run.summaryPath, ...files]) {
      await ctx.mlflow.logArtifact(file, path.relative(ctx.run.dir, file).split(path.sep).join('/'));
    }
    await ctx.mlflow.finish(status);
  }
  await local;
}

function flatten(obj: RawConfig, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as RawConfig, `${prefix}${k}.`));
    else out[`${prefix}${k}`] = v;
  }
  return out;
}
