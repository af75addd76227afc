// Real processes on 127.0.0.1: Node ranks and Debian's Python torch ranks in one c10d Gloo group, with bounded
// timeouts so a broken group fails the test instead of hanging it.
import { describe, expect, it } from 'vitest';

import { DistributedError, ProcessGroup, distributedAvailable } from '../../../src/index.js';
import { freePort, python, pythonRankScript, rankEnv, rankScript, runProcess } from './spawn.js';

const available = distributedAvailable().available;
const expected = (worldSize: number) => {
  const ranks = Array.from({ length: worldSize }, (_, r) => r + 1);
  const sum = ranks.reduce((a, b) => a + b, 0);
  return {
    sum: [sum, 10 * sum],
    avg: [sum / worldSize],
    max: [worldSize],
    bcast: [100 * (worldSize - 1), -(worldSize - 1)],
  };
};

describe.runIf(available)('ProcessGroup over c10d (TCPStore + Gloo)', () => {
  it('two Node ranks all-reduce, broadcast and meet at a barrier', async () => {
    const port = await freePort();
    const env = { TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' };
    const runs = await Promise.all(
      [0, 1].map((r) => runProcess(process.execPath, [rankScript], rankEnv(port, r, 2, env))),
    );
    for (const [r, run] of runs.entries()) {
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.result).toEqual({ rank: r, ...expected(2) });
    }
  });

  it.each([
    ['Node rank 0, Python rank 1', [0, 1]],
    ['Python rank 0, Node rank 1', [1, 0]],
  ])('shares one group with Python torch: %s', async (_name, pythonAndNode) => {
    const [nodeRank, pythonRank] = pythonAndNode as [number, number];
    const port = await freePort();
    const env = { TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' };
    const [node, py] = await Promise.all([
      runProcess(process.execPath, [rankScript], rankEnv(port, nodeRank, 2, env)),
      runProcess(python, [pythonRankScript], rankEnv(port, pythonRank, 2, env)),
    ]);
    expect(node.code, node.stdout + node.stderr).toBe(0);
    expect(py.code, py.stdout + py.stderr).toBe(0);
    expect(node.result).toEqual({ rank: nodeRank, ...expected(2) });
    expect(py.result).toEqual({ rank: pythonRank, ...expected(2) });
  });

  it('fails with DistributedError within the timeout when a rank never joins', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await ProcessGroup.init({
      masterAddr: '127.0.0.1',
      port,
      rank: 0,
      worldSize: 2,
      timeoutMs: 1500,
      interfaces: ['lo'],
    }).catch((e: unknown) => e);
    const ms = Date.now() - started;
    expect(err).toBeInstanceOf(DistributedError);
    expect((err as Error).message).toMatch(/rank 0\/2/);
    expect(ms).toBeLessThan(10_000);
  });

  it('fails the others with DistributedError when a rank dies after joining', async () => {
    const port = await freePort();
    const env = { TRT_FLOWERS_DIST_TIMEOUT_MS: '5000' };
    const [survivor, dead] = await Promise.all([
      runProcess(process.execPath, [rankScript], rankEnv(port, 0, 2, env)),
      runProcess(process.execPath, [rankScript], rankEnv(port, 1, 2, { ...env, DIST_TEST_EXIT_AFTER_JOIN: '1' })),
    ]);
    expect(dead.code).toBe(0);
    expect(survivor.code, survivor.stdout + survivor.stderr).toBe(3);
    expect(survivor.result?.code).toBe('ERR_DISTRIBUTED');
    expect(survivor.result?.error).toMatch(/all-reduce failed \(rank 0\/2/);
    expect(survivor.ms).toBeLessThan(30_000);
  });

  it('world size 1 runs alone, and a destroyed group refuses calls', async () => {
    const pg = await ProcessGroup.init({ port: await freePort(), rank: 0, worldSize: 1, interfaces: ['lo'] }, {});
    expect([...(await pg.allReduce(new Float32Array([1.5, -2]), 'avg'))]).toEqual([1.5, -2]);
    await pg.destroy();
    await pg.destroy();
    expect(() => pg.barrier()).toThrow(/disposed/);
  });

  it('refuses bad options with the option named', async () => {
    await expect(ProcessGroup.init({ rank: 2, worldSize: 2 }, {})).rejects.toThrow(/rank/);
    await expect(ProcessGroup.init({ worldSize: 0 }, {})).rejects.toThrow(/worldSize/);
    await expect(ProcessGroup.init({ port: 70000 }, {})).rejects.toThrow(/port/);
    await expect(ProcessGroup.init({ timeoutMs: 0 }, {})).rejects.toThrow(/timeoutMs/);
    await expect(ProcessGroup.init({}, { WORLD_SIZE: '2', RANK: 'x' })).rejects.toThrow(/RANK/);
  });
});
