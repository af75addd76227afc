import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_MANIFEST } from '../../../src/cli/commands/data.js';
import { indexDataset, type DatasetIndex } from '../../../src/data/indexer.js';
import { createManifest, readManifest, verifyDataDir, writeManifest } from '../../../src/data/manifest.js';
import { createSplit, SPLIT_NAMES } from '../../../src/data/split.js';
import type { DataStats } from '../../../src/data/stats.js';
import { DataError } from '../../../src/errors.js';
import { CLASSES, flowerDir, hasFlowers, photos } from '../../helpers.js';
import { runDataCli } from '../train-helpers.js';

const cli = runDataCli;

describe.skipIf(!hasFlowers)(`the real tf_flowers folder (${flowerDir})`, () => {
  let index: DatasetIndex;
  let tmp: string;
  beforeAll(async () => {
    index = await indexDataset(flowerDir);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'real-data-'));
  });
  afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

  it('indexes 3,670 readable photos with the published per-class counts', () => {
    expect(index.invalid).toEqual([]);
    expect(index.classes.map((_, l) => index.images.filter((i) => i.label === l).length)).toEqual([
      633, 898, 641, 699, 799,
    ]);
  });

  it('reports the roses/tulips label conflict and the two sunflower duplicates', () => {
    const conflicts = index.duplicates.filter((d) => d.conflict);
    expect(conflicts.map((d) => d.paths)).toEqual([
      ['roses/15922772266_1167a06620.jpg', 'tulips/15922772266_1167a06620.jpg'],
    ]);
    const within = index.duplicates.filter((d) => !d.conflict).map((d) => d.paths);
    expect(within).toEqual([
      ['sunflowers/14889392928_9742aed45b_m.jpg', 'sunflowers/15066430311_fb57fa92b0_m.jpg'],
      ['sunflowers/15069459615_7e0fd61914_n.jpg', 'sunflowers/15072973261_73e2912ef2_n.jpg'],
    ]);
  });

  it('splits 70/15/15 per class, the same way every run, with no duplicate straddling splits', () => {
    const a = createSplit(index, { seed: 42 });
    expect(createSplit(index, { seed: 42 })).toEqual(a);
    expect(SPLIT_NAMES.reduce((n, s) => n + a[s].length, 0)).toBe(3670);
    expect(a.counts.train).toEqual([443, 629, 448, 489, 560]); // the roses/tulips pair sits with roses' groups
    const splitOf = new Map<string, Set<string>>();
    for (const s of SPLIT_NAMES) for (const i of a[s]) splitOf.set(i.md5, (splitOf.get(i.md5) ?? new Set()).add(s));
    expect([...splitOf.values()].every((set) => set.size === 1)).toBe(true);
  });

  it('matches the committed manifest (data verify)', async () => {
    const manifest = await readManifest(DEFAULT_MANIFEST);
    expect(manifest.nfiles).toBe(3671);
    const r = await verifyDataDir(flowerDir, manifest);
    expect(r).toMatchObject({ ok: true, missing: [], extra: [], changed: [] });
  });

  it('`data stats --json` prints the counts and the duplicates', async () => {
    const stats = JSON.parse(await cli('stats', '--data-dir', flowerDir, '--json')) as DataStats;
    expect(stats.classes.map((c) => c.count)).toEqual([633, 898, 641, 699, 799]);
    expect(stats.conflicts[0]?.classes).toEqual(['roses', 'tulips']);
    expect(stats.duplicates).toHaveLength(3);
    expect(stats.commonSizes[0]).toEqual({ size: '500x333', count: 635 });
  });

  it('`data verify` fails naming the changed photo on a copy', async () => {
    const copy = path.join(tmp, 'flower_photos');
    for (const cls of CLASSES) {
      await mkdir(path.join(copy, cls), { recursive: true });
      for (const f of photos(cls, 2)) await copyFile(f, path.join(copy, cls, path.basename(f)));
    }
    const manifestFile = path.join(tmp, 'small.dvc.yaml');
    await writeManifest(manifestFile, await createManifest(copy));
    expect(await cli('verify', '--data-dir', copy, '--manifest', manifestFile)).toMatch(/^OK/);
    const victim = path.join(copy, 'roses', path.basename(photos('roses', 1)[0]!));
    await writeFile(victim, Buffer.concat([Buffer.from('x'), Buffer.alloc(10)]));
    const err = await cli('verify', '--data-dir', copy, '--manifest', manifestFile).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(`roses/${path.basename(victim)}`);
  });
});
