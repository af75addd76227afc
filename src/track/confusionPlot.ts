/** Confusion-matrix heatmap: counts in the cells, class names on both axes, color = share of the true class. */
import type { TopLevelSpec } from 'vega-lite';

import { describe } from '../util/describe.js';
import { BASE_CONFIG, type PlotFiles, renderVegaLite, type RenderOptions } from './vegaRender.js';

export interface ConfusionMatrixOptions extends RenderOptions {
  /** Line under the title (e.g. accuracy, split, epoch). Defaults to none. */
  subtitle?: string;
  /** Cell side in px. Defaults to 64 (48 above 10 classes, 28 above 20). */
  cellSize?: number;
}

/** Builds the Vega-Lite spec; throws RangeError when the matrix is not classes × classes of counts. */
export function confusionMatrixSpec(
  matrix: readonly (readonly number[])[],
  classes: readonly string[],
  title = 'Confusion matrix',
  options: ConfusionMatrixOptions = {},
): TopLevelSpec {
  const n = classes.length;
  if (n === 0 || matrix.length !== n || matrix.some((row) => row.length !== n)) {
    const shape = Array.isArray(matrix)
      ? `${matrix.length} rows of length ${matrix.map((r) => r?.length).join('/')}`
      : describe(matrix);
    throw new RangeError(`Expected a ${n} × ${n} \`matrix\` (one row and column per class) but received ${shape}`);
  }
  if (new Set(classes).size !== n) throw new RangeError('Expected distinct names in `classes`');
  const values: { actual: string; predicted: string; count: number; share: number }[] = [];
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      if (!Number.isFinite(count) || count < 0) {
        throw new RangeError(`Expected non-negative counts in \`matrix\` but received ${count} at [${i}][${j}]`);
      }
      values.push({
        actual: classes[i] as string,
        predicted: classes[j] as string,
        count,
        share: total ? count / total : 0,
      });
    });
  });
  const cell = options.cellSize ?? (n > 20 ? 28 : n > 10 ? 48 : 64);
  const longest = Math.max(...classes.map((c) => c.length));
  const axis = { labelFontSize: n > 20 ? 10 : 12, labelLimit: 200, domain: false, ticks: false };
  const x = {
    field: 'predicted',
    type: 'ordinal',
    sort: [...classes],
    title: 'predicted',
    axis: { ...axis, orient: 'bottom', labelAngle: longest > 4 || n > 10 ? -40 : 0 },
  };
  const y = { field: 'actual', type: 'ordinal', sort: [...classes], title: 'true', axis };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.subtitle ? { text: title, subtitle: options.subtitle } : { text: title },
    config: { ...BASE_CONFIG, view: { stroke: null } },
    data: { values },
    width: cell * n,
    height: cell * n,
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          x,
          y,
          color: {
            field: 'share',
            type: 'quantitative',
            title: 'of true class',
            // White for empty cells (the 'blues' scheme starts light blue), dark blue for a full row.
            scale: { domain: [0, 0.5, 1], range: ['#f7fbff', '#6baed6', '#08306b'] },
            legend: { format: '.0%', gradientLength: Math.max(120, cell * n - 40) },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: n > 20 ? 9 : n > 10 ? 11 : 14, fontWeight: 'bold' },
        encoding: {
          x,
          y,
          text: { field: 'count', type: 'quantitative', format: 'd' },
          color: { condition: { test: 'datum.share > 0.55', value: 'white' }, value: '#1a1a1a' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Writes a confusion-matrix heatmap (`matrix[true][predicted]`) to `<outBase>.svg` and `<outBase>.png`. */
export async function renderConfusionMatrix(
  matrix: readonly (readonly number[])[],
  classes: readonly string[],
  outBase: string,
  title = 'Confusion matrix',
  options: ConfusionMatrixOptions = {},
): Promise<PlotFiles> {
  return renderVegaLite(confusionMatrixSpec(matrix, classes, title, options), outBase, options);
}
