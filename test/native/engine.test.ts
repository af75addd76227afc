import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine, softmax } from '../../src/engine/Engine.js';
import { readOnnxInfo } from '../../src/onnx/model.js';
import {
  BackendUnavailableError,
  DisposedError,
  ExportError,
  InvalidImageError,
  ModelLoadError,
} from '../../src/errors.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { OnnxRuntimeBackend } from '../../src/engine/onnxruntime.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { CLASSES, hasFlowers, photos, ticksDuring, tinyModelPath } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-engine-'));
const onnxPath = join(dir, 'tiny.onnx');
const images = hasFlowers ? CLASSES.flatMap((c) => photos(c, 3)) : [];

describe.skipIf(!hasFlowers)('Engine over libtorch and ONNX Runtime', () => {
  let torch: Engine;
  let ort: Engine;

  beforeAll(async () => {
    const report = await exportOnnx({ checkpoint: tinyModelPath, out: onnxPath, verifyImages: images.slice(0, 8) });
    expect(report.verification?.passed).toBe(true);
    torch = await Engine.load(tinyModelPath);
    ort = await Engine.load(onnxPath);
  });

  afterAll(async () => {
    await torch?.dispose();
    await ort?.dispose();
  });

  it('chooses the backend by the file and reports what it runs', () => {
    expect(torch.info.backend).toBe('libtorch');
    expect(ort.info.backend).toBe('onnxruntime');
    for (const e of [torch, ort]) {
      expect(e.info.classes).toEqual([...CLASSES]);
      expect(e.info.inputShape).toEqual([-1, 3, 224, 224]);
      expect(e.info.precision).toBe('fp32');
      expect(e.info.device).toBe('cpu');
      expect(e.info.embeddingSize).toBeGreaterThan(0);
    }
    expect(torch.info.versions.libtorch).toMatch(/^\d+\.\d+/);
    expect(ort.info.versions.onnxruntime).toMatch(/^\d+\.\d+/);
    // The ONNX file carries its own metadata; the bare test checkpoint falls back to defaults.
    expect(ort.info.metadataSource).toBe('embedded');
    expect(ort.info.metadata.source_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(torch.info.metadataSource).toBe('defaults');
  });

  it('gives the same top-1 on real photos through both backends, and probabilities that sum to 1', async () => {
    const a = await torch.infer(images, { embeddings: true, logits: true });
    const b = await ort.infer(images, { embeddings: true, logits: true });
    expect(a).toHaveLength(images.length);
    for (let i = 0; i < images.length; i++) {
      const pa = a[i]!;
      const pb = b[i]!;
      expect(pb.predictedClass).toBe(pa.predictedClass);
      expect(Object.keys(pa.probabilities)).toEqual([...CLASSES]);
      const sum = Object.values(pa.probabilities).reduce((s, p) => s + p, 0);
      expect(sum).toBeCloseTo(1, 6);
      expect(pa.confidence).toBe(Math.max(...Object.values(pa.probabilities)));
      expect(pa.classIndex).toBe(CLASSES.indexOf(pa.predictedClass as (typeof CLASSES)[number]));
      for (let k = 0; k < pa.logits!.length; k++) expect(Math.abs(pa.logits![k]! - pb.logits![k]!)).toBeLessThan(1e-4);
      expect(pa.embedding!.length).toBe(torch.info.embeddingSize);
    }
  });

  it('takes paths, Buffers of encoded images and preprocessed tensors alike', async () => {
    const file = images[0]!;
    const [fromPath] = await ort.infer(file);
    const [fromBuffer] = await ort.infer([readFileSync(file)]);
    const tensor = await ort.preprocess([file]);
    const [fromTensor] = await ort.infer(tensor);
    expect(fromBuffer!.probabilities).toEqual(fromPath!.probabilities);
    expect(fromTensor!.probabilities).toEqual(fromPath!.probabilities);
  });

  it('splits inputs larger than batchSize and keeps their order', async () => {
    await using small = await Engine.load(onnxPath, { batchSize: 4 });
    const all = await small.infer(images);
    const one = await Promise.all(images.map(async (f) => (await ort.infer([f]))[0]!));
    expect(all.map((p) => p.predictedClass)).toEqual(one.map((p) => p.predictedClass));
  });

  it('keeps the event loop turning during inference on every backend', async () => {
    const batch = { data: new Float32Array(32 * 3 * 224 * 224).fill(0.5), shape: [32, 3, 224, 224] as const };
    for (const engine of [torch, ort]) {
      await engine.run(batch); // warm-up
      const t = await ticksDuring(async () => {
        for (let i = 0; i < 4; i++) await engine.run(batch);
      });
      expect(t.ms).toBeGreaterThan(20);
      // A blocked loop gives 0-3 ticks; a free one about one per millisecond (timers are coarse under load).
      expect(t.ticks, `${engine.info.backend}: ${t.ticks} ticks in ${t.ms.toFixed(0)} ms`).toBeGreaterThan(t.ms / 10);
    }
  });

  it("decodes on ONNX Runtime's session thread ('worker') to the same logits as on the pool, and leaves what the native decoder does not take to the pool", async () => {
    await using pool = await Engine.load(onnxPath, { decode: 'pool' });
    await using worker = await Engine.load(onnxPath, { decode: 'worker', batchSize: 4 });
    const png = join(dir, 'photo.png');
    writeFileSync(png, await sharp(images[1]!).png().toBuffer());
    const inputs = [images[0]!, readFileSync(images[2]!), ...images.slice(3, 9), png, images[9]!];
    const expected = await pool.infer(inputs, { logits: true, embeddings: true });
    const got = await worker.infer(inputs, { logits: true, embeddings: true });
    // Batches of 4: the first two decode in the worker, the third holds the PNG and goes to the pool.
    expect(got.map((p) => p.logits)).toEqual(expected.map((p) => p.logits));
    expect(got.map((p) => p.embedding)).toEqual(expected.map((p) => p.embedding));
    // 'auto' (the default) gives the same for one image as for many.
    const [one] = await ort.infer(images[4]!, { logits: true });
    expect(one!.logits).toEqual(expected[3]!.logits);
    // Errors come from the pool's decode, which names the image, and lose nothing: the engine goes on.
    await expect(worker.infer([images[0]!, join(dir, 'missing.jpg')])).rejects.toThrow(/missing\.jpg/);
    await expect(worker.infer([readFileSync(images[0]!).subarray(0, 2000)])).rejects.toThrow(InvalidImageError);
    await expect(worker.infer(images[0]!, { maxPixels: 1000 })).rejects.toThrow(/exceeds the pixel limit of 1000/);
    await expect(worker.infer(images[0]!, { maxFileBytes: 100 })).rejects.toThrow(InvalidImageError);
    // A Buffer that is a view into a larger one goes whole and only its own bytes.
    const bytes = readFileSync(images[0]!);
    const slab = Buffer.concat([Buffer.alloc(1000, 7), bytes, Buffer.alloc(1000, 9)]);
    const [viewed] = await worker.infer(slab.subarray(1000, 1000 + bytes.length), { logits: true });
    expect(viewed!.logits).toEqual(expected[0]!.logits);
    expect((await worker.infer(images[0]!))[0]!.predictedClass).toBe(expected[0]!.predictedClass);
    await expect(Engine.load(onnxPath, { decode: 'gpu' as never })).rejects.toThrow(/'auto', 'pool' or 'worker'/);
  });

  it('OnnxRuntimeBackend.runImages decodes JPEG paths and bytes on the session thread, and runs nothing for a PNG', async () => {
    const backend = await OnnxRuntimeBackend.load(onnxPath, { device: 'cpu', threads: 1 });
    try {
      expect(backend.decodesImages).toBe(true);
      const p = ort.info.preprocessing;
      const decode = { size: p.size, mode: p.resize, mean: p.mean, std: p.std, maxPixels: 1e8, maxFileBytes: 1e8 };
      const batch = [images[0]!, new Uint8Array(readFileSync(images[1]!))];
      const out = await backend.runImages(batch, decode);
      const tensor = await ort.preprocess(batch);
      expect(out!.batchSize).toBe(2);
      expect(out!.logits).toEqual((await backend.run(tensor.data, tensor.shape)).logits);
      const png = await sharp(images[1]!).png().toBuffer();
      expect(await backend.runImages([images[0]!, png], decode)).toBeNull();
      expect(await backend.runImages([join(dir, 'missing.jpg')], decode)).toBeNull();
      expect(await backend.runImages([images[0]!], { ...decode, maxFileBytes: 10 })).toBeNull();
      expect(await backend.runImages([images[0]!], { ...decode, maxPixels: 10 })).toBeNull();
      await expect(backend.runImages([images[0]!], { ...decode, size: 0 })).rejects.toThrow(/size/);
    } finally {
      await backend.dispose();
    }
  });

  it('runs ONNX Runtime sessions in several workers at once', async () => {
    await using pool = await Engine.load(onnxPath, { workers: 2, threads: 1, batchSize: 2 });
    const results = await Promise.all([pool.infer(images.slice(0, 6)), pool.infer(images.slice(6, 12))]);
    const expected = await ort.infer(images.slice(0, 12));
    expect(results.flat().map((p) => p.predictedClass)).toEqual(expected.map((p) => p.predictedClass));
  });

  it('exports with a static batch and pads smaller batches to it', async () => {
    const out = join(dir, 'static.onnx');
    const report = await exportOnnx({
      checkpoint: tinyModelPath,
      out,
      staticBatch: 4,
      verifyImages: images.slice(0, 6),
    });
    expect(report.dynamic_batch).toBe(false);
    expect(report.verification?.passed).toBe(true);
    await using e = await Engine.load(out);
    expect(e.info.inputShape).toEqual([4, 3, 224, 224]);
    const got = await e.infer(images.slice(0, 7));
    const expected = await ort.infer(images.slice(0, 7));
    expect(got.map((p) => p.predictedClass)).toEqual(expected.map((p) => p.predictedClass));
  });

  it('writes metadata_props, a report beside the model, and fails loudly when the export does not match', async () => {
    const info = readOnnxInfo(readFileSync(onnxPath), onnxPath);
    expect(JSON.parse(info.props.classes!)).toEqual([...CLASSES]);
    expect(JSON.parse(info.props.preprocessing!)).toMatchObject({ size: 224, resize: 'fill' });
    expect(info.props.source_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.opset).toBeGreaterThanOrEqual(13);
    const report = JSON.parse(readFileSync(join(dir, 'tiny.export.json'), 'utf8'));
    expect(report.verification.images).toBe(8);
    expect(report.verification.top1_agreement).toBe(1);
    expect(report.verification.max_abs_diff_logits).toBeLessThanOrEqual(1e-4);

    const strict = join(dir, 'strict.onnx');
    await expect(
      exportOnnx({ checkpoint: tinyModelPath, out: strict, verifyImages: images.slice(0, 4), tolerance: 0 }),
    ).rejects.toThrow(/does not match the checkpoint|max \|logit diff\|/);
    // Either the diff is exactly 0 (then the export passed) or nothing reached the output path.
    if (!existsSync(strict)) {
      expect(JSON.parse(readFileSync(join(dir, 'strict.export.json'), 'utf8')).verification.passed).toBe(false);
    }
  });

  it('embeds classes and preprocessing in TorchScript checkpoints, and checks them against the model', async () => {
    const model = await TorchModel.load(tinyModelPath);
    const named = join(dir, 'named.pt');
    const classes = ['a', 'b', 'c', 'd', 'e'];
    model.native.setMetadata(JSON.stringify({ classes, preprocessing: { size: 96, resize: 'center-crop' } }));
    await model.save(named);
    const wrong = join(dir, 'wrong-classes.pt');
    model.native.setMetadata(JSON.stringify({ classes: ['a', 'b', 'c'] }));
    await model.save(wrong);
    await model.dispose();
    await using e = await Engine.load(named);
    expect(e.info.metadataSource).toBe('embedded');
    expect(e.info.classes).toEqual(classes);
    expect(e.info.preprocessing).toMatchObject({ size: 96, resize: 'center-crop' });
    const [p] = await e.infer(images[0]!);
    expect(classes).toContain(p!.predictedClass);
    await expect(Engine.load(wrong)).rejects.toThrow(/outputs 5 classes but its metadata names 3/);
  });

  describe('BAD CALL', () => {
    it('Engine.load rejects wrong types and values with TypeError / RangeError', async () => {
      await expect(Engine.load(5 as unknown as string)).rejects.toThrow(TypeError);
      await expect(Engine.load('')).rejects.toThrow(TypeError);
      await expect(Engine.load(onnxPath, null as never)).rejects.toThrow(TypeError);
      await expect(Engine.load(onnxPath, { backend: 'tflite' as never })).rejects.toThrow(RangeError);
      await expect(Engine.load(onnxPath, { device: 'gpu' })).rejects.toThrow(RangeError);
      await expect(Engine.load(onnxPath, { batchSize: 0 })).rejects.toThrow(RangeError);
      await expect(Engine.load(onnxPath, { workers: 1.5 })).rejects.toThrow(RangeError);
    });

    it('missing, corrupt and truncated model files give ModelLoadError naming the file', async () => {
      await expect(Engine.load(join(dir, 'nope.onnx'))).rejects.toThrow(ModelLoadError);
      const garbage = join(dir, 'garbage.onnx');
      writeFileSync(garbage, Buffer.from('this is not a protobuf at all, just text \x00\xff\xfe'));
      await expect(Engine.load(garbage)).rejects.toThrow(/garbage\.onnx.*not a valid ONNX model/);
      const truncated = join(dir, 'truncated.onnx');
      writeFileSync(truncated, readFileSync(onnxPath).subarray(0, 5000));
      await expect(Engine.load(truncated)).rejects.toThrow(ModelLoadError);
      const badPt = join(dir, 'bad.pt');
      writeFileSync(badPt, 'not a zip');
      await expect(Engine.load(badPt)).rejects.toThrow(ModelLoadError);
      const unknown = join(dir, 'model.bin');
      writeFileSync(unknown, 'xyz');
      await expect(Engine.load(unknown)).rejects.toThrow(/cannot tell which backend/);
    });

    it('a TensorRT engine without TensorRT in the build gives BackendUnavailableError saying what is missing', async () => {
      const plan = join(dir, 'model.engine');
      writeFileSync(plan, Buffer.alloc(64));
      await expect(Engine.load(plan)).rejects.toThrow(BackendUnavailableError);
      await expect(Engine.load(plan)).rejects.toThrow(/TensorRT/);
    });

    it('an export without verification, then a tensor of another size than the model takes, is refused', async () => {
      const out = join(dir, 'small.onnx');
      const py = await exportOnnx({ checkpoint: tinyModelPath, out, verify: false });
      expect(py.verification).toBeNull();
      await using e = await Engine.load(out);
      await expect(e.infer({ data: new Float32Array(3 * 64 * 64), shape: [1, 3, 64, 64] })).rejects.toThrow(
        /Expected input shape \[N, 3, 224, 224\]/,
      );
    });

    it('infer rejects bad inputs with typed errors and never crashes the process', async () => {
      await expect(torch.infer([])).rejects.toThrow(RangeError);
      await expect(torch.infer(42 as never)).rejects.toThrow(TypeError);
      await expect(torch.infer([null as never])).rejects.toThrow(TypeError);
      await expect(torch.infer(join(dir, 'missing.jpg'))).rejects.toThrow(InvalidImageError);
      await expect(torch.infer(Buffer.from('not an image'))).rejects.toThrow(InvalidImageError);
      await expect(ort.infer([readFileSync(images[0]!).subarray(0, 2000)])).rejects.toThrow(InvalidImageError);
      await expect(torch.infer({ data: new Float32Array(10), shape: [1, 3, 224, 224] })).rejects.toThrow(RangeError);
      await expect(torch.infer({ data: [1, 2] as never, shape: [1, 3, 224, 224] })).rejects.toThrow(TypeError);
      await expect(ort.infer({ data: new Float32Array(3 * 224 * 224), shape: [1, 3, 224] as never })).rejects.toThrow(
        TypeError,
      );
    });

    it('a disposed engine rejects with DisposedError; dispose is idempotent', async () => {
      for (const file of [tinyModelPath, onnxPath]) {
        const e = await Engine.load(file);
        await e.dispose();
        await e.dispose();
        expect(e.disposed).toBe(true);
        await expect(e.infer(images[0]!)).rejects.toThrow(DisposedError);
      }
    });

    it('refuses NaN and Inf in a tensor input with a RangeError naming the input and the first bad index', async () => {
      const shape = [2, 3, 224, 224] as const;
      for (const e of [torch, ort]) {
        const data = new Float32Array(2 * 3 * 224 * 224).fill(0.25);
        data[150_000] = Number.NaN;
        data[200_000] = Number.POSITIVE_INFINITY;
        const err = await e.infer({ data, shape }).catch((x: unknown) => x);
        expect(err, e.info.backend).toBeInstanceOf(RangeError);
        expect((err as Error).message).toMatch(/`data`.*index 150000.*NaN/);
        data[150_000] = 0;
        await expect(e.run({ data, shape })).rejects.toThrow(/`data`.*index 200000.*Infinity/);
        // A batch past the first (the engine splits inputs into batches) is checked too.
        const [first] = await e.infer({ data: data.subarray(0, 3 * 224 * 224), shape: [1, 3, 224, 224] });
        expect(Number.isFinite(first!.confidence)).toBe(true);
        // Allowed on request: the model then sees them as they are.
        await expect(e.run({ data, shape }, { allowNonFinite: true })).resolves.toBeDefined();
      }
    });

    it('dispose waits for a call in flight that spans several batches, and refuses calls after it starts', async () => {
      const many = CLASSES.flatMap((c) => photos(c, 4));
      for (const file of [tinyModelPath, onnxPath]) {
        const e = await Engine.load(file, { batchSize: 2 });
        const order: string[] = [];
        const inferring = e.infer(many).then((r) => {
          order.push('infer');
          return r;
        });
        const running = e
          .run({ data: new Float32Array(6 * 3 * 224 * 224), shape: [6, 3, 224, 224] })
          .then(() => void order.push('run'));
        const disposing = e.dispose().then(() => void order.push('dispose'));
        expect(e.disposed).toBe(true);
        await expect(e.infer(many[0]!)).rejects.toThrow(DisposedError);
        const results = await inferring;
        expect(results, file).toHaveLength(many.length);
        await Promise.all([running, disposing, e.dispose()]);
        expect(order.at(-1)).toBe('dispose');
        expect(order).toContain('run');
      }
    });

    it('exportOnnx rejects a corrupt checkpoint and a bad output name', async () => {
      const bad = join(dir, 'corrupt.pt');
      writeFileSync(bad, 'PK\x03\x04 broken zip');
      await expect(exportOnnx({ checkpoint: bad, out: join(dir, 'c.onnx'), verify: false })).rejects.toThrow(
        ExportError,
      );
      await expect(exportOnnx({ checkpoint: tinyModelPath, out: join(dir, 'c.txt'), verify: false })).rejects.toThrow(
        RangeError,
      );
      await expect(exportOnnx({ checkpoint: tinyModelPath, out: join(dir, 'd.onnx') })).rejects.toThrow(
        /verified on real photos/,
      );
    });
  });
});

describe('softmax', () => {
  it('is stable for large logits', () => {
    const p = softmax([1000, 1000, -1000]);
    expect(p[0]).toBeCloseTo(0.5, 12);
    expect(p[2]).toBe(0);
  });
});
