/**
 * The Q/DQ model TensorRT takes for INT8 (TensorRT 10 and 11): the same calibrated tensors as ONNX Runtime's model
 * (quantize.ts: a pair after every op, shared scales through Slice / Flatten / MaxPool ...), but in TensorRT's
 * scheme, which is symmetric: int8 activations with zero point 0 and scale amax / 127, int8 weights per output
 * channel (Conv) or per tensor (Gemm) behind a DequantizeLinear, biases left in float for TensorRT to fuse.
 */
import { floatValues, opsetOf, tensor, type ModelProto, type NodeProto, type TensorProto } from '../onnx/model.js';
import type { Range } from './calibration.js';
import {
  dequantizedInitializer,
  qdqPair,
  quantizeWeights,
  type QuantizationPlan,
  type QuantizeReport,
} from './quantize.js';

const FLOAT = 1;
const INT8 = 3;

/** The symmetric int8 scale of a range: its largest magnitude over 127 (1 for an all-zero tensor). */
export function symmetricScale(range: Range): number {
  const amax = Math.max(Math.abs(range.min), Math.abs(range.max));
  return amax > 0 ? amax / 127 : 1;
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
    const pair = qdqPair(t, p.scale, p.zeroPoint, uid);
    dq.set(t, pair.dequantized);
    return pair.nodes;
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
      const { q, scales, channels } = quantizeWeights(values, dims, 127, perChannel);
      const wdq = dequantizedInitializer(
        w.name as string,
        uid,
        { dataType: INT8, dims, data: q },
        scales,
        { dataType: INT8, data: new Int8Array(channels) },
        perChannel,
      );
      newInits.push(...wdq.initializers);
      out.push(wdq.node);
      n.input[1] = wdq.output;
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
