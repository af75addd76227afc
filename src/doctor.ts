import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { promisify } from 'node:util';

import { loadAddon } from './binding/loader.js';
import { defaultPython } from './util/python.js';

const require = createRequire(import.meta.url);

export interface DoctorReport {
  node: { version: string; platform: string; arch: string; napi: string; cpus: number; cpuModel: string };
  addon: { loaded: boolean; error?: string };
  libtorch: {
    version: string | null;
    threads: number | null;
    devices: string[];
    parallel: string | null;
  };
  cuda: { compiled: boolean; available: boolean; devices: number };
  tensorrt: { compiled: boolean; version: string };
  /** Data-parallel training (c10d: TCPStore + Gloo) in the addon; `note` says why not. */
  /** Data-parallel training: compiled in, with which backends ('gloo', 'nccl'), and why one is missing. */
  distributed: { compiled: boolean; backends: string[]; note: string };
  onnxruntime: { version: string | null; available: boolean; error?: string };
  sharp: { version: string | null; libvips: string | null };
  /** The malloc in use: 'jemalloc' when preloaded (bin/trt-flowers does it where libjemalloc2 is installed). */
  allocator: string;
  python: { path: string; torch: string | null; torchvision: string | null; onnx: string | null; error?: string };
}

/** 'jemalloc (...)' when this process runs with jemalloc loaded, else the system malloc. */
function allocatorInUse(): string {
  try {
    const lib = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((l) => l.split(/\s+/)[5] ?? '')
      .find((f) => /libjemalloc/.test(f));
    if (lib) return `jemalloc (${lib}, MALLOC_CONF=${process.env.MALLOC_CONF ?? 'default'})`;
  } catch {
    // not Linux
  }
  return process.platform === 'linux'
    ? 'system malloc (install libjemalloc2 and run bin/trt-flowers for faster training)'
    : 'system malloc';
}

/** Collects what is installed and usable. Never throws: a missing part is reported as such. */
export async function doctor(): Promise<DoctorReport> {
  const cpuList = cpus();
  const report: DoctorReport = {
    node: {
      version: process.version,
      platform: process.platform,
      arch: process.arch,
      napi: process.versions.napi ?? 'unknown',
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
    },
    addon: { loaded: false },
    libtorch: { version: null, threads: null, devices: [], parallel: null },
    cuda: { compiled: false, available: false, devices: 0 },
    tensorrt: { compiled: false, version: 'not found' },
    distributed: { compiled: false, backends: [], note: 'the addon is not loaded' },
    onnxruntime: { version: null, available: false },
    sharp: { version: null, libvips: null },
    allocator: allocatorInUse(),
    python: { path: defaultPython(), torch: null, torchvision: null, onnx: null },
  };
  try {
    const info = loadAddon().runtimeInfo();
    report.addon.loaded = true;
    report.libtorch = {
      version: info.torchVersion,
      threads: info.threads,
      devices: ['cpu', ...Array.from({ length: info.cudaDeviceCount }, (_, i) => `cuda:${i}`)],
      parallel:
        info.parallelInfo
          .split('\n')
          .find((l) => /backend/.test(l))
          ?.trim() ?? null,
    };
    report.cuda = { compiled: info.cudaCompiled, available: info.cudaAvailable, devices: info.cudaDeviceCount };
    report.tensorrt = { compiled: info.tensorrtCompiled, version: info.tensorrtVersion || 'not found' };
    report.distributed = {
      compiled: info.distributedCompiled === true,
      backends: info.distributedCompiled ? (info.distributedBackends ?? ['gloo']) : [],
      note: info.distributedCompiled
        ? (info.distributedNote ?? '')
        : (info.distributedNote ?? 'the addon was built before data-parallel training: rebuild it'),
    };
  } catch (err) {
    report.addon.error = (err as Error).message;
  }
  try {
    report.onnxruntime.version = (require('onnxruntime-node/package.json') as { version: string }).version;
    await import('onnxruntime-node');
    report.onnxruntime.available = true;
  } catch (err) {
    report.onnxruntime.error = (err as Error).message.split('\n')[0];
  }
  try {
    const sharp = (await import('sharp')).default;
    report.sharp = { version: sharp.versions.sharp ?? null, libvips: sharp.versions.vips };
  } catch {
    // reported as null
  }
  try {
    const { stdout } = await promisify(execFile)(
      report.python.path,
      [
        '-c',
        'import json\nout={}\nfor m in ("torch","torchvision","onnx"):\n  try:\n    out[m]=__import__(m).__version__\n  except Exception:\n    out[m]=None\nprint(json.dumps(out))',
      ],
      { timeout: 60_000 },
    );
    const v = JSON.parse(stdout) as Record<string, string | null>;
    report.python.torch = v.torch ?? null;
    report.python.torchvision = v.torchvision ?? null;
    report.python.onnx = v.onnx ?? null;
  } catch (err) {
    report.python.error = (err as Error).message.split('\n')[0];
  }
  return report;
}

/** The report as aligned text lines. */
export function formatDoctor(r: DoctorReport): string {
  const ok = (b: boolean) => (b ? 'yes' : 'no');
  const rows: [string, string][] = [
    ['node', `${r.node.version} ${r.node.platform}-${r.node.arch}, Node-API ${r.node.napi}`],
    ['cpu', `${r.node.cpuModel} (${r.node.cpus} cores)`],
    ['native addon', r.addon.loaded ? 'loaded' : `NOT LOADED\n${indent(r.addon.error ?? '')}`],
    [
      'libtorch',
      r.libtorch.version
        ? `${r.libtorch.version}, ${r.libtorch.threads} threads, ${r.libtorch.parallel ?? ''}`
        : 'not available',
    ],
    ['devices', r.libtorch.devices.join(', ') || 'none'],
    ['CUDA', `compiled: ${ok(r.cuda.compiled)}, available: ${ok(r.cuda.available)}, devices: ${r.cuda.devices}`],
    ['TensorRT', r.tensorrt.compiled ? r.tensorrt.version : 'not found'],
    [
      'data-parallel',
      r.distributed.compiled
        ? `c10d (TCPStore, ${r.distributed.backends.map((b) => (b === 'nccl' ? 'NCCL' : 'Gloo')).join(', ')})` +
          (r.distributed.note ? `; without ${r.distributed.note}` : '')
        : `not available: ${r.distributed.note}`,
    ],
    [
      'ONNX Runtime',
      r.onnxruntime.available ? `${r.onnxruntime.version} (CPU)` : `not available ${r.onnxruntime.error ?? ''}`,
    ],
    ['sharp', r.sharp.version ? `${r.sharp.version} (libvips ${r.sharp.libvips})` : 'not available'],
    ['allocator', r.allocator],
    [
      'python',
      r.python.torch
        ? `${r.python.path}: torch ${r.python.torch}, torchvision ${r.python.torchvision ?? 'missing'}, onnx ${r.python.onnx ?? 'missing'}`
        : `${r.python.path}: no torch (${r.python.error ?? 'import failed'})`,
    ],
  ];
  return rows.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n');
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
