import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
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

/** A listed entry that is not a readable regular file or folder (broken link, FIFO, device, socket). */
export interface SkippedEntry {
  path: string;
  reason: string;
}

/**
 * Recursively lists regular files under `root` as sorted POSIX relative paths, skipping dot-files. Symbolic links
 * to files and to folders are followed; a link to a folder above `root` is a loop and skipped, and every folder is
 * walked once (by device and inode), so the walk always ends. Broken links, loops and what is neither a file nor a
 * folder go to `onSkip`.
 */
export async function listFiles(root: string, onSkip?: (entry: SkippedEntry) => void): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const rootReal = await fs.realpath(root);
  const walk = async (dir: string, rel: string): Promise<void> => {
    const st = await fs.stat(dir);
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    const entries = await fs.readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full, r);
      else if (e.isFile()) out.push(r);
      else if (e.isSymbolicLink()) {
        const target = await fs.stat(full).catch(() => undefined);
        if (!target) onSkip?.({ path: r, reason: 'broken symbolic link' });
        else if (target.isDirectory()) {
          const real = await fs.realpath(full);
          if (rootReal === real || rootReal.startsWith(real + path.sep)) {
            onSkip?.({ path: r, reason: 'symbolic link loop (a link to a folder above it)' });
          } else await walk(full, r);
        } else if (target.isFile()) out.push(r);
        else onSkip?.({ path: r, reason: `not a regular file (${fileKind(target)})` });
      } else onSkip?.({ path: r, reason: `not a regular file (${fileKind(e)})` });
    }
  };
  await walk(root, '');
  return out.sort(compareStrings);
}

/** What a non-regular file is, in words. */
export function fileKind(s: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'a special file';
}

/** Largest image file read by default: far above any photo, small enough that reading one cannot exhaust memory. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Reads a regular file (symbolic links followed) of at most `maxBytes`. The opened handle is checked, so a FIFO,
 * a device or a folder is refused without reading it (a FIFO with no writer does not block the open), and at most
 * maxBytes + 1 bytes are read, so a file that is larger, or grows while read, is refused without reading it all.
 * Throws an Error saying why (without the path: callers name the file).
 */
export async function readRegularFile(file: string, maxBytes: number = DEFAULT_MAX_FILE_BYTES): Promise<Buffer> {
  const handle = await fs.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`${fileKind(st)}, not a regular file`);
    const tooBig = (): Error => new Error(`larger than the limit of ${maxBytes} bytes (maxFileBytes)`);
    if (st.size > maxBytes) throw tooBig();
    // One byte more than the stated size shows whether the file ended there.
    let buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > maxBytes) throw tooBig();
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooBig();
    return buf.subarray(0, length);
  } finally {
    await handle.close();
  }
}

/** Byte-order string comparison (locale-independent, so listings hash the same everywhere). */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** DVC-style directory hash: md5 over sorted "relpath md5" lines. */
export function directoryChecksum(entries: readonly { path: string; md5: string }[]): string {
  const lines = entries.map((e) => `${e.path} ${e.md5}\n`).sort(compareStrings);
  return md5(lines.join(''));
}
