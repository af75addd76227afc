/**
 * The ONNX models our TensorRT builds parse: the FP16 conversion (TensorRT 11 has no FP16 builder flag) and the
 * symmetric Q/DQ model (TensorRT's INT8 scheme), on a small classifier graph made here.
 */
import { createRequire } from 'node:module';

import { describe, expect, it } from 'vitest';

import { convertToFloat16, fromHalfBits, toHalfBits } from '../../src/build/fp16.js';
import { encodeModel } from '../../src/onnx/model.js';
import { planQuantization, prepareForQuantization } from '../../src/build/quantize.js';
import { quantizeForTensorRT, symmetricScale } from '../../src/build/quantize-tensorrt.js';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof import('onnx-proto');
type ModelProto = import('onnx-proto').onnx.ModelProto;

const FLOAT = 1;
const INT8 = 3;
const FLOAT16 = 10;

function floats(name: string, dims: number[], seed: number) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 13.7 + i * 0.37) * 0.5);
  return onnx.TensorProto.create({ name, dataType: FLOAT, dims, rawData: new Uint8Array(data.buffer) });
}

function scalarConstant(output: string, value: number) {
  const t = onnx.TensorProto.create({ dataType: FLOAT, dims: [], floatData: [value] });
  return onnx.NodeProto.create({
    opType: 'Constant',
    input: [],
    output: [output],
    name: output,
    attribute: [onnx.AttributeProto.create({ name: 'value', t, type: 4 })],
  });
}

/** input [N,3,8,8] → Conv → Relu → Clip(0, 6) → GlobalAveragePool → Flatten (embedding) → Gemm (logits). */
function classifier(): ModelProto {
  const value = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: {
          elemType: FLOAT,
          shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      }),
    });
  const n = (opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}) =>
    onnx.NodeProto.create({
      opType,
      input,
      output,
      name: output[0],
      attribute: Object.entries(attrs).map(([k, v]) =>
        Array.isArray(v)
          ? onnx.AttributeProto.create({ name: k, ints: v, type: 7 })
          : onnx.AttributeProto.create({ name: k, i: v, type: 2 }),
      ),
    });
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'tiny',
      input: [value('input', ['batch', 3, 8, 8])],
      output: [value('logits', ['batch', 2]), value('embedding', ['batch', 4])],
      initializer: [floats('w1', [4, 3, 3, 3], 1), floats('b1', [4], 2), floats('w2', [2, 4], 3), floats('b2', [2], 4)],
      node: [
        n('Conv', ['input', 'w1', 'b1'], ['c1'], { pads: [1, 1, 1, 1] }),
        n('Relu', ['c1'], ['r1']),
        scalarConstant('lo', 0),
        scalarConstant('hi', 6),
        n('Clip', ['r1', 'lo', 'hi'], ['k1']),
        n('GlobalAveragePool', ['k1'], ['g']),
        n('Flatten', ['g'], ['embedding'], { axis: 1 }),
        n('Gemm', ['embedding', 'w2', 'b2'], ['logits'], { transB: 1 }),
      ],
    },
  });
}

const nodesOf = (m: ModelProto) => m.graph!.node!;

/** Runs a model with ONNX Runtime (CPU, one thread): the converted models must stay valid, equivalent ONNX. */
async function run(
  m: ModelProto,
  input: Float32Array,
  batch: number,
): Promise<{ logits: number[]; embedding: number[] }> {
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const session = await ort.InferenceSession.create(encodeModel(m), { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, [batch, 3, 8, 8]) });
    return { logits: [...(out.logits!.data as Float32Array)], embedding: [...(out.embedding!.data as Float32Array)] };
  } finally {
    await session.release();
  }
}

const sample = (batch: number) => Float32Array.from({ length: batch * 192 }, (_, i) => Math.cos(i * 0.91) * 2);
const init = (m: ModelProto, name: string) => m.graph!.initializer!.find((t) => t.name === name);

describe('float16 bits', () => {
  it('round to nearest even and clamp to the largest finite half', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7bff);
    expect(toHalfBits(-1e6)).toBe(0xfbff);
    expect(toHalfBits(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(2 ** -26)).toBe(0); // below half of it
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (const v of [0.1, -0.333, 3.14159, 1234.5, 6.1e-5, 1e-7]) {
      expect(Math.abs(fromHalfBits(toHalfBits(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    }
  });
});

describe('FP16 ONNX conversion (for TensorRT 11)', () => {
  it('makes weights and constants float16, keeps float32 graph inputs and outputs behind Casts', () => {
    const m = classifier();
    const w1 = Float32Array.from(new Float32Array(new Uint8Array(init(m, 'w1')!.rawData!).slice().buffer));
    const report = convertToFloat16(m);
    expect(report.initializersConverted).toBe(4);
    expect(report.constantsConverted).toBe(2);
    for (const t of m.graph!.initializer!) expect(t.dataType).toBe(FLOAT16);
    const half = new Uint16Array(new Uint8Array(init(m, 'w1')!.rawData!).slice().buffer);
    half.forEach((h, i) => expect(fromHalfBits(h)).toBeCloseTo(w1[i] as number, 3));
    const nodes = nodesOf(m);
    // input → Cast(fp16) → Conv
    const first = nodes[0]!;
    expect(first.opType).toBe('Cast');
    expect(first.input).toEqual(['input']);
    expect(first.attribute![0]!.i).toBe(FLOAT16);
    expect(nodes.find((n) => n.opType === 'Conv')!.input![0]).toBe(first.output![0]);
    // Constants are float16 tensors.
    for (const c of nodes.filter((n) => n.opType === 'Constant')) expect(c.attribute![0]!.t!.dataType).toBe(FLOAT16);
    // Each graph output is a Cast to float32 of the float16 tensor, whose other readers use the float16 name.
    for (const name of ['logits', 'embedding']) {
      const cast = nodes.find((n) => n.output![0] === name)!;
      expect(cast.opType).toBe('Cast');
      expect(cast.attribute![0]!.i).toBe(FLOAT);
      expect(cast.input![0]).toBe(`${name}__fp16`);
    }
    expect(nodes.find((n) => n.opType === 'Gemm')!.input![0]).toBe('embedding__fp16');
    expect(m.graph!.input![0]!.type!.tensorType!.elemType).toBe(FLOAT);
    expect(m.graph!.output!.map((o) => o.type!.tensorType!.elemType)).toEqual([FLOAT, FLOAT]);
  });

  it('runs ops in the keep list in float32 between Casts', () => {
    const m = classifier();
    const report = convertToFloat16(m, new Set(['Relu']));
    expect(report.keptFloat).toEqual(['r1']);
    const nodes = nodesOf(m);
    const relu = nodes.find((n) => n.opType === 'Relu')!;
    const before = nodes.find((n) => n.output![0] === relu.input![0])!;
    expect(before.opType).toBe('Cast');
    expect(before.attribute![0]!.i).toBe(FLOAT);
    const clip = nodes.find((n) => n.opType === 'Clip')!;
    const after = nodes.find((n) => n.output![0] === clip.input![0])!;
    expect(after.opType).toBe('Cast');
    expect(after.attribute![0]!.i).toBe(FLOAT16);
  });

  it('computes what the FP32 model computes, to float16 precision (ONNX Runtime as the reference)', async () => {
    const input = sample(2);
    const reference = await run(classifier(), input, 2);
    const m = classifier();
    convertToFloat16(m);
    const half = await run(m, input, 2);
    half.logits.forEach((v, i) => expect(v).toBeCloseTo(reference.logits[i] as number, 2));
    half.embedding.forEach((v, i) => expect(v).toBeCloseTo(reference.embedding[i] as number, 2));
  });

  it('refuses graphs with subgraphs', () => {
    const m = classifier();
    nodesOf(m).push(
      onnx.NodeProto.create({
        opType: 'If',
        input: ['c'],
        output: ['y'],
        attribute: [onnx.AttributeProto.create({ name: 'then_branch', g: { name: 'g' }, type: 5 })],
      }),
    );
    expect(() => convertToFloat16(m)).toThrow(/subgraphs/);
  });
});

describe('symmetric Q/DQ model for TensorRT INT8', () => {
  it('int8 zero points, amax/127 scales, per-channel Conv weights, float biases', () => {
    const m = classifier();
    prepareForQuantization(m);
    const plan = planQuantization(m);
    const ranges = new Map(plan.calibrated.map((t, i) => [t, { min: -1 - i, max: 2 + i }]));
    const report = quantizeForTensorRT(m, plan, ranges);
    expect(report.quantizedConvs).toBe(1);
    // The Gemm reads the `embedding` graph output, which the plan does not quantise: it stays float.
    expect(report.quantizedGemms).toBe(0);
    const nodes = nodesOf(m);
    const qs = nodes.filter((n) => n.opType === 'QuantizeLinear');
    expect(qs.length).toBe(plan.calibrated.length + plan.shared.size);
    for (const q of [...qs, ...nodes.filter((n) => n.opType === 'DequantizeLinear')]) {
      const zp = init(m, q.input![2]!)!;
      expect(zp.dataType).toBe(INT8);
      expect([...new Int8Array(new Uint8Array(zp.rawData!).slice().buffer)].every((v) => v === 0)).toBe(true);
    }
    // The input's scale is its symmetric range over 127.
    const inputQ = qs.find((q) => q.input![0] === 'input')!;
    const scale = new Float32Array(new Uint8Array(init(m, inputQ.input![1]!)!.rawData!).slice().buffer)[0]!;
    expect(scale).toBeCloseTo(symmetricScale(ranges.get('input')!), 7);
    expect(symmetricScale({ min: -1, max: 2 })).toBeCloseTo(2 / 127, 9);
    // Conv weights: int8 behind a per-channel (axis 0) DequantizeLinear; its bias stays a float initializer.
    const conv = nodes.find((n) => n.opType === 'Conv')!;
    const wdq = nodes.find((n) => n.output![0] === conv.input![1])!;
    expect(wdq.opType).toBe('DequantizeLinear');
    expect(wdq.attribute!.find((a) => a.name === 'axis')!.i).toBe(0);
    expect(init(m, wdq.input![0]!)!.dataType).toBe(INT8);
    expect(init(m, wdq.input![1]!)!.dims!.map(Number)).toEqual([4]);
    expect(conv.input![2]).toBe('b1');
    expect(init(m, 'b1')!.dataType).toBe(FLOAT);
    expect(init(m, 'w1')).toBeUndefined();
    const gemm = nodes.find((n) => n.opType === 'Gemm')!;
    expect(gemm.input).toEqual(['embedding', 'w2', 'b2']);
    expect(init(m, 'w2')!.dataType).toBe(FLOAT);
  });

  it('computes what the FP32 model computes, to int8 precision (ONNX Runtime as the reference)', async () => {
    const input = sample(3);
    const reference = await run(classifier(), input, 3);
    // Ranges observed on this very input: the quantisation error is then rounding only.
    const probe = classifier();
    prepareForQuantization(probe);
    const plan = planQuantization(probe);
    const observe = classifier();
    prepareForQuantization(observe);
    for (const t of plan.calibrated) {
      if (!observe.graph!.output!.some((o) => o.name === t) && t !== 'input') {
        observe.graph!.output!.push(onnx.ValueInfoProto.create({ name: t, type: { tensorType: { elemType: FLOAT } } }));
      }
    }
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(encodeModel(observe), { intraOpNumThreads: 1 });
    const seen = await session.run({ input: new ort.Tensor('float32', input, [3, 3, 8, 8]) });
    await session.release();
    const ranges = new Map(
      plan.calibrated.map((t) => {
        const data = t === 'input' ? input : (seen[t]!.data as Float32Array);
        return [t, { min: Math.min(0, ...data), max: Math.max(0, ...data) }];
      }),
    );
    const m = classifier();
    prepareForQuantization(m);
    quantizeForTensorRT(m, planQuantization(m), ranges);
    const q = await run(m, input, 3);
    const spread = Math.max(...reference.logits.map(Math.abs));
    q.logits.forEach((v, i) => expect(Math.abs(v - (reference.logits[i] as number))).toBeLessThan(0.05 * spread));
  });
});
