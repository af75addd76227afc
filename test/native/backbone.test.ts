// The Python backbone export (scripts/export_backbone.py via exportBackbone) and the exported models in libtorch:
// RexNet-150 (the project's own definition), MobileNetV2 with the shared ImageNet weights, frozen BatchNorm, and
// bad inputs. Each export spawns Debian's Python with torch (a few seconds each).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { preprocessBatch } from '../../src/data/preprocess.js';
import { ExportError } from '../../src/errors.js';
import { exportBackbone, type BackboneArch, type ExportBackboneResult } from '../../src/torch/backbone.js';
import { defaultPython } from '../../src/util/python.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { CLASSES, hasFlowers, photos, repoRoot } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-backbone-'));
const sharedDir = resolve(repoRoot, '..', 'shared', 'models', 'mobilenet_v2_imagenet');
const sharedWeights = join(sharedDir, 'mobilenet_v2_imagenet_fp32_torchvision.safetensors');
const hasShared = existsSync(sharedWeights) && existsSync(join(sharedDir, 'samples'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** N images at size×size: real photos when present (one per class, cycling), else a fixed pattern. */
async function images(n: number, size: number): Promise<Float32Array> {
  if (hasFlowers) {
    const files = Array.from({ length: n }, (_, i) => photos(CLASSES[i % 5] as string, 1, Math.floor(i / 5))[0]);
    return preprocessBatch(files as string[], { size });
  }
  return Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i * 0.37) * 1.5);
}

const maxDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('rexnet_150 export (scripts/rexnet.py)', () => {
  let plain: ExportBackboneResult;
  let frozen: ExportBackboneResult;
  const plainPath = join(tmp, 'rexnet.pt');
  const frozenPath = join(tmp, 'rexnet-frozen.pt');

  beforeAll(async () => {
    // Two exports side by side: each Python process uses one thread here.
    [plain, frozen] = await Promise.all([
      exportBackbone({ arch: 'rexnet_150', out: plainPath, numClasses: 5, seed: 1 }),
      exportBackbone({ arch: 'rexnet_150', out: frozenPath, numClasses: 5, freezeBn: true, dropout: 0 }),
    ]);
  });

  it('reports the architecture: 1920 features, about 9.7M parameters with a 1000-class head', () => {
    expect(plain).toMatchObject({ arch: 'rexnet_150', num_classes: 5, embedding_size: 1920, pretrained: false });
    expect(plain.source).toContain('rexnet');
    expect(plain.parameters_imagenet_head).toBeGreaterThan(9_500_000);
    expect(plain.parameters_imagenet_head).toBeLessThan(9_900_000);
    // The 5-class head: 1000-class count less 995 rows of the 1920-wide linear layer.
    expect(plain.parameters).toBe(plain.parameters_imagenet_head - 995 * 1921);
    expect(plain.freeze_bn).toBe(false);
    expect(frozen.frozen_batchnorms).toBeGreaterThan(50);
  });

  it('loads in libtorch; forward at 64 and 224 gives [N, 5] logits and [N, 1920] embeddings, finite', async () => {
    await using model = await TorchModel.load(plainPath);
    expect(model.info.parameterCount).toBe(plain.parameters);
    for (const size of [64, 224]) {
      const out = await model.forward(await images(2, size), [2, 3, size, size]);
      expect(out.batchSize).toBe(2);
      expect(out.numClasses).toBe(5);
      expect(out.embeddingSize).toBe(1920);
      expect(out.logits).toHaveLength(10);
      expect(out.embedding).toHaveLength(2 * 1920);
      expect(out.logits.every(Number.isFinite)).toBe(true);
      expect(out.embedding.every(Number.isFinite)).toBe(true);
    }
  });

  it('train mode and eval mode differ (BatchNorm batch statistics, dropout)', async () => {
    await using model = await TorchModel.load(plainPath);
    const x = await images(4, 64);
    const evalOut = await model.forward(x, [4, 3, 64, 64]);
    await model.setTraining(true);
    const trainOut = await model.forward(x, [4, 3, 64, 64]);
    expect(maxDiff(evalOut.embedding, trainOut.embedding)).toBeGreaterThan(1e-3);
  });

  it('--freeze-bn with dropout 0: train-mode forward equals eval-mode forward', async () => {
    await using model = await TorchModel.load(frozenPath);
    const x = await images(4, 64);
    const evalOut = await model.forward(x, [4, 3, 64, 64]);
    await model.setTraining(true);
    expect(model.info.training).toBe(true);
    const trainOut = await model.forward(x, [4, 3, 64, 64]);
    expect(maxDiff(evalOut.logits, trainOut.logits)).toBeLessThan(1e-5);
    expect(maxDiff(evalOut.embedding, trainOut.embedding)).toBeLessThan(1e-5);
    // And the running statistics did not move: eval mode after a train-mode pass is unchanged.
    await model.setTraining(false);
    expect(maxDiff(evalOut.logits, (await model.forward(x, [4, 3, 64, 64])).logits)).toBeLessThan(1e-6);
  });
});

describe.skipIf(!hasShared)('mobilenet_v2 with the shared ImageNet weights', () => {
  it('passes the ImageNet check before the head is replaced, and the 5-class model runs', async () => {
    const out = join(tmp, 'mobilenet.pt');
    const r = await exportBackbone({
      arch: 'mobilenet_v2',
      out,
      weights: sharedWeights,
      verifyImagenet: join(sharedDir, 'samples'),
      numClasses: 5,
      freezeBn: true,
    });
    expect(r.pretrained).toBe(true);
    expect(r.source).toContain('quantization'); // the ReLU float model the weights were trained with
    const byImage = Object.fromEntries((r.imagenet_check ?? []).map((row) => [row.image, row]));
    expect(byImage['samoyed.jpg']?.top1).toBe('Samoyed');
    expect(byImage['samoyed.jpg']?.prob).toBeGreaterThan(0.8);
    expect(byImage['horse.jpg']?.top1).toBe('horse cart');
    expect(['Eskimo dog', 'malamute', 'timber wolf']).toContain(byImage['wolf.png']?.top1);
    expect(r.imagenet_check?.every((row) => row.ok === true)).toBe(true);
    expect(r.imagenet_embedding_max_diff).toBeLessThan(1e-3);

    await using model = await TorchModel.load(out);
    const y = await model.forward(await images(2, 224), [2, 3, 224, 224]);
    expect(y.numClasses).toBe(5);
    expect(y.embeddingSize).toBe(1280);
    expect(y.embedding.every(Number.isFinite)).toBe(true);
  });
});

describe('bad inputs', () => {
  const out = join(tmp, 'bad.pt');

  it('an unknown arch is a RangeError naming `arch` and the value', async () => {
    await expect(exportBackbone({ arch: 'resnet' as BackboneArch, out })).rejects.toThrow(RangeError);
    await expect(exportBackbone({ arch: 'resnet' as BackboneArch, out })).rejects.toThrow(
      /Expected one of tiny, mobilenet_v2, rexnet_150 for `arch` but received 'resnet'/,
    );
  });

  it('out-of-range options are RangeErrors naming the option', async () => {
    await expect(exportBackbone({ arch: 'rexnet_150', out, dropout: 1 })).rejects.toThrow(/`dropout`.*received 1/);
    await expect(exportBackbone({ arch: 'mobilenet_v2', out, timm: true })).rejects.toThrow(/`timm`.*mobilenet_v2/);
    await expect(exportBackbone({ arch: 'rexnet_150', out, numClasses: 1 })).rejects.toThrow(RangeError);
  });

  it('a missing weights file is an ExportError naming the file', async () => {
    const missing = join(tmp, 'nope.safetensors');
    const err = await exportBackbone({ arch: 'mobilenet_v2', out, weights: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).message).toContain(`weights file not found: ${missing}`);
  });

  it('safetensors of another architecture (the tiny model keys) is an ExportError listing the mismatch', async () => {
    // The tiny CNN's first block under the classifier's key names: features.0.0.weight clashes in shape.
    const weights = join(tmp, 'tiny-keys.safetensors');
    writeSafetensors(weights, {
      'features.0.0.weight': [16, 3, 3, 3],
      'features.0.1.weight': [16],
      'features.0.1.bias': [16],
      'classifier.weight': [5, 64],
    });
    const err = await exportBackbone({ arch: 'mobilenet_v2', out, weights }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    const message = (err as ExportError).message;
    expect(message).toContain('not a torchvision MobileNetV2');
    expect(message).toMatch(/wrong shape 3 \(features\.0\.0\.weight \[16, 3, 3, 3\] \(model \[32, 3, 3, 3\]\)/);
    expect(message).toMatch(/unexpected 1 \(classifier\.weight\)/);
    expect(existsSync(out)).toBe(false);
  });

  it.skipIf(!hasShared)('a truncated weights file is an ExportError saying so', async () => {
    const weights = join(tmp, 'truncated.safetensors');
    const fd = openSync(sharedWeights, 'r');
    const head = Buffer.alloc(200_000);
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    writeFileSync(weights, head);
    const err = await exportBackbone({ arch: 'mobilenet_v2', out, weights }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).message).toMatch(/truncated or corrupt safetensors file/);
    // The MobileNetV2 weights given to rexnet_150: a clear architecture mismatch.
    const copy = join(tmp, 'mobilenet.safetensors');
    copyFileSync(sharedWeights, copy);
    const err2 = await exportBackbone({ arch: 'rexnet_150', out, weights: copy }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ExportError);
    expect((err2 as ExportError).message).toMatch(/not a timm-keyed rexnet_150 .*0 of \d+ tensors match/);
  });

  it.skipIf(timmImportable())('--timm without the timm package is an ExportError saying how to fix it', async () => {
    const err = await exportBackbone({ arch: 'rexnet_150', out, timm: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).message).toMatch(/--timm needs the timm package.*pip install timm/);
  });
});

function timmImportable(): boolean {
  try {
    execFileSync(defaultPython(), [
      '-c',
      'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("timm") else 1)',
    ]);
    return true;
  } catch {
    return false;
  }
}

/** A float32 .safetensors file of zeros with the given tensor shapes. */
function writeSafetensors(path: string, shapes: Record<string, number[]>): void {
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([size, json, Buffer.alloc(offset)]));
}
