import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { findDuplicates, type DatasetIndex, type IndexedImage } from '../../../src/data/indexer.js';
import { createSplit, loadOrCreateSplit, readSplitManifest, writeSplitManifest } from '../../../src/data/split.js';
import { DataError } from '../../../src/errors.js';

const classes = ['a', 'b', 'c'];
function fakeIndex(): DatasetIndex {
  const images: IndexedImage[] = [];
  for (const [label, name] of classes.entries()) {
    for (let i = 0; i < 40 + label * 20; i++) {
      images.push({
        path: `${name}/${String(i).padStart(3, '0')}.jpg`,
        label,
        className: name,
        md5: `${name}${i}`,
        bytes: 1,
        format: 'jpeg',
        width: 1,
        height: 1,
      });
    }
  }
  // Byte-identical pairs: inside a class and across classes (a label conflict).
  (images[1] as IndexedImage).md5 = 'dup';
  (images[2] as IndexedImage).md5 = 'dup';
  (images[5] as IndexedImage).md5 = 'conflict';
  (images[50] as IndexedImage).md5 = 'conflict';
  return {
    root: '/x',
    classes,
    images,
    invalid: [{ path: 'a/bad.jpg', reason: 'truncated' }],
    ignored: [],
    duplicates: findDuplicates(images),
    checksum: 'sum',
    check: { decoded: 0, cached: 0 },
  };
}

const tmp = await mkdtemp(path.join(os.tmpdir(), 'split-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('createSplit', () => {
  const index = fakeIndex();

  it('is stratified 70/15/15 per class', () => {
    const s = createSplit(index, { seed: 1 });
    expect(s.counts.train[0]! + s.counts.val[0]! + s.counts.test[0]!).toBe(40);
    expect(s.counts.train[2]).toBe(56);
    expect(s.counts.val[2]).toBe(12);
    expect(s.counts.test[2]).toBe(12);
    expect(s.train.length + s.val.length + s.test.length).toBe(index.images.length);
    expect(s.excluded).toEqual([{ path: 'a/bad.jpg', reason: 'truncated' }]);
    expect(s.duplicates.find((d) => d.conflict)?.paths).toEqual(['a/005.jpg', 'b/010.jpg']);
  });

  it('gives the same split for the same seed, another for another seed', () => {
    expect(createSplit(index, { seed: 9 })).toEqual(createSplit(fakeIndex(), { seed: 9 }));
    expect(createSplit(index, { seed: 9 }).train).not.toEqual(createSplit(index, { seed: 10 }).train);
  });

  it('never lets identical files straddle two splits', () => {
    for (let seed = 0; seed < 30; seed++) {
      const s = createSplit(index, { seed });
      const where = (md5: string): string[] =>
        (['train', 'val', 'test'] as const).filter((n) => s[n].some((i) => i.md5 === md5));
      expect(where('dup')).toHaveLength(1);
      expect(where('conflict')).toHaveLength(1);
    }
  });

  it('can drop label conflicts', () => {
    const s = createSplit(index, { dropConflicts: true });
    expect(s.excluded.map((e) => e.path)).toEqual(['a/bad.jpg', 'a/005.jpg', 'b/010.jpg']);
  });

  it('rejects ratios that do not sum to 1', () => {
    expect(() => createSplit(index, { ratios: [0.5, 0.5, 0.5] })).toThrow(DataError);
  });

  it('writes atomically, reads back, and is reused only for the same data and seed', async () => {
    const file = path.join(tmp, 'split.json');
    const s = createSplit(index, { seed: 2 });
    await writeSplitManifest(file, s);
    expect(await readSplitManifest(file)).toEqual(s);
    expect((await readdir(tmp)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await loadOrCreateSplit(file, index, { seed: 2 })).toEqual(s);
    const other = await loadOrCreateSplit(file, { ...index, checksum: 'changed' }, { seed: 2 });
    expect(other.dataChecksum).toBe('changed');
    expect(JSON.parse(await readFile(file, 'utf8')).dataChecksum).toBe('changed');
  });

  it('refuses a file that is not a split manifest', async () => {
    const file = path.join(tmp, 'bad.json');
    await writeSplitManifest(file, { nope: 1 } as never);
    await expect(readSplitManifest(file)).rejects.toThrow(/not a split manifest/);
    await expect(readSplitManifest(path.join(tmp, 'missing.json'))).rejects.toThrow(DataError);
  });
});
