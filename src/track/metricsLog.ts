/**
 * metrics.jsonl: one JSON object per line, one metric value per object, append-only. A crash can lose (or cut) the
 * last line but never touches the earlier ones; the reader skips a cut last line.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { DataError, SaveError } from '../errors.js';

/** One metric value. `value` is NaN where a non-finite value was logged (JSON has no NaN; the file holds null). */
export interface MetricRow {
  step: number;
  epoch?: number;
  split?: string;
  name: string;
  value: number;
  /** ms since the Unix epoch. */
  time: number;
}

export const METRICS_FILE = 'metrics.jsonl';

/** Serializes rows as JSONL (each line ends with '\n'). */
export function formatMetricRows(rows: readonly MetricRow[]): string {
  let out = '';
  for (const r of rows) {
    const row: Record<string, unknown> = { step: r.step };
    if (r.epoch !== undefined) row.epoch = r.epoch;
    if (r.split !== undefined) row.split = r.split;
    row.name = r.name;
    row.value = Number.isFinite(r.value) ? r.value : null;
    row.time = r.time;
    out += `${JSON.stringify(row)}\n`;
  }
  return out;
}

/**
 * Parses metrics.jsonl text. A last line without its newline that does not parse is a write cut short by a crash
 * and is skipped; any other bad line throws DataError naming the line.
 */
export function parseMetricRows(text: string, source = METRICS_FILE): MetricRow[] {
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  const rows: MetricRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    const isCutTail = i === lines.length - 1 && !complete;
    let row: MetricRow | undefined;
    try {
      row = toRow(JSON.parse(line));
    } catch {
      row = undefined;
    }
    if (row) rows.push(row);
    else if (!isCutTail) throw new DataError(`${source}:${i + 1}: not a metric row: ${line.slice(0, 200)}`);
  }
  return rows;
}

function toRow(v: unknown): MetricRow | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.step !== 'number' || typeof o.name !== 'string' || typeof o.time !== 'number') return undefined;
  if (typeof o.value !== 'number' && o.value !== null) return undefined;
  const row: MetricRow = { step: o.step, name: o.name, value: o.value ?? Number.NaN, time: o.time };
  if (typeof o.epoch === 'number') row.epoch = o.epoch;
  if (typeof o.split === 'string') row.split = o.split;
  return row;
}

/** Reads a run's metrics: `runDir` is the run folder (or the metrics.jsonl file itself). Missing file → []. */
export async function readMetrics(runDir: string): Promise<MetricRow[]> {
  const file = runDir.endsWith('.jsonl') ? runDir : path.join(runDir, METRICS_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DataError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseMetricRows(text, file);
}

/** An open metrics.jsonl in append mode. Appends are serialized; `close()` fsyncs. */
export class MetricsAppender {
  readonly file: string;
  #handle: fs.FileHandle | undefined;
  #chain: Promise<void> = Promise.resolve();

  private constructor(file: string, handle: fs.FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  /**
   * Opens (creating) the file for appending. A last line cut short by an earlier crash is cut off first, so the
   * rows appended now stay readable.
   */
  static async open(file: string): Promise<MetricsAppender> {
    try {
      await dropTornTail(file);
      return new MetricsAppender(file, await fs.open(file, 'a'));
    } catch (err) {
      throw new SaveError(`cannot open ${file} for appending: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Appends rows (one write call for all of them). */
  append(rows: readonly MetricRow[]): Promise<void> {
    if (rows.length === 0) return this.#chain;
    const text = formatMetricRows(rows);
    const run = async (): Promise<void> => {
      const handle = this.#handle;
      if (!handle) throw new SaveError(`${this.file} is closed`);
      try {
        await handle.write(text);
      } catch (err) {
        throw new SaveError(`cannot append to ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    };
    const p = this.#chain.then(run);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  /** Waits for pending appends, fsyncs and closes. Idempotent. */
  async close(): Promise<void> {
    await this.#chain;
    const handle = this.#handle;
    this.#handle = undefined;
    if (!handle) return;
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** Truncates `file` after its last '\n' (no-op when it is missing, empty or ends with '\n'). */
async function dropTornTail(file: string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - start, start);
      const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl >= 0) {
        end = start + nl + 1;
        break;
      }
      end = start;
    }
    if (end < size) {
      await handle.truncate(end);
      await handle.sync();
    }
  } finally {
    await handle.close();
  }
}
