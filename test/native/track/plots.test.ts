import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { MetricRow } from '../../../src/track/metricsLog.js';
import {
  curvesFromRows,
  renderAccuracyCurves,
  renderConfusionMatrix,
  renderLineChart,
  renderLossCurves,
} from '../../../src/track/plots.js';

const CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plots-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Rows as the trainer logs them: per-step train losses, per-epoch val losses and scores. */
function trainingRows(epochs: number): MetricRow[] {
  const rows: MetricRow[] = [];
  let step = 0;
  const add = (epoch: number, split: string, name: string, value: number): void =>
    void rows.push({ step, epoch, split, name, value, time: 0 });
  for (let e = 1; e <= epochs; e++) {
    for (let s = 0; s < 4; s++) {
      step++;
      add(e, 'train', 'loss', 2 * Math.exp(-(e + s / 4) / 3) + 0.1);
      add(e, 'train', 'ce', 1.5 * Math.exp(-(e + s / 4) / 3));
      add(e, 'train', 'contrastive', 0.5 * Math.exp(-(e + s / 4) / 4));
    }
    add(e, 'val', 'loss', 2 * Math.exp(-e / 4) + 0.3);
    add(e, 'val', 'ce', 1.5 * Math.exp(-e / 4) + 0.2);
    add(e, 'val', 'contrastive', 0.5 * Math.exp(-e / 5) + 0.1);
    add(e, 'train', 'accuracy', 1 - 0.8 * Math.exp(-e / 3));
    add(e, 'val', 'accuracy', 0.9 - 0.7 * Math.exp(-e / 3));
    add(e, 'val', 'f1_micro', 0.9 - 0.7 * Math.exp(-e / 3));
    add(e, 'val', 'f1_macro', 0.88 - 0.7 * Math.exp(-e / 3));
  }
  return rows;
}

/** Checks both files, the PNG's size (2 px per SVG unit) and that it is not a blank image. */
async function checkFiles(files: { svg: string; png: string; width: number; height: number }): Promise<string> {
  const svg = await fs.readFile(files.svg, 'utf8');
  const w = Number(/<svg[^>]* width="([\d.]+)"/.exec(svg)?.[1]);
  const h = Number(/<svg[^>]* height="([\d.]+)"/.exec(svg)?.[1]);
  const meta = await sharp(files.png).metadata();
  expect(meta.format).toBe('png');
  expect(meta.width).toBe(Math.round(w * 2));
  expect(meta.height).toBe(Math.round(h * 2));
  expect([meta.width, meta.height]).toEqual([files.width, files.height]);
  const stats = await sharp(files.png).stats();
  for (const ch of stats.channels.slice(0, 3)) expect(ch.stdev).toBeGreaterThan(10);
  expect((await fs.readdir(path.dirname(files.png))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  return svg;
}

describe('plots', () => {
  it('averages rows per epoch into curves', () => {
    const points = curvesFromRows(trainingRows(2), [{ name: 'loss', split: 'train', label: 't' }]);
    expect(points).toHaveLength(2);
    const e1 = [0, 1, 2, 3].map((s) => 2 * Math.exp(-(1 + s / 4) / 3) + 0.1);
    expect(points[0]?.y).toBeCloseTo(e1.reduce((a, b) => a + b) / 4, 12);
    expect(points[0]).toMatchObject({ x: 1, series: 't' });
  });

  it('renders loss curves (total, classification, contrastive; train and val)', async () => {
    const files = await renderLossCurves(trainingRows(8), path.join(dir, 'loss'));
    const svg = await checkFiles(files);
    for (const text of ['Loss', 'total', 'classification (CE)', 'contrastive (cosine)', 'train', 'val', 'epoch']) {
      expect(svg).toContain(text);
    }
  });

  it('renders accuracy and F1 curves', async () => {
    const files = await renderAccuracyCurves(trainingRows(8), path.join(dir, 'accuracy'), { title: 'Scores' });
    const svg = await checkFiles(files);
    for (const text of ['Scores', 'train accuracy', 'val accuracy (= F1 micro)', 'val F1 macro']) {
      expect(svg).toContain(text);
    }
  });

  it('draws every accuracy series where it can be seen, on a y axis fitted to the scores', async () => {
    // A good run: every score between 0.9 and 1, val F1 micro equal to val accuracy (single-label).
    const rows: MetricRow[] = [];
    for (let e = 1; e <= 6; e++) {
      const add = (split: string, name: string, value: number): void =>
        void rows.push({ step: e * 4, epoch: e, split, name, value, time: 0 });
      add('train', 'accuracy', 0.9 + 0.015 * e);
      add('val', 'accuracy', 0.92 + 0.01 * e);
      add('val', 'f1_micro', 0.92 + 0.01 * e);
      add('val', 'f1_macro', 0.91 + 0.01 * e);
    }
    const svg = await checkFiles(await renderAccuracyCurves(rows, path.join(dir, 'accuracy-high')));
    const lines = [...svg.matchAll(/<g class="mark-line[^>]*>\s*<path[^>]* d="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(lines).size).toBe(lines.length); // no line drawn exactly over another
    expect(lines).toHaveLength(3);
    // The legend says why F1 micro has no line of its own (in full, not cut short).
    expect(svg).toContain('>val accuracy (= F1 micro)<');
    expect(svg).not.toContain('>val F1 micro<');
    const domain = /Y-axis[^"]* values from ([\d.]+) to ([\d.]+)/.exec(svg);
    const [lo, hi] = [Number(domain?.[1]), Number(domain?.[2])];
    expect(lo).toBeGreaterThan(0.85);
    expect(lo).toBeLessThan(0.915);
    expect(hi).toBeGreaterThanOrEqual(0.98);
    expect(hi).toBeLessThanOrEqual(1);
  });

  it('renders a confusion matrix with counts and class names', async () => {
    const m = [
      [50, 3, 1, 0, 2],
      [4, 60, 0, 1, 0],
      [2, 0, 45, 3, 8],
      [0, 2, 1, 55, 0],
      [3, 0, 9, 1, 48],
    ];
    const files = await renderConfusionMatrix(m, CLASSES, path.join(dir, 'sub', 'confusion'), 'Val confusion');
    const svg = await checkFiles(files);
    expect(svg).toContain('Val confusion');
    for (const c of CLASSES) expect(svg).toContain(`>${c}<`);
    for (const n of [50, 60, 45, 55, 48, 9]) expect(svg).toContain(`>${n}<`);
    await expect(renderConfusionMatrix([[1, 2]], CLASSES, path.join(dir, 'bad'))).rejects.toBeInstanceOf(RangeError);
  });

  it('renders a generic line chart (bench throughput, log x)', async () => {
    const points = [1, 2, 4, 8, 16].flatMap((b) => [
      { x: b, y: (b * 40) / (1 + b / 8), series: 'ORT fp32' },
      { x: b, y: (b * 70) / (1 + b / 8), series: 'ORT int8' },
    ]);
    const files = await renderLineChart(points, path.join(dir, 'throughput'), {
      title: 'Throughput',
      xTitle: 'batch',
      yTitle: 'images/s',
      logX: true,
      scale: 2,
    });
    const svg = await checkFiles(files);
    for (const text of ['Throughput', 'images/s', 'ORT int8']) expect(svg).toContain(text);
  });
});
