import { describe, expect, it } from 'vitest';

import { chooseBackend } from '../../src/dist/ProcessGroup.js';
import { BackendUnavailableError } from '../../src/errors.js';

describe('the data-parallel backend', () => {
  it("'auto' picks NCCL for a CUDA rank when the addon has it, else Gloo", () => {
    expect(chooseBackend('auto', 'cuda:0', ['gloo', 'nccl'])).toBe('nccl');
    expect(chooseBackend('auto', 'cuda', ['nccl'])).toBe('nccl');
    expect(chooseBackend('auto', 'cpu', ['gloo', 'nccl'])).toBe('gloo');
    // Debian's CPU libtorch: Gloo alone, so a CUDA rank there still averages through Gloo.
    expect(chooseBackend('auto', 'cuda:1', ['gloo'])).toBe('gloo');
  });

  it('an explicit backend overrides the choice', () => {
    expect(chooseBackend('gloo', 'cuda:0', ['gloo', 'nccl'])).toBe('gloo');
    expect(chooseBackend('nccl', 'cuda:0', ['gloo', 'nccl'])).toBe('nccl');
  });

  it('a backend that is not compiled in is BackendUnavailableError naming what the addon has', () => {
    expect(() => chooseBackend('nccl', 'cuda:0', ['gloo'])).toThrow(BackendUnavailableError);
    expect(() => chooseBackend('nccl', 'cuda:0', ['gloo'])).toThrow(/nccl backend is not compiled.*it has: gloo/);
    expect(() => chooseBackend('auto', 'cpu', ['nccl'])).toThrow(/gloo backend is not compiled.*it has: nccl/);
    expect(() => chooseBackend('gloo', 'cpu', [])).toThrow(/it has: none/);
  });

  it('NCCL on a CPU rank and unknown names are RangeError', () => {
    expect(() => chooseBackend('nccl', 'cpu', ['gloo', 'nccl'])).toThrow(RangeError);
    expect(() => chooseBackend('mpi', 'cpu', ['gloo'])).toThrow(/'auto', 'gloo' or 'nccl'.*'mpi'/);
  });
});
