/**
 * Latency statistics of a benchmark: percentiles, mean, spread, throughput.
 *
 * Percentiles use linear interpolation between the closest ranks by default (Hyndman and Fan's type 7, NumPy's
 * `percentile` default): for n sorted samples x[0..n-1], the p-th percentile is at position h = (n - 1) * p / 100,
 * x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]). So p0 is the minimum, p100 the maximum and p50 the
 * usual median. 'nearest-rank' (x[ceil(n * p / 100) - 1], always an observed sample, as trtexec reports) is there
 * too. Both are non-decreasing in p, hence min <= p50 <= p90 <= p95 <= p99 <= max.
 */

export type PercentileMethod = 'linear' | 'nearest-rank';

/** Summary of one set of latencies, in the samples' unit (milliseconds in the bench). */
export interface LatencyStats {
  count: number;
  min: number;
  mean: number;
  /** The 50th percentile. */
  median: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  /** Sample standard deviation (n - 1); 0 for a single sample. */
  stddev: number;
  /** Sum of the samples. */
  total: number;
}

/** The p-th percentile (0..100) of samples sorted in ascending order. Throws RangeError on empty input or bad p. */
export function percentile(sorted: readonly number[], p: number, method: PercentileMethod = 'linear'): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('Expected at least one sample but received none');
  if (typeof p !== 'number' || !(p >= 0 && p <= 100)) {
    throw new RangeError(`Expected a percentile between 0 and 100 but received ${String(p)}`);
  }
  if (method === 'nearest-rank') {
    const rank = Math.max(1, Math.ceil((n * p) / 100));
    return sorted[rank - 1] as number;
  }
  if (method !== 'linear') {
    throw new RangeError(`Expected 'linear' or 'nearest-rank' for \`method\` but received ${String(method)}`);
  }
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (h - lo) * (b - a);
}

/** Min, mean, percentiles, max and standard deviation of unsorted samples (left unchanged). */
export function summarize(samples: readonly number[], method: PercentileMethod = 'linear'): LatencyStats {
  if (samples.length === 0) throw new RangeError('Expected at least one sample but received none');
  for (const [i, x] of samples.entries()) {
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new RangeError(`Expected finite numbers but sample ${i} is ${String(x)}`);
    }
  }
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  const n = list.length;
  let total = 0;
  for (const x of list) total += x;
  const mean = total / n;
  let squares = 0;
  for (const x of list) squares += (x - mean) ** 2;
  return {
    count: n,
    min: list[0] as number,
    mean,
    median: percentile(list, 50, method),
    p90: percentile(list, 90, method),
    p95: percentile(list, 95, method),
    p99: percentile(list, 99, method),
    max: list[n - 1] as number,
    stddev: n > 1 ? Math.sqrt(squares / (n - 1)) : 0,
    total,
  };
}

/** Images and batches per second of `iterations` batches of `batch` images done in `wallMs` milliseconds. */
export function throughput(
  iterations: number,
  batch: number,
  wallMs: number,
): { imagesPerSecond: number; batchesPerSecond: number } {
  if (!(wallMs > 0)) throw new RangeError(`Expected a positive wall time but received ${String(wallMs)}`);
  const batchesPerSecond = iterations / (wallMs / 1000);
  return { imagesPerSecond: batchesPerSecond * batch, batchesPerSecond };
}
