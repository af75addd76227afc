/** Learning-rate schedules, evaluated per optimizer step (fractional epochs) so warm-up is smooth. */
export interface ScheduleOptions {
  /** 'cosine' (linear warm-up, then cosine decay to minLearningRate), 'step' (x gamma every stepSize epochs) or 'constant'. */
  kind: 'cosine' | 'step' | 'constant';
  /** Peak learning rate. */
  learningRate: number;
  /** Total epochs of the run (cosine decays to its floor at the end). */
  epochs: number;
  /** Warm-up length in epochs (cosine). Defaults to 0. */
  warmupEpochs?: number;
  /** Floor of the cosine schedule. Defaults to 0. */
  minLearningRate?: number;
  /** Epochs between decays (step). Defaults to 10. */
  stepSize?: number;
  /** Decay factor (step). Defaults to 0.1. */
  gamma?: number;
}

/** The learning rate at `epoch` (a fractional epoch: 2.5 is halfway through the third epoch). */
export function learningRateAt(o: ScheduleOptions, epoch: number): number {
  const lr = o.learningRate;
  switch (o.kind) {
    case 'constant':
      return lr;
    case 'step':
      return lr * (o.gamma ?? 0.1) ** Math.floor(epoch / (o.stepSize ?? 10));
    case 'cosine': {
      const warm = o.warmupEpochs ?? 0;
      const floor = o.minLearningRate ?? 0;
      // Warm-up starts at a small non-zero rate so the first step moves the weights.
      if (epoch < warm) return lr * Math.max(epoch / warm, 0.01);
      const span = Math.max(o.epochs - warm, 1e-9);
      const t = Math.min(Math.max((epoch - warm) / span, 0), 1);
      return floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
    }
  }
}
