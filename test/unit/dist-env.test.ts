import { describe, expect, it } from 'vitest';

import { distributedEnv } from '../../src/dist/env.js';
import { DistributedError } from '../../src/errors.js';

describe('distributedEnv', () => {
  it('is null without WORLD_SIZE (one process on its own)', () => {
    expect(distributedEnv({ RANK: '0' })).toBeNull();
  });

  it("reads torchrun's variables", () => {
    const env = {
      MASTER_ADDR: '10.0.0.1',
      MASTER_PORT: '29400',
      RANK: '3',
      WORLD_SIZE: '4',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RESTART_COUNT: '2',
      GLOO_SOCKET_IFNAME: 'eth0, eth1',
    };
    expect(distributedEnv(env)).toEqual({
      masterAddr: '10.0.0.1',
      port: 29400,
      rank: 3,
      worldSize: 4,
      localRank: 1,
      localWorldSize: 2,
      useAgentStore: true,
      restartCount: 2,
      interfaces: ['eth0', 'eth1'],
    });
  });

  it('defaults the local view to the global one and the agent store to off', () => {
    const e = distributedEnv({ MASTER_ADDR: 'h', MASTER_PORT: '1', RANK: '1', WORLD_SIZE: '2' });
    expect(e).toMatchObject({ localRank: 1, localWorldSize: 2, useAgentStore: false, restartCount: 0 });
  });

  it('names the variable that is missing or malformed', () => {
    const base = { MASTER_ADDR: 'h', MASTER_PORT: '29500', RANK: '0', WORLD_SIZE: '2' };
    expect(() => distributedEnv({ ...base, RANK: '2' })).toThrow(/RANK/);
    expect(() => distributedEnv({ ...base, RANK: undefined })).toThrow(/RANK must be set/);
    expect(() => distributedEnv({ ...base, MASTER_PORT: '0' })).toThrow(/MASTER_PORT/);
    expect(() => distributedEnv({ ...base, MASTER_ADDR: '' })).toThrow(/MASTER_ADDR/);
    expect(() => distributedEnv({ ...base, WORLD_SIZE: '1.5' })).toThrow(DistributedError);
  });
});
