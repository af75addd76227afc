/**
 * Static INT8 quantisation of an ONNX classifier to a Q/DQ model that ONNX Runtime (CPU), TensorRT 10 and
 * TensorRT 11 all run. The layout is "Q/DQ everywhere", which is what lets ONNX Runtime replace every float kernel
 * by an int8 one (QLinearConv, QLinearAdd, QLinearMul, QLinearSigmoid, QLinearConcat, QLinearGlobalAveragePool,
 * QGemm):
 * - activations uint8 asymmetric, a QuantizeLinear → DequantizeLinear pair after every op (after the ReLU / Clip
 *   when a Conv feeds only one: ONNX Runtime folds the activation into the Q);
 * - Slice / Flatten / MaxPool / Reshape outputs reuse their input's scale and zero point;
 * - Conv weights int8 per output channel, symmetric (DequantizeLinear axis 0), Gemm weights int8 per tensor;
 *   biases int32 with scale input_scale × weight_scale, each with its own DequantizeLinear;
 * - ReduceMean over H, W with keepdims is rewritten as GlobalAveragePool (ONNX Runtime has no int8 ReduceMean);
 *   Identity nodes are removed.
 * Nodes kept in float (first conv, classifier, or names) get neither a quantised weight nor a DQ-fed input: ONNX
 * Runtime would quantise a float weight whose input comes from a DequantizeLinear.
 */
import {
  decodeModel,
  DT,
  encodeModel,
  floatValues,
  graphOf,
  onnx,
  opsetOf,
  tensor,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../onnx/model.js';
import { uint8Params, type Range } from './calibration.js';

/** Ops followed by a Q/DQ pair of their own (calibrated range). */
const QUANTIZE_AFTER = new Set([
  'Conv',
  'Gemm',
  'MatMul',
  'Add',
  'Mul',
  'Sigmoid',
  'Concat',
  'GlobalAveragePool',
  'AveragePool',
  'Relu',
  'Clip',
]);
/** Ops whose output reuses their input's scale and zero point. */
const SHARE_SCALE = new Set(['Slice', 'Split', 'Flatten', 'MaxPool', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
/** Activations ONNX Runtime folds into a following QuantizeLinear. */
const FOLDED_ACTIVATIONS = new Set(['Relu', 'Clip']);

function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, number> = {},
): NodeProto {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    name,
    attribute: Object.entries(attrs).map(([k, v]) => onnx.AttributeProto.create({ name: k, i: v, type: 2 })),
  });
}

/**
 * Symmetric int8 weights, per output channel (dims[0] channels) or per tensor: each channel's scale is its largest
 * magnitude over `qmax` (1 for an all-zero channel), values rounded and clamped to ±qmax.
 */
export function quantizeWeights(
  values: Float32Array,
  dims: readonly number[],
  qmax: number,
  perChannel: boolean,
): { q: Int8Array; scales: Float32Array; channels: number } {
  const channels = perChannel ? (dims[0] as number) : 1;
  const per = values.length / channels;
  const scales = new Float32Array(channels);
  const q = new Int8Array(values.length);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let k = c * per; k < (c + 1) * per; k++) absMax = Math.max(absMax, Math.abs(values[k] as number));
    const s = absMax > 0 ? absMax / qmax : 1;
    scales[c] = s;
    for (let k = c * per; k < (c + 1) * per; k++) {
      q[k] = Math.max(-qmax, Math.min(qmax, Math.round((values[k] as number) / s)));
    }
  }
  return { q, scales, channels };
}

/**
 * The QuantizeLinear → DequantizeLinear pair on tensor `t` with the given scale and zero-point initializers; `uid`
 * makes the new tensor and node names unique. Returns the two nodes and the dequantised tensor's name.
 */
export function qdqPair(
  t: string,
  scale: string,
  zeroPoint: string,
  uid: (base: string) => string,
): { nodes: NodeProto[]; dequantized: string } {
  const q = uid(`${t}_quantized`);
  const d = uid(`${t}_dequantized`);
  return {
    nodes: [
      node('QuantizeLinear', [t, scale, zeroPoint], [q], uid(`${t}_QuantizeLinear`)),
      node('DequantizeLinear', [q, scale, zeroPoint], [d], uid(`${t}_DequantizeLinear`)),
    ],
    dequantized: d,
  };
}

/**
 * A quantised initializer behind its own DequantizeLinear: the quantised values, their scales and zero points (one
 * per channel along axis 0 when `perAxis`, else one), and the node reading them. `base` names them, made unique by
 * `uid`. Returns the three initializers, the node and the dequantised tensor's name.
 */
export function dequantizedInitializer(
  base: string,
  uid: (base: string) => string,
  quantized: { dataType: number; dims: number[]; data: ArrayBufferView },
  scales: Float32Array,
  zeroPoints: { dataType: number; data: ArrayBufferView },
  perAxis: boolean,
): { initializers: TensorProto[]; node: NodeProto; output: string } {
  const qn = uid(`${base}_quantized`);
  const sn = uid(`${base}_scale`);
  const zn = uid(`${base}_zero_point`);
  const dn = uid(`${base}_dequantized`);
  const paramDims = perAxis ? [scales.length] : [];
  return {
    initializers: [
      tensor(qn, quantized.dataType, quantized.dims, quantized.data),
      tensor(sn, DT.FLOAT, paramDims, scales),
      tensor(zn, zeroPoints.dataType, paramDims, zeroPoints.data),
    ],
    node: node('DequantizeLinear', [qn, sn, zn], [dn], uid(`${base}_DequantizeLinear`), perAxis ? { axis: 0 } : {}),
    output: dn,
  };
}

function attrInts(n: NodeProto, name: string): number[] | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? (a.ints ?? []).map(Number) : undefined;
}
function attrInt(n: NodeProto, name: string): number | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i ?? 0) : undefined;
}

/**
 * Rewrites the graph in place into the form that quantises well: Identity nodes removed, ReduceMean over H, W
 * (keepdims) replaced by GlobalAveragePool. Returns what it changed.
 */
export function prepareForQuantization(model: ModelProto): { identitiesRemoved: number; reduceMeansRewritten: number } {
  const graph = graphOf(model);
  const outputs = new Set(graph.output.map((o) => o.name));
  let identitiesRemoved = 0;
  let reduceMeansRewritten = 0;
  const rename = new Map<string, string>();
  const kept: NodeProto[] = [];
  for (const n of graph.node) {
    n.input = (n.input ?? []).map((i) => rename.get(i) ?? i);
    if (n.opType === 'Identity' && !outputs.has(n.output![0]!)) {
      rename.set(n.output![0]!, n.input[0]!);
      identitiesRemoved++;
      continue;
    }
    if (n.opType === 'ReduceMean' && (n.input?.length ?? 0) === 1) {
      const axes = attrInts(n, 'axes');
      const keep = attrInt(n, 'keepdims') ?? 1;
      if (keep === 1 && axes && axes.length === 2 && axes.every((a) => [2, 3, -1, -2].includes(a))) {
        const normalized = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
        if (normalized[0] === 2 && normalized[1] === 3) {
          n.opType = 'GlobalAveragePool';
          n.attribute = [];
          reduceMeansRewritten++;
        }
      }
    }
    kept.push(n);
  }
  graph.node = kept;
  return { identitiesRemoved, reduceMeansRewritten };
}

/** Where each tensor is produced and consumed. */
function graphIndex(model: ModelProto) {
  const graph = graphOf(model);
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) {
      if (!i) continue;
      const list = consumers.get(i) ?? [];
      list.push(n);
      consumers.set(i, list);
    }
  }
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const outputs = new Set(graph.output.map((o) => o.name!));
  const inputs = graph.input.map((i) => i.name!).filter((n) => !initializers.has(n));
  return { graph, producer, consumers, initializers, outputs, inputs };
}

export interface QuantizationPlan {
  /** Tensors with a calibrated range of their own. */
  calibrated: string[];
  /** Tensors that reuse another tensor's parameters (output → source). */
  shared: Map<string, string>;
  /** Nodes whose weights are quantised (Conv per channel, Gemm per tensor). */
  weighted: NodeProto[];
  /** Nodes kept in float. */
  keptFloat: string[];
}

/**
 * Decides which tensors get Q/DQ pairs and which weighted nodes are quantised. `keepFloat` names nodes to keep in
 * float; 'first-conv' and 'classifier' (the node producing `logits`, or the last Gemm) are accepted too.
 */
export function planQuantization(model: ModelProto, keepFloat: readonly string[] = []): QuantizationPlan {
  const { graph, producer, consumers, initializers, outputs, inputs } = graphIndex(model);
  const floatNodes = new Set<NodeProto>();
  for (const k of keepFloat) {
    let found: NodeProto | undefined;
    if (k === 'first-conv') found = graph.node.find((n) => n.opType === 'Conv');
    else if (k === 'classifier') {
      found =
        producer.get('logits') ?? [...graph.node].reverse().find((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
    } else found = graph.node.find((n) => n.name === k);
    if (!found) {
      throw new RangeError(`--keep-float: no node '${k}' in the model (use node names, 'first-conv' or 'classifier')`);
    }
    floatNodes.add(found);
  }
  const isFloatInit = (name: string): boolean => initializers.get(name)?.dataType === DT.FLOAT;
  const calibrated = new Set<string>();
  const shared = new Map<string, string>();
  for (const i of inputs) calibrated.add(i);
  for (const n of graph.node) {
    const out = n.output?.[0];
    if (!out || outputs.has(out)) continue;
    const users = consumers.get(out) ?? [];
    if (QUANTIZE_AFTER.has(n.opType!)) {
      // A Conv/Gemm/Add feeding only a ReLU or Clip: the pair goes after the activation instead.
      if (!FOLDED_ACTIVATIONS.has(n.opType!) && users.length === 1 && FOLDED_ACTIVATIONS.has(users[0]!.opType!))
        continue;
      calibrated.add(out);
    } else if (SHARE_SCALE.has(n.opType!)) {
      shared.set(out, n.input![0]!);
      for (const extra of (n.output ?? []).slice(1)) shared.set(extra, n.input![0]!);
    }
  }
  // Inputs of float-kept nodes are not quantised (no DQ may feed a float weighted node).
  for (const n of floatNodes) {
    const x = n.input?.[0];
    if (!x) continue;
    calibrated.delete(x);
    shared.delete(x);
  }
  // A shared tensor needs a quantised source (resolved transitively).
  const sourceOf = (t: string): string | undefined => {
    let cur = t;
    for (let hops = 0; hops < 64; hops++) {
      if (calibrated.has(cur)) return cur;
      const next = shared.get(cur);
      if (!next) return undefined;
      cur = next;
    }
    return undefined;
  };
  for (const [t] of shared) if (!sourceOf(t)) shared.delete(t);
  const quantized = (t: string): boolean => calibrated.has(t) || shared.has(t);
  const weighted = graph.node.filter(
    (n) =>
      !floatNodes.has(n) &&
      (n.opType === 'Conv' || n.opType === 'Gemm') &&
      quantized(n.input![0]!) &&
      isFloatInit(n.input![1]!) &&
      (n.opType !== 'Gemm' || (attrInt(n, 'transA') ?? 0) === 0),
  );
  // Weighted nodes left float must not read a DQ output: drop the pair on their input when it feeds nothing else
  // quantised; otherwise keep it (the node then runs in float on dequantised values, which ONNX Runtime accepts).
  for (const n of graph.node) {
    if ((n.opType === 'Conv' || n.opType === 'Gemm') && !weighted.includes(n)) {
      const x = n.input![0]!;
      const others = (consumers.get(x) ?? []).filter((c) => c !== n);
      if (others.length === 0) {
        calibrated.delete(x);
        shared.delete(x);
      }
    }
  }
  for (const [t] of shared) if (!sourceOf(t)) shared.delete(t);
  return {
    calibrated: [...calibrated],
    shared: new Map([...shared].map(([t]) => [t, sourceOf(t) as string])),
    weighted,
    keptFloat: [...floatNodes].map((n) => n.name ?? n.opType ?? '?'),
  };
}

/** A copy of the model whose graph outputs also include `names` (for calibration). */
export function calibrationModel(bytes: Uint8Array, names: readonly string[], prepare = true): Uint8Array {
  const model = decodeModel(bytes, 'the model');
  if (prepare) prepareForQuantization(model);
  const graph = graphOf(model);
  const present = new Set(graph.output.map((o) => o.name));
  const inputs = new Set(graph.input.map((i) => i.name));
  for (const name of names) {
    if (present.has(name) || inputs.has(name)) continue;
    graph.output.push(
      onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: { elemType: DT.FLOAT } }) }),
    );
  }
  return encodeModel(model);
}

export interface QuantizeReport {
  quantizedTensors: number;
  sharedTensors: number;
  quantizedConvs: number;
  quantizedGemms: number;
  keptFloat: string[];
  identitiesRemoved: number;
  reduceMeansRewritten: number;
  /** 8, or 7 for reduced-range weights. */
  weightBits?: number;
}

/**
 * Writes the Q/DQ model: `ranges` holds the calibrated range of every tensor of plan.calibrated. The model must
 * have been through prepareForQuantization, and its opset must be at least 13 (per-channel DequantizeLinear).
 */
export function quantizeModel(
  model: ModelProto,
  plan: QuantizationPlan,
  ranges: ReadonlyMap<string, Range>,
  options: { reduceRange?: boolean } = {},
): QuantizeReport {
  // 7-bit weights keep uint8 x int8 products from saturating the 16-bit sums of AVX2's VPMADDUBSW (x86 without VNNI).
  const qmax = options.reduceRange ? 63 : 127;
  if (opsetOf(model) < 13) {
    throw new RangeError(
      `INT8 needs an ONNX model of opset 13 or later (this one is ${opsetOf(model)}): re-export with --opset 13+`,
    );
  }
  const { graph, initializers } = graphIndex(model);
  const params = new Map<string, { scale: number; zeroPoint: number; scaleName: string; zpName: string }>();
  const newInits: TensorProto[] = [];
  let seq = 0;
  const uid = (base: string): string => `${base}__${seq++}`;

  const paramsOf = (t: string): { scale: number; zeroPoint: number; scaleName: string; zpName: string } => {
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
    const { scale, zeroPoint } = uint8Params(range);
    const scaleName = uid(`${t}_scale`);
    const zpName = uid(`${t}_zero_point`);
    newInits.push(tensor(scaleName, DT.FLOAT, [], Float32Array.of(scale)));
    newInits.push(tensor(zpName, DT.UINT8, [], Uint8Array.of(zeroPoint)));
    const p = { scale, zeroPoint, scaleName, zpName };
    params.set(t, p);
    return p;
  };

  const toQuantize = new Set([...plan.calibrated, ...plan.shared.keys()]);
  const dq = new Map<string, string>(); // tensor -> its dequantised name
  const qdqNodes = (t: string): NodeProto[] => {
    const p = paramsOf(t);
    const pair = qdqPair(t, p.scaleName, p.zpName, uid);
    dq.set(t, pair.dequantized);
    return pair.nodes;
  };

  const weightedSet = new Set(plan.weighted);
  let convs = 0;
  let gemms = 0;
  const out: NodeProto[] = [];
  for (const i of graph.input) if (toQuantize.has(i.name!)) out.push(...qdqNodes(i.name!));
  for (const n of graph.node) {
    n.input = (n.input ?? []).map((i) => dq.get(i) ?? i);
    if (weightedSet.has(n)) {
      const xSource = [...dq].find(([, d]) => d === n.input![0])?.[0];
      const xParams = xSource ? paramsOf(xSource) : undefined;
      const w = initializers.get(n.input![1]!)!;
      const values = floatValues(w);
      const dims = (w.dims ?? []).map(Number);
      const perChannel = n.opType === 'Conv';
      const { q, scales, channels } = quantizeWeights(values, dims, qmax, perChannel);
      const wdq = dequantizedInitializer(
        w.name!,
        uid,
        { dataType: DT.INT8, dims, data: q },
        scales,
        { dataType: DT.INT8, data: new Int8Array(channels) },
        perChannel,
      );
      newInits.push(...wdq.initializers);
      out.push(wdq.node);
      n.input![1] = wdq.output;
      const biasName = n.input![2];
      const bias = biasName ? initializers.get(biasName) : undefined;
      if (bias && bias.dataType === DT.FLOAT && xParams) {
        const b = floatValues(bias);
        const perBias = perChannel && b.length === channels;
        const bScales = new Float32Array(perBias ? channels : 1);
        const bq = new Int32Array(b.length);
        for (let c = 0; c < bScales.length; c++) bScales[c] = xParams.scale * (scales[perBias ? c : 0] as number);
        for (let k = 0; k < b.length; k++) {
          const s = bScales[perBias ? k : 0] as number;
          bq[k] = Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round((b[k] as number) / s)));
        }
        const bdq = dequantizedInitializer(
          bias.name!,
          uid,
          { dataType: DT.INT32, dims: (bias.dims ?? []).map(Number), data: bq },
          bScales,
          { dataType: DT.INT32, data: new Int32Array(bScales.length) },
          perBias,
        );
        newInits.push(...bdq.initializers);
        out.push(bdq.node);
        n.input![2] = bdq.output;
      }
      if (n.opType === 'Conv') convs++;
      else gemms++;
    }
    out.push(n);
    for (const o of n.output ?? []) if (toQuantize.has(o)) out.push(...qdqNodes(o));
  }
  graph.node = out;
  // Weights now live as int8 initializers; drop float ones nobody reads any more.
  const used = new Set(out.flatMap((n) => n.input ?? []));
  graph.initializer = [...(graph.initializer ?? []).filter((t) => used.has(t.name!)), ...newInits];
  return {
    quantizedTensors: plan.calibrated.length,
    sharedTensors: plan.shared.size,
    quantizedConvs: convs,
    quantizedGemms: gemms,
    keptFloat: plan.keptFloat,
    identitiesRemoved: 0,
    reduceMeansRewritten: 0,
    weightBits: options.reduceRange ? 7 : 8,
  };
}

/**
 * Whether int8 weights should use 7 bits on this CPU: x86 without VNNI multiplies uint8 by int8 with VPMADDUBSW,
 * whose 16-bit pairwise sums saturate with full-range weights.
 */
export function cpuNeedsReducedRange(cpuinfo: string): boolean {
  if (!/\b(avx2|sse4_1|ssse3)\b/.test(cpuinfo)) return false; // not x86 (or unknown): full range
  return !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(cpuinfo);
}
