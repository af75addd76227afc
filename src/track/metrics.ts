/**
 * Classification metrics from true and predicted labels. Every ratio with a zero denominator is defined as 0 (no
 * NaN), like scikit-learn's `zero_division=0`.
 */
import { describe } from '../util/describe.js';

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Samples of this class in the true labels. */
  support: number;
  /** Samples predicted as this class. */
  predicted: number;
}

export interface ClassificationReport {
  /** Samples counted. */
  count: number;
  accuracy: number;
  /** F1 over all samples' true/false positives (equals accuracy for single-label classification). */
  f1Micro: number;
  /**
   * Unweighted mean of the per-class F1 over the classes that occur in the true or the predicted labels
   * (scikit-learn's default label set); 0 when there are none.
   */
  f1Macro: number;
  precisionMacro: number;
  recallMacro: number;
  /** Per-class values, indexed by class. */
  perClass: ClassMetrics[];
  /** counts[true][predicted]. */
  confusion: number[][];
}

const ratio = (num: number, den: number): number => (den > 0 ? num / den : 0);

function checkLabels(yTrue: Int32Array, yPred: Int32Array, numClasses: number): void {
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`Expected a positive integer for \`numClasses\` but received ${describe(numClasses)}`);
  }
  if (!(yTrue instanceof Int32Array) || !(yPred instanceof Int32Array)) {
    throw new TypeError('Expected Int32Array for `yTrue` and `yPred`');
  }
  if (yTrue.length !== yPred.length) {
    throw new RangeError(
      `Expected \`yTrue\` and \`yPred\` of equal length but received ${yTrue.length} and ${yPred.length}`,
    );
  }
}

/** counts[true][predicted] for labels in [0, numClasses). Throws RangeError for a label out of range. */
export function confusionMatrix(yTrue: Int32Array, yPred: Int32Array, numClasses: number): number[][] {
  checkLabels(yTrue, yPred, numClasses);
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i] as number;
    const p = yPred[i] as number;
    if (t < 0 || t >= numClasses || p < 0 || p >= numClasses) {
      throw new RangeError(
        `Expected labels in [0, ${numClasses}) but received true ${t} / predicted ${p} at index ${i}`,
      );
    }
    const row = m[t] as number[];
    row[p] = (row[p] as number) + 1;
  }
  return m;
}

/** Accuracy, micro/macro F1 and per-class precision/recall/F1/support. */
export function classificationReport(yTrue: Int32Array, yPred: Int32Array, numClasses: number): ClassificationReport {
  const confusion = confusionMatrix(yTrue, yPred, numClasses);
  const count = yTrue.length;
  let correct = 0;
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < numClasses; c++) {
    const row = confusion[c] as number[];
    const tp = row[c] as number;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + (r[c] as number), 0);
    correct += tp;
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    perClass.push({ precision, recall, f1: ratio(2 * precision * recall, precision + recall), support, predicted });
  }
  const present = perClass.filter((m) => m.support > 0 || m.predicted > 0);
  const mean = (key: 'precision' | 'recall' | 'f1'): number =>
    ratio(
      present.reduce((a, m) => a + m[key], 0),
      present.length,
    );
  // Micro: every wrong sample is one FP (for its prediction) and one FN (for its true class).
  const wrong = count - correct;
  const f1Micro = ratio(2 * correct, 2 * correct + 2 * wrong);
  return {
    count,
    accuracy: ratio(correct, count),
    f1Micro,
    f1Macro: mean('f1'),
    precisionMacro: mean('precision'),
    recallMacro: mean('recall'),
    perClass,
    confusion,
  };
}

/** The index of the largest logit of each row of a [rows, numClasses] matrix. */
export function argmaxRows(logits: Float32Array, numClasses: number): Int32Array {
  if (!Number.isSafeInteger(numClasses) || numClasses < 1 || logits.length % numClasses !== 0) {
    throw new RangeError(
      `Expected \`logits\` length (${logits.length}) to be a multiple of \`numClasses\` (${String(numClasses)})`,
    );
  }
  const rows = logits.length / numClasses;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      const v = logits[r * numClasses + c] as number;
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}
