import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { SaveError } from '../../../src/errors.js';
import { CompositeTracker } from '../../../src/track/CompositeTracker.js';
import { MetricsAppender, parseMetricRows, readMetrics } from '../../../src/track/metricsLog.js';
import { newRunId, RunDir } from '../../../src/track/RunDir.js';
import type { Tracker } from '../../../src/track/Tracker.js';

let base: string;
beforeEach(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'rundir-'));
});
afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

const readJson = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;

describe('RunDir', () => {
  it('makes ids like 20261126-101500-a1b2', () => {
    expect(newRunId(new Date(2026, 10, 26, 10, 15, 0))).toMatch(/^20261126-101500-[0-9a-f]{4}$/);
  });

  it('lays out the run folder and writes every file', async () => {
    const config = { train: { epochs: 3, lr: 0.001 }, data: { classes: ['daisy', 'roses'] } };
    const run = await RunDir.create({ baseDir: base, config });
    expect(path.dirname(run.dir)).toBe(base);
    expect(run.id).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect((await fs.stat(run.checkpointsDir)).isDirectory()).toBe(true);
    expect((await fs.stat(run.plotsDir)).isDirectory()).toBe(true);
    expect(parse(await fs.readFile(run.configPath, 'utf8'))).toEqual(config);
    expect(await readJson(run.summaryPath)).toMatchObject({ id: run.id, status: 'RUNNING', tags: {} });

    await run.logParams({ lr: 0.001 });
    await run.logParams({ batch: 16 });
    expect(await readJson(run.paramsPath)).toEqual({ lr: 0.001, batch: 16 });

    await run.logMetrics({ loss: 1.5, ce: 1 }, 10, { epoch: 1, split: 'train', time: 1000 });
    await run.logMetrics({ accuracy: Number.NaN }, 10, { epoch: 1, split: 'val', time: 1001 });
    await run.setTag('host', 'ci');
    await run.setSummary({ best_epoch: 1 });
    await run.finish('FINISHED');

    expect(await readMetrics(run.dir)).toEqual([
      { step: 10, epoch: 1, split: 'train', name: 'loss', value: 1.5, time: 1000 },
      { step: 10, epoch: 1, split: 'train', name: 'ce', value: 1, time: 1000 },
      { step: 10, epoch: 1, split: 'val', name: 'accuracy', value: Number.NaN, time: 1001 },
    ]);
    const summary = await readJson(run.summaryPath);
    expect(summary).toMatchObject({ status: 'FINISHED', tags: { host: 'ci' }, best_epoch: 1 });
    // One key style (snake_case), like the other files of the run.
    expect(Object.keys(summary).sort()).toEqual(
      ['best_epoch', 'duration_s', 'end_time', 'id', 'name', 'start_time', 'status', 'tags'].sort(),
    );
    expect(typeof summary.duration_s).toBe('number');
    expect(Date.parse(summary.end_time as string)).toBeGreaterThanOrEqual(Date.parse(summary.start_time as string));
    // Atomic writes leave no temp files behind.
    expect((await fs.readdir(run.dir)).sort()).toEqual([
      'checkpoints',
      'config.yaml',
      'metrics.jsonl',
      'params.json',
      'plots',
      'summary.json',
    ]);
    await expect(run.finish('FAILED')).resolves.toBeUndefined(); // idempotent: first status stays
    expect((await readJson(run.summaryPath)).status).toBe('FINISHED');
  });

  it('reopens a folder written in the earlier camelCase form, upgrading it once before anything is written', async () => {
    const dir = path.join(base, 'old-run');
    await fs.mkdir(dir);
    const old = {
      id: 'old-run',
      name: 'old-run',
      status: 'KILLED',
      startTime: '2026-01-02T03:04:05.000Z',
      endTime: '2026-01-02T03:05:05.000Z',
      durationS: 60,
      tags: { host: 'ci' },
      bestEpoch: 0,
    };
    await fs.writeFile(path.join(dir, 'summary.json'), JSON.stringify(old));
    const line = (step: number, epoch: number): string =>
      `${JSON.stringify({ step, epoch, split: 'train', name: 'loss', value: step, time: 1 })}\n`;
    await fs.writeFile(path.join(dir, 'metrics.jsonl'), `${line(1, 0)}${line(2, 0)}${line(3, 1)}`);
    const seen: unknown[] = [];
    const upgrade = (legacy: { summary: Record<string, unknown>; rows: { epoch?: number }[] }): void => {
      seen.push(structuredClone(legacy.summary));
      for (const r of legacy.rows) if (r.epoch !== undefined) r.epoch += 1;
      legacy.summary.best_epoch = (legacy.summary.bestEpoch as number) + 1;
      delete legacy.summary.bestEpoch;
    };
    const run = await RunDir.open(dir, { keepUpToStep: 2, upgrade });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ start_time: old.startTime, bestEpoch: 0 }); // RunDir's own fields renamed
    const summary = await readJson(run.summaryPath);
    expect(summary).toEqual({
      id: 'old-run',
      name: 'old-run',
      status: 'RUNNING',
      start_time: old.startTime,
      tags: { host: 'ci' },
      best_epoch: 1,
    });
    expect((await readMetrics(dir)).map((r) => [r.step, r.epoch])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    await run.finish('FINISHED');
    // Upgraded once: a second open leaves the rows as they are.
    const again = await RunDir.open(dir, { keepUpToStep: 2, upgrade });
    expect(seen).toHaveLength(1);
    expect((await readMetrics(dir)).map((r) => r.epoch)).toEqual([1, 1]);
    await again.finish();
  });

  it('refuses an existing explicit id and a path-like id', async () => {
    const a = await RunDir.create({ baseDir: base, id: 'fixed' });
    await expect(RunDir.create({ baseDir: base, id: 'fixed' })).rejects.toBeInstanceOf(SaveError);
    await expect(RunDir.create({ baseDir: base, id: '../escape' })).rejects.toBeInstanceOf(RangeError);
    await a.finish();
  });

  it('copies artifacts into the run folder', async () => {
    const run = await RunDir.create({ baseDir: base });
    const src = path.join(base, 'model.pt');
    await fs.writeFile(src, 'weights');
    await run.logArtifact(src, 'checkpoints/best.pt');
    await run.logArtifact(src);
    expect(await fs.readFile(path.join(run.checkpointsDir, 'best.pt'), 'utf8')).toBe('weights');
    expect(await fs.readFile(path.join(run.dir, 'model.pt'), 'utf8')).toBe('weights');
    await expect(run.logArtifact(src, '../x')).rejects.toBeInstanceOf(RangeError);
    await run.finish();
  });

  it('rejects bad steps and values', async () => {
    const run = await RunDir.create({ baseDir: base });
    await expect(run.logMetrics({ loss: 1 }, -1)).rejects.toThrow(/non-negative integer for `step`/);
    await expect(run.logMetrics({ loss: 1 }, 1.5)).rejects.toBeInstanceOf(RangeError);
    await expect(run.logMetrics({ loss: '1' as unknown as number }, 1)).rejects.toBeInstanceOf(TypeError);
    await expect(run.finish('DONE' as never)).rejects.toBeInstanceOf(RangeError);
    await run.finish();
  });
});

describe('metrics.jsonl', () => {
  const line = (step: number): string => `${JSON.stringify({ step, name: 'loss', value: step, time: 1 })}\n`;

  it('skips a last line cut by a crash, but not a bad line in the middle', () => {
    expect(parseMetricRows(`${line(0)}${line(1)}{"step":2,"na`).map((r) => r.step)).toEqual([0, 1]);
    expect(() => parseMetricRows(`${line(0)}{"step":2,"na\n${line(1)}`)).toThrow(/:2: not a metric row/);
  });

  it('reads a truncated file and appends after a torn tail without corrupting it', async () => {
    const file = path.join(base, 'metrics.jsonl');
    await fs.writeFile(file, `${line(0)}${line(1)}${line(2).slice(0, 15)}`);
    expect((await readMetrics(file)).map((r) => r.step)).toEqual([0, 1]);
    const appender = await MetricsAppender.open(file);
    await appender.append([{ step: 3, name: 'loss', value: 3, time: 1 }]);
    await appender.close();
    expect((await readMetrics(base)).map((r) => r.step)).toEqual([0, 1, 3]);
    expect(await readMetrics(path.join(base, 'missing'))).toEqual([]);
  });
});

describe('CompositeTracker', () => {
  it('fans out every call and re-throws the first failure after all ran', async () => {
    const calls: string[] = [];
    const fake = (name: string, fail = false): Tracker => ({
      logParams: async () => void calls.push(`${name}.params`),
      logMetrics: async (m, step) => {
        calls.push(`${name}.metrics@${step}`);
        if (fail) throw new SaveError('disk full');
      },
      setTag: async (k, v) => void calls.push(`${name}.tag ${k}=${v}`),
      logArtifact: async (p, a) => void calls.push(`${name}.artifact ${p} ${a}`),
      finish: async (s) => void calls.push(`${name}.finish ${s}`),
    });
    const t = new CompositeTracker([fake('a', true), undefined, fake('b')]);
    expect(t.trackers).toHaveLength(2);
    await t.logParams({ x: 1 });
    await expect(t.logMetrics({ loss: 1 }, 5)).rejects.toBeInstanceOf(SaveError);
    await t.setTag('k', 'v');
    await t.logArtifact('/tmp/f', 'f');
    await t.finish('KILLED');
    expect(calls).toEqual([
      'a.params',
      'b.params',
      'a.metrics@5',
      'b.metrics@5',
      'a.tag k=v',
      'b.tag k=v',
      'a.artifact /tmp/f f',
      'b.artifact /tmp/f f',
      'a.finish KILLED',
      'b.finish KILLED',
    ]);
  });
});
