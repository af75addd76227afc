import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';

import { parseTrainConfig, type CamelCaseTrainConfig } from '../../src/config/index.js';
import { CAMELCASE_DATA_CODE, toDataConfig } from '../../src/data/config.js';
import { readMetrics } from '../../src/track/metricsLog.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { train } from '../../src/train/train.js';
import { CLASSES, hasFlowers, photoFolder } from '../helpers.js';
import { quiet, tinyTrainConfig } from './train-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-train-'));
const dataDir = join(tmp, 'flowers');

// A small real data set: 10 photos per class.
beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 10);
});

const makeConfig = (runsDir: string, extra: string[] = []) =>
  tinyTrainConfig(runsDir, ['model.learning_rate=0.003', 'model.warmup_epochs=0.5', ...extra]);

describe.skipIf(!hasFlowers)('trt-flowers train (tiny model, real photos)', () => {
  it('trains 2 epochs and writes config, split, metrics, checkpoints, plots and summary', async () => {
    const runs = join(tmp, 'runs-a');
    const { config, raw } = makeConfig(runs);
    const epochs: number[] = [];
    const shown: ProgressReporter = { ...quiet, epoch: (e) => void epochs.push(e.epoch) };
    const result = await train({ config, rawConfig: raw, dataDir, progress: shown });
    expect(result.status).toBe('completed');
    expect(result.epochs).toBe(2);
    const dir = result.runDir;
    const saved = YAML.parse(readFileSync(join(dir, 'config.yaml'), 'utf8')) as { trainer: { max_epochs: number } };
    expect(saved.trainer.max_epochs).toBe(2);
    for (const f of [
      'split.json',
      'summary.json',
      'params.json',
      'checkpoints/best/model.pt',
      'checkpoints/last/model.pt',
      'checkpoints/last/trainer.pt',
      'checkpoints/last/state.json',
    ]) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    for (const plot of ['loss', 'accuracy', 'confusion_test']) {
      const meta = await sharp(join(dir, 'plots', `${plot}.png`)).metadata();
      expect(meta.width).toBeGreaterThan(200);
      expect(existsSync(join(dir, 'plots', `${plot}.svg`))).toBe(true);
    }
    const rows = await readMetrics(dir);
    expect(rows.some((r) => r.split === 'train' && r.name === 'loss')).toBe(true);
    const valLoss = rows.filter((r) => r.split === 'val' && r.name === 'loss');
    // Epochs are numbered from 1 everywhere: metrics.jsonl, progress, the result and summary.json.
    expect(valLoss.map((r) => r.epoch)).toEqual([1, 2]);
    expect(new Set(rows.filter((r) => r.split === 'train').map((r) => r.epoch))).toEqual(new Set([1, 2]));
    expect(epochs).toEqual([1, 2]);
    expect(rows.some((r) => r.split === 'val' && r.name === 'f1_macro')).toBe(true);
    expect(rows.some((r) => r.split === 'val' && r.name === 'precision_roses')).toBe(true);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as {
      status: string;
      best_epoch: number;
      test: { accuracy: number; confusion: number[][]; per_class: Record<string, unknown> };
    };
    expect(summary.status).toBe('FINISHED');
    const bestLoss = Math.min(...valLoss.map((r) => r.value));
    expect(summary.best_epoch).toBe(valLoss.find((r) => r.value === bestLoss)?.epoch);
    expect(result.bestEpoch).toBe(summary.best_epoch);
    expect(summaryKeys(summary).filter((k) => /[a-z][A-Z]/.test(k))).toEqual([]);
    expect(Object.keys(summary.test.per_class)).toEqual([...CLASSES]);
    expect(summary.test.confusion).toHaveLength(5);
    expect(result.test?.report.count).toBeGreaterThan(0);
  });

  it('with a weight average and a larger evaluation size: both validated, the better saved, the model used at its size', async () => {
    const runs = join(tmp, 'runs-ema');
    const { config, raw } = makeConfig(runs, ['model.ema_decay=0.9', 'data.eval_image_size=40']);
    const result = await train({ config, rawConfig: raw, dataDir, progress: quiet });
    expect(result.status).toBe('completed');
    expect(typeof result.bestEma).toBe('boolean');
    const rows = await readMetrics(result.runDir);
    const val = rows.filter((r) => r.split === 'val' && r.name === 'loss');
    const ema = rows.filter((r) => r.split === 'val_ema' && r.name === 'loss');
    expect(ema.map((r) => r.epoch)).toEqual([1, 2]);
    // The best checkpoint is the epoch and kind (weights or their average) with the lowest val_loss.
    const candidates = [...val.map((r) => ({ ...r, ema: false })), ...ema.map((r) => ({ ...r, ema: true }))];
    const best = candidates.reduce((a, b) => (b.value < a.value ? b : a));
    expect(result.bestEpoch).toBe(best.epoch);
    expect(result.bestEma).toBe(best.ema);
    const summary = JSON.parse(readFileSync(join(result.runDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary.best_weight_average).toBe(best.ema);
    // The saved model says it is used at 40 px (training ran on 32 px crops), and evaluates there.
    const { TorchModel } = await import('../../src/torch/TorchModel.js');
    await using model = await TorchModel.load(join(result.runDir, 'checkpoints', 'best', 'model.pt'));
    const metadata = JSON.parse(model.info.metadata ?? '{}') as { preprocessing: { size: number } };
    expect(metadata.preprocessing.size).toBe(40);
    // The last checkpoint holds the weights (not their average), and resuming it keeps the average.
    const state = JSON.parse(readFileSync(join(result.runDir, 'checkpoints', 'last', 'state.json'), 'utf8')) as {
      bestEma: boolean;
    };
    expect(state.bestEma).toBe(best.ema);
  });

  it('a run interrupted mid-epoch and resumed ends with the same metrics as an uninterrupted one', async () => {
    const { config: cfgA, raw: rawA } = makeConfig(join(tmp, 'runs-b'));
    const a = await train({ config: cfgA, rawConfig: rawA, dataDir, progress: quiet });

    const { config: cfgB, raw: rawB } = makeConfig(join(tmp, 'runs-c'));
    const controller = new AbortController();
    let steps = 0;
    const stopper: ProgressReporter = {
      ...quiet,
      step(p) {
        steps++;
        if (p.epoch === 1 && p.step === 2) controller.abort(); // mid-epoch, after 2 of 4 batches
      },
    };
    const b1 = await train({ config: cfgB, rawConfig: rawB, dataDir, progress: stopper, signal: controller.signal });
    expect(b1.status).toBe('interrupted');
    expect(steps).toBeLessThan(8);
    toEarlierForm(b1.runDir); // a folder an earlier version interrupted resumes too
    toCamelCaseConfig(b1.runDir); // ... also with the camelCase data section train() wrote without a raw config
    const b2 = await train({ config: cfgB, dataDir, progress: quiet, resume: b1.runDir });
    expect(b2.status).toBe('completed');
    expect(b2.runDir).toBe(b1.runDir);
    expect(b2.bestValLoss).toBeCloseTo(a.bestValLoss as number, 5);
    expect(b2.test?.report.accuracy).toBe(a.test?.report.accuracy);
    expect(b2.test?.losses.loss).toBeCloseTo(a.test?.losses.loss as number, 5);
    // The resumed run's metrics have each step once.
    const rows = await readMetrics(b2.runDir);
    const trainSteps = rows.filter((r) => r.split === 'train' && r.name === 'loss').map((r) => r.step);
    expect(new Set(trainSteps).size).toBe(trainSteps.length);
    const aRows = await readMetrics(a.runDir);
    const aLoss = aRows.filter((r) => r.split === 'train' && r.name === 'loss').map((r) => r.value);
    const bLoss = rows.filter((r) => r.split === 'train' && r.name === 'loss').map((r) => r.value);
    expect(bLoss.map((v) => v.toFixed(5))).toEqual(aLoss.map((v) => v.toFixed(5)));
    const epochsOf = (rs: typeof rows): (number | undefined)[] =>
      rs.filter((r) => r.split !== 'test').map((r) => r.epoch);
    expect(epochsOf(rows)).toEqual(epochsOf(aRows));
    const summary = JSON.parse(readFileSync(join(b2.runDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summaryKeys(summary).filter((k) => /[a-z][A-Z]/.test(k))).toEqual([]);
    expect(summary.best_epoch).toBe(a.bestEpoch);
  });

  it('train() given a camelCase data section converts it, warns once and writes the YAML casing', async () => {
    const { config } = makeConfig(join(tmp, 'runs-camel'), [
      'trainer.max_epochs=1',
      'trainer.limit_train_batches=1',
      'trainer.evaluate_test=false',
      'data.batch_size=4',
    ]);
    const camel: CamelCaseTrainConfig = { ...config, data: toDataConfig(config.data) };
    expect(camel.data.batchSize).toBe(4);
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      const result = await train({ config: camel, dataDir, progress: quiet });
      expect(result.status).toBe('completed');
      const ours = warn.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === CAMELCASE_DATA_CODE);
      expect(ours).toHaveLength(1);
      expect(String(ours[0]?.[0])).toMatch(/^train\(\) was given a camelCase data section/);
      // Without a raw config the run's config.yaml is the typed config: snake_case, read back as it was.
      const saved = YAML.parse(readFileSync(join(result.runDir, 'config.yaml'), 'utf8')) as Record<string, unknown>;
      expect(parseTrainConfig(saved)).toEqual(config);
      const split = JSON.parse(readFileSync(join(result.runDir, 'split.json'), 'utf8')) as { seed: number };
      expect(split.seed).toBe(config.data.seed);
    } finally {
      warn.mockRestore();
    }
  });
});

/** Rewrites a run's config.yaml with the data section in camelCase (imageSize, batchSize, augment.cropScale...). */
function toCamelCaseConfig(dir: string): void {
  const file = join(dir, 'config.yaml');
  const raw = YAML.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const config = parseTrainConfig(raw);
  writeFileSync(file, YAML.stringify({ ...raw, data: toDataConfig(config.data) }));
}

/** Keys of summary.json that are field names (not the class names under per_class, nor tags). */
function summaryKeys(summary: object): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(summary)) {
    out.push(k);
    if (k !== 'tags' && k !== 'per_class' && v && typeof v === 'object' && !Array.isArray(v))
      out.push(...summaryKeys(v));
  }
  return out;
}

/** Rewrites a run folder into the form earlier versions wrote: camelCase summary.json, epochs counted from 0. */
function toEarlierForm(dir: string): void {
  const file = join(dir, 'summary.json');
  const s = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const renames: Record<string, string> = {
    start_time: 'startTime',
    end_time: 'endTime',
    duration_s: 'durationS',
    best_val_loss: 'bestValLoss',
    best_model: 'bestModel',
  };
  const old: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'best_epoch') old.bestEpoch = typeof v === 'number' ? v - 1 : -1;
    else old[renames[k] ?? k] = v;
  }
  writeFileSync(file, JSON.stringify(old, null, 2));
  const metrics = join(dir, 'metrics.jsonl');
  const lines = readFileSync(metrics, 'utf8').split('\n').filter(Boolean);
  const shifted = lines.map((l) => {
    const row = JSON.parse(l) as { epoch?: number };
    if (row.epoch !== undefined) row.epoch -= 1;
    return JSON.stringify(row);
  });
  writeFileSync(metrics, `${shifted.join('\n')}\n`);
}
