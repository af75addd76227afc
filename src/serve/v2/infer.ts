import { firstNonFinite, type EngineInfo, type Prediction } from '../../engine/Engine.js';
import { HttpError } from '../httpErrors.js';
import type { ResolvedServeOptions } from '../options.js';
import { readyPredictor, TENSORS, tensorMetadata, type DataType, type ServedModel } from './model.js';

/**
 * The Open Inference Protocol's inference request and response, decoded: the REST (JSON and binary-data) and gRPC
 * codecs turn their wire forms into these, so the checks, the limits and the outputs are the same for every protocol.
 */
export interface InferInput {
  name: string;
  datatype: string;
  shape: number[];
  /** FP32 values, or the elements of a BYTES tensor. */
  data: Float32Array | Buffer[];
}

export interface RequestedOutput {
  name: string;
  /** Triton's classification extension: the top k classes as "score:index:label" BYTES instead of the tensor. */
  classification?: number;
  /** Send this output as binary data (REST binary-data extension; gRPC: raw_output_contents). */
  binary?: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: InferInput[];
  /** The outputs to return; absent or empty: all of them. */
  outputs?: RequestedOutput[];
  /** Send the outputs chosen by default (no `outputs`) as binary data. Defaults to false. */
  binaryOutputs?: boolean;
}

export interface InferOutput {
  name: string;
  datatype: DataType;
  shape: number[];
  data: Float32Array | Buffer[];
  binary: boolean;
}

export interface InferResult {
  modelName: string;
  modelVersion: string;
  id?: string;
  outputs: InferOutput[];
}

/** The limits of today's server that bound an inference request. */
export type InferLimits = Pick<ResolvedServeOptions, 'maxImagesPerRequest' | 'maxFileBytes'>;

const bad = (message: string): HttpError => new HttpError(400, 'ERR_BAD_REQUEST', message);

/** Checks a tensor's shape: non-negative integers, at most 8 dimensions. Returns its element count. */
export function elementCount(shape: unknown, where: string): number {
  if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(
      `${where}: \`shape\` must be a list of at most 8 non-negative integers; received ${JSON.stringify(shape)}`,
    );
  }
  return (shape as number[]).reduce((a, b) => a * b, 1);
}

/**
 * A tensor's elements from its raw little-endian bytes (the binary-data extension, gRPC's raw contents): FP32 as
 * 4-byte floats, BYTES as 4-byte lengths each followed by that many bytes.
 */
export function fromRaw(datatype: string, raw: Buffer, count: number, where: string): Float32Array | Buffer[] {
  if (datatype === 'FP32') {
    if (raw.length !== count * 4) {
      throw bad(`${where}: FP32 data of ${count} elements takes ${count * 4} bytes; received ${raw.length}`);
    }
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(raw);
    return data;
  }
  if (datatype === 'BYTES') {
    const items: Buffer[] = [];
    let at = 0;
    while (at < raw.length) {
      if (at + 4 > raw.length) throw bad(`${where}: BYTES data ends inside the length of element ${items.length}`);
      const length = raw.readUInt32LE(at);
      at += 4;
      if (at + length > raw.length) {
        throw bad(`${where}: BYTES element ${items.length} declares ${length} bytes; only ${raw.length - at} follow`);
      }
      items.push(raw.subarray(at, at + length));
      at += length;
    }
    if (items.length !== count)
      throw bad(`${where}: the shape holds ${count} elements; the data holds ${items.length}`);
    return items;
  }
  throw unsupportedType(datatype, where);
}

/** Raw little-endian bytes of an output (inverse of fromRaw). */
export function toRaw(output: InferOutput): Buffer {
  if (output.data instanceof Float32Array) {
    return Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength);
  }
  const parts: Buffer[] = [];
  for (const item of output.data) {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(item.length);
    parts.push(length, item);
  }
  return Buffer.concat(parts);
}

export function unsupportedType(datatype: unknown, where: string): HttpError {
  return bad(`${where}: datatype ${JSON.stringify(datatype)} is not supported here (this model takes FP32 or BYTES)`);
}

/** Runs an inference request on a model: checks the inputs against the model and the limits, then classifies. */
export async function infer(model: ServedModel, request: InferRequest, limits: InferLimits): Promise<InferResult> {
  const predictor = readyPredictor(model);
  const info = predictor.engine.info;
  const outputs = selectOutputs(info, request.outputs, request.binaryOutputs === true);
  if (request.inputs.length !== 1) {
    throw bad(
      `expected one input, \`${TENSORS.input}\` (FP32 [N, 3, ${info.preprocessing.size}, ` +
        `${info.preprocessing.size}]) or \`${TENSORS.image}\` (BYTES [N], encoded images); received ` +
        `${request.inputs.length}${request.inputs.length ? ` (${request.inputs.map((i) => `'${i.name}'`).join(', ')})` : ''}`,
    );
  }
  const input = request.inputs[0] as InferInput;
  let predictions: Prediction[];
  if (input.name === TENSORS.input) {
    predictions = await predictor.predictTensors(tensorImages(input, info, limits));
  } else if (input.name === TENSORS.image) {
    const images = encodedImages(input, limits);
    const named = await predictor.predict(async (add) =>
      images.forEach((bytes, i) => add({ name: `${TENSORS.image}[${i}]`, bytes })),
    );
    predictions = named.map((n) => n.prediction);
  } else {
    throw bad(`unknown input '${input.name}': this model takes \`${TENSORS.input}\` or \`${TENSORS.image}\``);
  }
  return {
    modelName: model.name,
    modelVersion: model.version,
    ...(request.id !== undefined ? { id: request.id } : {}),
    outputs: outputs.map((o) => outputTensor(o, predictions, info)),
  };
}

function countCheck(n: number, limits: InferLimits, where: string): void {
  if (n < 1) throw new HttpError(400, 'ERR_NO_FILE', `${where} holds no images (batch dimension 0)`);
  if (n > limits.maxImagesPerRequest) {
    throw new HttpError(
      400,
      'ERR_TOO_MANY_FILES',
      `${where} holds ${n} images; at most ${limits.maxImagesPerRequest} per request`,
    );
  }
}

/** The images of an FP32 input, one CHW view each, after checking shape, count and values. */
function tensorImages(input: InferInput, info: EngineInfo, limits: InferLimits): Float32Array[] {
  const where = `input '${input.name}'`;
  const size = info.preprocessing.size;
  if (input.datatype !== 'FP32') throw bad(`${where} must be FP32; received ${input.datatype}`);
  const s = input.shape;
  if (s.length !== 4 || s[1] !== 3 || s[2] !== size || s[3] !== size) {
    throw bad(`${where} must have shape [N, 3, ${size}, ${size}]; received [${s.join(', ')}]`);
  }
  const n = s[0] as number;
  countCheck(n, limits, where);
  const data = input.data as Float32Array;
  const per = 3 * size * size;
  if (data.length !== n * per) {
    throw bad(`${where}: shape [${s.join(', ')}] holds ${n * per} values; the data holds ${data.length}`);
  }
  const i = firstNonFinite(data);
  if (i >= 0) throw bad(`${where}: element ${i} (image ${Math.floor(i / per)}) is ${data[i]}; values must be finite`);
  return Array.from({ length: n }, (_, i) => data.subarray(i * per, (i + 1) * per));
}

/** The encoded images of a BYTES input, after checking shape, count and sizes. */
function encodedImages(input: InferInput, limits: InferLimits): Buffer[] {
  const where = `input '${input.name}'`;
  if (input.datatype !== 'BYTES') throw bad(`${where} must be BYTES (encoded image files); received ${input.datatype}`);
  const s = input.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1))) {
    throw bad(`${where} must have shape [N] or [N, 1]; received [${s.join(', ')}]`);
  }
  const images = input.data as Buffer[];
  countCheck(s[0] as number, limits, where);
  images.forEach((bytes, i) => {
    if (bytes.length > limits.maxFileBytes) {
      throw new HttpError(
        413,
        'ERR_BODY_TOO_LARGE',
        `${where}[${i}] is ${bytes.length} bytes, larger than the limit of ${limits.maxFileBytes} bytes per image`,
      );
    }
  });
  return images;
}

function selectOutputs(info: EngineInfo, requested: RequestedOutput[] | undefined, binary: boolean): RequestedOutput[] {
  const known = tensorMetadata(info).outputs.map((o) => o.name);
  if (!requested || requested.length === 0) return known.map((name) => ({ name, binary }));
  for (const o of requested) {
    if (!known.includes(o.name)) {
      throw bad(`unknown output '${o.name}': this model has ${known.map((k) => `'${k}'`).join(', ')}`);
    }
    if (o.classification !== undefined) {
      const c = info.classes.length;
      if (!Number.isInteger(o.classification) || o.classification < 1 || o.classification > c) {
        throw bad(
          `output '${o.name}': \`classification\` must be an integer from 1 to ${c}; received ${o.classification}`,
        );
      }
      if (o.name !== TENSORS.probabilities && o.name !== TENSORS.logits) {
        throw bad(
          `output '${o.name}': \`classification\` applies to '${TENSORS.probabilities}' or '${TENSORS.logits}'`,
        );
      }
    }
  }
  return requested;
}

function rows(predictions: Prediction[], width: number, row: (p: Prediction) => ArrayLike<number>): Float32Array {
  const out = new Float32Array(predictions.length * width);
  predictions.forEach((p, i) => out.set(row(p), i * width));
  return out;
}

function outputTensor(o: RequestedOutput, predictions: Prediction[], info: EngineInfo): InferOutput {
  const n = predictions.length;
  const classes = info.classes;
  const binary = o.binary === true;
  const probabilities = (p: Prediction) => classes.map((c) => p.probabilities[c] as number);
  const logits = (p: Prediction) => p.logits as Float32Array;
  if (o.name === TENSORS.label) {
    return {
      name: o.name,
      datatype: 'BYTES',
      shape: [n],
      data: predictions.map((p) => Buffer.from(p.predictedClass)),
      binary,
    };
  }
  if (o.name === TENSORS.embedding) {
    const e = info.embeddingSize;
    return {
      name: o.name,
      datatype: 'FP32',
      shape: [n, e],
      data: rows(predictions, e, (p) => p.embedding as Float32Array),
      binary,
    };
  }
  const values = o.name === TENSORS.probabilities ? probabilities : logits;
  if (o.classification !== undefined) {
    const k = o.classification;
    const data: Buffer[] = [];
    for (const p of predictions) {
      const v = values(p);
      const order = classes.map((_, i) => i).sort((a, b) => (v[b] as number) - (v[a] as number));
      for (const i of order.slice(0, k)) data.push(Buffer.from(`${v[i] as number}:${i}:${classes[i] as string}`));
    }
    return { name: o.name, datatype: 'BYTES', shape: [n, k], data, binary };
  }
  return {
    name: o.name,
    datatype: 'FP32',
    shape: [n, classes.length],
    data: rows(predictions, classes.length, values),
    binary,
  };
}
