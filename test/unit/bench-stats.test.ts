import { describe, expect, it } from 'vitest';

import { assignLabels, computeRatios, pickBaseline } from '../../src/bench/compare.js';
import { fmtMs, formatTable, toMarkdown } from '../../src/bench/report.js';
import { percentile, summarize, throughput, type PercentileMethod } from '../../src/bench/stats.js';
import { timeCalls } from '../../src/bench/timing.js';
import type { BenchEngine, BenchReport, BenchResult } from '../../src/bench/types.js';
import { CancelledError } from '../../src/errors.js';

/** A deterministic heavy-tailed sample: mostly 10-12 ms, a few slow calls (what latencies look like). */
function latencyLike(n: number): number[] {
  let state = 12345;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  return Array.from({ length: n }, () => {
    const u = next();
    return u > 0.98 ? 30 + 100 * next() : 10 + 2 * next();
  });
}

describe('percentiles', () => {
  it('linear interpolation matches the textbook values on 1..10', () => {
    const xs = [7, 3, 10, 1, 5, 9, 2, 8, 6, 4];
    const s = summarize(xs);
    expect(s.count).toBe(10);
    expect(s.min).toBe(1);
    expect(s.max).toBe(10);
    expect(s.mean).toBe(5.5);
    expect(s.median).toBe(5.5);
    expect(s.p90).toBeCloseTo(9.1, 12);
    expect(s.p95).toBeCloseTo(9.55, 12);
    expect(s.p99).toBeCloseTo(9.91, 12);
    expect(s.total).toBe(55);
    expect(s.stddev).toBeCloseTo(Math.sqrt(82.5 / 9), 12);
    expect(xs).toEqual([7, 3, 10, 1, 5, 9, 2, 8, 6, 4]); // input left unsorted
  });

  it('nearest rank returns observed samples (the classic 15, 20, 35, 40, 50 example)', () => {
    const xs = [15, 20, 35, 40, 50];
    const nr = (p: number): number => percentile(xs, p, 'nearest-rank');
    expect([nr(0), nr(5), nr(30), nr(40), nr(50), nr(90), nr(100)]).toEqual([15, 15, 20, 20, 35, 50, 50]);
    expect(percentile(xs, 40)).toBeCloseTo(29, 12);
    expect(percentile(xs, 90)).toBeCloseTo(46, 12);
    const s = summarize([7, 3, 10, 1, 5, 9, 2, 8, 6, 4], 'nearest-rank');
    expect([s.median, s.p90, s.p95, s.p99]).toEqual([5, 9, 10, 10]);
  });

  it('keeps min <= p50 <= p90 <= p95 <= p99 <= max, with both methods and any sample size', () => {
    for (const method of ['linear', 'nearest-rank'] as PercentileMethod[]) {
      for (const n of [1, 2, 3, 7, 100, 1000, 1001]) {
        const s = summarize(latencyLike(n), method);
        const chain = [s.min, s.median, s.p90, s.p95, s.p99, s.max];
        for (let i = 1; i < chain.length; i++) expect(chain[i]).toBeGreaterThanOrEqual(chain[i - 1] as number);
        expect(s.mean).toBeGreaterThanOrEqual(s.min);
        expect(s.mean).toBeLessThanOrEqual(s.max);
      }
    }
    const sorted = latencyLike(500).sort((a, b) => a - b);
    let last = -Infinity;
    for (let p = 0; p <= 100; p += 0.5) {
      const v = percentile(sorted, p);
      expect(v).toBeGreaterThanOrEqual(last);
      last = v;
    }
    expect(percentile(sorted, 0)).toBe(sorted[0]);
    expect(percentile(sorted, 100)).toBe(sorted[499]);
  });

  it('a single sample is every percentile, with no spread', () => {
    const s = summarize([4.2]);
    expect([s.min, s.median, s.p90, s.p99, s.max, s.mean]).toEqual([4.2, 4.2, 4.2, 4.2, 4.2, 4.2]);
    expect(s.stddev).toBe(0);
  });

  it('rejects empty input, non-finite samples and percentiles outside 0..100', () => {
    expect(() => summarize([])).toThrow(RangeError);
    expect(() => summarize([1, Number.NaN])).toThrow(/sample 1 is NaN/);
    expect(() => summarize([1, Infinity])).toThrow(RangeError);
    expect(() => percentile([1, 2], 101)).toThrow(RangeError);
    expect(() => percentile([1, 2], -1)).toThrow(RangeError);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 50, 'median' as PercentileMethod)).toThrow(RangeError);
  });

  it('throughput counts images and batches per wall-clock second', () => {
    expect(throughput(1000, 16, 2000)).toEqual({ imagesPerSecond: 8000, batchesPerSecond: 500 });
    expect(throughput(3, 1, 1500).batchesPerSecond).toBe(2);
    expect(() => throughput(1, 1, 0)).toThrow(RangeError);
  });

  it('formats milliseconds with three significant digits', () => {
    expect([fmtMs(0.51234), fmtMs(5.1234), fmtMs(51.234), fmtMs(512.34), fmtMs(undefined)]).toEqual([
      '0.512',
      '5.12',
      '51.2',
      '512',
      '-',
    ]);
  });
});

describe('the measurement loop', () => {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('warms up by time, then runs at least the iterations and at least the duration', async () => {
    const seen: number[] = [];
    const r = await timeCalls(
      async (i) => {
        seen.push(i);
        await sleep(2);
      },
      { warmupMs: 20, iterations: 5, durationMs: 60 },
    );
    expect(r.warmupIterations).toBeGreaterThanOrEqual(1);
    expect(r.warmupMs).toBeGreaterThanOrEqual(20);
    expect(r.latenciesMs.length).toBeGreaterThanOrEqual(5);
    expect(r.wallMs).toBeGreaterThanOrEqual(60);
    for (const l of r.latenciesMs) expect(l).toBeGreaterThanOrEqual(0.9); // a 2 ms timer fires after at least ~1 ms
    // Every call numbered once, warm-up first.
    expect(seen).toEqual(Array.from({ length: r.warmupIterations + r.latenciesMs.length }, (_, i) => i));
    const sum = r.latenciesMs.reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThanOrEqual(r.wallMs + 1e-6);
  });

  it('runs exactly the iterations when they take longer than the duration; at least one warm-up call', async () => {
    const r = await timeCalls(() => Promise.resolve(), { warmupMs: 0, iterations: 30, durationMs: 0 });
    expect(r.latenciesMs).toHaveLength(30);
    expect(r.warmupIterations).toBe(1);
  });

  it('stops with CancelledError when the signal fires, and passes on a failing call', async () => {
    const controller = new AbortController();
    const run = timeCalls(() => sleep(1), {
      warmupMs: 0,
      iterations: 1_000_000,
      durationMs: 0,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 30);
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    await expect(
      timeCalls(() => Promise.reject(new Error('boom')), { warmupMs: 0, iterations: 1, durationMs: 0 }),
    ).rejects.toThrow('boom');
    await expect(timeCalls(() => Promise.resolve(), { warmupMs: 0, iterations: 0, durationMs: 0 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('engine comparison and the report', () => {
  const engine = (
    backend: BenchEngine['backend'],
    precision: BenchEngine['precision'],
    model: string,
  ): BenchEngine => ({
    label: '',
    backend,
    precision,
    device: 'cpu',
    model,
    status: 'ok',
  });
  const result = (engineLabel: string, batch: number, p50: number, ips: number): BenchResult => ({
    engine: engineLabel,
    batch,
    mode: 'model',
    status: 'ok',
    iterations: 10,
    warmupIterations: 1,
    warmupMs: 200,
    wallMs: 1000,
    latencyMs: { ...summarize([p50]), median: p50 },
    imagesPerSecond: ips,
    batchesPerSecond: ips / batch,
    phases: null,
  });

  it('labels engines uniquely, picks libtorch fp32 as the default baseline, and computes ratios', () => {
    const engines = [
      engine('onnxruntime', 'fp32', '/m/a.onnx'),
      engine('onnxruntime', 'fp32', '/m/b.onnx'),
      engine('libtorch', 'fp32', '/m/a.pt'),
      engine('onnxruntime', 'int8', '/m/a.int8.onnx'),
      { ...engine('tensorrt', 'fp16', '/m/a.engine'), status: 'unavailable' as const, reason: 'no TensorRT' },
    ];
    assignLabels(engines);
    expect(engines.map((e) => e.label)).toEqual([
      'onnxruntime fp32 cpu (a.onnx)',
      'onnxruntime fp32 cpu (b.onnx)',
      'libtorch fp32 cpu',
      'onnxruntime int8 cpu',
      'tensorrt fp16 cpu',
    ]);
    expect(pickBaseline(engines)?.label).toBe('libtorch fp32 cpu');
    expect(pickBaseline(engines, 'int8')?.label).toBe('onnxruntime int8 cpu');
    expect(pickBaseline(engines, 'tensorrt')?.label).toBe('libtorch fp32 cpu'); // unavailable: not a baseline
    const results = [
      result('libtorch fp32 cpu', 1, 20, 50),
      result('onnxruntime int8 cpu', 1, 5, 200),
      result('onnxruntime int8 cpu', 16, 50, 320),
    ];
    computeRatios(results, 'libtorch fp32 cpu');
    expect(results[0]?.vsBaseline).toEqual({ throughput: 1, latencyP50: 1 });
    expect(results[1]?.vsBaseline).toEqual({ throughput: 4, latencyP50: 4 });
    expect(results[2]?.vsBaseline).toBeNull(); // no baseline at batch 16
  });

  it('renders the terminal table and Markdown with every engine, unavailable ones with their reason', () => {
    const engines = [
      engine('libtorch', 'fp32', '/m/a.pt'),
      { ...engine('tensorrt', 'int8', '/m/a.engine'), status: 'unavailable' as const, reason: 'no TensorRT here' },
    ];
    assignLabels(engines);
    const results = [result('libtorch fp32 cpu', 1, 20, 50)];
    computeRatios(results, 'libtorch fp32 cpu');
    const report: BenchReport = {
      format: 'trt-flowers-bench/1',
      startedAt: '2026-01-01T00:00:00.000Z',
      wallSeconds: 12,
      command: 'trt-flowers bench --model-path a.pt',
      settings: {
        iterations: 10,
        warmupMs: 200,
        durationS: 1,
        batches: [1],
        modes: ['model'],
        threads: 2,
        percentileMethod: 'linear',
        images: 0,
        imagesFrom: null,
        jpegDecoder: 'sharp',
        decode: 'auto',
        evalSplit: null,
      },
      machine: {
        hostname: 'h',
        os: 'Linux',
        cpu: { model: 'Test CPU', cores: 2, threads: 2 },
        memoryGiB: 8,
        loadAverage: [0, 0, 0],
        gpus: [],
        versions: {
          node: 'v20',
          libtorch: '1.13',
          libtorchCuda: null,
          onnxruntime: '1.2',
          tensorrt: null,
          sharp: '0.3',
          libvips: '8',
          trtFlowers: '0.1.0',
        },
        git: { commit: 'abcdef1234567890', dirty: false },
      },
      loadAverageAtEnd: [1, 0.5, 0.25],
      baseline: 'libtorch fp32 cpu',
      engines,
      results,
      notes: ['a note'],
    };
    const table = formatTable(report);
    expect(table.split('\n')[0]).toMatch(/^engine\s+batch\s+mode\s+iters\s+p50 ms/);
    expect(table).toMatch(/libtorch fp32 cpu\s+1\s+model-only\s+10\s+20\.0/);
    expect(table).toMatch(/tensorrt int8 cpu\s+-\s+unavailable: no TensorRT here/);
    const md = toMarkdown(report);
    expect(md).toContain('| libtorch fp32 cpu | 1 | model-only | 10 | 20.0 |');
    expect(md).toContain('Test CPU (2 cores)');
    expect(md).toContain('git abcdef123456');
    expect(md).toContain('- a note');
    expect(md).toContain('load average (1/5/15 min) 0.00 / 0.00 / 0.00 at the start, 1.00 / 0.50 / 0.25 at the end');
  });
});
