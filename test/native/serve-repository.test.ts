import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportOnnx } from '../../src/export/onnx.js';
import { InferenceServer } from '../../src/serve/InferenceServer.js';
import { exportTritonRepository } from '../../src/serve/triton/export.js';
import { hasFlowers, photos, tinyModelPath } from '../helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const until = async (test: () => Promise<boolean>, what: string): Promise<void> => {
  for (let i = 0; i < 600; i++) {
    if (await test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe.skipIf(!hasFlowers)('serve --model-repository: many models and versions, loaded and unloaded live', () => {
  const dir = mkdtempSync(join(tmpdir(), 'repo-serve-'));
  const repo = join(dir, 'repo');
  const onnx = join(dir, 'tiny.onnx');
  const image = readFileSync(photos('tulips', 1, 2)[0]!).toString('base64');
  let server: InferenceServer;

  const infer = async (model: string, version?: string) => {
    const path = version ? `/v2/models/${model}/versions/${version}/infer` : `/v2/models/${model}/infer`;
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [image] }] }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const status = async (path: string) => (await fetch(`${server.url}${path}`)).status;

  beforeAll(async () => {
    await exportOnnx({ checkpoint: tinyModelPath, out: onnx, verify: false });
    for (const version of [1, 2]) {
      await exportTritonRepository({ modelPath: tinyModelPath, out: repo, name: 'alpha', version, maxBatch: 8 });
      await exportTritonRepository({ modelPath: onnx, out: repo, name: 'beta', version, maxBatch: 4 });
    }
    server = new InferenceServer({ port: 0, repositoryPollMs: 100, maxWaitMs: 2 });
    await server.listen();
    await server.loadRepository(repo, { threads: 1 });
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every model and version, with readiness and metrics per model', async () => {
    expect(await status('/v2/health/ready')).toBe(200);
    for (const model of ['alpha', 'beta']) {
      const meta = (await (await fetch(`${server.url}/v2/models/${model}`)).json()) as Json;
      expect(meta.versions).toEqual(['2', '1']);
      for (const v of ['1', '2']) {
        expect(await status(`/v2/models/${model}/versions/${v}/ready`)).toBe(200);
        const r = await infer(model, v);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body).toMatchObject({ model_name: model, model_version: v });
      }
      expect((await infer(model)).body.model_version).toBe('2');
    }
    // The Python preprocessing is Triton's to run; the ensemble over it answers as its model (encoded images in).
    expect(await status('/v2/models/alpha_preprocess')).toBe(404);
    const ensemble = await infer('alpha_ensemble');
    expect(ensemble.status, JSON.stringify(ensemble.body)).toBe(200);
    expect(ensemble.body).toMatchObject({ model_name: 'alpha_ensemble', model_version: '1' });
    const direct = await infer('alpha');
    expect(ensemble.body.outputs).toEqual(direct.body.outputs);
    const config = ((await (await fetch(`${server.url}/v2/models/beta/versions/1/config`)).json()) as Json).config;
    expect(config).toMatchObject({ name: 'beta', platform: 'onnxruntime_onnx', max_batch_size: 4 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const model of ['alpha', 'beta']) {
      for (const v of ['1', '2']) {
        expect(metrics).toContain(`trt_flowers_model_ready{model="${model}",version="${v}"} 1`);
        expect(metrics).toMatch(
          new RegExp(`trt_flowers_model_images_total\\{model="${model}",version="${v}",outcome="predicted"\\} [1-9]`),
        );
      }
    }
    expect(metrics).toMatch(/trt_flowers_model_queue_depth\{model="alpha",version="1"\} 0/);
    // The server's own routes use the first model by name.
    const root = (await (await fetch(`${server.url}/`)).json()) as Json;
    expect(root.model).toBe('model.pt');
  });

  it('removes one model and adds one while requests run, with no failed request for the models that stay', async () => {
    const results: { model: string; status: number }[] = [];
    let running = true;
    const loop = async (model: string, version?: string) => {
      while (running) {
        const r = await infer(model, version);
        results.push({ model: `${model}/${version ?? 'newest'}`, status: r.status });
      }
    };
    const loops = [loop('alpha', '1'), loop('alpha', '2'), loop('alpha'), loop('beta', '1'), loop('beta')];
    await new Promise((r) => setTimeout(r, 500));
    await rm(join(repo, 'beta'), { recursive: true, force: true });
    await exportTritonRepository({ modelPath: onnx, out: repo, name: 'gamma', maxBatch: 4 });
    await until(async () => (await status('/v2/models/gamma/ready')) === 200, 'gamma to be ready');
    await until(async () => (await status('/v2/models/beta')) === 404, 'beta to be gone');
    const g = await infer('gamma');
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(loops);

    const stay = results.filter((r) => r.model.startsWith('alpha/'));
    expect(stay.length).toBeGreaterThan(20);
    expect(stay.filter((r) => r.status !== 200)).toEqual([]);
    // Requests to the removed model were answered before it went, then 404 (or 503 while it was unloading).
    const removed = results.filter((r) => r.model.startsWith('beta/'));
    expect(removed.some((r) => r.status === 200)).toBe(true);
    expect(removed.every((r) => [200, 404, 503].includes(r.status))).toBe(true);
    expect(removed.at(-1)!.status).toBe(404);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('trt_flowers_model_ready{model="gamma",version="1"} 1');
    expect(metrics).not.toContain('trt_flowers_model_ready{model="beta"');
  });
});
