// Every photo is fully decoded once before training (libjpeg's corrupt-data warnings count as failures), the outcome
// is cached by content, and training says at start which files it left out and why.
import { Writable } from 'node:stream';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadTrainConfig } from '../../../src/config/index.js';
import { indexDataset } from '../../../src/data/indexer.js';
import { decodeResized } from '../../../src/data/preprocess.js';
import { createProgress } from '../../../src/train/progress.js';
import { train } from '../../../src/train/train.js';
import { CLASSES, hasFlowers, photos, tinyModelPath } from '../../helpers.js';

let tmp: string;
let root: string;
let cache: string;

/** A real photo cut at half with an end-of-image marker appended: its structure looks complete. */
async function truncatedWithEnd(file: string): Promise<Buffer> {
  const b = await readFile(file);
  return Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xff, 0xd9])]);
}

/** A real photo with 2,000 bytes of its entropy-coded middle overwritten (seeded). */
async function garbled(file: string): Promise<Buffer> {
  const b = Buffer.from(await readFile(file));
  let seed = 1;
  const start = Math.floor(b.length * 0.3);
  for (let i = start; i < start + 2000; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    b[i] = seed >>> 24;
  }
  return b;
}

beforeAll(async () => {
  if (!hasFlowers) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'decode-check-'));
  root = path.join(tmp, 'flowers');
  cache = path.join(tmp, 'decode-check.json');
  for (const c of CLASSES) {
    await mkdir(path.join(root, c), { recursive: true });
    for (const f of photos(c, 7)) await copyFile(f, path.join(root, c, path.basename(f)));
  }
  const source = photos('daisy', 1, 20)[0] as string;
  await writeFile(path.join(root, 'daisy', 'cut-in-half.jpg'), await truncatedWithEnd(source));
  await writeFile(path.join(root, 'roses', 'garbled.jpg'), await garbled(photos('roses', 1, 20)[0] as string));
  const header = Buffer.from(await readFile(source));
  header.fill(0x5a, 2, 200);
  await writeFile(path.join(root, 'tulips', 'bad-header.jpg'), header);
});
afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

describe.skipIf(!hasFlowers)('the decode check of the index', () => {
  it('the broken photos decode without an error on the training path (what the check is for)', async () => {
    await expect(decodeResized(path.join(root, 'daisy', 'cut-in-half.jpg'), { size: 32 })).resolves.toHaveLength(
      32 * 32 * 3,
    );
    await expect(decodeResized(path.join(root, 'roses', 'garbled.jpg'), { size: 32 })).resolves.toHaveLength(
      32 * 32 * 3,
    );
  });

  it('excludes a truncated photo with an end marker appended and a garbled one, with one-line reasons', async () => {
    const index = await indexDataset(root, { checkCache: cache });
    const reason = (p: string): string | undefined => index.invalid.find((f) => f.path === p)?.reason;
    expect(reason('daisy/cut-in-half.jpg')).toMatch(/Corrupt JPEG data|Premature end/i);
    expect(reason('roses/garbled.jpg')).toMatch(/Corrupt JPEG data|Premature end/i);
    expect(index.images).toHaveLength(35);
    expect(index.check).toEqual({ decoded: 37, cached: 0 });
    // libvips repeats its messages: each reason says each thing once, on one line.
    const header = reason('tulips/bad-header.jpg') as string;
    expect(header).not.toContain('\n');
    const parts = header.split('; ');
    expect(new Set(parts).size).toBe(parts.length);
  });

  it('checks each photo once: a second index reads the outcomes from the cache, a changed photo is checked again', async () => {
    expect((await stat(cache)).size).toBeGreaterThan(0);
    let start = performance.now();
    const again = await indexDataset(root, { checkCache: cache });
    const cachedMs = performance.now() - start;
    expect(again.check).toEqual({ decoded: 0, cached: 37 });
    expect(again.invalid.map((f) => f.path)).toContain('roses/garbled.jpg');
    const victim = path.join(root, 'daisy', path.basename(photos('daisy', 1)[0] as string));
    await writeFile(victim, await truncatedWithEnd(victim));
    start = performance.now();
    const changed = await indexDataset(root, { checkCache: cache });
    expect(changed.check).toEqual({ decoded: 1, cached: 36 });
    expect(changed.invalid.map((f) => f.path)).toContain(`daisy/${path.basename(victim)}`);
    expect(cachedMs).toBeLessThan(5000);
    await copyFile(photos('daisy', 1)[0] as string, victim);
  });
});

describe.skipIf(!hasFlowers)('training', () => {
  const capture = (): { stream: NodeJS.WriteStream; text: () => string } => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    return { stream, text: () => text };
  };

  it('names the files it left out at start, on the console and as a JSON event', async () => {
    process.env.TRT_FLOWERS_CACHE_DIR = path.join(tmp, 'cache-home');
    for (const mode of ['plain', 'json'] as const) {
      const out = capture();
      const { config, raw } = loadTrainConfig({
        overrides: [
          `model.checkpoint=${tinyModelPath}`,
          'model.arch=tiny',
          'data.image_size=32',
          'data.batch_size=4',
          'data.augment.enabled=false',
          'trainer.max_epochs=1',
          'trainer.limit_train_batches=1',
          'trainer.evaluate_test=false',
          'trainer.threads=2',
          `trainer.runs_dir=${path.join(tmp, `runs-${mode}`)}`,
        ],
      });
      const result = await train({
        config,
        rawConfig: raw,
        dataDir: root,
        progress: createProgress(mode, { stream: out.stream }),
      });
      expect(result.status).toBe('completed');
      const text = out.text();
      if (mode === 'plain') {
        expect(text).toMatch(/left out 3 files/);
        expect(text).toMatch(/daisy\/cut-in-half\.jpg: .*(Corrupt JPEG data|Premature end)/i);
        expect(text).toContain('roses/garbled.jpg: ');
        expect(text.indexOf('left out')).toBeLessThan(text.indexOf('epoch 1/1'));
      } else {
        const events = text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { type: string; count?: number; files?: { path: string; reason: string }[] });
        const excluded = events.find((e) => e.type === 'excluded');
        expect(excluded?.count).toBe(3);
        expect(excluded?.files?.map((f) => f.path)).toEqual([
          'daisy/cut-in-half.jpg',
          'roses/garbled.jpg',
          'tulips/bad-header.jpg',
        ]);
      }
    }
    delete process.env.TRT_FLOWERS_CACHE_DIR;
  });
});
