import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { CancelledError } from '../errors.js';

/** Writes a file atomically: a temporary sibling is written, flushed and renamed over the target. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** md5 of a byte buffer, hex. */
export const md5 = (data: Uint8Array | string): string => createHash('md5').update(data).digest('hex');

/** Throws CancelledError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and returns the results in input order.
 * Stops starting new calls once `signal` fires (then throws CancelledError).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      throwIfAborted(signal);
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  throwIfAborted(signal);
  return results;
}

/** A counting semaphore: bounds the number of images in flight across concurrent batches. */
export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(count: number) {
    this.#free = Math.max(1, count);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const wake = this.#waiting.shift();
      if (wake) wake();
      else this.#free++;
    }
  }
}

/** Recursively lists regular files under `root` as sorted POSIX relative paths, skipping dot-files. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      else if (e.isFile()) out.push(r);
    }
  };
  await walk(root, '');
  return out.sort(compareStrings);
}

/** Byte-order string comparison (locale-independent, so listings hash the same everywhere). */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** DVC-style directory hash: md5 over sorted "relpath md5" lines. */
export function directoryChecksum(entries: readonly { path: string; md5: string }[]): string {
  const lines = entries.map((e) => `${e.path} ${e.md5}\n`).sort(compareStrings);
  return md5(lines.join(''));
}
