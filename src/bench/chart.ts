/**
 * The bench chart, through the training plots' route (Vega-Lite -> SVG -> PNG with sharp): throughput per engine and
 * batch size (model-only and end-to-end side by side), then the latency spread of each configuration (min-max
 * line, p50 / p90 / p95 / p99 marks) on a log axis.
 */
import type { TopLevelSpec } from 'vega-lite';

import { BASE_CONFIG, renderVegaLite, type PlotFiles, type RenderOptions } from '../track/vegaRender.js';
import type { BenchReport } from './types.js';

const MODE: Record<string, string> = { model: 'model-only', e2e: 'end-to-end' };

/** The Vega-Lite spec of a report's chart, or undefined when no configuration ran. */
export function benchChartSpec(report: BenchReport): TopLevelSpec | undefined {
  const ok = report.results.filter((r) => r.status === 'ok' && r.latencyMs && r.imagesPerSecond);
  if (ok.length === 0) return undefined;
  const rows = ok.map((r) => {
    const l = r.latencyMs!;
    const mode = MODE[r.mode] ?? r.mode;
    return {
      config: `${r.engine}, batch ${r.batch}`,
      run: `${r.engine}, batch ${r.batch}, ${mode}`,
      mode,
      imagesPerSecond: Math.round((r.imagesPerSecond ?? 0) * 10) / 10,
      min: l.min,
      p50: l.median,
      p90: l.p90,
      p95: l.p95,
      p99: l.p99,
      max: l.max,
    };
  });
  const configs = [...new Set(rows.map((r) => r.config))];
  const runs = rows.map((r) => r.run);
  const modes = [...new Set(rows.map((r) => r.mode))];
  const m = report.machine;
  const subtitle =
    `${m.cpu.model}, ${m.cpu.threads} threads${m.gpus.length ? `, ${m.gpus.map((g) => g.name).join(', ')}` : ''}; ` +
    `${report.settings.iterations}+ iterations, ${report.settings.durationS}+ s per configuration; ` +
    `baseline ${report.baseline ?? 'none'}`;
  const throughput = {
    title: 'Throughput (one call in flight)',
    width: 560,
    height: { step: modes.length > 1 ? 14 : 20 },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'config', type: 'nominal', sort: configs, title: null, axis: { labelLimit: 520 } },
      yOffset: { field: 'mode', type: 'nominal', sort: modes },
      x: { field: 'imagesPerSecond', type: 'quantitative', title: 'images/s' },
      color: {
        field: 'mode',
        type: 'nominal',
        sort: modes,
        title: null,
        scale: { domain: modes, range: ['#4c78a8', '#f58518'] },
        legend: { orient: 'top' },
      },
    },
  };
  const percentiles = ['p50', 'p90', 'p95', 'p99'];
  const latency = {
    title: 'Latency per call (line: min to max)',
    width: 560,
    height: { step: 18 },
    encoding: {
      y: { field: 'run', type: 'nominal', sort: runs, title: null, axis: { labelLimit: 520 } },
    },
    layer: [
      {
        mark: { type: 'rule', color: '#888', strokeWidth: 1.5 },
        encoding: {
          x: { field: 'min', type: 'quantitative', scale: { type: 'log' }, title: 'ms per call (log scale)' },
          x2: { field: 'max' },
        },
      },
      {
        transform: [{ fold: percentiles, as: ['percentile', 'ms'] }],
        mark: { type: 'point', filled: true, size: 60, tooltip: true },
        encoding: {
          x: { field: 'ms', type: 'quantitative' },
          color: {
            field: 'percentile',
            type: 'nominal',
            sort: percentiles,
            title: null,
            scale: { domain: percentiles, range: ['#54a24b', '#eeca3b', '#e45756', '#b279a2'] },
            legend: { orient: 'top' },
          },
        },
      },
    ],
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'trt-flowers bench', subtitle },
    data: { values: rows },
    config: BASE_CONFIG,
    vconcat: [throughput, latency],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

/** Writes `<outBase>.png` and `<outBase>.svg`; undefined (nothing written) when no configuration ran. */
export async function renderBenchChart(
  report: BenchReport,
  outBase: string,
  options: RenderOptions = {},
): Promise<PlotFiles | undefined> {
  const spec = benchChartSpec(report);
  return spec ? renderVegaLite(spec, outBase, options) : undefined;
}
