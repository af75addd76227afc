import path from 'node:path';

import { withDataSection, type CamelCaseTrainConfig, type TrainConfig } from '../config/index.js';
import type { RawConfig } from '../config/load.js';
import { CancelledError, ConfigError } from '../errors.js';
import { runtimeInfo, manualSeed, setThreads } from '../binding/runtime.js';
import { Checkpoints, emptyPartial, type TrainState } from './checkpoint.js';
import { EarlyStopping } from './EarlyStopping.js';
import { evaluateSplit, type SplitEvaluation } from './evaluate.js';
import { createProgress, reportExcluded, type ProgressReporter } from './progress.js';
import { endRun, indexTrainingData, prepareData, prepareModel, type RunContext, openRun, finishRun } from './run.js';
import { evalOptionsOf, scheduleOf, trainerOptionsOf } from './options.js';
import { learningRateAt } from './schedule.js';
import { TorchModel } from '../torch/TorchModel.js';
import { Trainer } from '../torch/Trainer.js';
import { trainingMetadata } from '../data/metadata.js';
import { agreementFacts, DistributedRun, type DistributedOptions } from './distributed.js';
import { runHeadPhase } from './head.js';

/** The early-stopping "epoch" of the head phase's validation: shown as best epoch 0. */
const HEAD_PHASE = -1;

/** How a best epoch (0-based, HEAD_PHASE for the head phase) is printed. */
const bestName = (epoch: number, ema = false): string =>
  epoch === HEAD_PHASE ? 'the head phase' : `epoch ${epoch + 1}${ema ? ', weight average' : ''}`;

/** Options of train(). */
export interface TrainOptions {
  /**
   * The resolved configuration (ignored when resuming: the run's own config.yaml is used). A data section in the
   * earlier camelCase form is converted, with a DeprecationWarning.
   */
  config: TrainConfig | CamelCaseTrainConfig;
  /** The composed raw config, saved as the run's config.yaml. Defaults to `config`. */
  rawConfig?: RawConfig;
  /** Data folder (flag > config > TRT_FLOWERS_DATA, resolved by the caller). */
  dataDir: string;
  /** Continue the run in this folder from its last checkpoint. Defaults to a new run. */
  resume?: string;
  /** Stops training after the current step; a resumable checkpoint is written first. Defaults to none. */
  signal?: AbortSignal;
  /** Progress output. Defaults to the config's trainer.progress on stderr. */
  progress?: ProgressReporter;
  /** Python for the backbone export. Defaults to TRT_FLOWERS_PYTHON or /usr/bin/python3. */
  python?: string;
  /** libtorch threads of this process, over the config's trainer.threads. Defaults to the config's. */
  threads?: number;
  /**
   * Data-parallel training: this process is one rank of a group (from torchrun's environment, set by torchrun, a
   * PyTorchJob or `trt-flowers train --nproc`, or from these options). Each rank trains on its shard of every epoch
   * and rank 0 alone writes the run. Defaults to one process on its own unless WORLD_SIZE is set.
   */
  distributed?: DistributedOptions;
}

export interface TrainResult {
  runDir: string;
  status: 'completed' | 'early-stopped' | 'interrupted';
  /** Epochs done. */
  epochs: number;
  /**
   * Epoch of the best checkpoint (lowest val_loss), counted from 1 like every printed epoch; 0 when it is the model
   * after the head phase (model.head_epochs); null before any.
   */
  bestEpoch: number | null;
  bestValLoss: number | null;
  /** With model.ema_decay: whether the best checkpoint holds the weights' moving average. */
  bestEma?: boolean;
  test?: SplitEvaluation;
}

/** trainer.device with 'auto' resolved: CUDA when the addon sees a device. */
function trainingDevice(config: TrainConfig): string {
  const d = config.trainer.device;
  return d === 'auto' ? (runtimeInfo().cudaAvailable ? 'cuda' : 'cpu') : d;
}

/** Runs (or resumes) a training run: epochs of triplet steps, validation, checkpoints, early stopping, test. */
export async function train(input: TrainOptions): Promise<TrainResult> {
  const options = { ...input, config: withDataSection(input.config, 'train()') };
  if (options.config.trainer.memory_format === 'channels_last' && DistributedRun.wanted(options.distributed)) {
    throw new ConfigError(
      'trainer.memory_format=channels_last runs in one process only (the gradient buckets and the start-up ' +
        'broadcast take contiguous tensors): use trainer.memory_format=contiguous with several ranks',
    );
  }
  // The device picks the data-parallel backend (NCCL for CUDA where compiled in) and, with one GPU per rank, which.
  const dist = await DistributedRun.join({ device: trainingDevice(options.config), ...options.distributed });
  try {
    return await trainRank(options, dist);
  } finally {
    await dist?.destroy();
  }
}

async function trainRank(
  options: TrainOptions & { config: TrainConfig },
  dist: DistributedRun | null,
): Promise<TrainResult> {
  // Only rank 0 writes; the others keep what they log in a scratch folder (openRun).
  const root = !dist || dist.isRoot;
  // A new run's data is indexed before its folder exists: data without a usable image leaves no failed run behind.
  const index = options.resume ? undefined : await indexTrainingData(options.config, options.dataDir, options.signal);
  const ctx: RunContext = await openRun(options, root ? undefined : { rank: dist!.rank });
  // Rank 0 has reopened the run (completing a checkpoint swap a crash cut short) before the others read it.
  await dist?.group.barrier();
  // `run` is the local folder; everything logged goes through `tracker` (the folder and, when on, MLflow).
  const { config, run, tracker } = ctx;
  const progress = options.progress ?? createProgress(root ? config.trainer.progress : 'none');
  const t = config.trainer;
  const m = config.model;
  let model: TorchModel | undefined;
  let trainer: Trainer | undefined;
  try {
    const threads = options.threads ?? t.threads;
    if (threads > 0) setThreads(threads);
    manualSeed(t.seed);
    const loader = await prepareData(ctx, options.dataDir, options.signal, index);
    const numClasses = config.data.classes.length;
    // A rank of a data-parallel job trains on its own device (cuda:LOCAL_RANK for 'cuda').
    const device = dist ? dist.group.device : trainingDevice(config);
    const checkpoints = new Checkpoints(
      options.resume && !root ? path.join(options.resume, 'checkpoints') : run.checkpointsDir,
    );
    const resumed = options.resume ? await checkpoints.loadState() : undefined;
    const modelFile = resumed ? checkpoints.lastModel : await prepareModel(ctx, options.python);
    model = await TorchModel.load(modelFile, { device });
    // Every checkpoint carries what inference needs: classes and the preprocessing the model was trained with.
    model.native.setMetadata(JSON.stringify(trainingMetadata(config, run.id)));
    trainer = new Trainer(model, trainerOptionsOf(config, device));
    if (resumed) await trainer.loadState(checkpoints.lastTrainer);
    if (dist) {
      const facts = await agreementFacts(config, loader, model, resumed, m.checkpoint || undefined);
      await dist.checkAgreement({ ...facts, 'dist.buckets': dist.buckets });
    }
    const early = new EarlyStopping(t.patience, t.min_delta);
    const state: TrainState = resumed ?? {
      version: 1,
      epoch: 0,
      batch: 0,
      globalStep: 0,
      earlyStopping: early.state,
      partial: emptyPartial(),
      bestEpoch: -1,
      headEpochs: 0,
    };
    early.restore(state.earlyStopping);
    await tracker.logParams({
      device,
      numClasses,
      dataDir: options.dataDir,
      trainImages: loader.split.train.length,
      valImages: loader.split.val.length,
    });
    progress.message(
      `${resumed ? 'resuming' : 'training'} ${run.dir}: ${m.arch} on ${device}, ${loader.split.train.length} train / ` +
        `${loader.split.val.length} val images, ${config.data.image_size}px, batch ${loader.batchSize} triplets` +
        (dist ? ` per rank x ${dist.worldSize} ranks` : ''),
    );
    reportExcluded(progress, loader.split.excluded);
    const schedule = scheduleOf(config);
    const evalOptions = { ...evalOptionsOf(config), ...(options.signal ? { signal: options.signal } : {}) };
    let status: TrainResult['status'] = 'completed';
    // The head phase runs before the fine-tune on every rank alike (each on the whole train split, no gradient
    // averaging); attaching the trainer to the group then gives every rank rank 0's weights.
    const headDone = state.headEpochs ?? (state.globalStep > 0 ? m.head_epochs : 0);
    if (headDone < m.head_epochs) {
      const val = await runHeadPhase(
        { model, trainer, loader, config, state, tracker, progress, evalOptions },
        options.signal,
        async () => {
          if (root) await checkpoints.saveLast(model!, trainer!, state);
        },
      );
      // Ranks stop together.
      const stop = dist ? await dist.anyStop(val === null) : val === null;
      if (stop) {
        progress.message(`interrupted: checkpoint written; continue with --resume ${run.dir}`);
        status = 'interrupted';
      } else if (val) {
        // The model after the head phase is the first candidate for the best checkpoint (best epoch 0): a fine-tune
        // that does worse on val_loss does not replace it.
        if (early.update(val.losses.loss, HEAD_PHASE)) {
          state.bestEpoch = HEAD_PHASE;
          if (root) await checkpoints.saveBest(model);
        }
        state.earlyStopping = early.state;
        if (root) await checkpoints.saveLast(model, trainer, state);
      }
    }
    if (dist) await dist.attach(trainer);
    // `limit` counts the epoch's batches; with W ranks each step takes W of them, one per rank (state.batch counts
    // batches too, so a run resumes with any number of ranks).
    const limit =
      t.limit_train_batches > 0 ? Math.min(t.limit_train_batches, loader.batchesPerEpoch) : loader.batchesPerEpoch;
    const ranks = dist?.worldSize ?? 1;
    const steps = loader.batchesPerRank(ranks, limit);
    for (
      ;
      status !== 'interrupted' && state.epoch < t.max_epochs;
      state.epoch++, state.batch = 0, state.partial = emptyPartial()
    ) {
      const epoch = state.epoch;
      // What people read (metrics.jsonl, plots, progress, summary.json) counts epochs from 1; state.json from 0.
      const shown = epoch + 1;
      const p = state.partial;
      const epochStart = performance.now() - p.seconds * 1000;
      try {
        for await (const batch of loader.epoch(epoch, {
          startBatch: Math.floor(state.batch / ranks),
          // Ranks stop together (below): a rank's loader must not stop on its own.
          ...(options.signal && !dist ? { signal: options.signal } : {}),
          ...(dist ? { shard: { ...dist.shard, batches: limit } } : {}),
        })) {
          if (batch.index >= steps) break;
          trainer.learningRate = learningRateAt(schedule, epoch + (batch.index * ranks) / limit);
          const r = dist ? await dist.step(trainer, batch) : await trainer.step(batch);
          const n = batch.shape[0];
          p.images += n;
          p.loss += r.loss * n;
          p.ce += r.ce * n;
          p.contrastive += r.contrastive * n;
          p.correct += r.correct;
          state.batch = Math.min((batch.index + 1) * ranks, limit);
          state.globalStep++;
          p.seconds = (performance.now() - epochStart) / 1000;
          await tracker.logMetrics(
            { loss: r.loss, ce: r.ce, contrastive: r.contrastive, accuracy: r.correct / n, lr: trainer.learningRate },
            state.globalStep,
            { epoch: shown, split: 'train' },
          );
          progress.step({
            epoch: shown,
            epochs: t.max_epochs,
            step: state.batch,
            steps: limit,
            loss: p.loss / p.images,
            ce: p.ce / p.images,
            contrastive: p.contrastive / p.images,
            accuracy: p.correct / p.images,
            imagesPerSecond: (3 * p.images) / Math.max(p.seconds, 1e-9),
            learningRate: trainer.learningRate,
          });
          const stop = dist ? await dist.anyStop(options.signal?.aborted === true) : options.signal?.aborted;
          if (stop) throw new CancelledError();
        }
      } catch (err) {
        if (!(err instanceof CancelledError)) throw err;
        state.earlyStopping = early.state;
        if (root) await checkpoints.saveLast(model, trainer, state);
        progress.message(`interrupted: checkpoint written; continue with --resume ${run.dir}`);
        status = 'interrupted';
        break;
      }
      // Every rank's share of the epoch counts in its train metrics.
      const [images = 0, loss = 0, correct = 0] = dist
        ? await dist.sum([p.images, p.loss, p.correct])
        : [p.images, p.loss, p.correct];
      // Validation (sharded over the ranks, every rank gets the whole split's metrics).
      const validate = (): Promise<SplitEvaluation> =>
        dist ? dist.evaluate(model!, loader, 'val', evalOptions) : evaluateSplit(model!, loader, 'val', evalOptions);
      const val = await validate();
      // The weights' moving average (model.ema_decay) is validated beside them; the lower val_loss of the two is the
      // epoch's candidate for the best checkpoint, and the average is swapped in while it is saved.
      const ema = m.ema_decay > 0 ? await trainer.withAverage(validate) : undefined;
      const emaWins = ema !== undefined && ema.losses.loss < val.losses.loss;
      const best = early.update(emaWins ? ema.losses.loss : val.losses.loss, epoch);
      if (best) {
        state.bestEpoch = epoch;
        state.bestEma = emaWins;
        const save = (): Promise<void> => checkpoints.saveBest(model!);
        if (root) await (emaWins ? trainer.withAverage(save) : save());
      }
      const metrics: Record<string, number> = {
        train_loss: loss / Math.max(images, 1),
        train_accuracy: correct / Math.max(images, 1),
        val_loss: val.losses.loss,
        val_ce: val.losses.ce,
        val_contrastive: val.losses.contrastive,
        val_accuracy: val.report.accuracy,
        val_f1_macro: val.report.f1Macro,
        ...(ema ? { val_ema_loss: ema.losses.loss, val_ema_accuracy: ema.report.accuracy } : {}),
      };
      await tracker.logMetrics(
        {
          loss: val.losses.loss,
          ce: val.losses.ce,
          contrastive: val.losses.contrastive,
          accuracy: val.report.accuracy,
          f1_micro: val.report.f1Micro,
          f1_macro: val.report.f1Macro,
          ...Object.fromEntries(
            val.report.perClass.flatMap((c, i) => [
              [`precision_${config.data.classes[i]}`, c.precision],
              [`recall_${config.data.classes[i]}`, c.recall],
            ]),
          ),
        },
        state.globalStep,
        { epoch: shown, split: 'val' },
      );
      if (ema) {
        await tracker.logMetrics(
          { loss: ema.losses.loss, accuracy: ema.report.accuracy, f1_macro: ema.report.f1Macro },
          state.globalStep,
          { epoch: shown, split: 'val_ema' },
        );
      }
      progress.epoch({
        epoch: shown,
        epochs: t.max_epochs,
        seconds: (performance.now() - epochStart) / 1000,
        metrics,
        best,
      });
      state.earlyStopping = early.state;
      if (root) {
        await checkpoints.saveLast(model, trainer, { ...state, epoch: epoch + 1, batch: 0, partial: emptyPartial() });
        await ctx.plotCurves();
      }
      if (early.shouldStop) {
        progress.message(
          `early stopping: val_loss has not improved for ${t.patience} epochs (best: ${bestName(early.bestEpoch)})`,
        );
        status = 'early-stopped';
        state.epoch++;
        break;
      }
    }
    const result: TrainResult = {
      runDir: run.dir,
      status,
      epochs: state.epoch,
      bestEpoch: early.best !== null ? early.bestEpoch + 1 : null,
      bestValLoss: early.best,
      ...(m.ema_decay > 0 ? { bestEma: state.bestEma === true } : {}),
    };
    // The test split: rank 0 alone, on the best checkpoint it wrote.
    if (root && status !== 'interrupted' && t.evaluate_test && early.best !== null && loader.split.test.length > 0) {
      await model.dispose();
      model = await TorchModel.load(checkpoints.bestModel, { device });
      result.test = await evaluateSplit(model, loader, 'test', evalOptions);
      await ctx.reportTest(result.test);
      progress.message(
        `test (best: ${bestName(early.bestEpoch, state.bestEma)}): accuracy ${result.test.report.accuracy.toFixed(4)}, ` +
          `F1 macro ${result.test.report.f1Macro.toFixed(4)}, loss ${result.test.losses.loss.toFixed(4)}`,
      );
    }
    if (dist && root) {
      const c = dist.communication();
      progress.message(
        `data-parallel, ${dist.worldSize} ranks: gradient averaging took ${(100 * c.share).toFixed(1)}% of rank 0's ` +
          `step time (${c.syncSeconds.toFixed(1)} of ${c.stepSeconds.toFixed(1)} s over ${c.steps} steps, ` +
          `${(c.bytesPerStep / 2 ** 20).toFixed(1)} MiB per step in ${c.bucketsPerStep.toFixed(0)} buckets; ` +
          `${c.bucketsInBackward} of ${c.buckets} started during backward, ` +
          `${c.bucketsDoneInBackward} done before it returned)`,
      );
      await run.setSummary({
        distributed: {
          world_size: dist.worldSize,
          steps: c.steps,
          step_seconds: c.stepSeconds,
          sync_seconds: c.syncSeconds,
          sync_in_backward_seconds: c.syncInBackwardSeconds,
          sync_share: c.share,
          buckets: c.buckets,
          buckets_in_backward: c.bucketsInBackward,
          buckets_done_in_backward: c.bucketsDoneInBackward,
        },
      });
    }
    if (root) await finishRun(ctx, result);
    return result;
  } catch (err) {
    await endRun(ctx, err instanceof CancelledError ? 'KILLED' : 'FAILED').catch(() => undefined);
    throw err;
  } finally {
    progress.close();
    await trainer?.dispose();
    await model?.dispose();
    await ctx.close();
  }
}
