import { describe, expect, it } from 'vitest';

import {
  computeDiffs,
  formatRobustnessTable,
  robustnessMarkdown,
  type RobustnessReport,
  type RobustnessResult,
} from '../../src/bench/robustness-report.js';
import { parseVariants, ROBUSTNESS_VARIANTS } from '../../src/bench/variant-names.js';
import { centerCropBox, largestUprightRect } from '../../src/bench/variants.js';

const classes = ['a', 'b'];

/** A result from confusion counts (rows: true class). */
function result(model: string, variant: RobustnessResult['variant'], confusion: number[][]): RobustnessResult {
  const images = confusion.flat().reduce((x, y) => x + y, 0);
  const correct = confusion.reduce((x, row, i) => x + (row[i] ?? 0), 0);
  return {
    model,
    variant,
    images,
    correct,
    accuracy: correct / images,
    f1Macro: 0.5,
    perClass: classes.map((c, i) => {
      const support = confusion[i]!.reduce((x, y) => x + y, 0);
      const ok = confusion[i]![i]!;
      return { class: c, support, correct: ok, accuracy: support ? ok / support : null, precision: 0, f1: 0 };
    }),
    confusion,
    seconds: 0.1,
  };
}

function report(): RobustnessReport {
  const results = [
    result('fp32', 'original', [
      [90, 10],
      [5, 95],
    ]),
    result('fp32', 'jpeg-q50', [
      [80, 20],
      [10, 90],
    ]),
    result('int8', 'original', [
      [90, 10],
      [6, 94],
    ]),
    result('int8', 'jpeg-q50', [
      [77, 23],
      [10, 90],
    ]),
  ];
  return {
    format: 'trt-flowers-robustness/1',
    startedAt: '2026-01-01T00:00:00.000Z',
    wallSeconds: 12,
    command: 'trt-flowers robustness ...',
    split: 'test',
    source: 'runs/x/split.json',
    images: 200,
    classes,
    variants: [
      { name: 'original', description: 'as it is' },
      { name: 'jpeg-q50', description: 'quality 50' },
    ],
    settings: { batch: 32, threads: 2, device: 'auto', limit: 0, tolerancePoints: 1 },
    models: [
      { label: 'fp32', backend: 'libtorch', precision: 'fp32', device: 'cpu', model: '/m/a.pt', status: 'ok' },
      { label: 'int8', backend: 'onnxruntime', precision: 'int8', device: 'cpu', model: '/m/a.onnx', status: 'ok' },
      {
        label: 'tensorrt int8 cuda',
        backend: 'tensorrt',
        precision: 'int8',
        device: 'cuda',
        model: '/m/a.engine',
        status: 'unavailable',
        reason: 'no TensorRT in this build\nmore',
      },
    ],
    results,
    baseline: 'fp32',
    diffs: computeDiffs(results, 'fp32', 1),
    leftOut: [],
    notes: ['a note'],
    versions: { node: '20' },
  };
}

describe('robustness report', () => {
  it('computes differences to the baseline in points and flags those over the tolerance', () => {
    const diffs = report().diffs;
    expect(diffs.map((d) => [d.model, d.variant, d.accuracyPoints, d.flagged])).toEqual([
      ['int8', 'original', -0.5, false],
      ['int8', 'jpeg-q50', -1.5, true],
    ]);
    expect(diffs[1]!.perClassPoints).toEqual({ a: -3, b: 0 });
    expect(computeDiffs(report().results, null, 1)).toEqual([]);
    expect(computeDiffs(report().results, 'fp32', 2).some((d) => d.flagged)).toBe(false);
  });

  it('prints aligned tables: accuracy, differences, per class', () => {
    const text = formatRobustnessTable(report());
    expect(text.split('\n\n').map((b) => b.split('\n')[0])).toEqual([
      'Accuracy (macro F1) on the test split, 200 photos',
      'Difference to fp32, accuracy in points (! where more than 1 point)',
      'fp32: accuracy per class (recall), correct/photos',
      'int8: accuracy per class (recall), correct/photos',
    ]);
    expect(text).toContain('fp32                92.5% (0.500)  85.0% (0.500)');
    expect(text).toContain('tensorrt int8 cuda  unavailable: no TensorRT in this build');
    expect(text).toContain('int8 - baseline      -0.5    -1.5 !');
    expect(text).toMatch(/a\s+90\.0% \(90\/100\)\s+77\.0% \(77\/100\)/);
  });

  it('writes Markdown with the variants, the tables and the confusion counts', () => {
    const md = robustnessMarkdown(report());
    expect(md).toMatch(/^# trt-flowers robustness\n/);
    expect(md).toContain('- `jpeg-q50`: quality 50');
    expect(md).toContain('| int8 - baseline | -0.5 | -1.5 ! |');
    expect(md).toContain('### int8, jpeg-q50');
    expect(md).toContain('| b | 10 | 90 |');
    expect(md).toContain('| tensorrt int8 cuda | unavailable: no TensorRT in this build |  |');
    expect(md).toContain('- a note');
  });
});

describe('variant names and geometry', () => {
  it('refuses an unknown variant with the closest name', () => {
    expect(parseVariants(['jpeg-q50', 'original', 'jpeg-q50'])).toEqual(['jpeg-q50', 'original']);
    expect(() => parseVariants(['center-crop-60'])).toThrow(
      "Unknown variant 'center-crop-60' (did you mean 'center-crop-70'?); known variants: " +
        ROBUSTNESS_VARIANTS.join(', '),
    );
    expect(() => parseVariants(['xyz'])).toThrow(/^Unknown variant 'xyz'; known/);
    expect(() => parseVariants([])).toThrow(RangeError);
  });

  it('crops the centre and the largest upright rectangle of a rotation', () => {
    expect(centerCropBox(500, 333, 0.7)).toEqual({ left: 75, top: 50, width: 350, height: 233 });
    expect(largestUprightRect(500, 333, 0)).toEqual({ width: 500, height: 333 });
    // 500 x 333 rotated by 10 degrees: (w cos - h sin) / cos 2a, (h cos - w sin) / cos 2a.
    const a = (10 * Math.PI) / 180;
    const c2 = Math.cos(2 * a);
    expect(largestUprightRect(500, 333, 10)).toEqual({
      width: Math.floor((500 * Math.cos(a) - 333 * Math.sin(a)) / c2),
      height: Math.floor((333 * Math.cos(a) - 500 * Math.sin(a)) / c2),
    });
    // A long thin image: limited by its short side.
    const thin = largestUprightRect(1000, 50, 10);
    expect(thin.height).toBeLessThan(50);
    expect(thin.width * Math.sin(a) + thin.height * Math.cos(a)).toBeLessThanOrEqual(50 + 1e-9);
  });
});
