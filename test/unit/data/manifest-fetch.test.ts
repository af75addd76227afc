import { createServer, type Socket } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';

import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';

import { fetchDataset, resolveDataDir } from '../../../src/data/fetch.js';
import { directoryChecksum, md5 } from '../../../src/util/fs.js';
import { createManifest, readManifest, sidecarPath, verifyDataDir, writeManifest } from '../../../src/data/manifest.js';
import { DataError } from '../../../src/errors.js';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'manifest-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function makeFolder(dir: string): Promise<void> {
  for (const [rel, text] of [
    ['daisy/a.jpg', 'aaa'],
    ['daisy/b.jpg', 'bbb'],
    ['roses/c.jpg', 'ccc'],
    ['LICENSE.txt', 'license'],
  ] as const) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

describe('data manifest', () => {
  it('hashes a folder DVC-style and verifies it, naming changed, missing and extra files', async () => {
    const dir = path.join(tmp, 'flowers');
    await makeFolder(dir);
    const m = await createManifest(dir, { name: 'flower_photos' });
    expect(m.nfiles).toBe(4);
    expect(m.size).toBe(3 + 3 + 3 + 7);
    const lines = ['LICENSE.txt', 'daisy/a.jpg', 'daisy/b.jpg', 'roses/c.jpg'].map(
      (p, i) => `${p} ${md5(['license', 'aaa', 'bbb', 'ccc'][i]!)}\n`,
    );
    expect(m.md5).toBe(md5(lines.join('')));
    expect(directoryChecksum(m.files!)).toBe(m.md5);

    const file = path.join(tmp, 'tf_flowers.dvc.yaml');
    await writeManifest(file, m);
    expect(sidecarPath(file)).toBe(path.join(tmp, 'tf_flowers.files.md5'));
    const back = await readManifest(file);
    expect(back).toEqual(m);
    expect(await readFile(file, 'utf8')).toContain(`md5: ${m.md5}.dir`);
    expect((await verifyDataDir(dir, back)).ok).toBe(true);

    await writeFile(path.join(dir, 'daisy/a.jpg'), 'changed');
    await rm(path.join(dir, 'roses/c.jpg'));
    await writeFile(path.join(dir, 'roses/new.jpg'), 'new');
    const r = await verifyDataDir(dir, back);
    expect(r).toMatchObject({
      ok: false,
      changed: ['daisy/a.jpg'],
      missing: ['roses/c.jpg'],
      extra: ['roses/new.jpg'],
    });
  });

  it('refuses malformed manifests with DataError', async () => {
    const file = path.join(tmp, 'bad.yaml');
    await writeFile(file, 'outs: []\n');
    await expect(readManifest(file)).rejects.toThrow(/not a data manifest/);
    await expect(readManifest(path.join(tmp, 'none.yaml'))).rejects.toThrow(DataError);
  });
});

describe('resolveDataDir', () => {
  it('picks flag > config > env', () => {
    expect(resolveDataDir({ flag: tmp, config: '/nope', env: '/nope' })).toBe(tmp);
    expect(resolveDataDir({ config: tmp, env: '/nope' })).toBe(tmp);
    expect(resolveDataDir({ env: tmp })).toBe(tmp);
  });

  it('explains all three ways and data fetch when none is set', () => {
    const run = (): string => resolveDataDir({ env: undefined });
    expect(run).toThrow(DataError);
    expect(run).toThrow(/--data-dir.*data\.root.*TRT_FLOWERS_DATA.*trt-flowers data fetch/);
    expect(() => resolveDataDir({ flag: path.join(tmp, 'missing') })).toThrow(/\(from --data-dir\) does not exist/);
  });
});

describe('fetchDataset', () => {
  async function makeArchive(): Promise<{ file: string; sha256: string }> {
    const src = path.join(tmp, 'src');
    await makeFolder(path.join(src, 'flower_photos'));
    const file = path.join(tmp, 'flower_photos.tgz');
    await tar.c({ gzip: true, file, cwd: src }, ['flower_photos']);
    return {
      file,
      sha256: createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    };
  }

  it('fetches a file:// archive, checks sha256 and extracts atomically', async () => {
    const { file, sha256 } = await makeArchive();
    const out = path.join(tmp, 'data', 'flower_photos');
    const r = await fetchDataset({ url: pathToFileURL(file).href, sha256, out });
    expect(r.skipped).toBe(false);
    expect(r.sha256).toBe(sha256);
    expect((await readdir(out)).sort()).toEqual(['LICENSE.txt', 'daisy', 'roses']);
    expect(await readFile(path.join(out, 'daisy/a.jpg'), 'utf8')).toBe('aaa');
    expect(await readdir(path.dirname(out))).toEqual(['flower_photos']); // no temp leftovers
    expect((await fetchDataset({ url: file, sha256, out })).skipped).toBe(true);
    const again = await fetchDataset({ url: file, sha256, out, force: true });
    expect(again.skipped).toBe(false);
  });

  it('rejects a checksum mismatch and leaves nothing behind', async () => {
    const { file } = await makeArchive();
    const out = path.join(tmp, 'mismatch', 'flower_photos');
    await expect(fetchDataset({ url: file, sha256: '0'.repeat(64), out })).rejects.toThrow(/checksum mismatch/);
    expect(await readdir(path.dirname(out))).toEqual([]);
  });

  it('fails a download with a message that says how to use a local copy', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const refused = `http://127.0.0.1:${(closed.address() as { port: number }).port}/flower_photos.tgz`;
    await new Promise((r) => closed.close(r));
    const sockets = new Set<Socket>();
    const stalled = createServer((s) => sockets.add(s)); // accepts and never answers
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    const silent = `http://127.0.0.1:${(stalled.address() as { port: number }).port}/flower_photos.tgz`;
    try {
      for (const url of [refused, silent]) {
        const err = await fetchDataset({ url, idleTimeoutMs: 300, out: path.join(tmp, 'net', 'x') }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DataError);
        expect((err as Error).message).toMatch(/cannot download .*--data-dir.*data\.root.*TRT_FLOWERS_DATA/);
      }
    } finally {
      for (const s of sockets) s.destroy();
      stalled.close();
    }
    await expect(fetchDataset({ url: path.join(tmp, 'no-such.tgz'), out: path.join(tmp, 'net', 'y') })).rejects.toThrow(
      /cannot read archive/,
    );
  });
});
