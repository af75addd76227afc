import { loadAddon } from '../binding/loader.js';
import type { NativeProcessGroup, NativeSyncStats } from '../binding/types.js';
import { BackendUnavailableError, callNative, DisposedError } from '../errors.js';
import type { Trainer } from '../torch/Trainer.js';
import { distributedEnv, type DistributedEnv } from './env.js';

/** Where and how to join a data-parallel group. Unset fields come from the launcher's environment (env.ts). */
export interface ProcessGroupOptions {
  /** The TCPStore host (rank 0's machine). Defaults to MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** The TCPStore port. Defaults to MASTER_PORT, else 29500. */
  port?: number;
  /** This process's rank, 0 .. worldSize - 1. Defaults to RANK, else 0. */
  rank?: number;
  /** Number of processes. Defaults to WORLD_SIZE, else 1. */
  worldSize?: number;
  /** This process's index on its machine. Defaults to LOCAL_RANK, else rank. */
  localRank?: number;
  /** Processes on this machine. Defaults to LOCAL_WORLD_SIZE, else worldSize. */
  localWorldSize?: number;
  /**
   * Bounds the rendezvous and every collective: a rank that dies, hangs or never joins fails the others' calls with
   * DistributedError after this long. Defaults to TRT_FLOWERS_DIST_TIMEOUT_MS, else 300000 (5 minutes).
   */
  timeoutMs?: number;
  /** Connect to torchrun's agent store instead of hosting one on rank 0. Defaults to TORCHELASTIC_USE_AGENT_STORE. */
  useAgentStore?: boolean;
  /** torchrun's restart count. Defaults to TORCHELASTIC_RESTART_COUNT, else 0. */
  restartCount?: number;
  /** Gloo's network interfaces. Defaults to GLOO_SOCKET_IFNAME's list, else the host's address. */
  interfaces?: string[];
}

/** Gradient buckets: DistributedDataParallel's sizes unless set. */
export interface AttachOptions {
  /** Defaults to 25 MiB. */
  bucketBytes?: number;
  /** The first bucket, smaller so communication starts early. Defaults to 1 MiB. */
  firstBucketBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 300_000;

/** True when this addon was built with c10d + Gloo; `note` says why not. */
export function distributedAvailable(): { available: boolean; note: string } {
  const info = loadAddon().runtimeInfo();
  if (info.distributedCompiled) return { available: true, note: '' };
  return { available: false, note: info.distributedNote ?? 'the addon was built before data-parallel training' };
}

function resolveOptions(options: ProcessGroupOptions, env: NodeJS.ProcessEnv): Required<ProcessGroupOptions> {
  const fromEnv: DistributedEnv | null = distributedEnv(env);
  const worldSize = options.worldSize ?? fromEnv?.worldSize ?? 1;
  const rank = options.rank ?? fromEnv?.rank ?? 0;
  const envTimeout = env.TRT_FLOWERS_DIST_TIMEOUT_MS ? Number(env.TRT_FLOWERS_DIST_TIMEOUT_MS) : undefined;
  const timeoutMs = options.timeoutMs ?? envTimeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new RangeError(`Expected a positive integer for \`timeoutMs\` but received ${String(timeoutMs)}`);
  }
  return {
    masterAddr: options.masterAddr ?? fromEnv?.masterAddr ?? '127.0.0.1',
    port: options.port ?? fromEnv?.port ?? 29500,
    rank,
    worldSize,
    localRank: options.localRank ?? fromEnv?.localRank ?? rank,
    localWorldSize: options.localWorldSize ?? fromEnv?.localWorldSize ?? worldSize,
    timeoutMs,
    useAgentStore: options.useAgentStore ?? fromEnv?.useAgentStore ?? false,
    restartCount: options.restartCount ?? fromEnv?.restartCount ?? 0,
    interfaces: options.interfaces ?? fromEnv?.interfaces ?? [],
  };
}

/**
 * This process's membership of a data-parallel group over PyTorch's c10d (TCPStore rendezvous, Gloo collectives),
 * laid out as Python's `init_process_group("gloo", init_method="env://")` so Node and Python ranks can share one.
 * Collectives run on the group's own thread; every rank must make the same calls in the same order, so they are
 * queued one after the other here (a trainer's step that averages gradients goes through the same queue).
 */
export class ProcessGroup implements AsyncDisposable {
  #native: NativeProcessGroup | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly localWorldSize: number;
  readonly timeoutMs: number;

  private constructor(native: NativeProcessGroup, o: Required<ProcessGroupOptions>) {
    this.#native = native;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.localRank = o.localRank;
    this.localWorldSize = o.localWorldSize;
    this.timeoutMs = o.timeoutMs;
  }

  /**
   * Joins the group: resolves when every rank has joined. Rejects with DistributedError (timed out, unreachable
   * store, malformed environment), BackendUnavailableError (addon without c10d), RangeError / TypeError (options).
   */
  static async init(options: ProcessGroupOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ProcessGroup> {
    const o = resolveOptions(options, env);
    const addon = loadAddon();
    if (!addon.ProcessGroup) {
      throw new BackendUnavailableError('this build of the addon has no data-parallel training: rebuild it');
    }
    const { localRank: _l, localWorldSize: _w, ...nativeOptions } = o;
    const native = new addon.ProcessGroup(nativeOptions);
    await callNative(() => native.join());
    return new ProcessGroup(native, o);
  }

  /** Runs fn after every collective queued before it: the one order all ranks follow. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** The element-wise reduction of data over all ranks (a new array). */
  allReduce(data: Float32Array, op: 'sum' | 'avg' | 'max' | 'min' = 'sum'): Promise<Float32Array> {
    const native = this.native;
    return this.exclusive(() => callNative(() => native.allReduce(data, op)));
  }

  /** root's data on every rank (a new array of the same length). */
  broadcast(data: Float32Array, root = 0): Promise<Float32Array> {
    const native = this.native;
    return this.exclusive(() => callNative(() => native.broadcast(data, root)));
  }

  /** Resolves when every rank has reached it. */
  barrier(): Promise<void> {
    const native = this.native;
    return this.exclusive(() => callNative(() => native.barrier()));
  }

  /**
   * Makes trainer data-parallel: every rank takes rank 0's parameters and buffers now, and each step averages the
   * gradients over the ranks (buckets of AttachOptions) and agrees on the loss scaler's skipped steps. Resolves with
   * the bucket sizes in bytes. Run the trainer's steps through exclusive() when other collectives may be in flight.
   */
  attach(trainer: Trainer, options: AttachOptions = {}): Promise<number[]> {
    const native = this.native;
    const t = trainer.nativeTrainer;
    return this.exclusive(() => callNative(() => native.attachTrainer(t, options)));
  }

  /** Time and bytes of gradient averaging since attach(). */
  syncStats(): NativeSyncStats {
    return this.native.syncStats();
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  private get native(): NativeProcessGroup {
    if (!this.#native) throw new DisposedError('this ProcessGroup');
    return this.#native;
  }

  /** Leaves the group after the calls in flight. Idempotent. */
  async destroy(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = undefined;
    await this.exclusive(() => callNative(() => native.destroy()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
