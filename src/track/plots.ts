/**
 * Training charts as SVG + PNG: loss curves, accuracy / F1 curves, a confusion matrix, and a generic line chart
 * that bench code reuses (throughput, latency).
 */
import type { TopLevelSpec } from 'vega-lite';

import type { MetricRow } from './metricsLog.js';
import { BASE_CONFIG, type PlotFiles, renderVegaLite, type RenderOptions } from './vegaRender.js';

export type { PlotFiles, RenderOptions } from './vegaRender.js';

/** One point of a line chart. */
export interface LinePoint {
  x: number;
  y: number;
  /** Line (legend entry, color). */
  series: string;
  /** Side-by-side panel the line goes in. Defaults to one panel. */
  panel?: string;
}

export interface LineChartOptions extends RenderOptions {
  title: string;
  /** Line under the title. Defaults to none. */
  subtitle?: string;
  /** Defaults to 'x'. */
  xTitle?: string;
  /** Defaults to 'y'. */
  yTitle?: string;
  /** Legend title. Defaults to none. */
  legendTitle?: string;
  /** Legend and color order. Defaults to first appearance in the data. */
  seriesOrder?: readonly string[];
  /** Panel order. Defaults to first appearance in the data. */
  panelOrder?: readonly string[];
  /** Fixed y range, e.g. [0, 1]. Defaults to the data's range. */
  yDomain?: readonly [number, number];
  /** Logarithmic y axis (latency spreads). Defaults to false. */
  logY?: boolean;
  /** Logarithmic x axis (batch sizes). Defaults to false. */
  logX?: boolean;
  /** Integer ticks on x (epochs, batch sizes). Defaults to false. */
  integerX?: boolean;
  /** Series drawn dashed (e.g. one that can coincide with another). Defaults to none. */
  dashedSeries?: readonly string[];
  /** A marker shape per series (in the legend too), so points of lines that meet stay apart. Defaults to false. */
  shapes?: boolean;
  /** Markers on the points. Defaults to true when no line has more than 60 points. */
  points?: boolean;
  /** Plot width of one panel in px. Defaults to 520 (one panel) or 300 (several). */
  width?: number;
  /** Plot height in px. Defaults to 300 (one panel) or 240 (several). */
  height?: number;
}

const firstSeen = (values: readonly string[]): string[] => [...new Set(values)];

/** Builds the Vega-Lite spec of a line chart (exported for callers that want to tweak it). */
export function lineChartSpec(points: readonly LinePoint[], o: LineChartOptions): TopLevelSpec {
  const panels = o.panelOrder ?? firstSeen(points.flatMap((p) => (p.panel === undefined ? [] : [p.panel])));
  const faceted = panels.length > 0;
  const perSeries = new Map<string, number>();
  for (const p of points) perSeries.set(p.series, (perSeries.get(p.series) ?? 0) + 1);
  const showPoints = o.points ?? Math.max(0, ...perSeries.values()) <= 60;
  const series = o.seriesOrder ?? firstSeen(points.map((p) => p.series));
  const yScale: Record<string, unknown> = { zero: false, type: o.logY ? 'log' : 'linear' };
  // Room for labels that explain a series (e.g. 'val accuracy (= F1 micro)').
  const legend = {
    orient: faceted ? 'bottom' : 'right',
    direction: faceted ? 'horizontal' : 'vertical',
    labelLimit: 360,
  };
  if (o.yDomain) yScale.domain = [...o.yDomain];
  const inner = {
    width: o.width ?? (faceted ? 300 : 520),
    height: o.height ?? (faceted ? 240 : 300),
    mark: { type: 'line', strokeWidth: 2.5, point: showPoints ? { size: 40, filled: true } : false },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: o.xTitle ?? 'x',
        scale: o.logX ? { type: 'log', padding: 12 } : { type: 'linear', zero: false, nice: false, padding: 12 },
        axis: o.integerX ? { tickMinStep: 1, format: 'd' } : {},
      },
      y: { field: 'y', type: 'quantitative', title: o.yTitle ?? 'y', scale: yScale },
      color: {
        field: 'series',
        type: 'nominal',
        title: o.legendTitle ?? null,
        sort: series,
        scale: { domain: series, scheme: 'tableau10' },
        legend,
      },
      ...(o.shapes && showPoints
        ? { shape: { field: 'series', type: 'nominal', title: o.legendTitle ?? null, sort: series, legend } }
        : {}),
      ...(o.dashedSeries?.length
        ? {
            strokeDash: {
              condition: { test: `indexof(${JSON.stringify(o.dashedSeries)}, datum.series) >= 0`, value: [7, 4] },
              value: [1, 0],
            },
          }
        : {}),
    },
  };
  const title = o.subtitle ? { text: o.title, subtitle: o.subtitle } : { text: o.title };
  const data = { values: points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) };
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, data, config: BASE_CONFIG };
  if (!faceted) return { ...base, ...inner } as TopLevelSpec;
  return {
    ...base,
    facet: { column: { field: 'panel', type: 'nominal', sort: panels, title: null } },
    spec: inner,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/** Writes a line chart to `<outBase>.svg` and `<outBase>.png`. */
export async function renderLineChart(
  points: readonly LinePoint[],
  outBase: string,
  options: LineChartOptions,
): Promise<PlotFiles> {
  return renderVegaLite(lineChartSpec(points, options), outBase, options);
}

/** One curve picked from metrics.jsonl rows. */
export interface CurveSelector {
  /** Metric name in metrics.jsonl. */
  name: string;
  /** Split; undefined matches rows of every split (one curve per split). */
  split?: string;
  /** Legend label. Defaults to `<split> <name>`. */
  label?: string;
  /** Panel label. Defaults to one panel. */
  panel?: string;
}

/**
 * Points from metric rows: one curve per selector (and per split when the selector names none), x = epoch (or
 * step), values of the same x averaged, non-finite values skipped.
 */
export function curvesFromRows(
  rows: readonly MetricRow[],
  selectors: readonly CurveSelector[],
  x: 'epoch' | 'step' = 'epoch',
): LinePoint[] {
  const sums = new Map<string, { point: LinePoint; n: number }>();
  for (const row of rows) {
    const xv = x === 'epoch' ? row.epoch : row.step;
    if (xv === undefined || !Number.isFinite(row.value)) continue;
    for (const s of selectors) {
      if (s.name !== row.name || (s.split !== undefined && s.split !== row.split)) continue;
      const series = s.label ?? (row.split ? `${row.split} ${row.name}` : row.name);
      const key = JSON.stringify([series, s.panel, xv]);
      const acc = sums.get(key);
      if (acc) {
        acc.point.y += row.value;
        acc.n++;
      } else {
        const point: LinePoint = { x: xv, y: row.value, series };
        if (s.panel !== undefined) point.panel = s.panel;
        sums.set(key, { point, n: 1 });
      }
    }
  }
  return [...sums.values()].map(({ point, n }) => ({ ...point, y: point.y / n }));
}

export interface CurveChartOptions extends RenderOptions {
  /** Defaults to the chart's name ('Loss' / 'Accuracy and F1'). */
  title?: string;
  /** Defaults to none. */
  subtitle?: string;
  /** x axis: epoch or global step. Defaults to 'epoch'. */
  x?: 'epoch' | 'step';
  /** Which curves. Defaults to the trainer's metric names (see each function). */
  curves?: readonly CurveSelector[];
}

/** Panels of the loss chart: the trainer's `loss`, `ce` and `contrastive`, one line per split in each. */
export const LOSS_CURVES: readonly CurveSelector[] = [
  { name: 'loss', panel: 'total' },
  { name: 'ce', panel: 'classification (CE)' },
  { name: 'contrastive', panel: 'contrastive (cosine)' },
];

/** Train and val loss curves in three panels (total, classification, contrastive), x = epoch. */
export async function renderLossCurves(
  rows: readonly MetricRow[],
  outBase: string,
  options: CurveChartOptions = {},
): Promise<PlotFiles> {
  const curves = options.curves ?? LOSS_CURVES;
  const points = curvesFromRows(rows, curves, options.x).map((p) => ({ ...p, series: splitOf(p.series) }));
  return renderLineChart(points, outBase, {
    ...options,
    title: options.title ?? 'Loss',
    xTitle: options.x === 'step' ? 'step' : 'epoch',
    yTitle: 'loss',
    legendTitle: 'split',
    seriesOrder: orderSplits(points.map((p) => p.series)),
    panelOrder: firstSeen(curves.flatMap((c) => (c.panel === undefined ? [] : [c.panel]))),
    integerX: options.x !== 'step',
  });
}

/**
 * Curves of the accuracy chart: train/val `accuracy` and val `f1_macro`. Val F1 micro is not drawn: for
 * single-label classification it equals val accuracy at every point, so its line would hide exactly under the
 * accuracy line; the accuracy label says so instead.
 */
export const ACCURACY_CURVES: readonly CurveSelector[] = [
  { name: 'accuracy', split: 'train', label: 'train accuracy' },
  { name: 'accuracy', split: 'val', label: 'val accuracy (= F1 micro)' },
  { name: 'f1_macro', split: 'val', label: 'val F1 macro' },
];

/**
 * A y range for scores in [0, 1] that fits the data with some padding, so that e.g. 0.90-0.99 fills the chart
 * instead of a tenth of a fixed 0-1 axis.
 */
export function scoreDomain(points: readonly LinePoint[]): [number, number] {
  const ys = points.map((p) => p.y).filter(Number.isFinite);
  if (ys.length === 0) return [0, 1];
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const pad = Math.max((hi - lo) * 0.08, 0.01);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}

/** The Vega-Lite spec of the accuracy chart (exported for tests and callers that want to tweak it). */
export function accuracyChartSpec(rows: readonly MetricRow[], options: CurveChartOptions = {}): TopLevelSpec {
  return lineChartSpec(...accuracyChart(rows, options));
}

function accuracyChart(rows: readonly MetricRow[], options: CurveChartOptions): [LinePoint[], LineChartOptions] {
  const curves = options.curves ?? ACCURACY_CURVES;
  const points = curvesFromRows(rows, curves, options.x);
  const series = firstSeen([...curves.flatMap((c) => (c.label ? [c.label] : [])), ...points.map((p) => p.series)]);
  return [
    points,
    {
      ...options,
      title: options.title ?? 'Accuracy and F1',
      xTitle: options.x === 'step' ? 'step' : 'epoch',
      yTitle: 'score',
      seriesOrder: series,
      yDomain: scoreDomain(points),
      // Lines that touch (train and val accuracy at a plateau, F1 macro near accuracy) stay apart: F1 dashed, and
      // each series its own marker shape.
      dashedSeries: series.filter((s) => /f1/i.test(s) && !/accuracy/i.test(s)),
      shapes: true,
      integerX: options.x !== 'step',
    },
  ];
}

/** Accuracy and F1 curves, x = epoch, the y axis fitted to the scores (see `scoreDomain`). */
export async function renderAccuracyCurves(
  rows: readonly MetricRow[],
  outBase: string,
  options: CurveChartOptions = {},
): Promise<PlotFiles> {
  const [points, chart] = accuracyChart(rows, options);
  return renderLineChart(points, outBase, chart);
}

/** Loss-chart series are `<split> <name>`: the legend shows the split only (the panel names the loss). */
const splitOf = (series: string): string => series.split(' ')[0] ?? series;
const orderSplits = (splits: readonly string[]): string[] => {
  const rank = (s: string): number => ['train', 'val', 'test'].indexOf(s) >>> 0;
  return firstSeen(splits).sort((a, b) => rank(a) - rank(b));
};

export { renderConfusionMatrix, type ConfusionMatrixOptions } from './confusionPlot.js';
