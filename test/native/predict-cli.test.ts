import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'trt-flowers.js');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [bin, ...args], { cwd: repoRoot, maxBuffer: 16 << 20 });
const fail = async (args: string[]) =>
  (await run(args).then(
    () => ({ code: 0, stderr: '' }),
    (e: unknown) => e,
  )) as { code: number; stderr: string };

// Runs the built CLI (dist/) as a user would.
describe.skipIf(!hasFlowers)('predict and batch-predict', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-predict-'));
  const onnx = join(dir, 'tiny.onnx');
  const rose = photos('roses', 1)[0]!;

  beforeAll(async () => {
    await run([
      'export-onnx',
      '--checkpoint-path',
      tinyModelPath,
      '--output-path',
      onnx,
      '--verify-images',
      join(rose, '..'),
      '--verify-count',
      '4',
    ]);
  });

  it('predict prints exactly the JSON form of the original tool, probabilities high to low', async () => {
    for (const model of [tinyModelPath, onnx]) {
      const out = join(dir, `p-${basename(model)}.json`);
      const { stdout } = await run(['predict', '--image-path', rose, '--model-path', model, '--output-file', out]);
      const names = CLASSES.join('|');
      const num = '\\d+(\\.\\d+)?(e-\\d\\d)?';
      const form = new RegExp(
        `^\\{"image_path": "${rose.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}", "predicted_class": "(${names})", ` +
          `"confidence": ${num}, "all_probabilities": \\{("(${names})": ${num}(, )?){5}\\}\\}\\n$`,
      );
      expect(stdout).toMatch(form);
      const parsed = JSON.parse(stdout) as {
        predicted_class: string;
        confidence: number;
        all_probabilities: Record<string, number>;
      };
      const values = Object.values(parsed.all_probabilities);
      expect([...values].sort((a, b) => b - a)).toEqual(values);
      expect(Object.keys(parsed.all_probabilities)[0]).toBe(parsed.predicted_class);
      expect(parsed.confidence).toBe(values[0]);
      expect(readFileSync(out, 'utf8')).toBe(stdout);
    }
  });

  it('batch-predict over a few hundred real photos with a corrupt file mixed in completes with one error entry', async () => {
    const input = join(dir, 'in');
    mkdirSync(join(input, 'nested'), { recursive: true });
    const files = CLASSES.flatMap((c) => photos(c, 50));
    files.forEach((f, i) => copyFileSync(f, join(i % 2 ? join(input, 'nested') : input, basename(f))));
    writeFileSync(join(input, 'corrupt.jpg'), readFileSync(rose).subarray(0, 1500));
    // Other formats and colour models are read too.
    await sharp(rose).greyscale().png().toFile(join(input, 'grey.png'));
    await sharp(rose).webp().toFile(join(input, 'rose.webp'));
    await sharp(rose).tiff().toFile(join(input, 'rose.tiff'));
    writeFileSync(join(input, 'notes.txt'), 'ignored: not an image extension');
    const out = join(dir, 'out.json');
    const { stdout } = await run([
      'batch-predict',
      '--input-dir',
      input,
      '--model-path',
      onnx,
      '--output-file',
      out,
      '--batch-size',
      '16',
      '--progress',
      'plain',
    ]);
    const summary = JSON.parse(stdout) as {
      count: number;
      failed: number;
      succeeded: number;
      images_per_second: number;
    };
    expect(summary).toMatchObject({ count: 254, failed: 1, succeeded: 253 });
    expect(summary.images_per_second).toBeGreaterThan(0);
    const records = JSON.parse(readFileSync(out, 'utf8')) as {
      image_path: string;
      error?: string;
      predicted_class?: string;
    }[];
    expect(records).toHaveLength(254);
    const errors = records.filter((r) => r.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.image_path).toMatch(/corrupt\.jpg$/);
    expect(errors[0]!.error).toMatch(/corrupt\.jpg/);
    expect(records.filter((r) => r.predicted_class)).toHaveLength(253);

    const csv = join(dir, 'out.csv');
    await run([
      'batch-predict',
      '--input-dir',
      input,
      '--model-path',
      tinyModelPath,
      '--output-file',
      csv,
      '--format',
      'csv',
      '--progress',
      'none',
    ]);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`image_path,predicted_class,confidence,${CLASSES.join(',')},error`);
    expect(lines).toHaveLength(255);
  });

  it('a file list with relative paths works; bad arguments are clear errors', async () => {
    const list = join(dir, 'list.txt');
    writeFileSync(list, `# two photos\n${rose}\n\nin/corrupt.jpg\n`);
    const out = join(dir, 'list.json');
    const { stdout } = await run([
      'batch-predict',
      '--file-list',
      list,
      '--model-path',
      onnx,
      '--output-file',
      out,
      '--progress',
      'none',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ count: 2, failed: 1 });

    const missingModel = await fail(['predict', '--image-path', rose, '--model-path', join(dir, 'none.onnx')]);
    expect(missingModel.code).toBe(1);
    expect(missingModel.stderr).toMatch(/^error: model file .*none\.onnx' not found/);
    const notImage = await fail(['predict', '--image-path', list, '--model-path', onnx]);
    expect(notImage.stderr).toMatch(/^error: cannot decode .*list\.txt/);
    const both = await fail([
      'batch-predict',
      '--input-dir',
      dir,
      '--file-list',
      list,
      '--model-path',
      onnx,
      '--output-file',
      out,
    ]);
    expect(both.stderr).toMatch(/either an input folder or a file list/);
    const badFormat = await fail([
      'batch-predict',
      '--input-dir',
      dir,
      '--model-path',
      onnx,
      '--output-file',
      out,
      '--format',
      'xml',
    ]);
    expect(badFormat.stderr).toMatch(/json or csv/);
  });
});
