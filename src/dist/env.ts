/**
 * The launcher's view of this process in a data-parallel job, read from the environment exactly as torchrun's workers
 * (and Kubernetes' PyTorchJob, and `trt-flowers train --nproc`) set it: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, TORCHELASTIC_USE_AGENT_STORE and TORCHELASTIC_RESTART_COUNT.
 */
import { DistributedError } from '../errors.js';

export interface DistributedEnv {
  masterAddr: string;
  port: number;
  rank: number;
  worldSize: number;
  /** This process's index on its machine (torchrun's LOCAL_RANK); defaults to rank. */
  localRank: number;
  /** Processes on this machine (LOCAL_WORLD_SIZE); defaults to worldSize. */
  localWorldSize: number;
  /** torchrun's agent runs the TCPStore: connect to it as a client (TORCHELASTIC_USE_AGENT_STORE=True). */
  useAgentStore: boolean;
  /** torchrun's restart count, part of the agent store's key prefix. */
  restartCount: number;
  /** GLOO_SOCKET_IFNAME's interfaces (comma-separated); empty: this host's address, else loopback. */
  interfaces: string[];
}

function integer(env: NodeJS.ProcessEnv, name: string, lo: number, hi: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new DistributedError(`${name} must be set for a data-parallel run (WORLD_SIZE is set)`);
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw new DistributedError(`Expected an integer between ${lo} and ${hi} for ${name} but received '${raw}'`);
  }
  return n;
}

/**
 * The data-parallel environment, or null when WORLD_SIZE is not set (one process on its own). Throws
 * DistributedError naming the variable that is missing or malformed.
 */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return null;
  const worldSize = integer(env, 'WORLD_SIZE', 1, 1 << 20);
  const rank = integer(env, 'RANK', 0, worldSize - 1);
  const localWorldSize = integer(env, 'LOCAL_WORLD_SIZE', 1, worldSize, worldSize);
  const localRank = integer(env, 'LOCAL_RANK', 0, localWorldSize - 1, Math.min(rank, localWorldSize - 1));
  const masterAddr = env.MASTER_ADDR ?? '';
  if (!masterAddr) throw new DistributedError('MASTER_ADDR must be set for a data-parallel run (WORLD_SIZE is set)');
  return {
    masterAddr,
    port: integer(env, 'MASTER_PORT', 1, 65535),
    rank,
    worldSize,
    localRank,
    localWorldSize,
    useAgentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
    restartCount: integer(env, 'TORCHELASTIC_RESTART_COUNT', 0, 1 << 20, 0),
    interfaces: (env.GLOO_SOCKET_IFNAME ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
