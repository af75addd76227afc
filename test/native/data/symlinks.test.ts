// Data folders made of symbolic links (to photos and to class folders) train like plain ones, and a folder without
// usable images is refused at start, before a run folder exists.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { indexDataset } from '../../../src/data/indexer.js';
import type { DataStats } from '../../../src/data/stats.js';
import { DataError } from '../../../src/errors.js';
import { train } from '../../../src/train/train.js';
import { CLASSES, hasFlowers, photos } from '../../helpers.js';
import { quiet, runDataCli, tinyTrainConfig } from '../train-helpers.js';

let tmp: string;
let linked: string;
let empty: string;

const cli = runDataCli;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'symlinks-'));
  linked = path.join(tmp, 'linked');
  // Four classes hold symlinks to the real photos; tulips is itself a symlink to a folder of symlinks.
  for (const c of CLASSES.filter((c) => c !== 'tulips')) {
    await mkdir(path.join(linked, c), { recursive: true });
    for (const f of photos(c, 7)) await symlink(f, path.join(linked, c, path.basename(f)));
  }
  const elsewhere = path.join(tmp, 'elsewhere', 'tulip-photos');
  await mkdir(elsewhere, { recursive: true });
  for (const f of photos('tulips', 7)) await symlink(f, path.join(elsewhere, path.basename(f)));
  await symlink(elsewhere, path.join(linked, 'tulips'));
  // A loop (a folder linking to its parent) must neither hang the scan nor list photos twice.
  await symlink('..', path.join(linked, 'roses', 'again'));
  await symlink(path.join(tmp, 'nowhere.jpg'), path.join(linked, 'daisy', 'broken.jpg'));
  empty = path.join(tmp, 'empty');
  for (const c of CLASSES) await mkdir(path.join(empty, c), { recursive: true });
});
afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

describe.skipIf(!hasFlowers)('a data folder of symbolic links', () => {
  it('indexes the linked photos and linked class folders, once each, and names a broken link', async () => {
    const index = await indexDataset(linked);
    expect(index.classes.map((_, l) => index.images.filter((i) => i.label === l).length)).toEqual([7, 7, 7, 7, 7]);
    expect(index.images.some((i) => i.path.includes('again'))).toBe(false);
    expect([...index.invalid, ...index.ignored].find((f) => f.path === 'daisy/broken.jpg')?.reason).toMatch(
      /broken symbolic link|cannot read/,
    );
  });

  it('`data stats` counts them', async () => {
    const stats = JSON.parse(await cli('stats', '--data-dir', linked, '--json')) as DataStats;
    expect(stats.total).toBe(35);
  });

  it('trains on them', async () => {
    const runs = path.join(tmp, 'runs-linked');
    const { config, raw } = trainConfig(runs);
    const result = await train({ config, rawConfig: raw, dataDir: linked, progress: quiet });
    expect(result.status).toBe('completed');
  });
});

describe('a data folder without images', () => {
  it('is a DataError naming the folder, from the index and from `data stats`', async () => {
    const err = await indexDataset(empty).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(`no images found in '${empty}'`);
    await expect(cli('stats', '--data-dir', empty)).rejects.toThrow(/no images found/);
  });

  it('stops training at start without leaving a run folder', async () => {
    const runs = path.join(tmp, 'runs-empty');
    const { config, raw } = trainConfig(runs);
    const err = await train({ config, rawConfig: raw, dataDir: empty, progress: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(empty);
    expect(existsSync(runs) ? readdirSync(runs) : []).toEqual([]);
  });
});

const trainConfig = (runsDir: string) =>
  tinyTrainConfig(runsDir, [
    'data.batch_size=4',
    'data.augment.enabled=false',
    'trainer.max_epochs=1',
    'trainer.limit_train_batches=1',
    'trainer.evaluate_test=false',
  ]);
