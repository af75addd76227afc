/**
 * The Q/DQ model TensorRT takes for INT8 (TensorRT 10 and 11): the same calibrated tensors as ONNX Runtime's model
 * (quantize.ts: a pair after every op, shared scales through Slice / Flatten / MaxPool ...), but in TensorRT's
 * scheme, which is symmetric: int8 activations with zero point 0 and scale amax / 127, int8 weights per output
 * channel (Conv) or per tensor (Gemm) behind a DequantizeLinear, biases left in float for TensorRT to fuse.
 */
import { createRequire } from 'node:module';

import type { Range } from './calibration.js';
import { floatValues, opsetOf, type QuantizationPlan, type QuantizeReport } from './quantize.js';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

type ModelProto = import('onnx-proto').onnx.ModelProto;
type NodeProto = import('onnx-proto').onnx.INodeProto;
type TensorProto = import('onnx-proto').onnx.ITensorProto;

const FLOAT = 1;
const INT8 = 3;

/** The symmetric int8 scale of a range: its largest magnitude over 127 (1 for an all-zero tensor). */
export function symmetricScale(range: Range): number {
  const amax = Math.max(Math.abs(range.min), Math.abs(range.max));
  return amax > 0 ? amax / 127 : 1;
}

function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function node(opType: string, inputs: string[], outputs: string[], name: string, axis?: number): NodeProto {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    name,
    attribute: axis === undefined ? [] : [onnx.AttributeProto.create({ name: 'axis', i: axis, type: 2 })],
  });
}

/**
 * Writes TensorRT's Q/DQ model in place. `model` must have been through prepareForQuantization and `plan` made from
 * it; `ranges` holds the calibrated range of every tensor of plan.calibrated. Opset 13+ (per-channel
 * DequantizeLinear).
 */
export function quantizeForTensorRT(
  model: ModelProto,
  plan: QuantizationPlan,
  ranges: ReadonlyMap<string, Range>,
): QuantizeReport {
  if (opsetOf(model) < 13) {
    throw new RangeError(
      `INT8 needs an ONNX model of opset 13 or later (this one is ${opsetOf(model)}): re-export with --opset 13+`,
    );
  }
  const graph = model.graph;
  if (!graph) throw new RangeError('the ONNX model has no graph');
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name as string, t]));
  const newInits: TensorProto[] = [];
  let seq = 0;
  const uid = (base: string): string => `${base}__trt${seq++}`;

  // One scale initializer (and int8 zero point) per calibrated tensor; shared tensors reuse their source's.
  const params = new Map<string, { scale: string; zeroPoint: string }>();
  const paramsOf = (t: string): { scale: string; zeroPoint: string } => {
    const have = params.get(t);
    if (have) return have;
    const source = plan.shared.get(t);
    if (source) {
      const p = paramsOf(source);
      params.set(t, p);
      return p;
    }
    const range = ranges.get(t);
    if (!range) throw new Error(`no calibrated range for tensor '${t}'`);
    const p = { scale: uid(`${t}_scale`), zeroPoint: uid(`${t}_zero_point`) };
    newInits.push(tensor(p.scale, FLOAT, [], Float32Array.of(symmetricScale(range))));
    newInits.push(tensor(p.zeroPoint, INT8, [], Int8Array.of(0)));
    params.set(t, p);
    return p;
  };

  const toQuantize = new Set([...plan.calibrated, ...plan.shared.keys()]);
  const dq = new Map<string, string>();
  const qdq = (t: string): NodeProto[] => {
    const p = paramsOf(t);
    const q = uid(`${t}_quantized`);
    const d = uid(`${t}_dequantized`);
    dq.set(t, d);
    return [
      node('QuantizeLinear', [t, p.scale, p.zeroPoint], [q], uid(`${t}_QuantizeLinear`)),
      node('DequantizeLinear', [q, p.scale, p.zeroPoint], [d], uid(`${t}_DequantizeLinear`)),
    ];
  };

  const weighted = new Set(plan.weighted);
  let convs = 0;
  let gemms = 0;
  const out: NodeProto[] = [];
  for (const i of graph.input ?? []) if (toQuantize.has(i.name as string)) out.push(...qdq(i.name as string));
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((i) => dq.get(i) ?? i);
    if (weighted.has(n)) {
      const w = initializers.get(n.input[1] as string) as TensorProto;
      const values = floatValues(w);
      const dims = (w.dims ?? []).map(Number);
      const perChannel = n.opType === 'Conv';
      const channels = perChannel ? (dims[0] as number) : 1;
      const per = values.length / channels;
      const scales = new Float32Array(channels);
      const q = new Int8Array(values.length);
      for (let c = 0; c < channels; c++) {
        let amax = 0;
        for (let k = c * per; k < (c + 1) * per; k++) amax = Math.max(amax, Math.abs(values[k] as number));
        const s = amax > 0 ? amax / 127 : 1;
        scales[c] = s;
        for (let k = c * per; k < (c + 1) * per; k++) {
          q[k] = Math.max(-127, Math.min(127, Math.round((values[k] as number) / s)));
        }
      }
      const wq = uid(`${w.name}_quantized`);
      const ws = uid(`${w.name}_scale`);
      const wz = uid(`${w.name}_zero_point`);
      const wd = uid(`${w.name}_dequantized`);
      newInits.push(tensor(wq, INT8, dims, q));
      newInits.push(tensor(ws, FLOAT, perChannel ? [channels] : [], scales));
      newInits.push(tensor(wz, INT8, perChannel ? [channels] : [], new Int8Array(channels)));
      out.push(
        node('DequantizeLinear', [wq, ws, wz], [wd], uid(`${w.name}_DequantizeLinear`), perChannel ? 0 : undefined),
      );
      n.input[1] = wd;
      if (perChannel) convs++;
      else gemms++;
    }
    out.push(n);
    for (const o of n.output ?? []) if (toQuantize.has(o)) out.push(...qdq(o));
  }
  graph.node = out;
  const used = new Set(out.flatMap((n) => n.input ?? []));
  graph.initializer = [...(graph.initializer ?? []).filter((t) => used.has(t.name as string)), ...newInits];
  return {
    quantizedTensors: plan.calibrated.length,
    sharedTensors: plan.shared.size,
    quantizedConvs: convs,
    quantizedGemms: gemms,
    keptFloat: plan.keptFloat,
    identitiesRemoved: 0,
    reduceMeansRewritten: 0,
    weightBits: 8,
  };
}
