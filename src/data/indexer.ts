import fs from 'node:fs/promises';
import path from 'node:path';

import { DataError } from '../errors.js';
import { DEFAULT_CLASSES, SUPPORTED_EXTENSIONS } from './config.js';
import { compareStrings, directoryChecksum, listFiles, mapLimit, md5 } from './fsutil.js';
import { probeImage } from './probe.js';

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
}

/** Options of indexDataset. */
export interface IndexOptions {
  /** Class folder names in label order. Defaults to daisy, dandelion, roses, sunflowers, tulips. */
  classes?: readonly string[];
  /** Largest accepted image in pixels. Defaults to 50,000,000. */
  maxPixels?: number;
  /** Files read and probed at once. Defaults to 8. */
  concurrency?: number;
  /** Fully decode every image instead of header + structure checks. Defaults to false. */
  deep?: boolean;
  /** Called after each file with (done, total). Defaults to none. */
  onProgress?: (done: number, total: number) => void;
  /** Cancels the scan (CancelledError). Defaults to none. */
  signal?: AbortSignal;
}

const SUPPORTED = new Set<string>(SUPPORTED_EXTENSIONS);

/**
 * Scans `root/<class>/**` for images: every file is read once (md5) and probed (header, pixel limit, truncation).
 * Bad files are reported in `invalid` and excluded; nothing throws for bad images. Throws DataError when the root or
 * a class folder is missing.
 */
export async function indexDataset(root: string, options: IndexOptions = {}): Promise<DatasetIndex> {
  const classes = [...(options.classes ?? DEFAULT_CLASSES)];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new DataError(`cannot read data folder '${root}': ${(err as Error).message}`, { cause: err });
  }
  const dirs = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
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
  const candidates: { path: string; label: number }[] = [];
  for (const [label, name] of classes.entries()) {
    for (const rel of await listFiles(path.join(root, name))) {
      const file = `${name}/${rel}`;
      if (SUPPORTED.has(path.extname(rel).toLowerCase())) candidates.push({ path: file, label });
      else ignored.push({ path: file, reason: `unsupported extension '${path.extname(rel) || '(none)'}'` });
    }
  }
  let done = 0;
  const probed = await mapLimit(
    candidates,
    options.concurrency ?? 8,
    async ({ path: rel, label }) => {
      let result: IndexedImage | ExcludedFile;
      try {
        const bytes = await fs.readFile(path.join(root, rel));
        const probe = await probeImage(bytes, {
          maxPixels: options.maxPixels ?? 50_000_000,
          deep: options.deep ?? false,
        });
        result = probe.ok
          ? {
              path: rel,
              label,
              className: classes[label] as string,
              md5: md5(bytes),
              bytes: bytes.length,
              format: probe.format,
              width: probe.width,
              height: probe.height,
            }
          : { path: rel, reason: probe.reason };
      } catch (err) {
        result = { path: rel, reason: `cannot read: ${(err as Error).message}` };
      }
      options.onProgress?.(++done, candidates.length);
      return result;
    },
    options.signal,
  );
  const images = probed.filter((p): p is IndexedImage => 'md5' in p);
  const invalid = probed.filter((p): p is ExcludedFile => 'reason' in p);
  return {
    root,
    classes,
    images,
    invalid,
    ignored,
    duplicates: findDuplicates(images),
    checksum: directoryChecksum(images),
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
