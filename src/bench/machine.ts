/** What a benchmark ran on: CPU, GPU, memory, runtime versions and the toolkit's git commit. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { packageRoot } from '../util/paths.js';
import { onnxRuntimeModule } from '../engine/onnxruntime.js';
import { runtimeInfo } from '../binding/runtime.js';

const run = promisify(execFile);

export interface GpuInfo {
  name: string;
  driver: string;
  memoryMiB: number;
}

export interface MachineInfo {
  hostname: string;
  os: string;
  cpu: {
    model: string;
    /** Physical cores (from /proc/cpuinfo; the logical count where it does not say). */
    cores: number;
    /** Logical processors this process may use. */
    threads: number;
  };
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages when the benchmark started: other work on the machine skews timings. */
  loadAverage: [number, number, number];
  /** nvidia-smi's GPUs; empty without an NVIDIA GPU or driver. */
  gpus: GpuInfo[];
  versions: {
    node: string;
    libtorch: string | null;
    /** CUDA as seen by libtorch: 'available', 'compiled' (no device) or null. */
    libtorchCuda: string | null;
    onnxruntime: string | null;
    tensorrt: string | null;
    sharp: string;
    libvips: string;
    trtFlowers: string;
  };
  git: { commit: string; dirty: boolean } | null;
}

/** CPU model and physical core count from /proc/cpuinfo, else os.cpus(). */
async function cpuInfo(): Promise<{ model: string; cores: number }> {
  const threads = os.availableParallelism();
  let model = os.cpus()[0]?.model?.trim() || 'unknown';
  let cores = threads;
  try {
    const text = await readFile('/proc/cpuinfo', 'utf8');
    const name = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
    if (name) model = name;
    // Physical cores: distinct (physical id, core id) pairs; virtual machines often report each vCPU as a core.
    const pairs = new Set<string>();
    for (const block of text.split(/\n\s*\n/)) {
      const phys = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (phys !== undefined && core !== undefined) pairs.add(`${phys}/${core}`);
    }
    if (pairs.size > 0) cores = Math.min(pairs.size, threads);
  } catch {
    // not Linux: os.cpus() only
  }
  return { model, cores };
}

async function gpus(): Promise<GpuInfo[]> {
  try {
    const { stdout } = await run(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 10_000 },
    );
    return stdout
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .map((line) => {
        const [name = '', driver = '', mem = '0'] = line.split(',').map((s) => s.trim());
        return { name, driver, memoryMiB: Number(mem) || 0 };
      });
  } catch {
    return []; // no nvidia-smi: no NVIDIA GPU here
  }
}

async function gitCommit(): Promise<{ commit: string; dirty: boolean } | null> {
  try {
    const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd: packageRoot, timeout: 10_000 });
    const status = await run('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: packageRoot,
      timeout: 10_000,
    });
    return { commit: stdout.trim(), dirty: status.stdout.trim().length > 0 };
  } catch {
    return null; // not a git checkout (an installed package) or no git
  }
}

async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(`${packageRoot}/package.json`, 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Gathers the machine's description. Never throws: what cannot be found is null or empty. */
export async function machineInfo(): Promise<MachineInfo> {
  const [cpu, gpuList, git, version] = await Promise.all([cpuInfo(), gpus(), gitCommit(), packageVersion()]);
  let libtorch: string | null = null;
  let libtorchCuda: string | null = null;
  let tensorrt: string | null = null;
  try {
    const rt = runtimeInfo();
    libtorch = rt.torchVersion;
    libtorchCuda = rt.cudaAvailable ? 'available' : rt.cudaCompiled ? 'compiled' : null;
    tensorrt = rt.tensorrtCompiled ? rt.tensorrtVersion || 'compiled' : null;
  } catch {
    // the addon does not load: no libtorch
  }
  let onnxruntime: string | null = null;
  try {
    onnxruntime = onnxRuntimeModule().version;
  } catch {
    // onnxruntime-node not installed
  }
  const load = os.loadavg();
  return {
    hostname: os.hostname(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: { ...cpu, threads: os.availableParallelism() },
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0],
    gpus: gpuList,
    versions: {
      node: process.version,
      libtorch,
      libtorchCuda,
      onnxruntime,
      tensorrt,
      sharp: sharp.versions.sharp ?? 'unknown',
      libvips: sharp.versions.vips,
      trtFlowers: version,
    },
    git,
  };
}

/** One line: "AMD EPYC (2 cores, 2 threads), 7.8 GiB, no GPU". */
export function describeMachine(m: MachineInfo): string {
  const gpu = m.gpus.length ? m.gpus.map((g) => g.name).join(', ') : 'no GPU';
  const cores =
    m.cpu.cores === m.cpu.threads ? `${m.cpu.cores} cores` : `${m.cpu.cores} cores, ${m.cpu.threads} threads`;
  return `${m.cpu.model} (${cores}), ${m.memoryGiB} GiB, ${gpu}`;
}

/** Busy and total CPU time of the whole machine so far, ms (Linux /proc/stat), or undefined elsewhere. */
export function machineCpuTimes(): { busyMs: number; totalMs: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return undefined;
    // user nice system idle iowait irq softirq steal (guest time is already in user): ticks of 10 ms (USER_HZ 100).
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busyMs: busy * 10, totalMs: (busy + idle + iowait) * 10 };
  } catch {
    return undefined;
  }
}

/**
 * Measures how much of the machine's CPU other processes use between start() and stop(): (machine busy time - this
 * process's CPU time) / machine CPU time, in percent; undefined where /proc/stat is missing.
 */
export function foreignLoadMeter(): { start: () => void; stop: () => number | undefined } {
  let before: { busyMs: number; totalMs: number } | undefined;
  let own: NodeJS.CpuUsage | undefined;
  return {
    start() {
      before = machineCpuTimes();
      own = process.cpuUsage();
    },
    stop() {
      const after = machineCpuTimes();
      if (!before || !after || !own || after.totalMs <= before.totalMs) return undefined;
      const used = process.cpuUsage(own);
      const others = after.busyMs - before.busyMs - (used.user + used.system) / 1000;
      return Math.max(0, Math.min(100, (100 * others) / (after.totalMs - before.totalMs)));
    },
  };
}
