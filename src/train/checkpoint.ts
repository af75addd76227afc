import fs from 'node:fs/promises';
import path from 'node:path';

import { writeFileAtomic } from '../util/fs.js';
import { ModelLoadError } from '../errors.js';
import type { EarlyStoppingState } from './EarlyStopping.js';
import type { TorchModel } from '../torch/TorchModel.js';
import type { Trainer } from '../torch/Trainer.js';

/** Where training stands: enough, with the model and optimizer files, to continue exactly. */
export interface TrainState {
  version: 1;
  /** The epoch to run next (or the one in progress when `batch` > 0). */
  epoch: number;
  /** Batches of `epoch` already done (a checkpoint written mid-epoch, e.g. on Ctrl-C). */
  batch: number;
  /** Optimizer steps so far. */
  globalStep: number;
  earlyStopping: EarlyStoppingState;
  /** Running sums of the partial epoch's training metrics (weighted by images). */
  partial: { images: number; loss: number; ce: number; contrastive: number; correct: number; seconds: number };
  /** Epoch of the best checkpoint (0-based), -1 before the first validation and for the head phase's model. */
  bestEpoch: number;
  /** Whether the best checkpoint holds the weights' moving average (model.ema_decay) rather than the weights. */
  bestEma?: boolean;
  /** Head epochs done (model.head_epochs); absent in runs written before the head phase existed. */
  headEpochs?: number;
}

export const emptyPartial = (): TrainState['partial'] => ({
  images: 0,
  loss: 0,
  ce: 0,
  contrastive: 0,
  correct: 0,
  seconds: 0,
});

/** checkpoints/last/ (resumable) and checkpoints/best/ (the model with the lowest val_loss). */
export class Checkpoints {
  constructor(readonly dir: string) {}

  get lastDir(): string {
    return path.join(this.dir, 'last');
  }
  get bestModel(): string {
    return path.join(this.dir, 'best', 'model.pt');
  }
  get lastModel(): string {
    return path.join(this.lastDir, 'model.pt');
  }
  get lastTrainer(): string {
    return path.join(this.lastDir, 'trainer.pt');
  }
  get lastState(): string {
    return path.join(this.lastDir, 'state.json');
  }

  /**
   * Writes model, optimizer and state into a new folder, then swaps it in for last/ with renames, so last/ always
   * holds one consistent step: an interruption while saving leaves the previous checkpoint whole.
   */
  async saveLast(model: TorchModel, trainer: Trainer, state: TrainState): Promise<void> {
    const fresh = `${this.lastDir}.new`;
    const old = `${this.lastDir}.old`;
    await fs.rm(fresh, { recursive: true, force: true });
    await fs.mkdir(fresh, { recursive: true });
    await model.save(path.join(fresh, 'model.pt'));
    await trainer.saveState(path.join(fresh, 'trainer.pt'));
    await writeFileAtomic(path.join(fresh, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
    await fs.rm(old, { recursive: true, force: true });
    await fs.rename(this.lastDir, old).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await fs.rename(fresh, this.lastDir);
    await fs.rm(old, { recursive: true, force: true });
  }

  async saveBest(model: TorchModel): Promise<void> {
    await fs.mkdir(path.dirname(this.bestModel), { recursive: true });
    await model.save(this.bestModel);
  }

  async loadState(): Promise<TrainState> {
    // A swap interrupted between its two renames left only last.old: that is the latest whole checkpoint.
    const old = `${this.lastDir}.old`;
    if (!(await exists(this.lastDir)) && (await exists(old))) await fs.rename(old, this.lastDir);
    let text: string;
    try {
      text = await fs.readFile(this.lastState, 'utf8');
    } catch (err) {
      throw new ModelLoadError(`cannot resume: ${this.lastState} is missing (the run has no checkpoint yet)`, {
        cause: err,
      });
    }
    try {
      const state = JSON.parse(text) as TrainState;
      if (state.version !== 1 || !Number.isInteger(state.epoch) || !Number.isInteger(state.batch))
        throw new Error('bad fields');
      return state;
    } catch (err) {
      throw new ModelLoadError(`cannot resume: ${this.lastState} is not a training state file`, { cause: err });
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
