/** The robustness report: its shape, the differences to a baseline model, and its text, Markdown and JSON forms. */
import { saveReportFile } from './report.js';
import type { BenchEngine } from './types.js';
import type { RobustnessVariant } from './variant-names.js';

/** One class of one model x variant: accuracy on its photos is its recall. */
export interface RobustnessClass {
  class: string;
  /** Photos of this class. */
  support: number;
  /** Of them, predicted right. */
  correct: number;
  /** correct / support; null when the class has no photo. */
  accuracy: number | null;
  precision: number;
  f1: number;
}

/** A model on one variant of the split. */
export interface RobustnessResult {
  /** The model's label. */
  model: string;
  variant: RobustnessVariant;
  images: number;
  correct: number;
  accuracy: number;
  f1Macro: number;
  perClass: RobustnessClass[];
  /** counts[true][predicted], in the order of the report's classes. */
  confusion: number[][];
  seconds: number;
}

/** A model of the report. */
export interface RobustnessModel {
  /** '<backend> <precision> <device>' (then ' tta=flip' when augmented), plus the file name where two models share one. */
  label: string;
  backend: BenchEngine['backend'];
  precision: BenchEngine['precision'];
  device: string;
  model: string;
  /** Test-time augmentation of this measurement; absent: none. */
  tta?: BenchEngine['tta'];
  status: 'ok' | 'unavailable' | 'failed';
  reason?: string;
}

/** A model against the baseline on one variant, in percentage points (model - baseline). */
export interface RobustnessDiff {
  model: string;
  variant: RobustnessVariant;
  accuracyPoints: number;
  f1MacroPoints: number;
  /** Per class, the accuracy (recall) difference in points; null where the class has no photo. */
  perClassPoints: Record<string, number | null>;
  /** |accuracyPoints| > the report's tolerance. */
  flagged: boolean;
}

export interface RobustnessReport {
  format: 'trt-flowers-robustness/1';
  startedAt: string;
  wallSeconds: number;
  command: string | null;
  /** train | val | test | all. */
  split: string;
  /** Where the labels came from. */
  source: string;
  images: number;
  classes: string[];
  variants: { name: RobustnessVariant; description: string }[];
  settings: { batch: number; threads: number; device: string; limit: number; tolerancePoints: number };
  models: RobustnessModel[];
  results: RobustnessResult[];
  baseline: string | null;
  diffs: RobustnessDiff[];
  /** Photos of the split that do not decode, left out of every variant. */
  leftOut: { path: string; reason: string }[];
  notes: string[];
  versions: Record<string, string>;
}

const points = (x: number): number => Math.round(x * 1e4) / 100;

/**
 * Every model's results against the baseline's on the same variant: accuracy, macro F1 and per-class accuracy
 * differences in points, flagged where |accuracy difference| > `tolerancePoints`.
 */
export function computeDiffs(
  results: readonly RobustnessResult[],
  baseline: string | null,
  tolerancePoints: number,
): RobustnessDiff[] {
  if (!baseline) return [];
  const out: RobustnessDiff[] = [];
  for (const r of results) {
    if (r.model === baseline) continue;
    const base = results.find((b) => b.model === baseline && b.variant === r.variant);
    if (!base) continue;
    const accuracyPoints = points(r.accuracy - base.accuracy);
    const perClassPoints: Record<string, number | null> = {};
    for (const c of r.perClass) {
      const b = base.perClass.find((x) => x.class === c.class);
      perClassPoints[c.class] =
        c.accuracy === null || b?.accuracy === null || b === undefined ? null : points(c.accuracy - b.accuracy);
    }
    out.push({
      model: r.model,
      variant: r.variant,
      accuracyPoints,
      f1MacroPoints: points(r.f1Macro - base.f1Macro),
      perClassPoints,
      flagged: Math.abs(accuracyPoints) > tolerancePoints,
    });
  }
  return out;
}

const pct = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)}%`;
const signed = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x > 0 ? '+' : ''}${x.toFixed(1)}`;

/** The tables of the report as rows of cells, shared by the text and Markdown forms. */
interface Table {
  title: string;
  head: string[];
  body: string[][];
}

const splitText = (r: RobustnessReport): string =>
  r.split === 'all' ? 'every photo of the class folders' : `the ${r.split} split`;

function variantsOf(report: RobustnessReport): RobustnessVariant[] {
  return report.variants.map((v) => v.name);
}

const resultOf = (report: RobustnessReport, model: string, variant: string): RobustnessResult | undefined =>
  report.results.find((r) => r.model === model && r.variant === variant);

function tables(report: RobustnessReport): Table[] {
  const variants = variantsOf(report);
  const ok = report.models.filter((m) => m.status === 'ok');
  const out: Table[] = [
    {
      title: `Accuracy (macro F1) on ${splitText(report)}, ${report.images} photos`,
      head: ['model', ...variants],
      body: report.models.map((m) =>
        m.status === 'ok'
          ? [
              m.label,
              ...variants.map((v) => {
                const r = resultOf(report, m.label, v);
                return r ? `${pct(r.accuracy)} (${r.f1Macro.toFixed(3)})` : '-';
              }),
            ]
          : [m.label, `${m.status}: ${(m.reason ?? '').split('\n')[0]}`],
      ),
    },
  ];
  if (report.diffs.length > 0) {
    out.push({
      title:
        `Difference to ${report.baseline}, accuracy in points (! where more than ` +
        `${report.settings.tolerancePoints} point${report.settings.tolerancePoints === 1 ? '' : 's'})`,
      head: ['model', ...variants],
      body: ok
        .filter((m) => m.label !== report.baseline)
        .map((m) => [
          `${m.label} - baseline`,
          ...variants.map((v) => {
            const d = report.diffs.find((x) => x.model === m.label && x.variant === v);
            return d ? `${signed(d.accuracyPoints)}${d.flagged ? ' !' : ''}` : '-';
          }),
        ]),
    });
  }
  for (const m of ok) {
    out.push({
      title: `${m.label}: accuracy per class (recall), correct/photos`,
      head: ['class', ...variants],
      body: report.classes.map((cls) => [
        cls,
        ...variants.map((v) => {
          const c = resultOf(report, m.label, v)?.perClass.find((x) => x.class === cls);
          return c ? `${pct(c.accuracy)} (${c.correct}/${c.support})` : '-';
        }),
      ]),
    });
  }
  return out;
}

/** Aligned plain-text tables for the terminal. */
export function formatRobustnessTable(report: RobustnessReport): string {
  const blocks = tables(report).map((t) => {
    // A status text (a model that did not run) spans the variant columns: measure on complete rows only.
    const full = t.body.filter((r) => r.length === t.head.length);
    const widths = t.head.map((h, i) =>
      Math.max(h.length, ...(i === 0 ? t.body : full).map((r) => (r[i] ?? '').length)),
    );
    const line = (r: string[]): string =>
      r
        .map((c, i) => (i === 0 || r.length !== t.head.length ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    return [t.title, line(t.head), ...t.body.map(line)].join('\n');
  });
  return blocks.join('\n\n');
}

const mdEscape = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdTable(head: string[], body: string[][]): string {
  const sep = head.map((_, i) => (i === 0 ? '---' : '---:'));
  const rows = body.map((r) =>
    r.length < head.length ? [...r, ...Array<string>(head.length - r.length).fill('')] : r,
  );
  return [head, sep, ...rows].map((r) => `| ${r.map(mdEscape).join(' | ')} |`).join('\n');
}

/** The report as Markdown: what was measured, the tables, the confusion counts, notes. */
export function robustnessMarkdown(report: RobustnessReport): string {
  const out = [
    '# trt-flowers robustness',
    '',
    `${report.startedAt}, ${report.wallSeconds.toFixed(0)} s in all` +
      (report.command ? `: \`${report.command}\`` : ''),
    '',
    `- **Photos**: ${splitText(report)}, ${report.images} photos, labels from ${report.source}`,
    `- **Models**: ${report.models.map((m) => `${m.label} (\`${m.model}\`)`).join('; ')}`,
    `- **Settings**: batch ${report.settings.batch}, ${report.settings.threads} threads, device ` +
      `${report.settings.device}${report.settings.limit > 0 ? `, at most ${report.settings.limit} photos` : ''}`,
    `- **Versions**: ${Object.entries(report.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    '## Variants',
    '',
    ...report.variants.map((v) => `- \`${v.name}\`: ${v.description}`),
    '',
  ];
  for (const t of tables(report)) out.push(`## ${t.title}`, '', mdTable(t.head, t.body), '');
  const ok = report.results;
  if (ok.length > 0) {
    out.push('## Confusion counts', '', 'Rows: true class; columns: predicted class.', '');
    for (const r of ok) {
      out.push(
        `### ${r.model}, ${r.variant}`,
        '',
        mdTable(
          ['true \\ predicted', ...report.classes],
          report.classes.map((c, i) => [c, ...(r.confusion[i] ?? []).map(String)]),
        ),
        '',
      );
    }
  }
  if (report.leftOut.length > 0) {
    out.push('## Left out', '', ...report.leftOut.map((b) => `- \`${b.path}\`: ${b.reason.split('\n')[0]}`), '');
  }
  if (report.notes.length > 0) out.push('## Notes', '', ...report.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

export function robustnessJson(report: RobustnessReport): string {
  return `${JSON.stringify(report, null, 1)}\n`;
}

/** Writes the requested files atomically; returns their paths. Throws SaveError. */
export async function writeRobustnessReports(
  report: RobustnessReport,
  files: { json?: string; markdown?: string },
): Promise<string[]> {
  const written: string[] = [];
  const save = (file: string, text: string): Promise<void> => saveReportFile(file, text, written);
  if (files.json) await save(files.json, robustnessJson(report));
  if (files.markdown) await save(files.markdown, robustnessMarkdown(report));
  return written;
}
