/**
 * The local record of one training run: `<baseDir>/<id>/` with config.yaml, params.json, metrics.jsonl,
 * checkpoints/, plots/ and summary.json. Every file but metrics.jsonl is replaced atomically (temp file + rename);
 * metrics.jsonl is append-only.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { stringify } from 'yaml';

import { describe } from '../util/describe.js';
import { writeFileAtomic } from '../util/fs.js';
import { SaveError } from '../errors.js';
import { formatMetricRows, METRICS_FILE, MetricsAppender, readMetrics, type MetricRow } from './metricsLog.js';
import {
  checkArtifactPath,
  checkStep,
  type MetricContext,
  type Params,
  RUN_STATUSES,
  type RunStatus,
  type Tracker,
} from './Tracker.js';

export interface RunDirOptions {
  /** Folder that holds the run folders. Defaults to `runs` (relative to the working directory). */
  baseDir?: string;
  /** Run id, the folder's name. Defaults to a new id `YYYYMMDD-HHMMSS-xxxx` (local time, 4 random hex digits). */
  id?: string;
  /** Resolved configuration, written to config.yaml now. Defaults to none (no config.yaml until `writeConfig`). */
  config?: unknown;
  /** Human name of the run, kept in summary.json. Defaults to the id. */
  name?: string;
}

/**
 * summary.json: status and timing, tags and whatever `setSummary` added (best metrics, checkpoint paths ...). Keys
 * are snake_case, like the other files of a run.
 */
export interface RunSummary {
  id: string;
  name: string;
  status: RunStatus;
  /** ISO 8601. */
  start_time: string;
  end_time?: string;
  duration_s?: number;
  tags: Record<string, string>;
  [key: string]: unknown;
}

/** What `RunDir.open` hands to its `upgrade` hook for a folder written in the earlier (camelCase) form. */
export interface LegacyRun {
  /** summary.json with RunDir's own fields already renamed; the caller renames its own. Mutable. */
  summary: Record<string, unknown>;
  /** The metric rows kept (see `keepUpToStep`). Mutable. */
  rows: MetricRow[];
}

/** RunDir's own summary fields as earlier versions named them. */
const LEGACY_KEYS: Readonly<Record<string, string>> = {
  startTime: 'start_time',
  endTime: 'end_time',
  durationS: 'duration_s',
};
const FIXED_KEYS = new Set(['id', 'status', 'start_time', 'end_time', 'duration_s', 'tags']);

/** A new run id: local `YYYYMMDD-HHMMSS-` plus 4 random hex digits. */
export function newRunId(now = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const date = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${date}-${time}-${randomBytes(2).toString('hex')}`;
}

export class RunDir implements Tracker {
  readonly id: string;
  /** Absolute path of the run folder. */
  readonly dir: string;
  readonly #metrics: MetricsAppender;
  readonly #params: Record<string, unknown> = {};
  readonly #summary: RunSummary;
  readonly #startMs: number;
  /** Serializes the atomic rewrites of params.json and summary.json. */
  #chain: Promise<void> = Promise.resolve();
  #finished: Promise<void> | undefined;

  private constructor(id: string, dir: string, metrics: MetricsAppender, name: string) {
    this.id = id;
    this.dir = dir;
    this.#metrics = metrics;
    this.#startMs = Date.now();
    this.#summary = { id, name, status: 'RUNNING', start_time: new Date(this.#startMs).toISOString(), tags: {} };
  }

  /** Creates the run folder (a fresh id is drawn again if the folder exists). Throws SaveError. */
  static async create(options: RunDirOptions = {}): Promise<RunDir> {
    const base = path.resolve(options.baseDir ?? 'runs');
    if (options.id !== undefined && !/^[\w.-]+$/.test(options.id)) {
      throw new RangeError(`Expected letters, digits, '.', '_' or '-' for \`id\` but received ${describe(options.id)}`);
    }
    let id = options.id ?? newRunId();
    let dir = path.join(base, id);
    try {
      await fs.mkdir(base, { recursive: true });
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.mkdir(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || options.id !== undefined || attempt >= 20) throw err;
          id = newRunId();
          dir = path.join(base, id);
        }
      }
      await fs.mkdir(path.join(dir, 'checkpoints'));
      await fs.mkdir(path.join(dir, 'plots'));
    } catch (err) {
      throw new SaveError(`cannot create run folder ${dir}: ${(err as Error).message}`, { cause: err });
    }
    const run = new RunDir(id, dir, await MetricsAppender.open(path.join(dir, METRICS_FILE)), options.name ?? id);
    await run.#writeSummary();
    if (options.config !== undefined) await run.writeConfig(options.config);
    return run;
  }

  /**
   * Reopens an existing run folder to continue it (resume): params and summary are read back, the status becomes
   * RUNNING again, and metrics rows of steps after `keepUpToStep` (logged after the checkpoint being resumed) are
   * dropped so the resumed run does not count them twice. A folder written by an earlier version (camelCase
   * summary.json) is read too: RunDir's fields are renamed, and `upgrade` may rewrite the caller's fields and the
   * kept rows, once (summary.json is written in today's form first, so a later open never upgrades twice). Throws
   * SaveError when the folder is not a run.
   */
  static async open(
    dir: string,
    options: { keepUpToStep?: number; upgrade?: (legacy: LegacyRun) => void } = {},
  ): Promise<RunDir> {
    const abs = path.resolve(dir);
    let summary: RunSummary;
    try {
      summary = JSON.parse(await fs.readFile(path.join(abs, 'summary.json'), 'utf8')) as RunSummary;
    } catch (err) {
      throw new SaveError(`${abs} is not a run folder (no readable summary.json): ${(err as Error).message}`, {
        cause: err,
      });
    }
    const legacy = !('start_time' in summary) && 'startTime' in summary;
    const metricsFile = path.join(abs, METRICS_FILE);
    let rows: MetricRow[] | undefined;
    if (options.keepUpToStep !== undefined || (legacy && options.upgrade)) {
      const keep = options.keepUpToStep ?? Number.POSITIVE_INFINITY;
      rows = (await readMetrics(abs).catch(() => [])).filter((r) => r.step <= keep);
    }
    if (legacy) {
      for (const [old, now] of Object.entries(LEGACY_KEYS)) {
        if (old in summary) summary[now] = summary[old];
        delete summary[old];
      }
      options.upgrade?.({ summary, rows: rows ?? [] });
    }
    const reopened: RunSummary = { ...summary, status: 'RUNNING' };
    delete reopened.end_time;
    delete reopened.duration_s;
    // summary.json first: once it is in today's form, a later open does not upgrade the rows again.
    await writeSummaryFile(path.join(abs, 'summary.json'), reopened);
    // Before the appender opens the file: the atomic rewrite replaces it.
    if (rows) await writeFileAtomic(metricsFile, formatMetricRows(rows));
    const run = new RunDir(summary.id, abs, await MetricsAppender.open(metricsFile), summary.name);
    Object.assign(run.#summary, reopened);
    try {
      Object.assign(run.#params, JSON.parse(await fs.readFile(run.paramsPath, 'utf8')));
    } catch {
      // no params yet
    }
    return run;
  }

  get checkpointsDir(): string {
    return path.join(this.dir, 'checkpoints');
  }
  get plotsDir(): string {
    return path.join(this.dir, 'plots');
  }
  get metricsPath(): string {
    return this.#metrics.file;
  }
  get configPath(): string {
    return path.join(this.dir, 'config.yaml');
  }
  get paramsPath(): string {
    return path.join(this.dir, 'params.json');
  }
  get summaryPath(): string {
    return path.join(this.dir, 'summary.json');
  }
  get status(): RunStatus {
    return this.#summary.status;
  }
  /** Human name of the run (summary.json `name`). */
  get name(): string {
    return this.#summary.name;
  }
  /** A copy of what summary.json holds now. */
  get summary(): RunSummary {
    return structuredClone(this.#summary);
  }

  /** Writes config.yaml (the resolved configuration). */
  writeConfig(config: unknown): Promise<void> {
    return this.#serial(() => this.#write(this.configPath, stringify(config, { sortMapEntries: false })));
  }

  /** Merges into params.json. */
  logParams(params: Params): Promise<void> {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      return Promise.reject(new TypeError(`Expected an object for \`params\` but received ${describe(params)}`));
    }
    Object.assign(this.#params, params);
    const text = `${JSON.stringify(this.#params, null, 2)}\n`;
    return this.#serial(() => this.#write(this.paramsPath, text));
  }

  /** Appends one row per metric to metrics.jsonl. */
  async logMetrics(
    metrics: Readonly<Record<string, number>>,
    step: number,
    context: MetricContext = {},
  ): Promise<void> {
    checkStep(step);
    const time = context.time ?? Date.now();
    const rows: MetricRow[] = [];
    for (const [name, value] of Object.entries(metrics)) {
      if (typeof value !== 'number') {
        throw new TypeError(`Expected a number for metric \`${name}\` but received ${describe(value)}`);
      }
      const row: MetricRow = { step, name, value, time };
      if (context.epoch !== undefined) row.epoch = context.epoch;
      if (context.split !== undefined) row.split = context.split;
      rows.push(row);
    }
    await this.#metrics.append(rows);
  }

  /** Sets a tag in summary.json. */
  setTag(key: string, value: string): Promise<void> {
    this.#summary.tags[key] = String(value);
    return this.#serial(() => this.#writeSummary());
  }

  /** Merges fields into summary.json (best epoch, final metrics, checkpoint paths ...). */
  setSummary(fields: Readonly<Record<string, unknown>>): Promise<void> {
    for (const [k, v] of Object.entries(fields)) {
      if (!FIXED_KEYS.has(k)) this.#summary[k] = v;
    }
    return this.#serial(() => this.#writeSummary());
  }

  /** Copies a file into the run folder at `artifactPath` (no-op when it is already that file). */
  async logArtifact(localPath: string, artifactPath: string = path.basename(localPath)): Promise<void> {
    const target = path.join(this.dir, ...checkArtifactPath(artifactPath).split('/'));
    if (path.resolve(localPath) === target) return;
    try {
      await writeFileAtomic(target, await fs.readFile(localPath));
    } catch (err) {
      throw new SaveError(`cannot copy ${localPath} into ${target}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes the final summary.json and closes metrics.jsonl (fsync). Later calls return the first call's promise. */
  finish(status: RunStatus = 'FINISHED'): Promise<void> {
    if (!RUN_STATUSES.includes(status)) {
      return Promise.reject(
        new RangeError(`Expected one of ${RUN_STATUSES.join(', ')} but received ${describe(status)}`),
      );
    }
    this.#finished ??= (async () => {
      const end = Date.now();
      this.#summary.status = status;
      this.#summary.end_time = new Date(end).toISOString();
      this.#summary.duration_s = (end - this.#startMs) / 1000;
      await this.#metrics.close();
      await this.#serial(() => this.#writeSummary());
    })();
    return this.#finished;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.finish();
  }

  #writeSummary(): Promise<void> {
    return writeSummaryFile(this.summaryPath, this.#summary);
  }

  #write(file: string, data: string): Promise<void> {
    return writeOrSaveError(file, data);
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const p = this.#chain.then(fn);
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

const writeSummaryFile = (file: string, summary: RunSummary): Promise<void> =>
  writeOrSaveError(file, `${JSON.stringify(summary, null, 2)}\n`);

async function writeOrSaveError(file: string, data: string): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (err) {
    throw new SaveError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
