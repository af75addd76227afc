'use strict';
// INT8 calibration statistics, off the event loop: runs a model whose graph outputs include every tensor to be
// quantised and accumulates per-tensor statistics in place (nothing large crosses threads). Two passes over the
// same batches: 'minmax' (min, max, |x| max), then 'hist' (histogram of |x| over [0, |x| max]).
//   workerData: { ortPath, modelPath, names: string[], bins, threads }
//   <- { type: 'ready' } | { type: 'fatal', message }
//   -> { id, phase: 'minmax' | 'hist', data: Float32Array, shape }   <- { id } | { id, error }
//   -> { id, type: 'stats' }   <- { id, stats: { [name]: { min, max, absMax, histogram: Float64Array } } }
const { parentPort, workerData } = require('node:worker_threads');

const ort = require(workerData.ortPath);

const bins = workerData.bins;
const stats = new Map(
  workerData.names.map((name) => [
    name,
    { min: Infinity, max: -Infinity, absMax: 0, histogram: new Float64Array(bins) },
  ]),
);

function minmax(s, data) {
  let lo = s.min;
  let hi = s.max;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  s.min = lo;
  s.max = hi;
  s.absMax = Math.max(Math.abs(lo), Math.abs(hi));
}

function histogram(s, data) {
  if (!(s.absMax > 0)) return;
  const h = s.histogram;
  const k = bins / s.absMax;
  const last = bins - 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    const b = Math.floor((v < 0 ? -v : v) * k);
    h[b > last ? last : b]++;
  }
}

async function main() {
  let session;
  try {
    session = await ort.InferenceSession.create(workerData.modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: workerData.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'basic',
    });
  } catch (err) {
    parentPort.postMessage({ type: 'fatal', message: String((err && err.message) || err) });
    return;
  }
  parentPort.on('message', async (msg) => {
    if (msg.type === 'close') {
      await session.release();
      parentPort.close();
      return;
    }
    if (msg.type === 'stats') {
      const out = {};
      for (const [name, s] of stats) out[name] = s;
      parentPort.postMessage({ id: msg.id, stats: out });
      return;
    }
    try {
      const input = new ort.Tensor('float32', msg.data, msg.shape);
      const result = await session.run({ [session.inputNames[0]]: input });
      for (const [name, s] of stats) {
        const t = result[name] || (name === session.inputNames[0] ? { data: msg.data } : undefined);
        if (!t) throw new Error(`the calibration model has no output '${name}'`);
        if (msg.phase === 'minmax') minmax(s, t.data);
        else histogram(s, t.data);
      }
      parentPort.postMessage({ id: msg.id });
    } catch (err) {
      parentPort.postMessage({ id: msg.id, error: String((err && err.message) || err) });
    }
  });
  parentPort.postMessage({ type: 'ready' });
}

main();
