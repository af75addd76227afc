import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

import * as tar from 'tar';

import { CancelledError, DataError } from '../errors.js';
import { TF_FLOWERS_SHA256, TF_FLOWERS_URL } from './section.js';

const HOW_TO_POINT =
  'Point trt-flowers at a local copy of the flower_photos folder with --data-dir <folder>, the config key ' +
  'data.root, or the environment variable TRT_FLOWERS_DATA; or fetch from a local archive with ' +
  '`trt-flowers data fetch --url file:///path/to/flower_photos.tgz`.';

/** Where the data folder comes from, highest priority first. */
export interface DataDirSources {
  /** The --data-dir flag. */
  flag?: string | undefined;
  /** The config key data.root. */
  config?: string | undefined;
  /** The TRT_FLOWERS_DATA value. Defaults to process.env.TRT_FLOWERS_DATA when the key is absent. */
  env?: string | undefined;
}

/**
 * Picks the data folder: --data-dir flag > config data.root > env TRT_FLOWERS_DATA. Throws DataError listing all
 * three ways (and `trt-flowers data fetch`) when none is set, or when `mustExist` and the folder is missing.
 */
export function resolveDataDir(sources: DataDirSources = {}, options: { mustExist?: boolean } = {}): string {
  const env = 'env' in sources ? sources.env : process.env.TRT_FLOWERS_DATA;
  const picks: [string | undefined, string][] = [
    [sources.flag, '--data-dir'],
    [sources.config, 'config data.root'],
    [env, 'env TRT_FLOWERS_DATA'],
  ];
  const pick = picks.find(([value]) => typeof value === 'string' && value.trim() !== '');
  const help =
    'Set it with --data-dir <folder>, the config key data.root, or the environment variable TRT_FLOWERS_DATA; ' +
    'or download it with `trt-flowers data fetch`.';
  if (!pick) throw new DataError(`no data folder given. ${help}`);
  const dir = path.resolve(pick[0] as string);
  if (options.mustExist ?? true) {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir)
      throw new DataError(`data folder '${dir}' (from ${pick[1]}) does not exist or is not a folder. ${help}`);
  }
  return dir;
}

/** Options of fetchDataset. */
export interface FetchOptions {
  /** Archive location: http(s) URL, file:// URL or local path. Defaults to TensorFlow's flower_photos.tgz. */
  url?: string;
  /** Expected sha256 of the archive (hex). Defaults to the published tf_flowers checksum. */
  sha256?: string;
  /** Folder the data ends up in (the archive's single top folder is renamed to it). */
  out: string;
  /** Replace an existing folder (atomically, after the new one is extracted). Defaults to false. */
  force?: boolean;
  /** Cancels the download or extraction. Defaults to none. */
  signal?: AbortSignal;
  /** Gives up when a download receives nothing for this long (ms). Defaults to 30,000. */
  idleTimeoutMs?: number;
  /** Called as bytes arrive, with the total when known. Defaults to none. */
  onProgress?: (bytes: number, total?: number) => void;
}

/** The outcome of fetchDataset. */
export interface FetchResult {
  dir: string;
  /** True when the folder was already there and nothing was downloaded. */
  skipped: boolean;
  sha256?: string;
  bytes?: number;
}

const exists = (p: string): Promise<boolean> =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

/** Copies `source` (http(s) URL, file:// URL or path) to `dest`, returning its sha256 and size. */
async function download(
  source: string,
  dest: string,
  options: FetchOptions,
): Promise<{ sha256: string; bytes: number }> {
  if (options.signal?.aborted) throw new CancelledError();
  const hash = createHash('sha256');
  let bytes = 0;
  let total: number | undefined;
  let input: Readable;
  // One controller for the caller's signal and an idle timer that restarts whenever bytes arrive.
  const controller = new AbortController();
  const idleMs = options.idleTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data received for ${idleMs / 1000} s`)), idleMs);
  };
  const onAbort = (): void => controller.abort(new CancelledError());
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const failure = (err: unknown): Error => {
    if (options.signal?.aborted) return new CancelledError();
    const reason = controller.signal.aborted ? (controller.signal.reason as Error) : (err as Error & { cause?: Error });
    const cause = (reason as { cause?: Error }).cause?.message ?? reason.message;
    return new DataError(`cannot download '${source}': ${cause}. ${HOW_TO_POINT}`, { cause: err });
  };
  if (/^https?:\/\//i.test(source)) {
    let response: Response;
    touch();
    try {
      response = await fetch(source, { signal: controller.signal });
    } catch (err) {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      throw failure(err);
    }
    if (!response.ok || !response.body) {
      clearTimeout(timer);
      throw new DataError(
        `cannot download '${source}': HTTP ${response.status} ${response.statusText}. ${HOW_TO_POINT}`,
      );
    }
    total = Number(response.headers.get('content-length')) || undefined;
    input = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
  } else {
    const file = /^file:/i.test(source) ? fileURLToPath(source) : source;
    try {
      total = (await fs.stat(file)).size;
    } catch (err) {
      options.signal?.removeEventListener('abort', onAbort);
      throw new DataError(`cannot read archive '${file}': ${(err as Error).message}. ${HOW_TO_POINT}`, { cause: err });
    }
    input = createReadStream(file);
  }
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (timer) touch();
      hash.update(chunk);
      bytes += chunk.length;
      options.onProgress?.(bytes, total);
      done(null, chunk);
    },
  });
  try {
    await pipeline(input, meter, createWriteStream(dest), { signal: controller.signal });
  } catch (err) {
    throw failure(err);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Downloads the data archive, checks its sha256 and extracts it atomically: into a temporary folder beside `out`,
 * then one rename. An existing `out` is kept (skipped) unless `force`. Throws DataError with a hint on how to use a
 * local copy when the download fails (no network), and on a checksum mismatch.
 */
export async function fetchDataset(options: FetchOptions): Promise<FetchResult> {
  const out = path.resolve(options.out);
  const url = options.url ?? TF_FLOWERS_URL;
  const expected = (options.sha256 ?? TF_FLOWERS_SHA256).toLowerCase();
  if ((await exists(out)) && !options.force) return { dir: out, skipped: true };
  const parent = path.dirname(out);
  await fs.mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const archive = path.join(parent, `.${path.basename(out)}.${tag}.download`);
  const staging = path.join(parent, `.${path.basename(out)}.${tag}.extract`);
  const old = path.join(parent, `.${path.basename(out)}.${tag}.old`);
  try {
    const got = await download(url, archive, options);
    if (got.sha256 !== expected) {
      throw new DataError(`checksum mismatch for '${url}': sha256 ${got.sha256}, expected ${expected}`);
    }
    await fs.mkdir(staging);
    try {
      await tar.x({ file: archive, cwd: staging, strict: true });
    } catch (err) {
      throw new DataError(`cannot extract '${url}': ${(err as Error).message}`, { cause: err });
    }
    if (options.signal?.aborted) throw new CancelledError();
    // The tf_flowers archive holds one top folder (flower_photos/): that folder becomes `out`.
    const top = (await fs.readdir(staging, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    const content = top.length === 1 && top[0]?.isDirectory() ? path.join(staging, top[0].name) : staging;
    const replacing = await exists(out);
    if (replacing) await fs.rename(out, old);
    try {
      await fs.rename(content, out);
    } catch (err) {
      if (replacing) await fs.rename(old, out); // put the previous folder back
      throw new DataError(`cannot move the extracted data to '${out}': ${(err as Error).message}`, { cause: err });
    }
    return { dir: out, skipped: false, sha256: got.sha256, bytes: got.bytes };
  } finally {
    await Promise.all([archive, staging, old].map((p) => fs.rm(p, { recursive: true, force: true })));
  }
}
