import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { readMetrics } from '../../src/track/metricsLog.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { train } from '../../src/train/train.js';
import { hasFlowers, photoFolder } from '../helpers.js';
import { quiet, tinyTrainConfig } from './train-helpers.js';
import { MlflowStandIn } from '../unit/track/MlflowStandIn.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-train-mlflow-'));
const dataDir = join(tmp, 'flowers');
let server: MlflowStandIn;
const savedUri = process.env.MLFLOW_TRACKING_URI;

beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 10);
});
beforeEach(async () => {
  server = await MlflowStandIn.start();
  process.env.MLFLOW_TRACKING_URI = server.url;
  return async () => {
    await server.close();
  };
});
afterAll(() => {
  if (savedUri === undefined) delete process.env.MLFLOW_TRACKING_URI;
  else process.env.MLFLOW_TRACKING_URI = savedUri;
});

const makeConfig = (runsDir: string) => tinyTrainConfig(runsDir);

const ARTIFACTS = [
  'config.yaml',
  'summary.json',
  'checkpoints/best/model.pt',
  'plots/loss.png',
  'plots/loss.svg',
  'plots/accuracy.png',
  'plots/accuracy.svg',
  'plots/confusion_test.png',
  'plots/confusion_test.svg',
];

describe.skipIf(!hasFlowers)('train with MLflow (stand-in server)', () => {
  it('sends params, metrics, standard tags and the artifacts (same bytes, same paths)', async () => {
    const { config, raw } = makeConfig(join(tmp, 'runs-a'));
    const result = await train({ config, rawConfig: raw, dataDir, progress: quiet });
    expect(result.status).toBe('completed');
    expect(server.runs.size).toBe(1);
    const run = [...server.runs.values()][0];
    expect(run?.info.status).toBe('FINISHED');
    expect(run?.tags.get('mlflow.source.type')).toBe('LOCAL');
    expect(run?.tags.get('mlflow.runName')).toBe(basename(result.runDir));
    expect(run?.tags.get('mlflow.user')).toBeTruthy();
    expect(run?.tags.get('trt_flowers.run_dir')).toBe(result.runDir);
    expect(run?.params.get('trainer.max_epochs')).toBe('2');
    expect(run?.params.get('device')).toBe('cpu');

    const local = await readMetrics(result.runDir);
    const localTrain = local.filter((r) => r.split === 'train' && r.name === 'loss');
    const sentTrain = run?.metrics.filter((m) => m.key === 'train/loss') ?? [];
    expect(sentTrain.map((m) => [m.step, m.value])).toEqual(localTrain.map((r) => [r.step, r.value]));
    expect(run?.metrics.filter((m) => m.key === 'val/loss')).toHaveLength(2);
    expect(run?.metrics.filter((m) => m.key === 'test/accuracy')).toHaveLength(1);

    const root = `${run?.info.experiment_id}/${run?.info.run_id}/artifacts`;
    for (const p of ARTIFACTS) {
      const sent = server.artifacts.get(`${root}/${p}`);
      expect(sent, p).toBeDefined();
      expect(sent?.equals(readFileSync(join(result.runDir, p))), p).toBe(true);
    }
    const summary = JSON.parse(readFileSync(join(result.runDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary.mlflow).toMatchObject({ run_id: run?.info.run_id, tracking_uri: server.url });
    expect(summary.status).toBe('FINISHED');
  });

  it('a resumed run continues its MLflow run (same run id), each step once', async () => {
    const { config, raw } = makeConfig(join(tmp, 'runs-b'));
    const controller = new AbortController();
    let calls = 0;
    const stopper: ProgressReporter = {
      ...quiet,
      step() {
        if (++calls === 6) controller.abort(); // mid second epoch (4 batches each)
      },
    };
    const first = await train({ config, rawConfig: raw, dataDir, progress: stopper, signal: controller.signal });
    expect(first.status).toBe('interrupted');
    expect(server.runs.size).toBe(1);
    const run = [...server.runs.values()][0];
    expect(run?.info.status).toBe('KILLED');

    const second = await train({ config, dataDir, progress: quiet, resume: first.runDir });
    expect(second.status).toBe('completed');
    expect(server.runs.size).toBe(1);
    expect(server.count('/api/2.0/mlflow/runs/get')).toBe(1);
    expect(run?.info.status).toBe('FINISHED');
    const steps = run?.metrics.filter((m) => m.key === 'train/loss').map((m) => m.step) ?? [];
    const local = (await readMetrics(second.runDir)).filter((r) => r.split === 'train' && r.name === 'loss');
    expect(steps).toEqual(local.map((r) => r.step));
    expect(new Set(steps).size).toBe(steps.length);
    const root = `${run?.info.experiment_id}/${run?.info.run_id}/artifacts`;
    expect(server.artifacts.get(`${root}/checkpoints/best/model.pt`)?.length).toBeGreaterThan(1000);
  });
});
