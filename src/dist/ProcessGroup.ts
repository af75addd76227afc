import { loadAddon } from '../binding/loader.js';
import type { NativeProcessGroup, NativeProcessGroupOptions, NativeSyncStats } from '../binding/types.js';
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
  /**
   * The device this rank trains on: 'cpu', 'cuda' (this rank's GPU: cuda:localRank) or 'cuda:N'. It picks the
   * backend under 'auto' and NCCL's device. Defaults to 'cpu'.
   */
  device?: string;
  /**
   * The collectives' backend, as torch.distributed's `backend=`: 'nccl' (CUDA tensors, one GPU per rank), 'gloo'
   * (CPU tensors), or 'auto': NCCL when the device is CUDA and the addon has NCCL, else Gloo. Defaults to
   * TRT_FLOWERS_DIST_BACKEND, else 'auto'.
   */
  backend?: DistBackend | 'auto';
}

/** A process-group backend that an addon may have compiled in. */
export type DistBackend = 'gloo' | 'nccl';

const BACKENDS: readonly string[] = ['gloo', 'nccl', 'auto'];

/** Gradient buckets: DistributedDataParallel's sizes unless set. */
export interface AttachOptions {
  /** Defaults to 25 MiB. */
  bucketBytes?: number;
  /** The first bucket, smaller so communication starts early. Defaults to 1 MiB. */
  firstBucketBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 300_000;

/**
 * True when this addon was built with c10d and at least one backend; `backends` names them (Gloo for CPU tensors,
 * NCCL for CUDA ones), `note` says why one is missing.
 */
export function distributedAvailable(): { available: boolean; backends: DistBackend[]; note: string } {
  const info = loadAddon().runtimeInfo();
  const backends = compiledBackends(info.distributedCompiled === true, info.distributedBackends);
  if (info.distributedCompiled) return { available: true, backends, note: info.distributedNote ?? '' };
  return {
    available: false,
    backends,
    note: info.distributedNote ?? 'the addon was built before data-parallel training',
  };
}

/** An addon built before NCCL support reports no list: it has Gloo alone. */
function compiledBackends(compiled: boolean, list: string[] | undefined): DistBackend[] {
  if (!compiled) return [];
  return (list ?? ['gloo']).filter((b): b is DistBackend => b === 'gloo' || b === 'nccl');
}

/** The CUDA device index of 'cuda' / 'cuda:N' (localRank for 'cuda'), or null for the CPU. */
function cudaIndex(device: string, localRank: number): number | null {
  if (device === 'cpu') return null;
  if (device === 'cuda') return localRank;
  const m = /^cuda:(\d+)$/.exec(device);
  if (!m) throw new RangeError(`Expected 'cpu', 'cuda' or 'cuda:N' for \`device\` but received '${device}'`);
  return Number(m[1]);
}

/**
 * The backend for a rank on device: `asked` ('auto' picks NCCL for a CUDA device when compiled in, else Gloo).
 * Throws BackendUnavailableError when the backend asked for is not in this addon, RangeError for an unknown name.
 */
export function chooseBackend(asked: string, device: string, compiled: readonly DistBackend[]): DistBackend {
  if (!BACKENDS.includes(asked)) {
    throw new RangeError(`Expected 'auto', 'gloo' or 'nccl' for \`backend\` but received '${asked}'`);
  }
  const backend: DistBackend =
    asked === 'auto'
      ? device.startsWith('cuda') && compiled.includes('nccl')
        ? 'nccl'
        : 'gloo'
      : (asked as DistBackend);
  if (!compiled.includes(backend)) {
    throw new BackendUnavailableError(
      `the ${backend} backend is not compiled into this addon (it has: ${compiled.join(', ') || 'none'}); ` +
        (backend === 'nccl'
          ? 'build it against a CUDA libtorch with NCCL (README: Building for NCCL)'
          : 'rebuild it after `apt-get install libgloo-dev` (npm run build:native)'),
    );
  }
  if (backend === 'nccl' && !device.startsWith('cuda')) {
    throw new RangeError(`the nccl backend needs a CUDA device, but the rank's device is '${device}'`);
  }
  return backend;
}

type Resolved = Required<Omit<ProcessGroupOptions, 'backend'>> & { backend: DistBackend; cudaDevice: number | null };

function resolveOptions(
  options: ProcessGroupOptions,
  env: NodeJS.ProcessEnv,
  compiled: readonly DistBackend[],
): Resolved {
  const fromEnv: DistributedEnv | null = distributedEnv(env);
  const worldSize = options.worldSize ?? fromEnv?.worldSize ?? 1;
  const rank = options.rank ?? fromEnv?.rank ?? 0;
  const envTimeout = env.TRT_FLOWERS_DIST_TIMEOUT_MS ? Number(env.TRT_FLOWERS_DIST_TIMEOUT_MS) : undefined;
  const timeoutMs = options.timeoutMs ?? envTimeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new RangeError(`Expected a positive integer for \`timeoutMs\` but received ${String(timeoutMs)}`);
  }
  const localRank = options.localRank ?? fromEnv?.localRank ?? rank;
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string') throw new TypeError(`Expected a string for \`device\` but received ${typeof device}`);
  const cudaDevice = cudaIndex(device, localRank);
  const backend = chooseBackend(options.backend ?? (env.TRT_FLOWERS_DIST_BACKEND || 'auto'), device, compiled);
  return {
    masterAddr: options.masterAddr ?? fromEnv?.masterAddr ?? '127.0.0.1',
    port: options.port ?? fromEnv?.port ?? 29500,
    rank,
    worldSize,
    localRank,
    localWorldSize: options.localWorldSize ?? fromEnv?.localWorldSize ?? worldSize,
    timeoutMs,
    useAgentStore: options.useAgentStore ?? fromEnv?.useAgentStore ?? false,
    restartCount: options.restartCount ?? fromEnv?.restartCount ?? 0,
    interfaces: options.interfaces ?? fromEnv?.interfaces ?? [],
    device: cudaDevice === null ? 'cpu' : `cuda:${cudaDevice}`,
    backend,
    cudaDevice,
  };
}

/**
 * This process's membership of a data-parallel group over PyTorch's c10d (TCPStore rendezvous; Gloo collectives on
 * the CPU, NCCL on this rank's GPU), laid out as Python's `init_process_group(backend, init_method="env://")` so Node
 * and Python ranks can share one.
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
  /** The collectives' backend. */
  readonly backend: DistBackend;
  /** The device this rank trains on ('cpu' or 'cuda:N'; NCCL's device). */
  readonly device: string;

  private constructor(native: NativeProcessGroup, o: Resolved) {
    this.#native = native;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.localRank = o.localRank;
    this.localWorldSize = o.localWorldSize;
    this.timeoutMs = o.timeoutMs;
    this.backend = o.backend;
    this.device = o.device;
  }

  /**
   * Joins the group: resolves when every rank has joined. Rejects with DistributedError (timed out, unreachable
   * store, malformed environment), BackendUnavailableError (addon without c10d or the backend asked for, NCCL
   * without its GPU), RangeError / TypeError (options).
   */
  static async init(options: ProcessGroupOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ProcessGroup> {
    const addon = loadAddon();
    if (!addon.ProcessGroup) {
      throw new BackendUnavailableError('this build of the addon has no data-parallel training: rebuild it');
    }
    const info = addon.runtimeInfo();
    const o = resolveOptions(
      options,
      env,
      compiledBackends(info.distributedCompiled === true, info.distributedBackends),
    );
    const { localRank: _l, localWorldSize: _w, device: _d, cudaDevice, ...rest } = o;
    const nativeOptions: NativeProcessGroupOptions = { ...rest, ...(cudaDevice !== null ? { cudaDevice } : {}) };
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
