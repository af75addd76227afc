import { loadAddon } from './loader.js';
import type { NativeRuntimeInfo } from './types.js';

/** Versions, devices and thread count of the native (libtorch) side. */
export function runtimeInfo(): NativeRuntimeInfo {
  return loadAddon().runtimeInfo();
}

/** Sets libtorch's intra-op thread count for every later native call. Throws RangeError outside 1..1024. */
export function setThreads(n: number): void {
  loadAddon().setThreads(n);
}

/** Seeds libtorch's random generators (dropout, initialisation). */
export function manualSeed(seed: number): void {
  loadAddon().manualSeed(seed);
}

/**
 * Turns libtorch's TorchScript graph optimizer (profiling executor, fusion, autodiff subgraphs) on or off for later
 * native calls. Off runs scripted modules op by op as eager PyTorch does.
 */
export function setJitOptimize(enabled: boolean): void {
  loadAddon().setJitOptimize(enabled);
}
