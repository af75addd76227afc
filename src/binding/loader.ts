import { createRequire } from 'node:module';
import { join } from 'node:path';

import { packageRoot } from '../util/paths.js';
import { AddonLoadError } from '../errors.js';
import type { NativeAddon } from './types.js';

const require = createRequire(import.meta.url);

/** The package root: the folder holding package.json, binding.gyp and build/ or prebuilds/. */

const NAPI_VERSION = 8;

let cached: NativeAddon | undefined;

/**
 * Loads the native addon once (prebuilds/ for this platform, else build/Release) and returns it.
 * Throws AddonLoadError with one actionable message when it cannot be loaded.
 */
export function loadAddon(root: string = packageRoot): NativeAddon {
  if (cached && root === packageRoot) return cached;
  let addon: NativeAddon;
  try {
    const nodeGypBuild = require('node-gyp-build') as ((dir: string) => unknown) & { path(dir: string): string };
    addon = nodeGypBuild(root) as NativeAddon;
  } catch (err) {
    throw describeLoadFailure(err as Error, root);
  }
  if (root === packageRoot) cached = addon;
  return addon;
}

/**
 * One optional function of the addon (a feature it may be built without), bound to it; null when the addon cannot
 * load or lacks the function.
 */
export function optionalAddonFunction<K extends keyof NativeAddon>(name: K): NonNullable<NativeAddon[K]> | null {
  try {
    const addon = loadAddon();
    const fn: unknown = addon[name];
    return typeof fn === 'function' ? (fn.bind(addon) as NonNullable<NativeAddon[K]>) : null;
  } catch {
    return null;
  }
}

/** Turns a node-gyp-build / dlopen failure into one error that says what is wrong and how to fix it. */
export function describeLoadFailure(err: Error, root: string): AddonLoadError {
  const message = err.message ?? String(err);
  const tried = /No native build was found/.test(message)
    ? `${join(root, 'build', 'Release', 'trt_flowers.node')} or ${join(root, 'prebuilds', `${process.platform}-${process.arch}`)}/`
    : (/^(\S+\.node)/.exec(message)?.[1] ?? (/'([^']+\.node)'/.exec(message)?.[1] || join(root, 'build', 'Release')));
  const lines = [
    `Could not load the trt-flowers native addon (${process.platform}-${process.arch}, Node ${process.version}, Node-API ${NAPI_VERSION}).`,
    `Tried: ${tried}`,
  ];
  const missingLib = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(message)?.[1];
  if (/No native build was found/.test(message)) {
    lines.push('Cause: the addon has not been built.');
    lines.push('Fix: run `npm run build:native` (or `npm run setup` on a fresh Debian machine).');
  } else if (missingLib) {
    lines.push(`Cause: the shared library ${missingLib} is missing.`);
    if (/torch|c10/.test(missingLib)) {
      lines.push(
        'Fix: install libtorch (Debian: `sudo apt-get install libtorch-dev libopenblas0-openmp`, or `npm run setup`), ' +
          'or rebuild against your libtorch with `Torch_DIR=/path/to/libtorch/share/cmake/Torch npm run build:native`.',
      );
    } else if (/nvinfer|nvonnxparser/.test(missingLib)) {
      lines.push(
        "Fix: add TensorRT's lib folder to LD_LIBRARY_PATH, or rebuild without TensorRT (unset TENSORRT_ROOT; `npm run build:native`).",
      );
    } else if (/cuda|cudnn|cublas|nvrtc/.test(missingLib)) {
      lines.push('Fix: add the CUDA libraries to LD_LIBRARY_PATH, or rebuild against a CPU libtorch.');
    } else {
      lines.push('Fix: install the package that provides it, then `npm run build:native`.');
    }
  } else if (/undefined symbol/.test(message)) {
    lines.push(`Cause: ${message.split('\n')[0]}`);
    lines.push('Fix: the addon was built against another libtorch; rebuild it with `npm run build:native`.');
  } else {
    lines.push(`Cause: ${message.split('\n')[0]}`);
    lines.push('Fix: rebuild with `npm run build:native`; `npx trt-flowers doctor` shows what is installed.');
  }
  return new AddonLoadError(lines.join('\n'), { cause: err });
}
