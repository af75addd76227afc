/** A benchmark report as a terminal table, Markdown and JSON, and the files written from it. */
import path from 'node:path';

import { writeFileAtomic } from '../util/fs.js';
import { SaveError } from '../errors.js';
import { renderBenchChart } from './chart.js';
import { describeMachine } from './machine.js';
import type { BenchEngine, BenchReport, BenchResult } from './types.js';

const MODE: Record<string, string> = { model: 'model-only', e2e: 'end-to-end' };

/** Milliseconds with 3 significant digits (0.512, 12.3, 145). */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

const fmtRate = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1);
const fmtRatio = (x: number | undefined | null): string =>
  x === undefined || x === null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`;
const fmtPct = (x: number | undefined | null): string =>
  x === undefined || x === null || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)}%`;

/** One table row per result, plus one per engine that did not run. */
interface Row {
  engine: BenchEngine;
  result?: BenchResult;
}

function rows(report: BenchReport): Row[] {
  const out: Row[] = [];
  for (const engine of report.engines) {
    const results = report.results.filter((r) => r.engine === engine.label);
    if (engine.status !== 'ok' || results.length === 0) out.push({ engine });
    for (const result of results) out.push({ engine, result });
  }
  return out;
}

function statusText(row: Row): string {
  const reason = (row.result?.reason ?? row.engine.reason ?? '').split('\n')[0] ?? '';
  const status = row.result?.status === 'failed' ? 'failed' : row.engine.status;
  return `${status}: ${reason.length > 160 ? `${reason.slice(0, 157)}...` : reason}`;
}

const accuracyText = (e: BenchEngine): string =>
  e.accuracy ? `${fmtPct(e.accuracy.accuracy)} (${e.accuracy.correct}/${e.accuracy.images})` : '-';

/** The engine builder's record: calibration and its own check against the FP32 model. */
function buildText(e: BenchEngine): string {
  const b = e.build;
  if (!b) return '-';
  const parts = [`${b.precision} by \`build-engine\``];
  if (b.calibration) parts.push(`calibration: ${b.calibration}`);
  if (b.top1Agreement !== null) {
    parts.push(
      `top-1 agreement with FP32 ${fmtPct(b.top1Agreement)}${b.verifiedOn ? ` on ${b.verifiedOn} photos` : ''}`,
    );
  }
  return parts.join('; ');
}

/** The cells of the main table (shared by the terminal and Markdown forms). */
function cells(report: BenchReport, markdown: boolean): { head: string[]; body: string[][] } {
  const withAccuracy = report.engines.some((e) => e.accuracy);
  const head = [
    'engine',
    'batch',
    'mode',
    'iters',
    'p50 ms',
    'p90 ms',
    ...(markdown ? ['p95 ms'] : []),
    'p99 ms',
    'mean ms',
    'min ms',
    'max ms',
    'images/s',
    ...(markdown ? ['batches/s'] : []),
    `vs ${report.baseline ?? 'baseline'}`,
    ...(markdown ? ['other CPU'] : []),
    ...(withAccuracy ? ['accuracy'] : []),
  ];
  const body = rows(report).map((row) => {
    const r = row.result;
    const e = row.engine;
    const label = e.label;
    if (!r || r.status !== 'ok' || !r.latencyMs) {
      const blank = head.length - 2;
      return [label, r ? String(r.batch) : '-', statusText(row), ...Array<string>(blank - 1).fill('')];
    }
    const l = r.latencyMs;
    return [
      label,
      String(r.batch),
      MODE[r.mode] ?? r.mode,
      String(r.iterations),
      fmtMs(l.median),
      fmtMs(l.p90),
      ...(markdown ? [fmtMs(l.p95)] : []),
      fmtMs(l.p99),
      fmtMs(l.mean),
      fmtMs(l.min),
      fmtMs(l.max),
      fmtRate(r.imagesPerSecond),
      ...(markdown ? [fmtRate(r.batchesPerSecond)] : []),
      fmtRatio(r.vsBaseline?.throughput),
      ...(markdown ? [r.otherCpuPercent === undefined ? '-' : `${r.otherCpuPercent.toFixed(0)}%`] : []),
      ...(withAccuracy ? [accuracyText(e)] : []),
    ];
  });
  return { head, body };
}

/** Aligned plain-text table for the terminal. */
export function formatTable(report: BenchReport): string {
  const { head, body } = cells(report, false);
  // A status text spans the numeric columns: measure columns on complete rows only.
  const full = body.filter((r) => r[3] !== '');
  const widths = head.map((h, i) => Math.max(h.length, ...full.map((r) => (r[i] ?? '').length)));
  const left = new Set([0, 2]);
  const line = (r: string[]): string => {
    if (r[3] === '' && r.length > 3) return `${(r[0] ?? '').padEnd(widths[0] ?? 0)}  ${r[1] ?? ''}  ${r[2] ?? ''}`;
    return r
      .map((c, i) => (left.has(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  };
  return [line(head), ...body.map(line)].join('\n');
}

const mdEscape = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A Markdown table; columns in `left` are left-aligned, the others (numbers) right-aligned. */
function mdTable(head: string[], body: string[][], left: ReadonlySet<number>): string {
  const sep = head.map((_, i) => (left.has(i) ? '---' : '---:'));
  return [head, sep, ...body].map((r) => `| ${r.map(mdEscape).join(' | ')} |`).join('\n');
}

function versionsLine(report: BenchReport): string {
  const v = report.machine.versions;
  const parts = [
    `Node ${v.node}`,
    v.libtorch ? `libtorch ${v.libtorch}` : null,
    v.onnxruntime ? `ONNX Runtime ${v.onnxruntime}` : null,
    v.tensorrt ? `TensorRT ${v.tensorrt}` : 'no TensorRT',
    `sharp ${v.sharp} (libvips ${v.libvips})`,
    `trt-flowers ${v.trtFlowers}`,
    report.machine.git
      ? `git ${report.machine.git.commit.slice(0, 12)}${report.machine.git.dirty ? ' (modified)' : ''}`
      : null,
  ];
  const python = report.engines.find((e) => e.backend === 'python-eager')?.versions;
  if (python) {
    parts.push(
      `Python ${python.python} with torch ${python.torch}, torchvision ${python.torchvision}, Pillow ${python.pillow}`,
    );
  }
  return parts.filter(Boolean).join(', ');
}

function settingsLine(report: BenchReport): string {
  const s = report.settings;
  return (
    `warm-up ${s.warmupMs} ms, then at least ${s.iterations} iterations and ${s.durationS} s per configuration, ` +
    `one call in flight; ${s.threads} threads per engine; batch ${s.batches.join(', ')}; ` +
    `${s.images} photos${s.imagesFrom ? ` from ${s.imagesFrom}` : ''} (JPEG decoding: ${s.jpegDecoder}, ` +
    `decoded ${s.decode === 'auto' ? "where Engine.load's decode 'auto' puts it" : `on the ${s.decode}`}); ` +
    `percentiles by ${s.percentileMethod === 'linear' ? 'linear interpolation' : 'nearest rank'}`
  );
}

/** The report as Markdown: settings, machine, the table, the engines, notes. */
export function toMarkdown(report: BenchReport): string {
  const { head, body } = cells(report, true);
  const m = report.machine;
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' / ');
  const out = [
    '# trt-flowers bench',
    '',
    `${report.startedAt}, ${report.wallSeconds.toFixed(0)} s in all` +
      (report.command ? `: \`${report.command}\`` : ''),
    '',
    `- **Machine**: ${describeMachine(m)}; ${m.os}; load average (1/5/15 min) ${load(m.loadAverage)} at the start, ${load(report.loadAverageAtEnd ?? [])} at the end`,
    `- **Versions**: ${versionsLine(report)}`,
    `- **Method**: ${settingsLine(report)}`,
    `- **Modes**: model-only = a preprocessed batch through the engine (\`engine.run\`); end-to-end = image files ` +
      'to class probabilities (`engine.infer`: decode, resize, normalise, run, softmax)',
    `- **Baseline**: ${report.baseline ?? 'none'} (the "vs" column: images/s relative to it at the same batch and mode)`,
    "- **Other CPU**: the share of the machine's CPU time other processes used while a row was measured (a few " +
      'percent is background noise; more skews the row)',
    '',
    mdTable(head, body, new Set([0, 2])),
    '',
    '## Engines',
    '',
    mdTable(
      [
        'engine',
        'status',
        'model',
        'load ms',
        'input',
        'versions',
        'built',
        'accuracy',
        'top-1 agreement with baseline',
      ],
      report.engines.map((e) => [
        e.label,
        e.status === 'ok' ? 'ok' : `${e.status}: ${(e.reason ?? '').split('\n')[0]}`,
        `\`${path.basename(e.model)}\``,
        e.loadMs === undefined ? '-' : e.loadMs.toFixed(0),
        e.inputShape ? e.inputShape.join('x') : '-',
        e.versions
          ? Object.entries(e.versions)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')
          : '-',
        buildText(e),
        accuracyText(e),
        fmtPct(e.accuracy?.agreementWithBaseline),
      ]),
      new Set([0, 1, 2, 4, 5, 6, 7]),
    ),
    '',
  ];
  const acc = report.engines.find((e) => e.accuracy)?.accuracy;
  if (acc) out.push(`Accuracy: the ${acc.split} split, ${acc.images} photos, labels from ${acc.source}.`, '');
  if (report.notes.length) out.push('## Notes', '', ...report.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

/** The JSON report (predictions per image left out; every latency kept unless the run dropped them). */
export function toJson(report: BenchReport): string {
  const engines = report.engines.map((e) => {
    if (!e.accuracy) return e;
    const { predictions: _p, ...accuracy } = e.accuracy;
    return { ...e, accuracy };
  });
  return `${JSON.stringify({ ...report, engines }, null, 1)}\n`;
}

export interface ReportFiles {
  json?: string;
  markdown?: string;
  /** PNG path; an SVG is written beside it. */
  plot?: string;
}

/** Writes one report file atomically and adds it to `written`. Throws SaveError naming the file. */
export async function saveReportFile(file: string, text: string, written: string[]): Promise<void> {
  try {
    await writeFileAtomic(file, text);
  } catch (err) {
    throw new SaveError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  written.push(file);
}

/** Writes the requested files atomically. Throws SaveError. */
export async function writeReports(report: BenchReport, files: ReportFiles): Promise<string[]> {
  const written: string[] = [];
  const save = (file: string, text: string): Promise<void> => saveReportFile(file, text, written);
  if (files.json) await save(files.json, toJson(report));
  if (files.markdown) await save(files.markdown, toMarkdown(report));
  if (files.plot) {
    const base = files.plot.replace(/\.(png|svg)$/i, '');
    const plot = await renderBenchChart(report, base);
    if (plot) written.push(plot.png, plot.svg);
  }
  return written;
}
