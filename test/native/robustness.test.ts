import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { runRobustness } from '../../src/bench/robustness.js';
import { formatRobustnessTable, type RobustnessReport } from '../../src/bench/robustness-report.js';
import { ROBUSTNESS_VARIANTS } from '../../src/bench/variant-names.js';
import { centerCropBox, largestUprightRect, makeVariants } from '../../src/bench/variants.js';
import { CancelledError, DataError, ModelLoadError } from '../../src/errors.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { CLASSES, flowerDir, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'trt-flowers.js');

/** Runs the built CLI (dist/) with TMPDIR set to `tmp`; resolves with the exit code and both streams. */
async function cli(args: string[], tmp: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, TMPDIR: tmp },
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The variant folders left under `dir` by a run (there should be none after it). */
const leftovers = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('trt-flowers-robustness-'));

/** Pixel statistics of an image: mean absolute difference to another of the same size, over RGB. */
async function meanAbsDiff(a: Buffer, b: Buffer): Promise<number> {
  const pa = await sharp(a).removeAlpha().raw().toBuffer();
  const pb = await sharp(b).removeAlpha().raw().toBuffer();
  expect(pa.length).toBe(pb.length);
  let sum = 0;
  for (let i = 0; i < pa.length; i++) sum += Math.abs((pa[i] as number) - (pb[i] as number));
  return sum / pa.length;
}

describe.skipIf(!hasFlowers)('photo variants', () => {
  const sample = [photos('daisy', 1)[0], photos('tulips', 1, 3)[0], photos('roses', 1, 7)[0]] as string[];

  it('have the stated properties and the same bytes on every run', async () => {
    for (const file of sample) {
      const meta = await sharp(file).metadata();
      const w = meta.width;
      const h = meta.height;
      const v = await makeVariants(file, ROBUSTNESS_VARIANTS);
      expect([...v.keys()]).toEqual(['downscale-240', 'jpeg-q50', 'center-crop-70', 'rotate-10']);
      const dims = async (b: Buffer) => {
        const m = await sharp(b).metadata();
        expect(m.format).toBe('jpeg');
        return [m.width, m.height];
      };

      // At most 240 px wide, the aspect ratio kept.
      const [dw, dh] = await dims(v.get('downscale-240')!);
      expect(w).toBeGreaterThan(240);
      expect(dw).toBe(240);
      expect(Math.abs((dh as number) - (h * 240) / w)).toBeLessThanOrEqual(1);

      // Quality 50: the same size, fewer bytes than the same pixels at quality 95.
      expect(await dims(v.get('jpeg-q50')!)).toEqual([w, h]);
      const q95 = await sharp(file).rotate().jpeg({ quality: 95 }).toBuffer();
      expect(v.get('jpeg-q50')!.length).toBeLessThan(q95.length * 0.6);

      // The central 70% of each side.
      expect(await dims(v.get('center-crop-70')!)).toEqual([Math.round(w * 0.7), Math.round(h * 0.7)]);

      // Rotated: the largest upright rectangle, no black corners, and other pixels than the photo's own centre.
      const inner = largestUprightRect(w, h, 10);
      expect(await dims(v.get('rotate-10')!)).toEqual([inner.width, inner.height]);
      expect(inner.width).toBeLessThan(w);
      const box = centerCropBox(w, h, 1);
      const centre = await sharp(file)
        .rotate()
        .extract({
          left: Math.floor((box.width - inner.width) / 2),
          top: Math.floor((box.height - inner.height) / 2),
          width: inner.width,
          height: inner.height,
        })
        .jpeg({ quality: 95 })
        .toBuffer();
      expect(await meanAbsDiff(v.get('rotate-10')!, centre)).toBeGreaterThan(5);
      const { data, info } = await sharp(v.get('rotate-10')!).raw().toBuffer({ resolveWithObject: true });
      const corner = (x: number, y: number) => {
        const i = (y * info.width + x) * info.channels;
        return (data[i] as number) + (data[i + 1] as number) + (data[i + 2] as number);
      };
      const corners = [corner(0, 0), corner(info.width - 1, 0), corner(0, info.height - 1)];
      expect(corners.filter((c) => c < 6)).toHaveLength(0); // not the rotation's black fill

      // Deterministic: the same bytes again.
      const again = await makeVariants(file, ROBUSTNESS_VARIANTS);
      for (const [name, bytes] of v) expect(again.get(name)!.equals(bytes)).toBe(true);
    }
  });

  it('apply EXIF orientation first', async () => {
    // A landscape photo stored with orientation 6 (rotate 90 clockwise to view): the variants are portrait.
    const rotated = await sharp(sample[0]!).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const meta = await sharp(sample[0]!).metadata();
    const v = await makeVariants(rotated, ['center-crop-70', 'jpeg-q50']);
    const m = await sharp(v.get('jpeg-q50')!).metadata();
    expect([m.width, m.height]).toEqual([meta.height, meta.width]);
    expect(m.orientation ?? 1).toBe(1);
  });

  it('refuse a file that is not an image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-variants-'));
    writeFileSync(join(dir, 'x.jpg'), 'not a JPEG');
    await expect(makeVariants(join(dir, 'x.jpg'), ['jpeg-q50'])).rejects.toThrow(/cannot decode .*x\.jpg/);
  });
});

describe.skipIf(!hasFlowers)('runRobustness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-robustness-test-'));
  const runDir = join(dir, 'runs', 'r1');
  const model = join(runDir, 'model.pt');
  const onnx = join(dir, 'tiny.onnx');
  const tmp = join(dir, 'tmp');
  // 3 test photos per class (2 for tulips), from a split.json whose paths are relative to the photo folder.
  const testCounts: Record<string, number> = { daisy: 3, dandelion: 3, roses: 3, sunflowers: 3, tulips: 2 };

  beforeAll(async () => {
    mkdirSync(runDir, { recursive: true });
    mkdirSync(tmp);
    copyFileSync(tinyModelPath, model);
    const item = (cls: string) => (p: string) => ({
      path: `${cls}/${basename(p)}`,
      label: CLASSES.indexOf(cls as (typeof CLASSES)[number]),
      md5: '0',
    });
    const manifest = {
      version: 1,
      classes: [...CLASSES],
      seed: 1,
      ratios: [0.7, 0.15, 0.15],
      dataChecksum: 'x',
      counts: {},
      train: CLASSES.flatMap((c) => photos(c, 1, 40).map(item(c))),
      val: [],
      test: CLASSES.flatMap((c) => photos(c, testCounts[c]!, 20).map(item(c))),
      excluded: [],
      duplicates: [],
    };
    writeFileSync(join(runDir, 'split.json'), JSON.stringify(manifest));
    writeFileSync(join(runDir, 'params.json'), JSON.stringify({ dataDir: flowerDir }));
    const empty = join(dir, 'runs', 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'split.json'), JSON.stringify({ ...manifest, test: [] }));
    const report = await exportOnnx({ checkpoint: tinyModelPath, out: onnx, verifyImages: photos('roses', 2) });
    expect(report.verification?.passed).toBe(true);
  });

  it('measures every model x variant of the run the first model lives in, per class, with differences', async () => {
    const tree: Record<string, Record<string, number>> = {};
    const report = await runRobustness({
      models: [model, onnx],
      threads: 1,
      tempDir: tmp,
      onLog: (line) => {
        // While the first model runs, the variants are on disk: one folder per variant, one per class in it.
        if (!/original: accuracy/.test(line) || Object.keys(tree).length > 0) return;
        const root = readdirSync(tmp)[0]!;
        for (const v of readdirSync(join(tmp, root))) {
          tree[v] = {};
          for (const cls of readdirSync(join(tmp, root, v))) {
            tree[v]![cls] = readdirSync(join(tmp, root, v, cls)).length;
          }
        }
      },
    });
    expect(tree).toEqual(
      Object.fromEntries(ROBUSTNESS_VARIANTS.filter((v) => v !== 'original').map((v) => [v, testCounts])),
    );
    expect(leftovers(tmp)).toEqual([]);

    expect(report.split).toBe('test');
    expect(report.source).toContain(join(runDir, 'split.json'));
    expect(report.images).toBe(14);
    expect(report.classes).toEqual(CLASSES);
    expect(report.models.map((m) => [m.label, m.status])).toEqual([
      ['libtorch fp32 cpu', 'ok'],
      ['onnxruntime fp32 cpu', 'ok'],
    ]);
    expect(report.results.map((r) => `${r.model} ${r.variant}`)).toEqual(
      report.models.flatMap((m) => ROBUSTNESS_VARIANTS.map((v) => `${m.label} ${v}`)),
    );
    for (const r of report.results) {
      expect(r.images).toBe(14);
      expect(r.perClass.map((c) => c.class)).toEqual(CLASSES);
      expect(r.perClass.map((c) => c.support)).toEqual(CLASSES.map((c) => testCounts[c]));
      expect(r.perClass.reduce((a, c) => a + c.support, 0)).toBe(r.images);
      expect(r.perClass.reduce((a, c) => a + c.correct, 0)).toBe(r.correct);
      expect(r.accuracy).toBeCloseTo(r.correct / r.images, 12);
      r.perClass.forEach((c, i) => {
        expect(r.confusion[i]!.reduce((a, b) => a + b, 0)).toBe(c.support);
        expect(r.confusion[i]![i]).toBe(c.correct);
        expect(c.accuracy).toBeCloseTo(c.correct / c.support, 12);
      });
      expect(r.f1Macro).toBeGreaterThanOrEqual(0);
      expect(r.f1Macro).toBeLessThanOrEqual(1);
    }
    // The ONNX export against the TorchScript model, per variant: the same predictions here.
    expect(report.baseline).toBe('libtorch fp32 cpu');
    expect(report.diffs.map((d) => [d.model, d.variant])).toEqual(
      ROBUSTNESS_VARIANTS.map((v) => ['onnxruntime fp32 cpu', v]),
    );
    for (const d of report.diffs) {
      const a = report.results.find((r) => r.model === d.model && r.variant === d.variant)!;
      const b = report.results.find((r) => r.model === report.baseline && r.variant === d.variant)!;
      expect(d.accuracyPoints).toBeCloseTo((a.accuracy - b.accuracy) * 100, 6);
      expect(d.flagged).toBe(Math.abs(d.accuracyPoints) > 1);
      expect(Object.keys(d.perClassPoints)).toEqual(CLASSES);
    }
  });

  it('reports a model this machine cannot run and goes on with the others', async () => {
    const plan = join(dir, 'tiny.int8.engine');
    writeFileSync(plan, 'not a TensorRT plan');
    const report = await runRobustness({ models: [plan, model], variants: ['original'], limit: 3, threads: 1 });
    expect(report.models.map((m) => [m.label, m.status])).toEqual([
      ['tensorrt int8 cuda', report.models[0]!.status],
      ['libtorch fp32 cpu', 'ok'],
    ]);
    expect(['unavailable', 'failed']).toContain(report.models[0]!.status);
    expect(report.models[0]!.reason).toBeTruthy();
    expect(report.results.map((r) => r.model)).toEqual(['libtorch fp32 cpu']);
    expect(report.baseline).toBe('libtorch fp32 cpu');
    expect(report.diffs).toEqual([]);
    expect(formatRobustnessTable(report)).toMatch(/tensorrt int8 cuda\s+(unavailable|failed): /);
  });

  it('leaves out a photo that does not decode, from every variant, and says so', async () => {
    const folders = join(dir, 'folders');
    for (const cls of CLASSES) {
      mkdirSync(join(folders, cls), { recursive: true });
      for (const p of photos(cls, 1, 30)) copyFileSync(p, join(folders, cls, basename(p)));
    }
    writeFileSync(join(folders, 'roses', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 1, 2]));
    for (const variants of [['original'], ['original', 'rotate-10']]) {
      const report = await runRobustness({ models: [model], split: 'all', dataDir: folders, variants, threads: 1 });
      expect(report.leftOut.map((b) => basename(b.path))).toEqual(['broken.jpg']);
      expect(report.images).toBe(5);
      expect(report.results.map((r) => r.images)).toEqual(variants.map(() => 5));
      expect(report.notes.join(' ')).toMatch(/1 photo of the split did not decode/);
    }
  });

  it('stops when cancelled and leaves no variant behind', async () => {
    const controller = new AbortController();
    await expect(
      runRobustness({
        models: [model],
        threads: 1,
        tempDir: tmp,
        concurrency: 4,
        signal: controller.signal,
        onLog: (line) => {
          // Aborted while the variants are made, photos in flight.
          if (line.startsWith('making')) setTimeout(() => controller.abort(), 20);
        },
      }),
    ).rejects.toBeInstanceOf(CancelledError);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('refuses a missing model, run or split with a typed error', async () => {
    await expect(runRobustness({ models: [join(dir, 'nope.pt')] })).rejects.toBeInstanceOf(ModelLoadError);
    await expect(runRobustness({ models: [onnx], threads: 1 })).rejects.toThrow(
      /--split test needs a training run's split.json: give --run/,
    );
    await expect(runRobustness({ models: [model], run: join(dir, 'runs', 'nope'), threads: 1 })).rejects.toThrow(
      /run folder '.*nope' not found/,
    );
    await expect(
      runRobustness({ models: [model], run: join(dir, 'runs', 'empty'), threads: 1, tempDir: tmp }),
    ).rejects.toBeInstanceOf(DataError);
    await expect(runRobustness({ models: [model], variants: ['jpeg-50'] })).rejects.toThrow(
      "Unknown variant 'jpeg-50' (did you mean 'jpeg-q50'?)",
    );
    expect(leftovers(tmp)).toEqual([]);
  });

  it('CLI: a table, JSON and Markdown reports; clear errors and a non-zero exit for bad input', async () => {
    const json = join(dir, 'r.json');
    const md = join(dir, 'r.md');
    const ok = await cli(
      ['robustness', '--model-path', model, '--model-path', onnx, '--limit', '5', '--threads', '1'].concat([
        '--variants',
        'original,jpeg-q50',
        '--json',
        json,
        '--markdown',
        md,
      ]),
      tmp,
    );
    expect(ok.stderr).toMatch(/\[robustness\] onnxruntime fp32 cpu jpeg-q50: accuracy/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Accuracy \(macro F1\) on the test split, 5 photos\nmodel\s+original\s+jpeg-q50\n/);
    expect(ok.stdout).toMatch(/Difference to libtorch fp32 cpu/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as RobustnessReport;
    expect(report.format).toBe('trt-flowers-robustness/1');
    expect(report.results).toHaveLength(4);
    const text = readFileSync(md, 'utf8');
    expect(text).toMatch(/^# trt-flowers robustness/);
    expect(text).toContain('### onnxruntime fp32 cpu, jpeg-q50');
    // --json without a file: the report on stdout instead of the table.
    const toStdout = await cli(['robustness', '--model-path', model, '--limit', '3', '--json', '--threads', '1'], tmp);
    expect(toStdout.code).toBe(0);
    expect((JSON.parse(toStdout.stdout) as RobustnessReport).results).toHaveLength(5);

    const bad: [string[], RegExp][] = [
      [
        ['--model-path', model, '--variants', 'original,rotate10'],
        /Unknown variant 'rotate10' \(did you mean 'rotate-10'\?\)/,
      ],
      [['--model-path', join(dir, 'nope.pt')], /model file '.*nope\.pt' not found/],
      [['--model-path', model, '--run', join(dir, 'nope')], /run folder '.*nope' not found/],
      [['--model-path', model, '--run', join(dir, 'runs', 'empty')], /the test part of .*split\.json is empty/],
      [['--model-path', model, '--split', 'all'], /--split all needs --data-dir DIR/],
      [['--model-path', model, '--split', 'tset'], /Expected train, val, test or all for --split but received 'tset'/],
      [['--model-path', model, '--limit', '-1'], /--limit expects an integer between 0 and/],
      [[], /give at least one --model-path FILE/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(['robustness', ...args], tmp);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    expect(leftovers(tmp)).toEqual([]);
  });
});
