import type { Command } from 'commander';

import { loadTrainConfig } from '../../config/index.js';
import type { DistBackend } from '../../dist/ProcessGroup.js';
import { CancelledError } from '../../errors.js';
import type { ProgressMode } from '../../train/progress.js';
import { interruptExitCode, withInterrupt } from '../interrupt.js';

interface TrainFlags {
  config?: string;
  dataDir?: string;
  resume?: string;
  progress?: ProgressMode;
  python?: string;
  nproc?: string;
  distBackend?: string;
  threads?: string;
  distTimeout?: string;
  bucketMb?: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`Expected a positive integer for ${flag} but received '${value}'`);
  return n;
}

const FIRST_BUCKET_BYTES = 2 ** 20;

/** --bucket-mb in bytes: a number of MiB above 0 (fractions allowed, as DDP's bucket_cap_mb), at most 1 TiB. */
function bucketBytesOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const mb = Number(value);
  if (!Number.isFinite(mb) || mb <= 0 || mb > 2 ** 20) {
    throw new RangeError(
      `Expected a number of MiB between 0 (excluded) and 1048576 for --bucket-mb but received '${value}'`,
    );
  }
  return Math.max(1, Math.round(mb * 2 ** 20));
}

/** --dist-backend: auto, gloo or nccl. */
function distBackendOf(value: string | undefined): DistBackend | 'auto' | undefined {
  if (value === undefined) return undefined;
  if (value === 'auto' || value === 'gloo' || value === 'nccl') return value;
  throw new RangeError(`Expected auto, gloo or nccl for --dist-backend but received '${value}'`);
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('train a classifier: configs/train.yaml (+ data.yaml, model.yaml) with key=value overrides')
    .argument(
      '[overrides...]',
      'config overrides, e.g. trainer.max_epochs=25 data.batch_size=16 model.learning_rate=0.001',
    )
    .option('--config <file>', 'top config file (default: the package configs/train.yaml)')
    .option('--data-dir <dir>', 'tf_flowers folder (else config data.root, TRT_FLOWERS_DATA, or a download)')
    .option('--resume <runDir>', 'continue a run from its last checkpoint (its own config is used)')
    .option('--progress <mode>', 'auto | bar | plain | json | none (default: trainer.progress)')
    .option(
      '--python <path>',
      'Python with torch for the backbone export (default: TRT_FLOWERS_PYTHON or /usr/bin/python3)',
    )
    .option(
      '--nproc <n>',
      'data-parallel: start n ranks on this machine, cores / n threads each (default: 1, this process alone)',
    )
    .option('--threads <n>', 'libtorch threads of this process (default: trainer.threads)')
    .option(
      '--dist-timeout <seconds>',
      'data-parallel: a rank that dies, hangs or never joins ends the others after this long (default: 300)',
    )
    .option(
      '--dist-backend <name>',
      'data-parallel: auto | gloo | nccl (default: TRT_FLOWERS_DIST_BACKEND, else auto: nccl on CUDA where built in)',
    )
    .option(
      '--bucket-mb <MiB>',
      "data-parallel: gradient bucket size, as DDP's bucket_cap_mb (the first bucket is at most 1 MiB; default: 25)",
    )
    .action(async (overrides: string[], flags: TrainFlags) => {
      if (flags.resume && overrides.length) {
        throw new RangeError('--resume continues a run with its saved config: drop the key=value overrides');
      }
      const nproc = positiveInt(flags.nproc, '--nproc');
      const threads = positiveInt(flags.threads, '--threads');
      const timeout = positiveInt(flags.distTimeout, '--dist-timeout');
      const bucketBytes = bucketBytesOf(flags.bucketMb);
      const backend = distBackendOf(flags.distBackend);
      if (nproc !== undefined && nproc > 1 && !process.env.WORLD_SIZE) {
        const { launchLocal, withoutNproc } = await import('../launch.js');
        process.exitCode = await launchLocal({
          nproc,
          args: withoutNproc(process.argv.slice(2)).filter(
            (a, i, all) => a !== '--threads' && all[i - 1] !== '--threads',
          ),
          ...(threads !== undefined ? { threads } : {}),
        });
        return;
      }
      const { config, raw } = loadTrainConfig({
        ...(flags.config ? { file: flags.config } : {}),
        overrides: flags.progress ? [...overrides, `trainer.progress=${flags.progress}`] : overrides,
      });
      const [{ resolveTrainingData, runDataDir }, { createProgress }, { train }] = await Promise.all([
        import('../../train/data-source.js'),
        import('../../train/progress.js'),
        import('../../train/train.js'),
      ]);
      await withInterrupt(async (signal) => {
        try {
          const dataDir = await resolveTrainingData(
            flags.dataDir ?? (flags.resume ? await runDataDir(flags.resume) : undefined),
            config,
            signal,
          );
          const result = await train({
            config,
            rawConfig: raw,
            dataDir,
            signal,
            // Ranks other than 0 train quietly (their failures still reach stderr).
            progress: createProgress(process.env.RANK && process.env.RANK !== '0' ? 'none' : config.trainer.progress),
            ...(flags.resume ? { resume: flags.resume } : {}),
            ...(flags.python ? { python: flags.python } : {}),
            ...(threads !== undefined ? { threads } : {}),
            distributed: {
              ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
              ...(backend !== undefined ? { backend } : {}),
              ...(bucketBytes !== undefined
                ? { bucketBytes, firstBucketBytes: Math.min(bucketBytes, FIRST_BUCKET_BYTES) }
                : {}),
            },
          });
          // One summary line per job: rank 0's.
          if (process.env.RANK && process.env.RANK !== '0') return;
          const summary = {
            run_dir: result.runDir,
            status: result.status,
            epochs: result.epochs,
            best_epoch: result.bestEpoch,
            best_val_loss: result.bestValLoss,
            ...(result.test
              ? { test_accuracy: result.test.report.accuracy, test_f1_macro: result.test.report.f1Macro }
              : {}),
          };
          process.stdout.write(`${JSON.stringify(summary)}\n`);
          if (result.status === 'interrupted') process.exitCode = interruptExitCode(signal);
        } catch (err) {
          // Stopped outside a training step (download, indexing, validation): no new checkpoint, same exit code.
          if (!(err instanceof CancelledError) || !signal.aborted) throw err;
          process.stderr.write(`interrupted: ${err.message}\n`);
          process.exitCode = interruptExitCode(signal);
        }
      });
    });
}
