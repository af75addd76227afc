/**
 * Activation ranges for INT8 from per-tensor statistics: the minimum, the maximum and a histogram of |x| over
 * [0, absmax] (2048 bins by default, as TensorRT's calibrators).
 */

export type CalibrationMethod = 'entropy' | 'max' | 'percentile';

export interface TensorStats {
  min: number;
  max: number;
  /** Counts of |x| in `bins` equal bins over [0, absMax]; empty when only min/max were collected. */
  histogram: Float64Array;
  /** Upper edge of the histogram. */
  absMax: number;
}

/** A tensor's quantisation range; it always contains 0. */
export interface Range {
  min: number;
  max: number;
}

/**
 * The clipping threshold that minimises the KL divergence between the reference distribution of |x| and its
 * `quantBins`-level quantisation: TensorRT's entropy calibration. `histogram` covers [0, absMax].
 */
export function entropyThreshold(source: ArrayLike<number>, absMax: number, quantBins = 128): number {
  const bins = source.length;
  if (bins === 0 || absMax <= 0) return absMax;
  // The spike of exact zeros (ReLU outputs) says nothing about where to clip and would dominate the divergence,
  // pulling the threshold down to the smallest candidate: it counts as much as its neighbour (as NVIDIA's
  // calibrators do).
  const histogram = Float64Array.from(source);
  if (bins > 1) histogram[0] = histogram[1] as number;
  const width = absMax / bins;
  let total = 0;
  for (let i = 0; i < bins; i++) total += histogram[i] as number;
  if (total === 0) return absMax;
  let bestKl = Infinity;
  let bestI = bins;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = quantBins; i <= bins; i++) {
    // Reference: the first i bins, with everything beyond clipped into the last one.
    let outliers = 0;
    for (let k = i; k < bins; k++) outliers += histogram[k] as number;
    for (let k = 0; k < i; k++) p[k] = histogram[k] as number;
    p[i - 1] = (p[i - 1] as number) + outliers;
    // Candidate: the first i bins merged into quantBins levels, each level spread back over its non-empty bins.
    const merge = i / quantBins;
    for (let j = 0; j < quantBins; j++) {
      const start = Math.floor(j * merge);
      const end = j === quantBins - 1 ? i : Math.floor((j + 1) * merge);
      let sum = 0;
      let nonZero = 0;
      for (let k = start; k < end; k++) {
        const h = histogram[k] as number;
        sum += h;
        if (h !== 0) nonZero++;
      }
      for (let k = start; k < end; k++) q[k] = (histogram[k] as number) === 0 || nonZero === 0 ? 0 : sum / nonZero;
    }
    const kl = klDivergence(p, q, i);
    if (kl < bestKl) {
      bestKl = kl;
      bestI = i;
    }
  }
  return (bestI + 0.5) * width > absMax ? absMax : (bestI + 0.5) * width;
}

/** KL(P || Q) over the first n entries, both normalised; bins where P > 0 and Q = 0 get a small Q (smoothing). */
function klDivergence(p: Float64Array, q: Float64Array, n: number): number {
  let sp = 0;
  let sq = 0;
  for (let k = 0; k < n; k++) {
    sp += p[k] as number;
    sq += q[k] as number;
  }
  if (sp === 0 || sq === 0) return Infinity;
  let kl = 0;
  for (let k = 0; k < n; k++) {
    const pk = (p[k] as number) / sp;
    if (pk === 0) continue;
    const qk = Math.max((q[k] as number) / sq, 1e-12);
    kl += pk * Math.log(pk / qk);
  }
  return kl;
}

/** The value below which `percentile` % of |x| falls, from the histogram. */
export function percentileThreshold(histogram: ArrayLike<number>, absMax: number, percentile: number): number {
  let total = 0;
  for (let i = 0; i < histogram.length; i++) total += histogram[i] as number;
  if (total === 0 || absMax <= 0) return absMax;
  const target = (total * percentile) / 100;
  let acc = 0;
  const width = absMax / histogram.length;
  for (let i = 0; i < histogram.length; i++) {
    acc += histogram[i] as number;
    if (acc >= target) return Math.min(absMax, (i + 1) * width);
  }
  return absMax;
}

/** The range of a tensor for a method: the threshold T clips |x|, then the range is [max(min, -T), min(max, T)] ∪ {0}. */
export function tensorRange(stats: TensorStats, method: CalibrationMethod, percentile = 99.99): Range {
  let t = stats.absMax;
  // A tensor that is never negative gets all 256 uint8 levels over [0, T]; a signed one about 128 per side.
  if (method === 'entropy') t = entropyThreshold(stats.histogram, stats.absMax, stats.min >= 0 ? 256 : 128);
  else if (method === 'percentile') t = percentileThreshold(stats.histogram, stats.absMax, percentile);
  const min = Math.min(0, Math.max(stats.min, -t));
  const max = Math.max(0, Math.min(stats.max, t));
  return { min, max };
}

/** uint8 asymmetric quantisation parameters of a range: x ≈ (q - zeroPoint) * scale. */
export function uint8Params(range: Range): { scale: number; zeroPoint: number } {
  const span = range.max - range.min;
  if (!(span > 0)) return { scale: 1, zeroPoint: 0 };
  const scale = span / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-range.min / scale)));
  return { scale, zeroPoint };
}
