/**
 * Our TensorRT logic around the native addon: backend choice, the plan compatibility refusal before deserializing,
 * padding to the profile's minimum batch, cancel and error mapping of builds. The native side is replaced by
 * FakeTensorRTAddon, a fake written for these tests: it runs no TensorRT and proves nothing about TensorRT itself.
 */
import { describe, expect, it } from 'vitest';

import type {
  NativeForwardResult,
  NativeTensorRTBuildOptions,
  NativeTensorRTBuildResult,
  NativeTensorRTEngine,
  NativeTensorRTInfo,
  NativeTensorRTLoadOptions,
} from '../../src/binding/types.js';
import { chooseBackend } from '../../src/build/build.js';
import { parseCalibrationCache } from '../../src/build/tensorrt.js';
import { tensorRtCache } from '../../src/build/calibrate.js';
import {
  buildTensorRTPlan,
  TensorRTBackend,
  tensorrtNative,
  tensorrtStatus,
  type TensorRTNative,
} from '../../src/engine/tensorrt.js';
import { BackendUnavailableError, CancelledError, ExportError, ModelLoadError } from '../../src/errors.js';

/** A FAKE TensorRT addon: canned info, an "engine" whose logits are each image's mean pixel, scripted builds. */
class FakeTensorRTAddon implements TensorRTNative {
  loads: string[] = [];
  gpus: NativeTensorRTInfo['gpus'] = [
    { index: 0, name: 'Fake GPU 9000', computeCapability: '9.0', totalMemory: 80e9, multiprocessors: 132 },
  ];
  minBatch = 1;
  build: (o: NativeTensorRTBuildOptions) => Promise<NativeTensorRTBuildResult> = () =>
    Promise.reject(Object.assign(new Error('not scripted'), { code: 'ERR_NATIVE' }));

  tensorrtInfo = (): NativeTensorRTInfo => ({
    headerVersion: '10.16.0',
    libraryVersion: '10.16.0',
    cudaRuntimeVersion: '13.0',
    cudaDriverVersion: '13.0',
    gpus: this.gpus,
    cudaError: this.gpus.length ? null : 'cudaErrorNoDevice: no CUDA-capable device is detected',
  });

  loadTensorRTEngine = async (
    path: string,
    device?: string,
    options?: NativeTensorRTLoadOptions,
  ): Promise<NativeTensorRTEngine> => {
    this.loads.push(`${path} ${device} ${JSON.stringify(options)}`);
    const minBatch = this.minBatch;
    let disposed = false;
    const calls: number[][] = [];
    return {
      infer: async (input: Float32Array, shape: readonly number[]): Promise<NativeForwardResult> => {
        calls.push([...shape]);
        const n = shape[0] as number;
        const per = input.length / n;
        const logits = new Float32Array(n * 2);
        for (let i = 0; i < n; i++) {
          let sum = 0;
          for (let k = 0; k < per; k++) sum += input[i * per + k] as number;
          logits[i * 2] = sum / per;
          logits[i * 2 + 1] = -sum / per;
        }
        return { logits, embedding: logits.slice(), batchSize: n, numClasses: 2, embeddingSize: 2 };
      },
      dispose: () => {
        disposed = true;
      },
      get disposed() {
        return disposed;
      },
      info: {
        path,
        device: device ?? 'cuda:0',
        gpuName: 'Fake GPU 9000',
        computeCapability: '9.0',
        tensorrtVersion: '10.16.0',
        inputName: 'input',
        inputDims: [-1, 3, 2, 2],
        minBatch,
        optBatch: 8,
        maxBatch: 32,
        imageSize: 2,
        logitsName: 'logits',
        embeddingName: 'embedding',
        numClasses: 2,
        embeddingSize: 2,
        deviceMemoryBytes: 1 << 20,
        planBytes: 1234,
        cudaGraph: options?.cudaGraph ?? false,
        cudaGraphFallbacks: 0,
        contexts: options?.contexts ?? 2,
        warnings: [],
      },
    };
  };

  buildTensorRTEngine = (o: NativeTensorRTBuildOptions): Promise<NativeTensorRTBuildResult> => this.build(o);
}

describe('--backend auto (with FakeTensorRTAddon statuses)', () => {
  it('uses TensorRT when compiled in with a GPU, else ONNX Runtime, and says why', () => {
    const fake = new FakeTensorRTAddon();
    expect(chooseBackend('auto', tensorrtStatus(fake))).toEqual({
      backend: 'tensorrt',
      reason: 'TensorRT 10.16.0 is compiled in and a GPU is present (Fake GPU 9000)',
    });
    fake.gpus = [];
    const noGpu = chooseBackend('auto', tensorrtStatus(fake));
    expect(noGpu.backend).toBe('onnxruntime');
    expect(noGpu.reason).toMatch(
      /compiled in but no CUDA GPU is visible \(cudaErrorNoDevice.*\): ONNX Runtime on the CPU/,
    );
    const none = chooseBackend('auto', tensorrtStatus({}));
    expect(none).toEqual({
      backend: 'onnxruntime',
      reason: 'this build of the addon has no TensorRT: ONNX Runtime on the CPU',
    });
    expect(chooseBackend('onnxruntime', tensorrtStatus(new FakeTensorRTAddon())).backend).toBe('onnxruntime');
  });

  it('an explicit --backend tensorrt without TensorRT or without a GPU is BackendUnavailableError', () => {
    expect(() => chooseBackend('tensorrt', tensorrtStatus({}))).toThrow(BackendUnavailableError);
    expect(() => chooseBackend('tensorrt', tensorrtStatus({}))).toThrow(/TENSORRT_ROOT/);
    const fake = new FakeTensorRTAddon();
    fake.gpus = [];
    expect(() => chooseBackend('tensorrt', tensorrtStatus(fake))).toThrow(/need a CUDA GPU/);
  });

  it('an addon without TensorRT exports answers with the way to get them', () => {
    expect(() => tensorrtNative({})).toThrow(BackendUnavailableError);
    expect(() => tensorrtNative({})).toThrow(/set TENSORRT_ROOT .* `npm run build:native`/);
  });
});

describe('TensorRTBackend over FakeTensorRTAddon', () => {
  it('refuses a plan from another TensorRT version before asking the native side to deserialize it', async () => {
    const fake = new FakeTensorRTAddon();
    const stamp = { tensorrtVersion: '11.1.0', gpuName: 'Fake GPU 9000', computeCapability: '9.0' };
    await expect(TensorRTBackend.load('m.engine', { device: 'auto', stamp, native: fake })).rejects.toThrow(
      ModelLoadError,
    );
    await expect(TensorRTBackend.load('m.engine', { device: 'auto', stamp, native: fake })).rejects.toThrow(
      /TensorRT 11.1.0 plan but this machine runs TensorRT 10.16.0/,
    );
    expect(fake.loads).toEqual([]);
  });

  it('loads on the chosen device with the options, and refuses the CPU and missing GPUs', async () => {
    const fake = new FakeTensorRTAddon();
    const stamp = { tensorrtVersion: '10.16.0', gpuName: 'Fake GPU 9000', computeCapability: '9.0' };
    const b = await TensorRTBackend.load('m.engine', {
      device: 'cuda',
      stamp,
      cudaGraph: true,
      contexts: 3,
      native: fake,
    });
    expect(fake.loads).toEqual(['m.engine cuda:0 {"cudaGraph":true,"contexts":3}']);
    expect(b.maxBatchSize).toBe(32);
    expect(b.versions).toEqual({ tensorrt: '10.16.0', cuda: '13.0', gpu: 'Fake GPU 9000' });
    await b.dispose();
    await expect(TensorRTBackend.load('m.engine', { device: 'cpu', native: fake })).rejects.toThrow(/CUDA GPUs/);
    await expect(TensorRTBackend.load('m.engine', { device: 'cuda:3', native: fake })).rejects.toThrow(
      /does not exist/,
    );
    fake.gpus = [];
    await expect(TensorRTBackend.load('m.engine', { device: 'cuda', native: fake })).rejects.toThrow(
      BackendUnavailableError,
    );
  });

  it('pads a batch below the profile minimum and returns only the real rows', async () => {
    const fake = new FakeTensorRTAddon();
    fake.minBatch = 4;
    const b = await TensorRTBackend.load('m.engine', { device: 'cuda', native: fake });
    const data = Float32Array.from({ length: 2 * 12 }, (_, i) => (i < 12 ? 1 : 3));
    const out = await b.run(data, [2, 3, 2, 2]);
    expect(out.batchSize).toBe(2);
    expect([...out.logits]).toEqual([1, -1, 3, -3]);
    expect(out.embedding).toHaveLength(4);
    await b.dispose();
    await expect(b.run(data, [2, 3, 2, 2])).rejects.toThrow(/disposed/);
  });
});

describe('buildTensorRTPlan over FakeTensorRTAddon', () => {
  it('an AbortSignal raises the native cancel flag and rejects with CancelledError', async () => {
    const fake = new FakeTensorRTAddon();
    let sawCancel = false;
    fake.build = (o) =>
      new Promise((_, reject) => {
        const poll = setInterval(() => {
          if (o.cancel && Atomics.load(o.cancel, 0) === 1) {
            sawCancel = true;
            clearInterval(poll);
            reject(Object.assign(new Error('the TensorRT build was cancelled'), { code: 'ERR_INFERENCE' }));
          }
        }, 1);
      });
    const ac = new AbortController();
    const p = buildTensorRTPlan(
      { onnxPath: 'm.onnx', planPath: 'm.engine', minBatch: 1, optBatch: 8, maxBatch: 32, signal: ac.signal },
      fake,
    );
    setTimeout(() => ac.abort(), 5);
    await expect(p).rejects.toThrow(CancelledError);
    expect(sawCancel).toBe(true);
  });

  it('a failed build is an ExportError; typed native errors stay typed; log lines carry the severity', async () => {
    const fake = new FakeTensorRTAddon();
    const lines: string[] = [];
    fake.build = (o) => {
      o.onLog?.(2, 'Unknown embedded device detected');
      expect(o.logSeverity).toBe(2);
      return Promise.reject(
        Object.assign(new Error('TensorRT could not build an engine from m.onnx'), { code: 'ERR_INFERENCE' }),
      );
    };
    const request = { onnxPath: 'm.onnx', planPath: 'm.engine', minBatch: 1, optBatch: 8, maxBatch: 32 };
    await expect(buildTensorRTPlan({ ...request, onLog: (l) => lines.push(l) }, fake)).rejects.toThrow(ExportError);
    expect(lines).toEqual(['TensorRT warning: Unknown embedded device detected']);
    fake.build = () =>
      Promise.reject(Object.assign(new Error("TensorRT cannot parse 'm.onnx'"), { code: 'ERR_MODEL_LOAD' }));
    await expect(buildTensorRTPlan(request, fake)).rejects.toThrow(ModelLoadError);
  });
});

describe('TensorRT calibration cache', () => {
  it('reads back the ranges our calibrator wrote into the cache', () => {
    const ranges = new Map([
      ['input', { min: -2.1, max: 2.6 }],
      ['conv1_out', { min: 0, max: 6 }],
    ]);
    const parsed = parseCalibrationCache(tensorRtCache(ranges));
    expect(Object.keys(parsed)).toEqual(['input', 'conv1_out']);
    expect(parsed.input?.max).toBeCloseTo(2.6, 5);
    expect(parsed.conv1_out?.min).toBeCloseTo(-6, 5);
  });
});
