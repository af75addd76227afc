import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine } from '../../src/engine/Engine.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { toRecord } from '../../src/predict/predict.js';
import { InferenceServer, serve } from '../../src/serve/InferenceServer.js';
import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function request(url: string, init?: RequestInit): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Part = { name: string; bytes: Uint8Array; field?: string };

function form(parts: Part[]): FormData {
  const fd = new FormData();
  for (const p of parts) fd.append(p.field ?? 'file', new Blob([p.bytes]), p.name);
  return fd;
}

/** Sends raw bytes over a fresh TCP connection; resolves with everything the server answered before closing. */
function raw(port: number, chunks: (string | Buffer)[], options: { pauseMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    socket.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    socket.on('close', () => resolve(Buffer.concat(received).toString('latin1')));
    socket.on('connect', async () => {
      for (const c of chunks) {
        socket.write(c);
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    });
  });
}

const errorOf = (r: Reply): { code: string; message: string } => r.json?.error ?? {};

describe.skipIf(!hasFlowers)('trt-flowers serve: the HTTP inference server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-serve-'));
  const onnxPath = join(dir, 'tiny.onnx');
  const files = CLASSES.flatMap((c) => photos(c, 2)); // 10 real photos, 2 per class
  const rose = photos('roses', 1)[0]!;
  const roseBytes = readFileSync(rose);
  let engine: Engine;
  let server: InferenceServer;
  let url: string;

  beforeAll(async () => {
    engine = await Engine.load(tinyModelPath, { batchSize: 16 });
    server = await serve(engine, {
      port: 0,
      maxWaitMs: 20,
      maxFileBytes: 2 * 1024 * 1024,
      maxBodyBytes: 4 * 1024 * 1024,
      maxPixels: 4_000_000,
    });
    url = server.url;
  });

  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
  });

  it('GET / describes the model; GET /health is ready; both live and ready probes answer', async () => {
    const info = await request(`${url}/`);
    expect(info.status).toBe(200);
    expect(info.json).toMatchObject({
      name: 'trt-flowers',
      model: 'tiny.pt',
      backend: 'libtorch',
      precision: 'fp32',
      device: 'cpu',
      classes: [...CLASSES],
      input_shape: [-1, 3, 224, 224],
      ready: true,
      docs: '/docs',
      limits: { max_images_per_request: 10, max_pixels: 4_000_000 },
    });
    expect(info.json.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.json.versions.libtorch).toMatch(/^\d+\.\d+/);
    const health = await request(`${url}/health`);
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', live: true, ready: true, model_loaded: true, warmed_up: true });
    expect((await request(`${url}/health/live`)).status).toBe(200);
    expect((await request(`${url}/health/ready`)).status).toBe(200);
    const ping = await request(`${url}/ping`);
    expect(ping.status).toBe(200);
  });

  it('POST /predict answers exactly what `trt-flowers predict` prints for the same photo', async () => {
    const r = await request(`${url}/predict`, {
      method: 'POST',
      body: form([{ name: basename(rose), bytes: roseBytes }]),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    // The CLI, run from the photo's folder so that its image_path is the bare file name too.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(repoRoot, 'bin', 'trt-flowers.js'),
        'predict',
        '--image-path',
        basename(rose),
        '--model-path',
        tinyModelPath,
      ],
      { cwd: dirname(rose) },
    );
    expect(r.text).toBe(stdout.trim());
    expect(Object.keys(r.json.all_probabilities)[0]).toBe(r.json.predicted_class);
  });

  it('POST /predict/batch classifies 10 real photos in order, as /predict does one by one', async () => {
    const parts = files.map((f) => ({ name: basename(f), bytes: readFileSync(f), field: 'files' }));
    const r = await request(`${url}/predict/batch`, { method: 'POST', body: form(parts) });
    expect(r.status).toBe(200);
    expect(r.json.predictions).toHaveLength(10);
    const expected = await engine.infer(files);
    r.json.predictions.forEach((p: { image_path: string; predicted_class: string; confidence: number }, i: number) => {
      expect(p.image_path).toBe(basename(files[i]!));
      expect(p.predicted_class).toBe(expected[i]!.predictedClass);
      expect(Math.abs(p.confidence - expected[i]!.confidence)).toBeLessThan(2e-4);
    });
    // Repeated `file` fields work too.
    const again = await request(`${url}/predict/batch`, {
      method: 'POST',
      body: form(parts.slice(0, 3).map((p) => ({ ...p, field: 'file' }))),
    });
    expect(again.status).toBe(200);
    expect(again.json.predictions.map((p: { image_path: string }) => p.image_path)).toEqual(
      parts.slice(0, 3).map((p) => p.name),
    );
  });

  it('groups concurrent requests into batched engine calls, and stays responsive meanwhile', async () => {
    const before = await request(`${url}/metrics`);
    const count = (text: string, name: string): number =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    const n = 24;
    const all = Promise.all(
      Array.from({ length: n }, (_, i) => {
        const f = files[i % files.length]!;
        return request(`${url}/predict`, {
          method: 'POST',
          body: form([{ name: basename(f), bytes: readFileSync(f) }]),
        });
      }),
    );
    let healthDone = 0;
    const health = request(`${url}/health`).then((h) => {
      healthDone = performance.now();
      return h;
    });
    const results = await all;
    const allDone = performance.now();
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect((await health).status).toBe(200);
    expect(healthDone).toBeLessThanOrEqual(allDone);
    const after = await request(`${url}/metrics`);
    const calls =
      count(after.text, 'trt_flowers_inference_batch_size_count') -
      count(before.text, 'trt_flowers_inference_batch_size_count');
    const images =
      count(after.text, 'trt_flowers_inference_batch_size_sum') -
      count(before.text, 'trt_flowers_inference_batch_size_sum');
    expect(images).toBe(n);
    expect(calls).toBeLessThan(n); // some engine calls carried several requests
  });

  it('POST /invocations speaks MLflow: instances, inputs, dataframe_split and dataframe_records of base64 images', async () => {
    const b64 = files.slice(0, 3).map((f) => readFileSync(f).toString('base64'));
    const expected = (await engine.infer(files.slice(0, 3))).map((p) => toRecord('', p));
    const bodies = [
      { instances: b64 },
      { instances: b64.map((b) => ({ b64: b })) },
      { inputs: { image: b64 } },
      { dataframe_split: { columns: ['image'], data: b64.map((b) => [b]) } },
      { dataframe_records: b64.map((b) => ({ image: b })) },
      { instances: [`data:image/jpeg;base64,${b64[0]}`, b64[1], b64[2]] },
    ];
    for (const body of bodies) {
      const r = await request(`${url}/invocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.predictions).toHaveLength(3);
      r.json.predictions.forEach((p: { predicted_class: string; confidence: number }, i: number) => {
        expect(p.predicted_class).toBe(expected[i]!.predicted_class);
        expect(Math.abs(p.confidence - expected[i]!.confidence)).toBeLessThan(2e-4);
      });
    }
    const post = (body: string, type = 'application/json') =>
      request(`${url}/invocations`, { method: 'POST', headers: { 'content-type': type }, body });
    const noKey = await post(JSON.stringify({ images: b64 }));
    expect([noKey.status, errorOf(noKey).code]).toEqual([400, 'ERR_BAD_REQUEST']);
    expect(errorOf(noKey).message).toMatch(/instances/);
    const notBase64 = await post(JSON.stringify({ instances: ['not base64 at all!'] }));
    expect([notBase64.status, errorOf(notBase64).code]).toEqual([400, 'ERR_BAD_REQUEST']);
    const notImage = await post(JSON.stringify({ instances: [Buffer.from('hello world').toString('base64')] }));
    expect([notImage.status, errorOf(notImage).code]).toEqual([400, 'ERR_INVALID_IMAGE']);
    expect(errorOf(notImage).message).toMatch(/instances\[0\]/);
    const eleven = await post(JSON.stringify({ instances: Array(11).fill(b64[0]) }));
    expect([eleven.status, errorOf(eleven).code]).toEqual([400, 'ERR_TOO_MANY_FILES']);
    const text = await post('image\nabc', 'text/plain');
    expect([text.status, errorOf(text).code]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE']);
    const badJson = await post('{"instances": [');
    expect([badJson.status, errorOf(badJson).code]).toEqual([400, 'ERR_BAD_JSON']);
    const tooBig = await post(JSON.stringify({ instances: ['A'.repeat(5 * 1024 * 1024)] }));
    expect([tooBig.status, errorOf(tooBig).code]).toEqual([413, 'ERR_BODY_TOO_LARGE']);
  });

  it('answers every kind of bad input with a 4xx JSON error and keeps serving', async () => {
    const predict = (body: RequestInit['body'] | undefined, headers: Record<string, string> = {}, path = '/predict') =>
      request(`${url}${path}`, { method: 'POST', body: body ?? null, headers });
    const expectError = (r: Reply, status: number, code: string, message?: RegExp): void => {
      expect([r.status, errorOf(r).code], r.text).toEqual([status, code]);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      if (message) expect(errorOf(r).message).toMatch(message);
    };

    const corrupt = roseBytes.subarray(0, 1500);
    expectError(
      await predict(form([{ name: 'corrupt.jpg', bytes: corrupt }])),
      400,
      'ERR_INVALID_IMAGE',
      /corrupt\.jpg/,
    );
    const text = Buffer.from('this is a text file, not an image');
    expectError(await predict(form([{ name: 'notes.jpg', bytes: text }])), 400, 'ERR_INVALID_IMAGE', /notes\.jpg/);
    expectError(
      await predict(form([{ name: 'empty.jpg', bytes: new Uint8Array(0) }])),
      400,
      'ERR_INVALID_IMAGE',
      /empty/,
    );
    // Too many pixels (the decompression-bomb guard): a 2500x2000 PNG is small in bytes.
    const huge = await sharp({ create: { width: 2500, height: 2000, channels: 3, background: '#224488' } })
      .png()
      .toBuffer();
    expectError(await predict(form([{ name: 'huge.png', bytes: huge }])), 413, 'ERR_IMAGE_TOO_LARGE', /huge\.png/);
    // A file over the per-file limit, and a body over the request limit.
    const big = Buffer.concat([roseBytes, Buffer.alloc(3 * 1024 * 1024)]);
    expectError(await predict(form([{ name: 'big.jpg', bytes: big }])), 413, 'ERR_BODY_TOO_LARGE');
    const parts = Array.from({ length: 3 }, (_, i) => ({ name: `p${i}.jpg`, bytes: big.subarray(0, 1_900_000) }));
    expectError(await predict(form(parts), {}, '/predict/batch'), 413, 'ERR_BODY_TOO_LARGE');
    // Wrong content type, no body, no file, a file in another field, two files to /predict.
    expectError(
      await predict(JSON.stringify({ file: 'x' }), { 'content-type': 'application/json' }),
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(await predict(roseBytes, { 'content-type': 'image/jpeg' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    expectError(await predict(undefined), 400, 'ERR_EMPTY_REQUEST', /field `file`/);
    const fieldsOnly = new FormData();
    fieldsOnly.append('note', 'no file here');
    expectError(await predict(fieldsOnly), 400, 'ERR_NO_FILE');
    expectError(
      await predict(form([{ name: 'r.jpg', bytes: roseBytes, field: 'image' }])),
      400,
      'ERR_BAD_REQUEST',
      /field `file`/,
    );
    expectError(
      await predict(
        form([
          { name: 'a.jpg', bytes: roseBytes },
          { name: 'b.jpg', bytes: roseBytes },
        ]),
      ),
      400,
      'ERR_TOO_MANY_FILES',
      /\/predict\/batch/,
    );
    // 11 files to /predict/batch.
    const eleven = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.jpg`, bytes: roseBytes, field: 'files' }));
    expectError(await predict(form(eleven), {}, '/predict/batch'), 400, 'ERR_TOO_MANY_FILES', /at most 10/);
    // One bad photo in a batch fails the request and names it.
    const mixed = [
      { name: 'ok.jpg', bytes: roseBytes, field: 'files' },
      { name: 'broken.jpg', bytes: corrupt, field: 'files' },
    ];
    expectError(await predict(form(mixed), {}, '/predict/batch'), 400, 'ERR_INVALID_IMAGE', /broken\.jpg/);
    // Malformed multipart: no boundary, and a body that ends in the middle of a part.
    expectError(await predict('garbage', { 'content-type': 'multipart/form-data' }), 400, 'ERR_BAD_MULTIPART');
    const truncated =
      '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' +
      roseBytes.subarray(0, 2000).toString('latin1');
    expectError(
      await predict(Buffer.from(truncated, 'latin1'), { 'content-type': 'multipart/form-data; boundary=XyZ' }),
      400,
      'ERR_BAD_MULTIPART',
    );
    // Unknown routes and methods.
    const missing = await request(`${url}/nope`);
    expectError(missing, 404, 'ERR_NOT_FOUND');
    expect((await request(`${url}/predict`)).status).toBe(404);
    // A malformed request line gets a JSON 400 from the HTTP layer.
    const garbage = await raw(Number(new URL(url).port), ['NOT HTTP AT ALL\r\n\r\n']);
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('"code":"ERR_BAD_REQUEST"');

    // Still alive and well.
    const ok = await predict(form([{ name: 'rose.jpg', bytes: roseBytes }]));
    expect(ok.status).toBe(200);
    const metrics = (await request(`${url}/metrics`)).text;
    expect(metrics).toMatch(/trt_flowers_http_requests_total\{method="POST",route="\/predict",status="400"\} \d+/);
    expect(metrics).toMatch(/trt_flowers_http_requests_total\{method="POST",route="\/predict",status="413"\} \d+/);
    expect(metrics).toMatch(/trt_flowers_http_requests_total\{method="POST",route="\/predict",status="415"\} \d+/);
    expect(metrics).not.toMatch(/status="5\d\d"/);
  });

  it('a client that stalls gets 408 (headers or body), others are served meanwhile', async () => {
    const slow = new InferenceServer({ port: 0, requestTimeoutMs: 1500, headersTimeoutMs: 800 });
    await slow.listen();
    await slow.load(engine);
    try {
      const port = Number(new URL(slow.url).port);
      const started = performance.now();
      // Headers never finished.
      const headers = raw(port, ['POST /predict HTTP/1.1\r\nHost: x\r\n']);
      // Headers complete, body stalls half-way.
      const boundary = 'B0undary';
      const head =
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.jpg"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n';
      const body = Buffer.concat([Buffer.from(head), roseBytes]);
      const stalled = raw(port, [
        `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
          `Content-Length: ${body.length + 100}\r\n\r\n`,
        body.subarray(0, 1000),
      ]);
      const meanwhile = await request(`${slow.url}/predict`, {
        method: 'POST',
        body: form([{ name: 'r.jpg', bytes: roseBytes }]),
      });
      expect(meanwhile.status).toBe(200);
      for (const answer of await Promise.all([headers, stalled])) {
        expect(answer).toMatch(/^HTTP\/1\.1 408 /);
        expect(answer).toContain('"code":"ERR_REQUEST_TIMEOUT"');
      }
      expect(performance.now() - started).toBeGreaterThan(700);
      expect((await request(`${slow.url}/health`)).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('GET /openapi.json documents every endpoint; GET /docs serves Swagger UI', async () => {
    const spec = (await request(`${url}/openapi.json`)).json;
    expect(spec.openapi).toMatch(/^3\./);
    for (const p of ['/', '/health', '/predict', '/predict/batch', '/invocations', '/metrics']) {
      expect(Object.keys(spec.paths)).toContain(p);
    }
    const upload = spec.paths['/predict'].post.requestBody.content['multipart/form-data'].schema;
    expect(upload.properties.file).toMatchObject({ type: 'string', format: 'binary' });
    expect(
      spec.paths['/predict/batch'].post.requestBody.content['multipart/form-data'].schema.properties.files,
    ).toMatchObject({ type: 'array', maxItems: 10 });
    expect(spec.paths['/invocations'].post.requestBody.content['application/json']).toBeDefined();
    expect(Object.keys(spec.components.schemas)).toEqual(expect.arrayContaining(['Prediction', 'Error']));
    const docs = await request(`${url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.text).toMatch(/swagger-ui/i);
  });

  it('GET /metrics is Prometheus text: requests by route and status, latency histogram, batch sizes, queue depth', async () => {
    const r = await request(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(r.text).toMatch(/trt_flowers_http_requests_total\{method="POST",route="\/predict",status="200"\} \d+/);
    expect(r.text).toMatch(
      /trt_flowers_http_request_duration_seconds_bucket\{le="0\.1",method="POST",route="\/predict"\}/,
    );
    expect(r.text).toMatch(/trt_flowers_inference_batch_size_bucket\{le="16"\} \d+/);
    expect(r.text).toMatch(/^trt_flowers_inference_queue_depth 0$/m);
    expect(r.text).toMatch(/^trt_flowers_ready 1$/m);
    expect(r.text).toMatch(
      /trt_flowers_model_info\{model=".*tiny\.pt",backend="libtorch",precision="fp32",device="cpu"\} 1/,
    );
    expect(r.text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('reports not ready (503) until the model is loaded and warmed up, and why a load failed', async () => {
    const s = new InferenceServer({ port: 0 });
    await s.listen();
    try {
      const h = await request(`${s.url}/health`);
      expect(h.status).toBe(503);
      expect(h.json).toMatchObject({ status: 'loading', live: true, ready: false, model_loaded: false });
      expect((await request(`${s.url}/health/live`)).status).toBe(200);
      const p = await request(`${s.url}/predict`, {
        method: 'POST',
        body: form([{ name: 'r.jpg', bytes: roseBytes }]),
      });
      expect([p.status, errorOf(p).code]).toEqual([503, 'ERR_NOT_READY']);
      expect(p.headers.get('retry-after')).toBe('1');
      await expect(s.load(() => Engine.load(join(dir, 'missing.pt')))).rejects.toThrow(/not found/);
      const failed = await request(`${s.url}/health`);
      expect(failed.status).toBe(503);
      expect(failed.json.status).toBe('failed');
      expect(failed.json.error).toMatch(/missing\.pt/);
    } finally {
      await s.close();
    }
  });

  it('serves an ONNX Runtime engine of the same model with the same answers', async () => {
    await exportOnnx({ checkpoint: tinyModelPath, out: onnxPath, verify: false });
    const ort = await serve(() => Engine.load(onnxPath, { workers: 1 }), { port: 0 });
    try {
      const info = await request(`${ort.url}/`);
      expect(info.json).toMatchObject({ backend: 'onnxruntime', model: 'tiny.onnx' });
      const parts = files.slice(0, 5).map((f) => ({ name: basename(f), bytes: readFileSync(f), field: 'files' }));
      const [a, b] = await Promise.all(
        [url, ort.url].map((u) => request(`${u}/predict/batch`, { method: 'POST', body: form(parts) })),
      );
      expect(b!.status).toBe(200);
      b!.json.predictions.forEach((p: { predicted_class: string; confidence: number }, i: number) => {
        expect(p.predicted_class).toBe(a!.json.predictions[i].predicted_class);
        expect(Math.abs(p.confidence - a!.json.predictions[i].confidence)).toBeLessThan(2e-4);
      });
    } finally {
      await ort.close();
    }
    expect(ort.engine?.disposed).toBe(true); // loaded by the server, so freed by it
  });

  it('over ONNX Runtime, a request alone on an idle server (decoded by the engine) answers as a batched one', async () => {
    if (!existsSync(onnxPath)) await exportOnnx({ checkpoint: tinyModelPath, out: onnxPath, verify: false });
    const ort = await serve(() => Engine.load(onnxPath, { workers: 1 }), { port: 0, maxPixels: 100_000 });
    try {
      const small = files.slice(0, 4);
      const png = await sharp(small[1]!).resize(200, 150).png().toBuffer();
      const big = await sharp(small[2]!).resize(400, 300, { fit: 'fill' }).jpeg().toBuffer();
      const parts = [
        { name: 'a.jpg', bytes: readFileSync(small[0]!), field: 'files' },
        { name: 'b.png', bytes: png, field: 'files' },
      ];
      const batched = await request(`${ort.url}/predict/batch`, { method: 'POST', body: form(parts) });
      expect(batched.status).toBe(200);
      for (const [i, part] of parts.entries()) {
        const alone = await request(`${ort.url}/predict`, { method: 'POST', body: form([{ ...part, field: 'file' }]) });
        expect(alone.status).toBe(200);
        expect(alone.json.all_probabilities).toEqual(batched.json.predictions[i].all_probabilities);
      }
      const corrupt = await request(`${ort.url}/predict`, {
        method: 'POST',
        body: form([{ name: 'cut.jpg', bytes: readFileSync(small[3]!).subarray(0, 1500) }]),
      });
      expect(corrupt.status).toBe(400);
      expect(errorOf(corrupt)).toMatchObject({
        code: 'ERR_INVALID_IMAGE',
        message: expect.stringContaining("'cut.jpg'"),
      });
      const tooBig = await request(`${ort.url}/predict`, {
        method: 'POST',
        body: form([{ name: 'big.jpg', bytes: big }]),
      });
      expect(tooBig.status).toBe(413);
      expect(errorOf(tooBig).code).toBe('ERR_IMAGE_TOO_LARGE');
      const metrics = (await request(`${ort.url}/metrics`)).text;
      const count = (outcome: string): number =>
        Number(new RegExp(`trt_flowers_images_total\\{outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1]);
      expect(count('rejected')).toBe(2);
      expect(count('predicted')).toBe(1 + 2 + 2); // the warm-up image, the batch, the two alone
    } finally {
      await ort.close();
    }
  });

  it('the CLI: SIGTERM stops accepting, cuts an upload still arriving, then exits 0', async () => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'trt-flowers.js'), 'serve', '--model-path', tinyModelPath, '--port', '0'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const until = async (test: () => boolean | Promise<boolean>, what: string): Promise<void> => {
        for (let i = 0; i < 400; i++) {
          if (await test()) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`timed out waiting for ${what}; stderr: ${stderr}`);
      };
      await until(() => /\[serve\] ready: libtorch/.test(stderr), 'the server to be ready');
      const base = /listening on (http:\/\/\S+) /.exec(stderr)![1]!;
      const port = Number(new URL(base).port);
      expect((await request(`${base}/health`)).status).toBe(200);

      // A request in flight: headers and half of the body sent.
      const boundary = 'Sig7erm';
      const body = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="rose.jpg"\r\n` +
            'Content-Type: image/jpeg\r\n\r\n',
        ),
        roseBytes,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const socket = net.connect(port, '127.0.0.1');
      const answer = new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (d) => chunks.push(d));
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.on('error', () => undefined);
      });
      socket.write(
        `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
          `Content-Length: ${body.length}\r\n\r\n`,
      );
      socket.write(body.subarray(0, 2000));
      await until(async () => {
        const m = (await request(`${base}/metrics`, { headers: { connection: 'close' } })).text;
        return /^trt_flowers_http_requests_in_flight 2$/m.test(m); // the upload and this scrape
      }, 'the upload to be in flight');

      child.kill('SIGTERM');
      await until(() => /SIGTERM: no longer accepting/.test(stderr), 'the SIGTERM message');
      // New connections are refused; an upload still arriving is cut at once, not waited for.
      await until(
        () =>
          fetch(`${base}/health`).then(
            () => false,
            () => true,
          ),
        'the listener to close',
      );
      expect(await answer).toBe('');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/\[serve\] stopped/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
