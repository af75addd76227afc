/** The serialisable state of EarlyStopping (saved in checkpoints for exact resume). */
export interface EarlyStoppingState {
  best: number | null;
  bestEpoch: number;
  badEpochs: number;
}

/** Stops when the monitored value (val_loss) has not improved by more than minDelta for `patience` epochs. */
export class EarlyStopping {
  best: number | null = null;
  bestEpoch = -1;
  badEpochs = 0;

  /** patience 0 turns stopping off (improvements are still tracked for the best checkpoint). */
  constructor(
    readonly patience: number,
    readonly minDelta = 0,
  ) {}

  /** Records an epoch's value; returns whether it is a new best. Non-finite values never improve. */
  update(value: number, epoch: number): boolean {
    if (Number.isFinite(value) && (this.best === null || value < this.best - this.minDelta)) {
      this.best = value;
      this.bestEpoch = epoch;
      this.badEpochs = 0;
      return true;
    }
    this.badEpochs++;
    return false;
  }

  get shouldStop(): boolean {
    return this.patience > 0 && this.badEpochs >= this.patience;
  }

  get state(): EarlyStoppingState {
    return { best: this.best, bestEpoch: this.bestEpoch, badEpochs: this.badEpochs };
  }

  restore(s: EarlyStoppingState): void {
    this.best = s.best;
    this.bestEpoch = s.bestEpoch;
    this.badEpochs = s.badEpochs;
  }
}
