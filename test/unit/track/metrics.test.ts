import { describe, expect, it } from 'vitest';

import { argmaxRows, classificationReport, confusionMatrix } from '../../../src/track/metrics.js';

const i32 = (a: number[]): Int32Array => Int32Array.from(a);

describe('classificationReport', () => {
  it('matches hand-computed values; a class absent from both labels is left out of the macro mean', () => {
    // true 0 0 0 1 1 2 2 2 / pred 0 0 1 1 2 2 2 0, 4 classes (class 3 never occurs)
    const r = classificationReport(i32([0, 0, 0, 1, 1, 2, 2, 2]), i32([0, 0, 1, 1, 2, 2, 2, 0]), 4);
    expect(r.confusion).toEqual([
      [2, 1, 0, 0],
      [0, 1, 1, 0],
      [1, 0, 2, 0],
      [0, 0, 0, 0],
    ]);
    expect(r.count).toBe(8);
    expect(r.accuracy).toBeCloseTo(5 / 8, 12);
    expect(r.f1Micro).toBeCloseTo(5 / 8, 12);
    expect(r.perClass[0]).toMatchObject({ support: 3, predicted: 3 });
    expect(r.perClass[0]?.precision).toBeCloseTo(2 / 3, 12);
    expect(r.perClass[0]?.recall).toBeCloseTo(2 / 3, 12);
    expect(r.perClass[1]?.f1).toBeCloseTo(1 / 2, 12);
    expect(r.perClass[2]?.f1).toBeCloseTo(2 / 3, 12);
    expect(r.perClass[3]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 0 });
    expect(r.f1Macro).toBeCloseTo((2 / 3 + 1 / 2 + 2 / 3) / 3, 12); // 11/18
  });

  it('defines 0 for a class that is predicted but never true, and one true but never predicted', () => {
    // class 2: predicted once, support 0
    const r = classificationReport(i32([0, 0, 1, 1]), i32([0, 2, 1, 1]), 3);
    expect(r.perClass[0]?.precision).toBe(1);
    expect(r.perClass[0]?.recall).toBe(0.5);
    expect(r.perClass[0]?.f1).toBeCloseTo(2 / 3, 12);
    expect(r.perClass[1]).toMatchObject({ precision: 1, recall: 1, f1: 1 });
    expect(r.perClass[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 1 });
    expect(r.f1Macro).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12); // 5/9
    expect(r.precisionMacro).toBeCloseTo(2 / 3, 12);
    expect(r.recallMacro).toBeCloseTo(0.5, 12);
    expect(r.accuracy).toBe(0.75);

    // class 0: support 1, never predicted
    const s = classificationReport(i32([0, 1]), i32([1, 1]), 2);
    expect(s.perClass[0]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1, predicted: 0 });
    expect(s.perClass[1]?.f1).toBeCloseTo(2 / 3, 12);
    expect(s.f1Macro).toBeCloseTo(1 / 3, 12);
    expect(s.f1Micro).toBe(0.5);
  });

  it('gives zeros, not NaN, for no samples', () => {
    const r = classificationReport(i32([]), i32([]), 3);
    expect(r).toMatchObject({ count: 0, accuracy: 0, f1Micro: 0, f1Macro: 0, precisionMacro: 0, recallMacro: 0 });
    expect(r.perClass.every((m) => m.f1 === 0 && m.precision === 0 && m.recall === 0)).toBe(true);
  });

  it('rejects bad input with RangeError / TypeError', () => {
    expect(() => confusionMatrix(i32([0, 1]), i32([0]), 2)).toThrow(RangeError);
    expect(() => confusionMatrix(i32([0, 2]), i32([0, 1]), 2)).toThrow(/labels in \[0, 2\)/);
    expect(() => confusionMatrix(i32([-1]), i32([0]), 2)).toThrow(RangeError);
    expect(() => confusionMatrix(i32([0]), i32([0]), 0)).toThrow(/`numClasses`/);
    expect(() => confusionMatrix([0] as unknown as Int32Array, i32([0]), 2)).toThrow(TypeError);
  });
});

describe('argmaxRows', () => {
  it('picks the largest logit per row', () => {
    expect(Array.from(argmaxRows(Float32Array.from([0.1, 2, -1, 5, 4, 3]), 3))).toEqual([1, 0]);
    expect(() => argmaxRows(new Float32Array(5), 3)).toThrow(RangeError);
  });
});
