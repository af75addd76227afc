import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { buildEngine } from '../../src/build/build.js';
import { Engine } from '../../src/engine/Engine.js';
import { OnnxRuntimeBackend } from '../../src/engine/onnxruntime.js';
import { decodeModel } from '../../src/onnx/model.js';
import { BackendUnavailableError, DataError, ModelLoadError } from '../../src/errors.js';
import { DECODER_CONVENTIONS } from '../../src/data/metadata.js';
import { readOnnxInfo } from '../../src/onnx/model.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { CLASSES, hasFlowers, photos, tinyModelPath } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-build-'));
const fp32 = join(dir, 'tiny.onnx');
const calibration = hasFlowers ? CLASSES.flatMap((c) => photos(c, 6)) : [];
const verify = hasFlowers ? CLASSES.flatMap((c) => photos(c, 3, 20)) : [];

function opCounts(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeModel(bytes, 'model').graph!.node ?? []) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
  return counts;
}

describe.skipIf(!hasFlowers)('build-engine (ONNX Runtime, CPU)', () => {
  beforeAll(async () => {
    await exportOnnx({ checkpoint: tinyModelPath, out: fp32, verifyImages: verify.slice(0, 4) });
  });

  it('int8: calibrates on real photos and writes a checked Q/DQ model that ONNX Runtime runs with int8 kernels only', async () => {
    const out = join(dir, 'tiny.int8.onnx');
    const r = await buildEngine({ model: fp32, out, precision: 'int8', calibration, verifyImages: verify });
    expect(r.precision).toBe('int8');
    expect(r.calibration).toMatchObject({ method: 'entropy', images: calibration.length, skipped: 0 });
    expect(r.quantization!.quantizedConvs).toBeGreaterThan(0);
    expect(r.verification!.images).toBe(verify.length);
    expect(r.verification!.mean_logit_cosine).toBeGreaterThan(0.8);
    const sidecar = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    expect(sidecar).toMatchObject({ backend: 'onnxruntime', precision: 'int8', classes: [...CLASSES] });
    expect(sidecar.source_sha256).toMatch(/^[0-9a-f]{64}$/);
    const table = JSON.parse(readFileSync(r.calibration!.table, 'utf8'));
    expect(Object.keys(table.tensors).length).toBe(r.calibration!.tensors);
    for (const t of Object.values(table.tensors) as { min: number; max: number }[]) {
      expect(t.min).toBeLessThanOrEqual(0);
      expect(t.max).toBeGreaterThanOrEqual(0);
    }
    expect(readFileSync(r.calibration!.tensorrt_cache, 'utf8')).toMatch(
      /^TRT-\d+-EntropyCalibration2\ninput: [0-9a-f]{8}\n/,
    );

    const written = opCounts(readFileSync(out));
    expect(written.QuantizeLinear).toBeGreaterThan(0);
    expect(written.DequantizeLinear).toBeGreaterThan(written.QuantizeLinear!);
    // What ONNX Runtime makes of it: every Conv fused into QLinearConv, no float Conv left.
    const optimized = join(dir, 'tiny.int8.optimized.onnx');
    const be = await OnnxRuntimeBackend.load(out, {
      device: 'cpu',
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: optimized,
    });
    await be.dispose();
    const ops = opCounts(readFileSync(optimized));
    expect(ops.Conv ?? 0).toBe(0);
    expect(ops.QLinearConv).toBe(r.quantization!.quantizedConvs);

    await using engine = await Engine.load(out);
    expect(engine.info.precision).toBe('int8');
    expect(engine.info.classes).toEqual([...CLASSES]);
    const [p] = await engine.infer(verify[0]!);
    expect(CLASSES).toContain(p!.predictedClass);
  });

  it('fp32: writes the graph-optimised model with its metadata, giving the same predictions', async () => {
    const out = join(dir, 'tiny.fp32.onnx');
    const r = await buildEngine({ model: fp32, out, precision: 'fp32', verifyImages: verify });
    expect(r.verification!.top1_agreement).toBe(1);
    await using a = await Engine.load(fp32);
    await using b = await Engine.load(out);
    expect(b.info.metadataSource).toBe('embedded');
    expect(b.info.precision).toBe('fp32');
    expect((await b.infer(verify)).map((x) => x.predictedClass)).toEqual(
      (await a.infer(verify)).map((x) => x.predictedClass),
    );
  });

  it("fp32: says when the model runs on ONNX Runtime only (its own operators), and 'basic' keeps standard ONNX", async () => {
    // Default name and level: ONNX Runtime's fused operators, named and recorded so.
    const r = await buildEngine({ model: fp32, precision: 'fp32' });
    expect(r.file).toBe(join(dir, 'tiny.fp32.ort.onnx'));
    expect(r.operators).toMatchObject({ portable: false, runtime: 'onnxruntime' });
    expect(r.operators!.custom_ops.some((op) => op.startsWith('com.microsoft:'))).toBe(true);
    const domains = new Set((decodeModel(readFileSync(r.file), 'm').graph!.node ?? []).map((n) => n.domain ?? ''));
    expect(domains.has('com.microsoft')).toBe(true);
    expect(JSON.parse(readFileSync(r.sidecar, 'utf8')).operators.portable).toBe(false);
    const meta = JSON.parse(readOnnxInfo(readFileSync(r.file), 'm').props.trt_flowers!);
    expect(meta).toMatchObject({ portable: false, runtime: 'onnxruntime', graph_optimization: 'extended' });
    // An engine is not a source model: building from it again is refused with the reason.
    await expect(buildEngine({ model: r.file, precision: 'int8', calibration })).rejects.toThrow(
      /already a built fp32 onnxruntime engine, with ONNX Runtime's own operators/,
    );

    const basic = await buildEngine({ model: fp32, precision: 'fp32', graphOptimization: 'basic' });
    expect(basic.file).toBe(join(dir, 'tiny.fp32.onnx'));
    expect(basic.operators).toEqual({ domains: [''], portable: true, runtime: 'any', custom_ops: [] });
    const ops = new Set((decodeModel(readFileSync(basic.file), 'm').graph!.node ?? []).map((n) => n.domain ?? ''));
    expect([...ops]).toEqual(['']);
    await expect(buildEngine({ model: fp32, precision: 'fp32', graphOptimization: 'all' as never })).rejects.toThrow(
      RangeError,
    );
  });

  it('records the resize kernel and decoder conventions in the ONNX model and the sidecar', async () => {
    const props = readOnnxInfo(readFileSync(fp32), 'm').props;
    const expected = { kernel: 'linear', decoder: DECODER_CONVENTIONS };
    expect(JSON.parse(props.preprocessing!)).toMatchObject(expected);
    expect(JSON.parse(props.trt_flowers!).preprocessing).toMatchObject(expected);
    const r = await buildEngine({ model: fp32, out: join(dir, 'kernel.fp32.onnx'), precision: 'fp32' });
    expect(JSON.parse(readFileSync(r.sidecar, 'utf8')).preprocessing).toMatchObject(expected);
  });

  it('refuses what cannot be built here, with messages that say why', async () => {
    await expect(buildEngine({ model: fp32, out: join(dir, 'x.onnx'), precision: 'fp16' })).rejects.toThrow(
      /fp16 engines are built by TensorRT/,
    );
    await expect(
      buildEngine({ model: fp32, out: join(dir, 'x.engine'), precision: 'fp32', backend: 'tensorrt' }),
    ).rejects.toThrow(BackendUnavailableError);
    await expect(buildEngine({ model: fp32, out: join(dir, 'y.onnx'), precision: 'int8' })).rejects.toThrow(
      /INT8 needs calibration photos/,
    );
  });

  it('a corrupt ONNX file, a model without metadata and a folder with no usable photos are clear errors', async () => {
    const corrupt = join(dir, 'corrupt.onnx');
    writeFileSync(corrupt, readFileSync(fp32).subarray(0, 3000));
    await expect(buildEngine({ model: corrupt, out: join(dir, 'c.onnx'), precision: 'fp32' })).rejects.toThrow(
      ModelLoadError,
    );
    await expect(
      buildEngine({ model: join(dir, 'none.onnx'), out: join(dir, 'c.onnx'), precision: 'fp32' }),
    ).rejects.toThrow(/not found/);
    const junk = join(dir, 'junk');
    mkdirSync(junk);
    writeFileSync(join(junk, 'a.jpg'), 'not a photo');
    writeFileSync(join(junk, 'b.png'), Buffer.alloc(100));
    await expect(
      buildEngine({ model: fp32, out: join(dir, 'd.onnx'), precision: 'int8', calibration: junk }),
    ).rejects.toThrow(DataError);
    await expect(
      buildEngine({ model: fp32, out: join(dir, 'd.onnx'), precision: 'int8', calibration: junk }),
    ).rejects.toThrow(/no usable calibration photos .*2 could not be decoded/);
  });
});
