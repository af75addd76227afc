import type { DataLoader } from '../data/loader.js';
import type { SplitName } from '../data/split.js';
import { argmaxRows, classificationReport, type ClassificationReport } from '../track/metrics.js';
import { evalLosses, type EvalLosses } from './evalLosses.js';
import type { TorchModel } from '../torch/TorchModel.js';

export interface SplitEvaluation {
  losses: EvalLosses;
  report: ClassificationReport;
  /** Predicted class of every image, in split order. */
  predictions: Int32Array;
  labels: Int32Array;
  paths: string[];
  imagesPerSecond: number;
}

/** Options of a split's evaluation: the loss weights (as in training), the pairing seed, cancellation. */
export interface SplitEvalOptions {
  numClasses: number;
  ceWeight: number;
  contrastiveWeight: number;
  margin: number;
  /** Label smoothing of the cross-entropy (as in training). Defaults to 0. */
  labelSmoothing?: number;
  seed: number;
  signal?: AbortSignal;
  batchSize?: number;
}

/** Runs the model in eval mode over a whole split: losses (as in training) and classification metrics. */
export async function evaluateSplit(
  model: TorchModel,
  loader: DataLoader,
  split: SplitName,
  options: SplitEvalOptions,
): Promise<SplitEvaluation> {
  await model.setTraining(false);
  const logits: Float32Array[] = [];
  const embeddings: Float32Array[] = [];
  const labels: number[] = [];
  const paths: string[] = [];
  const started = performance.now();
  for await (const batch of loader.evaluate(split, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  })) {
    const out = await model.forward(batch.images, batch.shape);
    if (out.numClasses !== options.numClasses) {
      throw new RangeError(
        `the model has ${out.numClasses} classes but the data has ${options.numClasses}: ` +
          'export the backbone with --num-classes matching data.classes',
      );
    }
    logits.push(out.logits);
    embeddings.push(out.embedding);
    labels.push(...batch.labels);
    paths.push(...batch.paths);
  }
  const seconds = (performance.now() - started) / 1000;
  const yTrue = Int32Array.from(labels);
  return splitEvaluation(
    concat(logits),
    concat(embeddings),
    yTrue,
    paths,
    options,
    seconds > 0 ? yTrue.length / seconds : 0,
  );
}

/** Losses and classification metrics of a whole split from its outputs (logits [N, C], embeddings [N, D]). */
export async function splitEvaluation(
  logits: Float32Array,
  embedding: Float32Array,
  labels: Int32Array,
  paths: string[],
  options: SplitEvalOptions,
  imagesPerSecond: number,
): Promise<SplitEvaluation> {
  const predictions = argmaxRows(logits, options.numClasses);
  return {
    losses: await evalLosses(logits, embedding, labels, options.numClasses, options),
    report: classificationReport(labels, predictions, options.numClasses),
    predictions,
    labels,
    paths,
    imagesPerSecond,
  };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
