import fs from 'node:fs/promises';
import path from 'node:path';

import { sha256File } from '../util/hash.js';
import { writeFileAtomic } from '../util/fs.js';
import { argmax, runPaired } from '../engine/compare.js';
import { Engine } from '../engine/Engine.js';
import { listImages, spread } from '../data/files.js';
import type { ModelMetadata } from '../data/metadata.js';
import { ExportError, ModelLoadError } from '../errors.js';
import { runPythonStep, type PythonRunOptions } from '../util/python.js';

/** Options of exportOnnx. */
export interface ExportOnnxOptions extends PythonRunOptions {
  /** TorchScript checkpoint (e.g. runs/<id>/checkpoints/best/model.pt). */
  checkpoint: string;
  /** Output .onnx file. */
  out: string;
  /** ONNX opset; defaults to the highest the installed torch exports (17 for torch 1.13). At least 13. */
  opset?: number;
  /** A fixed batch size instead of the dynamic batch axis. */
  staticBatch?: number;
  /**
   * Real photos for the verification: a list of files or a folder (searched recursively, `verifyCount` taken
   * evenly from it). Required unless `verify` is false.
   */
  verifyImages?: string | readonly string[];
  /** Photos used from a folder. Defaults to 32. */
  verifyCount?: number;
  /** Largest accepted |logit difference| between libtorch and ONNX Runtime. Defaults to 1e-4. */
  tolerance?: number;
  /** Run the verification. Defaults to true. */
  verify?: boolean;
  /** Called with progress lines (Python output, verification steps). */
  onLog?: (line: string) => void;
}

/** The libtorch-vs-ONNX Runtime comparison on real photos. */
export interface OnnxVerification {
  images: number;
  tolerance: number;
  max_abs_diff_logits: number;
  max_abs_diff_embedding: number;
  mean_abs_diff_logits: number;
  top1_agreement: number;
  passed: boolean;
  /** Images whose top-1 class differs, with both answers. */
  disagreements: { image: string; libtorch: string; onnxruntime: string }[];
  libtorch_ms: number;
  onnxruntime_ms: number;
}

/** What exportOnnx wrote; also saved as JSON beside the model (<out>.export.json). */
export interface ExportOnnxReport {
  out: string;
  checkpoint: string;
  checkpoint_sha256: string;
  opset: number;
  max_opset: number;
  dynamic_batch: boolean;
  static_batch: number | null;
  input: string;
  outputs: string[];
  image_size: number;
  bytes: number;
  torch: string;
  onnx: string;
  onnxruntime: string;
  checker: string;
  metadata: ModelMetadata;
  verification: OnnxVerification | null;
  report: string;
}

/** Where the export report of `out` goes: models/x.onnx → models/x.export.json. */
export function exportReportPath(out: string): string {
  return out.replace(/\.onnx$/i, '') + '.export.json';
}

/**
 * Exports a TorchScript checkpoint to ONNX (scripts/export_onnx.py: torch.onnx, ONNX checker, metadata_props with
 * classes, preprocessing, the checkpoint's sha256 and run id), then verifies it: the same real photos through
 * libtorch and ONNX Runtime must agree within `tolerance` on every logit and on every top-1 class. The model
 * reaches `out` only when it verifies; the report is written beside it either way. Rejects with ExportError.
 */
export async function exportOnnx(options: ExportOnnxOptions): Promise<ExportOnnxReport> {
  const { checkpoint, out } = options;
  if (typeof checkpoint !== 'string' || checkpoint === '') throw new TypeError('Expected a checkpoint path');
  if (typeof out !== 'string' || !out.toLowerCase().endsWith('.onnx')) {
    throw new RangeError(`Expected an output path ending in .onnx but received '${String(out)}'`);
  }
  const tolerance = options.tolerance ?? 1e-4;
  const log = options.onLog ?? (() => undefined);
  const verify = options.verify !== false;
  let images: string[] = [];
  if (verify) {
    if (options.verifyImages === undefined) {
      throw new ExportError(
        'the export is verified on real photos: pass verifyImages (--verify-images DIR), or verify: false',
      );
    }
    images =
      typeof options.verifyImages === 'string'
        ? spread(await listImages(options.verifyImages), options.verifyCount ?? 32)
        : [...options.verifyImages];
    if (images.length === 0)
      throw new ExportError(`no images to verify the export with in ${String(options.verifyImages)}`);
  }

  let torchEngine: Engine;
  try {
    torchEngine = await Engine.load(checkpoint, { backend: 'libtorch', device: 'cpu', warmup: true });
  } catch (err) {
    if (err instanceof ModelLoadError) throw new ExportError(`cannot export: ${err.message}`, { cause: err });
    throw err;
  }
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.unverified-${process.pid}.onnx`);
  try {
    const sha = await sha256File(checkpoint);
    const metadata: ModelMetadata = {
      ...torchEngine.info.metadata,
      embedding_size: torchEngine.info.embeddingSize,
      source_checkpoint: path.basename(checkpoint),
      source_sha256: sha,
      exported_at: new Date().toISOString(),
      ...(options.staticBatch ? { static_batch: options.staticBatch } : {}),
    };
    log(`exporting ${checkpoint} (sha256 ${sha.slice(0, 12)}) to ONNX`);
    const py = await runPythonStep<{
      opset: number;
      max_opset: number;
      torch: string;
      onnx: string;
      outputs: string[];
      dynamic_batch: boolean;
      static_batch: number | null;
      bytes: number;
      checker: string;
    }>(
      'export_onnx.py',
      [
        '--checkpoint',
        checkpoint,
        '--out',
        tmp,
        '--image-size',
        String(metadata.preprocessing.size),
        '--metadata',
        JSON.stringify(metadata),
        ...(options.opset ? ['--opset', String(options.opset)] : []),
        ...(options.staticBatch ? ['--static-batch', String(options.staticBatch)] : []),
      ],
      { ...options, onStderr: (line) => log(line) },
    );

    let verification: OnnxVerification | null = null;
    let ortVersion = '';
    {
      await using ortEngine = await Engine.load(tmp, { backend: 'onnxruntime', device: 'cpu' });
      ortVersion = ortEngine.info.versions.onnxruntime ?? '';
      if (verify) {
        log(`verifying on ${images.length} photos: libtorch vs ONNX Runtime ${ortVersion}`);
        verification = await compareEngines(torchEngine, ortEngine, images, tolerance);
      }
    }
    const report: ExportOnnxReport = {
      out: path.resolve(out),
      checkpoint: path.resolve(checkpoint),
      checkpoint_sha256: sha,
      opset: py.opset,
      max_opset: py.max_opset,
      dynamic_batch: py.dynamic_batch,
      static_batch: py.static_batch,
      input: 'input',
      outputs: py.outputs,
      image_size: metadata.preprocessing.size,
      bytes: py.bytes,
      torch: py.torch,
      onnx: py.onnx,
      onnxruntime: ortVersion,
      checker: py.checker,
      metadata,
      verification,
      report: path.resolve(exportReportPath(out)),
    };
    await writeFileAtomic(report.report, `${JSON.stringify(report, null, 2)}\n`);
    if (verification && !verification.passed) {
      throw new ExportError(
        `the ONNX export does not match the checkpoint: max |logit diff| ${verification.max_abs_diff_logits.toExponential(2)} ` +
          `(tolerance ${tolerance}), top-1 agreement ${(verification.top1_agreement * 100).toFixed(1)}% on ` +
          `${verification.images} photos; nothing written to ${out} (report: ${report.report})`,
      );
    }
    await fs.rename(tmp, out);
    return report;
  } finally {
    await fs.rm(tmp, { force: true });
    await torchEngine.dispose();
  }
}

/** Runs the same photos through two engines and compares logits, embeddings and top-1. */
export async function compareEngines(
  a: Engine,
  b: Engine,
  images: readonly string[],
  tolerance: number,
  batchSize = 16,
): Promise<OnnxVerification> {
  let maxLogits = 0;
  let maxEmbedding = 0;
  let sumLogits = 0;
  let countLogits = 0;
  let agree = 0;
  let msA = 0;
  let msB = 0;
  const disagreements: OnnxVerification['disagreements'] = [];
  const classes = a.info.classes;
  const k = classes.length;
  await runPaired(a, b, images, { batchSize }, (batch) => {
    msA += batch.msA;
    msB += batch.msB;
    const { a: outA, b: outB } = batch;
    for (let i = 0; i < outA.logits.length; i++) {
      const d = Math.abs((outA.logits[i] as number) - (outB.logits[i] as number));
      maxLogits = Math.max(maxLogits, Number.isNaN(d) ? Infinity : d);
      sumLogits += d;
      countLogits++;
    }
    for (let i = 0; i < outA.embedding.length; i++) {
      const d = Math.abs((outA.embedding[i] as number) - (outB.embedding[i] as number));
      maxEmbedding = Math.max(maxEmbedding, Number.isNaN(d) ? Infinity : d);
    }
    for (const [n, index] of batch.indices.entries()) {
      const ia = argmax(outA.logits.subarray(n * k, (n + 1) * k));
      const ib = argmax(outB.logits.subarray(n * k, (n + 1) * k));
      if (ia === ib) agree++;
      else
        disagreements.push({
          image: images[index] as string,
          libtorch: classes[ia] ?? '?',
          onnxruntime: classes[ib] ?? '?',
        });
    }
  });
  const top1 = images.length > 0 ? agree / images.length : 0;
  return {
    images: images.length,
    tolerance,
    max_abs_diff_logits: maxLogits,
    max_abs_diff_embedding: maxEmbedding,
    mean_abs_diff_logits: countLogits > 0 ? sumLogits / countLogits : 0,
    top1_agreement: top1,
    passed: maxLogits <= tolerance && top1 === 1,
    disagreements,
    libtorch_ms: msA,
    onnxruntime_ms: msB,
  };
}
