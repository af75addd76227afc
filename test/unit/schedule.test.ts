import { describe, expect, it } from 'vitest';

import { EarlyStopping } from '../../src/train/EarlyStopping.js';
import { learningRateAt } from '../../src/train/schedule.js';

describe('learning-rate schedules', () => {
  it('cosine warms up linearly, peaks after warm-up and decays to the floor', () => {
    const o = { kind: 'cosine', learningRate: 0.1, epochs: 11, warmupEpochs: 1, minLearningRate: 0.001 } as const;
    expect(learningRateAt(o, 0)).toBeCloseTo(0.001, 6); // 1% of peak at the very first step
    expect(learningRateAt(o, 0.5)).toBeCloseTo(0.05, 6);
    expect(learningRateAt(o, 1)).toBeCloseTo(0.1, 6);
    expect(learningRateAt(o, 6)).toBeCloseTo(0.001 + 0.099 * 0.5, 6);
    expect(learningRateAt(o, 11)).toBeCloseTo(0.001, 6);
    for (let e = 1; e < 11; e += 0.5) expect(learningRateAt(o, e + 0.5)).toBeLessThanOrEqual(learningRateAt(o, e));
  });

  it('step decays by gamma every stepSize epochs; constant stays', () => {
    const o = { kind: 'step', learningRate: 1, epochs: 30, stepSize: 10, gamma: 0.5 } as const;
    expect(learningRateAt(o, 9.9)).toBe(1);
    expect(learningRateAt(o, 10)).toBe(0.5);
    expect(learningRateAt(o, 25)).toBe(0.25);
    expect(learningRateAt({ kind: 'constant', learningRate: 0.3, epochs: 5 }, 4)).toBe(0.3);
  });
});

describe('EarlyStopping', () => {
  it('stops after `patience` epochs without an improvement larger than minDelta', () => {
    const es = new EarlyStopping(2, 0.01);
    expect(es.update(1.0, 0)).toBe(true);
    expect(es.update(0.995, 1)).toBe(false); // within minDelta
    expect(es.shouldStop).toBe(false);
    expect(es.update(0.5, 2)).toBe(true);
    expect(es.update(0.6, 3)).toBe(false);
    expect(es.update(NaN, 4)).toBe(false);
    expect(es.shouldStop).toBe(true);
    expect(es.state).toEqual({ best: 0.5, bestEpoch: 2, badEpochs: 2 });
    const copy = new EarlyStopping(2, 0.01);
    copy.restore(es.state);
    expect(copy.shouldStop).toBe(true);
  });

  it('patience 0 never stops', () => {
    const es = new EarlyStopping(0);
    es.update(1, 0);
    for (let i = 1; i < 50; i++) es.update(2, i);
    expect(es.shouldStop).toBe(false);
  });
});
