// What is not a regular image file of a sane size (a device, a FIFO, a folder, a huge file) is refused quickly with
// InvalidImageError naming it, without reading it whole: by the preprocessing, the Engine, the index, the loader and
// the CLI.
import { execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { indexDataset } from '../../../src/data/indexer.js';
import { DataLoader } from '../../../src/data/loader.js';
import { decodeResized } from '../../../src/data/preprocess.js';
import { createSplit } from '../../../src/data/split.js';
import { Engine } from '../../../src/engine/Engine.js';
import { InvalidImageError } from '../../../src/errors.js';
import { hasFlowers, photos, repoRoot, tinyModelPath } from '../../helpers.js';

let tmp: string;
let fifo: string;
let folder: string;
let photo: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'file-limits-'));
  fifo = path.join(tmp, 'pipe.jpg');
  execFileSync('mkfifo', [fifo]); // nothing ever writes to it
  folder = path.join(tmp, 'folder.jpg');
  await mkdir(folder);
  photo = hasFlowers ? (photos('daisy', 1)[0] as string) : '';
  // Loads the decoders (the addon, sharp) first, so that the memory checks below see only the calls themselves.
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer();
  await decodeResized(jpeg, { size: 8 });
});
afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

/** The error of a call that must reject, its time, and how much the process's resident memory grew. */
async function refusal(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number; rssGrowth: number }> {
  const rss = process.memoryUsage.rss();
  const start = performance.now();
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - start, rssGrowth: process.memoryUsage.rss() - rss };
}

function expectRefused(r: { err: unknown; ms: number; rssGrowth: number }, file: string, why: RegExp): void {
  expect(r.err).toBeInstanceOf(InvalidImageError);
  expect((r.err as InvalidImageError).path).toBe(file);
  expect((r.err as Error).message).toContain(file);
  expect((r.err as Error).message).toMatch(why);
  expect(r.ms).toBeLessThan(3000);
  expect(r.rssGrowth).toBeLessThan(100 * 1024 * 1024);
}

describe('decodeResized', () => {
  it('refuses a device, a FIFO with no writer and a folder without reading them', async () => {
    expectRefused(await refusal(() => decodeResized('/dev/zero')), '/dev/zero', /character device/);
    expectRefused(await refusal(() => decodeResized(fifo)), fifo, /FIFO/);
    expectRefused(await refusal(() => decodeResized(folder)), folder, /directory/);
  });

  it('refuses a symbolic link to a device', async () => {
    const link = path.join(tmp, 'zero.jpg');
    await symlink('/dev/zero', link);
    expectRefused(await refusal(() => decodeResized(link)), link, /character device/);
  });

  it.skipIf(!hasFlowers)('refuses a file above maxFileBytes and reads one below it', async () => {
    expectRefused(
      await refusal(() => decodeResized(photo, { size: 32, maxFileBytes: 1000 })),
      photo,
      /larger than the limit of 1000 bytes/,
    );
    expect((await decodeResized(photo, { size: 32 })).length).toBe(32 * 32 * 3);
  });
});

describe.skipIf(!hasFlowers)('Engine', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load(tinyModelPath, { maxFileBytes: 5_000_000 });
  });
  afterAll(() => engine?.dispose());

  it('infer and preprocess refuse /dev/zero, a FIFO and a folder quickly', async () => {
    expectRefused(await refusal(() => engine.infer(['/dev/zero'])), '/dev/zero', /character device/);
    expectRefused(await refusal(() => engine.infer([fifo])), fifo, /FIFO/);
    expectRefused(await refusal(() => engine.preprocess([folder])), folder, /directory/);
  });

  it('takes maxFileBytes at load and per call', async () => {
    expect(await engine.infer([photo])).toHaveLength(1);
    expectRefused(
      await refusal(() => engine.infer([photo], { maxFileBytes: 1000 })),
      photo,
      /larger than the limit of 1000 bytes/,
    );
    expectRefused(
      await refusal(() => engine.preprocess([photo], { maxFileBytes: 1000 })),
      photo,
      /larger than the limit of 1000 bytes/,
    );
    await expect(Engine.load(tinyModelPath, { maxFileBytes: 0 })).rejects.toThrow(RangeError);
  });

  it('`trt-flowers predict --image-path /dev/zero` fails at once naming the file', async () => {
    const start = performance.now();
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [
        path.join(repoRoot, 'bin', 'trt-flowers.js'),
        'predict',
        '--image-path',
        '/dev/zero',
        '--model-path',
        tinyModelPath,
      ]);
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stderr: err });
      });
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/\/dev\/zero.*character device/);
    expect(performance.now() - start).toBeLessThan(30_000);
  });
});

describe.skipIf(!hasFlowers)('the data index and loader', () => {
  it('exclude a FIFO, a link to a device and a file above maxFileBytes, naming each', async () => {
    const root = path.join(tmp, 'data');
    for (const c of ['daisy', 'roses']) {
      await mkdir(path.join(root, c), { recursive: true });
      for (const f of photos(c, 3)) await copyFile(f, path.join(root, c, path.basename(f)));
    }
    execFileSync('mkfifo', [path.join(root, 'daisy', 'pipe.jpg')]);
    await symlink('/dev/zero', path.join(root, 'roses', 'zero.jpg'));
    const limit = 100_000;
    const index = await indexDataset(root, { classes: ['daisy', 'roses'], maxFileBytes: limit });
    const reason = (p: string): string | undefined => index.invalid.find((f) => f.path === p)?.reason;
    expect(reason('daisy/pipe.jpg')).toMatch(/FIFO/);
    expect(reason('roses/zero.jpg')).toMatch(/character device/);
    const oversized = index.invalid.filter((f) => /larger than the limit of 100000 bytes/.test(f.reason));
    expect(oversized.length).toBeGreaterThan(0);
    expect(index.images.every((i) => i.bytes <= limit)).toBe(true);

    const all = await indexDataset(root, { classes: ['daisy', 'roses'] });
    const split = createSplit(all, { ratios: [1, 0, 0] });
    const loader = new DataLoader({ root, split, imageSize: 32, batchSize: 8, maxFileBytes: 1000, cacheMiB: 0 });
    const err = await loader
      .evaluate('train')
      .next()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidImageError);
    expect((err as Error).message).toMatch(/larger than the limit of 1000 bytes/);
    expect(() => new DataLoader({ root, split, maxFileBytes: 0 })).toThrow(RangeError);
  });
});
