import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine, type Prediction } from '../../src/engine/Engine.js';
import { type InferenceServer, serve } from '../../src/serve/InferenceServer.js';
import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

const run = promisify(execFile);

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** Class-order probabilities of a prediction. */
const probs = (p: Prediction): number[] => CLASSES.map((c) => p.probabilities[c] as number);

function expectClose(actual: number[], expected: number[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - (expected[i] as number)), `${what}[${i}]`).toBeLessThan(1e-4));
}

describe.skipIf(!hasFlowers)('Open Inference Protocol (KServe V2) over REST, from a Python client', () => {
  const files = CLASSES.map((c) => photos(c, 1, 3)[0]!);
  const dir = mkdtempSync(join(tmpdir(), 'v2-rest-'));
  let engine: Engine;
  let server: InferenceServer;
  let expected: Prediction[];
  let out: Json;
  let size: number;

  beforeAll(async () => {
    engine = await Engine.load(tinyModelPath, { batchSize: 16 });
    size = engine.info.preprocessing.size;
    expected = await engine.infer(files, { logits: true, embeddings: true });
    const tensor = await engine.preprocess(files);
    const tensorFile = join(dir, 'input.f32');
    writeFileSync(tensorFile, Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    server = await serve(engine, { port: 0, maxImagesPerRequest: 10 });
    // The server runs in this process: the client must run asynchronously.
    const { stdout } = await run(
      '/usr/bin/python3',
      [join(repoRoot, 'test', 'native', 'v2_rest_client.py'), server.url, 'tiny', tensorFile, String(size), ...files],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    out = JSON.parse(stdout);
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers health, server and model metadata, readiness and configuration', () => {
    expect(out.server.status).toBe(200);
    expect(out.server.body).toMatchObject({
      name: 'trt-flowers',
      extensions: expect.arrayContaining(['binary_tensor_data']),
    });
    expect(out.live).toEqual({ status: 200, body: { live: true } });
    expect(out.ready).toEqual({ status: 200, body: { ready: true } });
    for (const m of [out.metadata, out.metadata_v1]) {
      expect(m.status).toBe(200);
      expect(m.body).toEqual({
        name: 'tiny',
        versions: ['1'],
        platform: 'pytorch_libtorch',
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [-1, 3, size, size] },
          { name: 'image', datatype: 'BYTES', shape: [-1] },
        ],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 5] },
          { name: 'logits', datatype: 'FP32', shape: [-1, 5] },
          { name: 'embedding', datatype: 'FP32', shape: [-1, engine.info.embeddingSize] },
          { name: 'label', datatype: 'BYTES', shape: [-1] },
        ],
      });
    }
    expect(out.model_ready).toEqual({ status: 200, body: { name: 'tiny', ready: true } });
    expect(out.model_ready_v1).toEqual({ status: 200, body: { name: 'tiny', ready: true } });
    expect(out.config.status).toBe(200);
    expect(out.config.body.config).toMatchObject({
      name: 'tiny',
      platform: 'pytorch_libtorch',
      max_batch_size: 16,
      input: [
        { name: 'input', data_type: 'TYPE_FP32', dims: [3, size, size] },
        { name: 'image', data_type: 'TYPE_STRING', dims: [1] },
      ],
      dynamic_batching: { max_queue_delay_microseconds: 5000 },
    });
  });

  it('FP32 tensors (JSON flat and nested, binary) give the probabilities of the engine', () => {
    const json = out.fp32_json;
    expect(json.status, JSON.stringify(json.body)).toBe(200);
    expect(json.body.id).toBe('fp32-1');
    expect(json.body.model_name).toBe('tiny');
    expect(json.body.model_version).toBe('1');
    const byName = Object.fromEntries(json.body.outputs.map((o: Json) => [o.name, o]));
    expect(Object.keys(byName)).toEqual(['probabilities', 'logits', 'embedding', 'label']);
    expect(byName.probabilities.shape).toEqual([5, 5]);
    expectClose(byName.probabilities.data, expected.flatMap(probs), 'fp32 json probabilities');
    expectClose(
      byName.logits.data,
      expected.flatMap((p) => [...p.logits!]),
      'fp32 json logits',
    );
    expect(byName.label).toEqual({
      name: 'label',
      datatype: 'BYTES',
      shape: [5],
      data: expected.map((p) => p.predictedClass),
    });

    expect(out.fp32_json_nested.status).toBe(200);
    expect(out.fp32_json_nested.body.outputs.map((o: Json) => o.name)).toEqual(['probabilities']);
    expectClose(out.fp32_json_nested.body.outputs[0].data, expected.flatMap(probs), 'fp32 nested');

    const bin = out.fp32_binary;
    expect(bin.status, JSON.stringify(bin.body)).toBe(200);
    expect(bin.type).toBe('application/octet-stream');
    expect(bin.header_length).toBeGreaterThan(0);
    const [p, label] = bin.body.outputs;
    expect(p.parameters.binary_data_size).toBe(5 * 5 * 4);
    expectClose(p.data, expected.flatMap(probs), 'fp32 binary');
    expect(label.data).toEqual(expected.map((e) => e.predictedClass));
  });

  it('BYTES tensors of real JPEGs (base64 in JSON, raw in binary) are decoded by the server', () => {
    for (const r of [out.bytes_json, out.bytes_binary]) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const byName = Object.fromEntries(r.body.outputs.map((o: Json) => [o.name, o]));
      expectClose(byName.probabilities.data, expected.flatMap(probs), 'bytes probabilities');
      expect(byName.label.data).toEqual(expected.map((p) => p.predictedClass));
    }
    expect(out.bytes_json.type).toMatch(/^application\/json/);
    // binary_data_output: every output in binary.
    expect(out.bytes_binary.type).toBe('application/octet-stream');
    expect(out.bytes_binary.body.outputs.every((o: Json) => o.parameters.binary_data_size > 0)).toBe(true);
  });

  it('returns the outputs asked for: label, top-k classification, embedding', () => {
    expect(out.select_label.body.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [5], data: expected.map((p) => p.predictedClass) },
    ]);
    const [top2, logits] = out.select_top2.body.outputs;
    expect(top2.datatype).toBe('BYTES');
    expect(top2.shape).toEqual([5, 2]);
    expected.forEach((p, i) => {
      const [score, index, label] = (top2.data[2 * i] as string).split(':');
      expect(label).toBe(p.predictedClass);
      expect(Number(index)).toBe(p.classIndex);
      expect(Math.abs(Number(score) - p.confidence)).toBeLessThan(1e-4);
    });
    expect(logits.name).toBe('logits');
    const [embedding] = out.select_embedding_binary.body.outputs;
    expect(embedding.shape).toEqual([1, engine.info.embeddingSize]);
    expectClose(embedding.data, [...expected[0]!.embedding!], 'embedding');
  });

  it('answers errors as the protocol says: {"error": "..."} with 400, 404 for an unknown model', () => {
    const cases: [string, number, RegExp][] = [
      ['err_unknown_model', 404, /unknown model 'no_such_model'/],
      ['err_unknown_model_metadata', 404, /unknown model/],
      ['err_unknown_version', 404, /unknown version '7'/],
      ['err_shape', 400, new RegExp(`shape \\[N, 3, ${size}, ${size}\\]`)],
      ['err_count', 400, /holds \d+ values/],
      ['err_datatype', 400, /INT64/],
      ['err_input_name', 400, /unknown input 'pixels'/],
      ['err_output_name', 400, /unknown output 'scores'/],
      ['err_not_image', 400, /'image\[0\]' is not a usable image/],
      ['err_too_many', 400, /at most 10 per request/],
      ['err_binary_size', 400, /binary_data_size/],
      ['err_bad_json', 400, /not valid JSON/],
    ];
    for (const [name, status, message] of cases) {
      const r = out[name];
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(Object.keys(r.body), name).toEqual(['error']);
      expect(r.body.error, name).toMatch(message);
    }
  });

  it('keeps /predict and /invocations working beside it', async () => {
    const res = await fetch(`${server.url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error.code).toBe('ERR_NO_FILE');
  });
});
