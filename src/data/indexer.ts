import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { DataError } from '../errors.js';
import { DEFAULT_CLASSES, SUPPORTED_EXTENSIONS } from './section.js';
import {
  compareStrings,
  DEFAULT_MAX_FILE_BYTES,
  directoryChecksum,
  listFiles,
  mapLimit,
  md5,
  readRegularFile,
  type SkippedEntry,
} from '../util/fs.js';
import { DecodeCheckCache, defaultCheckCacheFile } from './manifest.js';
import { decodeCheck, probeImage } from './probe.js';

/** One readable image of the data set. */
export interface IndexedImage {
  /** POSIX path relative to the data root, e.g. "roses/123.jpg". */
  path: string;
  label: number;
  className: string;
  md5: string;
  bytes: number;
  format: string;
  width: number;
  height: number;
}

/** A file that was excluded, and why. */
export interface ExcludedFile {
  path: string;
  reason: string;
}

/** Files with identical bytes. `conflict` is true when they sit under different classes. */
export interface DuplicateGroup {
  md5: string;
  paths: string[];
  classes: string[];
  conflict: boolean;
}

/** The result of indexDataset. */
export interface DatasetIndex {
  root: string;
  classes: string[];
  /** Readable images, sorted by path. */
  images: IndexedImage[];
  /** Corrupt, truncated, empty, oversized or non-image files (reported, never used). */
  invalid: ExcludedFile[];
  /** Files with an extension the pipeline does not read, and folders that are not classes. */
  ignored: ExcludedFile[];
  duplicates: DuplicateGroup[];
  /** DVC-style md5 over sorted "relpath md5" lines of the readable images: identifies the data in split manifests. */
  checksum: string;
  /** Files fully decoded by this index, and files whose decode-check outcome came from the cache. */
  check: { decoded: number; cached: number };
}

/** Options of indexDataset. */
export interface IndexOptions {
  /** Class folder names in label order. Defaults to daisy, dandelion, roses, sunflowers, tulips. */
  classes?: readonly string[];
  /** Largest accepted image in pixels. Defaults to 50,000,000. */
  maxPixels?: number;
  /** Largest image file read, in bytes; bigger files are excluded without being read whole. Defaults to 64 MiB. */
  maxFileBytes?: number;
  /** Files read and probed at once. Defaults to 8. */
  concurrency?: number;
  /** Decode every image again, ignoring the outcomes in `checkCache`. Defaults to false. */
  deep?: boolean;
  /**
   * File keeping the outcome of each file's full decode check by content md5, so each photo is decoded once (a
   * changed file is checked again); false keeps nothing. Defaults to a file per data folder under
   * TRT_FLOWERS_CACHE_DIR, else $XDG_CACHE_HOME/trt-flowers, else ~/.cache/trt-flowers.
   */
  checkCache?: string | false;
  /** Called after each file with (done, total). Defaults to none. */
  onProgress?: (done: number, total: number) => void;
  /** Cancels the scan (CancelledError). Defaults to none. */
  signal?: AbortSignal;
}

const SUPPORTED = new Set<string>(SUPPORTED_EXTENSIONS);

/**
 * Scans `root/<class>/**` for images: every file is read once (md5), probed (header, pixel limit, truncation) and,
 * once per content (see `checkCache`), fully decoded, so that a photo libjpeg only warns about never reaches a batch.
 * Symbolic links to photos and to folders are followed. Bad files are reported in `invalid` and excluded; nothing
 * throws for bad images. Throws DataError when the root or a class folder is missing, or when no image is usable.
 */
export async function indexDataset(root: string, options: IndexOptions = {}): Promise<DatasetIndex> {
  const classes = [...(options.classes ?? DEFAULT_CLASSES)];
  let entries: Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new DataError(`cannot read data folder '${root}': ${(err as Error).message}`, { cause: err });
  }
  // A class folder may be a symbolic link to a folder elsewhere.
  const isDir = async (e: Dirent): Promise<boolean> =>
    e.isDirectory() ||
    (e.isSymbolicLink() &&
      (await fs.stat(path.join(root, e.name)).then(
        (s) => s.isDirectory(),
        () => false,
      )));
  const dirs = new Set<string>();
  for (const e of entries) if (await isDir(e)) dirs.add(e.name);
  const missing = classes.filter((c) => !dirs.has(c));
  if (missing.length > 0) {
    throw new DataError(
      `data folder '${root}' has no class folder ${missing.map((m) => `'${m}'`).join(', ')} ` +
        `(found: ${[...dirs].sort().join(', ') || 'none'}); expected one sub-folder per class: ${classes.join(', ')}`,
    );
  }
  const ignored: ExcludedFile[] = [...dirs]
    .filter((d) => !classes.includes(d) && !d.startsWith('.'))
    .map((d) => ({ path: `${d}/`, reason: 'folder is not a configured class' }));
  const unusable: ExcludedFile[] = [];
  const candidates: { path: string; label: number }[] = [];
  for (const [label, name] of classes.entries()) {
    // A broken link or a FIFO named like a photo was meant as one: it is reported with the unreadable files.
    const skipped = (e: SkippedEntry): void =>
      void (SUPPORTED.has(path.extname(e.path).toLowerCase()) ? unusable : ignored).push({
        path: `${name}/${e.path}`,
        reason: e.reason,
      });
    for (const rel of await listFiles(path.join(root, name), skipped)) {
      const file = `${name}/${rel}`;
      if (SUPPORTED.has(path.extname(rel).toLowerCase())) candidates.push({ path: file, label });
      else ignored.push({ path: file, reason: `unsupported extension '${path.extname(rel) || '(none)'}'` });
    }
  }
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const maxPixels = options.maxPixels ?? 50_000_000;
  const checks = await DecodeCheckCache.open(
    options.checkCache === false ? undefined : (options.checkCache ?? (await defaultCheckCacheFile(root))),
    `libvips ${sharp.versions.vips}`,
  );
  const check = { decoded: 0, cached: 0 };
  let done = 0;
  const probed = await mapLimit(
    candidates,
    options.concurrency ?? 8,
    async ({ path: rel, label }) => {
      let result: IndexedImage | ExcludedFile;
      try {
        const bytes = await readRegularFile(path.join(root, rel), maxFileBytes);
        const probe = await probeImage(bytes, { maxPixels });
        const hash = md5(bytes);
        let failure = probe.ok ? undefined : probe.reason;
        if (probe.ok && probe.format !== 'bmp') {
          // The full decode runs once per content: its outcome does not depend on the options.
          const known = options.deep ? undefined : checks.get(hash);
          if (known === undefined) {
            failure = await decodeCheck(bytes, probe.format, maxPixels);
            checks.set(hash, failure ?? null);
            check.decoded++;
          } else {
            failure = known ?? undefined;
            check.cached++;
          }
        }
        result =
          probe.ok && failure === undefined
            ? {
                path: rel,
                label,
                className: classes[label] as string,
                md5: hash,
                bytes: bytes.length,
                format: probe.format,
                width: probe.width,
                height: probe.height,
              }
            : { path: rel, reason: failure as string };
      } catch (err) {
        result = { path: rel, reason: `cannot read: ${(err as Error).message}` };
      }
      options.onProgress?.(++done, candidates.length);
      return result;
    },
    options.signal,
  );
  await checks.save();
  const images = probed.filter((p): p is IndexedImage => 'md5' in p);
  const invalid = [...unusable, ...probed.filter((p): p is ExcludedFile => 'reason' in p)].sort((a, b) =>
    compareStrings(a.path, b.path),
  );
  if (images.length === 0) {
    const first = invalid[0] ? `; first: ${invalid[0].path}: ${invalid[0].reason}` : '';
    throw new DataError(
      `no images found in '${root}': its class folders (${classes.join(', ')}) hold no readable image ` +
        `(${invalid.length} unreadable, ${ignored.length} other entries${first})`,
    );
  }
  return {
    root,
    classes,
    images,
    invalid,
    ignored,
    duplicates: findDuplicates(images),
    checksum: directoryChecksum(images),
    check,
  };
}

/** Groups images with identical bytes (same md5), sorted by first path. */
export function findDuplicates(images: readonly Pick<IndexedImage, 'path' | 'md5' | 'className'>[]): DuplicateGroup[] {
  const byMd5 = new Map<string, (typeof images)[number][]>();
  for (const image of images) {
    const group = byMd5.get(image.md5);
    if (group) group.push(image);
    else byMd5.set(image.md5, [image]);
  }
  const groups: DuplicateGroup[] = [];
  for (const [hash, members] of byMd5) {
    if (members.length < 2) continue;
    const classes = [...new Set(members.map((m) => m.className))].sort(compareStrings);
    groups.push({
      md5: hash,
      paths: members.map((m) => m.path).sort(compareStrings),
      classes,
      conflict: classes.length > 1,
    });
  }
  return groups.sort((a, b) => compareStrings(a.paths[0] as string, b.paths[0] as string));
}
