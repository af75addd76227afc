// The backend a process group asks for against the backends this addon has: refused before any rendezvous, by the
// TypeScript choice and by the native join alike.
import { describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/binding/loader.js';
import { BackendUnavailableError, ProcessGroup, distributedAvailable } from '../../src/index.js';
import { freePort } from '../../src/cli/launch.js';

const dist = distributedAvailable();

describe.runIf(dist.available)('process-group backends of this build', () => {
  it('lists its backends; a CPU rank gets Gloo', async () => {
    expect(dist.backends.length).toBeGreaterThan(0);
    if (!dist.backends.includes('gloo')) return;
    await using pg = await ProcessGroup.init({ port: await freePort(), worldSize: 1, interfaces: ['lo'] }, {});
    expect(pg.backend).toBe('gloo');
    expect(pg.device).toBe('cpu');
  });

  it.runIf(!dist.backends.includes('nccl'))(
    'refuses NCCL where it is not compiled in, naming what the addon has, from TS and from the native join',
    async () => {
      const port = await freePort();
      const asked = ProcessGroup.init({ port, worldSize: 1, device: 'cuda', backend: 'nccl' }, {});
      await expect(asked).rejects.toThrow(BackendUnavailableError);
      await expect(asked).rejects.toThrow(/nccl backend is not compiled into this addon \(it has: gloo\)/);
      // The environment variable asks the same.
      await expect(ProcessGroup.init({ port, worldSize: 1 }, { TRT_FLOWERS_DIST_BACKEND: 'nccl' })).rejects.toThrow(
        BackendUnavailableError,
      );
      // The native join refuses it before the rendezvous: rank 0 of 2 would otherwise wait for a peer that never comes.
      const native = new (loadAddon().ProcessGroup!)({
        port,
        rank: 0,
        worldSize: 2,
        backend: 'nccl',
        timeoutMs: 60_000,
      });
      const started = Date.now();
      await expect(native.join()).rejects.toMatchObject({
        code: 'ERR_BACKEND_UNAVAILABLE',
        message: expect.stringMatching(/the nccl backend is not compiled into this addon \(it has: gloo; nccl: /),
      });
      expect(Date.now() - started).toBeLessThan(5000);
    },
  );

  it('refuses unknown backends and devices with RangeError naming the option', async () => {
    await expect(ProcessGroup.init({ worldSize: 1, backend: 'mpi' as 'gloo' }, {})).rejects.toThrow(/`backend`.*'mpi'/);
    await expect(ProcessGroup.init({ worldSize: 1, device: 'tpu' }, {})).rejects.toThrow(/`device`.*'tpu'/);
    expect(() => new (loadAddon().ProcessGroup!)({ backend: 'mpi' as 'gloo' })).toThrow(
      /backend must be 'gloo' or 'nccl'/,
    );
  });
});
