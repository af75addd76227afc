import { describe, expect, it } from 'vitest';

import {
  entropyThreshold,
  percentileThreshold,
  tensorRange,
  uint8Params,
  type TensorStats,
} from '../../../src/build/calibration.js';
import { cpuNeedsReducedRange } from '../../../src/build/quantize.js';
import { tensorRtCache } from '../../../src/build/calibrate.js';

/** Histogram of |x| for samples, 2048 bins over [0, absMax]. */
function stats(samples: number[], bins = 2048): TensorStats {
  let min = Infinity;
  let max = -Infinity;
  for (const v of samples) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const absMax = Math.max(Math.abs(min), Math.abs(max));
  const histogram = new Float64Array(bins);
  for (const v of samples) {
    const b = Math.min(bins - 1, Math.floor((Math.abs(v) / absMax) * bins));
    histogram[b] = (histogram[b] as number) + 1;
  }
  return { min, max, absMax, histogram };
}

// A deterministic standard normal sample (Box-Muller over a fixed LCG).
function normals(n: number, seed = 1): number[] {
  let s = seed;
  const u = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s + 1) / (2 ** 31 + 1);
  };
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('calibration ranges', () => {
  it('max keeps the whole observed range and always contains 0', () => {
    expect(tensorRange(stats([0.5, 2, 3]), 'max')).toEqual({ min: 0, max: 3 });
    expect(tensorRange(stats([-1, 2]), 'max')).toEqual({ min: -1, max: 2 });
  });

  it('percentile clips the rare outliers of a Gaussian, entropy too, max does not', () => {
    const data = [...normals(50_000), 40]; // one huge outlier
    const s = stats(data);
    const p = tensorRange(s, 'percentile', 99.9);
    const e = tensorRange(s, 'entropy');
    expect(tensorRange(s, 'max').max).toBe(40);
    expect(p.max).toBeGreaterThan(2.5);
    expect(p.max).toBeLessThan(5);
    expect(e.max).toBeGreaterThan(2);
    expect(e.max).toBeLessThan(40);
    expect(e.min).toBeLessThan(0);
  });

  it('entropy keeps the whole range of a uniform distribution', () => {
    const uniform = Array.from({ length: 20_000 }, (_, i) => (i / 20_000) * 6);
    expect(entropyThreshold(stats(uniform).histogram, 6, 256)).toBeGreaterThan(5.9);
  });

  it('entropy is not pulled down by a spike of exact zeros (ReLU outputs)', () => {
    const relu = normals(40_000).map((v) => Math.max(0, v));
    const t = entropyThreshold(stats(relu).histogram, Math.max(...relu), 256);
    expect(t).toBeGreaterThan(2);
  });

  it('percentile of a known histogram', () => {
    const h = new Float64Array(100).fill(1); // uniform over [0, 10]
    expect(percentileThreshold(h, 10, 50)).toBeCloseTo(5, 5);
    expect(percentileThreshold(h, 10, 100)).toBe(10);
    expect(percentileThreshold(new Float64Array(10), 3, 99)).toBe(3);
  });

  it('uint8 parameters map the range ends to 0 and 255 and 0 exactly to the zero point', () => {
    const { scale, zeroPoint } = uint8Params({ min: -1, max: 3 });
    expect(scale).toBeCloseTo(4 / 255, 10);
    expect(zeroPoint).toBe(64);
    expect(uint8Params({ min: 0, max: 6 }).zeroPoint).toBe(0);
    expect(uint8Params({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('reduced-range weights only on x86 without VNNI', () => {
    expect(cpuNeedsReducedRange('flags : fpu sse4_1 avx avx2 fma')).toBe(true);
    expect(cpuNeedsReducedRange('flags : fpu sse4_1 avx2 avx512f avx512_vnni')).toBe(false);
    expect(cpuNeedsReducedRange('Features : fp asimd aes')).toBe(false);
  });

  it('writes a TensorRT calibration cache: header and big-endian float32 scales', () => {
    const text = tensorRtCache(new Map([['input', { min: -1.27, max: 1.27 }]]));
    const [header, line] = text.trim().split('\n');
    expect(header).toMatch(/^TRT-\d+-EntropyCalibration2$/);
    const hex = line!.split(': ')[1]!;
    expect(Buffer.from(hex, 'hex').readFloatBE(0)).toBeCloseTo(0.01, 6);
  });
});
