/**
 * Load test of `trt-flowers serve` against the Python stack it replaces (FastAPI + uvicorn + PyTorch,
 * scripts/serve_fastapi.py), on the same model file, on loopback, one server at a time (never side by side: two
 * torch thread pools on the same cores slow each other down many times over).
 *
 *   npx tsc -p tsconfig.build.json        # the server runs from dist/
 *   npm run bench:serve -- [--model runs/<id>/checkpoints/best/model.pt] [--onnx models/flower_classifier.onnx]
 *        [--image photo.jpg] [--duration 10] [--warmup 2] [--soak 60] [--concurrency 1,8,32] [--threads N]
 *        [--workers N] [--decode-concurrency N] [--max-batch 16] [--max-wait-ms 5] [--no-ours] [--quiet-wait 600] [--retries 3]
 *        [--handler async|threadpool] [--python-threads N] [--python /usr/bin/python3] [--no-python]
 *        [--out models/bench-serve] [--protocols predict,v2-json,v2-binary,grpc]
 *
 * For each server: POST /predict with one real flower JPEG (about 50 KB; --image) as multipart/form-data, with
 * autocannon at each concurrency (keep-alive connections, one request in flight per connection) for --duration
 * seconds after --warmup seconds; requests/s (2xx per second), p50/p90/p99 latency, errors (connection errors,
 * timeouts and non-2xx answers). Then a --soak run at the highest concurrency sampling the server's RSS every
 * second. The model: --model, else the newest runs/* /checkpoints/best/model.pt, else test/.fixtures/tiny.pt.
 * --onnx adds a run of our server over an ONNX export of the same model. Each run records the CPU used by the
 * server, by this client (autocannon) and by every other process; before each run the script waits (at most
 * --quiet-wait seconds) for other processes to go quiet, and a run they disturbed (over 15% of a core) is measured
 * again (at most --retries times). The table also gives requests per second per core the server used: on a machine
 * that others share, the protocols' costs compare by it even when the server got less than the whole CPU.
 *
 * --protocols measures our server over each protocol at each level, with the same image: POST /predict (multipart),
 * the Open Inference Protocol's REST infer with the image as a base64 BYTES tensor in JSON (v2-json) or raw with the
 * binary-data extension and binary outputs (v2-binary), and gRPC ModelInfer with raw_input_contents (grpc; a
 * closed loop of `concurrency` calls in flight on one HTTP/2 channel, as Triton's clients do). The FastAPI server
 * speaks only /predict.
 *
 * Writes <out>/bench-serve.json and <out>/bench-serve.md and prints the table.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';

const { fetch } = globalThis;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(
    `usage: node scripts/bench-serve.js [options]   (build first: npx tsc -p tsconfig.build.json)

  --model FILE             model served (default: newest runs/*/checkpoints/best/model.pt, else test/.fixtures/tiny.pt)
  --onnx FILE              also serve this ONNX export of the same model
  --image FILE             the JPEG posted to /predict (default: the rose photo closest to 50 KB)
  --duration S             seconds measured per concurrency level (10)
  --warmup S               warm-up seconds before each level (2)
  --soak S                 RSS soak at the highest level, 0 for none (60)
  --concurrency LIST       levels, e.g. 1,8,32 (1,8,32)
  --threads N --workers N --decode-concurrency N --max-batch N (16) --max-wait-ms N (5)   server options
  --no-ours                skip trt-flowers serve
  --no-python              skip FastAPI + PyTorch
  --handler async|threadpool --python-threads N --python PATH   the FastAPI server
  --quiet-wait S           longest wait for other processes to go quiet before a run (600)
  --retries N              re-measure a run other processes disturbed at most N times (3)
  --out DIR                where bench-serve.json and bench-serve.md go (models/bench-serve)
  --protocols LIST         what our server is measured over: predict, v2-json, v2-binary, grpc
                           (predict,v2-json,v2-binary,grpc); FastAPI speaks only predict

trt-flowers serve is started through bin/trt-flowers, so its allocator is the one users get
(TRT_FLOWERS_MALLOC, MALLOC_CONF and TRT_FLOWERS_V8_FLAGS in the environment are passed on).
`,
  );
  process.exit(0);
}
const flag = (name) => argv.includes(`--${name}`);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const num = (name, fallback, lo = 0) => {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isFinite(v) || v < lo) throw new RangeError(`--${name} expects a number >= ${lo}, received ${v}`);
  return v;
};

const duration = num('duration', 10, 1);
const warmup = num('warmup', 2, 0);
const soak = num('soak', 60, 0);
const levels = arg('concurrency', '1,8,32')
  .split(',')
  .map((v) => Number(v));
if (!levels.every((c) => Number.isInteger(c) && c > 0)) throw new RangeError('--concurrency expects e.g. 1,8,32');
const quietWait = num('quiet-wait', 600);
const retries = num('retries', 3);
const PROTOCOLS = ['predict', 'v2-json', 'v2-binary', 'grpc'];
const protocols = arg('protocols', PROTOCOLS.join(',')).split(',');
if (!protocols.every((p) => PROTOCOLS.includes(p))) {
  throw new RangeError(`--protocols expects some of ${PROTOCOLS.join(',')}, received ${protocols.join(',')}`);
}
const MODEL_NAME = 'bench';
const python = arg('python', process.env.TRT_FLOWERS_PYTHON ?? '/usr/bin/python3');
const outDir = resolve(arg('out', join(root, 'models', 'bench-serve')));
const flowerDir = process.env.TRT_FLOWERS_DATA ?? resolve(root, '..', 'shared', 'data', 'flower_photos');

/** The newest trained checkpoint, else the test fixture. */
function defaultModel() {
  const runs = join(root, 'runs');
  const found = existsSync(runs)
    ? readdirSync(runs)
        .map((id) => join(runs, id, 'checkpoints', 'best', 'model.pt'))
        .filter((p) => existsSync(p))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
    : [];
  return found[0] ?? join(root, 'test', '.fixtures', 'tiny.pt');
}

/** The real flower photo closest to 50 KB. */
function defaultImage() {
  const dir = join(flowerDir, 'roses');
  if (!existsSync(dir)) throw new Error(`no photos in ${dir}: pass --image FILE or set TRT_FLOWERS_DATA`);
  const files = readdirSync(dir)
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort()
    .map((f) => ({ path: join(dir, f), size: statSync(join(dir, f)).size }));
  files.sort((a, b) => Math.abs(a.size - 50_000) - Math.abs(b.size - 50_000));
  return files[0].path;
}

const model = resolve(arg('model', defaultModel()));
const image = resolve(arg('image', defaultImage()));
const imageBytes = readFileSync(image);
const boundary = '----trtflowersbench';
const body = Buffer.concat([
  Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="flower.jpg"\r\n` +
      'Content-Type: image/jpeg\r\n\r\n',
  ),
  imageBytes,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);

/** The same image as an Open Inference Protocol request: JSON with base64 BYTES, and the binary-data form. */
const v2Json = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [imageBytes.toString('base64')] }],
    outputs: [{ name: 'label' }, { name: 'probabilities' }],
  }),
);
const v2Header = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 4 + imageBytes.length } }],
    outputs: [
      { name: 'label', parameters: { binary_data: true } },
      { name: 'probabilities', parameters: { binary_data: true } },
    ],
  }),
);
const imageLength = Buffer.alloc(4);
imageLength.writeUInt32LE(imageBytes.length);
const v2Binary = Buffer.concat([v2Header, imageLength, imageBytes]);

/** The HTTP request of each protocol. */
const httpRequests = {
  predict: { path: '/predict', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body },
  'v2-json': {
    path: `/v2/models/${MODEL_NAME}/infer`,
    headers: { 'content-type': 'application/json' },
    body: v2Json,
  },
  'v2-binary': {
    path: `/v2/models/${MODEL_NAME}/infer`,
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(v2Header.length),
    },
    body: v2Binary,
  },
};

/** A gRPC client of GRPCInferenceService from the project's .proto. */
async function grpcClient(address) {
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const definition = await loader.load(join(root, 'proto', 'grpc_service.proto'), {
    keepCase: true,
    longs: Number,
    oneofs: true,
  });
  const proto = grpc.loadPackageDefinition(definition);
  const client = new proto.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  const request = {
    model_name: MODEL_NAME,
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }],
    outputs: [{ name: 'label' }, { name: 'probabilities' }],
    raw_input_contents: [Buffer.concat([imageLength, imageBytes])],
  };
  const infer = () =>
    new Promise((resolveCall) => {
      const t0 = performance.now();
      client.ModelInfer(request, { deadline: Date.now() + 30_000 }, (err, response) =>
        resolveCall({ ms: performance.now() - t0, code: err ? grpc.status[err.code] : 'OK', err, response }),
      );
    });
  return { infer, close: () => client.close() };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const percentile = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : NaN;

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time in clock ticks (1/100 s): all cores busy, a process (utime + stime). */
function busyTicks() {
  // user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return cpu.reduce((a, b) => a + b, 0) - cpu[3] - cpu[4];
}
function processTicks(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/**
 * Measures what else used the CPU during `work` (other processes, in % of one core): a load test on a shared machine
 * is only worth its numbers when this stays near 0.
 */
async function withCpuAccounting(serverPid, work) {
  const t0 = performance.now();
  const [b0, s0, m0] = [busyTicks(), processTicks(serverPid), processTicks(process.pid)];
  const result = await work();
  const [b1, s1, m1] = [busyTicks(), processTicks(serverPid), processTicks(process.pid)];
  const seconds = (performance.now() - t0) / 1000;
  const pct = (ticks) => round(ticks / seconds, 0); // 100 ticks per second = one core
  return {
    ...result,
    server_cpu_pct: pct(s1 - s0),
    client_cpu_pct: pct(m1 - m0),
    other_cpu_pct: pct(Math.max(0, b1 - b0 - (s1 - s0) - (m1 - m0))),
  };
}

/**
 * Waits (at most --quiet-wait seconds) until other processes use less than 10% of one core over 2 s, so that a run
 * does not start in the middle of someone else's build.
 */
async function awaitQuiet(serverPid) {
  const limit = performance.now() + quietWait * 1000;
  for (;;) {
    const { other_cpu_pct: other } = await withCpuAccounting(serverPid, () => sleep(2000).then(() => ({})));
    if (other < 10 || performance.now() > limit) return other;
    process.stderr.write(`  (other processes use ${other}% CPU: waiting for a quiet machine)\n`);
  }
}

/**
 * Runs `measure` once the machine is quiet; runs it again (at most --retries times) when other processes took more
 * than 15% of a core meanwhile. The result says how many attempts it took.
 */
async function quietly(pid, what, measure) {
  for (let attempt = 1; ; attempt++) {
    await awaitQuiet(pid);
    const r = await withCpuAccounting(pid, measure);
    if (r.other_cpu_pct <= 15 || attempt > retries) return { ...r, attempts: attempt };
    process.stderr.write(`  (${what}: other processes took ${r.other_cpu_pct}% CPU meanwhile: measuring again)\n`);
  }
}

async function freePort() {
  const net = await import('node:net');
  return new Promise((res, rej) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/** Starts a server process and waits for its /health to say ready. */
async function start(name, command, args, port) {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  while (performance.now() - started < 180_000) {
    if (exited) throw new Error(`${name} exited at start:\n${stderr}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.status === 200 && (await res.json()).ready) {
        return { name, child, url, stderr: () => stderr, startS: (performance.now() - started) / 1000 };
      }
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not become ready in 180 s:\n${stderr}`);
}

async function stop(server) {
  const exited = new Promise((r) => server.child.once('exit', (code, signal) => r(code ?? signal)));
  server.child.kill('SIGTERM');
  const result = await Promise.race([exited, sleep(30_000).then(() => 'timeout')]);
  if (result === 'timeout') server.child.kill('SIGKILL');
  return result;
}

/**
 * A closed loop of `connections` gRPC calls in flight for `seconds`; the same fields as an autocannon run (the
 * statuses are gRPC code names).
 */
async function loadGrpc(server, connections, seconds, onSecond) {
  const latencies = [];
  const statuses = {};
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const timer = onSecond ? setInterval(onSecond, 1000) : undefined;
  const loop = async () => {
    while (performance.now() < end) {
      const r = await server.grpc.infer();
      latencies.push(r.ms);
      statuses[r.code] = (statuses[r.code] ?? 0) + 1;
      if (r.code !== 'OK') errors++;
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  clearInterval(timer);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const ok = latencies.length - errors;
  return {
    concurrency: connections,
    seconds: round(elapsed, 2),
    requests: latencies.length,
    req_per_s: round(ok / elapsed, 1),
    p50_ms: round(percentile(latencies, 50), 1),
    p90_ms: round(percentile(latencies, 90), 1),
    p99_ms: round(percentile(latencies, 99), 1),
    max_ms: round(latencies[latencies.length - 1] ?? NaN, 1),
    errors,
    statuses,
  };
}

/** One autocannon run (or gRPC loop) over a protocol; latencies from every response, in ms. */
function load(server, connections, seconds, onSecond, protocol = 'predict') {
  if (protocol === 'grpc') return loadGrpc(server, connections, seconds, onSecond);
  const http = httpRequests[protocol];
  return new Promise((resolvePromise, reject) => {
    const latencies = [];
    const statuses = {};
    const instance = autocannon(
      {
        url: `${server.url}${http.path}`,
        method: 'POST',
        headers: http.headers,
        body: http.body,
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: 30,
      },
      (err, result) => {
        clearInterval(timer);
        if (err) return reject(err);
        latencies.sort((a, b) => a - b);
        const ok = result['2xx'];
        resolvePromise({
          concurrency: connections,
          seconds: result.duration,
          requests: ok + result.non2xx,
          req_per_s: round(ok / result.duration, 1),
          p50_ms: round(percentile(latencies, 50), 1),
          p90_ms: round(percentile(latencies, 90), 1),
          p99_ms: round(percentile(latencies, 99), 1),
          max_ms: round(latencies[latencies.length - 1] ?? NaN, 1),
          errors: result.errors + result.timeouts + result.non2xx + result.mismatches,
          statuses,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    });
    const timer = onSecond ? setInterval(onSecond, 1000) : undefined;
  });
}

/** One request over a protocol, checked: the predicted class it answers. */
async function check(server, protocol) {
  if (protocol === 'grpc') {
    const r = await server.grpc.infer();
    if (r.code !== 'OK') throw new Error(`${server.name}: gRPC ModelInfer answered ${r.code}: ${r.err?.details}`);
    const raw = r.response.raw_output_contents[0];
    return raw.subarray(4, 4 + raw.readUInt32LE(0)).toString();
  }
  const http = httpRequests[protocol];
  const res = await fetch(`${server.url}${http.path}`, { method: 'POST', headers: http.headers, body: http.body });
  const answer = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${server.name}: ${protocol} answered ${res.status}: ${answer}`);
  if (protocol === 'predict') return JSON.parse(answer.toString()).predicted_class;
  if (protocol === 'v2-json') return JSON.parse(answer.toString()).outputs[0].data[0];
  const headerLength = Number(res.headers.get('inference-header-content-length'));
  return answer.subarray(headerLength + 4, headerLength + 4 + answer.readUInt32LE(headerLength)).toString();
}

async function benchServer(server, over = ['predict']) {
  const pid = server.child.pid;
  const predicted = {};
  for (const protocol of over) predicted[protocol] = await check(server, protocol);
  if (new Set(Object.values(predicted)).size !== 1) {
    throw new Error(`${server.name}: the protocols disagree on the class: ${JSON.stringify(predicted)}`);
  }
  const answer = JSON.stringify({ predicted_class: Object.values(predicted)[0], by_protocol: predicted });
  const runs = [];
  for (const c of levels) {
    for (const protocol of over) {
      const r = await quietly(pid, `${protocol} c=${c}`, async () => {
        if (warmup > 0) await load(server, c, warmup, undefined, protocol);
        return load(server, c, duration, undefined, protocol);
      });
      runs.push({ protocol, ...r });
      process.stderr.write(
        `  ${server.name} ${protocol} c=${c}: ${r.req_per_s} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ` +
          `errors ${r.errors} (CPU: server ${r.server_cpu_pct}%, client ${r.client_cpu_pct}%, other processes ` +
          `${r.other_cpu_pct}%)\n`,
      );
    }
  }
  let soakResult;
  if (soak > 0) {
    const c = Math.max(...levels);
    const r = await quietly(pid, 'soak', async () => {
      const samples = [{ t: 0, rss_mib: round(rssMiB(pid)) }];
      const t0 = performance.now();
      const sample = () => samples.push({ t: round((performance.now() - t0) / 1000), rss_mib: round(rssMiB(pid)) });
      const result = await load(server, c, soak, sample);
      sample();
      return { ...result, samples };
    });
    const samples = r.samples;
    const rss = samples.map((s) => s.rss_mib);
    const mid = samples[Math.floor(samples.length / 2)].rss_mib;
    const end = rss[rss.length - 1];
    delete r.samples;
    soakResult = {
      ...r,
      rss_start_mib: rss[0],
      rss_mid_mib: mid,
      rss_end_mib: end,
      rss_max_mib: Math.max(...rss),
      rss_growth_second_half_mib: round(end - mid),
      // Bounded: no more than 16 MiB or 5% growth over the second half of the run.
      memory_bounded: end - mid <= Math.max(16, 0.05 * mid),
      samples,
    };
    process.stderr.write(
      `  ${server.name} soak ${soak}s c=${c}: ${r.req_per_s} req/s, p99 ${r.p99_ms} ms, errors ${r.errors}, ` +
        `RSS ${soakResult.rss_start_mib} -> ${soakResult.rss_end_mib} MiB (max ${soakResult.rss_max_mib}), ` +
        `other processes ${r.other_cpu_pct}% CPU\n`,
    );
  }
  return { name: server.name, start_s: round(server.startS), answer: JSON.parse(answer), runs, soak: soakResult };
}

async function main() {
  const launcher = join(root, 'bin', 'trt-flowers');
  mkdirSync(outDir, { recursive: true });
  // Through the launcher (bin/trt-flowers), which picks the allocator users get.
  const ourArgs = (m, port, grpcPort = -1) => [
    'serve',
    '--model-path',
    m,
    '--port',
    String(port),
    '--model-name',
    MODEL_NAME,
    '--grpc-port',
    String(grpcPort),
    '--max-batch',
    arg('max-batch', '16'),
    '--max-wait-ms',
    arg('max-wait-ms', '5'),
    ...(arg('threads') ? ['--threads', arg('threads')] : []),
    ...(arg('workers') ? ['--workers', arg('workers')] : []),
    ...(arg('decode-concurrency') ? ['--decode-concurrency', arg('decode-concurrency')] : []),
  ];
  process.stderr.write(`model ${model}\nimage ${image} (${imageBytes.length} bytes)\n`);
  const results = [];
  let info;
  const targets = flag('no-ours') ? [] : [model];
  if (arg('onnx')) targets.push(resolve(arg('onnx')));
  for (const target of targets) {
    const port = await freePort();
    const grpcPort = protocols.includes('grpc') ? await freePort() : -1;
    const server = await start('trt-flowers serve', launcher, ourArgs(target, port, grpcPort), port);
    let result;
    try {
      if (grpcPort >= 0) server.grpc = await grpcClient(`127.0.0.1:${grpcPort}`);
      const served = await (await fetch(`${server.url}/`)).json();
      server.name = `trt-flowers serve (${served.backend})`;
      info ??= served;
      result = { ...(await benchServer(server, protocols)), backend: served.backend };
    } finally {
      server.grpc?.close();
      const exit = await stop(server);
      if (result) results.push({ ...result, exit });
    }
  }
  if (!flag('no-python')) {
    if (!info) {
      // The model's classes and preprocessing, as our server reads them from the model file.
      const port = await freePort();
      const server = await start('model info', launcher, ourArgs(model, port), port);
      info = await (await fetch(`${server.url}/`)).json();
      await stop(server);
    }
    const p = info.preprocessing;
    const port = await freePort();
    const handler = arg('handler', 'async');
    const name = `FastAPI + PyTorch (${handler})`;
    const server = await start(
      name,
      python,
      [
        join(root, 'scripts', 'serve_fastapi.py'),
        '--model',
        model,
        '--port',
        String(port),
        '--size',
        String(p.size),
        '--mean',
        p.mean.join(','),
        '--std',
        p.std.join(','),
        '--resize',
        p.resize,
        '--classes',
        info.classes.join(','),
        '--threads',
        arg('python-threads', String(Math.min(os.availableParallelism(), 4))),
        '--handler',
        handler,
      ],
      port,
    );
    let result;
    try {
      result = { ...(await benchServer(server)), backend: 'pytorch' };
    } finally {
      const exit = await stop(server);
      if (result) results.push({ ...result, exit });
    }
  }

  const report = {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.availableParallelism(),
      memory_gib: round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    model: { path: model, backend_info: info },
    image: { path: image, bytes: imageBytes.length },
    settings: { duration_s: duration, warmup_s: warmup, soak_s: soak, concurrency: levels, protocols },
    results,
  };
  const md = toMarkdown(report);
  writeFileSync(join(outDir, 'bench-serve.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'bench-serve.md'), md);
  process.stdout.write(`${md}\nwritten: ${join(outDir, 'bench-serve.json')}, ${join(outDir, 'bench-serve.md')}\n`);
}

function toMarkdown(report) {
  const lines = [
    `# Serving load test (${report.date.slice(0, 10)})`,
    '',
    `Machine: ${report.machine.cpu}, ${report.machine.cores} cores, ${report.machine.memory_gib} GiB, Node ` +
      `${report.machine.node}. Model: \`${report.model.path}\` (${report.model.backend_info.preprocessing.size} px, ` +
      `${report.model.backend_info.classes.length} classes). Image: a ${report.image.bytes}-byte JPEG: predict is ` +
      'POST /predict as multipart/form-data; v2-json the Open Inference Protocol infer with a base64 BYTES tensor; ' +
      'v2-binary the same with the binary-data extension; grpc ModelInfer with raw_input_contents. Keep-alive ' +
      `connections (gRPC: one HTTP/2 channel), ${report.settings.duration_s} s per level after ` +
      `${report.settings.warmup_s} s of warm-up.`,
    '',
    '| server | protocol | concurrency | req/s | p50 ms | p90 ms | p99 ms | errors | CPU % server / client / other | req/s per server core |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const r of report.results) {
    for (const run of r.runs) {
      lines.push(
        `| ${r.name} | ${run.protocol ?? 'predict'} | ${run.concurrency} | ${run.req_per_s} | ${run.p50_ms} | ` +
          `${run.p90_ms} | ${run.p99_ms} | ` +
          `${run.errors} | ${run.server_cpu_pct} / ${run.client_cpu_pct} / ${run.other_cpu_pct} | ` +
          `${run.server_cpu_pct > 0 ? round(run.req_per_s / (run.server_cpu_pct / 100), 1) : ''} |`,
      );
    }
  }
  const soaks = report.results.filter((r) => r.soak);
  if (soaks.length > 0) {
    lines.push(
      '',
      `Soak: ${report.settings.soak_s} s at concurrency ${soaks[0].soak.concurrency}, RSS of the server process sampled every second.`,
      '',
      '| server | req/s | p50 ms | p99 ms | errors | RSS start MiB | RSS max MiB | RSS end MiB | growth, 2nd half MiB | bounded | other CPU % |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    );
    for (const r of soaks) {
      const s = r.soak;
      lines.push(
        `| ${r.name} | ${s.req_per_s} | ${s.p50_ms} | ${s.p99_ms} | ${s.errors} | ${s.rss_start_mib} | ` +
          `${s.rss_max_mib} | ${s.rss_end_mib} | ${s.rss_growth_second_half_mib} | ${s.memory_bounded ? 'yes' : 'no'} | ` +
          `${s.other_cpu_pct} |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

await main();
