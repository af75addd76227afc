/**
 * FP32 → FP16 ONNX conversion for TensorRT 11, whose strongly typed networks take their precision from the model
 * (it has no FP16 builder flag). Float initializers, Constant values and Casts to float become float16; the graph
 * inputs and outputs stay float32, with a Cast after each input and before each output, so callers keep feeding and
 * reading float32. Ops that lose range or must stay float32 by the ONNX spec (Resize scales, L2 reductions, random
 * generators, Q/DQ) run in float32 between Casts.
 */
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/model.js';

const FLOAT = 1;
const FLOAT16 = 10;
const INT64 = 7;
const BOOL = 9;

/** Ops kept in float32 (their float inputs are cast back to float32). */
export const FP16_KEEP_FLOAT_OPS: ReadonlySet<string> = new Set([
  'Resize',
  'Upsample',
  'Range',
  'RoiAlign',
  'NonMaxSuppression',
  'TopK',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'Multinomial',
  'ReduceSumSquare',
  'ReduceL2',
  'ReduceLogSumExp',
  'LpNormalization',
  'Pow',
  'CumSum',
  'QuantizeLinear',
  'DequantizeLinear',
]);

const INT64_OUTPUT_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const BOOL_OUTPUT_OPS = new Set([
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
]);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The IEEE 754 binary16 bits of a number, rounded to nearest even. Finite values beyond the float16 range become
 * ±65504 (the largest finite half) rather than infinity, as a weight must stay finite.
 */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  if ((half & 0x7fff) >= 0x7c00) return sign | 0x7bff;
  return sign | half;
}

/** The number a binary16 bit pattern holds. */
export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function floatData(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData);
    return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** Rewrites a float32 TensorProto in place as float16 (raw_data). */
function tensorToHalf(t: TensorProto): void {
  const values = floatData(t);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = toHalfBits(values[i] as number);
  t.dataType = FLOAT16;
  t.floatData = [];
  t.rawData = new Uint8Array(half.buffer);
}

export interface Fp16Report {
  initializersConverted: number;
  initializersKeptFloat: number;
  constantsConverted: number;
  castsInserted: number;
  /** Nodes run in float32 between Casts. */
  keptFloat: string[];
}

/**
 * Converts the model in place to float16 with float32 graph inputs and outputs. Throws RangeError for a graph with
 * subgraphs (If, Loop, Scan), which this converter does not walk.
 */
export function convertToFloat16(
  model: ModelProto,
  keepFloatOps: ReadonlySet<string> = FP16_KEEP_FLOAT_OPS,
): Fp16Report {
  const graph = model.graph;
  if (!graph) throw new RangeError('the ONNX model has no graph');
  const nodes = graph.node ?? [];
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0))) {
    throw new RangeError('FP16 conversion does not support ONNX models with subgraphs (If, Loop, Scan)');
  }
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name as string, t]));

  // Element types of every tensor, inferred in graph order (ONNX nodes are topologically sorted).
  const type = new Map<string, number>();
  for (const i of graph.input ?? []) {
    if (!initializers.has(i.name as string)) type.set(i.name as string, Number(i.type?.tensorType?.elemType ?? 0));
  }
  for (const [name, t] of initializers) type.set(name, Number(t.dataType ?? 0));
  const attr = (n: NodeProto, name: string) => (n.attribute ?? []).find((a) => a.name === name);
  for (const n of nodes) {
    const outs = n.output ?? [];
    const firstTyped = (n.input ?? []).map((i) => type.get(i)).find((t) => t !== undefined && t !== 0) ?? 0;
    let t = firstTyped;
    const op = n.opType ?? '';
    if (op === 'Constant') {
      const v = attr(n, 'value');
      t = v?.t ? Number(v.t.dataType) : attr(n, 'value_float') || attr(n, 'value_floats') ? FLOAT : INT64;
    } else if (op === 'ConstantOfShape') {
      t = Number(attr(n, 'value')?.t?.dataType ?? FLOAT);
    } else if (op === 'Cast') {
      t = Number(attr(n, 'to')?.i ?? 0);
    } else if (INT64_OUTPUT_OPS.has(op)) {
      t = INT64;
    } else if (BOOL_OUTPUT_OPS.has(op)) {
      t = BOOL;
    } else if (op === 'DequantizeLinear') {
      t = FLOAT;
    } else if (op === 'QuantizeLinear') {
      t = type.get(n.input?.[2] ?? '') ?? 2;
    } else if (op === 'Where') {
      t = type.get(n.input?.[1] ?? '') ?? firstTyped;
    }
    outs.forEach((o, k) => {
      // TopK and MaxPool return int64 indices second.
      type.set(o, k > 0 && (op === 'TopK' || op === 'MaxPool') ? INT64 : t);
    });
  }

  const keep = (n: NodeProto): boolean => keepFloatOps.has(n.opType ?? '');
  const isFloat = (name: string): boolean => type.get(name) === FLOAT;

  // Float initializers read only by converted nodes become float16.
  const readers = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const half = new Set<string>(); // float tensors that are float16 after conversion
  const report: Fp16Report = {
    initializersConverted: 0,
    initializersKeptFloat: 0,
    constantsConverted: 0,
    castsInserted: 0,
    keptFloat: [],
  };
  const outputs = new Set((graph.output ?? []).map((o) => o.name as string));
  for (const [name, t] of initializers) {
    if (Number(t.dataType) !== FLOAT) continue;
    const users = readers.get(name) ?? [];
    if (users.length > 0 && users.every((n) => !keep(n)) && !outputs.has(name)) {
      tensorToHalf(t);
      half.add(name);
      report.initializersConverted++;
    } else {
      report.initializersKeptFloat++;
    }
  }

  let seq = 0;
  const casts = new Map<string, string>(); // `${tensor}->${to}` -> cast output
  const out: NodeProto[] = [];
  const castOf = (name: string, to: number): string => {
    const key = `${name}->${to}`;
    const have = casts.get(key);
    if (have) return have;
    const result = `${name}__to_fp${to === FLOAT16 ? 16 : 32}_${seq++}`;
    out.push(
      onnx.NodeProto.create({
        opType: 'Cast',
        name: result,
        input: [name],
        output: [result],
        attribute: [onnx.AttributeProto.create({ name: 'to', i: to, type: 2 })],
      }),
    );
    casts.set(key, result);
    report.castsInserted++;
    return result;
  };

  for (const n of nodes) {
    const converted = !keep(n);
    if (!converted) report.keptFloat.push(n.name || n.opType || '?');
    n.input = (n.input ?? []).map((i) => {
      if (!i || !isFloat(i)) return i;
      const isHalf = half.has(i);
      if (converted && !isHalf) return castOf(i, FLOAT16);
      if (!converted && isHalf) return castOf(i, FLOAT);
      return i;
    });
    if (converted) {
      const op = n.opType ?? '';
      if (op === 'Constant') {
        const v = attr(n, 'value');
        const vf = attr(n, 'value_float');
        const vfs = attr(n, 'value_floats');
        if (v?.t && Number(v.t.dataType) === FLOAT) {
          tensorToHalf(v.t);
          report.constantsConverted++;
        } else if (vf || vfs) {
          const values = vf ? [Number(vf.f ?? 0)] : (vfs?.floats ?? []).map(Number);
          const t = onnx.TensorProto.create({ dataType: FLOAT, dims: vf ? [] : [values.length], floatData: values });
          tensorToHalf(t);
          n.attribute = [onnx.AttributeProto.create({ name: 'value', t, type: 4 })];
          report.constantsConverted++;
        }
      } else if (op === 'ConstantOfShape') {
        const v = attr(n, 'value');
        if (v?.t && Number(v.t.dataType) === FLOAT) tensorToHalf(v.t);
        else if (!v) n.attribute = [...(n.attribute ?? []), halfScalarAttr('value', 0)];
      } else if (op === 'Cast') {
        const to = attr(n, 'to');
        if (to && Number(to.i) === FLOAT) to.i = FLOAT16;
      }
      for (const o of n.output ?? []) if (isFloat(o)) half.add(o);
    }
    out.push(n);
  }

  // Graph outputs produced in float16 get a Cast back to float32 under their own name.
  const renamed = new Map<string, string>();
  for (const o of graph.output ?? []) {
    const name = o.name as string;
    if (!half.has(name)) continue;
    const inner = `${name}__fp16`;
    renamed.set(name, inner);
  }
  if (renamed.size > 0) {
    for (const n of out) {
      n.output = (n.output ?? []).map((o) => renamed.get(o) ?? o);
      n.input = (n.input ?? []).map((i) => renamed.get(i) ?? i);
    }
    for (const [name, inner] of renamed) {
      out.push(
        onnx.NodeProto.create({
          opType: 'Cast',
          name: `${name}__to_fp32`,
          input: [inner],
          output: [name],
          attribute: [onnx.AttributeProto.create({ name: 'to', i: FLOAT, type: 2 })],
        }),
      );
      report.castsInserted++;
    }
  }
  graph.node = out;
  // Intermediate type annotations would contradict the new types: TensorRT infers them.
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !half.has(v.name as string));
  return report;
}

function halfScalarAttr(name: string, value: number) {
  const t = onnx.TensorProto.create({ dataType: FLOAT, dims: [1], floatData: [value] });
  tensorToHalf(t);
  return onnx.AttributeProto.create({ name, t, type: 4 });
}
