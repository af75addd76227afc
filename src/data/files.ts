import fs from 'node:fs/promises';
import path from 'node:path';

import { SUPPORTED_EXTENSIONS } from './section.js';
import { DataError } from '../errors.js';

const EXTENSIONS = new Set<string>(SUPPORTED_EXTENSIONS);

/** True when the file name has an image extension the pipeline reads (jpg, jpeg, png, bmp, tif, tiff, webp). */
export function isImageFile(name: string): boolean {
  return EXTENSIONS.has(path.extname(name).toLowerCase());
}

/**
 * Every image file under `dir`, recursively (hidden entries skipped, symbolic links to files followed), sorted by
 * path. Throws DataError when the folder is missing.
 */
export async function listImages(dir: string): Promise<string[]> {
  try {
    if (!(await fs.stat(dir)).isDirectory()) throw new DataError(`'${dir}' is not a folder`);
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`folder '${dir}' not found`);
  }
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await fs.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if ((e.isFile() || e.isSymbolicLink()) && isImageFile(e.name)) out.push(full);
    }
  };
  await walk(dir);
  return out.sort();
}

/** `count` items spread evenly over a sorted list (deterministic). */
export function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  const step = items.length / count;
  return Array.from({ length: count }, (_, i) => items[Math.floor(i * step)] as T);
}
