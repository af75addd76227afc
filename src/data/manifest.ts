import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import YAML from 'yaml';

import { DataError } from '../errors.js';
import { compareStrings, directoryChecksum, listFiles, mapLimit, md5, writeFileAtomic } from '../util/fs.js';

/** One file of a tracked folder. */
export interface ManifestFile {
  path: string;
  md5: string;
  size: number;
}

/** A DVC-style record of a data folder (the committed data/tf_flowers.dvc.yaml). */
export interface DataManifest {
  /** Folder name the record describes, e.g. "flower_photos". */
  path: string;
  /** DVC directory hash: md5 over sorted "relpath md5" lines of every file. */
  md5: string;
  nfiles: number;
  /** Total bytes of the files. */
  size: number;
  /** Per-file md5 and size (kept in a sidecar next to the YAML), so verify can name what differs. */
  files?: ManifestFile[];
  /** Where the archive comes from. */
  source?: { url: string; sha256: string; size?: number };
}

/** The outcome of verifyDataDir. */
export interface VerifyResult {
  ok: boolean;
  expected: string;
  actual: string;
  nfiles: number;
  missing: string[];
  extra: string[];
  changed: string[];
}

/** md5 and size of every regular non-hidden file under `root` (sorted by path). */
export async function hashTree(
  root: string,
  options: { concurrency?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<ManifestFile[]> {
  let files: string[];
  try {
    files = await listFiles(root);
  } catch (err) {
    throw new DataError(`cannot read data folder '${root}': ${(err as Error).message}`, { cause: err });
  }
  let done = 0;
  return mapLimit(
    files,
    options.concurrency ?? 8,
    async (rel) => {
      const bytes = await fs.readFile(path.join(root, rel));
      options.onProgress?.(++done, files.length);
      return { path: rel, md5: md5(bytes), size: bytes.length };
    },
    options.signal,
  );
}

/** Builds the manifest of a folder (all files, hashed). */
export async function createManifest(
  root: string,
  options: { name?: string; source?: DataManifest['source']; signal?: AbortSignal } = {},
): Promise<DataManifest> {
  const files = await hashTree(root, options.signal ? { signal: options.signal } : {});
  return {
    path: options.name ?? path.basename(path.resolve(root)),
    md5: directoryChecksum(files),
    nfiles: files.length,
    size: files.reduce((n, f) => n + f.size, 0),
    files,
    ...(options.source ? { source: options.source } : {}),
  };
}

/** The sidecar holding the per-file list: "data/tf_flowers.dvc.yaml" -> "data/tf_flowers.files.md5". */
export const sidecarPath = (manifestFile: string): string =>
  path.join(path.dirname(manifestFile), `${path.basename(manifestFile).replace(/(\.dvc)?(\.ya?ml)?$/, '')}.files.md5`);

/** Writes the YAML record and its sidecar (one "md5  size  relpath" line per file), each atomically. */
export async function writeManifest(file: string, manifest: DataManifest): Promise<void> {
  const sidecar = sidecarPath(file);
  if (manifest.files) {
    const lines = [...manifest.files].sort((a, b) => compareStrings(a.path, b.path));
    await writeFileAtomic(sidecar, lines.map((f) => `${f.md5}  ${f.size}  ${f.path}\n`).join(''));
  }
  const doc = {
    outs: [
      {
        path: manifest.path,
        hash: 'md5',
        md5: `${manifest.md5}.dir`,
        nfiles: manifest.nfiles,
        size: manifest.size,
        ...(manifest.files ? { files: path.basename(sidecar) } : {}),
      },
    ],
    ...(manifest.source ? { source: manifest.source } : {}),
  };
  const header =
    '# DVC-style record of the data folder; written by `trt-flowers data manifest`, checked by `data verify`.\n';
  await writeFileAtomic(file, header + YAML.stringify(doc));
}

/** Reads a manifest written by writeManifest (and its sidecar, when present). Throws DataError when malformed. */
export async function readManifest(file: string): Promise<DataManifest> {
  let doc: unknown;
  try {
    doc = YAML.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new DataError(`cannot read data manifest '${file}': ${(err as Error).message}`, { cause: err });
  }
  const out = (doc as { outs?: Record<string, unknown>[] } | null)?.outs?.[0];
  if (!out || typeof out.md5 !== 'string' || typeof out.path !== 'string' || typeof out.nfiles !== 'number') {
    throw new DataError(`'${file}' is not a data manifest (expected outs[0] with path, md5, nfiles, size)`);
  }
  const manifest: DataManifest = {
    path: out.path,
    md5: out.md5.replace(/\.dir$/, ''),
    nfiles: out.nfiles,
    size: Number(out.size ?? 0),
  };
  const source = (doc as { source?: DataManifest['source'] }).source;
  if (source) manifest.source = source;
  if (typeof out.files === 'string') {
    const sidecar = path.join(path.dirname(file), out.files);
    let text: string;
    try {
      text = await fs.readFile(sidecar, 'utf8');
    } catch (err) {
      throw new DataError(`cannot read the file list '${sidecar}' of '${file}': ${(err as Error).message}`, {
        cause: err,
      });
    }
    manifest.files = text
      .split('\n')
      .filter((l) => l.trim())
      .map((line, i) => {
        const m = /^([0-9a-f]{32}) {2}(\d+) {2}(.+)$/.exec(line);
        if (!m) throw new DataError(`${sidecar}:${i + 1}: expected "md5  size  path", got '${line.slice(0, 80)}'`);
        return { md5: m[1] as string, size: Number(m[2]), path: m[3] as string };
      });
  }
  return manifest;
}

/** Compares a folder with a manifest: missing, extra and changed files (by md5), and the directory hash. */
export async function verifyDataDir(root: string, manifest: DataManifest, options: { signal?: AbortSignal } = {}) {
  const files = await hashTree(root, options.signal ? { signal: options.signal } : {});
  const actual = directoryChecksum(files);
  const result: VerifyResult = {
    ok: actual === manifest.md5,
    expected: manifest.md5,
    actual,
    nfiles: files.length,
    missing: [],
    extra: [],
    changed: [],
  };
  if (manifest.files) {
    const have = new Map(files.map((f) => [f.path, f]));
    const want = new Map(manifest.files.map((f) => [f.path, f]));
    for (const [p, f] of want) {
      const got = have.get(p);
      if (!got) result.missing.push(p);
      else if (got.md5 !== f.md5) result.changed.push(p);
    }
    for (const p of have.keys()) if (!want.has(p)) result.extra.push(p);
    result.ok = result.ok && result.missing.length + result.extra.length + result.changed.length === 0;
  }
  return result;
}

/** One-paragraph human summary of a VerifyResult. */
export function formatVerify(root: string, r: VerifyResult): string {
  if (r.ok) return `OK: '${root}' matches the manifest (${r.nfiles} files, md5 ${r.actual}.dir)`;
  const lines = [`MISMATCH: '${root}' differs from the manifest (md5 ${r.actual}.dir, expected ${r.expected}.dir)`];
  const list = (label: string, paths: string[]): void => {
    if (paths.length === 0) return;
    lines.push(`  ${label} (${paths.length}):`, ...paths.slice(0, 20).map((p) => `    ${p}`));
    if (paths.length > 20) lines.push(`    ... and ${paths.length - 20} more`);
  };
  list('changed', r.changed);
  list('missing', r.missing);
  list('extra', r.extra);
  return lines.join('\n');
}

/** Bumped when the decode check changes, so outcomes of an older check are not reused. */
const DECODE_CHECK_VERSION = 1;

/** The folder of trt-flowers' caches: TRT_FLOWERS_CACHE_DIR, else $XDG_CACHE_HOME/trt-flowers, else ~/.cache/trt-flowers. */
export function cacheDir(): string {
  if (process.env.TRT_FLOWERS_CACHE_DIR) return process.env.TRT_FLOWERS_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'trt-flowers');
}

/** Where the decode-check outcomes of a data folder are kept by default: one file per folder (by real path). */
export async function defaultCheckCacheFile(root: string): Promise<string> {
  const real = await fs.realpath(root).catch(() => path.resolve(root));
  return path.join(cacheDir(), 'decode-check', `${md5(real).slice(0, 16)}.json`);
}

/**
 * The outcomes of the full decode check of a data folder's files, keyed by each file's md5: a changed file has
 * another md5 and is checked again, and a renamed or copied one is not. The record is tied to the check's version
 * and the decoder's, and holds only the files of the last index, so it never outgrows the folder.
 */
export class DecodeCheckCache {
  readonly file: string | undefined;
  readonly #stamp: string;
  readonly #stored: Map<string, string | null>;
  readonly #current = new Map<string, string | null>();
  #changed = false;

  private constructor(file: string | undefined, stamp: string, stored: Map<string, string | null>) {
    this.file = file;
    this.#stamp = stamp;
    this.#stored = stored;
  }

  /** Reads the record in `file` (none, unreadable or from another check: empty). `undefined`: nothing is kept. */
  static async open(file: string | undefined, decoder: string): Promise<DecodeCheckCache> {
    const stamp = `v${DECODE_CHECK_VERSION} ${decoder}`;
    const stored = new Map<string, string | null>();
    if (file) {
      try {
        const doc = JSON.parse(await fs.readFile(file, 'utf8')) as { stamp?: unknown; results?: unknown };
        if (doc.stamp === stamp && doc.results && typeof doc.results === 'object') {
          for (const [hash, outcome] of Object.entries(doc.results as Record<string, unknown>)) {
            if (typeof outcome === 'string' || outcome === null) stored.set(hash, outcome);
          }
        }
      } catch {
        // no record yet, or an unreadable one: every file is checked
      }
    }
    return new DecodeCheckCache(file, stamp, stored);
  }

  /** The stored outcome for a file's md5: null (decodes cleanly), the reason it does not, or undefined (unchecked). */
  get(hash: string): string | null | undefined {
    const outcome = this.#stored.get(hash);
    if (outcome !== undefined) this.#current.set(hash, outcome);
    return outcome;
  }

  /** Records the outcome of checking a file. */
  set(hash: string, outcome: string | null): void {
    this.#current.set(hash, outcome);
    this.#changed = true;
  }

  /** Writes the outcomes of this index (atomically) when they differ from the record; a failed write is ignored. */
  async save(): Promise<void> {
    if (!this.file) return;
    if (!this.#changed && this.#current.size === this.#stored.size) return;
    const results = Object.fromEntries([...this.#current].sort((a, b) => compareStrings(a[0], b[0])));
    // The record only saves time: a read-only cache folder must not stop indexing.
    await writeFileAtomic(this.file, `${JSON.stringify({ stamp: this.#stamp, results })}\n`).catch(() => undefined);
  }
}
