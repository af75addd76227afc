import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine } from '../../src/engine/Engine.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { ModelConfigError, parseModelConfig, writeModelConfig } from '../../src/serve/triton/config.js';
import { exportTritonRepository } from '../../src/serve/triton/export.js';
import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

const run = promisify(execFile);

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** protobuf's JSON mapping writes int64 as strings: compare with every number as a string. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_k, v) => (typeof v === 'number' ? String(v) : v), 0);

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, sorted(v)]),
  );
}

describe.skipIf(!hasFlowers)('export-triton: a Triton model repository', () => {
  const dir = mkdtempSync(join(tmpdir(), 'triton-'));
  const repo = join(dir, 'repo');
  const onnx = join(dir, 'flowers.onnx');
  const files = CLASSES.map((c) => photos(c, 1, 7)[0]!);
  let readback: Json;

  beforeAll(async () => {
    await exportOnnx({ checkpoint: tinyModelPath, out: onnx, verify: false });
    await exportTritonRepository({ modelPath: onnx, out: repo, name: 'flowers', maxBatch: 8 });
    await exportTritonRepository({ modelPath: onnx, out: repo, name: 'flowers', version: 2, maxBatch: 8 });
    await exportTritonRepository({ modelPath: tinyModelPath, out: repo, name: 'tiny_pt', instances: 2 });
    await run('/usr/bin/python3', [
      '-m',
      'grpc_tools.protoc',
      `-I${join(repoRoot, 'proto')}`,
      `--python_out=${dir}`,
      join(repoRoot, 'proto', 'model_config.proto'),
    ]);
    const configs = ['flowers', 'flowers_preprocess', 'flowers_ensemble', 'tiny_pt'].map((m) =>
      join(repo, m, 'config.pbtxt'),
    );
    const { stdout } = await run('/usr/bin/python3', [
      join(repoRoot, 'test', 'native', 'triton_readback.py'),
      dir,
      join(repo, 'flowers_preprocess', '1', 'model.py'),
      dir,
      ...configs,
      '--',
      ...files,
    ]);
    readback = JSON.parse(stdout);
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the layout Triton reads: config.pbtxt, version folders, labels, the preprocessing ensemble', () => {
    for (const f of [
      'flowers/config.pbtxt',
      'flowers/labels.txt',
      'flowers/1/model.onnx',
      'flowers/2/model.onnx',
      'flowers_preprocess/config.pbtxt',
      'flowers_preprocess/1/model.py',
      'flowers_ensemble/config.pbtxt',
      'flowers_ensemble/1',
      'tiny_pt/1/model.pt',
    ]) {
      expect(existsSync(join(repo, f)), f).toBe(true);
    }
    expect(readFileSync(join(repo, 'flowers', 'labels.txt'), 'utf8')).toBe(`${CLASSES.join('\n')}\n`);
    expect(readFileSync(join(repo, 'flowers', '2', 'model.onnx'))).toEqual(readFileSync(onnx));
  });

  it("every config.pbtxt reads back the same with the project's parser and with python3-protobuf's text_format", async () => {
    const names = Object.keys(readback.configs);
    expect(names).toHaveLength(4);
    for (const file of names) {
      const ours = await parseModelConfig(readFileSync(file, 'utf8'), file);
      expect(canonical(sorted(ours)), file).toBe(canonical(sorted(readback.configs[file])));
    }
    const [classifier, , ensemble, pt] = names.map((n) => readback.configs[n]);
    expect(classifier).toMatchObject({
      name: 'flowers',
      platform: 'onnxruntime_onnx',
      max_batch_size: 8,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: ['3', '224', '224'] }],
      output: [
        { name: 'logits', data_type: 'TYPE_FP32', dims: ['5'], label_filename: 'labels.txt' },
        { name: 'embedding', data_type: 'TYPE_FP32', dims: ['64'] },
      ],
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: '5000' },
      instance_group: [{ count: 1, kind: 'KIND_CPU' }],
      version_policy: { all: {} },
    });
    expect(ensemble.platform).toBe('ensemble');
    expect(ensemble.input).toEqual([{ name: 'image', data_type: 'TYPE_STRING', dims: ['1'] }]);
    expect(ensemble.ensemble_scheduling.step.map((s: Json) => s.model_name)).toEqual(['flowers_preprocess', 'flowers']);
    expect(pt).toMatchObject({ platform: 'pytorch_libtorch', instance_group: [{ count: 2 }] });
    expect(pt.input[0].name).toBe('INPUT__0');
  });

  it("the repository's Python preprocessing gives the model the same classes as the server's", async () => {
    const engine = await Engine.load(onnx);
    try {
      const expected = await engine.infer(files);
      const size = engine.info.preprocessing.size;
      for (const [i, p] of readback.preprocess.entries()) {
        expect(p.shape).toEqual([3, size, size]);
        const raw = readFileSync(p.file);
        const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        const [pred] = await engine.infer({ data, shape: [1, 3, size, size] });
        expect(pred!.predictedClass, files[i]).toBe(expected[i]!.predictedClass);
        expect(Math.abs(pred!.confidence - expected[i]!.confidence), files[i]).toBeLessThan(0.05);
      }
    } finally {
      await engine.dispose();
    }
  });

  it('refuses an invalid config.pbtxt, naming the field', async () => {
    const good = readFileSync(join(repo, 'flowers', 'config.pbtxt'), 'utf8');
    const cases: [string, RegExp][] = [
      [`${good}\nmax_batch_sise: 4\n`, /max_batch_sise/],
      [
        good.replace('max_batch_size: 8', 'max_batch_size: "eight"'),
        /field `max_batch_size` \(line \d+\): expected an integer/,
      ],
      [
        good.replace('data_type: TYPE_FP32', 'data_type: TYPE_FLOAT'),
        /data_type.*TYPE_FLOAT|data_type: enum value expected/,
      ],
      [
        good.replace('preferred_batch_size: 8', 'preferred_batch_size: 64'),
        /field `dynamic_batching.preferred_batch_size` 64/,
      ],
      [good.replace('max_batch_size: 8', 'max_batch_size: 0'), /field `dynamic_batching` needs max_batch_size > 0/],
      [good.replace(/dims: 224/g, 'dims: 0'), /field `input\[0\].dims\[1\]` must be -1 or positive/],
      [good.replace('platform: "onnxruntime_onnx"', ''), /field `platform` or `backend` must be set/],
      [good.replace('count: 1', 'count: 0'), /field `instance_group\[0\].count`/],
      ['name: "x"\nplatform: "onnxruntime_onnx"\n', /field `input` must list at least one tensor/],
      [`${good}\n{`, /config.pbtxt/],
    ];
    for (const [text, message] of cases) {
      const parsed = parseModelConfig(text, 'flowers/config.pbtxt');
      await expect(parsed, String(message)).rejects.toBeInstanceOf(ModelConfigError);
      await expect(parsed, String(message)).rejects.toThrow(message);
    }
    await expect(writeModelConfig({ name: 'x', platform: 'onnxruntime_onnx', input: [] })).rejects.toThrow(
      /field `input`/,
    );
  });
});
