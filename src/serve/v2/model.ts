import type { EngineInfo } from '../../engine/Engine.js';
import { HttpError } from '../httpErrors.js';
import type { Predictor } from '../Predictor.js';
import { TRITON_PLATFORMS } from '../triton/platforms.js';

/**
 * One model version as the Open Inference Protocol sees it: a name, a version and, once loaded and warmed up, the
 * predictor that serves it.
 */
export interface ServedModel {
  readonly name: string;
  readonly version: string;
  /** The predictor once the model is ready, else undefined. */
  predictor(): Predictor | undefined;
  /** The engine's description once it is loaded, else undefined. */
  info(): EngineInfo | undefined;
  /** Why the model is not ready (loading, failed: ...), for error messages. */
  notReadyReason(): string;
  /** The model's own configuration (a repository's config.pbtxt), when it has one. */
  config?(): Record<string, unknown>;
}

/** Finds served models by name and version; the server's one model, or the models of a repository. */
export interface ModelLookup {
  /** Every version of a model, newest first (empty: no such model). */
  versions(name: string): readonly ServedModel[];
}

/** Input and output names of the protocol, the same over REST and gRPC and in exported Triton configurations. */
export const TENSORS = {
  /** FP32 [N, 3, size, size], preprocessed as the model's metadata says. */
  input: 'input',
  /** BYTES [N]: encoded image files (JPEG, PNG, WebP, TIFF, BMP), decoded and preprocessed by the server. */
  image: 'image',
  /** FP32 [N, classes]: softmax probabilities in the model's class order. */
  probabilities: 'probabilities',
  /** FP32 [N, classes]: raw logits. */
  logits: 'logits',
  /** FP32 [N, embedding size]: the embedding the classifier head reads. */
  embedding: 'embedding',
  /** BYTES [N]: the predicted class name. */
  label: 'label',
} as const;

export type DataType = 'FP32' | 'BYTES';

export interface TensorMetadata {
  name: string;
  datatype: DataType;
  shape: number[];
}

/** The model's inputs and outputs with their shapes (-1: any batch size). */
export function tensorMetadata(info: EngineInfo): { inputs: TensorMetadata[]; outputs: TensorMetadata[] } {
  const size = info.preprocessing.size;
  const classes = info.classes.length;
  return {
    inputs: [
      { name: TENSORS.input, datatype: 'FP32', shape: [-1, 3, size, size] },
      { name: TENSORS.image, datatype: 'BYTES', shape: [-1] },
    ],
    outputs: [
      { name: TENSORS.probabilities, datatype: 'FP32', shape: [-1, classes] },
      { name: TENSORS.logits, datatype: 'FP32', shape: [-1, classes] },
      ...(info.embeddingSize > 0
        ? [{ name: TENSORS.embedding, datatype: 'FP32' as const, shape: [-1, info.embeddingSize] }]
        : []),
      { name: TENSORS.label, datatype: 'BYTES', shape: [-1] },
    ],
  };
}

/** Triton's platform names for the backends. */
export function platformOf(info: EngineInfo): string {
  return TRITON_PLATFORMS[info.backend].platform;
}

/** The model metadata response: the same fields over REST (JSON) and gRPC (ModelMetadataResponse). */
export function modelMetadata(
  model: ServedModel,
  all: readonly ServedModel[],
  info: EngineInfo,
): { name: string; versions: string[]; platform: string; inputs: TensorMetadata[]; outputs: TensorMetadata[] } {
  return { name: model.name, versions: all.map((m) => m.version), platform: platformOf(info), ...tensorMetadata(info) };
}

/**
 * The model version a request names: `version` empty or absent means the newest. Throws 404 naming the model or
 * the version.
 */
export function findModel(lookup: ModelLookup, name: string, version?: string): ServedModel {
  const versions = lookup.versions(name);
  if (versions.length === 0) throw new HttpError(404, 'ERR_MODEL_NOT_FOUND', `unknown model '${name}'`);
  if (!version) return versions[0] as ServedModel;
  const found = versions.find((m) => m.version === version);
  if (!found) {
    throw new HttpError(
      404,
      'ERR_MODEL_NOT_FOUND',
      `unknown version '${version}' of model '${name}' (versions: ${versions.map((m) => m.version).join(', ')})`,
    );
  }
  return found;
}

/** The engine description of a loaded model, else 503. */
export function loadedInfo(model: ServedModel): EngineInfo {
  const info = model.info();
  if (!info) {
    throw new HttpError(
      503,
      'ERR_NOT_READY',
      `model '${model.name}' version ${model.version} is not loaded: ${model.notReadyReason()}`,
      { 'retry-after': '1' },
    );
  }
  return info;
}

/**
 * The model's configuration as Triton's model_config describes it (the model configuration extension's JSON form):
 * inputs and outputs without the batch dimension, max_batch_size, dynamic batching and instance groups of the
 * server that serves it.
 */
export function modelConfig(
  name: string,
  info: EngineInfo,
  batching: { maxBatch: number; maxWaitMs: number; concurrency: number },
): Record<string, unknown> {
  const { inputs, outputs } = tensorMetadata(info);
  const dims = (t: TensorMetadata) => (t.shape.length > 1 ? t.shape.slice(1) : [1]);
  const tensor = (t: TensorMetadata) => ({
    name: t.name,
    data_type: t.datatype === 'FP32' ? 'TYPE_FP32' : 'TYPE_STRING',
    dims: dims(t),
  });
  return {
    name,
    platform: platformOf(info),
    max_batch_size: batching.maxBatch,
    input: inputs.map(tensor),
    output: outputs.map(tensor),
    dynamic_batching: { max_queue_delay_microseconds: batching.maxWaitMs * 1000 },
    instance_group: [{ count: batching.concurrency, kind: info.device.startsWith('cuda') ? 'KIND_GPU' : 'KIND_CPU' }],
    parameters: {
      classes: { string_value: info.classes.join(',') },
      preprocessing: { string_value: JSON.stringify(info.preprocessing) },
    },
  };
}

/** The predictor of a ready model, else 503 saying why it is not ready. */
export function readyPredictor(model: ServedModel): Predictor {
  const p = model.predictor();
  if (!p) {
    throw new HttpError(
      503,
      'ERR_NOT_READY',
      `model '${model.name}' version ${model.version} is not ready: ${model.notReadyReason()}`,
      { 'retry-after': '1' },
    );
  }
  return p;
}
