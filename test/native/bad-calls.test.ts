// BAD CALL: every exported native entry point gets wrong types, out-of-range values and corrupt files, and must
// answer with a typed error, never a crash.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import type { NativeAddon, NativeModel, NativeTrainer } from '../../src/binding/types.js';
import { ModelLoadError, TrtFlowersError } from '../../src/errors.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { Trainer } from '../../src/torch/Trainer.js';
import { tinyModelPath } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-bad-'));
const shape = [2, 3, 32, 32];
const input = new Float32Array(2 * 3 * 32 * 32).fill(0.5);
const labels = Int32Array.from([0, 1]);
// Calls with deliberately wrong arguments go through an untyped view of the raw binding.
type Loose = Record<string, (...args: unknown[]) => unknown>;

let addon: NativeAddon;
let model: NativeModel;
let trainer: NativeTrainer;

beforeAll(async () => {
  addon = loadAddon();
  model = await addon.loadModel(tinyModelPath, 'cpu');
  trainer = new addon.Trainer(model, {});
});
afterAll(() => {
  trainer.dispose();
  model.dispose();
});

describe('runtime functions', () => {
  it('setThreads rejects non-integers and out-of-range values', () => {
    const raw = addon as unknown as Loose;
    expect(() => raw.setThreads!('2')).toThrow(TypeError);
    expect(() => raw.setThreads!(0)).toThrow(RangeError);
    expect(() => raw.setThreads!(1.5)).toThrow(RangeError);
    expect(() => raw.setThreads!(NaN)).toThrow(RangeError);
    expect(() => raw.setThreads!()).toThrow(TypeError);
    addon.setThreads(2);
    expect(addon.runtimeInfo().threads).toBe(2);
  });

  it('manualSeed rejects bad seeds', () => {
    const raw = addon as unknown as Loose;
    expect(() => raw.manualSeed!(-1)).toThrow(RangeError);
    expect(() => raw.manualSeed!({})).toThrow(TypeError);
    addon.manualSeed(42);
  });

  it('setJitOptimize takes a boolean and shows in runtimeInfo', () => {
    const raw = addon as unknown as Loose;
    expect(() => raw.setJitOptimize!('no')).toThrow(TypeError);
    addon.setJitOptimize(false);
    expect(addon.runtimeInfo().jitOptimize).toBe(false);
    addon.setJitOptimize(true);
    expect(addon.runtimeInfo().jitOptimize).toBe(true);
  });

  it('runtimeInfo reports libtorch', () => {
    const info = addon.runtimeInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+/);
    expect(info.napiVersion).toBe(8);
  });
});

describe('loadModel', () => {
  it('rejects wrong argument types synchronously with TypeError', () => {
    const raw = addon as unknown as Loose;
    expect(() => raw.loadModel!(42)).toThrow(TypeError);
    expect(() => raw.loadModel!(tinyModelPath, 5)).toThrow(TypeError);
  });

  it('rejects missing, empty, text, truncated and non-TorchScript files with ModelLoadError', async () => {
    const empty = join(tmp, 'empty.pt');
    writeFileSync(empty, '');
    const text = join(tmp, 'text.pt');
    writeFileSync(text, 'not a model');
    const truncated = join(tmp, 'truncated.pt');
    writeFileSync(truncated, readFileSync(tinyModelPath).subarray(0, 2000));
    for (const path of [join(tmp, 'nope.pt'), empty, text, truncated, tmp]) {
      const err = await TorchModel.load(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelLoadError);
      expect((err as Error).message).toContain(path);
    }
  });

  it('rejects bad device strings with RangeError and CUDA on a CPU build with BackendUnavailableError', async () => {
    for (const device of ['gpu', 'cuda:x', 'cpu:0', '']) {
      await expect(TorchModel.load(tinyModelPath, { device })).rejects.toBeInstanceOf(RangeError);
    }
    if (!addon.runtimeInfo().cudaAvailable) {
      await expect(TorchModel.load(tinyModelPath, { device: 'cuda' })).rejects.toMatchObject({
        code: 'ERR_BACKEND_UNAVAILABLE',
      });
    }
  });

  it('Model cannot be constructed directly', () => {
    const Ctor = (addon as unknown as { Model: new () => unknown }).Model;
    expect(() => new Ctor()).toThrow(/loadModel/);
  });
});

describe('Model.forward', () => {
  it('rejects wrong input types and shapes with TypeError / RangeError', () => {
    const raw = model as unknown as Loose;
    expect(() => raw.forward!(Array.from(input), shape)).toThrow(TypeError);
    expect(() => raw.forward!(new Float64Array(input.length), shape)).toThrow(TypeError);
    expect(() => raw.forward!(input)).toThrow(TypeError);
    expect(() => raw.forward!(input, 'shape')).toThrow(TypeError);
    expect(() => raw.forward!(input, [2, 3, 32])).toThrow(TypeError);
    expect(() => raw.forward!(input, [2, 3, 32, 31])).toThrow(/elements but shape/);
    expect(() => raw.forward!(input, [2, 3, 32, -32])).toThrow(RangeError);
    expect(() => raw.forward!(input, [2, 3, 32, NaN])).toThrow(RangeError);
    expect(() => raw.forward!(input, [0, 3, 32, 32])).toThrow(RangeError);
  });

  it('rejects an input the network cannot take (wrong channel count) with InferenceError', async () => {
    const m = await TorchModel.load(tinyModelPath);
    const err = await m.forward(new Float32Array(2 * 4 * 32 * 32), [2, 4, 32, 32]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrtFlowersError);
    expect((err as TrtFlowersError).code).toBe('ERR_INFERENCE');
    // The model still works afterwards.
    expect((await m.forward(input, [2, 3, 32, 32])).logits).toHaveLength(10);
    await m.dispose();
  });

  it('setTraining and save validate their arguments', () => {
    const raw = model as unknown as Loose;
    expect(() => raw.setTraining!('yes')).toThrow(TypeError);
    expect(() => raw.save!(undefined)).toThrow(TypeError);
  });

  it('every method of a disposed model throws DisposedError', async () => {
    const m = await addon.loadModel(tinyModelPath, 'cpu');
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    expect(() => m.forward(input, shape)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => m.save(join(tmp, 'x.pt'))).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => m.setTraining(true)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => m.info).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });

  it('a forward in flight survives dispose()', async () => {
    const m = await addon.loadModel(tinyModelPath, 'cpu');
    const pending = m.forward(input, shape);
    m.dispose();
    expect((await pending).logits).toHaveLength(10);
  });
});

describe('Trainer', () => {
  it('constructor rejects a non-model, unknown options and bad values', () => {
    const T = addon.Trainer as unknown as new (...args: unknown[]) => unknown;
    expect(() => new T({}, {})).toThrow(TypeError);
    expect(() => new T(model, { learningrate: 0.1 })).toThrow(/Unknown trainer option `learningrate`/);
    expect(() => new T(model, { optimizer: 'rmsprop' })).toThrow(RangeError);
    expect(() => new T(model, { optimizer: 3 })).toThrow(TypeError);
    expect(() => new T(model, { learningRate: NaN })).toThrow(/learningRate/);
    expect(() => new T(model, { learningRate: 0 })).toThrow(RangeError);
    expect(() => new T(model, { weightDecay: -1 })).toThrow(/weightDecay/);
    expect(() => new T(model, { margin: 2 })).toThrow(/margin/);
    expect(() => new T(model, { amp: 'yes' })).toThrow(TypeError);
    expect(() => new T(model, 'adam')).toThrow(TypeError);
    expect(() => (addon.Trainer as unknown as (...a: unknown[]) => unknown)(model)).toThrow(/new/);
  });

  it('amp on a CPU model is a RangeError that names the option', () => {
    if (addon.runtimeInfo().cudaAvailable) return;
    expect(() => new addon.Trainer(model, { amp: true })).toThrow(/amp/);
  });

  it('step rejects wrong arrays, lengths and labels', async () => {
    const raw = trainer as unknown as Loose;
    expect(() => raw.step!(input, input, input, shape, [0, 1])).toThrow(/Int32Array/);
    expect(() => raw.step!(input, input.subarray(1), input, shape, labels)).toThrow(/positive has/);
    expect(() => raw.step!(input, input, 'x', shape, labels)).toThrow(TypeError);
    await expect(trainer.step(input, input, input, shape, Int32Array.from([0, 1, 2]))).rejects.toThrow(
      /one entry per query/,
    );
    await expect(trainer.step(input, input, input, shape, Int32Array.from([0, 9]))).rejects.toThrow(RangeError);
    await expect(trainer.step(input, input, input, shape, Int32Array.from([-1, 0]))).rejects.toThrow(RangeError);
    // Still usable.
    expect((await trainer.step(input, input, input, shape, labels)).count).toBe(2);
  });

  it('setLearningRate rejects NaN and negative rates', () => {
    expect(() => trainer.setLearningRate(NaN)).toThrow(RangeError);
    expect(() => trainer.setLearningRate(-1)).toThrow(RangeError);
  });

  it('loadState rejects missing and corrupt files, and state of another optimizer', async () => {
    await expect(trainer.loadState(join(tmp, 'none.pt'))).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    const corrupt = join(tmp, 'corrupt-state.pt');
    copyFileSync(tinyModelPath, corrupt);
    await expect(trainer.loadState(corrupt)).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    const sgdState = join(tmp, 'sgd-state.pt');
    const sgd = new Trainer(await TorchModel.load(tinyModelPath), { optimizer: 'sgd' });
    await sgd.saveState(sgdState);
    await expect(trainer.loadState(sgdState)).rejects.toThrow(/optimizer 'sgd'/);
    await expect(trainer.saveState(join(tmp, 'no', 'dir.pt'))).rejects.toMatchObject({ code: 'ERR_SAVE' });
  });

  it('a disposed trainer throws DisposedError', async () => {
    const t = new addon.Trainer(model, {});
    t.dispose();
    expect(() => t.step(input, input, input, shape, labels)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    const wrapped = new Trainer(await TorchModel.load(tinyModelPath));
    await wrapped.dispose();
    expect(() => wrapped.learningRate).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });
});
