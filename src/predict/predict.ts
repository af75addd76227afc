import fs from 'node:fs/promises';
import path from 'node:path';

import type { Engine, Prediction } from '../engine/Engine.js';
import { isImageFile, listImages } from '../data/files.js';
import { CancelledError, DataError, TrtFlowersError } from '../errors.js';
import { pyJson } from './pyjson.js';

/** One line of predict / batch-predict output, in the original tool's keys. */
export interface PredictionRecord {
  image_path: string;
  predicted_class: string;
  confidence: number;
  /** Every class, highest probability first. */
  all_probabilities: Record<string, number>;
}

export interface ErrorRecord {
  image_path: string;
  error: string;
  code: string;
}

/** Rounds to `decimals` places (4: what the original tool printed). */
export function roundTo(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/** The output record of one prediction: probabilities sorted high to low, rounded. */
export function toRecord(imagePath: string, p: Prediction, decimals = 4): PredictionRecord {
  const sorted = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
  return {
    image_path: imagePath,
    predicted_class: p.predictedClass,
    confidence: roundTo(p.confidence, decimals),
    all_probabilities: Object.fromEntries(sorted.map(([k, v]) => [k, roundTo(v, decimals)])),
  };
}

/** Reads a file list: one path per line, blank lines and #-comments skipped, relative paths from the list's folder. */
export async function readFileList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new DataError(`file list '${file}' not found`);
  }
  const base = path.dirname(path.resolve(file));
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => (path.isAbsolute(l) ? l : path.join(base, l)));
}

export type BatchFormat = 'json' | 'csv';

export interface BatchPredictOptions {
  engine: Engine;
  /** Images to classify, in order. */
  images: readonly string[];
  /** Output file, written as results arrive. */
  outputFile: string;
  format?: BatchFormat;
  /** Images per backend call. Defaults to 32. */
  batchSize?: number;
  /** Decimals of probabilities. Defaults to 4. */
  decimals?: number;
  signal?: AbortSignal;
  /** Called after each batch. */
  onProgress?: (done: number, total: number, failed: number) => void;
}

export interface BatchPredictSummary {
  count: number;
  succeeded: number;
  failed: number;
  seconds: number;
  images_per_second: number;
  output_file: string;
  format: BatchFormat;
  /** Predictions per class. */
  classes: Record<string, number>;
  cancelled: boolean;
}

/** Lists the inputs of batch-predict: every supported image under a folder (recursive) or the files of a list. */
export async function collectInputs(options: { inputDir?: string; fileList?: string }): Promise<string[]> {
  if (options.inputDir && options.fileList)
    throw new RangeError('Give either an input folder or a file list, not both');
  if (options.inputDir) return listImages(options.inputDir);
  if (options.fileList) return readFileList(options.fileList);
  throw new RangeError('Give an input folder (--input-dir) or a file list (--file-list)');
}

/**
 * Classifies many images and streams the results to disk as they come: a JSON array with one record per line
 * (a bad image becomes {"image_path", "error", "code"} and the run goes on), or CSV. A crash or Ctrl-C loses
 * nothing already written; a cancelled run closes the file properly and reports `cancelled`.
 */
export async function batchPredict(options: BatchPredictOptions): Promise<BatchPredictSummary> {
  const { engine, images, outputFile } = options;
  const format = options.format ?? 'json';
  if (format !== 'json' && format !== 'csv')
    throw new RangeError(`Expected 'json' or 'csv' for format, got '${String(format)}'`);
  const batchSize = options.batchSize ?? 32;
  const decimals = options.decimals ?? 4;
  const classes = engine.info.classes;
  const counts: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  await fs.mkdir(path.dirname(path.resolve(outputFile)), { recursive: true });
  const out = await fs.open(outputFile, 'w');
  const started = performance.now();
  let succeeded = 0;
  let failed = 0;
  let first = true;
  let cancelled = false;
  const write = async (text: string): Promise<void> => {
    await out.write(text);
  };
  const writeRecord = async (rec: PredictionRecord | ErrorRecord): Promise<void> => {
    if (format === 'json') {
      await write(`${first ? '' : ',\n'}  ${pyJson(rec)}`);
    } else if ('error' in rec) {
      await write(`${[csv(rec.image_path), '', '', ...classes.map(() => ''), csv(rec.error)].join(',')}\n`);
    } else {
      const probs = classes.map((c) => String(rec.all_probabilities[c] ?? ''));
      await write(
        `${[csv(rec.image_path), csv(rec.predicted_class), String(rec.confidence), ...probs, ''].join(',')}\n`,
      );
    }
    first = false;
  };

  // Decodes one chunk; each image on its own so one bad file fails alone.
  const prepare = async (chunk: readonly string[]) =>
    Promise.all(
      chunk.map(async (file) => {
        try {
          return { file, tensor: await engine.preprocess([file], options.signal) };
        } catch (err) {
          if (options.signal?.aborted) throw new CancelledError();
          return { file, error: err as Error };
        }
      }),
    );

  try {
    await write(
      format === 'json'
        ? '[\n'
        : `${['image_path', 'predicted_class', 'confidence', ...classes, 'error'].map(csv).join(',')}\n`,
    );
    let next: ReturnType<typeof prepare> | undefined;
    for (let start = 0; start < images.length; start += batchSize) {
      if (options.signal?.aborted) {
        cancelled = true;
        break;
      }
      const prepared = await (next ?? prepare(images.slice(start, start + batchSize)));
      const following = start + batchSize;
      next = following < images.length ? prepare(images.slice(following, following + batchSize)) : undefined;
      next?.catch(() => undefined);
      const good = prepared.filter(
        (p): p is { file: string; tensor: { data: Float32Array; shape: readonly [number, number, number, number] } } =>
          'tensor' in p && p.tensor !== undefined,
      );
      let predictions: Prediction[] = [];
      if (good.length > 0) {
        const [, c, h, w] = good[0]!.tensor.shape;
        const data = new Float32Array(good.length * c * h * w);
        good.forEach((g, i) => data.set(g.tensor.data, i * c * h * w));
        predictions = await engine.infer({ data, shape: [good.length, c, h, w] });
      }
      let k = 0;
      for (const p of prepared) {
        if ('error' in p && p.error) {
          failed++;
          const code = p.error instanceof TrtFlowersError ? p.error.code : 'ERR_INVALID_IMAGE';
          await writeRecord({ image_path: p.file, error: p.error.message, code });
        } else {
          const pred = predictions[k++] as Prediction;
          succeeded++;
          counts[pred.predictedClass] = (counts[pred.predictedClass] ?? 0) + 1;
          await writeRecord(toRecord(p.file, pred, decimals));
        }
      }
      options.onProgress?.(succeeded + failed, images.length, failed);
    }
  } catch (err) {
    if (err instanceof CancelledError || options.signal?.aborted) cancelled = true;
    else {
      await finish();
      throw err;
    }
  }
  await finish();
  const seconds = (performance.now() - started) / 1000;
  return {
    count: succeeded + failed,
    succeeded,
    failed,
    seconds,
    images_per_second: seconds > 0 ? (succeeded + failed) / seconds : 0,
    output_file: path.resolve(outputFile),
    format,
    classes: counts,
    cancelled,
  };

  async function finish(): Promise<void> {
    try {
      if (format === 'json') await out.write(`${first ? '' : '\n'}]\n`);
    } finally {
      await out.close();
    }
  }
}

function csv(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export { isImageFile };
