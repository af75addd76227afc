/**
 * Reading and writing ONNX models: the one place that knows the ONNX protobuf schema (onnx-proto, protobufjs),
 * used by the export, the engine builder and the engine runtime.
 */
import { createRequire } from 'node:module';

import { ModelLoadError } from '../errors.js';

const require = createRequire(import.meta.url);
// onnx-proto: the ONNX schema compiled with protobufjs (CommonJS).
export const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

export type ModelProto = import('onnx-proto').onnx.ModelProto;
export type GraphProto = import('onnx-proto').onnx.GraphProto;
export type NodeProto = import('onnx-proto').onnx.INodeProto;
export type TensorProto = import('onnx-proto').onnx.ITensorProto;

/** TensorProto data types used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, FLOAT16: 10, INT32: 6, INT64: 7 } as const;

/** Decodes an ONNX ModelProto; throws ModelLoadError naming `where` for anything that is not a model with a graph. */
export function decodeModel(bytes: Uint8Array, where: string): ModelProto {
  try {
    const model = onnx.ModelProto.decode(bytes);
    if (!model.graph || (model.graph.node ?? []).length === 0) throw new Error('no graph');
    return model;
  } catch (err) {
    throw new ModelLoadError(`${where} is not a valid ONNX model (${(err as Error).message})`);
  }
}

/** The model's graph (decoded messages always have one; checked by decodeModel). */
export function graphOf(model: ModelProto): GraphProto {
  if (!model.graph) throw new ModelLoadError('the ONNX model has no graph');
  return model.graph as GraphProto;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function opsetOf(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return Number(entry?.version ?? 0);
}

/** Float32 values of an initializer (raw_data or float_data). */
export function floatValues(t: TensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new Error(`initializer ${t.name} is not float`);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData);
    return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** An initializer holding `data` as raw bytes. */
export function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

/** Sets (or replaces) metadata_props entries. */
export function setMetadataProps(model: ModelProto, entries: Record<string, string>): void {
  const props = (model.metadataProps ?? []).filter((p) => !(p.key! in entries));
  for (const [key, value] of Object.entries(entries)) props.push(onnx.StringStringEntryProto.create({ key, value }));
  model.metadataProps = props;
}

export function metadataProps(model: ModelProto): Record<string, string> {
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

/** What readOnnxInfo reports of an ONNX file. */
export interface OnnxFileInfo {
  irVersion: number;
  producer: string;
  /** The default-domain opset. */
  opset: number;
  /** metadata_props as a plain object. */
  props: Record<string, string>;
}

/** ir_version, producer, the default-domain opset and metadata_props of an ONNX file's bytes. */
export function readOnnxInfo(bytes: Uint8Array, where: string): OnnxFileInfo {
  const model = decodeModel(bytes, where);
  if (!Number(model.irVersion)) throw new ModelLoadError(`${where} is not a valid ONNX model (no IR version)`);
  return {
    irVersion: Number(model.irVersion),
    producer: model.producerName ?? '',
    opset: opsetOf(model),
    props: metadataProps(model),
  };
}

/** What a written ONNX model needs of the runtime that loads it. */
export interface OperatorSummary {
  /** Operator domains used, '' (standard ONNX) first. */
  domains: string[];
  /** True when every node is a standard ONNX operator ('' or 'ai.onnx'). */
  portable: boolean;
  /** 'any': any ONNX runtime; 'onnxruntime' when the model uses ONNX Runtime's own operators. */
  runtime: 'any' | 'onnxruntime';
  /** The non-standard operators, as 'domain:OpType'. */
  custom_ops: string[];
}

/** The operator domains of a decoded ONNX model. */
export function operatorSummary(model: ModelProto): OperatorSummary {
  const domains = new Set<string>();
  const custom = new Set<string>();
  for (const node of model.graph?.node ?? []) {
    const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
    domains.add(domain);
    if (domain !== '') custom.add(`${domain}:${node.opType ?? '?'}`);
  }
  const portable = custom.size === 0;
  return {
    domains: [...domains].sort(),
    portable,
    runtime: portable ? 'any' : 'onnxruntime',
    custom_ops: [...custom].sort(),
  };
}
