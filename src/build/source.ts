/** The FP32 ONNX model an engine is built from. */
import fs from 'node:fs/promises';

import { ModelLoadError } from '../errors.js';
import { sha256File } from '../util/hash.js';
import { decodeModel, metadataProps } from '../onnx/model.js';
import { parseMetadataJson, type ModelMetadata } from '../data/metadata.js';

/** An FP32 ONNX model read for building: the decoded model, its metadata_props and trt-flowers metadata. */
export interface SourceModel {
  model: ReturnType<typeof decodeModel>;
  props: Record<string, string>;
  metadata: ModelMetadata;
  /** The file's sha256 (hex). */
  sha: string;
  /** The batch of a static-batch export, else null. */
  staticBatch: number | null;
}

/**
 * Reads and decodes the FP32 ONNX model an engine is built from, with its trt-flowers metadata. Rejects with
 * ModelLoadError (missing, corrupt, or exported without trt-flowers metadata).
 */
export async function readSourceModel(modelPath: string): Promise<SourceModel> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(modelPath);
  } catch {
    throw new ModelLoadError(`model file '${modelPath}' not found`);
  }
  const model = decodeModel(bytes, `'${modelPath}'`);
  const props = metadataProps(model);
  if (!props.trt_flowers) {
    throw new ModelLoadError(
      `'${modelPath}' has no trt-flowers metadata (classes, preprocessing): export it with \`trt-flowers export-onnx\``,
    );
  }
  const metadata = parseMetadataJson(props.trt_flowers, modelPath);
  if (metadata.engine !== undefined) {
    const what = metadata.portable === false ? ", with ONNX Runtime's own operators," : '';
    throw new ModelLoadError(
      `'${modelPath}' is already a built ${String(metadata.precision ?? '')} ${String(metadata.engine)} engine${what} ` +
        'not an exported model: build engines from the FP32 model of `trt-flowers export-onnx`',
    );
  }
  const sha = await sha256File(modelPath);
  const staticBatch = typeof metadata.static_batch === 'number' ? metadata.static_batch : null;
  return { model, props, metadata, sha, staticBatch };
}
