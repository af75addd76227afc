import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine } from '../../src/engine/Engine.js';
import { toRecord } from '../../src/predict/predict.js';
import { type InferenceServer, serve } from '../../src/serve/InferenceServer.js';
import { CLASSES, hasFlowers, photos, repoRoot, tinyModelPath } from '../helpers.js';

/** A multipart/form-data body with one file. */
function multipart(boundary: string, field: string, name: string, bytes: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${name}"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n',
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

const postHead = (path: string, type: string, length: number, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n${extra}\r\n`;

/** Everything received on a socket until it closes. */
function collect(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

const until = async (test: () => boolean | Promise<boolean>, what: string, log = () => ''): Promise<void> => {
  for (let i = 0; i < 400; i++) {
    if (await test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; ${log()}`);
};

describe.skipIf(!hasFlowers)('trt-flowers serve: protocol details', () => {
  const files = CLASSES.map((c) => photos(c, 1)[0]!);
  const b64 = files.map((f) => readFileSync(f).toString('base64'));
  const roseBytes = readFileSync(photos('roses', 1)[0]!);
  let engine: Engine;
  let server: InferenceServer;
  let port: number;

  beforeAll(async () => {
    engine = await Engine.load(tinyModelPath, { batchSize: 16 });
    server = await serve(engine, { port: 0, maxFileBytes: 1024 * 1024, maxBodyBytes: 4 * 1024 * 1024 });
    port = Number(new URL(server.url).port);
  });

  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
  });

  const invocations = async (body: string, type: string) => {
    const res = await fetch(`${server.url}/invocations`, { method: 'POST', headers: { 'content-type': type }, body });
    const text = await res.text();
    return { status: res.status, text, json: JSON.parse(text) };
  };

  it("POST /invocations takes MLflow's CSV input (with or without a header) and a scalar `inputs`", async () => {
    const expected = (await engine.infer(files)).map((p) => toRecord('', p).predicted_class);
    const forms: [string, string][] = [
      [`image\n${b64.join('\n')}\n`, 'text/csv'],
      [b64.join('\r\n'), 'text/csv; charset=utf-8'],
      // pandas' DataFrame.to_csv() with its index column, quoted cells.
      [`,image\r\n${b64.map((b, i) => `${i},"${b}"`).join('\r\n')}\r\n`, 'text/csv'],
    ];
    for (const [body, type] of forms) {
      const r = await invocations(body, type);
      expect(r.status, r.text).toBe(200);
      expect(r.json.predictions.map((p: { predicted_class: string }) => p.predicted_class)).toEqual(expected);
    }
    for (const body of [{ inputs: b64[2] }, { inputs: { image: b64[2] } }, { instances: b64[2] }]) {
      const r = await invocations(JSON.stringify(body), 'application/json');
      expect(r.status, r.text).toBe(200);
      expect(r.json.predictions.map((p: { predicted_class: string }) => p.predicted_class)).toEqual([expected[2]]);
    }
    // The limits hold for CSV too, with clear errors.
    const eleven = await invocations(Array(11).fill(b64[0]).join('\n'), 'text/csv');
    expect([eleven.status, eleven.json.error.code]).toEqual([400, 'ERR_TOO_MANY_FILES']);
    const tooBig = await invocations(`image\n${'A'.repeat(5 * 1024 * 1024)}\n`, 'text/csv');
    expect([tooBig.status, tooBig.json.error.code]).toEqual([413, 'ERR_BODY_TOO_LARGE']);
    const empty = await invocations('image\n', 'text/csv');
    expect([empty.status, empty.json.error.code]).toEqual([400, 'ERR_NO_FILE']);
    const notImage = await invocations(`image\n${b64[0]}\n${Buffer.from('hello').toString('base64')}`, 'text/csv');
    expect([notImage.status, notImage.json.error.code]).toEqual([400, 'ERR_INVALID_IMAGE']);
    expect(notImage.json.error.message).toMatch(/row 2/);
    const unclosed = await invocations(`image\n"${b64[0]}\n`, 'text/csv');
    expect([unclosed.status, unclosed.json.error.code]).toEqual([400, 'ERR_BAD_REQUEST']);
    const other = await invocations('a,b', 'text/tab-separated-values');
    expect([other.status, other.json.error.code]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE']);
  });

  it('answers a client that half-closes its socket right after the request (SHUT_WR)', async () => {
    const boundary = 'HalfClose';
    const body = multipart(boundary, 'file', 'rose.jpg', roseBytes);
    const socket = net.connect(port, '127.0.0.1');
    const answer = collect(socket);
    socket.on('connect', () => {
      socket.write(postHead('/predict', `multipart/form-data; boundary=${boundary}`, body.length));
      socket.end(body);
    });
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('"image_path": "rose.jpg"');

    // JSON to /invocations, the same way.
    const json = JSON.stringify({ inputs: b64[0] });
    const s2 = net.connect(port, '127.0.0.1');
    const a2 = collect(s2);
    s2.on('connect', () => s2.end(postHead('/invocations', 'application/json', Buffer.byteLength(json)) + json));
    expect(await a2).toMatch(/^HTTP\/1\.1 200 [\s\S]*"predictions"/);

    // A request cut short by the half-close is a 400, not a hang.
    const s3 = net.connect(port, '127.0.0.1');
    const a3 = collect(s3);
    s3.on('connect', () => {
      s3.write(postHead('/predict', `multipart/form-data; boundary=${boundary}`, body.length));
      s3.end(body.subarray(0, 1000));
    });
    const started = performance.now();
    expect(await a3).toMatch(/^HTTP\/1\.1 400 /);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('a refused upload does not hold its connection: the next request on it is answered', async () => {
    const boundary = 'Refused';
    const refusals = [
      multipart(boundary, 'image', 'wrong-field.jpg', Buffer.alloc(2 * 1024 * 1024, 1)), // 400, wrong field
      multipart(boundary, 'file', 'too-big.jpg', Buffer.alloc(2 * 1024 * 1024, 1)), // 413, over maxFileBytes
    ];
    for (const refused of refusals) {
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', () => undefined);
      await new Promise((r) => socket.on('connect', r));
      socket.write(postHead('/predict', `multipart/form-data; boundary=${boundary}`, refused.length));
      socket.write(refused);
      await until(() => /\r\n\r\n\{"error"[^]*\}$/.test(Buffer.concat(chunks).toString('latin1')), 'the refusal');
      expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 4(00|13) /);
      chunks.length = 0;
      socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      const started = performance.now();
      await until(() => /"status":"ok"/.test(Buffer.concat(chunks).toString('latin1')), 'the next answer');
      expect(performance.now() - started).toBeLessThan(2000);
      socket.destroy();
    }
  });
});

describe.skipIf(!hasFlowers)('trt-flowers serve: SIGTERM', () => {
  it('closes connections without a whole request at once, answers the request in flight, exits 0', async () => {
    const roseBytes = readFileSync(photos('roses', 1)[0]!);
    // A long batching wait: the complete request waits in the batcher while the partial one is still coming.
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'trt-flowers.js'),
        'serve',
        '--model-path',
        tinyModelPath,
        '--port',
        '0',
        '--max-wait-ms',
        '8000',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(
        () => /\[serve\] ready: libtorch/.test(stderr),
        'the server to be ready',
        () => stderr,
      );
      const base = /listening on (http:\/\/\S+) /.exec(stderr)![1]!;
      const port = Number(new URL(base).port);
      const inFlight = async (n: number): Promise<boolean> => {
        const m = await (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text();
        return new RegExp(`^trt_flowers_http_requests_in_flight ${n + 1}$`, 'm').test(m); // + this scrape
      };
      const open = async (...chunks: (string | Buffer)[]) => {
        const socket = net.connect(port, '127.0.0.1');
        const answer = collect(socket);
        await new Promise((r) => socket.on('connect', r));
        for (const c of chunks) socket.write(c);
        return { socket, answer };
      };
      const boundary = 'Sig7erm';
      const body = multipart(boundary, 'file', 'rose.jpg', roseBytes);
      const head = postHead('/predict', `multipart/form-data; boundary=${boundary}`, body.length);
      const bare = await open();
      const partialHeaders = await open('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: mult');
      const partialBody = await open(head, body.subarray(0, 2000));
      await until(() => inFlight(1), 'the partial upload to be in flight');
      const complete = await open(head, body);
      await until(() => inFlight(2), 'the complete upload to be in flight');

      const signalled = performance.now();
      child.kill('SIGTERM');
      const [completeAnswer, ...cut] = await Promise.all(
        [complete, bare, partialHeaders, partialBody].map((c) => c.answer),
      );
      expect(completeAnswer).toMatch(/^HTTP\/1\.1 200 /);
      expect(completeAnswer).toMatch(/connection: close/i);
      expect(completeAnswer).toContain('"image_path": "rose.jpg"');
      for (const answer of cut) expect(answer).not.toMatch(/^HTTP\/1\.1 200 /);
      expect(await exited).toBe(0);
      expect(performance.now() - signalled).toBeLessThan(2500);
      expect(stderr).toMatch(/\[serve\] stopped/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
