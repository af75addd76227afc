import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { indexDataset, type DatasetIndex } from '../../../src/data/indexer.js';
import { decodeResized, IMAGENET_MEAN, IMAGENET_STD, preprocessInto } from '../../../src/data/preprocess.js';
import { InvalidImageError } from '../../../src/errors.js';
import { writeCases, type Case } from './fixtures.js';

const size = 32;
let dir: string;
let cases: Case[];
let index: DatasetIndex;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bad-images-'));
  cases = await writeCases(dir);
  await writeCases(dir, 'roses'); // same bytes under another class: label conflicts
  index = await indexDataset(dir, { classes: ['daisy', 'roses'] });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Normalised value of byte `v` in channel `c`. */
const norm = (v: number, c: number): number => (v / 255 - (IMAGENET_MEAN[c] as number)) / (IMAGENET_STD[c] as number);

describe('index of broken and odd images', () => {
  it('excludes each broken file with a clear reason and keeps the others', () => {
    for (const c of cases) {
      const bad = index.invalid.find((f) => f.path === c.file);
      if (c.reason) {
        expect(bad?.reason, c.file).toMatch(c.reason);
      } else {
        expect(bad, `${c.file}: ${bad?.reason}`).toBeUndefined();
        expect(index.images.some((i) => i.path === c.file)).toBe(true);
      }
    }
    expect(index.ignored).toContainEqual({ path: 'daisy/notes.txt', reason: "unsupported extension '.txt'" });
    expect(
      index.images
        .filter((i) => i.className === 'daisy')
        .map((i) => i.format)
        .sort(),
    ).toEqual(['bmp', 'bmp', 'jpeg', 'jpeg', 'jpeg', 'png', 'tiff', 'webp']);
  });

  it('reports the same bytes under two classes as label conflicts', () => {
    const conflicts = index.duplicates.filter((d) => d.conflict);
    expect(conflicts.length).toBe(index.images.length / 2);
    expect(conflicts.find((d) => d.paths[0] === 'daisy/image.tif')?.paths).toEqual([
      'daisy/image.tif',
      'roses/image.tif',
    ]);
  });
});

describe('preprocessing of odd images', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])(
    'case %i gives the expected pixels or a typed error',
    async (i) => {
      const c = cases[i] as Case;
      const file = path.join(dir, c.file);
      const out = new Float32Array(3 * size * size);
      if (c.reason) {
        const err = await preprocessInto(file, out, 0, { size }).catch((e: unknown) => e);
        expect(err, c.file).toBeInstanceOf(InvalidImageError);
        expect((err as InvalidImageError).path).toBe(file);
        return;
      }
      await preprocessInto(file, out, 0, { size });
      if (!c.expect) return;
      const want = [c.expect.r, c.expect.g, c.expect.b];
      for (let ch = 0; ch < 3; ch++) {
        const tol = (c.expect.tolerance + 0.5) / (255 * (IMAGENET_STD[ch] as number));
        for (const p of [0, (size * size) >> 1, size * size - 1]) {
          expect(
            Math.abs((out[ch * size * size + p] as number) - norm(want[ch] as number, ch)),
            `${c.file} channel ${ch}`,
          ).toBeLessThanOrEqual(tol);
        }
      }
    },
  );

  it('auto-orients from EXIF: the left (red) half of the stored image ends up on top', async () => {
    const hwc = await decodeResized(path.join(dir, 'daisy/rotated.JPEG'), { size });
    const at = (x: number, y: number): number[] => [...hwc.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)];
    const [top, bottom] = [at(size / 2, 2), at(size / 2, size - 3)];
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(60);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(60);
  });

  it('turns a one-channel grayscale JPEG into three equal channels', async () => {
    const hwc = await decodeResized(path.join(dir, 'daisy/grey.jpg'), { size });
    expect(hwc.length).toBe(size * size * 3);
    expect(Math.abs((hwc[0] as number) - (hwc[1] as number))).toBeLessThanOrEqual(1);
  });

  it('refuses a decompression bomb and garbage bytes with InvalidImageError, never a crash', async () => {
    const out = new Float32Array(3 * size * size);
    await expect(preprocessInto(path.join(dir, 'daisy/bomb.png'), out, 0, { size })).rejects.toThrow(
      /pixel limit|exceeds/i,
    );
    await expect(preprocessInto(Buffer.from('garbage'), out, 0, { size })).rejects.toThrow(InvalidImageError);
    await expect(preprocessInto(path.join(dir, 'daisy/missing.jpg'), out, 0, { size })).rejects.toThrow(
      InvalidImageError,
    );
  });
});
