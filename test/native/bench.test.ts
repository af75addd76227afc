import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { runBench } from '../../src/bench/run.js';
import { summarize } from '../../src/bench/stats.js';
import type { BenchReport } from '../../src/bench/types.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'trt-flowers.js');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [bin, ...args], { cwd: repoRoot, maxBuffer: 64 << 20 });
const fail = async (args: string[]) =>
  (await run(args).then(
    () => ({ code: 0, stderr: '' }),
    (e: unknown) => e,
  )) as { code: number; stderr: string };

// Runs the built CLI (dist/) on the tiny fixture: few iterations, one thread, so it stays short.
describe.skipIf(!hasFlowers)('trt-flowers bench', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-bench-'));
  const onnx = join(dir, 'tiny.onnx');
  const plan = join(dir, 'tiny.int8.engine');
  const labelled = join(dir, 'photos');

  beforeAll(async () => {
    const report = await exportOnnx({ checkpoint: tinyModelPath, out: onnx, verifyImages: photos('roses', 4) });
    expect(report.verification?.passed).toBe(true);
    writeFileSync(plan, 'not a TensorRT plan');
    for (const cls of CLASSES) {
      mkdirSync(join(labelled, cls), { recursive: true });
      for (const p of photos(cls, 2, 10)) symlinkSync(p, join(labelled, cls, basename(p)));
    }
  });

  it('times libtorch, ONNX Runtime and Python eager side by side; writes JSON, Markdown and PNG', async () => {
    const files = { json: join(dir, 'b.json'), md: join(dir, 'b.md'), png: join(dir, 'b.png') };
    const { stdout, stderr } = await run([
      'bench',
      ...['--model-path', tinyModelPath, '--model-path', onnx, '--model-path', plan],
      ...['--iterations', '5', '--warmup-ms', '50', '--duration-s', '0.2', '--batch', '1,2', '--threads', '1'],
      ...['--images', labelled, '--eval-split', 'all', '--python'],
      ...['--json', files.json, '--markdown', files.md, '--plot', files.png],
    ]);
    expect(stderr).toMatch(/\[bench\] libtorch fp32 cpu batch 2 end-to-end: \d+ iterations/);
    expect(stdout.split('\n')[0]).toMatch(/^engine\s+batch\s+mode\s+iters\s+p50 ms/);
    expect(stdout).toMatch(/tensorrt int8 cuda\s+-\s+unavailable: .*TensorRT/);

    const report = JSON.parse(readFileSync(files.json, 'utf8')) as BenchReport;
    expect(report.format).toBe('trt-flowers-bench/1');
    expect(report.engines.map((e) => [e.label, e.status])).toEqual([
      ['libtorch fp32 cpu', 'ok'],
      ['onnxruntime fp32 cpu', 'ok'],
      ['tensorrt int8 cuda', 'unavailable'],
      ['python-eager fp32 cpu', 'ok'],
    ]);
    expect(report.baseline).toBe('libtorch fp32 cpu');
    expect(report.results).toHaveLength(3 * 2 * 2);
    for (const r of report.results) {
      expect(r.status).toBe('ok');
      expect(r.iterations).toBeGreaterThanOrEqual(5);
      expect(r.wallMs).toBeGreaterThanOrEqual(200);
      expect(r.warmupIterations).toBeGreaterThanOrEqual(1);
      const l = r.latencyMs!;
      const chain = [l.min, l.median, l.p90, l.p95, l.p99, l.max];
      for (let i = 1; i < chain.length; i++) expect(chain[i]).toBeGreaterThanOrEqual(chain[i - 1]!);
      // The statistics are those of the latencies kept in the report.
      expect(r.latenciesMs).toHaveLength(r.iterations);
      expect(summarize(r.latenciesMs!).median).toBeCloseTo(l.median, 3);
      expect(r.imagesPerSecond).toBeCloseTo((r.iterations * r.batch) / (r.wallMs / 1000), 6);
      expect(r.vsBaseline?.throughput).toBeGreaterThan(0);
      if (r.engine === 'libtorch fp32 cpu') expect(r.vsBaseline).toEqual({ throughput: 1, latencyP50: 1 });
    }
    // Accuracy on the labelled folders: the same 10 photos for every engine, and the ONNX export agrees.
    for (const label of ['libtorch fp32 cpu', 'onnxruntime fp32 cpu', 'python-eager fp32 cpu']) {
      const acc = report.engines.find((e) => e.label === label)?.accuracy;
      expect(acc?.images).toBe(10);
      expect(acc?.correct).toBe(Math.round(acc!.accuracy * 10));
      expect(acc?.agreementWithBaseline).toBeGreaterThanOrEqual(0.9);
    }
    const m = report.machine;
    expect(m.cpu.model.length).toBeGreaterThan(0);
    expect(m.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(m.versions).toMatchObject({ node: process.version, libtorch: expect.stringMatching(/^\d+\.\d+/) });
    expect(m.versions.onnxruntime).toMatch(/^\d+\.\d+/);
    expect(m.versions.sharp).toMatch(/^\d+\.\d+/);
    if (existsSync(join(repoRoot, '.git'))) expect(m.git?.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(report.engines.find((e) => e.backend === 'python-eager')?.versions?.torch).toMatch(/^\d+\.\d+/);

    const md = readFileSync(files.md, 'utf8');
    expect(md).toMatch(/^# trt-flowers bench/);
    expect(md).toMatch(/\| engine \| batch \| mode \| iters \| p50 ms \| p90 ms \| p95 ms \| p99 ms \|/);
    expect(md).toMatch(/\| onnxruntime fp32 cpu \| 2 \| end-to-end \| \d+ \|/);
    expect(md).toMatch(/\| python-eager fp32 cpu \| 1 \| model-only \|/);
    const png = await sharp(files.png).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(800);
    expect(readFileSync(join(dir, 'b.svg'), 'utf8')).toMatch(/^<svg/);
  }, 180_000);

  it('the single-image form; bad arguments are one clear error line', async () => {
    const rose = photos('roses', 1)[0]!;
    const { stdout } = await run([
      'bench',
      ...['--model-path', onnx, '--image-path', rose, '--iterations', '3', '--warmup-ms', '0', '--duration-s', '0'],
      ...['--mode', 'e2e', '--threads', '1'],
    ]);
    expect(stdout).toMatch(/onnxruntime fp32 cpu\s+1\s+end-to-end\s+3\s/);
    expect(stdout).not.toMatch(/model-only/);

    const noModel = await fail(['bench', '--iterations', '1']);
    expect(noModel.code).toBe(1);
    expect(noModel.stderr).toMatch(/^error: no model to benchmark/);
    const missing = await fail(['bench', '--model-path', join(dir, 'none.onnx')]);
    expect(missing.stderr).toMatch(/^error: model file .*none\.onnx' not found/);
    const badBatch = await fail(['bench', '--model-path', onnx, '--batch', '1,0']);
    expect(badBatch.stderr).toMatch(/--batch expects an integer between 1 and 4096, received '0'/);
    const badSplit = await fail(['bench', '--model-path', onnx, '--eval-split', 'test', '--images', labelled]);
    expect(badSplit.stderr).toMatch(/needs a training run's split\.json/);
  }, 120_000);

  it('keeps the event loop turning while it measures', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const start = performance.now();
    try {
      const report = await runBench({
        models: [onnx, tinyModelPath],
        images: photos('daisy', 4),
        iterations: 10,
        warmupMs: 50,
        durationS: 0.5,
        threads: 1,
      });
      expect(report.results.filter((r) => r.status === 'ok')).toHaveLength(4);
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - start;
    // A blocked loop would tick a handful of times; a free one about every 5 ms (loose: the machine is shared).
    expect(ticks).toBeGreaterThan(ms / 5 / 4);
  }, 120_000);
});
