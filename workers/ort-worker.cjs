'use strict';
// One ONNX Runtime session in a worker thread: InferenceSession.run() in onnxruntime-node computes on the calling
// thread, so the Engine runs every session here to keep the event loop free. Protocol (all messages are objects):
//   <- { type: 'ready', inputs, outputs }             after the session is created
//   <- { type: 'fatal', message }                      when it cannot be created
//   -> { id, data: Float32Array, shape: number[] }     one batch
//   -> { id, images: (string | Uint8Array)[], decode }  one batch of JPEG paths or bytes, decoded here (decodes: true)
//   <- { id, outputs: { name: { data, dims } } } | { id, error }
//   <- { id, fallback: i }                             images[i] is not for the native decoder: nothing was run
//   -> { type: 'close' }                               releases the session; the worker then exits
const { parentPort, workerData } = require('node:worker_threads');

const ort = require(workerData.ortPath);

// The addon's synchronous decoder, when the package root is given and the addon has it: a batch of JPEGs then goes
// from file (or bytes) to the session's input on this thread, with no hop through the libuv pool and the event loop.
function loadDecoder() {
  if (!workerData.addonRoot) return null;
  try {
    const addon = require('node-gyp-build')(workerData.addonRoot);
    return typeof addon.decodeImagesIntoSync === 'function' ? addon.decodeImagesIntoSync : null;
  } catch {
    return null;
  }
}
const decodeImages = loadDecoder();
// One input buffer per batch length, reused: a run's outputs are copied before the next one starts.
const buffers = new Map();

function decodeBatch(images, d) {
  const per = 3 * d.size * d.size;
  const length = images.length * per;
  let data = buffers.get(length);
  if (!data) {
    if (buffers.size >= 4) buffers.clear();
    data = new Float32Array(length);
    buffers.set(length, data);
  }
  const done = decodeImages(images, d.maxFileBytes, d.size, d.mode, d.maxPixels, data, 0, d.mean, d.std);
  return { data, done };
}

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
      let data = msg.data;
      let shape = msg.shape;
      if (msg.images) {
        const batch = decodeBatch(msg.images, msg.decode);
        if (batch.done < msg.images.length) {
          parentPort.postMessage({ id: msg.id, fallback: batch.done });
          return;
        }
        data = batch.data;
        shape = [msg.images.length, 3, msg.decode.size, msg.decode.size];
      }
      const input = new ort.Tensor('float32', data, shape);
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
  parentPort.postMessage({
    type: 'ready',
    inputs: session.inputNames,
    outputs: session.outputNames,
    decodes: decodeImages !== null,
  });
}

main();
