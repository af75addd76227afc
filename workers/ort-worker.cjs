'use strict';
// One ONNX Runtime session in a worker thread: InferenceSession.run() in onnxruntime-node computes on the calling
// thread, so the Engine runs every session here to keep the event loop free. Protocol (all messages are objects):
//   <- { type: 'ready', inputs, outputs }             after the session is created
//   <- { type: 'fatal', message }                      when it cannot be created
//   -> { id, data: Float32Array, shape: number[] }     one batch
//   <- { id, outputs: { name: { data, dims } } } | { id, error }
//   -> { type: 'close' }                               releases the session; the worker then exits
const { parentPort, workerData } = require('node:worker_threads');

const ort = require(workerData.ortPath);

async function main() {
  let session;
  try {
    session = await ort.InferenceSession.create(workerData.modelPath, {
      executionProviders: workerData.executionProviders,
      intraOpNumThreads: workerData.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: workerData.graphOptimizationLevel || 'all',
      enableCpuMemArena: true,
      // Spin while a run is on, stop when it returns: between runs the cores go to the decode threads (end-to-end
      // batch 16 about 15% faster here, model-only the same).
      extra: { session: { force_spinning_stop: '1' } },
      ...(workerData.optimizedModelFilePath ? { optimizedModelFilePath: workerData.optimizedModelFilePath } : {}),
    });
  } catch (err) {
    parentPort.postMessage({ type: 'fatal', message: String((err && err.message) || err) });
    return;
  }
  parentPort.on('message', async (msg) => {
    if (msg.type === 'close') {
      try {
        await session.release();
      } finally {
        parentPort.close();
      }
      return;
    }
    try {
      const input = new ort.Tensor('float32', msg.data, msg.shape);
      const result = await session.run({ [session.inputNames[0]]: input });
      const outputs = {};
      const transfer = [];
      for (const name of session.outputNames) {
        const t = result[name];
        // A fresh copy: outputs are small, and a buffer of our own can be transferred without a second copy.
        const data = Float32Array.from(t.data);
        outputs[name] = { data, dims: Array.from(t.dims) };
        transfer.push(data.buffer);
      }
      parentPort.postMessage({ id: msg.id, outputs }, transfer);
    } catch (err) {
      parentPort.postMessage({ id: msg.id, error: String((err && err.message) || err) });
    }
  });
  parentPort.postMessage({ type: 'ready', inputs: session.inputNames, outputs: session.outputNames });
}

main();
