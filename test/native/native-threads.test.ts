// How native calls use threads: libtorch work runs on each model's own thread and settles its promise from there,
// so the libuv pool stays free; dispose() waits for the calls in flight; the image errors keep their typed codes.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { DisposedError, fromNativeError, InvalidImageError } from '../../src/errors.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { repoRoot, tinyModelPath } from '../helpers.js';

const run = promisify(execFile);

/** Runs CommonJS `code` in a fresh Node with the addon as `addon`, and returns what it printed as JSON. */
async function child(code: string, env: NodeJS.ProcessEnv = {}, timeout = 60_000): Promise<unknown> {
  const prelude = `const addon = require('node-gyp-build')(${JSON.stringify(repoRoot)});
    const modelPath = ${JSON.stringify(tinyModelPath)};\n`;
  const { stdout } = await run(process.execPath, ['-e', prelude + code], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    timeout,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? 'null');
}

describe('libtorch calls leave the libuv thread pool free', () => {
  it('fs and crypto calls finish while a long forward and a long training step run (UV_THREADPOOL_SIZE=1)', async () => {
    const out = (await child(
      `
      const crypto = require('node:crypto');
      const fs = require('node:fs');
      const pool = () => Promise.all([
        new Promise((resolve, reject) => crypto.pbkdf2('x', 'y', 1, 32, 'sha256', (e) => (e ? reject(e) : resolve()))),
        fs.promises.readFile(modelPath),
      ]);
      // Starts a native call, lets it get going, then times thread-pool work while it runs.
      async function during(call) {
        const t0 = performance.now();
        let endMs = 0;
        const job = call().then(() => { endMs = performance.now() - t0; });
        await new Promise((resolve) => setTimeout(resolve, 20));
        const t1 = performance.now();
        await pool();
        const poolMs = performance.now() - t1;
        const poolEndMs = performance.now() - t0;
        await job;
        return { callMs: endMs, poolMs, poolEndMs };
      }
      (async () => {
        const model = await addon.loadModel(modelPath, 'cpu');
        // A batch big enough for a forward of a few hundred milliseconds on this machine.
        let n = 8;
        let x, shape;
        // Timed warm (the first calls are several times slower), the faster of two runs.
        for (;;) {
          shape = [n, 3, 320, 320];
          x = new Float32Array(n * 3 * 320 * 320).fill(0.25);
          await model.forward(x, shape);
          let best = Infinity;
          for (let i = 0; i < 2; i++) {
            const t = performance.now();
            await model.forward(x, shape);
            best = Math.min(best, performance.now() - t);
          }
          if (best > 250 || n >= 256) break;
          n *= 2;
        }
        await pool();
        const forward = await during(() => model.forward(x, shape));
        const trainer = new addon.Trainer(model, {});
        // A step of a few hundred milliseconds too, sized the same way.
        let m = 8;
        let y, small, labels;
        for (;;) {
          small = [m, 3, 256, 256];
          y = new Float32Array(m * 3 * 256 * 256).fill(0.25);
          labels = new Int32Array(m);
          await trainer.step(y, y, y, small, labels);
          const t = performance.now();
          await trainer.step(y, y, y, small, labels);
          if (performance.now() - t > 250 || m >= 64) break;
          m *= 2;
        }
        const step = await during(() => trainer.step(y, y, y, small, labels));
        console.log(JSON.stringify({ forward, step }));
      })().catch((e) => { console.error(e); process.exit(1); });
      `,
      { UV_THREADPOOL_SIZE: '1' },
    )) as Record<'forward' | 'step', { callMs: number; poolMs: number; poolEndMs: number }>;
    for (const [what, r] of Object.entries(out)) {
      expect(r.callMs, `${what}: ${JSON.stringify(r)}`).toBeGreaterThan(100);
      // With a pool thread parked until libtorch is done, the pool work would end after the call.
      expect(r.poolEndMs, `${what}: ${JSON.stringify(r)}`).toBeLessThan(r.callMs);
      expect(r.poolMs, `${what}: ${JSON.stringify(r)}`).toBeLessThan(r.callMs / 2);
    }
  });

  it('an idle process exits by itself after native calls, and while a call runs it waits for it', async () => {
    const t0 = performance.now();
    const out = (await child(`
      (async () => {
        const model = await addon.loadModel(modelPath, 'cpu');
        await model.forward(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
        // Not awaited: the process must stay up until it settles, then exit on its own.
        model.forward(new Float32Array(8 * 3 * 128 * 128), [8, 3, 128, 128]).then((r) =>
          console.log(JSON.stringify({ rows: r.batchSize })));
      })();
    `)) as { rows: number };
    expect(out.rows).toBe(8);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('a worker terminated with calls queued on two models, a trainer step among them, does not crash the process', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require('node-gyp-build')(workerData.root);
      (async () => {
        const a = await addon.loadModel(workerData.model, 'cpu');
        const b = await addon.loadModel(workerData.model, 'cpu');
        const x = new Float32Array(8 * 3 * 160 * 160).fill(0.2);
        const shape = [8, 3, 160, 160];
        const trainer = new addon.Trainer(a, {});
        trainer.step(x, x, x, shape, new Int32Array(8));
        a.forward(x, shape);
        trainer.dispose();
        b.forward(x, shape);
        b.forward(x, shape);
        b.dispose();
        parentPort.postMessage('queued');
      })();
    `;
    const w = new Worker(code, { eval: true, workerData: { root: repoRoot, model: tinyModelPath } });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    // Let the queued jobs end after the worker's environment is gone.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const m = await TorchModel.load(tinyModelPath);
    expect((await m.forward(new Float32Array(3 * 32 * 32), [1, 3, 32, 32])).logits).toHaveLength(5);
    await m.dispose();
  });

  it('many calls from several models in flight at once all settle with their own results', async () => {
    const a = await TorchModel.load(tinyModelPath);
    const b = await TorchModel.load(tinyModelPath);
    const inputs = Array.from({ length: 12 }, (_, i) => new Float32Array(3 * 32 * 32).fill(i / 12));
    const [ra, rb] = await Promise.all([
      Promise.all(inputs.map((x) => a.forward(x, [1, 3, 32, 32]))),
      Promise.all(inputs.map((x) => b.forward(x, [1, 3, 32, 32]))),
    ]);
    expect(ra.map((r) => Array.from(r.logits))).toEqual(rb.map((r) => Array.from(r.logits)));
    expect(new Set(ra.map((r) => r.logits[0])).size).toBeGreaterThan(1);
    await Promise.all([a.dispose(), b.dispose()]);
  });
});

describe('dispose waits for the calls in flight', () => {
  const shape = [8, 3, 192, 192] as const;
  const x = new Float32Array(8 * 3 * 192 * 192).fill(0.3);
  const labels = new Int32Array(8);
  const batch = { query: x, positive: x, negative: x, shape, labels };

  it('Trainer.dispose resolves after a step in flight; calls after it started get DisposedError', async () => {
    await using model = await TorchModel.load(tinyModelPath);
    const trainer = new Trainer(model);
    const order: string[] = [];
    const step = trainer.step(batch).then(() => order.push('step'));
    const disposed = trainer.dispose().then(() => order.push('disposed'));
    await expect(trainer.step(batch)).rejects.toBeInstanceOf(DisposedError);
    expect(() => trainer.stepCount).toThrow(DisposedError);
    await Promise.all([step, disposed]);
    expect(order).toEqual(['step', 'disposed']);
    expect(trainer.disposed).toBe(true);
    await trainer.dispose(); // idempotent
  });

  it('TorchModel.dispose also waits for a training step on the model', async () => {
    const model = await TorchModel.load(tinyModelPath);
    const trainer = new Trainer(model);
    const order: string[] = [];
    const step = trainer.step(batch).then(() => order.push('step'));
    const disposed = model.dispose().then(() => order.push('disposed'));
    await expect(model.forward(x, shape)).rejects.toBeInstanceOf(DisposedError);
    await Promise.all([step, disposed]);
    expect(order).toEqual(['step', 'disposed']);
    await trainer.dispose();
  });

  it('the raw binding: dispose() returns a promise that settles after the calls in flight', async () => {
    const addon = loadAddon();
    const model = await addon.loadModel(tinyModelPath, 'cpu');
    const trainer = new addon.Trainer(model, {});
    const order: string[] = [];
    const step = trainer.step(x, x, x, shape, labels).then(() => order.push('step'));
    const trainerDisposed = trainer.dispose();
    expect(trainerDisposed).toBeInstanceOf(Promise);
    const forward = model.forward(x, shape).then(() => order.push('forward'));
    const modelDisposed = model.dispose();
    expect(modelDisposed).toBeInstanceOf(Promise);
    expect(() => trainer.step(x, x, x, shape, labels)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => model.forward(x, shape)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    await Promise.all([
      step,
      forward,
      trainerDisposed.then(() => order.push('trainer disposed')),
      modelDisposed.then(() => order.push('model disposed')),
    ]);
    expect(order).toEqual(['step', 'trainer disposed', 'forward', 'model disposed']);
    await expect(model.dispose()).resolves.toBeUndefined();
  });
});

describe('native error codes map to typed errors', () => {
  const decode = loadAddon().decodeJpegResized;

  it.skipIf(!decode)('ERR_INVALID_IMAGE becomes InvalidImageError; ERR_UNSUPPORTED_JPEG keeps its code', async () => {
    const garbage = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]);
    const raw = await decode!(garbage, 32, 'fill', 1e6).catch((e: unknown) => e);
    expect(raw).toMatchObject({ code: 'ERR_INVALID_IMAGE' });
    const mapped = fromNativeError(raw);
    expect(mapped).toBeInstanceOf(InvalidImageError);
    expect(mapped).toMatchObject({ code: 'ERR_INVALID_IMAGE', message: (raw as Error).message });

    const sharp = (await import('sharp')).default;
    const cmyk = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#3a7' } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    const unsupported = await decode!(cmyk, 8, 'fill', 1e6).catch((e: unknown) => e);
    expect(unsupported).toMatchObject({ code: 'ERR_UNSUPPORTED_JPEG' });
    expect(fromNativeError(unsupported)).toMatchObject({ code: 'ERR_UNSUPPORTED_JPEG' });
  });

  it('ERR_DISPOSED from the addon becomes DisposedError', () => {
    const err = Object.assign(new Error('the model has been disposed'), { code: 'ERR_DISPOSED' });
    const mapped = fromNativeError(err);
    expect(mapped).toBeInstanceOf(DisposedError);
    expect(mapped.message).toBe('the model has been disposed');
  });
});
