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
 *        [--out models/bench-serve]
 *
 * For each server: POST /predict with one real flower JPEG (about 50 KB; --image) as multipart/form-data, with
 * autocannon at each concurrency (keep-alive connections, one request in flight per connection) for --duration
 * seconds after --warmup seconds; requests/s (2xx per second), p50/p90/p99 latency, errors (connection errors,
 * timeouts and non-2xx answers). Then a --soak run at the highest concurrency sampling the server's RSS every
 * second. The model: --model, else the newest runs/* /checkpoints/best/model.pt, else test/.fixtures/tiny.pt.
 * --onnx adds a run of our server over an ONNX export of the same model. Each run records the CPU used by the
 * server, by this client (autocannon) and by every other process; before each run the script waits (at most
 * --quiet-wait seconds) for other processes to go quiet, and a run they disturbed (over 15% of a core) is measured
 * again (at most --retries times).
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

trt-flowers serve is started through bin/trt-flowers, so its allocator is the one users get
(TRT_FLOWERS_MALLOC and MALLOC_CONF in the environment are passed on).
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

/** One autocannon run; latencies from every response, in ms. */
function load(url, connections, seconds, onSecond) {
  return new Promise((resolvePromise, reject) => {
    const latencies = [];
    const statuses = {};
    const instance = autocannon(
      {
        url: `${url}/predict`,
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
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

async function benchServer(server) {
  const pid = server.child.pid;
  const check = await fetch(`${server.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
  });
  const answer = await check.text();
  if (check.status !== 200) throw new Error(`${server.name}: /predict answered ${check.status}: ${answer}`);
  const runs = [];
  for (const c of levels) {
    const r = await quietly(pid, `c=${c}`, async () => {
      if (warmup > 0) await load(server.url, c, warmup);
      return load(server.url, c, duration);
    });
    runs.push(r);
    process.stderr.write(
      `  ${server.name} c=${c}: ${r.req_per_s} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, errors ${r.errors} ` +
        `(CPU: server ${r.server_cpu_pct}%, client ${r.client_cpu_pct}%, other processes ${r.other_cpu_pct}%)\n`,
    );
  }
  let soakResult;
  if (soak > 0) {
    const c = Math.max(...levels);
    const r = await quietly(pid, 'soak', async () => {
      const samples = [{ t: 0, rss_mib: round(rssMiB(pid)) }];
      const t0 = performance.now();
      const sample = () => samples.push({ t: round((performance.now() - t0) / 1000), rss_mib: round(rssMiB(pid)) });
      const result = await load(server.url, c, soak, sample);
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
  const ourArgs = (m, port) => [
    'serve',
    '--model-path',
    m,
    '--port',
    String(port),
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
    const server = await start('trt-flowers serve', launcher, ourArgs(target, port), port);
    let result;
    try {
      const served = await (await fetch(`${server.url}/`)).json();
      server.name = `trt-flowers serve (${served.backend})`;
      info ??= served;
      result = { ...(await benchServer(server)), backend: served.backend };
    } finally {
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
    settings: { duration_s: duration, warmup_s: warmup, soak_s: soak, concurrency: levels },
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
      `${report.model.backend_info.classes.length} classes). Image: a ${report.image.bytes}-byte JPEG, POST /predict ` +
      `as multipart/form-data, keep-alive connections, ${report.settings.duration_s} s per level after ` +
      `${report.settings.warmup_s} s of warm-up.`,
    '',
    '| server | concurrency | req/s | p50 ms | p90 ms | p99 ms | errors | CPU % server / client / other |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of report.results) {
    for (const run of r.runs) {
      lines.push(
        `| ${r.name} | ${run.concurrency} | ${run.req_per_s} | ${run.p50_ms} | ${run.p90_ms} | ${run.p99_ms} | ` +
          `${run.errors} | ${run.server_cpu_pct} / ${run.client_cpu_pct} / ${run.other_cpu_pct} |`,
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
