import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createTracker, resumeTracker } from '../../../src/track/createTracker.js';
import { readMetrics } from '../../../src/track/metricsLog.js';
import { MlflowClient, MlflowError, splitLogBatch, toMlflowParams } from '../../../src/track/mlflow.js';
import { MlflowTracker, type MlflowTrackerOptions } from '../../../src/track/MlflowTracker.js';
import { MlflowStandIn } from './MlflowStandIn.js';

let server: MlflowStandIn;
let warnings: string[];

beforeEach(async () => {
  server = await MlflowStandIn.start();
  warnings = [];
});
afterEach(async () => {
  await server.close();
});

const tracker = (options: MlflowTrackerOptions = {}): MlflowTracker =>
  new MlflowTracker({
    trackingUri: server.url,
    experimentName: 'flowers',
    flushIntervalMs: 20,
    backoffMs: 10,
    warn: (m) => warnings.push(m),
    ...options,
  });

/** A URL where nothing listens: a port that was just released. */
async function closedPortUrl(): Promise<string> {
  const s = await MlflowStandIn.start();
  const url = s.url;
  await s.close();
  return url;
}

/** Times 100 training-side logMetrics calls (each awaited). */
async function time100(t: MlflowTracker): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) await t.logMetrics({ loss: 1 / (i + 1), accuracy: i / 100 }, i, { split: 'train' });
  return performance.now() - t0;
}

describe('MlflowClient', () => {
  it('creates an experiment once and then finds it by name', async () => {
    const client = new MlflowClient({ trackingUri: server.url });
    const a = await client.getOrCreateExperiment('exp');
    const b = await client.getOrCreateExperiment('exp');
    expect(a).toBe(b);
    expect(server.experimentCreates).toBe(1);
    expect(await client.getExperimentByName('missing')).toBeUndefined();
  });

  it('throws MlflowError with the status and MLflow code on a refused call, without retrying 4xx', async () => {
    const client = new MlflowClient({ trackingUri: server.url, backoffMs: 1 });
    const err = await client.setTag('no-such-run', 'k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowError);
    expect(err).toMatchObject({ code: 'ERR_SAVE', status: 404, mlflowCode: 'RESOURCE_DOES_NOT_EXIST' });
    expect(server.count('/api/2.0/mlflow/runs/set-tag')).toBe(1);
  });

  it('rejects a URI that is not http(s)', () => {
    expect(() => new MlflowClient({ trackingUri: 'file:///tmp/mlruns' })).toThrow(RangeError);
  });

  it('splits batches within the limits and flattens params', () => {
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, timestamp: 0, step: i }));
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'v' }));
    const tags = Array.from({ length: 150 }, (_, i) => ({ key: `t${i}`, value: 'v' }));
    const parts = splitLogBatch({ metrics, params, tags });
    for (const b of parts) {
      const [m, p, t] = [b.metrics?.length ?? 0, b.params?.length ?? 0, b.tags?.length ?? 0];
      expect(m).toBeLessThanOrEqual(1000);
      expect(p).toBeLessThanOrEqual(100);
      expect(t).toBeLessThanOrEqual(100);
      expect(m + p + t).toBeLessThanOrEqual(1000);
    }
    expect(parts.flatMap((b) => b.metrics ?? []).map((m) => m.value)).toEqual(metrics.map((m) => m.value));
    expect(parts.flatMap((b) => b.params ?? [])).toHaveLength(250);
    expect(toMlflowParams({ a: { b: 1, c: [1, 2] }, s: 'x'.repeat(7000), n: null })).toEqual([
      { key: 'a.b', value: '1' },
      { key: 'a.c', value: '[1,2]' },
      { key: 's', value: 'x'.repeat(6000) },
      { key: 'n', value: 'null' },
    ]);
  });
});

describe('MlflowTracker', () => {
  it('reuses the experiment by name and delivers params, metrics, tags and the end status', async () => {
    const a = tracker({ runName: 'first', tags: { model: 'rexnet' } });
    await a.logParams({ lr: 0.001, optimizer: { name: 'adamw', betas: [0.9, 0.999] } });
    await a.logMetrics({ loss: 0.5, accuracy: 0.8 }, 3, { split: 'val', epoch: 1 });
    await a.logMetrics({ loss: Number.NaN }, 4, { split: 'train' });
    await a.setTag('stage', 'train');
    await a.finish('FAILED');
    const b = tracker();
    await b.finish();

    expect(server.experimentCreates).toBe(1);
    const runs = [...server.runs.values()];
    expect(runs).toHaveLength(2);
    expect(runs[0]?.info.experiment_id).toBe(runs[1]?.info.experiment_id);
    const run = server.runs.get(a.run?.run_id ?? '');
    expect(run?.info).toMatchObject({ run_name: 'first', status: 'FAILED' });
    expect(run?.info.end_time).toBeGreaterThan(0);
    expect(Object.fromEntries(run?.params ?? [])).toEqual({
      lr: '0.001',
      'optimizer.name': 'adamw',
      'optimizer.betas': '[0.9,0.999]',
    });
    expect(Object.fromEntries(run?.tags ?? [])).toMatchObject({ model: 'rexnet', stage: 'train' });
    expect(run?.metrics.map(({ key, value, step }) => ({ key, value, step }))).toEqual([
      { key: 'val/loss', value: 0.5, step: 3 },
      { key: 'val/accuracy', value: 0.8, step: 3 },
      { key: 'train/loss', value: 'NaN', step: 4 },
    ]);
    expect(warnings).toEqual([]);
  });

  it('sends 2,500 metrics and 250 params in batches within the limits', async () => {
    const t = tracker();
    await t.logParams(Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, i])));
    for (let i = 0; i < 2500; i++) await t.logMetrics({ loss: i }, i);
    await t.finish();
    const run = server.runs.get(t.run?.run_id ?? '');
    expect(run?.metrics.map((m) => m.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(run?.params.size).toBe(250);
    expect(server.batchSizes.length).toBeGreaterThanOrEqual(6);
    for (const b of server.batchSizes) {
      expect(b.metrics).toBeLessThanOrEqual(1000);
      expect(b.params).toBeLessThanOrEqual(100);
      expect(b.tags).toBeLessThanOrEqual(100);
      expect(b.metrics + b.params + b.tags).toBeLessThanOrEqual(1000);
    }
  });

  it('uploads artifact bytes through the artifacts proxy', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlflow-art-'));
    const file = path.join(dir, 'loss.png');
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
    await fs.writeFile(file, bytes);
    const t = tracker();
    await t.logArtifact(file, 'plots/loss.png');
    await t.finish();
    const run = t.run;
    expect(server.artifacts.get(`${run?.experiment_id}/${run?.run_id}/artifacts/plots/loss.png`)).toEqual(bytes);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('retries a 500 and delivers', async () => {
    server.failNext.set('/api/2.0/mlflow/runs/log-batch', { status: 500, count: 1 });
    const t = tracker();
    await t.logMetrics({ loss: 1 }, 0);
    await t.finish();
    expect(server.count('/api/2.0/mlflow/runs/log-batch')).toBe(2);
    expect(server.runs.get(t.run?.run_id ?? '')?.metrics).toHaveLength(1);
    expect(warnings).toEqual([]);
  });

  it('keeps going after the server refuses a param rewrite', async () => {
    const t = tracker();
    await t.logParams({ lr: 1 });
    await new Promise((r) => setTimeout(r, 100));
    await t.logParams({ lr: 2 });
    await t.logMetrics({ loss: 1 }, 0);
    await t.finish();
    const run = server.runs.get(t.run?.run_id ?? '');
    expect(run?.params.get('lr')).toBe('1');
    expect(run?.metrics).toHaveLength(1);
    expect(run?.info.status).toBe('FINISHED');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/refused/);
  });

  it('never blocks or throws when the server is down: one warning, close() within its deadline', async () => {
    const t = tracker({ trackingUri: await closedPortUrl(), closeTimeoutMs: 1000 });
    expect(await time100(t)).toBeLessThan(200); // a blocking call would wait seconds (retries, 2 s answers)
    await new Promise((r) => setTimeout(r, 400)); // several background rounds fail meanwhile
    await time100(t);
    const down = warnings.filter((w) => /unreachable/.test(w));
    expect(down).toHaveLength(1);
    const t0 = performance.now();
    await expect(t.finish('FINISHED')).resolves.toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(1800);
    expect(warnings.at(-1)).toMatch(/could not send 400 metrics/);
  });

  it('never blocks on a slow server (2 s per answer); close() gives up at its deadline', async () => {
    server.delayMs = 2000;
    const t = tracker({ closeTimeoutMs: 300 });
    expect(await time100(t)).toBeLessThan(200); // a blocking call would wait seconds (retries, 2 s answers)
    const t0 = performance.now();
    await t.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(warnings.at(-1)).toMatch(/within 300 ms/);
  });

  it('drops the oldest metrics past the queue bound, with one counted warning', async () => {
    const t = tracker({ trackingUri: await closedPortUrl(), maxQueuedMetrics: 100, closeTimeoutMs: 200 });
    for (let i = 0; i < 250; i++) await t.logMetrics({ loss: i }, i);
    expect(t.droppedMetrics).toBe(150);
    expect(t.pending.metrics).toBe(100);
    expect(warnings.filter((w) => /queue full/.test(w))).toHaveLength(1);
    await t.close();
    expect(warnings.at(-1)).toMatch(/150 metric values were dropped/);
  });

  it('is enabled only by an http(s) MLFLOW_TRACKING_URI', async () => {
    const saved = process.env.MLFLOW_TRACKING_URI;
    try {
      delete process.env.MLFLOW_TRACKING_URI;
      expect(MlflowTracker.fromEnv({ warn: (m) => warnings.push(m) })).toBeUndefined();
      expect(warnings).toEqual([]);
      process.env.MLFLOW_TRACKING_URI = 'file:///tmp/mlruns';
      expect(MlflowTracker.fromEnv({ warn: (m) => warnings.push(m) })).toBeUndefined();
      expect(warnings).toHaveLength(1);
      process.env.MLFLOW_TRACKING_URI = server.url;
      const t = MlflowTracker.fromEnv({ warn: (m) => warnings.push(m) });
      expect(t).toBeInstanceOf(MlflowTracker);
      await t?.finish();
      expect(server.runs.size).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.MLFLOW_TRACKING_URI;
      else process.env.MLFLOW_TRACKING_URI = saved;
    }
  });

  it('disables itself when the server refuses to create the run (e.g. 403)', async () => {
    server.failNext.set('/api/2.0/mlflow/runs/create', { status: 403, count: 1 });
    const t = tracker({ closeTimeoutMs: 1000 });
    await new Promise((r) => setTimeout(r, 100));
    await t.logMetrics({ loss: 1 }, 0);
    await t.finish();
    expect(server.count('/api/2.0/mlflow/runs/create')).toBe(1);
    expect(server.count('/api/2.0/mlflow/runs/log-batch')).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/MLflow disabled/);
  });

  it("sets the tags MLflow's UI reads: user, source name and type, run name", async () => {
    const t = tracker({ runName: 'tulips-1', tags: { model: 'rexnet' } });
    await t.finish();
    const tags = Object.fromEntries(server.runs.get(t.run?.run_id ?? '')?.tags ?? []);
    expect(tags).toEqual({
      'mlflow.user': os.userInfo().username,
      'mlflow.source.name': process.argv[1],
      'mlflow.source.type': 'LOCAL',
      'mlflow.runName': 'tulips-1',
      model: 'rexnet',
    });
  });

  it('cuts long keys and values in UTF-8 bytes on character boundaries, so the server takes them', async () => {
    const t = tracker();
    const emoji = '\u{1F337}'.repeat(2000); // 4000 UTF-16 units, 8000 bytes
    const accents = '\u00e9'.repeat(5000); // 5000 UTF-16 units, 10000 bytes
    const longName = '\u00e4'.repeat(200); // 200 UTF-16 units, 400 bytes
    await t.logParams({ emoji, accents });
    await t.setTag('note', accents);
    await t.logMetrics({ [longName]: 1 }, 0);
    await t.finish();
    const run = server.runs.get(t.run?.run_id ?? '');
    expect(warnings).toEqual([]);
    const cut = (value: string | undefined, full: string, max: number, min: number): void => {
      expect(value).toBeDefined();
      expect(full.startsWith(value as string)).toBe(true);
      expect(Buffer.byteLength(value as string)).toBeLessThanOrEqual(max);
      expect(Buffer.byteLength(value as string)).toBeGreaterThan(min);
    };
    cut(run?.params.get('emoji'), emoji, 6000, 5995);
    cut(run?.params.get('accents'), accents, 6000, 5997);
    cut(run?.tags.get('note'), accents, 5000, 4997);
    cut(run?.metrics[0]?.key, longName, 250, 247);
  });

  it('keeps every log-batch request under 1 MB, also when JSON escaping doubles the values', async () => {
    const t = tracker();
    const quotes = '"'.repeat(6000); // 6000 bytes, 12000 once escaped in JSON
    await t.logParams(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, quotes])));
    for (let i = 0; i < 100; i++) await t.setTag(`t${i}`, '\\'.repeat(5000));
    for (let i = 0; i < 900; i++) await t.logMetrics({ [`m_${'x'.repeat(200)}`]: i }, i);
    await t.finish();
    const run = server.runs.get(t.run?.run_id ?? '');
    expect(warnings).toEqual([]);
    expect(run?.params.size).toBe(100);
    expect([...(run?.tags.keys() ?? [])].filter((k) => /^t\d+$/.test(k))).toHaveLength(100);
    expect(run?.metrics.map((m) => m.value)).toEqual(Array.from({ length: 900 }, (_, i) => i));
    expect(Math.max(...server.batchBytes)).toBeLessThanOrEqual(1_000_000);
  });

  it('writes artifacts straight into a local file: URI or path artifact_uri', async () => {
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'mlflow-src-'));
    const file = path.join(src, 'loss.png');
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));
    await fs.writeFile(file, bytes);
    for (const form of ['file-uri', 'path']) {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mlruns-'));
      server.artifactUri = (exp, id) => {
        const dir = path.join(root, exp, id, 'artifacts');
        return form === 'file-uri' ? pathToFileURL(dir).href : dir;
      };
      const t = tracker();
      await t.logArtifact(file, 'plots/loss.png');
      await t.finish();
      const run = t.run;
      const landed = path.join(root, run?.experiment_id ?? '', run?.run_id ?? '', 'artifacts', 'plots', 'loss.png');
      expect(await fs.readFile(landed)).toEqual(bytes);
      await fs.rm(root, { recursive: true, force: true });
    }
    expect(server.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
    expect(warnings).toEqual([]);
    await fs.rm(src, { recursive: true, force: true });
  });

  it('reports an artifact store it cannot write (s3:) once, skips the uploads and keeps logging', async () => {
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'mlflow-src-'));
    const file = path.join(src, 'loss.png');
    await fs.writeFile(file, 'png');
    server.artifactUri = (exp, id) => `s3://bucket/mlruns/${exp}/${id}/artifacts`;
    const t = tracker();
    await t.logArtifact(file, 'plots/loss.png');
    await t.logArtifact(file, 'plots/accuracy.png');
    await t.logMetrics({ loss: 1 }, 0);
    await t.finish();
    const run = server.runs.get(t.run?.run_id ?? '');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/s3:\/\/bucket.*not supported/);
    expect(server.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
    expect(run?.metrics).toHaveLength(1);
    expect(run?.info.status).toBe('FINISHED');
    await fs.rm(src, { recursive: true, force: true });
  });

  it('uploads an artifact logged again before it was sent once, with its latest bytes', async () => {
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'mlflow-src-'));
    const file = path.join(src, 'loss.svg');
    server.delayMs = 100; // run creation takes a while: the three calls queue up
    const t = tracker();
    for (const text of ['one', 'two', 'three']) {
      await fs.writeFile(file, text);
      await t.logArtifact(file, 'plots/loss.svg');
    }
    await t.finish();
    const puts = server.calls.filter((c) => c.startsWith('PUT'));
    expect(puts).toHaveLength(1);
    expect(server.artifacts.get(`${t.run?.experiment_id}/${t.run?.run_id}/artifacts/plots/loss.svg`)?.toString()).toBe(
      'three',
    );
    await fs.rm(src, { recursive: true, force: true });
  });

  it('continues an existing run by id, and starts a new run when the server does not know the id', async () => {
    const a = tracker({ runName: 'first' });
    await a.logMetrics({ loss: 1 }, 1);
    await a.finish('KILLED');
    const id = a.run?.run_id ?? '';
    const seen: string[] = [];
    const b = tracker({ runId: id, onRun: (info) => void seen.push(info.run_id) });
    await b.logMetrics({ loss: 0.5 }, 2);
    await b.finish();
    expect(server.runs.size).toBe(1);
    expect(server.count('/api/2.0/mlflow/runs/create')).toBe(1);
    expect(server.count('/api/2.0/mlflow/runs/get')).toBe(1);
    expect(b.run?.run_id).toBe(id);
    expect(seen).toEqual([id]);
    const run = server.runs.get(id);
    expect(run?.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(run?.info.status).toBe('FINISHED');
    expect(warnings).toEqual([]);

    const c = tracker({ runId: 'gone', runName: 'again' });
    await c.finish();
    expect(server.runs.size).toBe(2);
    expect(c.run?.run_id).not.toBe('gone');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/run gone .*new run/);
  });
});

describe('createTracker', () => {
  it('logs to the run folder and MLflow through one tracker', async () => {
    const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'track-'));
    const {
      tracker: t,
      runDir,
      mlflow,
    } = await createTracker({
      baseDir,
      mlflow: { trackingUri: server.url, flushIntervalMs: 20, warn: (m) => warnings.push(m) },
    });
    await t.logParams({ lr: 0.01 });
    await t.logMetrics({ loss: 0.7 }, 1, { epoch: 1, split: 'train' });
    await t.finish('FINISHED');
    expect((await readMetrics(runDir.dir)).map((r) => r.value)).toEqual([0.7]);
    const run = server.runs.get(mlflow?.run?.run_id ?? '');
    expect(run?.info.run_name).toBe(runDir.id);
    expect(run?.tags.get('trt_flowers.run_dir')).toBe(runDir.dir);
    expect(run?.metrics.map((m) => m.key)).toEqual(['train/loss']);
    expect(run?.info.status).toBe('FINISHED');
    await fs.rm(baseDir, { recursive: true, force: true });
  });

  it('records the MLflow run in summary.json, and a reopened run folder continues that run', async () => {
    const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'track-'));
    const mlflowOptions = { trackingUri: server.url, flushIntervalMs: 20, warn: (m: string) => warnings.push(m) };
    const first = await createTracker({ baseDir, mlflow: mlflowOptions });
    await first.tracker.logMetrics({ loss: 1 }, 1, { epoch: 1, split: 'train' });
    await first.tracker.finish('KILLED');
    const id = first.mlflow?.run?.run_id;
    const summary = JSON.parse(await fs.readFile(first.runDir.summaryPath, 'utf8')) as { mlflow?: unknown };
    expect(summary.mlflow).toMatchObject({ run_id: id, tracking_uri: server.url });

    const again = await resumeTracker(first.runDir.dir, { keepUpToStep: 1, mlflow: mlflowOptions });
    await again.tracker.logMetrics({ loss: 0.5 }, 2, { epoch: 2, split: 'train' });
    await again.tracker.finish('FINISHED');
    expect(again.mlflow?.run?.run_id).toBe(id);
    expect(server.runs.size).toBe(1);
    const run = server.runs.get(id ?? '');
    expect(run?.metrics.map((m) => [m.key, m.step])).toEqual([
      ['train/loss', 1],
      ['train/loss', 2],
    ]);
    expect(run?.info.status).toBe('FINISHED');
    expect((await readMetrics(first.runDir.dir)).map((r) => r.value)).toEqual([1, 0.5]);
    expect(warnings).toEqual([]);
    await fs.rm(baseDir, { recursive: true, force: true });
  });
});
