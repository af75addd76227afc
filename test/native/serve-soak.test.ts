import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot, tinyModelPath } from '../helpers.js';

const MiB = 1024 * 1024;

/** Resident memory of a process in MiB, from /proc/<pid>/status. */
function rssMiB(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}

interface Phase {
  baseline: number;
  samples: number[];
}

/** Growth over the first half of a phase, and further growth over the second half (peaks, in MiB). */
function growth({ baseline, samples }: Phase): { first: number; second: number; peak: number } {
  const half = Math.floor(samples.length / 2);
  const firstPeak = Math.max(...samples.slice(0, half));
  const peak = Math.max(...samples);
  return { first: firstPeak - baseline, second: peak - firstPeak, peak };
}

// The server as users start it: through bin/trt-flowers, whose allocator choice (jemalloc and its settings, per
// command) is part of what is tested. Large requests within the size limits that are then refused must not make it
// keep more and more memory.
describe.skipIf(process.platform !== 'linux')('trt-flowers serve: memory under large refused requests', () => {
  it('RSS levels off under a bound: 27 MB JSON bodies to /invocations and 9 MB uploads, each a 400', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['LD_PRELOAD', 'MALLOC_CONF', 'TRT_FLOWERS_MALLOC', 'TRT_FLOWERS_V8_FLAGS']) delete env[name];
    const child = spawn(join(repoRoot, 'bin', 'trt-flowers'), ['serve', '--model-path', tinyModelPath, '--port', '0'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; !/\[serve\] ready:/.test(stderr); i++) {
        if (i > 600 || child.exitCode !== null) throw new Error(`the server did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const base = /listening on (http:\/\/\S+) /.exec(stderr)![1]!;
      // The launcher's V8 heap growth for serve (fewer full collections while serving).
      expect(stderr).toMatch(/ready: .*; node --heap-growing-percent=200/);
      const pid = child.pid!;

      // Bodies under the limits (32 MiB body, 10 MiB file) that are not images.
      const json = JSON.stringify({ instances: [Buffer.alloc(20 * MiB, 7).toString('base64')] });
      expect(json.length).toBeGreaterThan(26 * MiB);
      const file = new Blob([Buffer.alloc(9 * MiB, 7)]);
      const phase = async (n: number, send: () => Promise<Response>): Promise<Phase> => {
        const baseline = rssMiB(pid);
        const samples: number[] = [];
        for (let i = 0; i < n; i++) {
          const res = await send();
          const body = await res.text();
          expect(res.status, body).toBe(400);
          samples.push(rssMiB(pid));
        }
        return { baseline, samples };
      };
      const jsonPhase = await phase(36, () =>
        fetch(`${base}/invocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json }),
      );
      const uploadPhase = await phase(80, () => {
        const form = new FormData();
        form.append('file', file, 'not-an-image.jpg');
        return fetch(`${base}/predict`, { method: 'POST', body: form });
      });

      const report = `RSS MiB, JSON: ${jsonPhase.baseline.toFixed(0)} -> ${jsonPhase.samples.map((s) => s.toFixed(0)).join(' ')}; uploads: ${uploadPhase.baseline.toFixed(0)} -> ${uploadPhase.samples.map((s) => s.toFixed(0)).join(' ')}`;
      const start = jsonPhase.baseline;
      for (const g of [growth(jsonPhase), growth(uploadPhase)]) {
        // Levelling off: the second half adds little on top of the first half's peak...
        expect(g.second, report).toBeLessThan(Math.max(100, 0.5 * g.first));
        // ...and the whole stays under an absolute bound above the idle server.
        expect(g.peak - start, report).toBeLessThan(600);
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
