import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { describeLoadFailure, loadAddon } from '../../src/binding/loader.js';
import {
  AddonLoadError,
  BackendUnavailableError,
  fromNativeError,
  InferenceError,
  ModelLoadError,
  SaveError,
  TrtFlowersError,
} from '../../src/errors.js';

const nativeError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('fromNativeError', () => {
  it('maps native codes to typed errors and keeps the message', () => {
    expect(fromNativeError(nativeError('ERR_MODEL_LOAD'))).toBeInstanceOf(ModelLoadError);
    expect(fromNativeError(nativeError('ERR_SAVE'))).toBeInstanceOf(SaveError);
    expect(fromNativeError(nativeError('ERR_BACKEND_UNAVAILABLE'))).toBeInstanceOf(BackendUnavailableError);
    expect(fromNativeError(nativeError('ERR_INFERENCE', 'bad shape')).message).toBe('bad shape');
    expect(fromNativeError(nativeError('ERR_INFERENCE'))).toBeInstanceOf(InferenceError);
    const disposed = fromNativeError(nativeError('ERR_DISPOSED'));
    expect(disposed).toBeInstanceOf(TrtFlowersError);
    expect((disposed as TrtFlowersError).code).toBe('ERR_DISPOSED');
  });

  it('keeps TypeError and RangeError as they are', () => {
    const t = Object.assign(new TypeError('x'), { code: 'ERR_INVALID_ARG_TYPE' });
    expect(fromNativeError(t)).toBe(t);
    const r = Object.assign(new RangeError('y'), { code: 'ERR_OUT_OF_RANGE' });
    expect(fromNativeError(r)).toBe(r);
  });

  it('puts the caller stack on the mapped error and wraps non-errors', () => {
    const stack = 'Error\n    at caller (file.ts:1:1)';
    const mapped = fromNativeError(nativeError('ERR_MODEL_LOAD', 'nope'), stack);
    expect(mapped.stack).toContain('at caller (file.ts:1:1)');
    expect(mapped.stack).toContain('ModelLoadError: nope');
    expect(fromNativeError('text')).toBeInstanceOf(TrtFlowersError);
  });
});

describe('addon loader', () => {
  it('a folder without a build gives one actionable AddonLoadError', () => {
    const empty = mkdtempSync(join(tmpdir(), 'trt-flowers-noaddon-'));
    let err: unknown;
    try {
      loadAddon(empty);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AddonLoadError);
    const message = (err as Error).message;
    expect(message).toContain('Node-API 8');
    expect(message).toContain(join(empty, 'build', 'Release', 'trt_flowers.node'));
    expect(message).toContain('npm run build:native');
  });

  it('names the missing shared library from a dlopen message and how to get it', () => {
    const dlopen = new Error(
      '/x/build/Release/trt_flowers.node: libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory',
    );
    const err = describeLoadFailure(dlopen, '/x');
    expect(err.message).toContain('Tried: /x/build/Release/trt_flowers.node');
    expect(err.message).toContain('libtorch_cpu.so.1.13 is missing');
    expect(err.message).toContain('apt-get install libtorch-dev');
    const trt = describeLoadFailure(new Error('/x/a.node: libnvinfer.so.10: cannot open shared object file'), '/x');
    expect(trt.message).toContain('LD_LIBRARY_PATH');
  });

  it('explains an ABI mismatch', () => {
    const err = describeLoadFailure(new Error('/x/a.node: undefined symbol: _ZN3c105Error'), '/x');
    expect(err.message).toContain('built against another libtorch');
  });
});
